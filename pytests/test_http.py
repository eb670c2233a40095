"""HTTP/1.1 on the wire: bad heads, limits, framing, pipelining, 100-continue, timeouts."""
import socket
import time

import requests

from conftest import ResponseReader, is_closed, raw_request


def status_of(answer):
    return int(answer.split(b" ", 2)[1])


def test_bad_request_heads_get_400_and_close(server):
    bad = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
    ]
    for request in bad:
        answer = raw_request(server, request)
        assert status_of(answer) == 400, (request, answer[:60])
        assert b"Connection: close" in answer
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        assert len(body) == length
    assert requests.get(server.url + "/").status_code == 200


def test_limits_414_431_501_417(server):
    assert status_of(raw_request(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")) == 414
    many = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    assert status_of(raw_request(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")) == 431
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 70000 + b"\r\n\r\n"
    assert status_of(raw_request(server, huge)) == 431
    gzip = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    assert status_of(raw_request(server, gzip)) == 501
    odd = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx"
    assert status_of(raw_request(server, odd)) == 417


def test_fuzzed_heads_never_kill_the_server(server):
    import random

    rng = random.Random(1234)
    seed = b"GET /index.html?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    for _ in range(200):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            data[position] = rng.randrange(256)
        try:
            with server.connect(timeout=2) as sock:
                sock.sendall(bytes(data) + b"\r\n\r\n")
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
        except OSError:
            pass
    assert requests.get(server.url + "/").status_code == 200
    assert "panicked" not in server.log()


def test_pipelined_requests_answer_in_order(server):
    with server.connect() as sock:
        sock.sendall(
            b"GET /sayhello.py?name=one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /input_echo.py HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /sayhello.py?name=three HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        reader = ResponseReader(sock)
        assert b"Hello, one!" in reader.read()[2]
        assert b"wsgihost is running" in reader.read()[2]
        assert reader.read()[2] == b"hello"
        assert b"Hello, three!" in reader.read()[2]


def test_unread_body_does_not_become_the_next_request(server):
    with server.connect() as sock:
        smuggled = b"GET /sayhello.py?name=SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(
            b"POST /input_echo.py?mode=ignore HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
            + smuggled
            + b"GET /sayhello.py?name=real HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        reader = ResponseReader(sock)
        assert reader.read()[2] == b"ignored"
        body = reader.read()[2]
        assert b"Hello, real!" in body and b"SMUGGLED" not in body


def test_connection_close_and_http10(server):
    answer = raw_request(server, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Connection: close" in answer and answer.count(b"HTTP/1.1 200") == 1
    with server.connect() as sock:
        sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        ResponseReader(sock).read()
        assert is_closed(sock)


def test_expect_100_continue(server):
    with server.connect() as sock:
        sock.sendall(b"POST /input_echo.py HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        status, _, body = ResponseReader(sock).read()
        assert (status, body) == (200, b"hello")


def test_max_body_413_before_the_app_runs(start_server):
    server = start_server("--max-body", "1000")
    answer = raw_request(server, b"POST /input_echo.py HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
    assert status_of(answer) == 413 and b"Connection: close" in answer
    chunked = b"POST /input_echo.py HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n"
    answer = raw_request(server, chunked)
    assert status_of(answer) == 413 and b"Connection: close" in answer
    assert requests.post(server.url + "/input_echo.py", data=b"x" * 1000).content == b"x" * 1000


def test_slowloris_head_is_dropped(start_server):
    server = start_server("--header-timeout", "1")
    with server.connect(timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        for _ in range(10):
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            time.sleep(0.3)
            if is_closed(sock, timeout=0.01):
                break
        assert is_closed(sock, timeout=3)
        assert time.monotonic() - started < 4
    assert requests.get(server.url + "/").status_code == 200


def test_idle_keep_alive_connection_is_closed(start_server):
    server = start_server("--keep-alive", "1")
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        ResponseReader(sock).read()
        assert is_closed(sock, timeout=3)


def test_absolute_form_target(server):
    with server.connect() as sock:
        sock.sendall(b"GET http://example.org/env_echo.py/abs?q=1 HTTP/1.1\r\nHost: example.org\r\n\r\n")
        import json

        env = json.loads(ResponseReader(sock).read()[2])
    assert env["PATH_INFO"] == "/abs" and env["QUERY_STRING"] == "q=1"
