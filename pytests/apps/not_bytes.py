"""Yields an int: a clear 500."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [42]
