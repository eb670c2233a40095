"""Burns about ?SECONDS (default 1) of CPU in pure Python, then answers."""
import time


def application(environ, start_response):
    seconds = float(environ["QUERY_STRING"] or 1)
    end = time.process_time() + seconds
    count = 0
    while time.process_time() < end:
        count += 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d" % count]
