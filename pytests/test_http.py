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


def _send_all_then_read(server, head, body_chunks):
    """Sends `head` and the chunks (from a thread, as a client that keeps sending while the
    answer arrives), then reads to the end: (answer, how the connection ended)."""
    import threading

    sock = server.connect(timeout=10)

    def send():
        try:
            sock.sendall(head)
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
        ending = "eof"
    except ConnectionResetError:
        ending = "reset"
    sender.join()
    sock.close()
    return data, ending


def test_refusals_close_with_a_linger_not_a_reset(start_server):
    """A client still sending when its request is refused reads the answer and then a clean
    EOF: the server shuts its side and drops what still arrives (a lingering close)."""
    server = start_server("--max-body", "1000", "--access-log", "off")
    for _ in range(25):
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
        answer, ending = _send_all_then_read(server, head, [b"v" * 200_000, b"\r\n\r\n"])
        assert answer.startswith(b"HTTP/1.1 431 ") and ending == "eof", (answer[:40], ending)
        head = b"POST /input_echo.py HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"
        answer, ending = _send_all_then_read(server, head, [b"b" * 100_000] * 20)
        assert answer.startswith(b"HTTP/1.1 413 ") and ending == "eof", (answer[:40], ending)


def test_server_wide_targets_go_to_the_root_app(start_server, site):
    (site / "root.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    fields = ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'REQUEST_URI')\n"
        "    return ['|'.join(environ[k] for k in fields).encode()]\n")
    server = start_server("root:app")
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read()[2] == b"OPTIONS||*|*"
        sock.sendall(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
        assert reader.read()[2] == b"CONNECT|||example.org:443"
    answer = raw_request(server, b"GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_server_wide_targets_without_a_root_app(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = reader.read()
        assert status == 200 and "OPTIONS" in headers["allow"] and body == b""
        sock.sendall(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
        status, headers, _ = reader.read()
        assert status == 405 and "GET" in headers["allow"]


def test_header_field_size_and_count_limits(start_server):
    def status(server, fields):
        head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n"
        return int(raw_request(server, head)[9:12])

    server = start_server()
    field = lambda size: b"X: " + b"v" * (size - 3) + b"\r\n"  # noqa: E731 - name: value
    many = lambda n: b"".join(b"X-%d: v\r\n" % i for i in range(n))  # noqa: E731
    assert status(server, field(8190)) == 200
    assert status(server, field(8191)) == 431
    assert status(server, many(98)) == 200  # with Host and Connection: 100 fields
    assert status(server, many(99)) == 431
    roomy = start_server("--limit-request-field-size", "20000", "--limit-request-fields", "300")
    assert status(roomy, field(19000)) == 200
    assert status(roomy, many(250)) == 200
