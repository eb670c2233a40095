"""Declares Content-Length 10 and sends ?less (5 bytes), ?more (15) or ?exact (10)."""


def application(environ, start_response):
    sizes = {"less": 5, "more": 15, "exact": 10}
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"x" * sizes[environ["QUERY_STRING"]]]
