"""An endless generator that records GeneratorExit in ?PATH when the client goes away."""


def application(environ, start_response):
    marker = environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def generate():
        try:
            while True:
                yield b"z" * 65536
        except GeneratorExit:
            with open(marker, "w") as f:
                f.write("GeneratorExit")
            raise

    return generate()
