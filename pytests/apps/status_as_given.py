"""Passes ?STATUS (URL-decoded) to start_response exactly as given."""
from urllib.parse import unquote


def application(environ, start_response):
    start_response(unquote(environ["QUERY_STRING"]), [("Content-Type", "text/plain")])
    return [b"ok"]
