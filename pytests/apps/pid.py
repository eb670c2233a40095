"""Answers with the worker's PID and whether it thinks it is multiprocess."""
import os


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {environ['wsgi.multiprocess']}".encode()]
