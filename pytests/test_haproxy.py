"""deploy/haproxy/haproxy.cfg, for real: HAProxy health-checks two wsgihost instances'
/readyz on loopback and sends them PROXY v2 headers; a stop with --shutdown-delay (or a
rolling deploy of both) loses no request of a verifying client that runs through HAProxy
meanwhile."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import REPO, Server, free_port
from testsite import wait_for
from verifier import VerifyingClient

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
INSTANCE_ARGS = ["--health-path", "/", "--shutdown-delay", "2", "--proxy-protocol", "v2", "--access-log", "off"]


def server_states(stats_socket):
    """{server name: status} from HAProxy's stats socket (`show stat`)."""
    with socket.socket(socket.AF_UNIX) as stats:
        stats.connect(str(stats_socket))
        stats.sendall(b"show stat\n")
        text = b""
        while chunk := stats.recv(65536):
            text += chunk
    lines = text.decode().splitlines()
    fields = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(fields, line.split(","))) for line in lines[1:] if line]
    return {row["svname"]: row["status"] for row in rows if row["pxname"] == "wsgihost"
            and row["svname"] not in ("FRONTEND", "BACKEND")}


@pytest.fixture
def haproxy(command, site, tmp_path):
    if HAPROXY is None:
        pytest.skip("the HAProxy test needs Debian's haproxy (apt-get install haproxy); CI installs it")
    ports = {"a": free_port(), "b": free_port()}
    instances = {name: Server(command, site, INSTANCE_ARGS, port) for name, port in ports.items()}
    front = free_port()
    stats_socket = tmp_path / "haproxy.sock"
    config = (REPO / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    config = (config.replace("bind :80", f"bind 127.0.0.1:{front}")
              .replace("127.0.0.1:8001", f"127.0.0.1:{ports['a']}")
              .replace("127.0.0.1:8002", f"127.0.0.1:{ports['b']}")
              .replace("    maxconn 1024\n", f"    maxconn 1024\n    stats socket {stats_socket}\n"))
    (tmp_path / "haproxy.cfg").write_text(config)
    proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(tmp_path / "haproxy.cfg")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up = lambda: server_states(stats_socket) == {"a": "UP", "b": "UP"}
    assert wait_for(up, ignoring=(OSError, IndexError, KeyError)), "HAProxy did not see both instances up"

    def restart(name):
        """Starts instance `name` again (new code would be on disk by now)."""
        instances[name] = Server(command, site, INSTANCE_ARGS, ports[name])
        return instances[name]

    yield front, instances, lambda: server_states(stats_socket), restart
    proxy.terminate()
    proxy.wait(10)
    for instance in instances.values():
        if instance.process.poll() is None:
            instance.stop()


def test_the_client_address_arrives_through_haproxy_as_proxy_v2(haproxy):
    front, _, _, _ = haproxy
    seen = set()
    for _ in range(4):  # both instances
        connection = http.client.HTTPConnection("127.0.0.1", front, timeout=10, source_address=("127.0.0.2", 0))
        connection.request("GET", "/env_echo.py")
        environ = json.loads(connection.getresponse().read())
        connection.close()
        seen.add(environ["REMOTE_ADDR"])
    assert seen == {"127.0.0.2"}


def test_haproxy_takes_a_stopping_instance_out_before_it_drains(haproxy):
    front, instances, states, _ = haproxy
    client = VerifyingClient(front, connections=8)
    time.sleep(0.5)
    os.kill(instances["a"].pid, signal.SIGTERM)
    # Within the 2 s delay, two failed checks at 250 ms have taken A out; A still serves.
    assert wait_for(lambda: states()["a"].startswith("DOWN"), timeout=1.8), states()
    assert instances["a"].process.poll() is None
    assert instances["a"].process.wait(timeout=15) == 0
    time.sleep(0.5)
    client.stop()
    assert client.failures == [] and client.ok > 200, client.summary()
    assert states() == {"a": "DOWN", "b": "UP"} or states()["a"].startswith("DOWN")


def test_a_rolling_deploy_through_haproxy_loses_no_request(haproxy):
    front, instances, states, restart = haproxy
    client = VerifyingClient(front, connections=8)
    for name in ("a", "b"):
        time.sleep(0.3)
        os.kill(instances[name].pid, signal.SIGTERM)
        assert instances[name].process.wait(timeout=15) == 0
        restart(name)
        assert wait_for(lambda: states()[name] == "UP", timeout=10), states()
    time.sleep(0.3)
    client.stop()
    assert client.failures == [] and client.refused == 0 and client.ok > 300, client.summary()


def test_the_documented_haproxy_backend_is_the_tested_file():
    """The backend shown in the README and docs/deploying.md is the one these tests run."""
    tested = (REPO / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    for document in (REPO / "README.md", REPO / "docs" / "deploying.md"):
        text = document.read_text()
        shown = text.split("```\nbackend wsgihost\n", 1)[1].split("```", 1)[0]
        lines = [line.strip() for line in shown.splitlines() if line.strip()]
        tested_lines = [line.strip() for line in tested.split("backend wsgihost\n", 1)[1].splitlines()]
        assert all(line in tested_lines for line in lines), (document.name, lines)
