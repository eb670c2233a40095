"""Smoke set for one installed wheel, run by packaging/release.py with the Python of a fresh
environment that has the wheel, Flask, requests and pytest (a virtualenv here, in the arm64
root under qemu, or the musl CPython's site directory): the drop-in scripts, the Flask
example, a request over TLS, --workers 2 with SIGHUP under load, and the pytest plugin in a
user project. Exits non-zero (with the reason) on the first failure. The TLS request is
made by curl, so that a Python built without the ssl module can run the set too."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from wsgihost.pytest_plugin import start_server

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "wsgihost"
# A virtualenv has the console script; a bare interpreter with the wheel on PYTHONPATH runs
# the same entry point as a module.
WSGIHOST = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "wsgihost"]
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def check(condition, what):
    if not condition:
        raise SystemExit(f"smoke {VERSION}: FAILED: {what}")
    print(f"smoke {VERSION}: ok: {what}", flush=True)


def drop_in(work):
    shutil.copytree(REPO / "html", work / "html")
    shutil.copytree(REPO / "wsgipython", work / "wsgipython")
    server = start_server(WSGIHOST, cwd=work, log_dir=work)
    try:
        check(str(time.gmtime().tm_year) in requests.get(server.url("/ctime.py")).text, "ctime.py")
        hello = requests.get(server.url("/sayhello.py?name=Smoke")).text
        check("Hello, Smoke!" in hello, "sayhello.py")
        check(f"Python {VERSION}" in server.log() and sys.prefix in server.log(),
              "the banner names this Python and venv")
    finally:
        check(server.stop() == 0, "graceful stop")


def flask_example(work):
    args = ["--chdir", str(REPO / "examples" / "flask_app"), "--env", f"FLASK_APP_DATA={work}"]
    server = start_server(WSGIHOST, args=args, app="app:app", log_dir=work)
    try:
        check(requests.get(server.url("/")).status_code == 200, "the Flask example's page")
        item = requests.post(server.url("/api/items"), json={"name": "smoke"})
        check(item.status_code in (200, 201), "the Flask example's JSON API")
    finally:
        server.stop()


def tls(work):
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    shutil.copytree(REPO / "wsgipython", work / "wsgipython")
    server = start_server(WSGIHOST, args=["--certfile", str(cert), "--keyfile", str(key)],
                          cwd=work, log_dir=work)
    try:
        fetched = subprocess.run(["curl", "-sS", "--cacert", str(cert),
                                  server.url("/sayhello.py?name=TLS").replace("http:", "https:")],
                                 capture_output=True, text=True, timeout=60)
        check("Hello, TLS!" in fetched.stdout, f"a request over TLS {fetched.stderr}")
    finally:
        server.stop()


def reload_under_load(work):
    shutil.copytree(REPO / "wsgipython", work / "wsgipython")
    shutil.copy(REPO / "pytests" / "apps" / "pid.py", work / "wsgipython" / "pid.py")
    server = start_server(WSGIHOST, args=["--workers", "2", "--access-log", "off"], cwd=work,
                          log_dir=work)
    failures, answered, running = [], [0], [True]

    def load():
        with requests.Session() as session:
            while running[0]:
                try:
                    response = session.get(server.url("/sayhello.py?name=load"), timeout=10)
                    if response.status_code != 200:
                        failures.append(response.status_code)
                    answered[0] += 1
                except requests.RequestException as err:
                    failures.append(repr(err))

    def pid():
        return requests.get(server.url("/pid.py")).text.split()[0]

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        before = {pid() for _ in range(20)}
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.log().count("stopped (exit code 0)") < 2:
            time.sleep(0.1)
        after = {pid() for _ in range(20)}
    finally:
        running[0] = False
        for thread in threads:
            thread.join()
        server.stop()
    check(server.log().count("stopped (exit code 0)") >= 2 and not before & after,
          "SIGHUP replaced both workers")
    check(failures == [] and answered[0] > 50, f"no failed request under load ({answered[0]} answered)")


def plugin(work):
    project = work / "project"
    project.mkdir()
    (project / "app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'plugged']\n")
    (project / "pytest.ini").write_text("[pytest]\nwsgihost_app = app:app\n")
    (project / "test_app.py").write_text(
        "import requests\n\n"
        "def test_app(wsgihost_server):\n"
        "    assert requests.get(wsgihost_server.url('/')).text == 'plugged'\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, timeout=120)
    check(result.returncode == 0 and "1 passed" in result.stdout,
          f"the pytest plugin in a user project\n{result.stdout}{result.stderr}")


def main():
    with tempfile.TemporaryDirectory(prefix="wsgihost-smoke-") as scratch:
        scratch = Path(scratch)
        for step in (drop_in, flask_example, tls, reload_under_load, plugin):
            work = scratch / step.__name__
            work.mkdir()
            step(work)
    print(f"smoke {VERSION}: all passed", flush=True)


if __name__ == "__main__":
    main()
