#!/usr/bin/env python3
"""Instructions per hello-world request on the request path, counted by callgrind (this
machine's VM has no hardware counters for `perf stat`). For each binary given (default:
target/release/wsgihost), the server runs under valgrind with collection only inside
`server::serve::serve` (reading, parsing, routing, the WSGI call, writing), its worker
writing the count when it exits. A sample is two runs, one with N more keep-alive
requests than the other, so start-up and exit cancel out: (count2 - count1) / N. It prints
the median of ROUNDS samples per binary (interleaved) and, with two binaries, the ratio
of the first to the second.

    benches/instructions.py target/release/wsgihost /tmp/before/wsgihost
"""
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "benches" / "apps"
REQUESTS = int(os.environ.get("INSTRUCTIONS_REQUESTS", "2000"))
ROUNDS = int(os.environ.get("INSTRUCTIONS_ROUNDS", "5"))
PORT = 8766
WARM_UP = 200


def requests(count):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    for _ in range(count):
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200, response.status
        response.read()
    conn.close()


def run(binary, count):
    """Instructions the worker counted in serve() for a warm-up and `count` requests."""
    with tempfile.TemporaryDirectory() as out:
        command = ["valgrind", "--tool=callgrind", "--collect-atstart=no",
                   "--toggle-collect=*server::serve::serve*", f"--callgrind-out-file={out}/cg.%p",
                   binary, "--bind", f"127.0.0.1:{PORT}", "--access-log", "off", "--threads", "4",
                   "benchapp:app"]
        env = {**os.environ, "PYTHONPATH": str(APPS)}
        server = subprocess.Popen(command, env=env, cwd=out, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while True:
                try:
                    requests(WARM_UP)
                    break
                except OSError:
                    assert time.time() < deadline, "the server did not start under valgrind"
                    time.sleep(0.5)
            requests(count)
        finally:
            server.terminate()
            server.wait(timeout=120)
        totals = [int(re.search(r"^summary:\s+(\d+)", path.read_text(errors="replace"), re.M).group(1))
                  for path in Path(out).glob("cg.*")]
        return sum(totals)


def main():
    binaries = sys.argv[1:] or [str(REPO / "target" / "release" / "wsgihost")]
    samples = {binary: [] for binary in binaries}
    for _ in range(ROUNDS):
        for binary in binaries:
            samples[binary].append((run(binary, REQUESTS) - run(binary, 0)) / REQUESTS)
    medians = []
    for binary in binaries:
        median = statistics.median(samples[binary])
        medians.append(median)
        print(f"{binary}: {median:,.0f} instructions per request (median of {ROUNDS}: "
              + ", ".join(f"{s:,.0f}" for s in samples[binary]) + ")")
    if len(medians) == 2:
        print(f"ratio {medians[0] / medians[1]:.4f} ({binaries[0]} / {binaries[1]})")


if __name__ == "__main__":
    main()
