#!/usr/bin/env python3
"""What gunicorn's pre_request and post_request hooks cost when a gunicorn.conf.py defines
them (they cost nothing when it does not: no Python runs for them). wsgihost tuned, hello
world and the Flask app at c64, without a config file, with hooks that do nothing, and with
hooks that time each request. Interleaved rounds; medians and ratios to the run without
hooks. Run through `benches/run hooks`; writes results/hooks.md."""
import statistics
import sys

from bench import BENCH, RESULTS, ROUNDS, SECONDS, flask_command, servers, start, stop, wrk

CONFIGS = {
    "no hooks": [],
    "empty hooks": ["-c", str(BENCH / "configs" / "empty_hooks.conf.py")],
    "timing hooks": ["-c", str(BENCH / "configs" / "timing_hooks.conf.py")],
}


def main():
    base = servers()["wsgihost"][0]
    apps = {"hello": (base, "/"), "flask": (flask_command(base), "/json")}
    samples = {}
    for round_number in range(ROUNDS):
        for config, extra in CONFIGS.items():
            for app, (command, path) in apps.items():
                process = start([command[0], *extra, *command[1:]])
                try:
                    rate = wrk(path, 64, [])[0]
                finally:
                    stop(process)
                samples.setdefault((app, config), []).append(rate)
                print(f"round {round_number + 1} {app:5} {config:12} {rate:,.0f} req/s", flush=True)
    lines = [f"Medians of {ROUNDS} interleaved rounds, {SECONDS} s each: wsgihost tuned "
             "(--threads 4, access log off), server on core 0, wrk -t1 -c64 on core 1.", "",
             "| app | no hooks | empty pre/post_request | ratio | timing pre/post_request | ratio |",
             "|---|---|---|---|---|---|"]
    for app in apps:
        none, empty, timing = (statistics.median(samples[(app, c)]) for c in CONFIGS)
        lines.append(f"| {app} | {none:,.0f} | {empty:,.0f} | {empty / none:.2f} | {timing:,.0f} | "
                     f"{timing / none:.2f} |")
        per_request = (1 / empty - 1 / none) * 1e6
        lines.append(f"| | | ({per_request:.1f} µs per request) | | ({(1 / timing - 1 / none) * 1e6:.1f} µs) | |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "hooks.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
