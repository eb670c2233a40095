"""The promises of logging: lines appear promptly, nothing buffered is lost when a worker
stops, a killed worker loses at most the last second, a slow or failing destination never
blocks a request and is reported, and lines of different processes never mix."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import free_port
from testsite import wait_for


def lines_with(path, marker):
    if not path.exists():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if marker in line]


def test_a_line_appears_within_a_second(start_server, tmp_path):
    path = tmp_path / "access.log"
    server = start_server("--access-log", str(path))
    for attempt in range(3):
        marker = f"live-{attempt}"
        requests.get(f"{server.url}/pid.py?{marker}", timeout=5)
        answered = time.monotonic()
        assert wait_for(lambda: lines_with(path, marker), timeout=2)
        assert time.monotonic() - answered < 1.0
        time.sleep(0.3)  # and again after the worker has gone quiet


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "max-requests"])
def test_nothing_buffered_is_lost_when_a_worker_stops(start_server, tmp_path, how):
    path = tmp_path / "access.log"
    flags = ["--max-requests", "100"] if how == "max-requests" else ["--workers", "2"]
    server = start_server("--access-log", str(path), *flags)
    sent = 0
    with requests.Session() as session:
        while sent < 300 or (how == "max-requests" and sent < 20_000
                             and server.log().count("stopped (exit code 0)") < 2):
            assert session.get(f"{server.url}/pid.py?stop-{sent}", timeout=5).status_code == 200
            sent += 1
    if how == "SIGTERM":
        assert server.stop(signal.SIGTERM) == 0
    elif how == "SIGHUP":
        os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: server.log().count("stopped (exit code 0)") >= 2)
    assert wait_for(lambda: len(lines_with(path, "stop-")) == sent, timeout=3), \
        f"{len(lines_with(path, 'stop-'))} of {sent} lines"


def test_a_killed_worker_loses_at_most_the_last_second(start_server, tmp_path):
    path = tmp_path / "access.log"
    server = start_server("--access-log", str(path))
    pid = None
    with requests.Session() as session:
        for i in range(200):
            pid = session.get(f"{server.url}/pid.py?killed-{i}", timeout=5).text.split()[0]
    time.sleep(1.0)
    os.kill(int(pid), signal.SIGKILL)
    assert wait_for(lambda: "killed by SIGKILL" in server.log())
    assert len(lines_with(path, "killed-")) == 200


def test_a_blocked_destination_never_blocks_a_request(start_server, tmp_path):
    """The access log is a FIFO nobody reads: its pipe fills after a few hundred lines, and
    requests still go at full speed; the lost lines are reported and counted."""
    fifo = tmp_path / "stalled.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open, never read
    try:
        metrics = free_port()
        server = start_server("--access-log", str(fifo), "--metrics", f"127.0.0.1:{metrics}")
        started = time.monotonic()
        with requests.Session() as session:
            for i in range(3000):
                assert session.get(f"{server.url}/pid.py?{i}", timeout=5).status_code == 200
        assert time.monotonic() - started < 20
        assert wait_for(lambda: "log lines" in server.log() and "dropped" in server.log())

        def dropped():
            text = requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).text
            line = next(l for l in text.splitlines()
                        if l.startswith('wsgihost_log_lines_dropped_total{worker="all"}'))
            return float(line.split()[-1])

        assert wait_for(lambda: dropped() > 1000)
    finally:
        os.close(reader)


def test_write_errors_are_reported_once_a_minute_with_a_count(start_server):
    server = start_server("--access-log", "/dev/full")
    for i in range(50):
        assert requests.get(f"{server.url}/pid.py?{i}", timeout=5).status_code == 200
    assert wait_for(lambda: "lost to write errors (No space left on device)" in server.log())
    for i in range(50):
        assert requests.get(f"{server.url}/pid.py?{i}", timeout=5).status_code == 200
    time.sleep(0.5)
    assert server.log().count("lost to write errors") == 1  # the next report is a minute away


def test_lines_of_different_processes_never_mix(command, site):
    """Two workers log tracebacks (many lines) and access lines into one pipe: as JSON,
    every line must still parse whole."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-format", "json"],
        cwd=site, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = []
    drain = threading.Thread(target=lambda: output.append(process.stdout.read()))
    drain.start()
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _answers(url))

        def load(path):
            with requests.Session() as session:
                for _ in range(400):
                    session.get(url + path, timeout=5)

        threads = [threading.Thread(target=load, args=(path,))
                   for path in ["/errors.py?before", "/pid.py", "/errors.py?before", "/pid.py"]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(20) == 0
        drain.join()
    lines = output[0].decode().splitlines()
    records = [json.loads(line) for line in lines]  # raises on a line cut or mixed
    assert sum(1 for r in records if "duration_us" in r) >= 1600
    assert sum(1 for r in records if "boom before headers" in r.get("message", "")) >= 800


def _answers(url):
    try:
        return requests.get(url + "/", timeout=1).status_code == 200
    except requests.RequestException:
        return False
