"""Yields an empty chunk, then changes its mind with exc_info: the headers had not been
sent yet (they go out with the first non-empty chunk), so the new status wins."""
import sys


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        yield b""
        try:
            raise KeyError("changed my mind")
        except KeyError:
            start_response("404 Not Found", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"not here"

    return generate()
