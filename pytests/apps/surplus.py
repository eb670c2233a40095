"""Declares Content-Length 10 and sends 18 bytes: ?iterable (three chunks of 6), ?write
(three write() calls), ?filelike (file_wrapper over a BytesIO) or ?file=PATH (file_wrapper
over a real file: sendfile)."""
import io


def application(environ, start_response):
    way, _, path = environ["QUERY_STRING"].partition("=")
    write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    pieces = [b"aaaaaa", b"bbbbbb", b"cccccc"]
    if way == "iterable":
        return pieces
    if way == "write":
        for piece in pieces:
            write(piece)
        return []
    stream = io.BytesIO(b"".join(pieces)) if way == "filelike" else open(path, "rb")
    return environ["wsgi.file_wrapper"](stream, 6)
