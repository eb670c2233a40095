"""The gunicorn drop-in: gunicorn.conf.py run unchanged (settings, hooks, precedence), every
gunicorn setting honoured, warned about or refused, gunicorn's flags with gunicorn's
meanings, stable worker slots, and --check-config / --print-config."""
import os
import re
import signal
import subprocess
import textwrap
import time

import requests

from conftest import REPO
from testsite import wait_for

APP = '''
import os

def application(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom in the view")
    body = "%d %s" % (os.getpid(), os.environ.get("WSGIHOST_WORKER_SLOT"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Answer", "yes")])
    return [body.encode()]
'''

# Every hook appends a line to events.txt: its name, the pid it runs in, and what it saw.
HOOKED_CONFIG = '''
import os
import multiprocessing

EVENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.txt")

def note(*words):
    with open(EVENTS, "a") as events:
        events.write(" ".join(str(w) for w in words) + "\\n")

bind = ["127.0.0.1:1"]  # the command line's --bind wins
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
worker_class = "gthread"
timeout = 30
keepalive = 5
accesslog = "-"
loglevel = "info"
proc_name = None
raw_env = ["FROM_CONFIG=1"]

def on_starting(server):
    note("on_starting", os.getpid(), server.pid, server.cfg.workers, server.cfg.threads)

def when_ready(server):
    note("when_ready", os.getpid())

def nworkers_changed(server, new_value, old_value):
    note("nworkers_changed", new_value, old_value)

def pre_fork(server, worker):
    note("pre_fork", os.getpid(), worker.age, worker.slot, worker.pid)

def post_fork(server, worker):
    note("post_fork", os.getpid(), worker.pid, worker.slot, worker.age)

def post_worker_init(worker):
    note("post_worker_init", os.getpid(), worker.booted)

def pre_request(worker, req):
    req.started = 1
    note("pre_request", os.getpid(), req.method, req.path, req.query, dict(req.headers).get("X-TEST"))

def post_request(worker, req, environ, resp):
    note("post_request", os.getpid(), req.started, resp.status_code, environ.get("PATH_INFO"),
         dict(resp.headers).get("X-Answer"))

def on_reload(server):
    note("on_reload", os.getpid())

def worker_int(worker):
    note("worker_int", os.getpid())

def worker_exit(server, worker):
    note("worker_exit", os.getpid(), worker.pid)

def child_exit(server, worker):
    note("child_exit", os.getpid(), worker.pid)

def on_exit(server):
    note("on_exit", os.getpid())
'''


def write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text))


def events(site):
    path = site / "events.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def named(site, name):
    return [event for event in events(site) if event[0] == name]


def run(command, *args, cwd=None, env=None):
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_gunicorn_conf_py_runs_unchanged_with_every_hook_at_its_call_point(start_server, site):
    write(site, "myapp.py", APP)
    write(site, "gunicorn.conf.py", HOOKED_CONFIG)
    server = start_server("myapp:application")  # ./gunicorn.conf.py is read by itself
    master = server.pid
    assert "configuration gunicorn.conf.py" in server.log()
    answer = requests.get(server.url + "/hello?x=1", headers={"X-Test": "t1"}, timeout=5)
    assert answer.status_code == 200
    worker_pid = int(answer.text.split()[0])

    assert named(site, "nworkers_changed")[0][1:] == ["2", "None"]
    assert named(site, "on_starting") == [["on_starting", str(master), str(master), "2", "4"]]
    forks = named(site, "pre_fork")
    assert [f[1] for f in forks] == [str(master)] * 2
    assert sorted((f[2], f[3]) for f in forks) == [("1", "0"), ("2", "1")]
    assert all(f[4] == "None" for f in forks)  # no pid before the fork, as in gunicorn
    children = named(site, "post_fork")
    assert {c[1] for c in children} == {c[2] for c in children}  # worker.pid is its own pid
    assert sorted(c[3] for c in children) == ["0", "1"]
    assert len(named(site, "post_worker_init")) == 2
    order = [event[0] for event in events(site)]
    assert order.index("on_starting") < order.index("when_ready") < order.index("pre_fork")
    assert named(site, "pre_request") == [["pre_request", str(worker_pid), "GET", "/hello", "x=1", "t1"]]
    assert wait_for(lambda: named(site, "post_request"), timeout=5)
    assert named(site, "post_request") == [["post_request", str(worker_pid), "1", "200", "/hello", "yes"]]

    os.kill(master, signal.SIGTTIN)
    assert wait_for(lambda: len(named(site, "post_worker_init")) == 3, timeout=10)
    assert named(site, "nworkers_changed")[1][1:] == ["3", "2"]
    os.kill(master, signal.SIGTTOU)
    assert wait_for(lambda: len(named(site, "child_exit")) == 1, timeout=10)
    assert named(site, "child_exit")[0][1] == str(master)
    os.kill(master, signal.SIGHUP)
    assert wait_for(lambda: named(site, "on_reload") and len(named(site, "child_exit")) == 3, timeout=15)
    assert named(site, "on_reload") == [["on_reload", str(master)]]
    assert server.stop() == 0
    exits = named(site, "worker_exit")
    assert all(e[1] == e[2] for e in exits) and len(exits) == 5
    assert named(site, "on_exit") == [["on_exit", str(master)]]
    assert events(site)[-1][0] == "on_exit"


def test_worker_slots_are_stable_and_taken_over_by_replacements(start_server, site):
    write(site, "myapp.py", APP)
    server = start_server("--workers", "2", "--max-requests", "15", "--access-log", "off",
                          "myapp:application")
    seen = set()
    deadline = time.monotonic() + 20
    while len({pid for pid, _ in seen}) < 5 and time.monotonic() < deadline:
        pid, slot = requests.get(server.url + "/", timeout=5).text.split()  # a new connection each
        seen.add((pid, slot))
    pids = {pid for pid, _ in seen}
    assert len(pids) >= 5, seen  # workers were recycled ...
    assert {slot for _, slot in seen} == {"0", "1"}, seen  # ... and their replacements took their slots


def test_precedence_is_gunicorns_and_print_config_reads_back(command, site):
    write(site, "myapp.py", APP)
    write(site, "gunicorn.conf.py", """
        workers = 3
        threads = 2
        timeout = 10
        max_requests = 500
        forwarded_allow_ips = ["10.0.0.0/8", "127.0.0.1"]
        secure_scheme_headers = {"X-SCHEME": "https"}
        wsgi_app = "myapp:application"
        wsgihost = {"max_rss": 300, "static": ["/s=html"]}
    """)
    env = {"GUNICORN_CMD_ARGS": "--threads 5 -t 20 --max-requests 7", "WSGIHOST_TIMEOUT": "40"}
    result = run(command, "-w", "4", "--print-config", cwd=site, env=env)
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        if " = " in line and not line.startswith("#"):
            key, _, rest = line.partition(" = ")
            settings[key] = rest.partition("  # ")[::2]
    assert settings["workers"] == ('"4"', "command line")
    assert settings["timeout"] == ('"40"', "environment WSGIHOST_TIMEOUT")
    assert settings["threads"] == ('"5"', "GUNICORN_CMD_ARGS")
    assert settings["max-requests"] == ('"7"', "GUNICORN_CMD_ARGS")
    assert settings["max-rss"] == ('"300"', "gunicorn.conf.py")
    assert settings["forwarded-allow-ips"] == ('"10.0.0.0/8,127.0.0.1"', "gunicorn.conf.py")
    assert settings["app"] == ('"myapp:application"', "gunicorn.conf.py")
    assert "configuration OK (1 application(s) imported)" in result.stderr
    # Fed back alone (no environment, no Python file), the TOML starts the same server.
    (site / "printed.toml").write_text(result.stdout)
    os.remove(site / "gunicorn.conf.py")
    again = run(command, "-c", "printed.toml", "--print-config", cwd=site)
    assert again.returncode == 0, again.stderr
    values = lambda text: sorted(l.split("  # ")[0] for l in text.splitlines() if " = " in l)
    assert values(again.stdout) == values(result.stdout)


def test_a_bad_config_file_is_refused_by_name_and_line(command, site):
    cases = {
        "workers = 2\nimport no_such_module\n":
            ("gunicorn.conf.py:2: ModuleNotFoundError: No module named 'no_such_module'", "Traceback"),
        'workers = "four"\n': ("gunicorn.conf.py:1: workers = 'four': invalid value 'four'", None),
        "def post_fork(server):\n    pass\n":
            ("gunicorn.conf.py:1: post_fork: the hook takes 1 positional parameter; "
             "gunicorn calls post_fork(server, worker)", None),
        "daemon = True\n": ("gunicorn.conf.py:1: daemon = True is not supported: wsgihost does not daemonize", None),
        'worker_class = "gevent"\n': ("worker class 'gevent' is not supported", None),
        "paste = 'production.ini'\n": ("paste = 'production.ini' is not supported", None),
        "ssl_context = lambda conf, factory: factory()\n": ("ssl_context", None),
    }
    for text, (first, then) in cases.items():
        (site / "gunicorn.conf.py").write_text(text)
        result = run(command, "--check-config", cwd=site)
        assert result.returncode == 2, (text, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert first in lines[0], (text, lines)
        if then:
            assert then in lines[1], lines
        else:
            assert len(lines) == 1, lines


def test_settings_without_effect_are_warned_about_once_and_typos_get_a_suggestion(command, site):
    write(site, "gunicorn.conf.py", """
        worker_tmp_dir = "/dev/shm"
        sendfile = False
        reuse_port = False
        worker = 3
        def pre_exec(server):
            pass
    """)
    result = run(command, "--check-config", cwd=site)
    assert result.returncode == 0, result.stderr
    warnings = [l for l in result.stderr.splitlines() if "warning" in l]
    assert any("worker_tmp_dir = '/dev/shm' has no effect here: workers report to the master over a pipe" in w
               for w in warnings), warnings
    assert any("sendfile = False has no effect here" in w for w in warnings), warnings
    assert any("'worker' is not a gunicorn setting (did you mean workers?)" in w for w in warnings)
    assert not any("pre_exec" in w for w in warnings)  # called on SIGUSR2
    assert not any("reuse_port" in w for w in warnings)  # honoured, and False anyway
    assert len(warnings) == 3, warnings


def test_gunicorns_flags_have_gunicorns_meanings(command, site):
    result = run(command, "-t", "120", "-w", "3", "-k", "sync", "-e", "A=1", "-n", "shop",
                 "--worker-connections", "99", "--limit-request-field_size", "4000", "--backlog", "64",
                 "--log-level", "CRITICAL", "--access-logfile", "-", "--error-logfile", "-",
                 "--print-config", cwd=site)
    assert result.returncode == 0, result.stderr
    shown = dict(l.split("  # ")[0].split(" = ", 1) for l in result.stdout.splitlines() if " = " in l)
    assert shown["timeout"] == '"120"' and shown["workers"] == '"3"'
    assert shown["worker-class"] == '"sync"' and shown["env"] == '["A=1"]' and shown["name"] == '"shop"'
    assert shown["max-connections"] == '"99"' and shown["limit-request-field-size"] == '"4000"'
    assert shown["backlog"] == '"64"' and shown["log-level"] == '"CRITICAL"'
    for args, expected in [
        (["--wokers", "2"], "did you mean --workers?"),
        (["-D"], "--daemon is not supported: wsgihost does not daemonize: run it under systemd"),
        (["--access-logformat", "%(h)s %(zz)s"], "unknown gunicorn atom %(zz)s"),
        (["--protocol", "uwsgi"], "--protocol 'uwsgi' is not supported"),
    ]:
        refused = run(command, *args, "--check-config", cwd=site)
        assert refused.returncode == 2, (args, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (args, lines)


def test_sync_workers_answer_one_request_at_a_time(start_server):
    server = start_server("-k", "sync", "--access-log", "off")
    environ = requests.get(server.url + "/env_echo.py", timeout=5).json()
    assert environ["wsgi.multithread"] is False


def test_bind_takes_gunicorns_forms(command, site):
    from wsgihost.pytest_plugin import start_server as launch

    from testsite import free_port

    port = free_port()
    server = launch(command, args=["--bind", f"localhost:{port}", "--access-log", "off"], cwd=site,
                    log_dir=site, bind=False)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/ctime.py", timeout=5).status_code == 200
        assert f"http://127.0.0.1:{port}" in server.log()
    finally:
        assert server.stop() == 0


def test_check_config_imports_the_app_in_a_child(command, site):
    write(site, "broken.py", "import no_such_dependency\n")
    write(site, "notcallable.py", "application = 42\n")
    write(site, "myapp.py", APP)
    broken = run(command, "--check-config", "broken:app", cwd=site)
    assert broken.returncode == 1
    assert "ModuleNotFoundError: No module named 'no_such_dependency'" in broken.stderr
    assert "Traceback (most recent call last)" in broken.stderr
    assert run(command, "--check-config", "notcallable", cwd=site).returncode == 1
    missing = run(command, "--check-config", "--static", "/x=missing_dir", "myapp:application", cwd=site)
    assert missing.returncode == 0, missing.stderr
    assert "static folder missing_dir (for /x) does not exist" in missing.stderr
    assert "configuration OK (1 application(s) imported)" in missing.stderr
    unreadable = run(command, "--check-config", "--certfile", "nope.pem", "--keyfile", "nope.key", cwd=site)
    assert unreadable.returncode == 1 and "nope.pem" in unreadable.stderr


def test_gunicorn_access_log_atoms(start_server, site):
    write(site, "myapp.py", APP)
    fmt = ('%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s %(m)s %(U)s %(q)s %(H)s "%(f)s" "%(a)s" '
           '%({x-test}i)s %({x-answer}o)s %({wsgi.url_scheme}e)s %(p)s T=%(T)s')
    server = start_server("--access-logformat", fmt, "myapp:application")
    requests.get(server.url + "/caf%C3%A9?q=1", timeout=5, auth=("ann", "secret"),
                 headers={"X-Test": "abc", "Referer": "http://r/", "User-Agent": "ua/1"})
    assert wait_for(lambda: '"GET /caf' in server.log(), timeout=5), server.log()
    line = next(l for l in server.log().splitlines() if '"GET /caf' in l)
    body_length = len(requests.get(server.url + "/", timeout=5).content)
    assert line == (f'127.0.0.1 - ann "GET /caf%C3%A9?q=1 HTTP/1.1" 200 {body_length} GET /caf\\xc3\\xa9 q=1 '
                    f'HTTP/1.1 "http://r/" "ua/1" abc yes http <{line.split("<")[1].split(">")[0]}> T=0')


def test_keep_alive_zero_closes_every_connection(start_server):
    server = start_server("--keep-alive", "0", "--access-log", "off")
    answer = requests.get(server.url + "/ctime.py", timeout=5)
    assert answer.headers["Connection"] == "close"


def test_trusted_networks_and_secure_scheme_headers(start_server):
    server = start_server("--forwarded-allow-ips", "127.0.0.0/8", "--access-log", "off")
    environ = requests.get(server.url + "/env_echo.py", headers={"X-Forwarded-Ssl": "on"}, timeout=5).json()
    assert environ["wsgi.url_scheme"] == "https"
    plain = start_server("--forwarded-allow-ips", "10.0.0.0/8", "--access-log", "off")
    environ = requests.get(plain.url + "/env_echo.py", headers={"X-Forwarded-Ssl": "on"}, timeout=5).json()
    assert environ["wsgi.url_scheme"] == "http"


def test_readme_gunicorn_table_is_generated_from_the_code(command):
    generated = subprocess.run([*command, "--gunicorn-reference"], capture_output=True, text=True,
                               check=True).stdout
    readme = (REPO / "README.md").read_text()
    embedded = readme.split("<!-- gunicorn-reference:start -->\n", 1)[1].split("<!-- gunicorn-reference:end -->", 1)[0]
    assert embedded == generated, "README's gunicorn table is stale: paste `wsgihost --gunicorn-reference` into it"
    assert generated.count("\n| `") == 121


def test_the_readmes_worked_example_starts_unchanged(command, site, tmp_path):
    from wsgihost.pytest_plugin import start_server as launch

    from frameworks import venv_args
    from testsite import free_port

    example = REPO / "examples" / "gunicorn"
    config = (example / "gunicorn.conf.py").read_text()
    assert config in (REPO / "README.md").read_text(), "the README shows examples/gunicorn/gunicorn.conf.py"
    port, sock = free_port(), tmp_path / "shop.sock"
    env = {**os.environ, "BIND": f"127.0.0.1:{port},unix:{sock}", "WEB_CONCURRENCY": "2"}
    server = launch(command, args=[*venv_args(), "shop:app"], cwd=example, env=env, log_dir=tmp_path,
                    bind=False)
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/cart", headers={"X-Request-Id": "r-42"}, timeout=5)
        assert answer.text == "shop\n"
        via_unix = subprocess.run(["curl", "-s", "--unix-socket", str(sock), "http://x/"],
                                  capture_output=True, text=True, timeout=10)
        assert via_unix.stdout == "shop\n"
        assert wait_for(lambda: "INFO shop: GET /cart answered 200 in" in server.log()
                        and '"GET /cart' in server.log(), timeout=5), server.log()
        log = server.log()
        assert "shop: starting 2 workers of 4 threads" in log
        assert "shop: worker" in log and "forked into slot 1" in log
        assert re.search(r'127\.0\.0\.1 r-42 "GET /cart HTTP/1\.1" 200 5 \d+ms', log), log
    finally:
        assert server.stop() == 0
    assert "shop: worker" in server.log() and "exits" in server.log()
