# A gunicorn.conf.py as a team runs it under gunicorn; wsgihost reads it unchanged
# (`wsgihost shop:app`, from this folder).
import logging
import multiprocessing
import os
import time

bind = os.environ.get("BIND", "0.0.0.0:8000,unix:/run/shop/gunicorn.sock").split(",")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("PYTHON_MAX_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = 1000
max_requests_jitter = 100
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
access_log_format = '%(h)s %({x-request-id}i)s "%(r)s" %(s)s %(b)s %(M)sms'
loglevel = os.environ.get("LOG_LEVEL", "info")

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
    },
    "loggers": {"shop": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


def on_starting(server):
    server.log.info("shop: starting %d workers of %d threads", server.cfg.workers, server.cfg.threads)


def post_fork(server, worker):
    server.log.info("shop: worker %s forked into slot %s", worker.pid, worker.slot)


def pre_request(worker, req):
    req.started = time.monotonic()


def post_request(worker, req, environ, resp):
    took = (time.monotonic() - req.started) * 1000
    logging.getLogger("shop").info("%s %s answered %s in %.1f ms", req.method, req.path, resp.status_code, took)


def worker_exit(server, worker):
    server.log.info("shop: worker %s exits", worker.pid)
