"""The site a test server serves, for the tests (conftest's `site`), the soak and the
network fuzzer: the repository's html/ and wsgipython/ with the test apps beside its
scripts. And a free port for servers that bind their own."""
import shutil
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"


def make_site(folder):
    """Fills `folder` with html/ and wsgipython/ (the repo's scripts and the test apps)."""
    folder = Path(folder)
    shutil.copytree(REPO / "html", folder / "html")
    shutil.copytree(REPO / "wsgipython", folder / "wsgipython")
    for app in APPS.glob("*.py"):
        shutil.copy(app, folder / "wsgipython" / app.name)
    return folder


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=10, ignoring=()):
    """Polls `predicate` until it is true (True) or `timeout` seconds pass (False);
    exceptions of the `ignoring` types count as not yet."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except ignoring:
            pass
        time.sleep(0.05)
    return False
