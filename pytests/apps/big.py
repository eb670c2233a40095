"""Streams ?MIB mebibytes (default 50) of a repeating pattern, 1 MiB per chunk."""
BLOCK = bytes(range(256)) * 4096


def application(environ, start_response):
    mib = int(environ["QUERY_STRING"] or 50)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (BLOCK for _ in range(mib))
