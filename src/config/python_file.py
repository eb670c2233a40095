"""Runs a gunicorn-style Python configuration file for wsgihost (embedded, not a public API).

The file runs as gunicorn runs it: as the module ``__config__``, with the working directory
on sys.path. Its namespace is kept here: the server hooks it defines are taken from it later.
"""
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback
import types

NAMESPACE = {}


class ConfigFileError(Exception):
    """The file raised: `line` is where (0 when unknown), `text` the traceback."""

    def __init__(self, line, summary, text):
        super().__init__(summary)
        self.line = line
        self.summary = summary
        self.text = text


def run(location):
    """Runs the file (or ``python:module``); returns its public names as (name, value)."""
    global NAMESPACE
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    filename = None
    try:
        if location.startswith("python:"):
            module = importlib.import_module(location[len("python:"):])
        else:
            filename = os.path.abspath(location[len("file:"):] if location.startswith("file:") else location)
            loader = importlib.machinery.SourceFileLoader("__config__", filename)
            spec = importlib.util.spec_from_file_location("__config__", filename, loader=loader)
            module = importlib.util.module_from_spec(spec)
            sys.modules["__config__"] = module
            spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit too: the file must not end the server.
        line = _failure_line(exc, filename)
        summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise ConfigFileError(line, summary, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))) from None
    NAMESPACE = vars(module)
    return [(name, value) for name, value in NAMESPACE.items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)]


def _failure_line(exc, filename):
    if filename is None:
        return 0
    if isinstance(exc, SyntaxError) and exc.filename and os.path.abspath(exc.filename) == filename:
        return exc.lineno or 0
    line = 0
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if os.path.abspath(frame.f_code.co_filename) == filename:
            line = lineno
    return line


def arity(value):
    """The positional parameters of a hook, as gunicorn counts them (None: not callable).
    A string names a callable to import (``package.module.function``)."""
    if isinstance(value, str):
        module_name, _, name = value.rpartition(".")
        if not module_name:
            return None
        value = getattr(importlib.import_module(module_name), name)
    if not callable(value):
        return None
    if isinstance(value, types.FunctionType) and not hasattr(value, "__wrapped__"):
        # What inspect.signature counts, without importing inspect (12 ms at every start).
        return value.__code__.co_argcount
    import inspect

    try:
        parameters = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional)


def hook(name):
    """The hook the file defines under `name` (imported when given as a string), or None."""
    value = NAMESPACE.get(name)
    if isinstance(value, str):
        module_name, _, attribute = value.rpartition(".")
        value = getattr(importlib.import_module(module_name), attribute)
    return value if callable(value) else None


def setting(name):
    """The value the file gives `name`, or None."""
    return NAMESPACE.get(name)
