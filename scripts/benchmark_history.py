#!/usr/bin/env python3
"""Benchmark the history store. Not a test: it measures and prints figures.

    .venv/bin/python scripts/benchmark_history.py [--runs 1000 10000] [--findings 80] [--repeat 20]

For each size, a fresh store in a temporary directory holds that many runs of one scope, each
with --findings finding states (the lab's audit has about 80), 10% of the ids changing from run to
run, every 5th run of a second scope and every 3rd of the env area only (so the per-area lookup has
work to do). The runs are written in bulk (one transaction) after a first run recorded with
record_run, which creates the schema and its indexes. Then, median and max of --repeat:
  read      read_history for four areas: what an audit does before its report (previous run per
            area, its states, the trend of the last 10 runs)
  baseline  read_history of a named baseline (the oldest run)
  record    record_run of one more run of --findings states, retention applied (the write after the
            report; one fsync'd transaction, so it depends on the disk)
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "collections")]

from ansible_collections.envparity.audit.plugins.plugin_utils import history  # noqa: E402

AREAS = ("env", "git", "docker", "postgres")
SCOPE = json.dumps({"environments": ["dev", "prod"], "inventory": ["lab"]}, sort_keys=True)
DAY = 86400
START = 1767225600  # 2026-01-01T00:00:00Z


def stamp(when):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def states(number, findings):
    """The finding states of run `number`: ids mostly stable, 10% renewed every run."""
    rows = []
    for index in range(findings):
        generation = number if index % 10 == 0 else 0
        rows.append(
            {
                "id": "%016x" % (index * 1000003 + generation),
                "area": AREAS[index % len(AREAS)],
                "subject": "subject-%d" % (index % 7),
                "key": "KEY_%d_%d" % (index, generation),
                "check": "area.check_%d" % (index % 5),
                "kind": "changed",
                "severity": "high",
                "expected": False,
                "state": "persisting",
                "digest": "%064x" % index,
                "first_seen": stamp(START),
            }
        )
    return rows


def run_record(number, when, scope=SCOPE):
    return {
        "run_id": "run-%d" % number,
        "scope": scope,
        "generated_at": stamp(when),
        "recorded_at": when,
        "areas": list(AREAS),
        "unexpected": {"high": 80},
    }


def fill(path, runs, findings):
    history.record_run(path, run_record(0, START), states(0, findings), 10, 100000, baseline_name="first")
    connection = history.sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN")
    for number in range(1, runs):
        when = START + number * 600
        scope = SCOPE if number % 5 else "other"
        areas = ("env",) if number % 3 == 0 else AREAS
        cursor = connection.execute(
            "INSERT INTO runs (run_id, scope, generated_at, recorded_at, baseline, unexpected) "
            "VALUES (?, ?, ?, ?, NULL, ?)",
            ("run-%d" % number, scope, stamp(when), when, json.dumps({"high": findings})),
        )
        run = cursor.lastrowid
        connection.executemany(
            "INSERT INTO run_areas (scope, area, run) VALUES (?, ?, ?)", [(scope, area, run) for area in areas]
        )
        connection.executemany(
            'INSERT INTO states (run, id, area, subject, key, "check", kind, severity, expected, state, digest, '
            "first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run,
                    r["id"],
                    r["area"],
                    r["subject"],
                    r["key"],
                    r["check"],
                    r["kind"],
                    r["severity"],
                    0,
                    r["state"],
                    r["digest"],
                    r["first_seen"],
                )
                for r in states(number, findings)
                if r["area"] in areas
            ],
        )
    connection.execute("COMMIT")
    connection.close()


def timed(function, repeat):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--findings", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    print("history store: %d finding states per run, median / max of %d" % (options.findings, options.repeat))
    for runs in options.runs:
        with tempfile.TemporaryDirectory(prefix="envparity-bench-history-") as directory:
            path = os.path.join(directory, "history.sqlite")
            start = time.perf_counter()
            fill(path, runs, options.findings)
            built = time.perf_counter() - start
            size = os.path.getsize(path) / 1e6
            read = timed(lambda path=path: history.read_history(path, SCOPE, list(AREAS), 10, 10), options.repeat)
            previous = history.read_history(path, SCOPE, list(AREAS), 10, 10)
            assert len(previous["states"]) == options.findings, len(previous["states"])
            base = timed(
                lambda path=path: history.read_history(path, SCOPE, list(AREAS), 10, 10, baseline="first"),
                options.repeat,
            )
            counter = iter(range(runs, runs + options.repeat))

            def record(path=path, counter=counter):
                number = next(counter)
                history.record_run(
                    path, run_record(number, START + number * 600), states(number, options.findings), 10, 365
                )

            write = timed(record, options.repeat)
            print(
                "%6d runs (%5.1f MB, built in %4.1f s): read %6.2f ms (max %6.2f) · baseline %6.2f ms (max %6.2f) · "
                "record %6.2f ms (max %6.2f)" % ((runs, size, built) + read + base + write)
            )


if __name__ == "__main__":
    main()
