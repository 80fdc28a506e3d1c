"""The fleet audited in one run and in slices (AWX job slicing), on the lab. Not a test: it measures.

    .venv/bin/python scripts/benchmark.py --slices 4 --hosts 200 [--runs 1] [--forks 50]

An inventory of --hosts prod hosts on the lab's one sshd plus dev (scripts/fleet_inventory.py, the
audit's and the env area's variables), audited with the env area and no history store:

  single   `compare.yml` as one command (drift_phase all), --forks forks
  collect  --slices collect jobs at once (drift_phase collect, one drift_run_id), each with
           `--limit` on its slice (hosts[k::N] of the inventory's order, as AWX slices a job:
           201 hosts in 4 slices are 51, 50, 50, 50) and --forks forks
  report   then the report job (drift_phase report, the same run id), which contacts no host

Each: wall time and controller CPU (user+sys of the ansible-playbook process trees, the children's
rusage around the run; the detached ControlPersist masters are not in it), when each collect job
was seen done (from their common start, waited for in slice order), and the median of --runs of
each (no warm-up: every run opens fresh SSH masters, each job its own ControlPath directory). The
sliced report must have the single run's body (Markdown without its date) and finding ids, and
neither may hold a could-not-collect finding. A run where the lab's sshd dropped a connection (past
MaxStartups: many hosts on one sshd, which distinct machines would not do) is repeated, and
counted. The figures go to stdout and, as JSON, to reports/benchmark-slices.json.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import benchmark
from benchlib import BenchmarkError, stats
from fleet_inventory import fleet_host_names, write_fleet_inventory

AREAS = ("env",)
ROLES = ("audit", *AREAS)
DEV_HOST = "dev-laptop"


def slices(hosts, count):
    """The hosts of each of `count` slices, as AWX slices a job: slice k has hosts[k::count]."""
    if not 1 <= count <= len(hosts):
        raise ValueError("%d slices of %d hosts" % (count, len(hosts)))
    return [hosts[index::count] for index in range(count)]


def write_limits(directory, parts):
    """One file per slice, its hosts one a line, for `--limit @file`; their paths."""
    limits = []
    for index, part in enumerate(parts):
        limit = Path(directory) / ("slice-%d.txt" % (index + 1))
        limit.write_text("".join(name + "\n" for name in part), encoding="utf-8")
        limits.append(limit)
    return limits


def audit_args(report_dir, *extra):
    variables = {"drift_report_dir": str(report_dir), "drift_history": False}
    return [str(benchmark.ROOT / "compare.yml"), "--tags", ",".join(AREAS), "-e", json.dumps(variables), *extra]


def run_jobs(workdir, jobs, env):
    """ansible-playbook jobs (lists of arguments) all at once, each with its own ControlPath directory.

    Returns (wall seconds of all, controller CPU seconds of all, [wall seconds of each]); raises
    benchmark.Unreachable when a job exits 4 and BenchmarkError when one fails otherwise."""
    processes, control_dirs = [], []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        for args in jobs:
            control_dir = Path(tempfile.mkdtemp(prefix="cp-", dir=workdir))  # mode 0700
            control_dirs.append(control_dir)
            processes.append(
                subprocess.Popen(
                    [str(benchmark.BIN / "ansible-playbook"), *args],
                    cwd=benchmark.ROOT,
                    env=dict(benchmark.ansible_env(control_dir), **env),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        outputs, each = [], []
        for process in processes:
            outputs.append(process.communicate(timeout=benchmark.COMMAND_TIMEOUT)[0])
            each.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for control_dir in control_dirs:
            benchmark.stop_ssh_masters(control_dir)
    for process, output in zip(processes, outputs, strict=True):
        if process.returncode == 4:
            raise benchmark.Unreachable("compare.yml", benchmark.unreachable_reasons(output))
        if process.returncode != 0:
            raise BenchmarkError("compare.yml failed (rc %d):\n%s" % (process.returncode, benchmark.tail(output)))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return elapsed, cpu, each


def read_report(report_dir):
    """(report body, finding ids) of the report in report_dir; refuses one with a host not collected."""
    benchmark.collection_import()
    from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import report_body

    try:
        document = json.loads((report_dir / "latest.json").read_text(encoding="utf-8"))
        body = report_body((report_dir / "latest.md").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchmarkError("no readable report in %s: %s" % (report_dir, exc)) from None
    unknown = [f for f in document["findings"] if f["kind"] == "unknown"]
    if unknown:
        raise BenchmarkError("%d finding(s) could not collect, e.g. %s" % (len(unknown), unknown[0]["message"]))
    return body, [f["id"] for f in document["findings"]]


def one_single(tmp, inventory, env):
    workdir = Path(tempfile.mkdtemp(dir=tmp))
    elapsed, cpu, _ = run_jobs(workdir, [audit_args(workdir / "reports", "-i", str(inventory))], env)
    return {"s": elapsed, "cpu_s": cpu, "report": read_report(workdir / "reports")}


def one_sliced(tmp, inventory, env, limits):
    """The collect jobs at once, then the report job: their figures and the report."""
    workdir = Path(tempfile.mkdtemp(dir=tmp))
    reports, run_id = workdir / "reports", "bench-%d" % time.time_ns()
    collect = [
        audit_args(reports, "-i", str(inventory), "-e", "drift_phase=collect", "-e", "drift_run_id=" + run_id)
        + ["--limit", "@%s" % limit]
        for limit in limits
    ]
    collect_s, collect_cpu, each = run_jobs(workdir, collect, env)
    report_args = audit_args(reports, "-i", str(inventory), "-e", "drift_phase=report", "-e", "drift_run_id=" + run_id)
    report_s, report_cpu, _ = run_jobs(workdir, [report_args], env)
    return {
        "collect_s": collect_s,
        "collect_cpu_s": collect_cpu,
        "collect_each_s": each,
        "report_s": report_s,
        "report_cpu_s": report_cpu,
        "report": read_report(reports),
    }


def median(runs, key):
    return round(statistics.median(run[key] for run in runs), 4)


def measure(args):
    """The single run and the sliced run of --hosts prod hosts + dev, --runs times each, alternating."""
    count, hosts = args.slices, args.hosts
    env = {"ANSIBLE_FORKS": str(args.forks), "ANSIBLE_SSH_RETRIES": str(benchmark.FLEET_SSH_RETRIES)}
    singles, sliced, repeats = [], [], []
    load_before = os.getloadavg()  # the machine's other work: these figures are only as quiet as it was
    with tempfile.TemporaryDirectory(prefix="envparity-bench-slices-") as tmp:
        inventory = write_fleet_inventory(Path(tmp) / "fleet", hosts, ROLES)
        parts = slices([DEV_HOST, *fleet_host_names(hosts)], count)
        limits = write_limits(Path(tmp), parts)
        dropped_before = benchmark.sshd_dropped()
        for index in range(args.runs):
            singles.append(benchmark.retried(lambda: one_single(tmp, inventory, env), repeats))
            benchmark.progress("single", index + 1, args.runs, singles[-1]["s"])
            sliced.append(benchmark.retried(lambda: one_sliced(tmp, inventory, env, limits), repeats))
            benchmark.progress("%d slices" % count, index + 1, args.runs, sliced[-1]["collect_s"])
            benchmark.progress("report", index + 1, args.runs, sliced[-1]["report_s"])
        dropped_after = benchmark.sshd_dropped()
    reference = singles[0]["report"]
    if any(run["report"] != reference for run in singles + sliced):
        raise BenchmarkError("the sliced report's body or finding ids differ from the single run's")
    return {
        "schema_version": 1,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": dict(
            benchmark.versions(),
            load_average_before=[round(x, 2) for x in load_before],
            load_average_after=[round(x, 2) for x in os.getloadavg()],
        ),
        "runs": args.runs,
        "areas": list(AREAS),
        "prod_hosts": hosts,
        "forks": args.forks,
        "slices": [len(part) for part in parts],
        "single": dict(stats([run["s"] for run in singles]), cpu_median_s=median(singles, "cpu_s")),
        "collect": dict(
            stats([run["collect_s"] for run in sliced]),
            cpu_median_s=median(sliced, "collect_cpu_s"),
            each_s=[[round(s, 3) for s in run["collect_each_s"]] for run in sliced],
        ),
        "report": dict(stats([run["report_s"] for run in sliced]), cpu_median_s=median(sliced, "report_cpu_s")),
        "same_report": True,
        "findings": len(reference[1]),
        "repeated_after_unreachable": len(repeats),
        "sshd_dropped": None if None in (dropped_before, dropped_after) else dropped_after - dropped_before,
    }


def table(figures):
    single, collect, report = figures["single"], figures["collect"], figures["report"]
    sliced_s = collect["median_s"] + report["median_s"]
    lines = [
        "envparity sliced audit: %d prod hosts on the lab's sshd + dev, areas %s, forks %d, no history, "
        "median of %d run(s), load average before %s"
        % (
            figures["prod_hosts"],
            ",".join(figures["areas"]),
            figures["forks"],
            figures["runs"],
            " ".join("%.1f" % x for x in figures["environment"]["load_average_before"]),
        ),
        "  %-48s %9s %9s" % ("", "wall s", "CPU s"),
        "  %-48s %9.1f %9.1f" % ("one run (drift_phase all)", single["median_s"], single["cpu_median_s"]),
        "  %-48s %9.1f %9.1f"
        % (
            "%d collect jobs at once (%s hosts)" % (len(figures["slices"]), ", ".join(map(str, figures["slices"]))),
            collect["median_s"],
            collect["cpu_median_s"],
        ),
        "  %-48s %9.1f %9.1f" % ("then the report job", report["median_s"], report["cpu_median_s"]),
        "  %-48s %9.1f %9.1f"
        % ("sliced, collect + report", sliced_s, collect["cpu_median_s"] + report["cpu_median_s"]),
        "  same report body and finding ids: yes (%d findings); runs repeated after an sshd drop: %d; "
        "sshd drops: %s" % (figures["findings"], figures["repeated_after_unreachable"], figures["sshd_dropped"]),
    ]
    return "\n".join(lines)
