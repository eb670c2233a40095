#!/usr/bin/env python3
"""Start-up time of the pytest plugin's server for the Flask example: from the call that
starts it to the first answered request, median of N runs (default 20).

    .venv/bin/python benches/plugin_startup.py [RUNS]

Runs the pip-installed command of the Python running this (./run-tests installs it into
.venv) through wsgihost.pytest_plugin.start_server, as the fixtures do."""
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from wsgihost.pytest_plugin import start_server

REPO = Path(__file__).resolve().parent.parent
COMMAND = [str(Path(sys.executable).parent / "wsgihost")]


def once(data):
    started = time.perf_counter()
    server = start_server(COMMAND, args=["--chdir", str(REPO / "examples" / "flask_app"),
                                         "--env", f"FLASK_APP_DATA={data}"],
                          app="app:app", log_dir=data)
    assert requests.get(server.url("/"), timeout=10).status_code == 200
    took = time.perf_counter() - started
    server.stop()
    return took


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as data:
        once(data)  # warm the page cache
        times = sorted(once(data) for _ in range(runs))
    print(f"Flask example, fixture call to first answer, {runs} runs: "
          f"median {statistics.median(times) * 1000:.0f} ms, "
          f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
