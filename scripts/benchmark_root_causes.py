#!/usr/bin/env python3
"""Time the root-cause linking and the stabilization plan (plugin_utils/root_causes.py) at growing
sizes: N missing tables and N/10 commits (the target at the oldest), each commit's migration
creating nine of the tables; the other tables are created by no commit the target lacks (manual
drift). Prints figures only.

    scripts/benchmark_root_causes.py [--runs 5]
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "collections"))

from ansible_collections.envparity.audit.plugins.plugin_utils import root_causes  # noqa: E402
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import make_finding, with_ids  # noqa: E402

SIZES = ((40, 4), (500, 50), (1000, 100), (2000, 200))


def commit(number, parent, tables):
    return {
        "sha": "%040x" % (number + 1),
        "parents": [parent] if parent else [],
        "subject": "Commit %d" % number,
        "date": "2025-01-01T00:00:00+00:00",
        "files": ["migrations/versions/%04d.py" % number],
        "files_truncated": False,
        "patch_id": None,
        "introduces": {"tables": tables, "columns": [], "indexes": [], "keys": []},
    }


def scenario(tables, commits):
    history = []
    parent = None
    names = ["t%05d" % number for number in range(tables)]
    per = max(1, (tables - tables // 10) // commits)
    for number in range(commits):
        item = commit(number, parent, names[number * per : (number + 1) * per])
        parent = item["sha"]
        history.insert(0, item)
    base = {"status": "ok", "head": history[0]["sha"], "history": history, "shallow": []}
    target = {"status": "ok", "head": None, "history": [], "shallow": []}
    target["head"] = history[-1]["sha"]
    target["history"] = [history[-1]]
    findings = with_ids(
        [
            make_finding(
                area="postgres",
                subject="app",
                key="public.%s" % name,
                kind="missing",
                check="postgres.table_missing",
                severity="high",
                values={"dev": "table", "prod": None},
                environments=["prod"],
                message="m",
                recommendation="r",
            )
            for name in names
        ]
    )
    git_cells = {"dev": {"repos": {"app": base}}, "prod": {"repos": {"app": target}}}
    return findings, git_cells


def measure(tables, commits, runs):
    findings, git_cells = scenario(tables, commits)
    best = None
    for _ in range(runs):
        start = time.perf_counter()
        analysis = root_causes.analyse(findings, git_cells, {}, "dev", ["prod"])
        root_causes.stabilization_plan(analysis, findings, {})
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    linked = sum(len(cause["findings"]) for cause in analysis["causes"])
    return best, linked, len(analysis["manual_schema_drift"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("tables  commits  best ms  linked  manual  us/finding")
    for tables, commits in SIZES:
        best, linked, manual = measure(tables, commits, args.runs)
        print("%6d  %7d  %7.1f  %6d  %6d  %10.1f" % (tables, commits, best * 1000, linked, manual, best * 1e6 / tables))


if __name__ == "__main__":
    main()
