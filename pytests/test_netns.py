"""The deploy test bed in network namespaces (pytests/netns_testbed.py): HAProxy and two
wsgihost hosts on a veth bridge inside a sandbox of this test's own (`unshare --net
--mount`), a verifying client through HAProxy during a rolling deploy, SIGUSR2 upgrades,
SIGHUPs and a SIGKILL of one host."""
import json
import subprocess
import sys

import pytest

from conftest import REPO
from haproxy import HAPROXY


@pytest.fixture(scope="module")
def testbed(command, via, tmp_path_factory):
    if via != "binary":
        pytest.skip("tests deployment behaviour, the same in both builds: runs with --via binary "
                    "(./run-tests runs both ways; the upgrade tests run in both)")
    if HAPROXY is None:
        pytest.skip("the test bed needs Debian's haproxy (apt-get install haproxy); CI installs it")
    probe = subprocess.run(["unshare", "--net", "--mount", "ip", "link", "add", "br0", "type", "bridge"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"network namespaces cannot be made here (unshare --net --mount: {probe.stderr.strip()})")
    work = tmp_path_factory.mktemp("testbed")
    settings = work / "settings.json"
    settings.write_text(json.dumps({"command": command, "work": str(work)}))
    result = subprocess.run(["unshare", "--net", "--mount", sys.executable, str(REPO / "pytests" / "netns_testbed.py"),
                             str(settings)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print("test bed:", json.dumps(report, indent=1))
    return report


@pytest.mark.parametrize("scenario", ["rolling deploy", "SIGUSR2 upgrade", "SIGHUP"])
def test_deploys_through_haproxy_lose_no_request(testbed, scenario):
    result = testbed[scenario]
    assert result["failed"] == 0 and result["refused"] == 0 and result["ok"] > 500, result


def test_a_killed_host_loses_only_what_was_in_flight_there(testbed):
    result = testbed["SIGKILL of one host"]
    # At most one request per client connection can have been on the killed host.
    assert result["failed"] <= 8 and result["ok"] > 100, result
    assert result["killed"] == 3  # the master and its two workers


def test_new_code_and_the_client_address_arrive_after_the_deploy(testbed):
    # Version 2 was deployed; REMOTE_ADDR is the client's (the sandbox's), via PROXY v2.
    assert testbed["answer after the deploy"] == "2 10.77.0.1"
