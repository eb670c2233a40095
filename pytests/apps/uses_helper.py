import helper_mod


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [helper_mod.GREETING.encode()]
