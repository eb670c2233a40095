"""The app of the worked example: any WSGI app will do."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"shop\n"]
