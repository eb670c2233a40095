"""What operators see and set: access and error logs, the start-up banner, proxy headers."""
import json
import time

import requests


def wait_for_line(read, needle, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = read()
        if needle in text:
            return text
        time.sleep(0.05)
    return read()


def test_access_log_combined_format_with_micros(server):
    requests.get(server.url + "/index.html", headers={"Referer": "http://ref.example/", "User-Agent": "probe/1.0"})
    requests.get(server.url + "/sayhello.py?name=Log")
    log = wait_for_line(server.log, "sayhello.py")
    line = next(l for l in log.splitlines() if '"GET /index.html HTTP/1.1"' in l)
    # 127.0.0.1 - - [23/Nov/2026:21:00:00 +0000] "GET /index.html HTTP/1.1" 200 990 "http://ref.example/" "probe/1.0" 123
    parts = line.split('"')
    assert parts[0].startswith("127.0.0.1 - - [") and parts[0].endswith("+0000] ")
    status, size = parts[2].split()
    assert status == "200" and int(size) > 0
    assert parts[3] == "http://ref.example/" and parts[5] == "probe/1.0"
    assert parts[6].strip().isdigit()
    app_line = next(l for l in log.splitlines() if "GET /sayhello.py?name=Log" in l)
    assert '" 200 ' in app_line


def test_access_log_file_custom_format_and_errors_logged(start_server, tmp_path):
    path = tmp_path / "access.log"
    server = start_server("--access-log", str(path), "--access-log-format", "%m %U %q %s %B %{X-Request-Id}i %p")
    requests.get(server.url + "/env_echo.py/x?y=1", headers={"X-Request-Id": "abc-123"})
    requests.get(server.url + "/missing.html")
    with server.connect() as sock:
        sock.sendall(b"BROKEN\r\n\r\n")
        sock.recv(1000)
    text = wait_for_line(lambda: path.read_text() if path.exists() else "", "400")
    lines = text.splitlines()
    assert lines[0].startswith("GET /env_echo.py/x ?y=1 200 ") and " abc-123 " in lines[0]
    assert lines[1].startswith("GET /missing.html  404 ")
    assert lines[2].startswith("- -  400 ")  # unparsable: no method, path or query
    assert "GET /env_echo.py" not in server.log()


def test_json_logs(start_server):
    server = start_server("--log-format", "json")
    requests.get(server.url + "/errors.py?before")
    log = wait_for_line(server.log, '"duration_us"')
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = next(r for r in records if "duration_us" in r)
    assert access["method"] == "GET" and access["target"] == "/errors.py?before" and access["status"] == 500
    error = next(r for r in records if r.get("level") == "error")
    assert "boom before headers" in error["message"] and "Traceback" in error["message"]


def test_access_log_off_and_log_level(start_server):
    server = start_server("--access-log", "off", "--log-level", "error")
    requests.get(server.url + "/index.html")
    requests.get(server.url + "/errors.py?before")
    log = wait_for_line(server.log, "boom before headers")
    assert "GET /index.html" not in log
    assert "worker" not in log and "listening" not in log  # info lines suppressed
    assert "boom before headers" in log


def test_banner_lists_listeners_mounts_workers_threads_python(start_server, site):
    (site / "root.py").write_text("def app(e, s):\n    s('200 OK', [])\n    return [b'']\n")
    server = start_server("--workers", "2", "--threads", "3", "--static", "/assets=html", "root:app")
    banner = next(l for l in server.log().splitlines() if "listening on" in l)
    assert server.url in banner and "2 workers x 3 threads" in banner and "Python 3." in banner
    assert "/ -> app root:app" in banner and "/assets -> static html" in banner


def test_forwarded_headers_only_from_trusted_peers(start_server):
    trusted = start_server()
    env = requests.get(trusted.url + "/env_echo.py", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}).json()
    assert env["REMOTE_ADDR"] == "203.0.113.7" and env["wsgi.url_scheme"] == "https"
    env = requests.get(trusted.url + "/env_echo.py", headers={"Forwarded": 'for="[2001:db8::5]:1234";proto=https'}).json()
    assert env["REMOTE_ADDR"] == "2001:db8::5" and env["wsgi.url_scheme"] == "https"
    untrusted = start_server("--forwarded-allow-ips", "192.0.2.1")
    env = requests.get(untrusted.url + "/env_echo.py", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}).json()
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["wsgi.url_scheme"] == "http"
