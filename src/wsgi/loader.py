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
    """Imports an application named like gunicorn does: `module:name` (name may be
    dotted), `module` (its `application`, else `app`) or a factory call
    `module:create_app()` / `module:create_app('arg', key=1)` with literal arguments."""
    module_name, _, target = spec.partition(":")
    module = importlib.import_module(module_name)
    if not target:
        for name in ("application", "app"):
            if callable(getattr(module, name, None)):
                return getattr(module, name)
        raise LookupError(f"module {module_name} has no 'application' or 'app' callable")
    name, args, kwargs = _parse_target(target)
    obj = module
    for part in name.split("."):
        obj = getattr(obj, part)
    if args is not None:
        obj = obj(*args, **kwargs)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj


def _parse_target(target):
    """`name` → (name, None, None); `name(1, x='y')` → (name, [1], {'x': 'y'})."""
    import ast

    tree = ast.parse(target.strip(), mode="eval").body
    if isinstance(tree, (ast.Name, ast.Attribute)):
        return target.strip(), None, None
    if not isinstance(tree, ast.Call):
        raise ValueError(f"{target!r} is neither a name nor a factory call")
    args = [ast.literal_eval(arg) for arg in tree.args]
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords}
    return ast.unparse(tree.func), args, kwargs


def adopt_thread_hooks():
    """Gives the calling thread (one the server started) the trace and profile functions
    that threading.settrace() and setprofile() set for new threads, as a threading.Thread
    gets them when it starts: so coverage and profilers see the app code it runs."""
    import threading

    trace = getattr(threading, "_trace_hook", None)
    profile = getattr(threading, "_profile_hook", None)
    if trace is not None:
        sys.settrace(trace)
    if profile is not None:
        sys.setprofile(profile)
