"""A small app wrapped in wsgiref's validator, which checks the server side of PEP 3333
too (environ types, start_response, write, input and errors streams)."""
from wsgiref.validate import validator


def inner(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.errors"].write("validated app ran\n")
    environ["wsgi.errors"].flush()
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"got:")
    return [body, b"!"]


application = validator(inner)
