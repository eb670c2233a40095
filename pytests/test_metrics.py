"""Prometheus metrics from the master: per worker and summed, kept across worker deaths."""
import os
import signal
import time

import requests

from conftest import free_port


def scrape(port):
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return text, values


def test_metrics_per_worker_and_total(start_server):
    port = free_port()
    server = start_server("--workers", "2", "--metrics", f"127.0.0.1:{port}")
    for _ in range(10):
        assert requests.get(server.url + "/index.html").status_code == 200
    for _ in range(3):
        requests.get(server.url + "/missing")
    requests.get(server.url + "/errors.py?before")
    text, values = scrape(port)
    assert "# TYPE wsgihost_requests_total counter" in text
    assert values['wsgihost_requests_total{worker="all",status="2xx"}'] == 10
    assert values['wsgihost_requests_total{worker="all",status="4xx"}'] == 3
    assert values['wsgihost_requests_total{worker="all",status="5xx"}'] == 1
    per_worker = [v for k, v in values.items() if k.startswith("wsgihost_requests_total") and 'status="2xx"' in k and 'worker="all"' not in k]
    assert len(per_worker) == 2 and sum(per_worker) == 10
    assert values['wsgihost_request_duration_seconds_count{worker="all"}'] == 14
    assert values['wsgihost_request_duration_seconds_bucket{worker="all",le="+Inf"}'] == 14
    assert values['wsgihost_sent_bytes_total{worker="all"}'] > 10 * 990
    assert values['wsgihost_received_bytes_total{worker="all"}'] > 14 * 30
    assert values['wsgihost_connections_accepted_total{worker="all"}'] >= 14
    assert values['wsgihost_requests_in_flight{worker="all"}'] == 0
    assert values["wsgihost_workers"] == 2


def test_counters_survive_a_worker_death(start_server):
    port = free_port()
    server = start_server("--workers", "2", "--metrics", f"127.0.0.1:{port}")
    for _ in range(20):
        requests.get(server.url + "/pid.py")
    before = scrape(port)[1]['wsgihost_requests_total{worker="all",status="2xx"}']
    victim = int(requests.get(server.url + "/pid.py").text.split()[0])
    time.sleep(0.3)  # the worker counts a request just after sending its answer
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    died = f"worker {victim} died"
    while time.monotonic() < deadline and not (died in server.log() and "started" in server.log().split(died)[-1]):
        time.sleep(0.05)
    text, after = scrape(port)
    assert after['wsgihost_requests_total{worker="all",status="2xx"}'] >= before + 1
    assert after["wsgihost_worker_restarts_total"] >= 1
    assert f'worker="{victim}"' not in text
