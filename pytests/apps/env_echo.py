"""Echoes the environ as JSON: str values as they are, other values as their type name."""
import json


def application(environ, start_response):
    shown = {}
    for key, value in environ.items():
        shown[key] = value if isinstance(value, str) else type(value).__name__
    shown["wsgi.version"] = list(environ["wsgi.version"])
    for flag in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        shown[flag] = environ[flag]
    body = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
