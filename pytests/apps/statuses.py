"""Answers with the status in ?CODE and a body, which must be dropped for 204 and 304."""


def application(environ, start_response):
    code = environ["QUERY_STRING"] or "200"
    start_response(f"{code} Whatever", [("Content-Type", "text/plain"), ("Connection", "keep-alive"), ("Transfer-Encoding", "gzip")])
    return [b"body that 204 and 304 must not carry"]
