"""Verifying HTTP clients, for the tests and the soak (benches/soak): threads that each
keep one keep-alive connection and send requests whose answers they check - GETs byte for
byte, uploads by sha256 - reconnecting when the server closes a connection after a
`Connection: close` answer. Anything else (an EOF or a reset before the answer, a wrong
body, a 5xx) is a failure.

A check makes one or more requests (several are pipelined) and says how to judge each
answer; `VerifyingClient` runs a weighted mix of checks. pytests/apps/verify.py answers
them."""
import hashlib
import random
import select
import socket
import threading
import time

PATH = "/verify.py"


class ResponseReader:
    """Reads HTTP/1.1 responses (Content-Length, chunked or until close) one after another
    from a socket, keeping bytes that belong to the next response."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed early; have {self.buf[:200]!r}")
            self.buf += chunk

    def _take(self, n):
        self._fill(n)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill(len(self.buf) + 1)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read(self, method="GET"):
        """Returns (status, headers with lower-case names, body)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill(len(self.buf) + 1)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if method == "HEAD" or status in (204, 304) or status < 200:
            body = b""
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                body += self._take(size)
                assert self._take(2) == b"\r\n"
                if size == 0:
                    break
        else:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            body, self.buf = self.buf, b""
        return status, headers, body


def expected_body(size, seed):
    unit = f"{seed}:".encode()
    return (unit * (size // len(unit) + 1))[:size]


def chunked(body, rng):
    """`body` in chunks of random sizes, as Transfer-Encoding: chunked sends it."""
    out, rest = [], body
    while rest:
        size = rng.randint(1, max(1, min(len(rest), 256 * 1024)))
        out += [b"%x\r\n" % size, rest[:size], b"\r\n"]
        rest = rest[size:]
    return b"".join(out) + b"0\r\n\r\n"


def equals(expected):
    return lambda status, headers, body: (
        None if status == 200 and body == expected else f"status {status}, body {body[:60]!r}")


def get_check(path=PATH, largest=32 * 1024, stream=False):
    """GET `path`?size=N&seed=S: N bytes derived from S (streamed in chunks if asked)."""
    def make(rng, seed):
        size = rng.randint(1, largest)
        extra = f"&stream={rng.randint(1, 64 * 1024)}" if stream else ""
        request = f"GET {path}?size={size}&seed={seed}{extra} HTTP/1.1\r\nHost: x\r\n\r\n"
        return [(request.encode(), "GET", equals(expected_body(size, seed)))]
    return make


def post_check(path=PATH, smallest=1, largest=64 * 1024, chunked_share=0.0):
    """POST a random body (Content-Length, or chunked); the answer is its sha256 and size."""
    def make(rng, seed):
        body = rng.randbytes(rng.randint(smallest, largest))
        expected = f"{hashlib.sha256(body).hexdigest()} {len(body)}".encode()
        if rng.random() < chunked_share:
            framing, payload = "Transfer-Encoding: chunked", chunked(body, rng)
        else:
            framing, payload = f"Content-Length: {len(body)}", body
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode()
        return [(head + payload, "POST", equals(expected))]
    return make


def static_check(files):
    """GET one of `files` ({url path: content})."""
    paths = sorted(files)

    def make(rng, seed):
        path = rng.choice(paths)
        return [(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), "GET", equals(files[path]))]
    return make


def pipelined(*checks, most=8):
    """Several requests from `checks` sent at once; each answer checked in order."""
    def make(rng, seed):
        batch = []
        for index in range(rng.randint(2, most)):
            batch += rng.choice(checks)(rng, f"{seed}-{index}")
        return batch
    return make


def dropped(sock):
    """Whether an idle keep-alive connection was closed by the server: readable without a
    request in flight means EOF (or stray bytes, equally unusable)."""
    return bool(select.select([sock], [], [], 0)[0])


class VerifyingClient:
    """`connections` threads, each on its own keep-alive connection, running `checks`
    (a list of (weight, check)); by default GETs and POSTs of up to 32/64 KiB to `path`."""

    def __init__(self, port, connections=16, path=PATH, host="127.0.0.1", checks=None,
                 pause=0.0, tls=None):
        self.port, self.host, self.pause = port, host, pause
        # An ssl.SSLContext: connections speak HTTPS (verifying the server as "localhost").
        self.tls = tls
        self.checks = checks or [(1, get_check(path)), (1, post_check(path))]
        self.ok = 0
        self.failures = []
        # The worker that last answered on the connection of each failure (None: none had).
        self.failed_on = []
        self.pids = set()
        self.reconnects = 0
        # Idle connections the server had closed, noticed before reusing them.
        self.found_closed = 0
        # Connects refused (the server is gone, or draining before its exit): not failures
        # of a request, but tests that expect the server up assert there were none.
        self.refused = 0
        # (when it was sent, seconds to its last answer) for each batch that succeeded.
        self.latencies = []
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(connections)]
        for thread in self.threads:
            thread.start()

    def fail(self, what, pid=None):
        with self.lock:
            self.failures.append(what)
            self.failed_on.append(pid)

    def run(self, index):
        rng = random.Random(index)
        weights = [weight for weight, _ in self.checks]
        sock = None
        reader = None
        count = 0
        pid = None
        while self.running:
            if sock is None:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=30)
                    if self.tls:
                        sock = self.tls.wrap_socket(sock, server_hostname="localhost")
                except ConnectionRefusedError:
                    with self.lock:
                        self.refused += 1
                    time.sleep(0.05)
                    continue
                except OSError as err:
                    self.fail(f"connect: {err!r}")
                    time.sleep(0.05)
                    continue
                reader = ResponseReader(sock)
                pid = None
                with self.lock:
                    self.reconnects += 1
            if count and dropped(sock):
                # As urllib3, curl, Go and browsers do: a connection the server closed
                # while it sat idle is not reused (its FIN has arrived).
                sock.close()
                sock, count = None, 0
                with self.lock:
                    self.found_closed += 1
                continue
            count += 1
            check = rng.choices(self.checks, weights)[0][1]
            batch = check(rng, f"{index}-{count}")
            closed = False
            sent = time.monotonic()
            answered = True
            try:
                sock.sendall(b"".join(request for request, _, _ in batch))
                for _, method, judge in batch:
                    status, headers, answer = reader.read(method)
                    error = judge(status, headers, answer)
                    if error:
                        answered = False
                        self.fail(f"{method}: {error}", pid)
                    else:
                        pid = headers.get("x-pid", pid)
                        with self.lock:
                            self.ok += 1
                            self.pids.add(pid)
                    if headers.get("connection", "").lower() == "close":
                        closed = True
                        break
            except (OSError, ConnectionError) as err:
                self.fail(f"{batch[0][1]} on a connection that had served {count - 1}: {err!r}", pid)
                answered = False
                closed = True
            if answered:
                with self.lock:
                    self.latencies.append((sent, time.monotonic() - sent))
            if closed:
                sock.close()
                sock, count = None, 0
            if self.pause:
                time.sleep(self.pause)
        if sock is not None:
            sock.close()

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join(60)
        return self

    def summary(self):
        return (f"{self.ok} ok, {len(self.failures)} failed, {self.refused} connects refused: "
                f"{self.failures[:5]}")
