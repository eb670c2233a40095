"""Threads share the event loop: a blocking app must not stall other requests."""
import threading
import time

import requests


def test_sleeping_script_does_not_delay_static_or_other_scripts(server):
    slow_result = {}

    def slow():
        started = time.monotonic()
        slow_result["text"] = requests.get(server.url + "/sleepy.py?3", timeout=10).text
        slow_result["took"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)  # the slow request is now running
    started = time.monotonic()
    assert requests.get(server.url + "/index.html", timeout=5).status_code == 200
    assert requests.get(server.url + "/sayhello.py", timeout=5).status_code == 200
    assert requests.get(server.url + "/sleepy.py?0.1", timeout=5).text == "slept 0.1"
    assert time.monotonic() - started < 1.5
    thread.join()
    assert slow_result["text"] == "slept 3" and slow_result["took"] >= 3


def test_requests_in_flight_are_bounded_by_threads(start_server):
    server = start_server("--threads", "2")
    results = []

    def slow():
        results.append(requests.get(server.url + "/sleepy.py?1", timeout=10).text)

    started = time.monotonic()
    threads = [threading.Thread(target=slow) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    assert results == ["slept 1"] * 4
    assert took >= 1.9, "two threads cannot run four 1 s requests in under 2 s"
