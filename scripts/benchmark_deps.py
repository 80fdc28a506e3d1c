#!/usr/bin/env python3
"""Benchmark of the deps area: its collection time on one host, and the whole audit with and without it.

  scripts/benchmark_deps.py [--runs 5] [--containers 0,5,10,15] [--dists 300] [--audit-runs 3]
                            [--image lab/pyapp:1.0] [--pip-in-each]

Load (made here, removed after, by name): up to 15 containers of the lab's Python image
(lab/python:3.11, lab/deps_area.py) as the services of one compose project, each with the same
read-only site directory of --dists distributions mounted where its Python looks, and two host
virtualenv-shaped directories of --dists distributions each. The area's collection
(deps_collect.collect_area, as the module runs it: one docker exec per service) is timed per
container count (median of --runs): the goal is at most 1.0 s added per host for 15 containers,
and a time linear in their number. The whole audit (compare.yml on the lab inventory) is timed
with every area and with --skip-tags deps (median of --audit-runs). Where the time goes: per
container count, the phases of the last run (each call's duration, summed over its calls, and
the longest: the engine listing, the first exec per image, the other containers' change lists,
the execs again, the host's own reads) and the floor of one exec (`docker exec <c> python3 -c
pass`, median of --runs). --image lab/pyapp:1.0 makes each exec also read a dpkg status of
hundreds of packages and a Node project. The times per container count are fitted to a line
(least squares: seconds per container, and how far the worst count lies from the line). The
collection per lab host: the area's collection with dev's and prod's own requests (from
inventory/lab's group variables), as the module runs it on each (here as root). Prints figures;
asserts none.
Run as root, with the lab up (lab/labctl up).
"""

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.envparity.audit.plugins.module_utils import deps_collect  # noqa: E402

DOCKER_HOST = "unix:///run/envparity-lab/docker.sock"
DOCKER = ["docker", "-H", DOCKER_HOST]
IMAGE = "lab/python:3.11"
PROJECT = "deps_bench"
SITE = "/usr/local/lib/python3.11/dist-packages"
GOAL_SECONDS = 1.0


def make_site(path, count):
    """count distributions as pip leaves them: a dist-info with METADATA, INSTALLER, REQUESTED."""
    path.mkdir(parents=True)
    for index in range(count):
        info = path / ("bench_pkg_%03d-1.%d.0.dist-info" % (index, index))
        info.mkdir()
        requires = "".join("Requires-Dist: bench-pkg-%03d>=1.0\n" % dep for dep in range(max(0, index - 3), index))
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: bench-pkg-%03d\nVersion: 1.%d.0\nSummary: bench\n%s"
            % (index, index, requires)
        )
        (info / "INSTALLER").write_text("pip\n")
        (info / "REQUESTED").write_text("")


def make_venv(path, count):
    (path / "lib" / "python3.11").mkdir(parents=True)
    (path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\n")
    make_site(path / "lib" / "python3.11" / "site-packages", count)


def container_name(index):
    return "%s-svc%02d-1" % (PROJECT, index)


# --pip-in-each: every container installs one more distribution into its own filesystem when it
# starts (as if someone ran pip in it), so that no container may take another's facts: one exec each.
PIP_IN_CONTAINER = (
    "import os, time; d = '/usr/lib/python3.11/dist-packages/local_fix-1.0.dist-info'; os.makedirs(d); "
    "open(d + '/METADATA', 'w').write('Name: local-fix\\nVersion: 1.0\\n'); time.sleep(1e9)"
)


def start_containers(count, site, pip_in_each=False, image=IMAGE):
    command = ["python3", "-c", PIP_IN_CONTAINER] if pip_in_each else []
    for index in range(count):
        subprocess.run(
            [
                *DOCKER,
                "run",
                "-d",
                "--name",
                container_name(index),
                "--label",
                "com.docker.compose.project=%s" % PROJECT,
                "--label",
                "com.docker.compose.service=svc%02d" % index,
                "-v",
                "%s:%s:ro" % (site, SITE),
                image,
                *command,
            ],
            check=True,
            capture_output=True,
        )


def remove_containers(count):
    names = [container_name(index) for index in range(count)]
    subprocess.run([*DOCKER, "rm", "-f", *names], check=False, capture_output=True)


PHASES = ("_stack_projects", "_engine_view", "exec_reader", "_changed_paths", "collect_python", "collect_os")


def timed_phases():
    """Wrap the collector's phases; returns {phase: [seconds of each call]} (filled as they run)."""
    calls = {name: [] for name in PHASES}
    lock = threading.Lock()
    for name in PHASES:
        real = getattr(deps_collect, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _real(*args, **kwargs)
            finally:
                with lock:
                    calls[_name].append(time.perf_counter() - started)

        setattr(deps_collect, name, wrapper)
    return calls


def time_collection(request, runs, calls):
    times = []
    for _ in range(runs):
        for found in calls.values():
            found.clear()
        started = time.perf_counter()
        facts = deps_collect.collect_area(request, b"bench-key")
        times.append(time.perf_counter() - started)
    phases = {name: (len(found), sum(found), max(found, default=0.0)) for name, found in calls.items()}
    return statistics.median(times), facts, phases


def exec_floor(runs):
    """The median wall time of one bare `docker exec <first container> python3 -c pass`."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*DOCKER, "exec", container_name(0), "python3", "-c", "pass"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_audit(runs, skip=False):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    times = []
    with tempfile.TemporaryDirectory() as reports:
        command = [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            str(ROOT / "compare.yml"),
            "-e",
            "drift_report_dir=%s" % reports,
        ]
        if skip:
            command += ["--skip-tags", "deps"]
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)  # warm-up
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def linear_fit(points):
    """(intercept, slope, r2, worst) of the least-squares line through [(x, y)]; worst: the largest
    distance of a point from the line, as a fraction of the largest y."""
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0
    intercept = mean_y - slope * mean_x
    residuals = [y - (intercept + slope * x) for x, y in points]
    total = sum((y - mean_y) ** 2 for _, y in points)
    r2 = 1 - sum(r * r for r in residuals) / total if total else 1.0
    worst = max(abs(r) for r in residuals) / (max(y for _, y in points) or 1.0)
    return intercept, slope, r2, worst


def lab_requests():
    """{group: deps request} of the lab's dev and prod (inventory/lab's group variables)."""
    import yaml

    from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request

    variables = ROOT / "inventory" / "lab" / "group_vars"
    shared = yaml.safe_load((variables / "all.yml").read_text()) or {}
    found = {}
    for group in ("dev", "prod"):
        params = dict(shared, **(yaml.safe_load((variables / ("%s.yml" % group)).read_text()) or {}))
        found[group] = build_request("deps", params)
    return found


def time_lab_hosts(runs):
    """{group: (median seconds, services read)} of the area's collection with each lab host's request."""
    found = {}
    for group, request in lab_requests().items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            facts = deps_collect.collect_area(request, b"bench-key")
            times.append(time.perf_counter() - started)
        services = sum(len(stack.get("services") or {}) for stack in facts["containers"].values())
        found[group] = (statistics.median(times), services)
    return found


def print_figures(args, rows, breakdown, floors):
    base = rows[0][1]
    print(
        "deps area collection on one host (two host venvs of %d dists; containers of %s, %s; median of %d):"
        % (
            args.dists,
            args.image,
            "each changed by pip: one exec each" if args.pip_in_each else "unchanged",
            args.runs,
        )
    )
    print("| containers | seconds | added vs 0 | per container | services read | dists read in containers |")
    print("|---:|---:|---:|---:|---:|---:|")
    for count, seconds, services, read in rows:
        per = (seconds - base) / count if count else 0.0
        print("| %d | %.3f | %.3f | %.3f | %d | %d |" % (count, seconds, seconds - base, per, services, read))
    print("\nwhere the time goes (last run; calls, summed seconds, longest call):")
    print("| containers | %s |" % " | ".join(PHASES))
    print("|---:|%s" % ("---|" * len(PHASES)))
    for count, phases in breakdown:
        print("| %d | %s |" % (count, " | ".join("%d, %.3f, %.3f" % phases[name] for name in PHASES)))
    for count, floor in sorted(floors.items()):
        print("one bare docker exec (python3 -c pass) with %d containers running: %.3f s" % (count, floor))
    if len(rows) > 1:
        intercept, slope, r2, worst = linear_fit([(count, seconds) for count, seconds, _, _ in rows])
        print(
            "linear fit: %.3f s + %.4f s per container (r2 %.3f; worst count %.1f%% of the largest time off the line)"
            % (intercept, slope, r2, 100 * worst)
        )
    last = rows[-1]
    print(
        "goal: <= %.1f s added per host at %d containers: %.3f s (%s)"
        % (GOAL_SECONDS, last[0], last[1], "met" if last[1] <= GOAL_SECONDS else "missed")
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--audit-runs", type=int, default=3)
    parser.add_argument("--containers", default="0,5,10,15")
    parser.add_argument("--dists", type=int, default=300)
    parser.add_argument("--pip-in-each", action="store_true", help="one exec per container (none may share facts)")
    parser.add_argument("--image", default=IMAGE, help="the containers' image (lab/pyapp:1.0: dpkg and Node too)")
    args = parser.parse_args(argv)
    counts = sorted({int(part) for part in args.containers.split(",")})
    work = pathlib.Path(tempfile.mkdtemp(prefix="deps-bench-"))
    rows, breakdown, floors = [], [], {}
    calls = timed_phases()
    try:
        os.chmod(work, 0o755)
        make_site(work / "site", args.dists)
        venvs = [work / "venv-a", work / "venv-b"]
        for venv in venvs:
            make_venv(venv, args.dists)
        compose = work / "compose.yml"
        compose.write_text("name: %s\nservices: {}\n" % PROJECT)
        started = 0
        for count in counts:
            remove_containers(started)
            start_containers(count, work / "site", args.pip_in_each, args.image)
            started = count
            request = {
                "python_envs": [{"name": venv.name, "path": str(venv)} for venv in venvs],
                "stacks": [{"name": "bench", "files": [str(compose)], "project": PROJECT}] if count else [],
                "docker_host": DOCKER_HOST,
                "os_root": "/",
                "container_node_projects": [{"name": "web", "path": "/app"}],
            }
            seconds, facts, phases = time_collection(request, args.runs, calls)
            breakdown.append((count, phases))
            if count:
                floors[count] = exec_floor(args.runs)
            services = (facts["containers"].get("bench") or {}).get("services") or {}
            read = sum(len(s["python"].get("dists") or {}) for s in services.values() if s.get("python"))
            rows.append((count, seconds, len(services), read))
    finally:
        remove_containers(max(counts))
        shutil.rmtree(work, ignore_errors=True)
    print_figures(args, rows, breakdown, floors)
    print("\ncollection per lab host (its own request from inventory/lab; median of %d):" % args.runs)
    print("| host | seconds | container services read |")
    print("|---|---:|---:|")
    for group, (seconds, services) in time_lab_hosts(args.runs).items():
        print("| %s | %.3f | %d |" % (group, seconds, services))
    if args.audit_runs:
        with_area = time_audit(args.audit_runs)
        without = time_audit(args.audit_runs, skip=True)
        print(
            "whole audit of the lab (median of %d): every area %.2f s, --skip-tags deps %.2f s, deps adds %.2f s"
            % (args.audit_runs, with_area, without, with_area - without)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
