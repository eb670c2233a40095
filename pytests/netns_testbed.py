"""A deploy test bed in network namespaces: run it inside a sandbox of its own
(`unshare --net --mount python pytests/netns_testbed.py CONFIG.json`; pytests/test_netns.py
does). In the sandbox's own network namespace it makes a bridge and three namespaces on it,
with addresses only it uses (10.77.0.0/24): `lb` runs HAProxy (deploy/haproxy/haproxy.cfg,
/readyz checks, PROXY v2 to the backends), `app1` and `app2` run wsgihost. A verifying
client in the sandbox runs through HAProxy at a steady rate while each scenario runs:

- a rolling deploy: SIGTERM (with --shutdown-delay) to one host, start it again with new
  code, wait until HAProxy has it up, then the other;
- a SIGUSR2 binary upgrade of each host;
- a SIGHUP of each host;
- a SIGKILL of one host's processes: only the requests in flight there may fail.

Prints one JSON object: per scenario, requests answered and failed."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from haproxy import Haproxy  # noqa: E402
from testsite import make_site, wait_for  # noqa: E402
from verifier import VerifyingClient  # noqa: E402

SUBNET = "10.77.0"
SANDBOX_ADDRESS = f"{SUBNET}.1"
HOSTS = {"lb": f"{SUBNET}.10", "app1": f"{SUBNET}.11", "app2": f"{SUBNET}.12"}
PORT = 8000
CONNECTIONS = 8

VERSIONED = (
    "import os\n"
    "VERSION = {version}\n"
    "def application(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'%d %s' % (VERSION, environ['REMOTE_ADDR'].encode())]\n"
)


def sh(*command):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_network():
    """The bridge in the sandbox, and a veth from it into each namespace."""
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/netns"], check=False,
                   stderr=subprocess.DEVNULL)
    os.makedirs("/run/netns", exist_ok=True)
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "br0", "type", "bridge")
    sh("ip", "addr", "add", f"{SANDBOX_ADDRESS}/24", "dev", "br0")
    sh("ip", "link", "set", "br0", "up")
    for name, address in HOSTS.items():
        sh("ip", "netns", "add", name)
        sh("ip", "link", "add", f"v-{name}", "type", "veth", "peer", "name", "eth0", "netns", name)
        sh("ip", "link", "set", f"v-{name}", "master", "br0", "up")
        sh("ip", "-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")


class Host:
    """wsgihost on an app host, with a pid file (a SIGUSR2 changes the master)."""

    def __init__(self, name, command, site):
        self.name, self.command, self.site = name, command, site
        self.pidfile = site / f"{name}.pid"
        self.log = open(site / f"{name}.log", "ab")
        self.start()

    def start(self):
        args = ["--bind", f"{HOSTS[self.name]}:{PORT}", "--workers", "2", "--threads", "4",
                "--access-log", "off", "--health-path", "/", "--shutdown-delay", "1.5",
                "--proxy-protocol", "v2", "--proxy-allow-from", HOSTS["lb"], "--pid", str(self.pidfile),
                "--mount", "/v=versioned:application"]
        self.process = subprocess.Popen(["ip", "netns", "exec", self.name, *self.command, *args],
                                        cwd=self.site, stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_for(lambda: self.master() is not None, timeout=30), f"{self.name} did not start"

    def master(self):
        try:
            return int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def processes(self):
        master = self.master()
        if master is None:
            return []
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except OSError:
            children = []
        return [master, *map(int, children)]


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def reap():
    """Collects exited children (masters an upgrade left behind are re-parented to us, the
    sandbox's first process)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main():
    settings = json.loads(Path(sys.argv[1]).read_text())
    command = settings["command"]
    work = Path(settings["work"])
    make_network()
    site = work / "site"
    make_site(site)
    (site / "versioned.py").write_text(VERSIONED.format(version=1))
    hosts = {name: Host(name, command, site) for name in ("app1", "app2")}
    proxy = Haproxy(work, f"{HOSTS['lb']}:80", {"a": f"{HOSTS['app1']}:{PORT}", "b": f"{HOSTS['app2']}:{PORT}"},
                    prefix=("ip", "netns", "exec", "lb"))
    states = proxy.states
    both_up = lambda: states() == {"a": "UP", "b": "UP"}
    report = {}
    try:
        assert wait_for(both_up, timeout=30, ignoring=(OSError, IndexError, KeyError)), "HAProxy: not both up"

        def scenario(name, action):
            client = VerifyingClient(80, host=HOSTS["lb"], connections=CONNECTIONS, pause=0.005)
            time.sleep(0.5)
            began = time.monotonic()
            detail = action() or {}
            assert wait_for(both_up, timeout=30, ignoring=(OSError, IndexError, KeyError)), f"{name}: not both up"
            time.sleep(0.5)
            client.stop()
            report[name] = {"ok": client.ok, "failed": len(client.failures), "refused": client.refused,
                            "seconds": round(time.monotonic() - began, 1), "examples": client.failures[:3],
                            **detail}

        def rolling_deploy():
            (site / "versioned.py").write_text(VERSIONED.format(version=2))
            for label, host in zip("ab", hosts.values()):
                master = host.master()
                os.kill(master, signal.SIGTERM)
                host.process.wait(60)
                host.start()
                assert wait_for(lambda: states()[label] == "UP", timeout=30), f"{host.name} not back"

        def upgrade_each():
            for label, host in zip("ab", hosts.values()):
                old = host.master()
                os.kill(old, signal.SIGUSR2)
                assert wait_for(lambda: not alive(old) and host.master() not in (None, old), timeout=60), \
                    f"{host.name}: no upgrade"
                reap()

        def hup_each():
            for host in hosts.values():
                os.kill(host.master(), signal.SIGHUP)
                time.sleep(1.5)

        def kill_one():
            host = hosts["app1"]
            victims = host.processes()
            signal_all(victims, signal.SIGKILL)
            assert wait_for(lambda: not any(alive(p) for p in victims), timeout=10)
            reap()
            host.pidfile.unlink(missing_ok=True)
            host.start()
            return {"killed": len(victims)}

        scenario("rolling deploy", rolling_deploy)
        scenario("SIGUSR2 upgrade", upgrade_each)
        scenario("SIGHUP", hup_each)
        scenario("SIGKILL of one host", kill_one)
        report["answer after the deploy"] = requests.get(f"http://{HOSTS['lb']}/v", timeout=10).text
    finally:
        proxy.stop()
        running = lambda: [pid for host in hosts.values() for pid in host.processes()]
        signal_all(running(), signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(alive(pid) for pid in running()):
            time.sleep(0.1)
        signal_all(running(), signal.SIGKILL)
        print(json.dumps(report))


if __name__ == "__main__":
    main()
