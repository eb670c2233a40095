"""Sleeps ?SECONDS (default 3) before answering: a blocking app."""
import time


def application(environ, start_response):
    seconds = float(environ["QUERY_STRING"] or 3)
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept %g" % seconds]
