#!/usr/bin/env python3
"""Benchmark the endpoints area. Not a test: it measures and prints figures.

    .venv/bin/python scripts/benchmark_endpoints.py [--endpoints 20] [--environments 3]
                                                    [--samples 5] [--runs 3] [--concurrency 8]
                                                    [--output reports/benchmark_endpoints.json]

It starts its OWN web servers on 127.0.0.1 (one threading HTTP server per environment, free
ports, in a child process), and stops them at the end; nothing else is contacted.

  endpoints    --endpoints per environment, each answering a small JSON body after a delay of
               10 + 5 * i ms (the slowest: 10 + 5 * (n - 1) ms), the same in every environment.
  own time     the slowest endpoint probed alone (one warm-up + --samples timed requests, as the
               area probes it): what no concurrency can save.
  area         every environment's endpoints probed as an audit does: one prober per environment
               at the same time (Ansible's forks run the hosts at once; controller probes run in
               each host's drift_facts action), each probing its endpoints with
               drift_endpoints_concurrency workers (default 8), then the diff of the columns.
               1 warm-up, median of --runs. Goal: area ≤ own time + 1.0 s. The environments
               answer alike: the only checks found are plain http's in production, never
               endpoints.slower (exit 1 if it is, or if a probe failed).

The figures go to stdout and, as JSON, to reports/benchmark_endpoints.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import multiprocessing
import pathlib
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib import stats  # noqa: E402

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import (  # noqa: E402
    DEFAULTS,
    probe_all,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_diff import diff  # noqa: E402

GOAL_MARGIN_S = 1.0
KEY = b"benchmark-key-0123456789abcdef"


def delay_of(path):
    return int(path.strip("/").split("/")[-1]) / 1000.0


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "bench"
    sys_version = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        time.sleep(delay_of(self.path))
        body = json.dumps({"status": "ok", "version": "1.0.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(count, ports):
    """In a process of its own (the probes must not share an interpreter lock with the servers)."""
    started = []
    for _ in range(count):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    ports.put([server.server_address[1] for server in started])
    threading.Event().wait()


@contextlib.contextmanager
def servers(count):
    ports = multiprocessing.Queue()
    process = multiprocessing.Process(target=serve, args=(count, ports), daemon=True)
    process.start()
    try:
        yield ports.get(timeout=30)
    finally:
        process.terminate()
        process.join()


def endpoints_of(port, count):
    return [
        {"name": "e%02d" % i, "url": "http://127.0.0.1:%d/api/%d" % (port, 10 + 5 * i), "from": "host"}
        for i in range(count)
    ]


def area_once(ports, count, settings):
    results = {}

    def one(label, port):
        results[label] = {"endpoints": probe_all(endpoints_of(port, count), settings, KEY)}

    threads = [threading.Thread(target=one, args=("env%d" % i, port)) for i, port in enumerate(ports)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    labels = sorted(results)
    findings = diff(labels, results, {"baseline": labels[0], "production": set(labels[1:])})
    elapsed = time.monotonic() - started
    failed = [name for cell in results.values() for name, rec in cell["endpoints"].items() if rec["status"] != "ok"]
    return elapsed, findings, failed


def measure(runs, what):
    what()
    return stats([what() for _ in range(runs)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--environments", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=DEFAULTS["concurrency"])
    parser.add_argument("--output", default=str(ROOT / "reports" / "benchmark_endpoints.json"))
    args = parser.parse_args(argv)
    settings = dict(DEFAULTS, samples=args.samples, concurrency=args.concurrency)
    with servers(args.environments) as ports:
        slowest = [endpoints_of(ports[0], args.endpoints)[-1]]
        own = measure(args.runs, lambda: timed(lambda: probe_all(slowest, settings, KEY)))
        outcome = {}

        def area():
            elapsed, findings, failed = area_once(ports, args.endpoints, settings)
            outcome.update(findings=sorted({f["check"] for f in findings}), failed=failed)
            return elapsed

        area_stats = measure(args.runs, area)
    margin = area_stats["median_s"] - own["median_s"]
    figures = {
        "endpoints_per_environment": args.endpoints,
        "environments": args.environments,
        "samples": args.samples,
        "concurrency": settings["concurrency"],
        "slowest_endpoint_own": own,
        "area": area_stats,
        "area_minus_own_s": round(margin, 4),
        "goal_s": GOAL_MARGIN_S,
        "verdict": "PASS" if margin <= GOAL_MARGIN_S else "FAIL",
        "findings": outcome["findings"],
        "failed_probes": outcome["failed"],
    }
    print(
        "endpoints: %d x %d environments, %d samples: area %.3f s (median of %d), slowest endpoint alone %.3f s, "
        "+%.3f s (goal <= +%.1f s: %s); checks found: %s (plain http in production, never a timing one); "
        "%d failed probes"
        % (
            args.endpoints,
            args.environments,
            args.samples,
            area_stats["median_s"],
            args.runs,
            own["median_s"],
            margin,
            GOAL_MARGIN_S,
            figures["verdict"],
            ", ".join(figures["findings"]) or "none",
            len(figures["failed_probes"]),
        )
    )
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    # identical environments: a timing finding would be noise reported as drift
    return 0 if not figures["failed_probes"] and "endpoints.slower" not in figures["findings"] else 1


def timed(action):
    started = time.monotonic()
    action()
    return time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main())
