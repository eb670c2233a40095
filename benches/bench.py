#!/usr/bin/env python3
"""Runs every server through every scenario, round-robin, and reports medians.

Server pinned to core 0, wrk to core 1 (taskset). One worker process each; peers with
threads get the same thread count where they have one. wsgihost runs three ways: tuned
(no access log, 4 threads), wsgihost-defaults (nothing but --bind and the app, its access
log on stdout into a file, as a user starts it) and wsgihost-pip (the tuned flags, run by
the pip-installed command), and wsgihost-json is the defaults with --log-format json.
BENCH_BASELINE=/path/to/an/older/wsgihost adds wsgihost-before: that binary with the tuned
flags, to compare a change against the code before it in the same run.
Writes results/results.md, results/results.json and
results/chart.png, and prints the ratios to the best peer (and pip to binary)."""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benches"
APPS = BENCH / "apps"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# BENCH_SCENARIOS=hello64,flask: only those (more rounds of what a comparison needs).
PICKED = set(filter(None, os.environ.get("BENCH_SCENARIOS", "").split(",")))
PORT = 8765
WSGIHOST = REPO / "target" / "release" / "wsgihost"


def servers():
    """name → (command, scenarios it takes part in)."""
    app = "benchapp:app"
    python = str(VENV_BIN / "python")
    wsgi = ["hello64", "hello256", "body64k", "post4k", "stream1m"]
    tuned = ["--bind", f"127.0.0.1:{PORT}", "--access-log", "off", "--threads", "4"]
    return {
        "wsgihost": ([str(WSGIHOST), *tuned, "--venv", str(VENV_BIN.parent),
                      "--static", f"/static={BENCH / 'static'}", app],
                     wsgi + ["static13", "static64k"]),
        # As a user starts it: the venv activated ($VIRTUAL_ENV, see start()), default flags.
        "wsgihost-defaults": ([str(WSGIHOST), "--bind", f"127.0.0.1:{PORT}", app], wsgi),
        "wsgihost-json": ([str(WSGIHOST), "--bind", f"127.0.0.1:{PORT}", "--log-format", "json", app],
                          ["hello64", "hello256", "post4k"]),
        "wsgihost-pip": ([str(VENV_BIN / "wsgihost"), *tuned, app], ["hello64", "hello256", "post4k"]),
        "wsgihost-before": ([os.environ.get("BENCH_BASELINE", "BENCH_BASELINE is not set"), *tuned,
                             "--venv", str(VENV_BIN.parent), app], wsgi),
        "bjoern": ([python, str(APPS / "bjoern_run.py"), app, str(PORT)], wsgi),
        "granian": ([str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "1", "--blocking-threads", "1",
                     "--port", str(PORT), "--no-ws", app], wsgi),
        "uwsgi": ([str(VENV_BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{PORT}", "--module", app, "--processes", "1",
                   "--threads", "4", "--disable-logging", "--die-on-term", "--master"], wsgi),
        "waitress": ([str(VENV_BIN / "waitress-serve"), "--threads=4", f"--listen=127.0.0.1:{PORT}", app], wsgi),
        "gunicorn": ([str(VENV_BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "4", "-b",
                      f"127.0.0.1:{PORT}", app], wsgi),
        "nginx": (None, ["static13", "static64k"]),
    }


SCENARIOS = {
    # name: (path, connections, extra wrk args)
    "hello64": ("/", 64, []),
    "hello256": ("/", 256, []),
    "body64k": ("/64k", 64, []),
    "post4k": ("/echo", 64, ["-s", str(APPS / "post4k.lua")]),
    "stream1m": ("/stream", 16, []),
    "flask": ("/json", 64, []),
    "static13": ("/static/13b.txt", 64, []),
    "static64k": ("/static/64k.bin", 64, []),
}


def flask_command(command):
    """Every server runs the Flask scenario as a separate run of flaskapp:app (route /json),
    so the main run's memory figures are for the same small app everywhere."""
    return [part.replace("benchapp:app", "flaskapp:app") for part in command]


def wait_port(timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def process_rss_kib(pid):
    """RSS of each process in the tree rooted at pid, in KiB."""
    sizes = []
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                sizes.append(next(int(l.split()[1]) for l in status if l.startswith("VmRSS")))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except (OSError, StopIteration):
            pass
    return sizes


def tree_rss_kib(pid):
    """RSS of a process and its children, in KiB."""
    return sum(process_rss_kib(pid))


def worker_rss_kib(pid):
    """RSS of the biggest process in the tree: the one serving (a master or arbiter is smaller)."""
    return max(process_rss_kib(pid), default=0)


def nginx_command(prefix):
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n"
        f"  server {{ listen 127.0.0.1:{PORT}; location /static/ {{ alias {BENCH / 'static'}/; }} }} }}\n"
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]


def start(command, log=None):
    """Starts a server on core 0; `log`: a file for what it prints (else discarded)."""
    if wait_port(timeout=0.01):
        raise SystemExit(f"port {PORT} is already in use by another process: stop it first")
    env = {**os.environ, "PYTHONPATH": str(APPS), "VIRTUAL_ENV": str(VENV_BIN.parent)}
    output = open(log, "wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(["taskset", "-c", "0", *command], cwd=APPS, env=env,
                               stdout=output, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                               start_new_session=True)
    if log:
        output.close()
    if not wait_port():
        stop(process)
        raise RuntimeError(f"server did not start: {command}")
    time.sleep(0.3)
    return process


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 10
    while wait_port(timeout=0.01):
        if time.monotonic() > deadline:
            raise SystemExit(f"port {PORT} still answers after stopping {process.args}")
        time.sleep(0.1)


def wrk(path, connections, extra):
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "--latency", *extra,
               f"http://127.0.0.1:{PORT}{path}"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, float(p99.group(1)) * scale[p99.group(2)] if p99 else None, int(errors.group(1)) if errors else 0


def idle_connections_kib(pid, count=10_000):
    """RSS growth per idle keep-alive connection (each has served one request)."""
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1000, count + 1000))
    before = tree_rss_kib(pid)
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", PORT))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sockets.append(sock)
    for sock in sockets:
        sock.recv(4096)
    time.sleep(1)
    after = tree_rss_kib(pid)
    for sock in sockets:
        sock.close()
    return (after - before) / count


def main():
    RESULTS.mkdir(exist_ok=True)
    table = servers()
    only = set(sys.argv[1:])
    names = [n for n in table if n in only or not only and (n != "wsgihost-before" or "BENCH_BASELINE" in os.environ)]
    samples = {}  # (server, scenario) → [(rps, p99)]
    rss = {}
    for round_number in range(ROUNDS):
        # Every other round runs the servers in reverse order: the second of two servers
        # in a round measured ~13% faster on Flask whichever it was (an A/B and its swap,
        # 2026-12-07), so a fixed order biases every ratio.
        for name in (names if round_number % 2 == 0 else names[::-1]):
            command, scenarios = table[name]
            runs = [("main", command, [s for s in scenarios if s != "flask"])]
            if "flask" in SCENARIOS and name != "nginx":
                runs.append(("flask", flask_command(command), ["flask"]))
            for label, cmd, wanted in runs:
                wanted = [s for s in wanted if not PICKED or s in PICKED]
                if not wanted:
                    continue
                cmd = cmd or nginx_command(BENCH / ".nginx")
                # wsgihost-defaults logs every request: into a file, as a redirected stdout.
                log = RESULTS / f"{name}-access.tmp" if name in ("wsgihost-defaults", "wsgihost-json") else None
                try:
                    process = start(cmd, log)
                except RuntimeError as err:
                    print(f"skipping {name}: {err}", file=sys.stderr)
                    continue
                try:
                    if label == "main" and round_number == 0:
                        rss.setdefault(name, {})["idle"] = tree_rss_kib(process.pid) / 1024
                    for scenario in wanted:
                        path, connections, extra = SCENARIOS[scenario]
                        result = wrk(path, connections, extra)
                        samples.setdefault((name, scenario), []).append(result)
                        if label == "main" and round_number == 0 and scenario == "hello256":
                            rss[name]["worker_after_hello"] = worker_rss_kib(process.pid) / 1024
                        print(f"round {round_number + 1} {name:9} {scenario:9} {result[0]:>10.0f} req/s p99 {result[1]} ms errors {result[2]}", flush=True)
                    if label == "main" and round_number == 0:
                        rss[name]["after"] = tree_rss_kib(process.pid) / 1024
                        rss[name]["worker_after"] = worker_rss_kib(process.pid) / 1024
                        if name in ("wsgihost", "bjoern") and os.environ.get("BENCH_IDLE", "1") == "1":
                            rss[name]["per_idle_conn_kib"] = idle_connections_kib(process.pid)
                finally:
                    stop(process)
    report(samples, rss, names)


def report(samples, rss, names):
    scenarios = [s for s in SCENARIOS if any((n, s) in samples for n in names)]
    medians = {key: (statistics.median(r for r, _, _ in runs), statistics.median(p for _, p, _ in runs if p is not None))
               for key, runs in samples.items()}
    lines = [f"Medians of {ROUNDS} interleaved rounds, {SECONDS} s each; server on core 0, wrk -t1 on core 1.", "",
             "| server | " + " | ".join(scenarios) + " | hello64 p99 ms | idle RSS MiB | RSS after MiB | worker RSS after hello MiB | worker RSS after MiB | KiB per idle conn |",
             "|---|" + "---|" * (len(scenarios) + 6)]
    for name in names:
        cells = [f"{medians[(name, s)][0]:,.0f}" if (name, s) in medians else "" for s in scenarios]
        p99 = f"{medians[(name, 'hello64')][1]:.2f}" if (name, "hello64") in medians else ""
        info = rss.get(name, {})
        memory = [f"{info[key]:.1f}" if key in info else "" for key in ("idle", "after", "worker_after_hello", "worker_after")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {p99} | " + " | ".join(memory) + " | "
                     + (f"{info['per_idle_conn_kib']:.2f}" if "per_idle_conn_kib" in info else "") + " |")
    lines += ["", "Ratios to the best peer, and of the other wsgihost rows to the tuned one:", ""]
    for scenario in scenarios:
        peers = [(medians[(n, scenario)][0], n) for n in names
                 if not n.startswith("wsgihost") and (n, scenario) in medians]
        ours = {n: medians[(n, scenario)][0] for n in names
                if n.startswith("wsgihost") and (n, scenario) in medians}
        parts = []
        if peers:
            best, best_name = max(peers)
            parts += [f"{n} {rps / best:.2f}x {best_name}" for n, rps in ours.items()
                      if n in ("wsgihost", "wsgihost-defaults")]
        for variant in ("wsgihost-defaults", "wsgihost-json", "wsgihost-pip", "wsgihost-before"):
            if variant in ours and "wsgihost" in ours:
                parts.append(f"{variant} {ours[variant] / ours['wsgihost']:.3f}x wsgihost")
        if parts:
            lines.append(f"- {scenario}: " + ", ".join(parts))
    if "wsgihost-pip" in rss and "wsgihost" in rss and "worker_after_hello" in rss["wsgihost-pip"]:
        extra = rss["wsgihost-pip"]["worker_after_hello"] - rss["wsgihost"]["worker_after_hello"]
        lines.append(f"- worker RSS after hello, pip-installed minus binary: {extra:+.1f} MiB")
    text = "\n".join(lines) + "\n"
    (RESULTS / "results.md").write_text(text)
    (RESULTS / "results.json").write_text(json.dumps({"medians": {f"{k[0]}/{k[1]}": v for k, v in medians.items()}, "rss": rss}, indent=1))
    print(text)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(12, 5))
        width = 0.8 / max(1, len(names))
        for index, name in enumerate(names):
            values = [medians.get((name, s), (0, 0))[0] for s in scenarios]
            axes.bar([i + index * width for i in range(len(scenarios))], values, width, label=name)
        axes.set_xticks([i + 0.4 - width / 2 for i in range(len(scenarios))], scenarios)
        axes.set_ylabel("requests/s (median)")
        axes.legend()
        figure.tight_layout()
        figure.savefig(RESULTS / "chart.png", dpi=100)
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)


if __name__ == "__main__":
    main()
