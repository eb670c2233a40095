"""pytest plugin: test a WSGI application against the real wsgihost server.

The server runs as it runs in production - a child process with its workers, threads,
static mounts and limits - not a development server in a thread. Nothing races for a port:
the plugin binds a free port itself and hands the listening socket to the server
(``--bind fd://N``), and waits for the server to say it serves (systemd's readiness
protocol, ``NOTIFY_SOCKET``). Each test's report carries what the server logged during
that test when it fails; with ``wsgihost_fail_on_traceback`` a test fails when the server
logged a Python traceback during it. Servers are stopped with SIGTERM and waited for, and
a server whose pytest dies is stopped by the kernel (PR_SET_PDEATHSIG).

Configuration (pytest.ini, or [tool.pytest.ini_options] in pyproject.toml)::

    wsgihost_app = mysite.wsgi:application
    wsgihost_args = --workers 2 --static /static=staticfiles
    wsgihost_fail_on_traceback = true

Fixtures:

- ``wsgihost_server``: the server for ``wsgihost_app`` and ``wsgihost_args``, started once
  per session (per xdist worker) and shared by the tests that use it.
- ``wsgihost``: a factory, ``wsgihost(app=None, args=(), cwd=None, env=None)``, for servers
  with other flags; they are stopped when the test ends.
- ``wsgihost_app`` and ``wsgihost_args``: override these fixtures to choose the app and
  flags in code instead of in the ini file.
"""
import ctypes
import os
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


def pytest_addoption(parser):
    parser.addini("wsgihost_app", "WSGI application the wsgihost_server fixture serves "
                  "(module:callable); unset: drop-in scripts and static files of the "
                  "working directory")
    parser.addini("wsgihost_args", "extra wsgihost flags for the wsgihost_server fixture",
                  type="args", default=[])
    parser.addini("wsgihost_command", "how to run the server (default: this Python's "
                  "wsgihost, `python -m wsgihost`)", type="args", default=[])
    parser.addini("wsgihost_fail_on_traceback", "fail a test during which the server "
                  "logged a Python traceback", type="bool", default=False)
    parser.addini("wsgihost_start_timeout", "seconds a server may take to start",
                  default="60")
    group = parser.getgroup("wsgihost")
    group.addoption("--wsgihost-fail-on-traceback", action="store_true", default=None,
                    help="fail a test during which the server logged a Python traceback")
    group.addoption("--wsgihost-command", default=None,
                    help="how to run the server, e.g. path/to/wsgihost (a shell-quoted "
                         "command)")


class WsgihostServer:
    """A running wsgihost: its address, process and log."""

    def __init__(self, process, port, log_path, command):
        self.process = process
        self.port = port
        self.host = "127.0.0.1"
        self.log_path = Path(log_path)
        self.command = command

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

    def log_since(self, offset):
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def reload(self):
        """A rolling reload (SIGHUP): new workers with the code on disk now."""
        os.kill(self.pid, signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=40):
        """Stops the server (gracefully by default) and returns its exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __repr__(self):
        return f"<wsgihost {self.base_url} pid {self.pid}>"


def _die_with_parent():
    """In the child before exec: the kernel sends SIGTERM if pytest goes away first."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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

    with open(log_path, "wb") as log:
        process = subprocess.Popen(arguments, cwd=cwd, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                   preexec_fn=before_exec, **popen)
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
            raise RuntimeError(f"wsgihost exited with code {server.process.returncode} "
                               f"before serving:\n{server.log()}")
    raise RuntimeError(f"wsgihost did not serve within {timeout} s:\n{server.log()}")


def _command(config):
    given = config.getoption("wsgihost_command") if hasattr(config, "getoption") else None
    if given:
        return shlex.split(given)
    return config.getini("wsgihost_command") or [sys.executable, "-m", "wsgihost"]


def _fail_on_traceback(config):
    option = config.getoption("wsgihost_fail_on_traceback")
    return option if option is not None else config.getini("wsgihost_fail_on_traceback")


class _Servers:
    """The servers of a session: shared ones by configuration, and those a test started."""

    def __init__(self, config, log_dir):
        self.config = config
        self.log_dir = log_dir
        self.shared = {}
        self.command = _command(config)
        self.start_timeout = float(config.getini("wsgihost_start_timeout"))

    def start(self, **kwargs):
        kwargs.setdefault("log_dir", self.log_dir)
        kwargs.setdefault("start_timeout", self.start_timeout)
        return start_server(self.command, **kwargs)

    def shared_server(self, app, args):
        key = (app, tuple(args), os.getcwd())
        server = self.shared.get(key)
        if server is None or server.process.poll() is not None:
            server = self.shared[key] = self.start(app=app, args=args)
        return server

    def stop_all(self):
        for server in self.shared.values():
            server.stop()
        self.shared.clear()


_SERVERS = pytest.StashKey()
_WATCHED = pytest.StashKey()


@pytest.fixture(scope="session")
def _wsgihost_servers(request, tmp_path_factory):
    servers = _Servers(request.config, tmp_path_factory.mktemp("wsgihost"))
    request.config.stash[_SERVERS] = servers
    yield servers
    servers.stop_all()


def _watch(request, server):
    """Remembers where the server's log stood when the test began (for its report)."""
    request.node.stash.setdefault(_WATCHED, []).append((server, server.log_size()))


@pytest.fixture
def wsgihost_app(pytestconfig):
    """The application `wsgihost_server` serves: the `wsgihost_app` ini setting."""
    return pytestconfig.getini("wsgihost_app") or None


@pytest.fixture
def wsgihost_args(pytestconfig):
    """Extra flags for `wsgihost_server`: the `wsgihost_args` ini setting."""
    return list(pytestconfig.getini("wsgihost_args"))


@pytest.fixture
def wsgihost_server(request, _wsgihost_servers, wsgihost_app, wsgihost_args):
    """The production server for `wsgihost_app` with `wsgihost_args`, shared by every test
    of the session that asks for the same configuration."""
    server = _wsgihost_servers.shared_server(wsgihost_app, wsgihost_args)
    _watch(request, server)
    return server


@pytest.fixture
def wsgihost(request, _wsgihost_servers):
    """Starts servers of your own for this test: ``wsgihost(app=None, args=(), cwd=None,
    env=None)``; each is stopped gracefully when the test ends."""
    started = []

    def start(app=None, args=(), cwd=None, env=None, **kwargs):
        server = _wsgihost_servers.start(app=app, args=list(args), cwd=cwd, env=env, **kwargs)
        started.append(server)
        _watch(request, server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    watched = item.stash.get(_WATCHED, [])
    if not watched:
        return
    logs = [(server, server.log_since(offset)) for server, offset in watched]
    if (call.when == "call" and report.passed and _fail_on_traceback(item.config)
            and any(TRACEBACK in text for _, text in logs)):
        report.outcome = "failed"
        report.longrepr = "the wsgihost server logged a traceback during this test:\n\n" + \
            "\n".join(text for _, text in logs if TRACEBACK in text)
    if report.failed:
        for server, text in logs:
            if text:
                report.sections.append((f"wsgihost log ({server.base_url})", text))
