"""Calls start_response with whatever ?kind= names, all of which must give a 500."""


def application(environ, start_response):
    kind = environ["QUERY_STRING"]
    status, headers = "200 OK", [("Content-Type", "text/plain")]
    if kind == "crlf-value":
        headers.append(("X-Evil", "a\r\nInjected: yes"))
    elif kind == "crlf-name":
        headers.append(("X-Evil\r\nInjected", "yes"))
    elif kind == "not-latin1":
        headers.append(("X-Snow", "\u2603"))
    elif kind == "nul":
        headers.append(("X-Nul", "a\x00b"))
    elif kind == "bad-status":
        status = "OK"
    elif kind == "status-crlf":
        status = "200 OK\r\nInjected: yes"
    elif kind == "bytes-header":
        headers.append((b"X-Bytes", b"1"))
    elif kind == "not-list":
        headers = tuple(headers)
    elif kind == "not-tuple":
        headers.append(["X-List", "1"])
    elif kind == "twice":
        start_response(status, headers)
    start_response(status, headers)
    return [b"should never be sent"]
