"""For verifying clients: GET ?size=N&seed=S answers N bytes derived from S (checked byte
for byte), with &stream=K as a generator of K-byte chunks (a chunked answer); POST answers
the sha256 and length of the body it read. Each answer names its worker (X-Pid)."""
import hashlib
import os
from urllib.parse import parse_qs


def expected_body(size, seed):
    unit = f"{seed}:".encode()
    return (unit * (size // len(unit) + 1))[:size]


def application(environ, start_response):
    headers = [("Content-Type", "application/octet-stream"), ("X-Pid", str(os.getpid()))]
    if environ["REQUEST_METHOD"] == "POST":
        digest = hashlib.sha256()
        length = 0
        stream = environ["wsgi.input"]
        while True:
            part = stream.read(65536)
            if not part:
                break
            digest.update(part)
            length += len(part)
        start_response("200 OK", headers)
        return [f"{digest.hexdigest()} {length}".encode()]
    query = parse_qs(environ["QUERY_STRING"])
    size = int(query.get("size", ["64"])[0])
    seed = query.get("seed", ["0"])[0]
    body = expected_body(size, seed)
    start_response("200 OK", headers)
    if "stream" in query:
        step = int(query["stream"][0])
        return (body[i:i + step] for i in range(0, len(body), step))
    return [body]
