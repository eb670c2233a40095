"""Names the instance (from $INSTANCE) and the client address it sees."""
import os


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.environ.get('INSTANCE', '?')} {environ.get('REMOTE_ADDR', '')}".encode()]
