"""A verifying keep-alive client: threads that each keep one connection open and send
GETs (bodies checked byte for byte) and POSTs (checked by sha256) to pytests/apps/verify.py,
reconnecting when the server closes a connection after a `Connection: close` answer.
Anything else - an EOF or reset before the answer, a wrong body, a 5xx - is a failure."""
import hashlib
import random
import socket
import threading
import time

from conftest import ResponseReader

PATH = "/verify.py"


def expected_body(size, seed):
    unit = f"{seed}:".encode()
    return (unit * (size // len(unit) + 1))[:size]


class VerifyingClient:
    def __init__(self, port, connections=16, path=PATH, host="127.0.0.1", post_share=0.5,
                 max_post=64 * 1024, pause=0.0):
        self.port, self.path, self.host = port, path, host
        self.post_share, self.max_post, self.pause = post_share, max_post, pause
        self.ok = 0
        self.failures = []
        self.pids = set()
        self.reconnects = 0
        # Connects refused (the server is gone, or draining before its exit): not failures
        # of a request, but tests that expect the server up assert there were none.
        self.refused = 0
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(connections)]
        for thread in self.threads:
            thread.start()

    def fail(self, what):
        with self.lock:
            self.failures.append(what)

    def run(self, index):
        rng = random.Random(index)
        sock = None
        reader = None
        count = 0
        while self.running:
            if sock is None:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=15)
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
                with self.lock:
                    self.reconnects += 1
            count += 1
            seed = f"{index}-{count}"
            if rng.random() < self.post_share:
                body = rng.randbytes(rng.randint(1, self.max_post))
                request = (f"POST {self.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
                           f"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + body
                expected = f"{hashlib.sha256(body).hexdigest()} {len(body)}".encode()
                method = "POST"
            else:
                size = rng.randint(1, 32 * 1024)
                request = f"GET {self.path}?size={size}&seed={seed} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                expected = expected_body(size, seed)
                method = "GET"
            try:
                sock.sendall(request)
                status, headers, answer = reader.read(method)
            except (OSError, ConnectionError) as err:
                self.fail(f"{method} on a connection that had served {count - 1}: {err!r}")
                sock.close()
                sock, count = None, 0
                continue
            if status != 200 or answer != expected:
                self.fail(f"{method}: status {status}, body {answer[:80]!r}")
            else:
                with self.lock:
                    self.ok += 1
                    self.pids.add(headers.get("x-pid"))
            if headers.get("connection", "").lower() == "close":
                sock.close()
                sock, count = None, 0
            if self.pause:
                time.sleep(self.pause)
        if sock is not None:
            sock.close()

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join(30)
        return self

    def summary(self):
        return (f"{self.ok} ok, {len(self.failures)} failed, {self.refused} connects refused: "
                f"{self.failures[:5]}")
