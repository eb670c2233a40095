# The common use: time each request in pre_request/post_request.
import time

TIMES = []


def pre_request(worker, req):
    req.started = time.perf_counter()


def post_request(worker, req, environ, resp):
    TIMES.append(time.perf_counter() - req.started)
    if len(TIMES) > 10000:
        TIMES.clear()
