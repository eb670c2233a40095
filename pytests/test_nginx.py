"""deploy/nginx/wsgihost.conf, for real: nginx in front of two wsgihost instances (one on
TCP, one on a unix socket), on loopback; and deploy/nginx/stream-proxy-protocol.conf, nginx
as a TCP balancer sending PROXY v1."""
import http.client
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, Server, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def get(port, path, source="127.0.0.1"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


def start_nginx(prefix, port, path):
    """nginx with `prefix`/nginx.conf, once `path` answers through it on `port`."""
    nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            get(port, path)
            break
        except OSError:
            time.sleep(0.05)
    return nginx


@pytest.fixture
def balanced(command, site, tmp_path):
    if NGINX is None:
        pytest.skip("the nginx test needs Debian's nginx (apt-get install nginx); CI installs it")
    port_a, port_front = free_port(), free_port()
    socket_b = tmp_path / "instance-b.sock"
    instance_a = Server(command, site, ["--env", "INSTANCE=a", "--access-log", "off"], port_a)
    # Instance B also listens on a TCP port (the fixture waits on it); nginx uses its socket.
    instance_b = Server(command, site, ["--bind", f"unix:{socket_b}", "--env", "INSTANCE=b", "--access-log", "off"], free_port())
    site_conf = (REPO / "deploy" / "nginx" / "wsgihost.conf").read_text()
    site_conf = (site_conf.replace("127.0.0.1:8001", f"127.0.0.1:{port_a}")
                 .replace("unix:/run/wsgihost/instance-b.sock", f"unix:{socket_b}")
                 .replace("listen 80;", f"listen 127.0.0.1:{port_front};"))
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "wsgihost.conf").write_text(site_conf)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {prefix}/tmp;\n proxy_temp_path {prefix}/tmp;\n"
        f" include {prefix}/wsgihost.conf;\n}}\n"
    )
    nginx = start_nginx(prefix, port_front, "/")
    yield port_front, instance_a, instance_b
    os.kill(nginx.pid, signal.SIGQUIT)
    nginx.wait(10)
    instance_a.stop()
    instance_b.stop()


def test_both_instances_serve_through_nginx(balanced):
    port, _, _ = balanced
    seen = {get(port, "/instance.py")[1].split()[0] for _ in range(20)}
    assert seen == {"a", "b"}


def test_client_address_reaches_remote_addr(balanced):
    port, _, _ = balanced
    for _ in range(4):  # both instances
        status, body = get(port, "/instance.py", source="127.0.0.2")
        assert status == 200 and body.split()[1] == "127.0.0.2"


def test_stopping_one_instance_gracefully_loses_no_request(balanced):
    port, instance_a, _ = balanced
    results, failures = [], []
    running = True

    def loop():
        while running:
            try:
                status, body = get(port, "/sleepy.py?0.05")
                (results if status == 200 else failures).append(status)
            except OSError as err:
                failures.append(repr(err))

    clients = [threading.Thread(target=loop) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(1)
    assert instance_a.stop(signal.SIGTERM) == 0
    time.sleep(1)
    running = False
    for client in clients:
        client.join()
    assert failures == []
    assert len(results) > 20


def test_a_killed_worker_costs_no_idempotent_request_through_nginx(balanced):
    """kill -9 of an instance's worker under verifying GET load through nginx: nginx
    retries what the dead worker dropped on the other instance, so no request fails."""
    from verifier import VerifyingClient, get_check

    port, instance_a, _ = balanced
    client = VerifyingClient(port, connections=16, checks=[(1, get_check())])
    time.sleep(1)
    worker = int(open(f"/proc/{instance_a.pid}/task/{instance_a.pid}/children").read().split()[0])
    os.kill(worker, signal.SIGKILL)
    time.sleep(2)
    client.stop()
    assert "killed by SIGKILL" in instance_a.log()
    assert client.failures == [] and client.ok > 500, client.summary()


STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


@pytest.fixture
def stream_front(command, site, tmp_path):
    """deploy/nginx/stream-proxy-protocol.conf: nginx's stream module sending PROXY v1 to
    two instances started with --proxy-protocol v1 (and --shutdown-delay, as deployed)."""
    if NGINX is None or not STREAM_MODULE.exists():
        pytest.skip("the nginx stream test needs Debian's nginx and libnginx-mod-stream; CI installs them")
    ports = [free_port(), free_port()]
    args = ["--proxy-protocol", "v1", "--shutdown-delay", "0.5", "--access-log", "off"]
    instances = [Server(command, site, [*args, "--env", f"INSTANCE={name}"], port)
                 for name, port in zip("ab", ports)]
    front = free_port()
    conf = (REPO / "deploy" / "nginx" / "stream-proxy-protocol.conf").read_text()
    conf = (conf.replace("127.0.0.1:8001", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:8002", f"127.0.0.1:{ports[1]}")
            .replace("listen 8080;", f"listen 127.0.0.1:{front};"))
    prefix = tmp_path / "nginx-stream"
    (prefix / "logs").mkdir(parents=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"load_module {STREAM_MODULE};\n{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\nevents {{ worker_connections 256; }}\n{conf}")
    nginx = start_nginx(prefix, front, "/ctime.py")
    yield front, instances
    os.kill(nginx.pid, signal.SIGQUIT)
    nginx.wait(10)
    for instance in instances:
        instance.stop()


def test_the_client_address_arrives_through_nginx_stream_as_proxy_v1(stream_front):
    front, _ = stream_front
    answers = [get(front, "/instance.py", source="127.0.0.2") for _ in range(6)]
    assert {body.split()[0] for _, body in answers} == {"a", "b"}
    assert {(status, body.split()[1]) for status, body in answers} == {(200, "127.0.0.2")}


def test_stopping_an_instance_behind_nginx_stream_loses_no_request(stream_front):
    from verifier import VerifyingClient

    front, instances = stream_front
    client = VerifyingClient(front, connections=8)
    time.sleep(0.5)
    assert instances[0].stop(signal.SIGTERM) == 0
    time.sleep(1)
    client.stop()
    assert client.failures == [] and client.ok > 200, client.summary()
