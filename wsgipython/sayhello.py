"""Greets ?name=... (HTML-escaped), "World" by default."""
import html
from urllib.parse import parse_qs


def application(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    name = query.get("name", ["World"])[0] or "World"
    body = f"<!doctype html><title>Hello</title><h1>Hello, {html.escape(name)}!</h1>\n"
    data = body.encode("utf-8")
    start_response(
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]
