#!/usr/bin/env python3
"""Slow and quick requests on one worker with 8 threads: an app route that sleeps 10 ms
(a database wait) at c64, hello world at c64, each alone and then both at once.

Issue 6's target: the sleep route keeps >= 700 req/s while hello keeps >= 80% of its solo
rate. Servers with a thread setting run with 8 threads (bjoern has none: a sleep blocks
it). Run through `benches/run mixed`; writes results/mixed.md."""
import json
import statistics
import subprocess
import sys

from bench import PORT, RESULTS, ROUNDS, SECONDS, servers, start, stop, wrk

THREADS = "8"


def eight_threads(command):
    """The benchmark's command for a server, with 8 threads instead of 4."""
    command = list(command)
    for flag in ("--threads", "--blocking-threads"):
        if flag in command:
            command[command.index(flag) + 1] = THREADS
    return [part.replace("--threads=4", f"--threads={THREADS}") for part in command]


def both_at_once():
    """Sleep and hello clients together; returns (sleep req/s, hello req/s)."""
    with subprocess.Popen([sys.executable, "-c", "import bench, json; print(json.dumps(bench.wrk('/sleep', 64, [])))"],
                          stdout=subprocess.PIPE, text=True, cwd=RESULTS.parent) as sleeper:
        hello = wrk("/", 64, [])
        sleep = json.loads(sleeper.communicate()[0])
    return sleep[0], hello[0]


def main():
    table = {name: command for name, (command, _) in servers().items()
             if command and ("--threads" in command or "--blocking-threads" in command
                             or any(p.startswith("--threads=") for p in command))}
    only = set(sys.argv[1:])
    names = [n for n in table if not only or n in only]
    samples = {}
    for round_number in range(ROUNDS):
        for name in names:
            process = start(eight_threads(table[name]))
            try:
                solo_hello = wrk("/", 64, [])[0]
                solo_sleep = wrk("/sleep", 64, [])[0]
                mixed_sleep, mixed_hello = both_at_once()
            finally:
                stop(process)
            row = (solo_hello, solo_sleep, mixed_sleep, mixed_hello)
            samples.setdefault(name, []).append(row)
            print(f"round {round_number + 1} {name:9} hello {solo_hello:,.0f} sleep {solo_sleep:,.0f} | "
                  f"together: sleep {mixed_sleep:,.0f} hello {mixed_hello:,.0f} ({mixed_hello / solo_hello:.0%})",
                  flush=True)
    lines = [f"Medians of {ROUNDS} interleaved rounds, {SECONDS} s each, 8 threads, port {PORT}; "
             "server on core 0, both wrk -t1 -c64 on core 1.", "",
             "| server | hello alone | sleep 10 ms alone | sleep, together | hello, together | hello kept |",
             "|---|---|---|---|---|---|"]
    for name, rows in samples.items():
        med = [statistics.median(column) for column in zip(*rows)]
        kept = statistics.median(r[3] / r[0] for r in rows)
        lines.append(f"| {name} | {med[0]:,.0f} | {med[1]:,.0f} | {med[2]:,.0f} | {med[3]:,.0f} | {kept:.0%} |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mixed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
