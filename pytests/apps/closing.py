"""An iterable whose close() leaves a marker file, to prove the server calls it.
?marker=PATH names the file, &fail=1 raises mid-iteration, &endless=1 streams forever
(until the client goes away)."""
from urllib.parse import parse_qs


class Body:
    def __init__(self, marker, fail, endless):
        self.marker, self.fail, self.endless = marker, fail, endless

    def __iter__(self):
        yield b"a" * 1000
        if self.fail:
            raise RuntimeError("failing iterable")
        while self.endless:
            yield b"b" * 65536
        yield b"end"

    def close(self):
        with open(self.marker, "w") as f:
            f.write("closed")


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body(query["marker"][0], "fail" in query, "endless" in query)
