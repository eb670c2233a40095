"""The pip package from outside the repository: a small user project (a Flask app and its
tests) in a fresh virtualenv with the wheel installed, whose own pytest uses the plugin."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

APP = """\
from flask import Flask, request

app = Flask(__name__)


@app.route("/")
def home():
    return "hello from flask"


@app.route("/echo", methods=["POST"])
def echo():
    return {"got": request.get_data(as_text=True)}


@app.route("/boom")
def boom():
    return str(1 / 0)


@app.route("/wait")
def wait():
    import time
    time.sleep(float(request.args.get("s", "30")))
    return "waited"
"""

TESTS = """\
import os

import requests


def test_home(wsgihost_server):
    r = requests.get(wsgihost_server.url("/"))
    assert r.status_code == 200 and r.text == "hello from flask"


def test_post(wsgihost_server):
    r = requests.post(wsgihost_server.url("/echo"), data="ping")
    assert r.json() == {"got": "ping"}


def test_shared_server_is_the_production_one(wsgihost_server):
    # two workers, as pytest.ini says, and the plugin's own socket
    assert "2 workers" in wsgihost_server.log()
    assert "fd://" in " ".join(wsgihost_server.command)


def test_factory_starts_servers_with_other_flags(wsgihost):
    one = wsgihost(app="app:app", args=["--threads", "1"])
    two = wsgihost(app="app:app", args=["--workers", "3"])
    assert one.port != two.port
    assert requests.get(one.url("/")).text == requests.get(two.url("/")).text
    assert "3 workers" in two.log()
"""

INI = """\
[pytest]
wsgihost_app = app:app
wsgihost_args = --workers 2
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory, via, wheel):
    if via != "pip":
        pytest.skip("tests the pip package: runs with --via pip (./run-tests runs both ways)")
    root = tmp_path_factory.mktemp("user-project")
    (root / "app.py").write_text(APP)
    (root / "test_app.py").write_text(TESTS)
    (root / "pytest.ini").write_text(INI)
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheel), "Flask==3.1.0", "requests==2.32.3", "pytest==8.3.4",
                    "pytest-xdist==3.6.1"], check=True)
    return root


def run_pytest(project, *args, timeout=120):
    return subprocess.run([project / ".venv" / "bin" / "python", "-m", "pytest", "-q",
                           "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True, timeout=timeout)


def leftovers(project):
    """Processes still running from the project's venv (servers outliving pytest)."""
    found = []
    venv = str(project / ".venv").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if venv in cmdline and b"wsgihost" in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_a_user_project_tests_its_app_against_the_real_server(project):
    result = run_pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert leftovers(project) == []


def test_under_xdist_each_worker_has_its_own_server(project):
    result = run_pytest(project, "-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert leftovers(project) == []


def test_a_failing_test_shows_what_the_server_logged(project):
    # In a fresh venv with only the wheel: the plugin's error capture and log sections
    # (every case of them is in test_pytest_plugin.py).
    (project / "test_fails.py").write_text(textwrap.dedent("""\
        import requests

        def test_an_unexpected_500_fails(wsgihost_server):
            assert requests.get(wsgihost_server.url("/boom")).status_code == 500
        """))
    try:
        result = run_pytest(project, "test_fails.py")
        assert result.returncode == 1
        assert "1 failed" in result.stdout
        assert "wsgihost log (http://127.0.0.1:" in result.stdout
        assert "ZeroDivisionError: division by zero" in result.stdout
        assert "the wsgihost server logged an error during this test" in result.stdout
    finally:
        (project / "test_fails.py").unlink()
    assert leftovers(project) == []


@pytest.mark.parametrize("interruption", [signal.SIGINT, signal.SIGKILL])
def test_no_server_outlives_an_interrupted_session(project, interruption):
    (project / "test_slow.py").write_text(textwrap.dedent("""\
        import pytest
        import requests

        @pytest.fixture(scope="session")
        def wsgihost_args():  # the drain then ends the request in flight after 2 s
            return ["--graceful-timeout", "2"]

        def test_waits(wsgihost_server):
            print("serving", flush=True)
            requests.get(wsgihost_server.url("/wait?s=60"), timeout=120)
        """))
    try:
        process = subprocess.Popen(
            [project / ".venv" / "bin" / "python", "-m", "pytest", "-q", "-s", "-p",
             "no:cacheprovider", "test_slow.py"],
            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not leftovers(project):
            time.sleep(0.1)
        assert leftovers(project), "the server never started"
        time.sleep(1)  # the request is in flight
        process.send_signal(interruption)
        process.wait(60)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and leftovers(project):
            time.sleep(0.2)
        assert leftovers(project) == []
    finally:
        (project / "test_slow.py").unlink()
