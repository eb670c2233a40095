"""What gunicorn's operators plug into, under wsgihost: a traceback when --timeout ends a
stuck call (and a hook that hangs), statsd with gunicorn's metric names, the saturation
figures (queue time, busy threads, accept queue), privileges dropped after binding, the pid
file, process titles, the error log with --capture-output and SIGUSR1 for logrotate."""
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import textwrap
import threading
import time

import pytest
import requests

from testsite import wait_for

STUCK_APP = '''
import time

def spin_forever():
    n = 0
    while True:
        n += 1

def application(environ, start_response):
    if environ["PATH_INFO"] == "/stuck":
        spin_forever()
    if environ["PATH_INFO"] == "/boom":
        raise ValueError("broken view")
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.5)
    print("printed by the app", flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text))


def test_a_stuck_call_is_reported_with_its_stack_before_the_worker_is_replaced(start_server, site):
    write(site, "stuckapp.py", STUCK_APP)
    write(site, "gunicorn.conf.py", '''
        def wait_in_pre_request():
            import time
            time.sleep(60)

        def pre_request(worker, req):
            if req.path == "/hook":
                wait_in_pre_request()

        def worker_abort(worker):
            worker.log.warning("worker_abort ran in %s", worker.pid)
    ''')
    server = start_server("--timeout", "1", "--workers", "1", "stuckapp:application")
    outcomes = []

    def fetch(path):
        try:
            outcomes.append(requests.get(server.url + path, timeout=15).status_code)
        except requests.ConnectionError:
            outcomes.append("closed")

    stuck = threading.Thread(target=fetch, args=("/stuck",))
    stuck.start()
    assert wait_for(lambda: "worker_abort ran" in server.log(), timeout=10), server.log()
    log = server.log()
    report = log[log.index('"GET /stuck HTTP/1.1" from 127.0.0.1:'):]
    assert re.match(r'"GET /stuck HTTP/1\.1" from 127\.0\.0\.1:\d+ has made no progress for [\d.]+ s '
                    r'\(over --timeout 1s\), running [\d.]+ s; its Python stack', report), report[:300]
    assert re.search(f'File "{re.escape(str(site / "stuckapp.py"))}", line [67], in spin_forever', report), report
    assert report.index("in spin_forever") < report.index("worker_abort ran")
    stuck.join()
    # The stuck call's connection is closed, not left hanging.
    assert outcomes == ["closed"]
    # The worker is replaced; the replacement serves.
    assert requests.get(server.url + "/", timeout=5).text == "ok"
    # A hook that hangs counts against --timeout like the request it runs for.
    hooked = threading.Thread(target=fetch, args=("/hook",))
    hooked.start()
    assert wait_for(lambda: "in wait_in_pre_request" in server.log(), timeout=10), server.log()
    assert '"GET /hook HTTP/1.1"' in server.log()
    hooked.join()
    assert outcomes == ["closed", "closed"]


def test_a_hook_that_hangs_in_a_worker_is_dumped_and_the_worker_replaced(start_server, site):
    write(site, "stuckapp.py", STUCK_APP)
    write(site, "gunicorn.conf.py", '''
        import os

        def hang_once():
            marker = os.path.join(os.getcwd(), "hung-once")
            if not os.path.exists(marker):
                open(marker, "w").close()
                import time
                time.sleep(60)

        def post_worker_init(worker):
            hang_once()
    ''')
    server = start_server("--timeout", "1", "stuckapp:application", start_timeout=30)
    assert requests.get(server.url + "/", timeout=5).text == "ok"
    log = server.log()
    assert "Timeout (0:00:01)!" in log, log
    assert "in hang_once" in log and "in post_worker_init" in log, log


class StatsdListener:
    """A loopback UDP socket standing in for statsd: every line it receives."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.lines = []
        self.datagrams = 0
        self.running = True
        self.thread = threading.Thread(target=self.receive, daemon=True)
        self.thread.start()

    def receive(self):
        while self.running:
            try:
                data = self.socket.recv(65536)
            except socket.timeout:
                continue
            self.datagrams += 1
            self.lines.extend(data.decode().split("\n"))

    def named(self, name):
        return [line for line in list(self.lines) if line.startswith(name + ":")]

    def close(self):
        self.running = False
        self.thread.join()
        self.socket.close()


def test_statsd_gets_gunicorns_metric_names(start_server, site):
    write(site, "stuckapp.py", STUCK_APP)
    statsd = StatsdListener()
    try:
        server = start_server("--statsd-host", f"127.0.0.1:{statsd.port}", "--statsd-prefix", "shop",
                              "--dogstatsd-tags", "env:test", "--workers", "2", "stuckapp:application")
        started = time.time() - 0.25
        for _ in range(20):
            requests.get(server.url + "/", headers={"X-Request-Start": f"t={started:.3f}"}, timeout=5)
        assert requests.get(server.url + "/boom", timeout=5).status_code == 500
        assert wait_for(lambda: len(statsd.named("shop.gunicorn.requests")) >= 21
                        and statsd.named("shop.gunicorn.workers"), timeout=5)
        assert set(statsd.named("shop.gunicorn.requests")) == {"shop.gunicorn.requests:1|c|@1.0|#env:test"}
        assert len(statsd.named("shop.gunicorn.request.status.200")) == 20
        assert statsd.named("shop.gunicorn.request.status.500") == [
            "shop.gunicorn.request.status.500:1|c|@1.0|#env:test"]
        durations = statsd.named("shop.gunicorn.request.duration")
        assert len(durations) == 21 and all(re.fullmatch(r"[^:]+:[\d.]+\|ms\|#env:test", d) for d in durations)
        assert statsd.named("shop.gunicorn.log.exception") and statsd.named("shop.gunicorn.log.error")
        queued = [float(line.split(":")[1].split("|")[0]) for line in statsd.named("shop.wsgihost.request.queue_time")]
        assert len(queued) == 20 and all(200 <= q < 5000 for q in queued), queued
        assert wait_for(lambda: statsd.named("shop.wsgihost.busy_threads"), timeout=5)
        assert statsd.named("shop.gunicorn.workers")[-1] == "shop.gunicorn.workers:2|g|#env:test"
        assert statsd.named("shop.wsgihost.threads")[-1] == "shop.wsgihost.threads:18|g|#env:test"
        # Many lines to a datagram, not one each.
        assert statsd.datagrams < len(statsd.lines) / 2, (statsd.datagrams, len(statsd.lines))
    finally:
        statsd.close()


def metric(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{labels}}} in the metrics")


def test_saturation_you_can_see(start_server, site):
    from testsite import free_port

    write(site, "stuckapp.py", STUCK_APP)
    metrics_port = free_port()
    server = start_server("--metrics", f"127.0.0.1:{metrics_port}", "--threads", "1", "--backlog", "64",
                          "--access-log", "off", "stuckapp:application")
    scrape = lambda: requests.get(f"http://127.0.0.1:{metrics_port}/", timeout=5).text
    requests.get(server.url + "/", headers={"X-Request-Start": f"t={int((time.time() - 0.3) * 1000)}"}, timeout=5)
    text = scrape()
    assert metric(text, "wsgihost_request_queue_seconds_count", 'worker="all"') == 1
    assert metric(text, "wsgihost_request_queue_seconds_bucket", 'le="0.25"') == 0
    assert metric(text, "wsgihost_request_queue_seconds_bucket", 'le="0.5"') == 1
    assert metric(text, "wsgihost_threads", 'worker="all"') == 1
    listener = f'listener="http://127.0.0.1:{server.port}"'
    assert metric(text, "wsgihost_listen_queue_limit", listener) == 64
    # The one thread busy in a slow request: the accept queue fills up behind it.
    slow = threading.Thread(target=lambda: requests.get(server.url + "/slow", timeout=10))
    slow.start()
    time.sleep(0.3)
    waiting = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    time.sleep(0.2)
    text = scrape()
    assert metric(text, "wsgihost_busy_threads", 'worker="all"') == 1
    assert metric(text, "wsgihost_listen_queue_length", listener) == 3
    slow.join()
    for sock in waiting:
        sock.close()


def running_as_root():
    return os.geteuid() == 0


@pytest.mark.skipif(not running_as_root(), reason="dropping privileges needs root (CI runs as root)")
def test_workers_drop_privileges_and_the_master_writes_its_pid(command):
    import pwd

    from wsgihost.pytest_plugin import start_server as launch

    nobody = pwd.getpwnam("nobody")
    folder = tempfile.mkdtemp(prefix="wsgihost-user-")
    try:
        os.chmod(folder, 0o755)
        (open(os.path.join(folder, "uidapp.py"), "w")).write(textwrap.dedent('''
            import os
            def application(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"%d %d" % (os.getuid(), os.getgid())]
        '''))
        os.chmod(os.path.join(folder, "uidapp.py"), 0o644)
        pidfile = os.path.join(folder, "run", "wsgihost.pid")
        os.mkdir(os.path.dirname(pidfile))
        server = launch(command, cwd=folder, log_dir=folder, args=[
            "--user", "nobody", "--group", str(nobody.pw_gid), "--umask", "027", "--pid", pidfile,
            "--name", "shop", "--access-log", os.path.join(folder, "access.log"),
            # pyenv's Python lives under /root here, which nobody may not read: the app and
            # what it imports are loaded in the master, so the workers read no file of them.
            "--preload", "uidapp:application"])
        try:
            assert requests.get(server.url("/"), timeout=5).text == f"{nobody.pw_uid} {nobody.pw_gid}"
            assert open(pidfile).read() == f"{server.pid}\n"
            status = open(f"/proc/{server.pid}/status").read()
            assert re.search(r"^Uid:\s+0\s", status, re.M), "the master keeps its user"
            assert stat.S_IMODE(os.stat(os.path.join(folder, "access.log")).st_mode) == 0o640
            title = open(f"/proc/{server.pid}/cmdline", "rb").read().split(b"\0")[0]
            assert title == b"wsgihost: master [shop]"
            children = open(f"/proc/{server.pid}/task/{server.pid}/children").read().split()
            assert open(f"/proc/{children[0]}/cmdline", "rb").read().split(b"\0")[0] == b"wsgihost: worker [shop]"
            assert open(f"/proc/{children[0]}/comm").read().strip() == "wsgihost: worke"
        finally:
            assert server.stop() == 0
        assert not os.path.exists(pidfile), "the pid file is removed at exit"
    finally:
        shutil.rmtree(folder)


def test_capture_output_and_sigusr1_reopen_for_logrotate(start_server, site):
    write(site, "stuckapp.py", STUCK_APP)
    errors, access = site / "error.log", site / "access.log"
    server = start_server("--error-logfile", str(errors), "--access-logfile", str(access),
                          "--capture-output", "stuckapp:application")
    requests.get(server.url + "/first", timeout=5)
    assert wait_for(lambda: "printed by the app" in errors.read_text() and "GET /first" in access.read_text())
    assert "worker" in errors.read_text() and "GET /first" not in errors.read_text()
    os.rename(errors, site / "error.log.1")
    os.rename(access, site / "access.log.1")
    os.kill(server.pid, signal.SIGUSR1)
    assert wait_for(lambda: errors.exists() and access.exists(), timeout=5)
    time.sleep(0.3)
    requests.get(server.url + "/second", timeout=5)
    assert wait_for(lambda: "GET /second" in access.read_text() and "printed by the app" in errors.read_text())
    assert "GET /second" not in (site / "access.log.1").read_text()
    assert server.process.poll() is None
    assert requests.get(server.url + "/", timeout=5).text == "ok"


def test_reload_extra_file_restarts_the_workers(start_server, site):
    write(site, "stuckapp.py", STUCK_APP)
    (site / "templates").mkdir()
    template = site / "templates" / "page.html"
    template.write_text("<p>one</p>")
    server = start_server("--reload", "--reload-extra-file", "templates/*.html", "stuckapp:application")
    assert requests.get(server.url + "/", timeout=5).text == "ok"
    time.sleep(1.1)
    template.write_text("<p>two</p>")
    assert wait_for(lambda: "page.html changed; reloading the workers" in server.log(), timeout=10)
