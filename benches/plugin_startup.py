#!/usr/bin/env python3
"""Start-up time of the pytest plugin's server: from the call that starts it to the first
answered request, median of N runs (default 20), for the quiet Flask example and the
Django one (examples/pytest-django), each as the fixture starts it (with the plugin's
config file, which captures errors) and plain; the four are interleaved.

    .venv/bin/python benches/plugin_startup.py [RUNS]

Runs the pip-installed command of the Python running this (./run-tests installs it into
.venv) through wsgihost.pytest_plugin.start_server, as the fixtures do."""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from wsgihost.pytest_plugin import _with_plugin_config, start_server

REPO = Path(__file__).resolve().parent.parent
COMMAND = [str(Path(sys.executable).parent / "wsgihost")]
APPS = {
    "Flask": (REPO / "examples" / "flask_app", "app:app", "/"),
    "Django": (REPO / "examples" / "pytest-django", "notes.wsgi:application", "/"),
}


def once(name, fixture, data):
    cwd, app, path = APPS[name]
    args, env = ["--env", f"FLASK_APP_DATA={data}"], {}
    if fixture:
        args, env = _with_plugin_config(args, cwd)
    started = time.perf_counter()
    server = start_server(COMMAND, args=args, app=app, cwd=cwd, log_dir=data,
                          env={**os.environ, **env})
    assert requests.get(server.url(path), timeout=10).status_code in (200, 404)
    took = time.perf_counter() - started
    server.stop()
    return took


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    variants = [(name, fixture) for name in APPS for fixture in (True, False)]
    times = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory() as data:
        for variant in variants:
            once(*variant, data)  # warm the page cache
        for _ in range(runs):
            for variant in variants:
                times[variant].append(once(*variant, data))
    for (name, fixture), took in times.items():
        took.sort()
        how = "as the fixture starts it" if fixture else "plain start_server"
        print(f"{name:6} {how:25} {runs} runs: median {statistics.median(took) * 1000:.0f} ms, "
              f"min {took[0] * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
