"""Streaming both ways with bounded memory: generator responses flow chunk by chunk, a
client that leaves stops the generator, and 1 GiB up- and downloads keep RSS flat."""
import os
import threading
import time

import requests

from conftest import ResponseReader


def rss(server):
    return requests.get(server.url + "/rss.py").json()


def test_first_chunk_arrives_before_the_generator_finishes(server):
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"GET /stream_slow.py HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"first\n" not in data:
            data += sock.recv(65536)
        first_after = time.monotonic() - started
        reader = ResponseReader(sock)
        reader.buf = data
        status, headers, body = reader.read()
        total = time.monotonic() - started
    assert first_after < 0.5, first_after
    assert total >= 1.0
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"first\nsecond\n"


def test_client_disconnect_stops_the_generator(server, tmp_path):
    marker = tmp_path / "exit"
    sock = server.connect()
    sock.sendall(f"GET /generator_exit.py?{marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sock.recv(65536)
    sock.close()
    deadline = time.monotonic() + 10
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "GeneratorExit"
    assert requests.get(server.url + "/").status_code == 200


def test_one_gib_upload_keeps_memory_bounded(server):
    before = rss(server)["VmRSS"]
    size = 1 << 30
    block = b"u" * (1 << 20)
    with server.connect(timeout=60) as sock:
        sock.sendall(b"POST /input_echo.py?mode=count HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            sock.sendall(block)
        status, _, body = ResponseReader(sock).read()
    assert (status, int(body)) == (200, size)
    peak = rss(server)["VmHWM"]
    assert peak - before < 64 * 1024, f"RSS grew by {(peak - before) // 1024} MiB"


def test_one_gib_chunked_upload_keeps_memory_bounded(server):
    before = rss(server)["VmRSS"]
    block = b"c" * (1 << 20)
    chunk = b"%x\r\n" % len(block) + block + b"\r\n"
    with server.connect(timeout=60) as sock:
        sock.sendall(b"POST /input_echo.py?mode=count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(1024):
            sock.sendall(chunk)
        sock.sendall(b"0\r\n\r\n")
        status, _, body = ResponseReader(sock).read()
    assert (status, int(body)) == (200, 1 << 30)
    assert rss(server)["VmHWM"] - before < 64 * 1024


def test_one_gib_download_via_file_wrapper_uses_sendfile(server, tmp_path):
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(1 << 30)
        f.seek(-5, os.SEEK_END)
        f.write(b"TAIL!")
    before = rss(server)["VmRSS"]
    received = 0
    tail = b""
    with server.connect(timeout=60) as sock:
        sock.sendall(f"GET /file_wrap.py?{path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        head, _, first = head.partition(b"\r\n\r\n")
        assert b"Content-Length: 1073741824" in head
        received = len(first)
        tail = first[-5:]
        while received < 1 << 30:
            chunk = sock.recv(1 << 20)
            assert chunk
            received += len(chunk)
            tail = (tail + chunk)[-5:]
    assert tail == b"TAIL!"
    assert rss(server)["VmHWM"] - before < 64 * 1024


def test_max_connections_pauses_accepting_without_failing(start_server):
    server = start_server("--max-connections", "4", "--keep-alive", "2")
    held = [server.connect() for _ in range(4)]
    for sock in held:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).read()[0] == 200
    result = {}

    def fifth():
        started = time.monotonic()
        result["status"] = requests.get(server.url + "/", timeout=10).status_code
        result["took"] = time.monotonic() - started

    thread = threading.Thread(target=fifth)
    thread.start()
    time.sleep(0.5)
    assert "status" not in result, "the fifth connection must wait at the limit"
    for sock in held:
        sock.close()
    thread.join()
    assert result["status"] == 200
    assert server.process.poll() is None
