"""Runs inside a server that the pytest plugin started, as its config file
(``-c .../wsgihost/_pytest_capture.py``): the project's own config file, if it has one,
then a logging handler that writes every record at ERROR or above to the server's log,
where the plugin finds it and fails the test that caused it; and, when pytest measures
coverage, the same measurement in each worker.

The handler sits on the root logger and on ``django.request`` (Django logs a 500 there
and, with DEBUG=False, shows it nowhere else). It is put back after the app is imported
(post_worker_init), in case the app's logging configuration replaced the root's handlers.
"""
import json
import logging
import os
import runpy

#: The variable that names the project's own config file (a gunicorn-style .py).
_INNER_CONFIG = "WSGIHOST_PYTEST_CONFIG"
#: The variable that says whether to capture errors ("1") or not ("0").
_CAPTURE_ERRORS = "WSGIHOST_PYTEST_CAPTURE_ERRORS"
#: The variable with the coverage settings of the pytest process (JSON), when it measures.
_COVERAGE = "WSGIHOST_PYTEST_COVERAGE"
#: The variable with Django's test database names ({alias: name}, JSON), under pytest-django.
_DJANGO_DATABASES = "WSGIHOST_PYTEST_DJANGO_DATABASES"
#: How a captured record starts in the log.
_PREFIX = "wsgihost-pytest: the app logged"


class _ErrorsToServerLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(levelname)s through %(name)s: %(message)s"))

    def emit(self, record):
        # On both loggers, a django.request record reaches this handler twice.
        if getattr(record, "_wsgihost_pytest_seen", False):
            return
        record._wsgihost_pytest_seen = True
        try:
            if _shown_by_another_handler(record):  # Flask's: one line is enough here
                text = f"{record.levelname} through {record.name}: {record.getMessage()}"
            else:  # Django's under DEBUG=False: nothing else shows it
                text = self.format(record)
        except Exception:  # a bad format string must not hide the error
            text = f"{record.levelname} through {record.name}: {record.msg!r}"
        # Straight to the descriptor: unbuffered, so it is in the log before the response.
        os.write(2, f"{_PREFIX} {text}\n".encode(errors="replace"))


def _shown_by_another_handler(record):
    """Whether a handler of the app's writes the record to stdout or stderr (the server's
    log, under the plugin) with its traceback: not a file, not this one."""
    logger = logging.getLogger(record.name)
    while logger is not None:
        for handler in logger.handlers:
            if (isinstance(handler, logging.StreamHandler)
                    and not isinstance(handler, (logging.FileHandler, _ErrorsToServerLog))
                    and record.levelno >= handler.level
                    and handler.filter(record)):  # Django's console: only if DEBUG
                return True
        logger = logger.parent if logger.propagate else None
    return False


def _wsgihost_pytest_install():
    for name in ("", "django.request"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, _ErrorsToServerLog) for h in logger.handlers):
            logger.addHandler(_ErrorsToServerLog())


def _wsgihost_pytest_project_config():
    path = os.environ.get(_INNER_CONFIG)
    if not path:
        return {}
    names = runpy.run_path(path, run_name="__config__")
    return {name: value for name, value in names.items() if not name.startswith("__")}


def _wsgihost_pytest_start_coverage():
    """In a worker, before the app is imported: measures as the pytest process does, into
    a data file of its own beside pytest's, which pytest-cov combines at the end. The
    server's threads take the tracer from threading.settrace, as Python's threads do."""
    settings = os.environ.get(_COVERAGE)
    if not settings:
        return None
    import coverage

    measurement = coverage.Coverage(data_suffix=True, **json.loads(settings))
    measurement.start()
    return measurement


def _wsgihost_pytest_use_test_databases():
    """Points Django at pytest-django's test databases, as Django's test runner does in
    its own process: once the app is imported (its settings are), before the first query
    of the threads that serve (Django's connections are per thread)."""
    names = os.environ.get(_DJANGO_DATABASES)
    if not names:
        return
    from django.conf import settings
    from django.db import connections

    for alias, name in json.loads(names).items():
        settings.DATABASES[alias]["NAME"] = name
        connections.settings[alias]["NAME"] = name


# Its names become this file's, so the server reads its settings and hooks as its own.
globals().update(_wsgihost_pytest_project_config())
_capture_errors = os.environ.get(_CAPTURE_ERRORS, "1") == "1"
if _capture_errors:
    _wsgihost_pytest_install()
_projects_post_fork = globals().get("post_fork")
_projects_post_worker_init = globals().get("post_worker_init")
_projects_worker_exit = globals().get("worker_exit")
_measurement = None


def post_fork(server, worker):
    global _measurement
    _measurement = _wsgihost_pytest_start_coverage()
    if _projects_post_fork is not None:
        _projects_post_fork(server, worker)


def post_worker_init(worker):
    _wsgihost_pytest_use_test_databases()
    if _capture_errors:
        _wsgihost_pytest_install()
    if _projects_post_worker_init is not None:
        _projects_post_worker_init(worker)


def worker_exit(server, worker):
    try:
        if _projects_worker_exit is not None:
            _projects_worker_exit(server, worker)
    finally:
        if _measurement is not None:
            _measurement.stop()
            _measurement.save()
