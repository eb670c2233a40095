"""wsgihost: an HTTP/1.1 server for WSGI applications, written in Rust.

Run it as ``wsgihost`` or ``python -m wsgihost`` (see ``wsgihost --help``); test an
application against it with the pytest plugin (the ``wsgihost_server`` fixture).

Nothing is imported here: workers are forked from the process running the command, so
every module it loads stays in each worker's memory.
"""


def native():
    """The extension module, or an ImportError that says which Python it was built for when
    this interpreter cannot load it (a wheel forced onto another version or platform)."""
    try:
        import wsgihost._wsgihost as extension
    except ModuleNotFoundError as missing:
        if missing.name != "wsgihost._wsgihost":
            raise
        raise ImportError(_built_for_another_python()) from None
    return extension


def _built_for_another_python():
    import os
    import re
    import sys
    import sysconfig

    def described(suffix):
        found = re.match(r"\.cpython-(\d)(\d+)-(.+)\.so$", suffix)
        return f"CPython {found[1]}.{found[2]} ({found[3]})" if found else suffix

    here = os.path.dirname(__file__)
    built = sorted(name[len("_wsgihost"):] for name in os.listdir(here)
                   if name.startswith("_wsgihost."))
    if not built:
        return f"wsgihost: the extension module is missing from {here}; reinstall wsgihost"
    return (f"wsgihost: this installation was built for "
            f"{' and '.join(described(suffix) for suffix in built)}, but this is "
            f"{described(sysconfig.get_config_var('EXT_SUFFIX'))}; reinstall it with this "
            f"Python's pip: {sys.executable} -m pip install --force-reinstall wsgihost")


def __getattr__(name):
    if name == "__version__":
        return native().__version__
    raise AttributeError(f"module 'wsgihost' has no attribute {name!r}")
