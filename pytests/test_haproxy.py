"""deploy/haproxy/haproxy.cfg, for real: HAProxy health-checks two wsgihost instances'
/readyz on loopback and sends them PROXY v2 headers; a stop with --shutdown-delay (or a
rolling deploy of both) loses no request of a verifying client that runs through HAProxy
meanwhile."""
import http.client
import json
import os
import signal
import time

import pytest

from conftest import REPO, Server, free_port
from haproxy import HAPROXY, Haproxy
from testsite import wait_for
from verifier import VerifyingClient

INSTANCE_ARGS = ["--health-path", "/", "--shutdown-delay", "2", "--proxy-protocol", "v2", "--access-log", "off"]


@pytest.fixture
def haproxy(command, via, site, tmp_path):
    if via != "binary":
        pytest.skip("tests deployment behaviour, the same in both builds: runs with --via binary "
                    "(./run-tests runs both ways; the upgrade tests run in both)")
    if HAPROXY is None:
        pytest.skip("the HAProxy test needs Debian's haproxy (apt-get install haproxy); CI installs it")
    ports = {"a": free_port(), "b": free_port()}
    instances = {name: Server(command, site, INSTANCE_ARGS, port) for name, port in ports.items()}
    front = free_port()
    proxy = Haproxy(tmp_path, front, ports)
    up = lambda: proxy.states() == {"a": "UP", "b": "UP"}
    assert wait_for(up, ignoring=(OSError, IndexError, KeyError)), "HAProxy did not see both instances up"

    def restart(name):
        """Starts instance `name` again (new code would be on disk by now)."""
        instances[name] = Server(command, site, INSTANCE_ARGS, ports[name])
        return instances[name]

    yield front, instances, proxy.states, restart
    proxy.stop()
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
