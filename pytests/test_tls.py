"""HTTPS with --certfile/--keyfile: clients that verify the chain (requests, ssl, curl,
openssl s_client), protocol versions and ALPN, client certificates, renewals by SIGHUP
under load, hostile peers, large bodies, and Flask and Django behind TLS."""
import hashlib
import os
import shutil
import signal
import ssl
import subprocess
import time

import pytest
import requests

from certs import Authority
from conftest import ResponseReader, free_port
from testsite import wait_for
from verifier import VerifyingClient, get_check, post_check

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")


@pytest.fixture
def ca(tmp_path):
    return Authority(tmp_path / "pki")


@pytest.fixture
def https(start_server, ca):
    """Starts wsgihost with a fresh server certificate for localhost and 127.0.0.1."""
    def start(*args, **popen):
        cert, key, _ = ca.issue("server", "localhost")
        server = start_server("--certfile", str(cert), "--keyfile", str(key), *args, **popen)
        server.https = f"https://localhost:{server.port}"
        return server
    return start


def tls_context(ca, cert=None, key=None):
    context = ssl.create_default_context(cafile=str(ca.pem))
    if cert:
        context.load_cert_chain(str(cert), str(key))
    return context


def env_over_tls(server, ca, **kwargs):
    return requests.get(server.https + "/env_echo.py", verify=str(ca.pem), timeout=10, **kwargs).json()


def test_requests_and_ssl_verify_the_chain(https, ca):
    server = https()
    env = env_over_tls(server, ca)
    assert env["wsgi.url_scheme"] == "https" and env["HTTPS"] == "on"
    assert "SSL_CLIENT_S_DN" not in env
    assert "Hello, TLS!" in requests.get(server.https + "/sayhello.py?name=TLS", verify=str(ca.pem)).text
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = tls_context(ca)
        context.minimum_version = context.maximum_version = version
        context.set_alpn_protocols(["h2", "http/1.1"])
        with context.wrap_socket(server.connect(), server_hostname="localhost") as sock:
            assert sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            assert sock.selected_alpn_protocol() == "http/1.1"
            sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, _, body = ResponseReader(sock).read()
            assert status == 200 and b"wsgihost" in body
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(server.https + "/", timeout=10)  # the test CA is not in the system store
    assert "https://127.0.0.1:" in server.log()  # the banner says the listener speaks TLS


@pytest.mark.skipif(CURL is None, reason="needs curl (Debian's curl package)")
def test_curl_with_the_ca(https, ca):
    server = https()
    result = subprocess.run([CURL, "-sS", "--cacert", str(ca.pem), server.https + "/sayhello.py?name=curl"],
                            capture_output=True, text=True, timeout=30)
    assert "Hello, curl!" in result.stdout, result.stderr
    refused = subprocess.run([CURL, "-sS", server.https + "/"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0  # unknown CA


@pytest.mark.skipif(OPENSSL is None, reason="needs openssl (Debian's openssl package)")
def test_openssl_s_client_versions_and_alpn(https, ca):
    server = https()

    def s_client(*flags):
        return subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.port}",
                               "-CAfile", str(ca.pem), "-verify_return_error", *flags],
                              input=b"", capture_output=True, timeout=30)

    for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        result = s_client(flag, "-alpn", "http/1.1")
        output = result.stdout.decode()
        assert f"Protocol  : {version}" in output or f", {version}," in output, output
        assert "ALPN protocol: http/1.1" in output
        assert "Verify return code: 0 (ok)" in output
    old = s_client("-tls1_1")
    assert old.returncode != 0 or b"Cipher is (NONE)" in old.stdout


def test_client_certificates_required_missing_and_wrong(https, ca, tmp_path):
    alice, alice_key, _ = ca.issue("alice", "alice", server=False)
    stranger_ca = Authority(tmp_path / "other", name="another CA")
    mallory, mallory_key, _ = stranger_ca.issue("mallory", "mallory", server=False)
    server = https("--ca-certs", str(ca.pem), "--cert-reqs", "required")
    env = env_over_tls(server, ca, cert=(str(alice), str(alice_key)))
    assert "CN=alice" in env["SSL_CLIENT_S_DN"] and "O=wsgihost tests" in env["SSL_CLIENT_S_DN"]
    assert env["SSL_CLIENT_CERT"] == alice.read_text()
    for cert in (None, (str(mallory), str(mallory_key))):
        with pytest.raises(requests.exceptions.RequestException):
            env_over_tls(server, ca, cert=cert)
    # Refused handshakes cost nobody else anything.
    assert env_over_tls(server, ca, cert=(str(alice), str(alice_key)))["HTTPS"] == "on"
    optional = https("--ca-certs", str(ca.pem), "--cert-reqs", "optional")
    assert "SSL_CLIENT_S_DN" not in env_over_tls(optional, ca)
    assert "CN=alice" in env_over_tls(optional, ca, cert=(str(alice), str(alice_key)))["SSL_CLIENT_S_DN"]
    with pytest.raises(requests.exceptions.RequestException):
        env_over_tls(optional, ca, cert=(str(mallory), str(mallory_key)))


def test_sighup_serves_a_renewed_certificate_with_no_failed_request(https, ca):
    server = https("--workers", "2", "--threads", "4", "--access-log", "off")
    cert = ca.folder / "server.pem"

    def serial():
        with tls_context(ca).wrap_socket(server.connect(), server_hostname="localhost") as sock:
            der = sock.getpeercert(binary_form=True)
        from cryptography import x509
        return x509.load_der_x509_certificate(der).serial_number

    first = serial()
    client = VerifyingClient(server.port, connections=8, tls=tls_context(ca))
    time.sleep(1)
    _, _, renewed = ca.issue("server", "localhost")  # overwrites the files, as a renewal does
    os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: serial() == renewed, timeout=20, ignoring=(OSError, ssl.SSLError))
    time.sleep(1)
    client.stop()
    assert renewed != first
    assert client.failures == [] and client.refused == 0 and client.ok > 200, client.summary()
    # A broken pair at reload: the workers keep the certificate they have.
    cert.write_text("not a certificate\n")
    os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP: " in server.log() and "keep serving the certificate" in server.log(), 20)
    assert serial() == renewed


def test_bad_files_at_start_are_one_line_and_exit_2(command, ca, tmp_path):
    cert, key, _ = ca.issue("server", "localhost")
    _, other_key, _ = ca.issue("other", "localhost")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for files, named in [((tmp_path / "missing.pem", key), "missing.pem"),
                         ((garbage, key), "garbage.pem"),
                         ((cert, tmp_path / "missing.key"), "missing.key"),
                         ((cert, other_key), "does not go with"),
                         ((cert, cert), "server.pem")]:
        result = subprocess.run([*command, "--bind", f"127.0.0.1:{free_port()}", "--certfile", str(files[0]),
                                 "--keyfile", str(files[1])], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and named in result.stderr, result.stderr
    result = subprocess.run([*command, "--bind", f"https://127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "needs --certfile" in result.stderr


def test_a_certificate_about_to_expire_is_warned_about(start_server, ca):
    cert, key, _ = ca.issue("soon", "localhost", days=3)
    server = start_server("--certfile", str(cert), "--keyfile", str(key))
    assert "warning: certificate" in server.log() and "expires in" in server.log()


def test_plain_http_and_garbage_on_the_tls_port(https, ca):
    server = https("--log-level", "debug")
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"use https://" in answer
    with server.connect() as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello" + os.urandom(200))
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert env_over_tls(server, ca)["HTTPS"] == "on"
    log = server.log()
    assert "debug: closing the connection from 127.0.0.1:" in log
    assert "Traceback" not in log and "error" not in log.lower().replace("errors", "")


def test_a_slow_handshake_is_a_slowloris(https):
    server = https("--header-timeout", "1")
    started = time.monotonic()
    with server.connect(timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert time.monotonic() - started < 4


def test_smuggling_rules_limits_and_lingering_close_over_tls(https, ca):
    server = https("--max-body", "1000")

    def exchange(payload, chunks=()):
        with tls_context(ca).wrap_socket(server.connect(), server_hostname="localhost") as sock:
            sock.sendall(payload)
            for chunk in chunks:
                try:
                    sock.sendall(chunk)
                except OSError:
                    break
            answer = b""
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except (ssl.SSLError, ConnectionResetError) as err:
                return answer, f"error {err!r}"
            return answer, "eof"

    answer, _ = exchange(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    answer, ending = exchange(b"POST /input_echo.py HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n",
                              [b"b" * 50_000] * 10)
    assert answer.startswith(b"HTTP/1.1 413 ") and ending == "eof", (answer[:30], ending)


def test_large_bodies_over_tls_are_exact_and_memory_stays_bounded(https, ca):
    server = https()
    session = verified_session(ca)
    before = session.get(server.https + "/rss.py").json()["VmRSS"]
    digest, size = hashlib.sha256(), 0
    with session.get(server.https + "/big.py?256", stream=True) as answer:  # 256 MiB
        for chunk in answer.iter_content(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    block = bytes(range(256)) * 4096
    assert size == 256 << 20 and digest.hexdigest() == hashlib.sha256(block * 256).hexdigest()

    def upload():
        for _ in range(128):
            yield block
    answer = session.post(server.https + "/verify.py", data=upload(),
                          headers={"Content-Type": "application/octet-stream"})
    assert answer.text == f"{hashlib.sha256(block * 128).hexdigest()} {128 << 20}"
    static = os.urandom(3 << 20)
    (server.workdir / "html" / "blob.bin").write_bytes(static)
    assert session.get(server.https + "/blob.bin").content == static
    part = session.get(server.https + "/blob.bin", headers={"Range": "bytes=1000-2999"})
    assert part.status_code == 206 and part.content == static[1000:3000]
    peak = session.get(server.https + "/rss.py").json()["VmHWM"]
    assert peak - before < 64 * 1024, f"peak RSS grew {(peak - before) // 1024} MiB"


def test_keep_alive_verified_load_over_tls(https, ca):
    server = https("--workers", "2", "--access-log", "off")
    client = VerifyingClient(server.port, connections=8, tls=tls_context(ca),
                             checks=[(1, get_check()), (1, post_check(chunked_share=0.5))])
    time.sleep(2)
    client.stop()
    assert client.failures == [] and client.ok > 200, client.summary()


def test_flask_knows_it_is_secure(https, ca, site):
    (site / "secure_flask.py").write_text(
        "from flask import Flask, request, url_for\n"
        "app = Flask(__name__)\n"
        "@app.route('/where')\n"
        "def where():\n"
        "    return f\"{request.is_secure} {request.scheme} {url_for('where', _external=True)}\"\n")
    server = https("secure_flask:app")
    answer = requests.get(server.https + "/where", verify=str(ca.pem)).text
    assert answer == f"True https {server.https}/where"


def test_django_is_secure_and_redirects_plain_http(https, ca, tmp_path):
    from frameworks import django_args, prepare_django

    env = prepare_django(tmp_path)
    plain = free_port()
    server = https("--bind", f"http://127.0.0.1:{plain}", "--env", "DJANGO_HTTPS=1",
                   *django_args(env))
    redirect = requests.get(f"http://127.0.0.1:{plain}/admin/login/", allow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == f"https://127.0.0.1:{plain}/admin/login/"
    session = verified_session(ca)
    login = session.get(server.https + "/admin/login/?next=/admin/")
    assert login.status_code == 200
    assert "secure" in login.headers["Set-Cookie"].lower()
    from frameworks import csrf_token
    answer = session.post(server.https + "/admin/login/?next=/admin/",
                          headers={"Referer": server.https + "/admin/login/"},
                          data={"csrfmiddlewaretoken": csrf_token(login.text), "username": "admin",
                                "password": "s3cret-pass", "next": "/admin/"})
    assert answer.status_code == 200 and "Site administration" in answer.text


def verified_session(ca):
    """A requests session that verifies with the test CA (set per request: a session's own
    `verify` loses to $REQUESTS_CA_BUNDLE when that is set)."""
    session = requests.Session()
    session.request = __import__("functools").partial(session.request, verify=str(ca.pem))
    return session
