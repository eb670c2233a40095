"""PEP 3333 behaviour of the embedded call: environ, wsgi.input, start_response, write(),
lazy iteration with close(), framing, errors, and wsgiref's validator."""
import socket
import time

import pytest
import requests

from conftest import ResponseReader, is_closed, raw_request


def test_environ_has_every_required_key(server):
    response = requests.get(
        server.url + "/env_echo.py/p?a=1",
        headers={"X-Custom": "v1", "Content-Type": "text/x-test", "Cookie": "a=1"},
    )
    env = response.json()
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["REQUEST_URI"] == env["RAW_URI"] == "/env_echo.py/p?a=1"
    assert env["HTTP_X_CUSTOM"] == "v1"
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_COOKIE"] == "a=1"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is False
    assert env["wsgi.input"] == "InputStream"
    assert env["wsgi.errors"] == "TextIOWrapper"
    assert env["wsgi.file_wrapper"] == "type"


def test_duplicate_headers_are_joined(server):
    request = (
        b"GET /env_echo.py HTTP/1.1\r\nHost: example.org:8080\r\nX-Dup: a\r\nX-Dup: b\r\n"
        b"Cookie: x=1\r\nCookie: y=2\r\nX_Spoof: 1\r\nConnection: close\r\n\r\n"
    )
    import json

    with server.connect() as sock:
        sock.sendall(request)
        env = json.loads(ResponseReader(sock).read()[2])
    assert env["HTTP_X_DUP"] == "a, b"
    assert env["HTTP_COOKIE"] == "x=1; y=2"
    assert env["SERVER_NAME"] == "example.org"
    assert "HTTP_X_SPOOF" not in env


def test_path_info_is_decoded_latin1(server):
    with server.connect() as sock:
        sock.sendall(b"GET /env_echo.py/caf%C3%A9/%2F/\xe9 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = ResponseReader(sock).read()
    import json

    env = json.loads(body)
    assert status == 200
    assert env["PATH_INFO"] == "/caf\xc3\xa9///\xe9"
    assert env["RAW_URI"] == "/env_echo.py/caf%C3%A9/%2F/\xe9"


def test_input_read_modes(server):
    body = b"line one\nline two\nlast"
    url = server.url + "/input_echo.py?mode="
    assert requests.post(url + "read", data=body).content == body
    assert requests.post(url + "read-1", data=body).content == body
    assert requests.post(url + "readn&n=5", data=body).json() == ["line ", "one\nl", "ine t", "wo\nla", "st"]
    assert requests.post(url + "readline", data=body).json() == ["line one\n", "line two\n", "last"]
    assert requests.post(url + "readline&limit=4", data=body).json() == [
        "line", " one", "\n", "line", " two", "\n", "last",
    ]
    assert requests.post(url + "readlines", data=body).json() == ["line one\n", "line two\n", "last"]
    assert requests.post(url + "iter", data=body).json() == ["line one\n", "line two\n", "last"]
    assert requests.post(url + "read", data=b"").content == b""


def test_chunked_request_body(server):
    with server.connect() as sock:
        sock.sendall(
            b"POST /input_echo.py?mode=read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
        )
        reader = ResponseReader(sock)
        status, _, body = reader.read()
        assert (status, body) == (200, b"hello world")
        sock.sendall(b"GET /env_echo.py HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        import json

        env = json.loads(reader.read()[2])
        assert env["wsgi.input_terminated"] is True
        assert "CONTENT_LENGTH" not in env


def test_write_callable_then_iterable(server):
    assert requests.get(server.url + "/writer.py").text == "one,two,three"


def test_invalid_headers_and_status_give_500_and_nothing_malformed(server):
    for kind in ["crlf-value", "crlf-name", "not-latin1", "nul", "bad-status", "status-crlf", "bytes-header", "not-list", "not-tuple", "twice"]:
        answer = raw_request(server, f"GET /bad_headers.py?{kind} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 500 "), (kind, answer[:80])
        assert b"Injected" not in answer and b"should never be sent" not in answer, kind


def test_exception_before_headers_is_500_with_traceback(server):
    response = requests.get(server.url + "/errors.py?before")
    assert response.status_code == 500
    assert "boom before headers" not in response.text
    log = server.log()
    assert "RuntimeError: boom before headers" in log and "Traceback" in log
    assert "GET /errors.py?before HTTP/1.1" in log


def test_exception_after_headers_closes_connection(server):
    with server.connect() as sock:
        sock.sendall(b"GET /errors.py?after HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"partial body" in data
    assert not data.endswith(b"0\r\n\r\n"), "an incomplete body must not look complete"
    assert "boom after headers" in server.log()


def test_exc_info_replaces_unsent_headers_and_reraises_sent_ones(server):
    response = requests.get(server.url + "/errors.py?exc_info")
    assert (response.status_code, response.text) == (503, "replaced")
    answer = raw_request(server, b"GET /errors.py?late-exc-info HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert "ValueError: too late" in server.log()


def test_headers_wait_for_first_nonempty_chunk(server):
    response = requests.get(server.url + "/late_start.py")
    assert (response.status_code, response.text) == (404, "not here")


def test_close_is_called_on_success_error_and_disconnect(server, tmp_path):
    ok = tmp_path / "ok"
    assert requests.get(server.url + f"/closing.py?marker={ok}").text.endswith("end")
    assert ok.read_text() == "closed"
    failed = tmp_path / "failed"
    raw_request(server, f"GET /closing.py?marker={failed}&fail=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert failed.read_text() == "closed"
    gone = tmp_path / "gone"
    sock = server.connect()
    sock.sendall(f"GET /closing.py?marker={gone}&endless=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    deadline = time.monotonic() + 10
    while not (gone.exists() and gone.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone.read_text() == "closed"
    assert requests.get(server.url + "/ctime.py").status_code == 200


def test_content_length_from_app_is_honoured(server):
    exact = requests.get(server.url + "/length.py?exact")
    assert exact.content == b"x" * 10
    with server.connect() as sock:
        sock.sendall(b"GET /length.py?less HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 10" in head
    assert body == b"x" * 5, "a short body ends with the connection closed"
    assert "Content-Length" in server.log()


@pytest.mark.parametrize("way", ["iterable", "write", "filelike", "file"])
def test_a_body_past_its_content_length_is_cut_and_the_connection_kept(server, way, tmp_path):
    """An app that sends 18 bytes after promising 10: the client gets exactly the 10, the
    surplus is logged once for the response, and the same connection answers the next
    request (as waitress does; a reconnect per such response costs the client)."""
    query = way
    if way == "file":
        path = tmp_path / "eighteen.txt"
        path.write_bytes(b"aaaaaabbbbbbcccccc")
        query = f"file={path}"
    logged_before = server.log().count("the surplus is dropped")
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for _ in range(2):
            sock.sendall(f"GET /surplus.py?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, body = reader.read()
            assert (status, headers["content-length"], body) == (200, "10", b"aaaaaabbbb")
            assert "connection" not in headers
        sock.sendall(b"GET /length.py?exact HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read()[2] == b"x" * 10
        assert reader.buf == b"", "nothing of the surplus reached the wire"
    deadline = time.monotonic() + 5
    while server.log().count("the surplus is dropped") < logged_before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.log().count("the surplus is dropped") == logged_before + 2, "once per response"


def test_responses_are_chunked_for_http11_and_close_delimited_for_http10(server):
    with server.connect() as sock:
        sock.sendall(b"GET /writer.py HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = ResponseReader(sock).read()
        assert headers["transfer-encoding"] == "chunked" and body == b"one,two,three"
    answer = raw_request(server, b"GET /writer.py HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"one,two,three"


def test_list_results_get_content_length(server):
    response = requests.get(server.url + "/env_echo.py")
    assert "Content-Length" in response.headers and "Transfer-Encoding" not in response.headers


def test_non_bytes_chunk_is_500(server):
    response = requests.get(server.url + "/not_bytes.py")
    assert response.status_code == 500
    assert "must yield bytes, not int" in server.log()


def test_hop_by_hop_headers_from_app_are_dropped_and_no_body_statuses(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for code in (204, 304):
            sock.sendall(f"GET /statuses.py?{code} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, body = reader.read()
            assert status == code and body == b""
            assert "transfer-encoding" not in headers
        sock.sendall(b"GET /statuses.py?200 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = reader.read()
        assert status == 200 and body.startswith(b"body that")
        assert headers.get("transfer-encoding") != "gzip"
        assert reader.buf == b""


@pytest.mark.parametrize("given, line", [
    ("200", b"HTTP/1.1 200 OK\r\n"),
    ("404%20", b"HTTP/1.1 404 Not Found\r\n"),
    ("200%20Fine%20thanks", b"HTTP/1.1 200 Fine thanks\r\n"),
    ("299", b"HTTP/1.1 299 \r\n"),  # no standard reason: empty, but the space stays
    ("2000%20OK", b"HTTP/1.1 500 Internal Server Error\r\n"),
    ("20x%20OK", b"HTTP/1.1 500 Internal Server Error\r\n"),
    ("200OK", b"HTTP/1.1 500 Internal Server Error\r\n"),
])
def test_status_line_always_has_a_reason(server, given, line):
    answer = raw_request(server, f"GET /status_as_given.py?{given} HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n".encode())
    assert answer.startswith(line), answer[:80]


def test_head_request_to_app_sends_no_body(server):
    with server.connect() as sock:
        sock.sendall(b"HEAD /length.py?exact HTTP/1.1\r\nHost: x\r\n\r\nGET /length.py?exact HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        status, headers, body = reader.read(method="HEAD")
        assert status == 200 and headers["content-length"] == "10" and body == b""
        assert reader.read()[2] == b"x" * 10


def test_wsgiref_validator_passes(server):
    response = requests.post(server.url + "/validated.py", data=b"payload")
    assert response.status_code == 200, server.log()
    assert response.text == "got:payload!"
    assert "validated app ran" in server.log()
    assert "Traceback" not in server.log()
    assert "Warning" not in server.log()


def test_file_wrapper_real_file_and_filelike(server, tmp_path):
    data = bytes(range(256)) * 40000
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    assert requests.get(server.url + f"/file_wrap.py?{path}").content == data
    assert requests.get(server.url + "/file_wrap.py?memory").content == b"in-memory " * 1000


def test_50_mib_response_to_a_slow_reader_arrives_complete(server):
    with server.connect(timeout=30) as sock:
        sock.sendall(b"GET /big.py?50 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1)  # the server fills the socket buffers and must wait for the reader
        received = b""
        while len(received) < 4 * 1024 * 1024:  # a slow start: small reads with pauses
            received += sock.recv(16384)
            time.sleep(0.001)
        reader = ResponseReader(sock)
        reader.buf = received
        status, headers, body = reader.read()
    assert status == 200
    assert len(body) == 50 * 1024 * 1024
    block = bytes(range(256)) * 4096
    assert body == block * 50


def test_keep_alive_serves_100_requests_on_one_connection(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for i in range(100):
            path = "/sayhello.py?name=n%d" % i if i % 2 else "/index.html"
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, body = reader.read()
            assert status == 200
            assert "connection" not in headers
            if i % 2:
                assert b"Hello, n%d!" % i in body
        assert not is_closed(sock, timeout=0.2)


def test_app_mounted_with_validator_under_http10_keep_alive(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for _ in range(3):
            sock.sendall(b"GET /sayhello.py HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = reader.read()
            assert status == 200 and headers["connection"] == "Keep-Alive"  # the usual spelling
