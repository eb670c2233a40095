#!/usr/bin/env python3
"""Network fuzzer: random and mutated HTTP/1 requests against a running wsgihost (two
workers, the test apps, short timeouts), sent whole, in pieces, pipelined or cut short.

The server must never crash (a worker dying, a panic, an internal error in the log), must
answer with a well-formed status line or close, must never hold a connection past its
timeouts (a client that stops mid-head is dropped within --header-timeout), and must answer
a health request between batches. Requests come from a grammar of methods, targets,
versions, framing headers and bodies, and from mutations of the seed requests in
fuzz/corpus/head/. A request that breaks a rule is saved to fuzz/artifacts/.

    .venv/bin/python fuzz/network.py --seconds 60 [--command target/release/wsgihost]
"""
import argparse
import hashlib
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

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
sys.path.insert(0, str(REPO / "pytests"))

from testsite import free_port, make_site  # noqa: E402
HEADER_TIMEOUT, KEEP_ALIVE = 2.0, 2.0
# How long past its timeouts a connection may stay open (scheduling, the sweep interval).
SLACK = 1.5

METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"PATCH",
           b"TRACE", b"get", b"G\xe9T", b"", b"GET GET", b"X" * 300]
TARGETS = [b"/", b"/index.html", b"/verify.py?size=100", b"/input_echo.py", b"/sayhello.py?name=x",
           b"/env_echo.py", b"/errors.py?before", b"/errors.py?after", b"/big.py?1",
           b"/stream_slow.py", b"/%2e%2e/etc/passwd", b"/..%2f..%2fetc", b"/a/../../b", b"*",
           b"example.org:443", b"http://example.org/verify.py", b"//x", b"/caf\xe9?q=\xff",
           b"/" + b"a" * 9000, b"/?" + b"q=1&" * 2000, b"", b"/\x00", b"/a b"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/1", b"http/1.1", b"", b"HTTP/1.1 x"]
LINE_ENDS = [b"\r\n", b"\n", b"\r", b"\n\r"]


def grammar_request(rng):
    method, target, version = rng.choice(METHODS), rng.choice(TARGETS), rng.choice(VERSIONS)
    end = b"\r\n" if rng.random() < 0.9 else rng.choice(LINE_ENDS)
    headers = []
    if rng.random() < 0.9:
        headers.append(b"Host: " + rng.choice([b"x", b"example.org:8000", b"", b"a, b", b"[::1]"]))
    if rng.random() < 0.1:
        headers.append(b"Host: second")
    body = b""
    framing = rng.random()
    if framing < 0.3:
        body = rng.randbytes(rng.randint(0, 3000))
        length = len(body) + rng.choice([0, 0, 0, -1, 1, 100])
        value = rng.choice([str(max(length, 0)).encode(), b"+5", b"-1", b"1e3", b"99999999999999999999",
                            b"5, 5", b" 5", b""])
        headers.append(b"Content-Length: " + value)
        if rng.random() < 0.1:
            headers.append(b"Content-Length: " + str(len(body) + 1).encode())
    elif framing < 0.55:
        headers.append(b"Transfer-Encoding: " + rng.choice(
            [b"chunked", b"chunked", b"gzip, chunked", b"chunked, chunked", b"identity", b"chunked\x0b", b"CHUNKED"]))
        if rng.random() < 0.15:
            headers.append(b"Content-Length: 4")
        body = chunked_body(rng)
    for name, values in [(b"Connection", [b"close", b"keep-alive", b"upgrade", b"close, keep-alive"]),
                         (b"Expect", [b"100-continue", b"nothing"]),
                         (b"X-Forwarded-For", [b"1.2.3.4, 127.0.0.1", b"unknown", b"\xff"]),
                         (b"Forwarded", [b"for=_x;proto=https", b'for="[::1]:80"', b"for="]),
                         (b"Range", [b"bytes=0-1", b"bytes=-5", b"bytes=9-1", b"bytes=0-1,3-4"]),
                         (b"If-None-Match", [b"*", b'"x"']),
                         (b"Cookie", [b"a=1", b"a=" + b"b" * 9000])]:
        if rng.random() < 0.15:
            headers.append(name + b": " + rng.choice(values))
    oddities = [b"X-Fold: a" + end + b" folded", b"NoColon", b"Space : before", b": empty-name",
                b"X-Big: " + b"v" * rng.choice([100, 8200, 70000]), b"X-Null: a\x00b", b"X-\xff: y"]
    if rng.random() < 0.2:
        headers.append(rng.choice(oddities))
    if rng.random() < 0.05:
        headers += [b"X-%d: v" % i for i in range(rng.choice([99, 101, 300]))]
    head = method + b" " + target + (b" " + version if version else b"") + end
    head += b"".join(h + end for h in headers) + end
    return head + body


def chunked_body(rng):
    out = b""
    for _ in range(rng.randint(0, 4)):
        data = rng.randbytes(rng.randint(1, 500))
        size = len(data) + rng.choice([0, 0, 0, 1, -1])
        out += rng.choice([b"%x" % max(size, 0), b"%X;ext=1" % len(data), b"zz", b"-1", b"f" * 17]) + b"\r\n"
        out += data + rng.choice([b"\r\n", b"\r\n", b"", b"\n"])
    out += rng.choice([b"0\r\n\r\n", b"0\r\nTrailer: x\r\n\r\n", b"0\r\n", b""])
    return out


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        if not data:
            data += rng.randbytes(8)
        position = rng.randrange(len(data))
        if choice < 0.3:
            data[position] ^= 1 << rng.randrange(8)
        elif choice < 0.5:
            data[position:position] = rng.choice([b"\r\n", b":", b" ", b"\x00", b"\xff", rng.randbytes(3)])
        elif choice < 0.65:
            del data[position:position + rng.randint(1, 16)]
        elif choice < 0.8:
            end = min(len(data), position + rng.randint(1, 64))
            data[position:position] = data[position:end] * rng.randint(1, 50)
        else:
            data = data[:position]
    return bytes(data)


class Failure(Exception):
    pass


def exchange(port, payload, rng):
    """Sends `payload` the way `rng` picks and reads until the server closes (or stays quiet
    for 1 s). Returns what came back and whether the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            if rng.random() < 0.3:
                rest = payload
                while rest:
                    piece = rng.randint(1, 64)
                    sock.sendall(rest[:piece])
                    rest = rest[piece:]
                    if rng.random() < 0.2:
                        time.sleep(0.01)
            else:
                sock.sendall(payload)
            if rng.random() < 0.2:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed early (a refusal): read what it said
        answer, closed = b"", False
        sock.settimeout(0.3)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline and not complete(answer):
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                answer += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
    if answer and not (answer.startswith(b"HTTP/1.1 ") and answer[9:12].isdigit() and answer[12:13] == b" "):
        raise Failure(f"malformed answer: {answer[:80]!r}")
    return answer, closed


def complete(answer):
    """Whether `answer` holds one whole response framed by Content-Length (then there is
    no need to wait for more)."""
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value)
    return False


def silent_client(port):
    """Sends half a head and goes quiet: the server must drop it within its header timeout."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT + SLACK + 5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        try:
            while sock.recv(65536):
                pass
        except (socket.timeout, ConnectionResetError):
            pass
    took = time.monotonic() - started
    if took > HEADER_TIMEOUT + SLACK:
        raise Failure(f"a client silent mid-head was held {took:.1f} s (--header-timeout {HEADER_TIMEOUT})")


def healthy(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(b"GET /verify.py?size=10&seed=h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"h:h:h:h:h:")


def start_server(command, work, port):
    make_site(work)
    log = open(work / "server.log", "wb")
    process = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
         "--header-timeout", str(HEADER_TIMEOUT), "--keep-alive", str(KEEP_ALIVE),
         "--io-timeout", "3", "--timeout", "5", "--max-body", "1000000", "--access-log", "off"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if healthy(port):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start:\n{(work / 'server.log').read_text()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--command", default=str(REPO / "target" / "release" / "wsgihost"))
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args()
    seeds = [p.read_bytes() for p in sorted((FUZZ / "corpus" / "head").iterdir())]
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="wsgihost-netfuzz-"))
    process = start_server([options.command], work, port)
    counts = {"cases": 0, "answered": 0, "closed": 0, "batches": 0}
    statuses = {}
    failures = []
    lock = threading.Lock()
    stop_at = time.monotonic() + options.seconds

    def fuzz_thread(index):
        rng = random.Random(options.seed * 1000 + index)
        while time.monotonic() < stop_at and not failures:
            if rng.random() < 0.5:
                payload = grammar_request(rng)
            else:
                payload = mutate(rng, rng.choice(seeds))
            if rng.random() < 0.1:  # pipelined
                payload += grammar_request(rng) + mutate(rng, rng.choice(seeds))
            try:
                answer, closed = exchange(port, payload, rng)
            except Failure as failure:
                with lock:
                    failures.append((str(failure), payload))
                return
            except OSError:
                continue  # our side timed out connecting under load; not the server's fault
            with lock:
                counts["cases"] += 1
                counts["answered"] += bool(answer)
                counts["closed"] += closed
                if answer:
                    statuses[answer[9:10].decode() + "xx"] = statuses.get(answer[9:10].decode() + "xx", 0) + 1

    try:
        while time.monotonic() < stop_at and not failures:
            threads = [threading.Thread(target=fuzz_thread, args=(i,)) for i in range(options.threads)]
            batch_end = min(stop_at, time.monotonic() + 5)
            stop_batch = stop_at
            stop_at = batch_end
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            stop_at = stop_batch
            counts["batches"] += 1
            try:
                silent_client(port)
            except Failure as failure:
                failures.append((str(failure), b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "))
            if process.poll() is not None:
                failures.append((f"the server exited with {process.returncode}", b""))
            elif not healthy(port):
                failures.append(("the health request failed between batches", b""))
            log = (work / "server.log").read_text(errors="replace")
            for sign in ("died", "panicked", "internal error"):
                if sign in log:
                    failures.append((f"the server log says '{sign}':\n{log[-3000:]}", b""))
                    break
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(30)
    print(f"network fuzz: {counts['cases']} requests in {counts['batches']} batches, "
          f"{counts['answered']} answered ({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}), "
          f"{counts['closed']} closed by the server; seed {options.seed}")
    if failures:
        reason, payload = failures[0]
        artifacts = FUZZ / "artifacts"
        artifacts.mkdir(exist_ok=True)
        path = artifacts / f"network-{hashlib.sha1(payload).hexdigest()}"
        path.write_bytes(payload)
        print(f"network fuzz: FAILED: {reason}\n  input: {path}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
