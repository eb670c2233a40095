"""Returns wsgi.file_wrapper around the file named by ?PATH (a real file: sendfile), or
around an in-memory BytesIO when ?PATH is 'memory'."""
import io
import os


def application(environ, start_response):
    path = environ["QUERY_STRING"]
    if path == "memory":
        stream = io.BytesIO(b"in-memory " * 1000)
        size = 10000
    else:
        stream = open(path, "rb")
        size = os.fstat(stream.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](stream, 65536)
