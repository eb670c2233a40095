#!/usr/bin/env python3
"""Measures 1 GiB up- and downloads through a running wsgihost (started with
--scripts pytests/apps): throughput on loopback and the worker's RSS before/peak.
Usage: benches/transfer.py [PORT]"""
import json
import socket
import sys
import tempfile
import time
import urllib.request

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
GIB = 1 << 30


def rss():
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/rss.py") as response:
        return json.load(response)


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    return data.partition(b"\r\n\r\n")


def upload(chunked):
    block = b"u" * (1 << 20)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", PORT)) as sock:
        if chunked:
            sock.sendall(b"POST /input_echo.py?mode=count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            frame = b"%x\r\n" % len(block) + block + b"\r\n"
            for _ in range(1024):
                sock.sendall(frame)
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(b"POST /input_echo.py?mode=count HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % GIB)
            for _ in range(1024):
                sock.sendall(block)
        head, _, body = read_head(sock)
    return time.monotonic() - started


def download(path):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", PORT)) as sock:
        sock.sendall(f"GET /file_wrap.py?{path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head, _, first = read_head(sock)
        received = len(first)
        while received < GIB:
            received += len(sock.recv(1 << 20))
    return time.monotonic() - started


def report(name, seconds, before):
    after = rss()
    print(f"{name}: {GIB / seconds / 1e6:.0f} MB/s, RSS before {before['VmRSS'] // 1024} MiB, "
          f"peak {after['VmHWM'] // 1024} MiB")


before = rss()
report("upload 1 GiB Content-Length", upload(False), before)
before = rss()
report("upload 1 GiB chunked", upload(True), before)
with tempfile.NamedTemporaryFile() as sparse:
    sparse.truncate(GIB)
    before = rss()
    report("download 1 GiB file_wrapper/sendfile", download(sparse.name), before)
