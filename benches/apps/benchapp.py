"""The WSGI app every server runs in the benchmark: one callable, routes by PATH_INFO."""
import time

HELLO = b"Hello, World!"
BODY_64K = b"x" * 65536
CHUNK = b"s" * 65536


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/64k":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "65536")])
        return [BODY_64K]
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/sleep":
        time.sleep(0.01)  # an app waiting 10 ms on a database or a remote call
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [HELLO]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (CHUNK for _ in range(16))  # 1 MiB, generated
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]
