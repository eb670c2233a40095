"""HAProxy in front of wsgihost instances on loopback, for pytests/test_haproxy.py and
benches/deploy.py: deploy/haproxy/haproxy.cfg with its addresses moved, a stats socket to
read which backends HAProxy has up, and the process."""
import os
import shutil
import socket
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


def address(where):
    """A port on 127.0.0.1, or "host:port" as it is."""
    return where if isinstance(where, str) else f"127.0.0.1:{where}"


class Haproxy:
    """HAProxy on `front` balancing over `backends` ({name: where}), each a port on
    127.0.0.1 or "host:port". `edit` may change the config text first (e.g. leave out
    send-proxy-v2 for servers without it); `prefix` runs it through another command
    (`ip netns exec NAME`)."""

    def __init__(self, folder, front, backends, edit=None, cpus=None, prefix=()):
        self.stats_socket = Path(folder) / "haproxy.sock"
        config = (REPO / "deploy" / "haproxy" / "haproxy.cfg").read_text()
        config = (config.replace("bind :80", f"bind {address(front)}")
                  .replace("127.0.0.1:8001", address(backends["a"]))
                  .replace("127.0.0.1:8002", address(backends["b"]))
                  .replace("    maxconn 1024\n", f"    maxconn 1024\n    stats socket {self.stats_socket}\n"))
        if edit:
            config = edit(config)
        path = Path(folder) / "haproxy.cfg"
        path.write_text(config)
        pinned = ["taskset", "-c", cpus] if cpus else []
        self.process = subprocess.Popen([*prefix, *pinned, HAPROXY, "-db", "-f", str(path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def states(self):
        """{server name: status} from the stats socket (`show stat`)."""
        with socket.socket(socket.AF_UNIX) as stats:
            stats.connect(str(self.stats_socket))
            stats.sendall(b"show stat\n")
            text = b""
            while chunk := stats.recv(65536):
                text += chunk
        lines = text.decode().splitlines()
        fields = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(fields, line.split(","))) for line in lines[1:] if line]
        return {row["svname"]: row["status"] for row in rows if row["pxname"] == "wsgihost"
                and row["svname"] not in ("FRONTEND", "BACKEND")}

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
