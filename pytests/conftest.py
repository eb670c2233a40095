"""Fixtures that run the real wsgihost: the cargo-built binary, or (with `--via pip`) the
command pip installed into the test virtualenv. Servers are started through the package's
own pytest plugin (a socket it binds and passes, readiness from the server itself) in a
folder with their own html/ and wsgipython/, and stopped by PID."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wsgihost.pytest_plugin import start_server as launch_wsgihost

from testsite import REPO, free_port, make_site  # noqa: F401 - tests import free_port here
from verifier import ResponseReader  # noqa: F401 - the tests import it from here

BINARY = REPO / "target" / "release" / "wsgihost"


def pytest_addoption(parser):
    parser.addoption("--via", choices=["binary", "pip"],
                     default=os.environ.get("WSGIHOST_TEST_VIA", "binary"),
                     help="run the cargo-built binary (default) or the pip-installed command")


@pytest.fixture(scope="session")
def via(pytestconfig):
    return pytestconfig.getoption("via")


@pytest.fixture(scope="session")
def command(via):
    """The server command, as a list."""
    if via == "pip":
        installed = Path(sys.executable).parent / "wsgihost"
        if not installed.exists():
            raise RuntimeError(f"{installed} is missing: pip-install the package first (./run-tests does)")
        return [str(installed)]
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    return [str(BINARY)]


@pytest.fixture(scope="session")
def wheel(via):
    """The wheel pip installed for this Python (with --via pip)."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    found = sorted((REPO / "target" / "wheels").glob(f"wsgihost-*-{tag}-{tag}-*_2_17_x86_64.whl"))
    if via == "pip" and not found:
        raise RuntimeError(f"no {tag} wheel in target/wheels: ./run-tests builds it")
    return found[-1] if found else None


class Server:
    """A running wsgihost process and what it printed.

    `port`: None to listen on a socket the plugin binds and passes (no port race); a number
    to have the server bind it itself (what a deployment does, e.g. for the drain tests)."""

    def __init__(self, command, workdir, args, port=None, **popen):
        self.workdir = workdir
        bind = port is None
        if not bind:
            args = ["--bind", f"127.0.0.1:{port}", *args]
        self.wsgihost = launch_wsgihost(command, args=args, cwd=workdir, log_dir=workdir,
                                        bind=bind, **popen)
        self.port = port or self.wsgihost.port
        self.process = self.wsgihost.process
        self.log_path = self.wsgihost.log_path

    @property
    def pid(self):
        return self.process.pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        """Everything the server printed. Workers write log lines from a background thread,
        so this waits (briefly) until the file stops growing."""
        size, deadline = -1, time.monotonic() + 1
        while time.monotonic() < deadline:
            time.sleep(0.02)
            current = self.log_path.stat().st_size
            if current == size:
                break
            size = current
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        return self.wsgihost.stop(sig, timeout)

    def connect(self, timeout=5):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


@pytest.fixture
def site(tmp_path):
    """A work folder with html/ (the repo's pages plus test files) and wsgipython/ (the
    repo's scripts plus the test apps)."""
    return make_site(tmp_path)


@pytest.fixture
def start_server(command, site):
    """Starts wsgihost in `site` with extra flags; all are stopped after the test.
    `port=N` has it bind 127.0.0.1:N itself instead of being handed a socket."""
    servers = []

    def start(*args, workdir=None, port=None, **popen):
        server = Server(command, workdir or site, list(args), port, **popen)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server):
    return start_server()


def raw_request(server, data, timeout=5, read_until_close=True):
    """Sends raw bytes and returns everything the server answered until it closed."""
    with server.connect(timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)


def is_closed(sock, timeout=2):
    """True when the server closed the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
