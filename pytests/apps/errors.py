"""Application errors: ?before raises before start_response, ?after raises mid-body,
?exc_info re-calls start_response with exc_info before any body (the error page wins),
?late-exc-info does so after the body started (the error must propagate)."""
import sys


def application(environ, start_response):
    kind = environ["QUERY_STRING"]
    if kind == "before":
        raise RuntimeError("boom before headers")
    start_response("200 OK", [("Content-Type", "text/plain")])
    if kind == "exc_info":
        try:
            raise ValueError("handled")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]

    def generate():
        yield b"partial body"
        if kind == "late-exc-info":
            try:
                raise ValueError("too late")
            except ValueError:
                start_response("500 Oops", [], sys.exc_info())
        raise RuntimeError("boom after headers")

    return generate()
