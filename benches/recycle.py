#!/usr/bin/env python3
"""What workers stopping costs clients, wsgihost against gunicorn gthread: a verifying
keep-alive client (64 connections; GETs checked byte for byte, POSTs by sha256) runs while
workers are recycled by --max-requests, and while the master gets SIGHUP, SIGTTIN and
SIGTTOU. Both servers: 2 workers x 4 threads, the same app (pytests/apps/verify.py).

    benches/.venv/bin/python benches/recycle.py [SECONDS]     # default 25 per case
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "pytests"))

from testsite import free_port, wait_for  # noqa: E402
from verifier import VerifyingClient  # noqa: E402

VENV_BIN = Path(sys.executable).parent
APPS = REPO / "pytests" / "apps"


def command(server, port, recycle):
    if server == "wsgihost":
        extra = ["--max-requests", "3000", "--max-requests-jitter", "300"] if recycle else []
        return [str(REPO / "target" / "release" / "wsgihost"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--threads", "4", "--access-log", "off", "--chdir", str(APPS), *extra, "verify:application"]
    extra = ["--max-requests", "3000", "--max-requests-jitter", "300"] if recycle else []
    return [str(VENV_BIN / "gunicorn"), "-w", "2", "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{port}",
            "--chdir", str(APPS), *extra, "verify:application"]


def run(server, case, seconds):
    port = free_port()
    process = subprocess.Popen(command(server, port, case == "max-requests"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        import socket
        assert wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
                        timeout=30, ignoring=(OSError,))
        time.sleep(1)
        client = VerifyingClient(port, connections=64)
        signals = {"signals": [(seconds * 0.2, signal.SIGHUP), (seconds * 0.5, signal.SIGTTIN),
                               (seconds * 0.7, signal.SIGTTOU)]}.get(case, [])
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(0.1)
            while signals and time.monotonic() - started >= signals[0][0]:
                os.kill(process.pid, signals.pop(0)[1])
        client.stop()
        return client
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(60)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 25
    print("| case | server | verified requests | failed | connections found closed before reuse |")
    print("|---|---|---|---|---|")
    for case in ("max-requests", "signals"):
        for server in ("wsgihost", "gunicorn"):
            client = run(server, case, seconds)
            print(f"| {case} | {server} | {client.ok:,} | {len(client.failures)} | {client.found_closed} |",
                  flush=True)
            for failure in client.failures[:3]:
                print(f"|  | e.g. | {failure} | | |")


if __name__ == "__main__":
    main()
