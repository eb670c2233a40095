"""Threads share the event loop: a blocking app must not stall other requests."""
import os
import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

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
    # --threads 2 runs three threads (one more for quick requests): still two rounds.
    assert took >= 1.9, "three threads cannot run four 1 s requests in under 2 s"


def test_a_finished_response_is_not_held_behind_a_slow_request(start_server):
    """Small finished responses are written in batches; one must not wait for a slow
    request that the same batch ran into. With one thread busy on a first request, a quick
    and a slow request arrive together and are served in one batch."""
    import socket

    from conftest import ResponseReader

    server = start_server("--threads", "1")
    for _ in range(3):
        busy = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        busy.sendall(b"GET /sleepy.py?0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        quick = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        started = time.monotonic()
        quick.sendall(b"GET /sayhello.py?name=q HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.01)
        slow.sendall(b"GET /sleepy.py?1 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = ResponseReader(quick).read()
        took = time.monotonic() - started
        assert status == 200 and b"Hello, q!" in body
        assert took < 0.8, f"the quick response took {took:.2f} s"
        assert ResponseReader(slow).read()[2] == b"slept 1"
        assert ResponseReader(busy).read()[2] == b"slept 0.3"
        for sock in (busy, quick, slow):
            sock.close()


def test_many_keep_alive_clients_get_their_own_responses_in_order(server):
    """Responses of many concurrent pipelining clients, written in batches, reach the right
    client in request order."""
    import socket

    from conftest import ResponseReader

    def client(number, failures):
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                requests_ = b"".join(
                    b"GET /sayhello.py?name=c%dr%d HTTP/1.1\r\nHost: x\r\n\r\n" % (number, i)
                    for i in range(20)
                )
                sock.sendall(requests_)
                reader = ResponseReader(sock)
                for i in range(20):
                    status, _, body = reader.read()
                    expected = b"Hello, c%dr%d!" % (number, i)
                    if status != 200 or expected not in body:
                        failures.append((number, i, status, body))
        except OSError as err:
            failures.append((number, repr(err)))

    failures = []
    threads = [threading.Thread(target=client, args=(n, failures)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_slow_clients_run_on_every_thread_and_quick_requests_on_one_more(start_server):
    """With --threads 2, two connections whose requests wait (sleep 0.3 s) are served at
    the same time, and quick requests still never queue behind them: the worker keeps one
    thread more for those."""
    server = start_server("--threads", "2")
    stop = threading.Event()
    slow_finished = []

    def slow_client():
        with requests.Session() as session:  # one keep-alive connection
            while not stop.is_set():
                assert session.get(server.url + "/sleepy.py?0.3", timeout=10).text == "slept 0.3"
                slow_finished.append(time.monotonic())

    slow = [threading.Thread(target=slow_client) for _ in range(2)]
    for thread in slow:
        thread.start()
    time.sleep(1)  # every slow connection has had a slow request
    window_start = time.monotonic()
    worst = 0.0
    for _ in range(10):
        started = time.monotonic()
        assert requests.get(server.url + "/sayhello.py", timeout=5).status_code == 200
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.1)
    window = time.monotonic() - window_start
    stop.set()
    for thread in slow:
        thread.join()
    assert worst < 0.2, f"a quick request waited {worst:.2f} s behind slow ones"
    in_window = sum(1 for t in slow_finished if window_start <= t <= window_start + window)
    # Side by side: ~6.7 a second; one after the other: ~3.3.
    assert in_window / window > 5, f"{in_window} slow requests in {window:.2f} s: not run side by side"


def test_one_thread_answers_one_request_at_a_time(start_server):
    """--threads 1 is for apps that are not thread-safe: one request at a time (a quick one
    waits for the slow one in flight), and the environ says so."""
    server = start_server("--threads", "1")
    assert requests.get(server.url + "/env_echo.py", timeout=5).json()["wsgi.multithread"] is False
    slow = threading.Thread(target=lambda: requests.get(server.url + "/sleepy.py?1", timeout=10))
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert requests.get(server.url + "/sayhello.py", timeout=5).status_code == 200
    waited = time.monotonic() - started
    slow.join()
    assert waited > 0.5, f"a second request ran beside the first after {waited:.2f} s"


def test_slow_paths_are_known_whatever_connection_brings_them(start_server):
    """Slowness belongs to the path: clients that open a new connection per request (or a
    proxy's keep-alive pool, which mixes paths on its connections) still leave a thread
    for quick requests."""
    server = start_server("--threads", "2")
    stop = threading.Event()

    def slow_client():
        while not stop.is_set():
            response = requests.get(server.url + "/sleepy.py?0.3", headers={"Connection": "close"}, timeout=10)
            assert response.text == "slept 0.3"

    slow = [threading.Thread(target=slow_client) for _ in range(3)]
    for thread in slow:
        thread.start()
    time.sleep(1)  # the path has been answered slowly
    worst = 0.0
    for _ in range(10):
        started = time.monotonic()
        assert requests.get(server.url + "/sayhello.py", headers={"Connection": "close"}, timeout=5).status_code == 200
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.05)
    stop.set()
    for thread in slow:
        thread.join()
    assert worst < 0.2, f"a quick request waited {worst:.2f} s behind slow ones"


def wakeups_by_thread(pid):
    """Each thread's voluntary context switches so far (each is one block and wake-up), by
    thread name: a count, unlike CPU time, that a busy machine does not blur."""
    counts = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        switches = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
        counts[name] = counts.get(name, 0) + switches
    return counts


def test_an_idle_worker_rests_and_wakes_for_the_next_request(start_server):
    """With nothing to do, the worker stops its millisecond checks (an idle worker used
    2-3% of a core on them, a thousand wake-ups a second); a request that blocks after the
    rest still gets a thread taking over the loop, and the Date header is still now."""
    server = start_server("--threads", "2")
    assert requests.get(server.url + "/sayhello.py", timeout=5).status_code == 200
    worker = int(Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()[0])
    time.sleep(0.5)  # well past the 100 quiet checks
    before = wakeups_by_thread(worker)
    time.sleep(3)
    after = wakeups_by_thread(worker)
    woke = {name: after[name] - before.get(name, 0) for name in after}
    # Resting, the monitor wakes about once a second; ticking, it would wake 3,000 times.
    monitor = sum(count for name, count in woke.items() if name.startswith("wsgihost-monit"))
    assert monitor < 30, f"the idle worker's monitor woke {monitor} times in 3 s: {woke}"
    # The other threads tick at 20 a second or less (signals, the log writer).
    total = sum(woke.values())
    assert total < 300, f"the idle worker woke {total} times in 3 s: {woke}"

    slow = threading.Thread(target=lambda: requests.get(server.url + "/sleepy.py?1", timeout=10))
    slow.start()
    time.sleep(0.2)  # the first request after the rest is now blocked in the app
    started = time.monotonic()
    response = requests.get(server.url + "/sayhello.py", timeout=5)
    assert time.monotonic() - started < 0.5
    assert abs(parsedate_to_datetime(response.headers["Date"]).timestamp() - time.time()) < 2
    slow.join()
