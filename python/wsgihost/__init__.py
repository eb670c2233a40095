"""wsgihost: an HTTP/1.1 server for WSGI applications, written in Rust.

Run it as ``wsgihost`` or ``python -m wsgihost`` (see ``wsgihost --help``); test an
application against it with the pytest plugin (the ``wsgihost_server`` fixture).

Nothing is imported here: workers are forked from the process running the command, so
every module it loads stays in each worker's memory.
"""


def __getattr__(name):
    if name == "__version__":
        from wsgihost._wsgihost import __version__

        return __version__
    raise AttributeError(f"module 'wsgihost' has no attribute {name!r}")
