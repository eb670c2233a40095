"""--proxy-protocol: the PROXY header (v1 and v2) a TCP balancer sends first gives the
client's address and scheme; a header that is missing, malformed, too long or from a
peer not allowed to send one closes the connection before any request, and is counted."""
import json
import socket
import struct
import subprocess
import time

import pytest
import requests

from conftest import free_port
from testsite import wait_for
from verifier import ResponseReader

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
GET_ENV = b"GET /env_echo.py HTTP/1.1\r\nHost: example.com\r\n\r\n"


def v2_header(command=0x21, family=0x11, payload=None, tlvs=b""):
    if payload is None:
        payload = socket.inet_aton("192.0.2.7") + socket.inet_aton("10.0.0.1") + struct.pack(">HH", 50000, 8080)
    payload += tlvs
    return V2_SIGNATURE + bytes([command, family]) + struct.pack(">H", len(payload)) + payload


def environ_after(server, preface, requests_on_connection=1):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(preface + GET_ENV)
        answers = [reader.read("GET")]
        for _ in range(requests_on_connection - 1):
            sock.sendall(GET_ENV)
            answers.append(reader.read("GET"))
    return [json.loads(body) for status, _, body in answers if status == 200]


def closed_without_answer(server, data):
    with server.connect() as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return True
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received == b""


def refused_count(metrics_port):
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    line = next(l for l in text.splitlines() if l.startswith('wsgihost_proxy_protocol_refused_total{worker="all"}'))
    return int(float(line.split()[-1]))


@pytest.fixture
def proxied(start_server):
    metrics_port = free_port()
    server = start_server("--proxy-protocol", "--metrics", f"127.0.0.1:{metrics_port}")
    server.metrics_port = metrics_port
    return server


def test_v1_gives_the_client_address_for_every_request_on_the_connection(proxied):
    preface = b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 8080\r\n"
    environs = environ_after(proxied, preface, requests_on_connection=2)
    assert len(environs) == 2
    for environ in environs:
        assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("192.0.2.7", "50000")
        assert environ["wsgi.url_scheme"] == "http"
    six = environ_after(proxied, b"PROXY TCP6 2001:db8::7 ::1 443 8443\r\n")[0]
    assert (six["REMOTE_ADDR"], six["REMOTE_PORT"]) == ("2001:db8::7", "443")
    assert wait_for(lambda: "192.0.2.7" in proxied.log())


def test_v2_address_ssl_tlv_and_local(proxied):
    environ = environ_after(proxied, v2_header())[0]
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("192.0.2.7", "50000")
    assert environ["wsgi.url_scheme"] == "http"
    ssl_tlv = b"\x20" + struct.pack(">H", 5) + b"\x01" + b"\x00\x00\x00\x00"
    assert environ_after(proxied, v2_header(tlvs=ssl_tlv))[0]["wsgi.url_scheme"] == "https"
    # LOCAL (the balancer's own health check): the connection's own address stands.
    local = environ_after(proxied, v2_header(command=0x20, family=0x00, payload=b""))[0]
    assert local["REMOTE_ADDR"] == "127.0.0.1"
    unknown = environ_after(proxied, b"PROXY UNKNOWN\r\n")[0]
    assert unknown["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("data", [
    GET_ENV,  # no header at all from a peer that must send one
    b"PROXY TCP4 192.0.2.7 10.0.0.1 50000\r\n" + GET_ENV,
    b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 99999\r\n" + GET_ENV,
    b"PROXY TCP4 " + b"1" * 200 + b"\r\n" + GET_ENV,
    v2_header(family=0x51) + GET_ENV,  # unknown address family
    v2_header()[:14] + struct.pack(">H", 65535) + b"x" * 3000,  # huge TLV length
    v2_header(tlvs=b"\x20\x00\x09\x01") + GET_ENV,  # a TLV longer than the header
], ids=["missing", "v1-short", "v1-port", "v1-long", "v2-family", "v2-huge", "v2-tlv"])
def test_a_bad_or_missing_header_closes_the_connection_and_is_counted(proxied, data):
    before = refused_count(proxied.metrics_port)
    assert closed_without_answer(proxied, data)
    assert wait_for(lambda: refused_count(proxied.metrics_port) == before + 1)
    assert "closing the connection from 127.0.0.1" in proxied.log()
    # The server is fine: the next connection with a good header is served.
    assert environ_after(proxied, b"PROXY TCP4 192.0.2.9 10.0.0.1 1 2\r\n")[0]["REMOTE_ADDR"] == "192.0.2.9"


def test_only_the_versions_asked_for(start_server):
    server = start_server("--proxy-protocol", "v1")
    assert closed_without_answer(server, v2_header() + GET_ENV)
    assert environ_after(server, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n")[0]["REMOTE_ADDR"] == "192.0.2.7"
    server = start_server("--proxy-protocol", "v2")
    assert closed_without_answer(server, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n" + GET_ENV)
    assert environ_after(server, v2_header())[0]["REMOTE_ADDR"] == "192.0.2.7"


def test_peers_outside_the_allow_list_speak_plain_http_and_may_not_send_a_header(start_server):
    metrics_port = free_port()
    server = start_server("--proxy-protocol", "--proxy-allow-from", "10.0.0.0/8",
                          "--metrics", f"127.0.0.1:{metrics_port}")
    assert requests.get(server.url + "/env_echo.py", timeout=5).json()["REMOTE_ADDR"] == "127.0.0.1"
    assert closed_without_answer(server, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n" + GET_ENV)
    assert closed_without_answer(server, v2_header() + GET_ENV)
    assert wait_for(lambda: refused_count(metrics_port) == 2)
    assert "a PROXY header from a peer not in --proxy-allow-from" in server.log()


def test_a_header_sent_slowly_counts_against_the_header_timeout(start_server):
    server = start_server("--proxy-protocol", "--header-timeout", "1")
    header = b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 8080\r\n"
    started = time.monotonic()
    with server.connect(timeout=10) as sock:
        closed = False
        for byte in header:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
        if not closed:
            sock.settimeout(5)
            try:
                answer = sock.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert answer == b"" or b" 408 " in answer.split(b"\r\n")[0], answer
    assert time.monotonic() - started < 4.5, "the slow header was not cut off by --header-timeout"


def test_on_an_https_listener_the_header_comes_before_the_handshake(start_server, tmp_path):
    import ssl

    from certs import Authority

    ca = Authority(tmp_path / "pki")
    cert, key, _ = ca.issue("server", "localhost")
    server = start_server("--proxy-protocol", "--certfile", str(cert), "--keyfile", str(key))
    context = ssl.create_default_context(cafile=str(ca.pem))
    for preface in (b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 8080\r\n", v2_header()):
        with server.connect() as raw:
            raw.sendall(preface)
            with context.wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(GET_ENV)
                status, _, body = ResponseReader(sock).read("GET")
        environ = json.loads(body)
        assert status == 200
        assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("192.0.2.7", "https")
    # A handshake without the header first is refused like any missing header.
    with server.connect() as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with context.wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(GET_ENV)
                ResponseReader(sock).read("GET")
    assert "no PROXY header" in server.log()


GUNICORN_SDIST = "gunicorn==23.0.0"


def gunicorn_cases(folder):
    """gunicorn's own PROXY protocol request cases (tests/requests/{valid,invalid}/pp_*),
    from its sdist on PyPI: {name: (request bytes, expected)}, where expected is a list of
    (method, uri) for a valid case and None for an invalid one."""
    import sys as _sys
    import tarfile
    import types

    download = subprocess.run([_sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                               "--no-deps", GUNICORN_SDIST, "-d", str(folder)], capture_output=True, text=True)
    if download.returncode != 0:
        pytest.skip(f"gunicorn's sdist could not be downloaded from PyPI: {download.stderr.strip()[-300:]}")
    archive = next(folder.glob("gunicorn-*.tar.gz"))
    cases = {}
    with tarfile.open(archive) as sdist:
        members = {m.name.split("/tests/requests/", 1)[1]: m for m in sdist.getmembers()
                   if "/tests/requests/" in m.name and "/pp_" in m.name}
        # The .py files import gunicorn's Config and errors: stand-ins suffice to read them.
        config = types.SimpleNamespace(Config=lambda: types.SimpleNamespace(set=lambda *a: None))
        errors = types.SimpleNamespace(InvalidProxyLine=None)
        stand_ins = {"gunicorn": types.ModuleType("gunicorn"), "gunicorn.config": config,
                     "gunicorn.http": types.ModuleType("gunicorn.http"), "gunicorn.http.errors": errors}
        saved = {name: _sys.modules.get(name) for name in stand_ins}
        _sys.modules.update(stand_ins)
        try:
            for name, member in sorted(members.items()):
                if not name.endswith(".http"):
                    continue
                text = sdist.extractfile(member).read()
                # gunicorn's convention: line breaks are for reading; escapes are the bytes.
                data = (text.replace(b"\n", b"").replace(b"\\r\\n", b"\r\n").replace(b"\\0", b"\0")
                        .replace(b"\\n", b"\n").replace(b"\\t", b"\t"))
                namespace = {"uri": lambda u: u}
                exec(sdist.extractfile(members[name[:-5] + ".py"]).read(), namespace)
                expected = namespace["request"]
                if expected is not None:
                    expected = [(r["method"], r["uri"]) for r in (expected if isinstance(expected, list) else [expected])]
                cases[name[:-5]] = (data, expected)
        finally:
            for name, module in saved.items():
                if module is None:
                    _sys.modules.pop(name, None)
                else:
                    _sys.modules[name] = module
    return cases


def test_gunicorns_proxy_protocol_cases(start_server, tmp_path):
    """gunicorn's cases with the setting on: the invalid headers close the connection; the
    valid ones give their requests the header's address. valid/pp_02 sends HTTP/1.1
    requests without Host, which RFC 9112 (section 3.2) requires and wsgihost's parser
    refuses (400) whatever came before: as sent it is answered 400 after its PROXY header
    was accepted, and with a Host line added its two requests are served."""
    cases = gunicorn_cases(tmp_path)
    assert set(cases) == {"valid/pp_01", "valid/pp_02", "invalid/pp_01", "invalid/pp_02"}, sorted(cases)
    server = start_server("--proxy-protocol", "--pythonpath", "wsgipython", "env_echo:application")
    for name, (data, expected) in cases.items():
        if expected is None:
            assert closed_without_answer(server, data), name
            continue
        if b"HTTP/1.1\r\n" in data and b"\r\nHost:" not in data:
            with server.connect() as sock:
                sock.sendall(data)
                assert ResponseReader(sock).read("GET")[0] == 400, name
            data = data.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nHost: example.com\r\n")
        with server.connect() as sock:
            sock.sendall(data)
            reader = ResponseReader(sock)
            for method, target in expected:
                status, _, body = reader.read(method)
                assert status == 200, (name, status, body)
                environ = json.loads(body)
                assert (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"]) == \
                    (method, *target.partition("?")[::2]), name
                assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("192.168.0.1", "56324"), name
    assert "closing the connection from 127.0.0.1" in server.log()
