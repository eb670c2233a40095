"""A generator response: first chunk, a one-second pause, second chunk."""
import time


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        yield b"first\n"
        time.sleep(1)
        yield b"second\n"

    return generate()
