#!/usr/bin/env python3
"""HTTPS: keep-alive hello world over TLS (wrk -c64), and new connections per second (a
full handshake for each request: wrk -c16 with Connection: close), for wsgihost with
--certfile, Granian with its TLS, and nginx terminating TLS in front of a plain wsgihost.
One ECDSA P-256 certificate for all; every server (nginx with its backend) on core 0, wrk
on core 1, round-robin, medians. Every server negotiates TLS 1.3 (nginx is told to: its
default here is TLS 1.2 only, whose resumption skips the key exchange and so halves the
client's work). A handshake costs the client as much as the server, so wrk's core can be
the limit; the server core's busy time per request is reported beside the rate.
Run through `benches/run tls`; writes results/tls.md."""
import os
import re
import shutil
import statistics
import subprocess
import sys

from bench import BENCH, PORT, RESULTS, ROUNDS, SECONDS, VENV_BIN, WSGIHOST, start, stop

PKI = BENCH / ".pki"
BACKEND = BENCH / ".nginx" / "wsgihost-backend.sock"


def certificate():
    """An ECDSA P-256 certificate for 127.0.0.1 (made once, with Debian's openssl)."""
    cert, key = PKI / "server.pem", PKI / "server.key"
    if not cert.exists():
        PKI.mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "365", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def nginx_tls_command(cert, key):
    prefix = BENCH / ".nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx-tls.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx-tls.pid;\nerror_log {prefix}/logs/error.log;\n"
        "events { worker_connections 4096; }\n"
        "http { access_log off; keepalive_requests 100000;\n"
        f"  upstream backend {{ server unix:{BACKEND}; keepalive 64; }}\n"
        f"  server {{ listen 127.0.0.1:{PORT} ssl; ssl_certificate {cert}; ssl_certificate_key {key};\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n"
        "    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }\n")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    backend = [str(WSGIHOST), "--bind", f"unix:{BACKEND}", "--access-log", "off", "--threads", "4",
               "--venv", str(VENV_BIN.parent), "benchapp:app"]
    # One command on core 0: the backend in the background, nginx in front.
    script = (f"{' '.join(backend)} & backend=$!; trap 'kill -TERM $backend; wait $backend' EXIT; "
              f"{nginx} -p {prefix} -c {prefix / 'nginx-tls.conf'} -g 'daemon off;'")
    return ["bash", "-c", script]


def servers(cert, key):
    tls = ["--certfile", str(cert), "--keyfile", str(key)]
    return {
        "wsgihost": [str(WSGIHOST), "--bind", f"127.0.0.1:{PORT}", "--access-log", "off", "--threads", "4",
                     *tls, "--venv", str(VENV_BIN.parent), "benchapp:app"],
        "granian": [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "1", "--blocking-threads", "1",
                    "--port", str(PORT), "--no-ws", "--ssl-certificate", str(cert), "--ssl-keyfile", str(key),
                    "--ssl-protocol-min", "tls1.2", "benchapp:app"],
        "nginx+wsgihost": nginx_tls_command(cert, key),
    }


SCENARIOS = {
    "tls_hello64": (64, []),
    "tls_handshakes": (16, ["-H", "Connection: close"]),
}


def busy_seconds(core):
    """CPU time one core has spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(t) for t in next(line for line in stat if line.startswith(f"cpu{core} ")).split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def wrk(connections, extra):
    """Requests per second, the server core's busy microseconds per request, socket errors."""
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", *extra,
               f"https://127.0.0.1:{PORT}/"]
    before = busy_seconds(0)
    output = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 30).stdout
    busy = busy_seconds(0) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Socket errors: (.*)", output)
    return rps, busy * 1e6 / requests, errors.group(1) if errors else ""


def wait_https():
    import socket
    import ssl
    import time

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with context.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=1)) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the HTTPS server did not answer")


def main():
    cert, key = certificate()
    table = servers(cert, key)
    only = set(sys.argv[1:])
    names = [n for n in table if not only or n in only]
    samples = {}
    for round_number in range(ROUNDS):
        for name in names:
            process = start(table[name])
            try:
                wait_https()
                for scenario, (connections, extra) in SCENARIOS.items():
                    rps, micros, errors = wrk(connections, extra)
                    samples.setdefault((name, scenario), []).append(rps)
                    samples.setdefault((name, scenario + " µs"), []).append(micros)
                    print(f"round {round_number + 1} {name:15} {scenario:15} {rps:>10.0f} req/s "
                          f"{micros:6.1f} server µs/req {errors}", flush=True)
            finally:
                stop(process)
                if BACKEND.exists():
                    BACKEND.unlink()
    medians = {key: statistics.median(values) for key, values in samples.items()}
    lines = [f"HTTPS, medians of {ROUNDS} interleaved rounds, {SECONDS} s each; ECDSA P-256; "
             "server (nginx with its wsgihost backend) on core 0, wrk -t1 on core 1; TLS 1.3 for all.",
             "Rates in requests/s; \"server µs\": core 0's busy time per request (lower is better).", "",
             "| server | " + " | ".join(f"{s} | {s} server µs" for s in SCENARIOS) + " |",
             "|---|" + "---|---|" * len(SCENARIOS)]
    for name in names:
        cells = [f"{medians.get((name, s), 0):,.0f} | {medians.get((name, s + ' µs'), 0):.1f}" for s in SCENARIOS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios of wsgihost:", ""]
    for scenario in SCENARIOS:
        ours = medians.get(("wsgihost", scenario))
        for peer in ("granian", "nginx+wsgihost"):
            theirs = medians.get((peer, scenario))
            if ours and theirs:
                cost = medians[(peer, scenario + " µs")] / medians[("wsgihost", scenario + " µs")]
                lines.append(f"- {scenario}: {ours / theirs:.2f}x {peer}'s rate; {peer} spends "
                             f"{cost:.2f}x wsgihost's server time per request")
    text = "\n".join(lines) + "\n"
    (RESULTS / "tls.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
