#!/usr/bin/env python3
"""Soak: a bounded run of mixed, verified traffic against wsgihost with recycling, reloads
and worker-count changes, that fails on anything lost, wrong or leaking.

The server: --workers 2 --threads 4 --max-requests 5000 --max-requests-jitter 500, static
files, the drop-in test apps and a Flask app at /flask. The traffic (pytests/verifier.py
checks): keep-alive GETs of static files, drop-in scripts and Flask routes; uploads of
1 KiB-8 MiB with Content-Length and chunked, checksummed by the app; streamed downloads
checked byte for byte; pipelined batches; clients that abort mid-body, mid-response or
before reading (about 1% of requests); slowloris connections trickling their heads; idle
keep-alive connections held open (reopened when the server closes them). SIGHUP every
15 s, one SIGTTIN and one SIGTTOU. Every 10 s: each worker's RSS and open descriptors,
zombies, and the log lines dropped. After warm-up, the largest worker RSS and descriptor
counts (other than sockets) must stay within 10% of their first values.

    .venv/bin/python benches/soak.py --minutes 2     # benches/soak runs this
"""
import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "pytests"))

from testsite import free_port, make_site as make_test_site  # noqa: E402
from verifier import (ResponseReader, VerifyingClient, equals, expected_body,  # noqa: E402
                      get_check, pipelined, post_check, static_check)

FLASK_APP = '''\
import hashlib

from flask import Flask, request

app = Flask(__name__)


def expected_body(size, seed):
    unit = f"{seed}:".encode()
    return (unit * (size // len(unit) + 1))[:size]


@app.route("/item/<int:n>")
def item(n):
    return f"{n} {n * n}"


@app.route("/echo", methods=["POST"])
def echo():
    data = request.get_data()
    return f"{hashlib.sha256(data).hexdigest()} {len(data)}"


@app.route("/stream/<int:size>/<seed>")
def stream(size, seed):
    body = expected_body(size, seed)
    return app.response_class((body[i:i + 50000] for i in range(0, size, 50000)),
                              mimetype="application/octet-stream")
'''


def flask_item_check(rng, seed):
    n = rng.randint(0, 10 ** 6)
    request = f"GET /flask/item/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    return [(request, "GET", equals(f"{n} {n * n}".encode()))]


def flask_stream_check(rng, seed):
    size = rng.randint(1, 2 * 1024 * 1024)
    request = f"GET /flask/stream/{size}/{seed} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    return [(request, "GET", equals(expected_body(size, seed)))]


def make_site(work):
    """html/ with static files of several sizes, wsgipython/ with the test apps, the Flask
    app; returns {url path: content} of the static files."""
    make_test_site(work)
    (work / "soakflask.py").write_text(FLASK_APP)
    files = {}
    rng = random.Random(7)
    (work / "html" / "soak").mkdir()
    for index, size in enumerate([13, 900, 4096, 16384, 16385, 70000, 300000, 2_000_000]):
        content = rng.randbytes(size)
        (work / "html" / "soak" / f"f{index}.bin").write_bytes(content)
        files[f"/soak/f{index}.bin"] = content
    return files


class Abuser(threading.Thread):
    """Clients that give up: mid-body, mid-response, before reading. They must cost the
    server nothing; what they see is not checked."""

    def __init__(self, port, pause):
        super().__init__(daemon=True)
        self.port, self.pause, self.running, self.count = port, pause, True, 0

    def run(self):
        rng = random.Random(99)
        while self.running:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                    kind = rng.randrange(3)
                    if kind == 0:  # aborts mid-body
                        sock.sendall(b"POST /verify.py HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
                        sock.sendall(rng.randbytes(rng.randint(1, 50000)))
                    elif kind == 1:  # aborts mid-response
                        sock.sendall(b"GET /big.py?4 HTTP/1.1\r\nHost: x\r\n\r\n")
                        sock.recv(rng.randint(1, 100000))
                    else:  # never reads
                        sock.sendall(b"GET /verify.py?size=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
                self.count += 1
            except OSError:
                pass
            time.sleep(self.pause)


class Slowloris(threading.Thread):
    """Trickles a request head a byte at a time; the server must drop it (408) within its
    header timeout, then it starts over."""

    def __init__(self, port, header_timeout):
        super().__init__(daemon=True)
        self.port, self.header_timeout, self.running = port, header_timeout, True
        self.dropped, self.held_too_long = 0, 0

    def run(self):
        while self.running:
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 10000:
                        if not self.running:
                            break
                        sock.send(bytes([byte]))
                        time.sleep(0.2)
            except OSError:
                took = time.monotonic() - started
                self.dropped += 1
                if took > self.header_timeout + 3:
                    self.held_too_long += 1


class IdleHolder(threading.Thread):
    """Keeps `count` keep-alive connections open and idle (each made one request), and
    reopens those the server closes (keep-alive timeout, drains)."""

    def __init__(self, port, count):
        super().__init__(daemon=True)
        self.port, self.count, self.running, self.reopened, self.failures = port, count, True, 0, []

    def open_one(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(b"GET /verify.py?size=10&seed=idle HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = ResponseReader(sock).read()
        if status != 200 or body != expected_body(10, "idle"):
            self.failures.append(f"idle: {status} {body!r}")
        sock.setblocking(False)
        return sock

    def run(self):
        held = []
        while self.running:
            while len(held) < self.count and self.running:
                try:
                    held.append(self.open_one())
                except (OSError, ConnectionError) as err:
                    self.failures.append(f"idle connect: {err!r}")
                    time.sleep(0.5)
            time.sleep(1)
            alive = []
            for sock in held:
                try:
                    data = sock.recv(1)
                    if data == b"":
                        sock.close()
                        self.reopened += 1
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    sock.close()
                    self.reopened += 1
                    continue
                alive.append(sock)
            held = alive
        for sock in held:
            sock.close()


def children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def sample(master):
    """Each worker's RSS (KiB), descriptors (other than sockets) and sockets; zombies."""
    workers, zombies = {}, 0
    for pid in children(master):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            if "\nState:\tZ" in status:
                zombies += 1
                continue
            rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except (OSError, StopIteration):
            continue
        sockets = sum(1 for link in links if link.startswith("socket:"))
        workers[pid] = (rss, len(links) - sockets, sockets)
    return workers, zombies


def metric(port, name):
    """A series of the master's metrics: the sum over workers, or the one value."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        text = b""
        while chunk := sock.recv(65536):
            text += chunk
    for line in text.decode().splitlines():
        if line.startswith((name + '{worker="all"}', name + " ")):
            return float(line.split()[-1])
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--command", default=str(REPO / "target" / "release" / "wsgihost"))
    parser.add_argument("--connections", type=int, default=12)
    options = parser.parse_args()
    seconds = options.minutes * 60
    work = Path(tempfile.mkdtemp(prefix="wsgihost-soak-"))
    files = make_site(work)
    port, metrics_port = free_port(), free_port()
    header_timeout = 10
    # The Flask app's packages: this venv (the pip-installed command accepts its own).
    venv = ["--venv", sys.prefix] if sys.prefix != sys.base_prefix else []
    command = [options.command, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
               "--max-requests", "5000", "--max-requests-jitter", "500", "--keep-alive", "75",
               "--access-log", str(work / "access.log"), "--metrics", f"127.0.0.1:{metrics_port}",
               "--mount", "/flask=soakflask:app", *venv]
    log = open(work / "server.log", "wb")
    server = subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    checks = [
        (3, static_check(files)),
        (3, get_check()),
        (2, flask_item_check),
        (2, post_check(smallest=1024, largest=64 * 1024, chunked_share=0.5)),
        (1, post_check("/flask/echo", smallest=1024, largest=64 * 1024, chunked_share=0.3)),
        (0.05, post_check(smallest=1 << 20, largest=8 << 20, chunked_share=0.5)),
        (0.2, get_check(largest=4 << 20, stream=True)),
        (0.1, flask_stream_check),
        (0.5, pipelined(static_check(files), get_check(), flask_item_check)),
    ]
    client = VerifyingClient(port, connections=options.connections, checks=checks)
    abuser = Abuser(port, pause=0.05)
    slowloris = [Slowloris(port, header_timeout) for _ in range(4)]
    idle = IdleHolder(port, 32)
    for thread in [abuser, idle, *slowloris]:
        thread.start()
    started = time.monotonic()
    warm_up = min(30.0, seconds / 4)
    signals = sorted([(t, signal.SIGHUP) for t in range(15, int(seconds), 15)]
                     + [(seconds / 3, signal.SIGTTIN), (2 * seconds / 3, signal.SIGTTOU)])
    samples, problems, zombie_samples = [], [], 0
    baseline = None
    next_sample = started + 10
    try:
        while time.monotonic() - started < seconds:
            time.sleep(0.2)
            elapsed = time.monotonic() - started
            while signals and signals[0][0] <= elapsed:
                os.kill(server.pid, signals.pop(0)[1])
            if server.poll() is not None:
                problems.append(f"the server exited with {server.returncode}")
                break
            if time.monotonic() >= next_sample:
                next_sample += 10
                workers, zombies = sample(server.pid)
                zombie_samples = zombie_samples + 1 if zombies else 0
                if zombie_samples >= 2:
                    problems.append(f"{zombies} zombie worker(s) in two samples in a row")
                largest = (max((w[0] for w in workers.values()), default=0),
                           max((w[1] for w in workers.values()), default=0))
                samples.append((elapsed, len(workers), largest, sum(w[2] for w in workers.values())))
                if elapsed >= warm_up and baseline is None:
                    baseline = largest
                elif baseline:
                    if largest[0] > baseline[0] * 1.10:
                        problems.append(f"worker RSS grew: {largest[0]} KiB against {baseline[0]} at warm-up")
                    if largest[1] > baseline[1] * 1.10:
                        problems.append(f"worker descriptors grew: {largest[1]} against {baseline[1]} at warm-up")
                print(f"soak {elapsed:6.0f}s: {client.ok:>9} ok, {len(client.failures)} failed, "
                      f"{len(workers)} workers, largest RSS {largest[0] / 1024:.1f} MiB, "
                      f"{largest[1]} descriptors (+{samples[-1][3]} sockets)", flush=True)
    finally:
        client.stop()
        for thread in [abuser, idle, *slowloris]:
            thread.running = False
        dropped, restarts = -1, 0
        if server.poll() is None:
            dropped = metric(metrics_port, "wsgihost_log_lines_dropped_total")
            restarts = int(metric(metrics_port, "wsgihost_worker_restarts_total"))
            os.kill(server.pid, signal.SIGTERM)
            server.wait(60)
    server_log = (work / "server.log").read_text(errors="replace")
    for sign in ("panicked", "internal error"):
        if sign in server_log:
            problems.append(f"the server log says '{sign}'")
    if " died (" in server_log:
        problems.append("a worker died (see the server log)")
    failures = client.failures + idle.failures
    if failures:
        problems.append(f"{len(failures)} failed requests, e.g. {failures[:3]}")
    if dropped:
        problems.append(f"{dropped:.0f} log lines dropped")
    held = sum(s.held_too_long for s in slowloris)
    if held:
        problems.append(f"{held} slowloris connections held past the header timeout")
    access_lines = sum(1 for _ in open(work / "access.log", "rb"))
    print()
    print(f"| soak ({options.minutes:g} min) | |")
    print("|---|---|")
    print(f"| verified requests (static, scripts, Flask, uploads 1 KiB-8 MiB, streams, pipelined) | {client.ok:,} |")
    print(f"| wrong bodies, 5xx, resets or timeouts (well-behaved clients) | {len(failures)} |")
    print(f"| connects refused | {client.refused} |")
    print(f"| idle connections found closed before reuse (the server's drain; not reused) | {client.found_closed} |")
    print(f"| aborting clients | {abuser.count:,} |")
    print(f"| slowloris connections dropped by the server | {sum(s.dropped for s in slowloris)} (held too long: {held}) |")
    print(f"| idle keep-alive connections held / reopened | {idle.count} / {idle.reopened} |")
    print(f"| worker restarts (recycling, SIGHUP, TTIN/TTOU) | {restarts} |")
    if baseline:
        rss = max(s[2][0] for s in samples if s[0] >= warm_up)
        fds = max(s[2][1] for s in samples if s[0] >= warm_up)
        print(f"| largest worker RSS: at warm-up / highest after | {baseline[0] / 1024:.1f} / {rss / 1024:.1f} MiB |")
        print(f"| largest worker descriptors (no sockets): at warm-up / highest after | {baseline[1]} / {fds} |")
    print(f"| zombies seen | {'none' if not any('zombie' in p for p in problems) else 'yes'} |")
    print(f"| access-log lines / log lines dropped | {access_lines:,} / {dropped:.0f} |")
    if problems:
        print("\nsoak FAILED:\n- " + "\n- ".join(problems), file=sys.stderr)
        print(f"(server log and access log kept in {work})", file=sys.stderr)
        sys.exit(1)
    print("\nsoak passed")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
