"""The process model: master + workers, supervision, signals, recycling, unix sockets."""
import os
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import ResponseReader, free_port
from testsite import wait_for
from verifier import VerifyingClient


def pid_of_answer(server, path="/pid.py"):
    return int(requests.get(server.url + path, timeout=10).text.split()[0])


class ClientLoop:
    """Sends requests on fresh connections until stopped; counts answers and failures."""

    def __init__(self, server, path="/pid.py"):
        self.server, self.path = server, path
        self.ok, self.failures, self.pids = 0, [], set()
        self.running = True
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                response = requests.get(self.server.url + self.path, timeout=10)
                if response.status_code == 200:
                    self.ok += 1
                    self.pids.add(response.text.split()[0])
                else:
                    self.failures.append(response.status_code)
            except requests.RequestException as err:
                self.failures.append(repr(err))
            time.sleep(0.005)

    def stop(self):
        self.running = False
        self.thread.join()


def test_killed_worker_is_replaced_and_clients_keep_being_served(start_server):
    server = start_server("--workers", "2")
    loop = ClientLoop(server)
    time.sleep(0.5)
    victim = pid_of_answer(server)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: "killed by SIGKILL" in server.log())
    time.sleep(1.5)
    loop.stop()
    assert len(loop.failures) <= 1, loop.failures
    assert f"worker {victim} died (killed by SIGKILL)" in server.log()
    started = server.log().count("started")
    assert started >= 3, server.log()


@pytest.mark.parametrize("fault", ["SIGKILL", "segfault in the app"])
def test_a_dying_worker_costs_only_what_it_held(start_server, fault):
    """Under a verifying keep-alive load on two workers, one worker is killed (kill -9, or a
    C-level crash in the app): only requests on connections that worker held fail (at most
    one each), none on the other worker's, and the replacement serves."""
    server = start_server("--workers", "2", "--threads", "4", "--access-log", "off")
    client = VerifyingClient(server.port, connections=16)
    assert wait_for(lambda: len(client.pids) == 2)
    time.sleep(0.5)
    if fault == "SIGKILL":
        victim = int(sorted(client.pids)[0])
        os.kill(victim, signal.SIGKILL)
    else:
        with pytest.raises(requests.RequestException):
            requests.get(server.url + "/crash.py", timeout=10)
    assert wait_for(lambda: " died (" in server.log())
    time.sleep(2)
    client.stop()
    died = [int(line.split()[2]) for line in server.log().splitlines() if " died (" in line]
    assert len(died) == 1, server.log()
    assert all(pid == str(died[0]) for pid in client.failed_on), (died, client.failed_on)
    assert len(client.failures) <= 16, client.summary()
    assert client.ok > 1000 and client.refused == 0, client.summary()
    assert any(pid not in (None, str(died[0])) for pid in client.pids)


def test_worker_that_exits_in_app_is_replaced(start_server, site):
    (site / "wsgipython" / "exit_now.py").write_text(
        "import os\ndef application(e, s):\n    os._exit(9)\n"
    )
    server = start_server()
    first = pid_of_answer(server)
    with pytest.raises(requests.RequestException):
        requests.get(server.url + "/exit_now.py", timeout=5)
    assert wait_for(lambda: pid_of_answer(server) != first)
    assert f"worker {first} died (exit code 9)" in server.log()


def test_sighup_reloads_with_zero_failures_and_new_code(start_server, site):
    module = site / "versioned.py"
    source = (
        "import os\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'%d ' + str(os.getpid()).encode()]\n"
    )
    module.write_text(source % 1)
    server = start_server("--workers", "2", "versioned:application")
    assert requests.get(server.url + "/").text.startswith("1 ")
    loop = ClientLoop(server, "/")
    time.sleep(0.5)
    module.write_text(source % 2)
    os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: requests.get(server.url + "/").text.startswith("2 "))
    assert wait_for(lambda: server.log().count("stopped (exit code 0)") >= 2)
    time.sleep(0.5)
    loop.stop()
    assert loop.failures == [], server.log()
    assert loop.ok > 20
    for _ in range(10):
        assert requests.get(server.url + "/").text.startswith("2 ")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_waits_for_request_and_exits_0(start_server, workers):
    server = start_server("--workers", workers)
    result = {}

    def slow():
        result["text"] = requests.get(server.url + "/sleepy.py?2", timeout=10).text

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    assert server.stop(signal.SIGTERM) == 0
    thread.join()
    assert result["text"] == "slept 2"


def run_verifier(server, seconds, connections=16, path="/verify.py", during=None):
    """Runs a verifying keep-alive client for `seconds`, calling `during(elapsed)` (if given)
    every 0.1 s meanwhile; returns the stopped client."""
    client = VerifyingClient(server.port, connections=connections, path=path)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(0.1)
        if during:
            during(time.monotonic() - started)
    return client.stop()


def test_max_requests_recycles_without_failures(start_server):
    """Keep-alive clients send their next request exactly as workers retire: none is lost."""
    server = start_server("--workers", "2", "--threads", "4", "--max-requests", "150",
                          "--max-requests-jitter", "30", "--access-log", "off")
    client = run_verifier(server, 4)
    assert client.failures == [] and client.refused == 0, client.summary()
    assert len(client.pids) >= 6, client.pids
    assert "retiring (served" in server.log()


def test_max_rss_recycles_without_failures(start_server):
    server = start_server("--workers", "2", "--threads", "4", "--max-rss", "60",
                          "--access-log", "off")
    client = run_verifier(server, 4, path="/verify_leaky.py")
    assert client.failures == [] and client.refused == 0, client.summary()
    assert len(client.pids) >= 3, client.pids
    assert "is over --max-rss 60" in server.log()


def test_reload_and_worker_count_changes_lose_no_request(start_server):
    server = start_server("--workers", "2", "--threads", "4", "--access-log", "off")
    signals_at = {1.0: signal.SIGHUP, 2.5: signal.SIGTTIN, 3.5: signal.SIGTTOU}

    def send(elapsed):
        for at in sorted(signals_at):
            if elapsed >= at:
                os.kill(server.pid, signals_at.pop(at))

    client = run_verifier(server, 5, during=send)
    assert client.failures == [] and client.refused == 0, client.summary()
    log = server.log()
    assert log.count("stopped (exit code 0)") >= 3, log
    assert len(client.pids) >= 4, client.pids


def test_timeout_recycles_a_stuck_worker_without_other_failures(start_server):
    server = start_server("--workers", "2", "--threads", "4", "--timeout", "1",
                          "--access-log", "off")
    stuck = server.connect(timeout=10)

    def spin(elapsed):
        if elapsed >= 0.5 and stuck.fileno() >= 0 and not getattr(spin, "sent", False):
            spin.sent = True
            stuck.sendall(b"GET /spin.py HTTP/1.1\r\nHost: x\r\n\r\n")

    client = run_verifier(server, 4, during=spin)
    answer = stuck.recv(65536)
    stuck.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 5"), answer
    assert client.failures == [] and client.refused == 0, client.summary()
    assert "made no progress" in server.log()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drain_serves_or_refuses_every_new_connection(start_server, workers):
    """During the drain a new connection is either answered (with Connection: close) or
    refused at connect, which clients and proxies retry; never accepted and then reset."""
    server = start_server("--workers", workers, port=free_port())  # its own socket
    slow = {}
    keeper = threading.Thread(target=lambda: slow.setdefault(
        "text", requests.get(server.url + "/sleepy.py?2", timeout=10).text))
    keeper.start()
    time.sleep(0.4)
    os.kill(server.pid, signal.SIGTERM)
    outcomes = []

    def newcomer():
        try:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        except ConnectionRefusedError:
            return outcomes.append("refused")
        with sock:
            try:
                sock.sendall(b"POST /verify.py HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 3\r\n\r\nabc")
                status, _, body = ResponseReader(sock).read("POST")
                outcomes.append(f"answered {status} {body[-2:]!r}")
            except (OSError, ConnectionError) as err:
                outcomes.append(f"lost: {err!r}")

    clients = []
    for _ in range(20):
        clients.append(threading.Thread(target=newcomer))
        clients[-1].start()
        time.sleep(0.05)
    for thread in clients:
        thread.join()
    keeper.join()
    assert slow["text"] == "slept 2"
    assert server.stop() == 0
    assert all(o == "refused" or o == "answered 200 b' 3'" for o in outcomes), outcomes
    assert "refused" in outcomes


def test_clients_that_stop_reading_cost_only_their_own_connections(start_server):
    """A client that stops reading a 20 MB answer and one that pipelines 100,000 requests
    without reading are slow clients, not stuck apps: --io-timeout closes their connections,
    and --timeout neither retires the worker nor fails anyone else's request."""
    server = start_server("--threads", "4", "--timeout", "2", "--io-timeout", "3",
                          "--access-log", "off")
    first = pid_of_answer(server)
    big = server.connect()
    big.sendall(b"GET /big.py?20 HTTP/1.1\r\nHost: x\r\n\r\n")

    def pipeline():
        with server.connect(timeout=8) as sock:
            try:
                sock.sendall(b"GET /verify.py?size=2000 HTTP/1.1\r\nHost: x\r\n\r\n" * 100_000)
            except OSError:
                pass  # closed by the server's --io-timeout

    pipeliner = threading.Thread(target=pipeline)
    pipeliner.start()
    client = run_verifier(server, 6, connections=8)
    pipeliner.join()
    received = 0
    big.settimeout(2)
    try:
        while chunk := big.recv(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass
    big.close()
    assert received < 20 << 20  # the server gave up on it
    assert client.failures == [] and client.refused == 0, client.summary()
    assert pid_of_answer(server) == first
    log = server.log()
    assert "made no progress" not in log and "retiring" not in log


def test_a_crashed_worker_names_the_requests_it_was_answering(start_server):
    server = start_server()
    with pytest.raises(requests.RequestException):
        requests.get(server.url + "/crash.py?why=segfault", timeout=10)
    assert wait_for(lambda: "killed by SIGSEGV" in server.log())
    assert 'was answering "GET /crash.py?why=segfault HTTP/1.1" from 127.0.0.1:' in server.log()
    assert requests.get(server.url + "/pid.py", timeout=10).status_code == 200


def test_broken_code_at_replacement_keeps_the_healthy_workers_serving(start_server, site):
    """Workers due for recycling while the code on disk does not import keep serving; the
    replacement is retried with growing waits and picks up the fix without a restart."""
    module = site / "recycled.py"
    module.write_text("from verify import application\n")
    server = start_server("--workers", "2", "--threads", "4", "--max-requests", "100",
                          "--access-log", "off", "recycled:application")
    started = time.monotonic()

    def break_then_fix(elapsed):
        if elapsed >= 0.5 and not getattr(break_then_fix, "broken", False):
            break_then_fix.broken = True
            module.write_text("this is not python\n")
        if elapsed >= 3 and not getattr(break_then_fix, "fixed", False):
            break_then_fix.fixed = True
            module.write_text("from verify import application\n")

    client = VerifyingClient(server.port, connections=8)
    while time.monotonic() - started < 4:
        time.sleep(0.1)
        break_then_fix(time.monotonic() - started)
    assert "could not start: the code does not load" in server.log()
    assert "worker(s) keep serving; trying again in" in server.log()
    pids_while_broken = set(client.pids)
    assert wait_for(lambda: len(client.pids - pids_while_broken) >= 2, timeout=20), server.log()
    client.stop()
    assert client.failures == [] and client.refused == 0, client.summary()
    assert server.process.poll() is None


def test_timeout_replaces_worker_stuck_in_app(start_server):
    server = start_server("--timeout", "1", "--threads", "4")
    first = pid_of_answer(server)
    started = time.monotonic()
    with server.connect(timeout=15) as sock:
        sock.sendall(b"GET /spin.py HTTP/1.1\r\nHost: x\r\n\r\n")
        data = sock.recv(65536)
    assert data == b"" or data.startswith(b"HTTP/1.1 5"), data
    assert time.monotonic() - started < 10
    assert wait_for(lambda: pid_of_answer(server) != first)
    assert "made no progress" in server.log()


def test_unix_socket_serves(start_server, tmp_path):
    path = tmp_path / "wsgihost.sock"
    path.touch()  # a stale file that is not a socket must be refused...
    path.unlink()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # ...but a stale socket file is replaced
    stale.close()
    server = start_server("--bind", f"unix:{path}", "--unix-mode", "600")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.sendall(b"GET /env_echo.py HTTP/1.1\r\nHost: example.org\r\n\r\n")
        status, _, body = ResponseReader(sock).read()
    import json

    env = json.loads(body)
    assert status == 200 and env["SERVER_NAME"] == "example.org" and env["SERVER_PORT"] == "80"
    assert server.stop() == 0
    assert not path.exists()


def test_two_workers_run_cpu_bound_requests_in_parallel(start_server):
    server = start_server("--workers", "2", "--threads", "1")
    pids = set()
    for _ in range(200):  # both workers are up and accepting
        pids.add(pid_of_answer(server))
        if len(pids) == 2:
            break
    times = []

    def burn():
        started = time.monotonic()
        requests.get(server.url + "/cpu.py?1", timeout=10)
        times.append(time.monotonic() - started)

    threads = [threading.Thread(target=burn) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
        # The first worker is now busy (its one thread burns CPU and does not poll), so
        # the second request can only be taken by the other worker.
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.8, times


def test_multiprocess_flag(start_server):
    assert requests.get(start_server("--workers", "2").url + "/pid.py").text.endswith("True")
    assert requests.get(start_server().url + "/pid.py").text.endswith("False")


def test_ttin_and_ttou_change_worker_count(start_server):
    server = start_server("--workers", "1")
    os.kill(server.pid, signal.SIGTTIN)
    assert wait_for(lambda: server.log().count(" started") >= 2)
    os.kill(server.pid, signal.SIGTTOU)
    assert wait_for(lambda: "stopped (exit code 0)" in server.log())
    assert requests.get(server.url + "/pid.py").status_code == 200


def test_worker_crashing_at_start_stops_the_master(command, site):
    import subprocess

    from conftest import free_port

    (site / "crasher.py").write_text("import os\nos._exit(7)\n")
    result = subprocess.run(
        [*command, "--bind", f"127.0.0.1:{free_port()}", "crasher:application"],
        cwd=site, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "died 5 times in a row while starting" in result.stderr


def test_preload_imports_once_in_the_master(start_server, site):
    (site / "preloaded.py").write_text(
        "import os, sys\n"
        "print(f'imported in {os.getpid()}', file=sys.stderr, flush=True)\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [str(os.getpid()).encode()]\n"
    )
    server = start_server("--preload", "--workers", "2", "preloaded:application")
    pids = {requests.get(server.url + "/").text for _ in range(50)}
    assert str(server.pid) not in pids
    assert server.log().count("imported in") == 1
    assert f"imported in {server.pid}" in server.log()
    assert server.stop() == 0


def test_systemd_socket_activation(command, site, tmp_path):
    import subprocess
    import sys

    from conftest import free_port

    port = free_port()
    launcher = (
        "import os, socket, sys\n"
        "sock = socket.socket()\n"
        "sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"sock.bind(('127.0.0.1', {port}))\n"
        "sock.listen(16)\n"
        "os.dup2(sock.fileno(), 3)\n"
        "os.set_inheritable(3, True)\n"
        "os.environ['LISTEN_FDS'] = '1'\n"
        "os.environ['LISTEN_PID'] = str(os.getpid())\n"
        # --bind names another port: the inherited socket must be used instead.
        f"os.execv({command[0]!r}, ['wsgihost', '--bind', '127.0.0.1:1'])\n"
    )
    log = open(tmp_path / "activation.log", "wb")
    process = subprocess.Popen([sys.executable, "-c", launcher], cwd=site, stdout=log, stderr=subprocess.STDOUT, pass_fds=())
    try:
        assert wait_for(lambda: _answers(port))
        assert requests.get(f"http://127.0.0.1:{port}/sayhello.py?name=systemd").text.count("Hello, systemd!") == 1
    finally:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(10) == 0


def _answers(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_out_of_descriptors_accepting_pauses_quietly_and_recovers(start_server):
    """With 64 descriptors and 150 clients holding connections, accepting fails: the worker
    backs off without a busy loop, logs it at most once a second, and serves again once
    clients leave."""
    import resource

    server = start_server(
        "--access-log", "off",
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
    worker = pid_of_answer(server)
    clients = []
    for _ in range(150):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /pid.py HTTP/1.1\r\nHost: x\r\n\r\n")
        clients.append(sock)
    time.sleep(0.5)
    cpu_before = _cpu_seconds(worker)
    time.sleep(3)
    cpu = _cpu_seconds(worker) - cpu_before
    failures = server.log().count("accept failed")
    for sock in clients:
        sock.close()
    assert cpu < 0.3, f"the worker used {cpu:.2f} s of CPU in 3 s while out of descriptors"
    assert 1 <= failures <= 6, f"{failures} accept-failure lines in ~3.5 s"
    assert "Too many open files" in server.log()
    assert wait_for(lambda: pid_of_answer(server) == worker)


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
