"""Health probes (--health-path) answered by the server itself, and the shutdown delay
(--shutdown-delay) that gives a load balancer time to notice a stopping server."""
import os
import signal
import threading
import time

import requests

from conftest import free_port
from testsite import wait_for

APP = (
    "import os, time\n"
    "if os.path.exists(os.path.join(os.path.dirname(__file__), 'slow_import')):\n"
    "    time.sleep(3)\n"
    "def application(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'app saw ' + environ['PATH_INFO'].encode()]\n"
)


def start_app(start_server, site, *args, **kwargs):
    (site / "probed.py").write_text(APP)
    return start_server("probed:application", *args, **kwargs)


def test_probes_are_answered_by_the_server_and_left_out_of_the_access_log(start_server, site):
    server = start_app(start_server, site, "--health-path", "/", "--access-log", "-")
    live = requests.get(server.url + "/livez", timeout=5)
    ready = requests.get(server.url + "/readyz?verbose", timeout=5)
    assert (live.status_code, live.text) == (200, "live\n")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    assert ready.headers["Content-Type"].startswith("text/plain")
    assert ready.headers["Cache-Control"] == "no-store"
    head = requests.head(server.url + "/readyz", timeout=5)
    assert head.status_code == 200 and head.content == b""
    # Only the exact paths are probes: the rest goes to the app.
    assert requests.get(server.url + "/readyz/more", timeout=5).text == "app saw /readyz/more"
    assert requests.get(server.url + "/page", timeout=5).text == "app saw /page"
    assert wait_for(lambda: '"GET /page HTTP/1.1" 200' in server.log())
    log = server.log()
    assert "/livez" not in log and "/readyz " not in log and "/readyz?" not in log


def test_probes_under_a_prefix_and_in_the_access_log_when_asked(start_server, site):
    server = start_app(start_server, site, "--health-path", "/-/health/", "--health-access-log")
    assert requests.get(server.url + "/-/health/readyz", timeout=5).text == "ready\n"
    assert requests.get(server.url + "/-/health/livez", timeout=5).text == "live\n"
    assert requests.get(server.url + "/readyz", timeout=5).text == "app saw /readyz"
    assert wait_for(lambda: '"GET /-/health/readyz HTTP/1.1" 200' in server.log())


def test_without_the_flag_the_app_gets_the_paths(start_server, site):
    server = start_app(start_server, site)
    assert requests.get(server.url + "/readyz", timeout=5).text == "app saw /readyz"


def test_readiness_is_503_while_a_worker_starts(start_server, site):
    """Every worker must serve: a worker added with SIGTTIN that takes 3 s to import the
    app makes readiness 503 until it is up; liveness stays 200 throughout."""
    server = start_app(start_server, site, "--health-path", "/", "--workers", "1")
    assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
    (site / "slow_import").write_text("")
    os.kill(server.pid, signal.SIGTTIN)
    assert wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).text == "starting\n", timeout=2)
    assert requests.get(server.url + "/livez", timeout=5).status_code == 200
    assert requests.get(server.url + "/page", timeout=5).status_code == 200
    assert wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).status_code == 200, timeout=15)
    assert "2 workers" in server.log()


def test_readiness_stays_200_through_a_sighup_reload(start_server, site):
    server = start_app(start_server, site, "--health-path", "/", "--workers", "2")
    statuses = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            statuses.append(requests.get(server.url + "/readyz", timeout=5).status_code)
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: server.log().count("stopped (exit code 0)") >= 2)
    stop.set()
    poller.join()
    assert len(statuses) > 20 and set(statuses) == {200}, statuses


def test_shutdown_delay_serves_on_while_readiness_says_draining(start_server, site):
    """SIGTERM with --shutdown-delay: readiness turns 503 at once, while new connections
    and open keep-alive ones are served as usual for the delay; then the drain as before."""
    server = start_app(start_server, site, "--health-path", "/", "--shutdown-delay", "1.5",
                       port=free_port())
    session = requests.Session()
    assert session.get(server.url + "/page", timeout=5).status_code == 200
    signalled = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    # The master acts on signals every 50 ms.
    assert wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).status_code == 503, timeout=1)
    seen = []
    while time.monotonic() - signalled < 1.2:
        ready = requests.get(server.url + "/readyz", timeout=5)
        fresh = requests.get(server.url + "/page", timeout=5)
        kept = session.get(server.url + "/page", timeout=5)
        seen.append((ready.status_code, ready.text, fresh.status_code, kept.status_code,
                     kept.headers.get("Connection")))
        time.sleep(0.1)
    assert len(seen) >= 5
    assert set(seen) == {(503, "draining\n", 200, 200, None)}, seen
    assert server.process.wait(timeout=10) == 0
    took = time.monotonic() - signalled
    assert took >= 1.5, f"stopped after {took:.2f} s"
    log = server.log()
    assert "serving 1.5s more (--shutdown-delay)" in log
    assert "the shutdown delay is over, stopping gracefully" in log


def test_a_second_sigterm_ends_the_delay_and_sighup_is_ignored(start_server, site):
    server = start_app(start_server, site, "--health-path", "/", "--shutdown-delay", "60",
                       port=free_port())
    os.kill(server.pid, signal.SIGTERM)
    assert wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).status_code == 503)
    os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP ignored: the server is stopping" in server.log())
    signalled = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 5
    assert "starting 1 new workers" not in server.log()
