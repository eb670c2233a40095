"""Reads the request body the way ?mode= says and answers with what it got."""
import json
from urllib.parse import parse_qs


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    mode = query.get("mode", ["read"])[0]
    stream = environ["wsgi.input"]
    if mode == "read":
        body = stream.read()
    elif mode == "read-1":
        body = stream.read(-1)
    elif mode == "readn":
        size = int(query.get("n", ["3"])[0])
        parts = []
        while True:
            part = stream.read(size)
            if not part:
                break
            assert len(part) <= size
            parts.append(part)
        body = json.dumps([p.decode("latin-1") for p in parts]).encode()
    elif mode == "readline":
        limit = int(query.get("limit", ["-1"])[0])
        lines = []
        while True:
            line = stream.readline(limit)
            if not line:
                break
            lines.append(line.decode("latin-1"))
        body = json.dumps(lines).encode()
    elif mode == "readlines":
        body = json.dumps([line.decode("latin-1") for line in stream.readlines()]).encode()
    elif mode == "iter":
        body = json.dumps([line.decode("latin-1") for line in stream]).encode()
    elif mode == "ignore":
        body = b"ignored"
    elif mode == "count":
        total = 0
        while True:
            part = stream.read(1 << 20)
            if not part:
                break
            total += len(part)
        body = str(total).encode()
    else:
        raise ValueError(mode)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]
