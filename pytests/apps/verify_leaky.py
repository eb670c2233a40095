"""verify.py that also keeps 256 KiB per request: its worker's RSS grows without bound."""
from verify import application as verify

kept = []


def application(environ, start_response):
    kept.append(bytearray(256 * 1024))
    return verify(environ, start_response)
