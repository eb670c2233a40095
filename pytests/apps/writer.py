"""Uses the legacy write() callable, then returns more body from the iterable."""


def application(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one,")
    write(b"two,")
    return [b"three"]
