"""Loads drop-in scripts and WSGI applications for wsgihost (embedded, not a public API)."""
import importlib
import sys
import types


def load_script(path, module_name):
    """Runs the file at `path` as a fresh module and returns its `application`."""
    with open(path, "rb") as source_file:
        source = source_file.read()
    code = compile(source, path, "exec")
    module = types.ModuleType(module_name)
    module.__file__ = path
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    application = getattr(module, "application", None)
    if application is None:
        raise LookupError(f"{path} defines no 'application' callable")
    if not callable(application):
        raise TypeError(f"{path}: 'application' is not callable")
    return application


def load_app(spec):
    """Imports `module:attribute` (attribute may be dotted) and returns the callable."""
    module_name, _, attribute = spec.partition(":")
    target = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec} is not callable")
    return target
