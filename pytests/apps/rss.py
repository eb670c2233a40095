"""Reports this worker's resident memory (current and peak) in KiB, from /proc."""
import json


def application(environ, start_response):
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(fields).encode()]
