#!/usr/bin/env python3
"""Measures 1 GiB up- and downloads through a running wsgihost (started with
--scripts pytests/apps): throughput on loopback and the worker's RSS before/peak, and
checks that every byte arrived. With --cafile PEM it speaks HTTPS, verifying the server's
certificate against that file (e.g. one started with --certfile/--keyfile).
Usage: benches/transfer.py [PORT] [--cafile PEM]"""
import argparse
import json
import socket
import ssl
import tempfile
import time
import urllib.request

options = argparse.ArgumentParser()
options.add_argument("port", type=int, nargs="?", default=8000)
options.add_argument("--cafile")
options = options.parse_args()
PORT = options.port
TLS = ssl.create_default_context(cafile=options.cafile) if options.cafile else None
GIB = 1 << 30


def connect():
    sock = socket.create_connection(("127.0.0.1", PORT))
    return TLS.wrap_socket(sock, server_hostname="127.0.0.1") if TLS else sock


def rss():
    scheme = "https" if TLS else "http"
    with urllib.request.urlopen(f"{scheme}://127.0.0.1:{PORT}/rss.py", context=TLS) as response:
        return json.load(response)


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    return data.partition(b"\r\n\r\n")


def upload(chunked):
    block = b"u" * (1 << 20)
    started = time.monotonic()
    with connect() as sock:
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
        while len(body) < len(str(GIB)):
            body += sock.recv(100)
    assert head.startswith(b"HTTP/1.1 200") and body == str(GIB).encode(), (head, body)
    return time.monotonic() - started


def download(path):
    started = time.monotonic()
    with connect() as sock:
        sock.sendall(f"GET /file_wrap.py?{path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head, _, first = read_head(sock)
        received = len(first)
        assert not first.strip(b"\0"), "the download was not all zeros"
        while received < GIB:
            part = sock.recv(1 << 20)
            assert part and not part.strip(b"\0"), "the download ended early or was not all zeros"
            received += len(part)
    assert received == GIB, received
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
    report("download 1 GiB file_wrapper" + (" (encrypted in pieces)" if TLS else "/sendfile"),
           download(sparse.name), before)
