#!/usr/bin/env python3
"""Benchmark the health area's collection on one host. Not a test: it measures and prints figures.

    .venv/bin/python scripts/benchmark_health.py [--containers 50] [--lines 100000] [--runs 5]
                                                 [--output reports/benchmark_health.json]

A fake Docker engine (a threaded HTTP server on a unix socket under /tmp, in this process) serves
--containers containers of one compose project, each with --lines log lines (90% INFO, 8% WARN,
2% ERROR from 20 error shapes with varying numbers, IPs and ids), a stats sample (answered at
the next whole second, as dockerd's once-a-second stats collector answers a one-shot request) and
an inspection. The collector runs as the module would, in a child process (collect_health: the host
part from this machine's /proc, the containers, and 10 log files of --lines lines each on disk),
and the child's wall time and peak memory (ru_maxrss) are taken; 1 warm-up, median of --runs.

  engine honours tail   the engine returns the last drift_health_log_max_lines lines (what
                        dockerd does with ?tail=)
  engine ignores tail   it sends all --lines lines of every container: the collector cuts each
                        answer at drift_health_log_max_bytes
Goals (issue 15): the area's time per host at most 1.5 s, the module's peak memory at most 100 MB.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import pathlib
import random
import shutil
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.envparity.audit.plugins.module_utils.health_collect import DEFAULTS  # noqa: E402

PREFIX = "/v1.41"
GOAL_SECONDS = 1.5
GOAL_MB = 100

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.envparity.audit.plugins.module_utils.collect import collect_areas, pack
request = json.loads(sys.argv[2])
started = time.perf_counter()
facts = collect_areas({"health": request}, b"k" * 32)
blob = pack({"areas": facts})
elapsed = time.perf_counter() - started
data = facts["health"]["data"]
services = data["stacks"]["bench"]["services"]
print(json.dumps({
    "seconds": elapsed,
    "status": facts["health"]["status"],
    "containers_ok": sum(1 for s in services.values() if s.get("status") == "ok"),
    "templates": sum(len(l["templates"]) for l in data["stacks"]["bench"]["logs"].values()),
    "packed_bytes": len(blob),
}))
"""


def log_lines(count, seed=1):
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        roll = rng.random()
        if roll < 0.02:
            shape = rng.randrange(20)
            lines.append(
                "2026-12-07T04:%02d:%02d.%03dZ ERROR job kind%d failed on 10.0.%d.%d after %d ms (req %08x)"
                % (
                    index // 3600 % 60,
                    index % 60,
                    index % 1000,
                    shape,
                    rng.randrange(255),
                    rng.randrange(255),
                    rng.randrange(5000),
                    rng.getrandbits(32),
                )
            )
        elif roll < 0.10:
            lines.append("2026-12-07T04:00:00Z WARN slow request %d took %d ms" % (index, rng.randrange(9000)))
        else:
            lines.append("2026-12-07T04:00:00Z INFO GET /api/items/%d 200 %d ms" % (index, rng.randrange(90)))
    return [line.encode() + b"\n" for line in lines]


def framed(lines):
    return b"".join(b"\x01\x00\x00\x00" + len(line).to_bytes(4, "big") + line for line in lines)


class Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128  # dockerd's backlog is large; socketserver's default (5) refuses bursts

    def __init__(self, path, containers, lines, honour_tail):
        self.containers = containers
        self.lines = lines
        self.all_framed = framed(lines)
        self.tails = {}
        self.honour_tail = honour_tail
        super().__init__(path, Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, body, kind="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        server = self.server
        path = self.path
        if path == "/version":
            return self.answer({"Version": "24.0.7", "ApiVersion": "1.41"})
        if path.startswith(PREFIX + "/containers/json"):
            return self.answer(
                [
                    {
                        "Id": "c%063d" % index,
                        "Names": ["/bench-svc%d-1" % index],
                        "Labels": {
                            "com.docker.compose.project": "bench",
                            "com.docker.compose.service": "svc%d" % index,
                        },
                        "Ports": [],
                    }
                    for index in range(server.containers)
                ]
            )
        if "/logs?" in path:
            if not server.honour_tail:
                return self.answer(server.all_framed, "application/vnd.docker.raw-stream")
            tail = int(path.split("tail=")[1].split("&")[0])
            if tail not in server.tails:
                server.tails[tail] = framed(server.lines[-tail:])
            return self.answer(server.tails[tail], "application/vnd.docker.raw-stream")
        if "/stats?" in path:
            # dockerd samples every container's stats once a second; a one-shot answer waits for
            # the next sample (20.10's collector, seen on the lab's engine: 0 to 1 s per call).
            time.sleep(1.0 - time.time() % 1.0)
            return self.answer(
                {
                    "memory_stats": {"usage": 50 << 20, "stats": {"total_inactive_file": 1 << 20}},
                    "cpu_stats": {"cpu_usage": {"total_usage": 10**9}},
                    "pids_stats": {"current": 3},
                }
            )
        if path.endswith("/json"):
            return self.answer(
                {
                    "Created": "2026-12-07T03:00:00Z",
                    "RestartCount": 0,
                    "HostConfig": {"Memory": 256 << 20},
                    "State": {
                        "Status": "running",
                        "Running": True,
                        "StartedAt": "2026-12-07T03:00:00Z",
                        "OOMKilled": False,
                        "ExitCode": 0,
                    },
                }
            )
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None


def measure(request, runs):
    samples = []
    for index in range(runs + 1):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ROOT / "collections"), json.dumps(request)],
            stdout=subprocess.PIPE,
        )
        _, _, usage = os.wait4(proc.pid, 0)
        out = proc.stdout.read().decode()
        proc.stdout.close()
        result = json.loads(out)
        result["peak_mb"] = usage.ru_maxrss / 1024.0
        if index:  # the first is a warm-up
            samples.append(result)
    return {
        "seconds_median": statistics.median(s["seconds"] for s in samples),
        "seconds_max": max(s["seconds"] for s in samples),
        "peak_mb_max": max(s["peak_mb"] for s in samples),
        "last": samples[-1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    lines = log_lines(args.lines)
    work = tempfile.mkdtemp(prefix="ep-bench-health-", dir="/tmp")
    figures = {"containers": args.containers, "lines_per_container": args.lines, "runs": args.runs}
    # The machine's load at the start: the figures are wall times, and other work inflates them.
    figures["load_average"] = os.getloadavg()
    print("load average at the start: %.2f %.2f %.2f (%d CPUs)" % (*figures["load_average"], os.cpu_count()))
    try:
        log_files = []
        for index in range(10):
            path = os.path.join(work, "app%d.log" % index)
            with open(path, "wb") as handle:
                handle.writelines(lines)
            log_files.append({"name": "app%d" % index, "path": path, "pattern": None})
        for honour in (True, False):
            socket_path = os.path.join(work, "engine-%d.sock" % honour)
            server = Engine(socket_path, args.containers, lines, honour)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            try:
                request = dict(
                    DEFAULTS,
                    docker_host="unix://" + socket_path,
                    paths=[{"name": "tmp", "path": work}],
                    stacks=[{"name": "bench", "project": "bench"}],
                    log_files=log_files,
                )
                started = time.perf_counter()
                result = measure(request, args.runs)
                result["wall_all_runs"] = time.perf_counter() - started
            finally:
                server.shutdown()
                server.server_close()
            label = "engine honours tail" if honour else "engine ignores tail"
            figures[label] = result
            verdict_time = "PASS" if result["seconds_median"] <= GOAL_SECONDS else "MISS"
            verdict_memory = "PASS" if result["peak_mb_max"] <= GOAL_MB else "MISS"
            print(
                "%-20s area %.2f s median (max %.2f; goal <= %.1f s: %s), peak %.0f MB (goal <= %d MB: %s); "
                "%d/%d containers read, %d templates, %d bytes packed"
                % (
                    label,
                    result["seconds_median"],
                    result["seconds_max"],
                    GOAL_SECONDS,
                    verdict_time,
                    result["peak_mb_max"],
                    GOAL_MB,
                    verdict_memory,
                    result["last"]["containers_ok"],
                    args.containers,
                    result["last"]["templates"],
                    result["last"]["packed_bytes"],
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.output:
        pathlib.Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
