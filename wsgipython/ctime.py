# The classic WSGI tutorial script: it returns a str, which wsgihost sends as UTF-8
# (with a one-time warning in the log). Strictly, PEP 3333 wants an iterable of bytes.
import time


def application(env, dealHeaders):
    dealHeaders("200 OK", [("Content-type", "text/plain")])
    return time.ctime()
