#!/usr/bin/env python3
"""A rolling deploy behind HAProxy, wsgihost against gunicorn gthread: two instances (2
workers x 4 threads, pytests/apps/verify.py) behind deploy/haproxy/haproxy.cfg, a
verifying client (8 keep-alive connections, GETs checked byte for byte, POSTs by sha256)
through HAProxy, and meanwhile each instance in turn gets SIGTERM, is started again and
waits until it answers and HAProxy has it UP. Reported: failed requests, and p50/p99 latency during the
deploy.

wsgihost runs as the README says (--health-path / --shutdown-delay 2 --proxy-protocol v2,
HAProxy checking /readyz). gunicorn uses its own graceful stop (SIGTERM, --graceful-timeout
30; it has no readiness endpoint or shutdown delay, so HAProxy checks the app's /readyz,
which the app answers, and sends no PROXY header). Each is measured with HAProxy's
retries as shipped, and with `retries 0` (a balancer that does not retry, as a Kubernetes
Service or an NLB does not): what the shutdown delay buys shows there.

Servers on core 0, HAProxy and the client on core 1; rounds interleaved.

    benches/.venv/bin/python benches/deploy.py [ROUNDS]      # default 2
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "pytests"))

from haproxy import HAPROXY, Haproxy  # noqa: E402
from testsite import free_port, wait_for  # noqa: E402
from verifier import VerifyingClient  # noqa: E402

VENV_BIN = Path(sys.executable).parent
APPS = REPO / "pytests" / "apps"


def command(server, port):
    if server == "wsgihost":
        return [str(REPO / "target" / "release" / "wsgihost"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--threads", "4", "--access-log", "off", "--health-path", "/", "--shutdown-delay", "2",
                "--proxy-protocol", "v2", "--chdir", str(APPS), "verify:application"]
    return [str(VENV_BIN / "gunicorn"), "-w", "2", "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{port}",
            "--graceful-timeout", "30", "--chdir", str(APPS), "verify:application"]


def start(server, port):
    process = subprocess.Popen(["taskset", "-c", "0", *command(server, port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    return process


# A PROXY v2 LOCAL header (a balancer's own check): wsgihost here requires one from 127.0.0.1.
LOCAL_HEADER = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"


def answers(server, port):
    preface = LOCAL_HEADER if server == "wsgihost" else b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(preface + b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def edit_for(server, retries):
    def edit(config):
        if server != "wsgihost":
            config = config.replace(" send-proxy-v2 check-send-proxy", "")
        if not retries:
            config = (config.replace("    retries 3\n", "    retries 0\n")
                      .replace("    option redispatch 1\n", "")
                      .replace("    retry-on conn-failure empty-response response-timeout\n", ""))
        return config
    return edit


def deploy(server, retries):
    ports = {"a": free_port(), "b": free_port()}
    instances = {name: start(server, port) for name, port in ports.items()}
    folder = tempfile.mkdtemp(prefix="wsgihost-deploy-")
    proxy = Haproxy(folder, free_port(), ports, edit=edit_for(server, retries), cpus="1")
    front = int(Path(folder, "haproxy.cfg").read_text().split("bind 127.0.0.1:", 1)[1].split()[0])
    try:
        up = lambda name: wait_for(lambda: proxy.states()[name] == "UP", timeout=30,
                                   ignoring=(OSError, IndexError, KeyError))
        assert up("a") and up("b"), "HAProxy did not see both instances up"
        client = VerifyingClient(front, connections=8, pause=0.002)
        time.sleep(1)
        began = time.monotonic()
        for name in ("a", "b"):
            instances[name].send_signal(signal.SIGTERM)
            instances[name].wait(60)
            instances[name] = start(server, ports[name])
            # As a deploy tool would: the new instance answers, and HAProxy has it up.
            assert wait_for(lambda: answers(server, ports[name]), timeout=30), f"{name} did not start"
            assert up(name), f"{name} did not come back"
            time.sleep(0.5)
        ended = time.monotonic()
        client.stop()
    finally:
        proxy.stop()
        for process in instances.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
    during = sorted(took for sent, took in client.latencies if began <= sent <= ended)
    p = lambda q: during[min(len(during) - 1, int(q * len(during)))] * 1000 if during else float("nan")
    return {"failed": len(client.failures), "ok": client.ok, "p50": p(0.5), "p99": p(0.99),
            "seconds": ended - began, "examples": client.failures[:3]}


def main():
    if HAPROXY is None:
        sys.exit("benches/deploy.py needs Debian's haproxy (apt-get install haproxy)")
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    cases = [(server, retries) for retries in (True, False) for server in ("wsgihost", "gunicorn")]
    results = {case: [] for case in cases}
    for round_number in range(rounds):
        for case in cases:
            result = deploy(*case)
            results[case].append(result)
            print(f"round {round_number + 1} {case[0]:9} retries={'on ' if case[1] else 'off'} "
                  f"failed {result['failed']:4} of {result['ok'] + result['failed']:6}  "
                  f"p50 {result['p50']:6.2f} ms  p99 {result['p99']:7.2f} ms  ({result['seconds']:.1f} s) "
                  f"{result['examples'][:1]}", flush=True)
    print("\n| server | HAProxy retries | failed requests (per round) | p99 during the deploy, median (ms) |")
    print("|---|---|---|---|")
    for (server, retries), runs in results.items():
        failed = ", ".join(str(r["failed"]) for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        print(f"| {server} | {'as shipped' if retries else 'retries 0'} | {failed} | {p99:.1f} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
