"""Real integrations wired up the way gunicorn users wire them, through server hooks in a
gunicorn.conf.py, with the real packages from PyPI, against the running server with 2
workers: prometheus_client's multiprocess mode (child_exit), the OpenTelemetry SDK
(post_fork), sentry-sdk (post_worker_init) and SQLAlchemy under --preload (post_fork)."""
import http.server
import json
import os
import threading
import textwrap

import requests

from frameworks import venv_args
from testsite import wait_for


def write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text))


def test_prometheus_multiprocess_counts_across_workers_and_recycling(start_server, site):
    metrics_dir = site / "prometheus"
    metrics_dir.mkdir()
    write(site, "promapp.py", '''
        from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

        REQUESTS = Counter("app_requests", "Requests the app answered")
        ALIVE = Gauge("app_workers_alive", "Worker processes alive", multiprocess_mode="livesum")
        ALIVE.set(1)

        def application(environ, start_response):
            if environ["PATH_INFO"] == "/metrics":
                registry = CollectorRegistry()
                multiprocess.MultiProcessCollector(registry)
                body = generate_latest(registry)
            else:
                REQUESTS.inc()
                body = b"counted"
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]
    ''')
    write(site, "gunicorn.conf.py", '''
        from prometheus_client import multiprocess

        workers = 2
        max_requests = 30

        def child_exit(server, worker):
            multiprocess.mark_process_dead(worker.pid)
    ''')
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = start_server(*venv_args(), "--access-log", "off", "promapp:application", env=env)
    for _ in range(150):
        answer = requests.get(server.url + "/work", timeout=5, headers={"Connection": "close"})
        assert answer.text == "counted"
    assert "worker" in server.log() and server.log().count("retiring (served") >= 2, server.log()

    def scraped(name):
        text = requests.get(server.url + "/metrics", timeout=5).text
        return float(next(l for l in text.splitlines() if l.startswith(name + " ")).split()[1])

    assert scraped("app_requests_total") == 150
    # child_exit removed the dead workers' live gauges: only the two serving are counted.
    assert wait_for(lambda: scraped("app_workers_alive") == 2, timeout=10), scraped("app_workers_alive")


def test_opentelemetry_started_in_post_fork_exports_one_span_per_request(start_server, site):
    spans_dir = site / "spans"
    spans_dir.mkdir()
    write(site, "otelapp.py", '''
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        def inner(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"traced"]

        application = OpenTelemetryMiddleware(inner)
    ''')
    write(site, "gunicorn.conf.py", f'''
        import json, os

        workers = 2

        def post_fork(server, worker):
            # The SDK's export thread does not survive a fork: each worker starts its own.
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

            class FileExporter(SpanExporter):
                def export(self, spans):
                    path = os.path.join({str(spans_dir)!r}, "%d.jsonl" % os.getpid())
                    with open(path, "a") as out:
                        for span in spans:
                            out.write(json.dumps({{"name": span.name, "trace": span.context.trace_id}}) + "\\n")
                    return SpanExportResult.SUCCESS

            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(FileExporter(), schedule_delay_millis=50))
            trace.set_tracer_provider(provider)

        def worker_exit(server, worker):
            from opentelemetry import trace
            trace.get_tracer_provider().shutdown()
    ''')
    server = start_server(*venv_args(), "--access-log", "off", "otelapp:application")
    for index in range(60):
        answer = requests.get(server.url + f"/item/{index}", timeout=5, headers={"Connection": "close"})
        assert answer.text == "traced"
    assert server.stop() == 0
    spans = {}
    for path in spans_dir.iterdir():
        spans[path.stem] = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(spans) == 2, "both workers exported"
    every = [span for exported in spans.values() for span in exported]
    assert len(every) == 60
    assert len({span["trace"] for span in every}) == 60, "one span, one trace, per request"


class Collector(http.server.BaseHTTPRequestHandler):
    """Stands in for Sentry: keeps the body of every envelope posted to it."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip
            body = gzip.decompress(body)
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_sentry_started_in_post_worker_init_reports_a_view_exception(start_server, site):
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        write(site, "sentryapp.py", '''
            from flask import Flask

            app = Flask(__name__)

            @app.route("/boom")
            def boom():
                raise ZeroDivisionError("the view divided by zero")
        ''')
        write(site, "gunicorn.conf.py", f'''
            workers = 2

            def post_worker_init(worker):
                import sentry_sdk
                sentry_sdk.init(dsn="http://public@127.0.0.1:{sink.server_address[1]}/1")
        ''')
        server = start_server(*venv_args(), "--access-log", "off", "sentryapp:app")
        assert requests.get(server.url + "/boom", timeout=5).status_code == 500
        assert wait_for(lambda: any(b"the view divided by zero" in body for _, body in Collector.received),
                        timeout=10), Collector.received
        path, body = next((p, b) for p, b in Collector.received if b"the view divided by zero" in b)
        assert path == "/api/1/envelope/"
        assert b"ZeroDivisionError" in body
    finally:
        sink.shutdown()


SQL_APP = '''
import os
from sqlalchemy import create_engine, event, text

engine = create_engine("sqlite:///" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.db"))

@event.listens_for(engine, "connect")
def remember_who_connected(dbapi_connection, connection_record):
    connection_record.info["opened_by"] = os.getpid()

with engine.connect() as connection:  # at import: in the master, with --preload
    connection.execute(text("select 1"))

def application(environ, start_response):
    with engine.connect() as connection:
        connection.execute(text("select 1"))
        opened_by = connection.connection._connection_record.info["opened_by"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d" % (os.getpid(), opened_by)]
'''


def test_sqlalchemy_under_preload_shares_no_connection_once_post_fork_disposes(start_server, site):
    write(site, "sqlapp.py", SQL_APP)
    write(site, "gunicorn.conf.py", '''
        workers = 2
        preload_app = True

        def post_fork(server, worker):
            import sqlapp
            sqlapp.engine.dispose(close=False)
    ''')

    def owners(server):
        pairs = set()
        for _ in range(40):
            pid, opened_by = requests.get(server.url + "/", timeout=5, headers={"Connection": "close"}).text.split()
            pairs.add((pid, opened_by))
        return pairs

    server = start_server(*venv_args(), "--access-log", "off", "sqlapp:application")
    pairs = owners(server)
    assert len({pid for pid, _ in pairs}) == 2, pairs
    assert all(pid == opened_by for pid, opened_by in pairs), pairs
    server.stop()
    # Without the hook, the master's pooled connection is used by the workers: the check
    # above would see it.
    (site / "gunicorn.conf.py").write_text("workers = 2\npreload_app = True\n")
    unhooked = start_server(*venv_args(), "--access-log", "off", "sqlapp:application")
    assert any(opened_by == str(unhooked.pid) for _, opened_by in owners(unhooked))
