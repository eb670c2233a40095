"""pytest plugin: test a WSGI application against the real wsgihost server.

The server runs as it runs in production - a child process with its workers, threads,
static mounts and limits - not a development server in a thread. Nothing races for a port:
the plugin binds a free port itself and hands the listening socket to the server
(``--bind fd://N``), and waits for the server to say it serves (systemd's readiness
protocol, ``NOTIFY_SOCKET``). The server runs in the pytest rootdir (or ``wsgihost_chdir``),
which is on its sys.path, as the app's own imports expect.

Each test gets the server's lines from its own time span: at the end of each phase the
plugin asks every worker to write out what it has buffered and waits for the worker's
mark in the log (a log sequence number, not a timer). A failing test's report shows them.
A test fails when, during it, the server logged a Python traceback (an app that raised: a
500) or the app logged a record at ERROR or above through Python's logging (Django's
``django.request`` too, so a 500 under DEBUG=False counts), unless the test is marked
``@pytest.mark.wsgihost_allow_errors``.

Under ``pytest --cov`` (pytest-cov, or ``coverage run -m pytest``) each worker of each
server measures the app code it runs, with pytest's coverage settings, into a data file
beside pytest's; pytest-cov combines them with its own (xdist workers' too). The server's
threads take coverage's tracer as Python threads do (3.9-3.11, or its C tracer on any
version); with COVERAGE_CORE=sysmon on 3.12+ sys.monitoring covers every thread anyway.

Configuration (pytest.ini, or [tool.pytest.ini_options] in pyproject.toml)::

    wsgihost_app = mysite.wsgi:application
    wsgihost_args = --workers 2 --static /static=staticfiles
    wsgihost_chdir = src                 # relative to the rootdir; default: the rootdir
    wsgihost_fail_on_errors = true       # the default
    wsgihost_scripts_only = false        # true: no app, ./wsgipython scripts and ./html

Fixtures:

- ``wsgihost_server`` (session): the server for ``wsgihost_app`` and ``wsgihost_args``,
  started once per session (per xdist worker) and shared by every test and session
  fixture that uses it. Pick this one.
- ``wsgihost_test_server`` (function): for a test marked
  ``@pytest.mark.wsgihost(args=[...], app=..., env={...})``, a server of its own with those
  settings, stopped when the test ends; the session server when the marker changes nothing.
- ``wsgihost``: a factory, ``wsgihost(app=None, args=(), cwd=None, env=None)``, for servers
  with other flags; they are stopped when the test ends.
- ``wsgihost_live_server`` (function): with pytest-django, the session's server with Django
  pointed at the test databases, and the test's database access transactional.
- ``wsgihost_app`` and ``wsgihost_args`` (session): override these fixtures to choose the
  app and flags in code instead of in the ini file.
"""
import argparse
import ctypes
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

TRACEBACK = "Traceback (most recent call last)"
#: How a record that the app logged at ERROR starts in the log (see _pytest_capture.py).
APP_ERROR = "wsgihost-pytest: the app logged"
#: The server config file that adds the error capture (and runs the project's own).
CAPTURE_CONFIG = Path(__file__).with_name("_pytest_capture.py")
#: Asks a worker to write out its buffered log lines, then a mark (see logging/mark.rs).
LOG_MARK_SIGNAL = signal.SIGRTMIN + 6
_MARK = re.compile(rb"wsgihost: log mark (\d+) (\d+)\n")
#: How long a flush waits for a worker's mark (a worker that is busy booting or dying).
_MARK_WAIT = 5.0
_OUR_FIXTURES = {"wsgihost_server", "wsgihost_test_server", "wsgihost",
                 "wsgihost_live_server"}


def pytest_addoption(parser):
    parser.addini("wsgihost_app", "WSGI application the wsgihost_server fixture serves "
                  "(module:callable)")
    parser.addini("wsgihost_args", "extra wsgihost flags for the wsgihost_server fixture",
                  type="args", default=[])
    parser.addini("wsgihost_chdir", "the servers' working directory, relative to the "
                  "rootdir (default: the rootdir)", default="")
    parser.addini("wsgihost_scripts_only", "wsgihost_server without an app: drop-in "
                  "scripts (./wsgipython) and static files (./html)", type="bool",
                  default=False)
    parser.addini("wsgihost_command", "how to run the server (default: this Python's "
                  "wsgihost, `python -m wsgihost`)", type="args", default=[])
    parser.addini("wsgihost_fail_on_errors", "fail a test during which the server logged "
                  "a traceback or the app logged at ERROR", type="bool", default=True)
    parser.addini("wsgihost_fail_on_traceback", "older name of wsgihost_fail_on_errors",
                  type="bool", default=None)
    parser.addini("wsgihost_start_timeout", "seconds a server may take to start",
                  default="60")
    group = parser.getgroup("wsgihost")
    group.addoption("--wsgihost-allow-errors", action="store_true", default=False,
                    help="do not fail tests for errors the server or the app logged")
    group.addoption("--wsgihost-fail-on-traceback", action="store_true", default=None,
                    help=argparse.SUPPRESS)
    group.addoption("--wsgihost-command", default=None,
                    help="how to run the server, e.g. path/to/wsgihost (a shell-quoted "
                         "command)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "wsgihost_allow_errors: the server or the app may log errors during "
        "this test (a 500 it provokes on purpose)")
    config.addinivalue_line(
        "markers", "wsgihost(app=None, args=None, env=None): the settings of this test's "
        "wsgihost_test_server")


class WsgihostServer:
    """A running wsgihost: its address, process and log."""

    def __init__(self, process, port, log_path, command):
        self.process = process
        self.port = port
        self.host = "127.0.0.1"
        self.log_path = Path(log_path)
        self.command = command
        self._marks_asked = {}
        self._marks_seen = {}
        self._scanned = 0

    @property
    def pid(self):
        return self.process.pid

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def url(self, path="/"):
        """The absolute URL of `path` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def log(self):
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_size(self):
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def worker_pids(self):
        """The worker processes (the master's children)."""
        pids = []
        try:
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                pids += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            pass
        return pids

    def flush_log(self, since=None):
        """Returns once every line each worker logged before this call is in the log. With
        `since` (a byte offset), returns what the server printed from there on, without log
        marks, and the offset where that ends: the log is read once, for both."""
        start = self._scanned if since is None else min(since, self._scanned)
        read = bytearray(self._read_lines(start))
        waiting = {}
        for pid in self.worker_pids() if self.process.poll() is None else ():
            try:
                os.kill(pid, LOG_MARK_SIGNAL)
            except ProcessLookupError:
                continue
            self._marks_asked[pid] = waiting[pid] = self._marks_asked.get(pid, 0) + 1
        deadline = time.monotonic() + _MARK_WAIT
        while waiting and time.monotonic() < deadline:
            read += self._read_lines(start + len(read))
            waiting = {pid: n for pid, n in waiting.items()
                       if self._marks_seen.get(pid, 0) < n and _is_running(pid)}
            if waiting:
                time.sleep(0.0005)
        if since is None:
            return None
        text = _MARK.sub(b"", bytes(read[since - start:])).decode(errors="replace")
        return text, max(since, start + len(read))

    def _read_lines(self, offset):
        """The complete lines in the log from `offset` on; the log marks among those not
        read before are counted."""
        if not self.log_path.exists():
            return b""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            new = log.read()
        complete = new[:new.rfind(b"\n") + 1]
        unscanned = complete[max(0, self._scanned - offset):]
        self._scanned = max(self._scanned, offset + len(complete))
        for pid, count in _MARK.findall(unscanned):
            pid, count = int(pid), int(count)
            self._marks_seen[pid] = max(self._marks_seen.get(pid, 0), count)
        return complete

    def reload(self):
        """A rolling reload (SIGHUP): new workers with the code on disk now."""
        os.kill(self.pid, signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=40):
        """Stops the server (gracefully by default; killed, workers too, if it has not
        stopped after `timeout` s) and returns its exit code."""
        if self.process.poll() is None:
            if sig != signal.SIGKILL:
                os.kill(self.process.pid, sig)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            if self.process.poll() is None:
                # The workers first: one still importing the app (a hang) acts on the
                # SIGTERM that the master's death sends only once the import returns.
                for pid in self.worker_pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __repr__(self):
        return f"<wsgihost {self.base_url} pid {self.pid}>"


def _is_running(pid):
    """Alive and not a zombie (a worker that exited but was not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")


def _die_with_parent():
    """In the child before exec: the kernel sends SIGTERM if pytest goes away first."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerDidNotStart(RuntimeError):
    """wsgihost exited, or did not serve in time; the message holds its log."""


def start_server(command, args=(), app=None, cwd=None, env=None, log_dir=None, bind=True,
                 start_timeout=60.0, **popen):
    """Starts wsgihost and returns once it serves (a WsgihostServer). With `bind`, the
    listening socket is made here on a free port and passed to the server; otherwise the
    arguments must say where to listen (then `port` is whatever the caller chose, or 0)."""
    listener = None
    port = 0
    arguments = list(command)
    pass_fds = list(popen.pop("pass_fds", ()))
    if bind:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        port = listener.getsockname()[1]
        arguments += ["--bind", f"fd://{listener.fileno()}"]
        pass_fds.append(listener.fileno())
    arguments += list(args)
    if app:
        arguments.append(app)
    readiness = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"wsgihost-{os.getpid()}-{uuid.uuid4().hex}"
    readiness.bind("\0" + name)
    environment = dict(os.environ if env is None else env)
    environment["NOTIFY_SOCKET"] = "@" + name
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="wsgihost-log-"))
    log_path = log_dir / f"wsgihost-{name[-8:]}.log"
    also = popen.pop("preexec_fn", None)

    def before_exec():
        _die_with_parent()
        if also:
            also()

    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(arguments, cwd=cwd, env=environment, stdout=log,
                                       stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                       preexec_fn=before_exec, **popen)
    except OSError as error:  # wsgihost_command names no program, or cwd is missing
        raise ServerDidNotStart(f"cannot run {shlex.join(arguments)} in {cwd}: {error}") \
            from None
    finally:
        if listener is not None:
            listener.close()  # the server has its own copy
    server = WsgihostServer(process, port, log_path, arguments)
    try:
        _wait_until_ready(server, readiness, start_timeout)
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    finally:
        readiness.close()
    return server


def _wait_until_ready(server, readiness, timeout):
    readiness.settimeout(0.05)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if b"READY=1" in readiness.recv(4096):
                return
        except socket.timeout:
            pass
        if server.process.poll() is not None:
            raise ServerDidNotStart(f"wsgihost exited with code {server.process.returncode}"
                                    f" before serving:\n{server.log()}")
    raise ServerDidNotStart(f"wsgihost did not serve within {timeout} s:\n{server.log()}")


def _command(config):
    given = config.getoption("wsgihost_command")
    if given:
        return shlex.split(given)
    return config.getini("wsgihost_command") or [sys.executable, "-m", "wsgihost"]


def _fail_on_errors(config):
    if config.getoption("wsgihost_allow_errors"):
        return False
    if config.getoption("wsgihost_fail_on_traceback"):
        return True
    older = config.getini("wsgihost_fail_on_traceback")
    return config.getini("wsgihost_fail_on_errors") if older is None else older


def _coverage_settings(config):
    """When pytest measures coverage (pytest-cov, or coverage run), the Coverage()
    arguments that make each worker measure the same way into a data file beside pytest's
    (pytest-cov combines them), with paths made absolute; else None."""
    coverage = sys.modules.get("coverage")
    measurement = coverage.Coverage.current() if coverage else None
    if measurement is None:
        return None
    here = config.invocation_params.dir  # where pytest-cov started measuring
    settings = measurement.config

    def absolute(patterns):
        return [p if p.startswith(("*", "?")) else str(Path(here, p)) for p in patterns]

    # The app's modules are measured in the servers, not here: no warning that they are not.
    for warning in ("module-not-imported", "no-data-collected"):
        if warning not in settings.disable_warnings:
            settings.disable_warnings.append(warning)
    data_file = Path(here, settings.data_file)
    try:  # as coverage will: make the directory, write a file in it
        data_file.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=data_file.parent).close()
    except OSError as error:
        pytest.exit(f"wsgihost: the servers cannot write their coverage data beside "
                    f"{data_file} ({error}); point [run] data_file of the coverage "
                    "configuration at a writable directory",
                    returncode=pytest.ExitCode.USAGE_ERROR)
    return {
        "data_file": str(data_file),
        "config_file": str(Path(here, settings.config_file)) if settings.config_file
        else False,
        "source": [str(Path(here, s)) if Path(here, s).is_dir() else s
                   for s in settings.source] if settings.source else None,
        "source_pkgs": list(settings.source_pkgs) or None,
        "include": absolute(settings.run_include) or None,
        "omit": absolute(settings.run_omit) or None,
        "branch": settings.branch,
    }


def _with_plugin_config(args, cwd):
    """`args` with the plugin's config file in front of the project's: returns (args, env).
    The project's file is the one `-c/--config` names, else ./gunicorn.conf.py; a TOML
    config is left as it is (then the plugin's file is not used: only tracebacks are
    caught, not logged errors, and coverage is not measured in the server)."""
    args = list(args)
    inner = None
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            inner, del_range = args[i + 1], slice(i, i + 2)
        elif arg.startswith("--config="):
            inner, del_range = arg.split("=", 1)[1], slice(i, i + 1)
        elif arg.startswith("-c") and len(arg) > 2:
            inner, del_range = arg[2:], slice(i, i + 1)
        else:
            continue
        break
    if inner is not None:
        if not inner.endswith(".py"):
            return args, {}
        del args[del_range]
        inner = str(Path(cwd, inner))
    elif Path(cwd, "gunicorn.conf.py").is_file():
        inner = str(Path(cwd, "gunicorn.conf.py"))
    return ["-c", str(CAPTURE_CONFIG), *args], {"WSGIHOST_PYTEST_CONFIG": inner or ""}


class _Servers:
    """The servers of a session: shared ones by configuration, and those a test started."""

    def __init__(self, config, log_dir):
        self.config = config
        self.log_dir = log_dir
        self.shared = {}
        self.command = _command(config)
        self.start_timeout = float(config.getini("wsgihost_start_timeout"))
        self.cwd = Path(config.rootpath, config.getini("wsgihost_chdir") or ".")
        self.capture = _fail_on_errors(config)
        self.coverage = _coverage_settings(config)
        #: Every server started, with how far its log has been handed to tests.
        self.cursors = {}

    def start(self, app=None, args=(), cwd=None, env=None, databases=None, **kwargs):
        """Starts a server; `databases` ({alias: name}) points Django at those."""
        kwargs.setdefault("log_dir", self.log_dir)
        kwargs.setdefault("start_timeout", self.start_timeout)
        cwd = Path(cwd or self.cwd)
        environment = dict(os.environ if env is None else env)
        if self.capture or self.coverage or databases:
            args, extra = _with_plugin_config(args, cwd)
            environment.update(extra)
        if databases:
            environment["WSGIHOST_PYTEST_DJANGO_DATABASES"] = json.dumps(databases)
            environment["WSGIHOST_PYTEST_CAPTURE_ERRORS"] = "1" if self.capture else "0"
        if self.coverage:
            environment["WSGIHOST_PYTEST_COVERAGE"] = json.dumps(self.coverage)
            # Measured once, by the workers: not also by coverage's own start-up hook.
            for name in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
                environment.pop(name, None)
        server = start_server(self.command, app=app, args=args, cwd=cwd, env=environment,
                              **kwargs)
        self.cursors[server] = 0
        return server

    def shared_server(self, app, args, databases=None):
        if app is None and not self.config.getini("wsgihost_scripts_only"):
            pytest.exit("wsgihost_server: no application. Set wsgihost_app = "
                        "module:callable in pytest.ini (or [tool.pytest.ini_options]), or "
                        "override the wsgihost_app fixture; for drop-in scripts and static "
                        "files only, set wsgihost_scripts_only = true",
                        returncode=pytest.ExitCode.USAGE_ERROR)
        key = (app, tuple(args), tuple(sorted((databases or {}).items())))
        server = self.shared.get(key)
        if isinstance(server, ServerDidNotStart):
            pytest.exit(str(server), returncode=pytest.ExitCode.USAGE_ERROR)
        if server is None or server.process.poll() is not None:
            try:
                server = self.start(app=app, args=args, databases=databases)
            except ServerDidNotStart as failure:
                # Said once, and the session ends: every test would fail the same way.
                message = (f"wsgihost_server (wsgihost_app = {app}, wsgihost_args = "
                           f"{shlex.join(args)}, in {self.cwd}) did not start, while setting"
                           f" up {self.config.stash.get(_CURRENT_TEST, '?')}: {failure}")
                self.shared[key] = ServerDidNotStart(message)
                pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)
            self.shared[key] = server
        return server

    def mark_start(self):
        """A test begins: what was logged before is not its, and stopped servers that
        were not shared are forgotten."""
        shared = set(s for s in self.shared.values() if isinstance(s, WsgihostServer))
        for server in list(self.cursors):
            if server.process.poll() is not None and server not in shared:
                del self.cursors[server]
            else:
                self.cursors[server] = server.log_size()

    def stop_all(self):
        for server in self.cursors:
            server.stop()
        self.shared.clear()
        self.cursors.clear()

    def take_lines(self, servers):
        """What each of `servers` logged since the last call, once flushed: (server, text)."""
        taken = []
        for server in servers:
            if server not in self.cursors:
                continue
            text, self.cursors[server] = server.flush_log(since=self.cursors[server])
            taken.append((server, text))
        return taken


_SERVERS = pytest.StashKey()
_STARTED = pytest.StashKey()
#: The test being set up or run, for errors that a session fixture meets.
_CURRENT_TEST = pytest.StashKey()


@pytest.fixture(scope="session")
def _wsgihost_servers(request, tmp_path_factory):
    servers = _Servers(request.config, tmp_path_factory.mktemp("wsgihost"))
    request.config.stash[_SERVERS] = servers
    yield servers
    servers.stop_all()


@pytest.fixture(scope="session")
def wsgihost_app(pytestconfig):
    """The application `wsgihost_server` serves: the `wsgihost_app` ini setting."""
    return pytestconfig.getini("wsgihost_app") or None


@pytest.fixture(scope="session")
def wsgihost_args(pytestconfig):
    """Extra flags for `wsgihost_server`: the `wsgihost_args` ini setting."""
    return list(pytestconfig.getini("wsgihost_args"))


@pytest.fixture(scope="session")
def wsgihost_server(_wsgihost_servers, wsgihost_app, wsgihost_args):
    """The production server for `wsgihost_app` with `wsgihost_args`, started once per
    session (per xdist worker) and shared by every test that asks for it."""
    return _wsgihost_servers.shared_server(wsgihost_app, wsgihost_args)


@pytest.fixture
def wsgihost_test_server(request, _wsgihost_servers, wsgihost_app, wsgihost_args):
    """This test's server: the session's, unless the test is marked
    ``@pytest.mark.wsgihost(app=..., args=[...], env={...})`` with other settings; then one
    of its own, stopped when the test ends."""
    marker = request.node.get_closest_marker("wsgihost")
    settings = dict(marker.kwargs) if marker else {}
    app = settings.pop("app", wsgihost_app)
    args = list(settings.pop("args", wsgihost_args))
    env = settings.pop("env", None)
    if settings:
        raise pytest.UsageError(f"@pytest.mark.wsgihost: unknown {', '.join(settings)} "
                                "(it takes app, args and env)")
    if (app, args, env) == (wsgihost_app, wsgihost_args, None):
        yield _wsgihost_servers.shared_server(app, args)
        return
    server = _start_for_test(request, _wsgihost_servers, app=app, args=args,
                             env=None if env is None else {**os.environ, **env})
    yield server
    server.stop()


def _django_test_databases():
    """{alias: name} of the test databases pytest-django made (or would make, for an
    alias no test asked for: then the server fails there rather than touch the real one)."""
    from django.db import connections

    names = {}
    for alias in connections:
        connection = connections[alias]
        name = connection.creation._get_test_db_name()
        if connection.vendor == "sqlite" and connection.creation.is_in_memory_db(name):
            pytest.exit(f"wsgihost_live_server: the test database of {alias!r} is SQLite in "
                        "memory, which only pytest's process can see; give the server a "
                        f"file: DATABASES[{alias!r}]['TEST'] = {{'NAME': BASE_DIR / "
                        f"'test_db.sqlite3'}} in the settings",
                        returncode=pytest.ExitCode.USAGE_ERROR)
        names[alias] = str(name)
    return names


# pytest-django's fixtures by name, so that it sees which tests use the databases (it
# makes only the test databases that some collected test needs).
@pytest.fixture(scope="session")
def _wsgihost_django_server(django_db_setup, _wsgihost_servers, wsgihost_app, wsgihost_args):
    return _wsgihost_servers.shared_server(wsgihost_app, wsgihost_args,
                                           databases=_django_test_databases())


@pytest.fixture
def wsgihost_live_server(transactional_db, _wsgihost_django_server):
    """pytest-django's ``live_server``, served by wsgihost: the session's server with
    Django pointed at the test databases, and this test's database access transactional
    (what the test writes is committed, so the server sees it; the tables are flushed when
    the test ends)."""
    return _wsgihost_django_server


def _start_for_test(request, servers, **settings):
    try:
        server = servers.start(**settings)
    except ServerDidNotStart as failure:
        pytest.fail(str(failure), pytrace=False)
    request.node.stash.setdefault(_STARTED, []).append(server)
    return server


@pytest.fixture
def wsgihost(request, _wsgihost_servers):
    """Starts servers of your own for this test: ``wsgihost(app=None, args=(), cwd=None,
    env=None)``; each is stopped gracefully when the test ends."""
    started = []

    def start(app=None, args=(), cwd=None, env=None, **kwargs):
        server = _start_for_test(request, _wsgihost_servers, app=app, args=list(args),
                                 cwd=cwd, env=env, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _servers_of(item):
    """The servers whose lines belong to `item`: those it started, and the shared ones
    when it uses them (directly or through a fixture of its own)."""
    servers = list(item.stash.get(_STARTED, []))
    registry = item.config.stash.get(_SERVERS, None)
    if registry is not None and _OUR_FIXTURES & set(getattr(item, "fixturenames", ())):
        servers += [s for s in registry.shared.values() if isinstance(s, WsgihostServer)]
    return servers


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.config.stash[_CURRENT_TEST] = item.nodeid
    registry = item.config.stash.get(_SERVERS, None)
    if registry is not None:
        registry.mark_start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report gets the lines of its span (a passing setup's go with the
    call); the call and the teardown fail for errors logged in their span."""
    outcome = yield
    report = outcome.get_result()
    registry = item.config.stash.get(_SERVERS, None)
    if registry is None or (call.when == "setup" and report.passed):
        return
    lines = [(server, text) for server, text in registry.take_lines(_servers_of(item)) if text]
    errors = [text for _, text in lines if TRACEBACK in text or APP_ERROR in text]
    if (errors and report.passed and registry.capture
            and not item.get_closest_marker("wsgihost_allow_errors")):
        report.outcome = "failed"
        report.longrepr = ("the wsgihost server logged an error during this test (mark it "
                           "@pytest.mark.wsgihost_allow_errors if that is expected):\n\n"
                           + _first_error(errors[0]))
    if report.failed:
        for server, text in lines:
            report.sections.append((f"wsgihost log ({server.base_url})", text))


def _first_error(text, most_lines=60):
    """The log from the first error's line on, at most `most_lines` lines."""
    at = min(i for i in (text.find(TRACEBACK), text.find(APP_ERROR)) if i >= 0)
    start = text.rfind("\n", 0, at) + 1
    return "\n".join(text[start:].splitlines()[:most_lines])
