"""Binary upgrade on SIGUSR2: the master starts the command again (with the code and binary
on disk now), hands it the listening sockets, and exits once the new master serves; a new
master that fails, or is sent SIGQUIT before it is ready, leaves the old one serving."""
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from conftest import Server, free_port
from testsite import wait_for
from verifier import VerifyingClient

APP = (
    "import os, time\n"
    "VERSION = {version}\n"
    "if os.path.exists(os.path.join(os.path.dirname(__file__), 'hang_at_import')):\n"
    "    time.sleep(600)\n"
    "def application(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'%d %d' % (VERSION, os.getppid())]\n"
)


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_tree(pid):
    """SIGKILLs a master (not our child once it outlives the one that started it) and its
    workers, and waits until they are gone."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for victim in [pid, *map(int, children)]:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert wait_for(lambda: not alive(pid), timeout=10)


@pytest.fixture
def upgradable(command, site):
    """A server on its own port with --pid, and a way to read who answers."""
    (site / "versioned_app.py").write_text(APP.format(version=1))
    pidfile = site / "wsgihost.pid"
    port = free_port()
    server = Server(command, site, ["--pid", str(pidfile), "--workers", "2", "--access-log", "off",
                                    "--mount", "/v=versioned_app:application"], port)
    server.pidfile = pidfile
    started = []
    yield server, started
    for pid in started:
        if alive(pid):
            kill_tree(pid)
    server.stop()


def answer(server):
    version, master = requests.get(server.url + "/v", timeout=10).text.split()
    return int(version), int(master)


def test_sigusr2_hands_over_to_a_new_master_with_no_failed_request(upgradable, site):
    server, started = upgradable
    assert answer(server) == (1, server.pid)
    client = VerifyingClient(server.port, connections=8, path="/verify.py")
    time.sleep(0.3)
    (site / "versioned_app.py").write_text(APP.format(version=2))
    os.kill(server.pid, signal.SIGUSR2)
    pending = Path(str(server.pidfile) + ".2")
    assert wait_for(pending.exists), server.log()
    new_master = int(pending.read_text())
    started.append(new_master)
    # The old master exits once the new one serves; the pid file then names the new one.
    assert server.process.wait(timeout=30) == 0
    assert wait_for(lambda: server.pidfile.exists() and int(server.pidfile.read_text()) == new_master)
    assert not pending.exists()
    time.sleep(0.5)
    client.stop()
    assert client.failures == [] and client.refused == 0 and client.ok > 100, client.summary()
    assert answer(server) == (2, new_master)
    log = server.log()
    assert f"started a new master ({new_master})" in log
    assert f"the new master {new_master} is ready; this master stops its workers and exits" in log
    # The new master stops as any: SIGTERM, gracefully, and the pid file goes with it.
    os.kill(new_master, signal.SIGTERM)
    assert wait_for(lambda: not alive(new_master), timeout=15)
    assert not server.pidfile.exists()


def test_sigquit_to_a_new_master_before_it_is_ready_rolls_back(upgradable, site):
    server, started = upgradable
    (site / "hang_at_import").write_text("")
    os.kill(server.pid, signal.SIGUSR2)
    pending = Path(str(server.pidfile) + ".2")
    assert wait_for(pending.exists), server.log()
    new_master = int(pending.read_text())
    started.append(new_master)
    os.kill(server.pid, signal.SIGUSR2)
    assert wait_for(lambda: f"SIGUSR2 ignored: an upgrade is under way (new master {new_master})" in server.log())
    os.kill(new_master, signal.SIGQUIT)
    assert wait_for(lambda: f"the new master {new_master} exited before it was ready" in server.log())
    (site / "hang_at_import").unlink()
    assert server.process.poll() is None
    assert answer(server) == (1, server.pid)
    assert int(server.pidfile.read_text()) == server.pid
    # A later upgrade works.
    os.kill(server.pid, signal.SIGUSR2)
    assert server.process.wait(timeout=30) == 0
    newest = int(server.pidfile.read_text()) if wait_for(server.pidfile.exists) else None
    started.append(newest)
    assert newest != server.pid and answer(server) == (1, newest)


def test_a_new_master_that_cannot_load_the_app_leaves_the_old_one_serving(upgradable, site):
    server, started = upgradable
    (site / "versioned_app.py").write_text("def application(:\n")
    os.kill(server.pid, signal.SIGUSR2)
    assert wait_for(lambda: "exited before it was ready" in server.log(), timeout=20), server.log()
    assert "SyntaxError" in server.log()
    assert server.process.poll() is None
    assert answer(server) == (1, server.pid)


def test_the_pre_exec_hook_runs_in_the_old_master_before_the_new_one_starts(command, site):
    (site / "upgrade.conf.py").write_text(
        "import os\n"
        "def pre_exec(server):\n"
        "    with open('pre_exec.txt', 'a') as out:\n"
        "        out.write('%d\\n' % os.getpid())\n"
    )
    pidfile = site / "wsgihost.pid"
    server = Server(command, site, ["-c", "upgrade.conf.py", "--pid", str(pidfile), "--access-log", "off"],
                    free_port())
    new_master = None
    try:
        os.kill(server.pid, signal.SIGUSR2)
        assert server.process.wait(timeout=30) == 0, server.log()
        assert (site / "pre_exec.txt").read_text() == f"{server.pid}\n"
        assert wait_for(lambda: pidfile.exists() and int(pidfile.read_text()) != server.pid)
        new_master = int(pidfile.read_text())
        assert requests.get(server.url + "/ctime.py", timeout=10).status_code == 200
    finally:
        if new_master and alive(new_master):
            kill_tree(new_master)
        server.stop()


def test_a_service_manager_is_told_the_new_main_pid_and_hears_from_the_new_master(command, site, tmp_path):
    """Under systemd (Type=notify) the old master says MAINPID=<new> as it hands over, and
    the new master then reports to systemd's socket itself (here a socket of the test's)."""
    import socket
    import subprocess

    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify.sock"))
    manager.settimeout(20)
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    old = subprocess.Popen([*command, "--bind", f"127.0.0.1:{port}", "--access-log", "off"], cwd=site,
                           env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
                           stdout=log, stderr=subprocess.STDOUT)
    new_master = None

    def next_message():
        return manager.recv(4096).decode()

    try:
        assert next_message().startswith("READY=1")
        os.kill(old.pid, signal.SIGUSR2)
        handed_over = next_message()
        assert handed_over.startswith("MAINPID="), handed_over
        new_master = int(handed_over.split("=")[1])
        assert old.wait(timeout=30) == 0
        assert requests.get(f"http://127.0.0.1:{port}/ctime.py", timeout=10).status_code == 200
        os.kill(new_master, signal.SIGHUP)
        assert next_message().startswith("RELOADING=1")
        assert next_message() == f"READY=1\nMAINPID={new_master}"
    finally:
        if new_master and alive(new_master):
            kill_tree(new_master)
        if old.poll() is None:
            old.kill()
            old.wait()
        manager.close()
