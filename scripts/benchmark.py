#!/usr/bin/env python3
"""Benchmark the lab audit against the raw floor. Not a test: it measures and prints figures.

    .venv/bin/python scripts/benchmark.py [--runs 5] [--render-runs 20] [--output reports/benchmark.json]

Against the lab (run `lab/labctl up` first; this script only reads it and never changes it):

  audit        wall time of `ansible-playbook compare.yml -e drift_report_dir=<tmp>`: 1 warm-up, median of --runs
  floor        one fresh `ssh deploy@127.0.0.1 -p 2222 sh -s` that cats prod's env files, plus the same
               reads of dev's env file locally: 1 warm-up, median of --runs
  ratio        audit / floor
  tasks        task results per host of one audit, counted from ansible-runner events
  diff+render  build_audit + build_document + build_view + render_markdown on the run directory of one
               audit kept with drift_keep_run_dir=true: median of --render-runs (the report files are
               not written; that is I/O, not diff and render)

Every audit gets its own SSH ControlPath directory, so that its first connection is fresh like the
floor's (a CI run on a new runner); the ControlPersist master it leaves behind is stopped through its
socket right after the run. Reports and run directories go to temporary directories, removed at the
end. Nothing is left running. The figures go to stdout and, as JSON, to reports/benchmark.json.
Nothing read from the hosts is printed or stored: the floor's output is counted in bytes and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv's bin: ansible-playbook and friends
LAB = Path("/var/lib/envparity-lab")
SSH_KEY = LAB / "ssh" / "id_ed25519"
KNOWN_HOSTS = LAB / "ssh" / "known_hosts"
PROD_TARGET = "deploy@127.0.0.1"
PROD_PORT = 2222
PROD_PROJECT = "/home/deploy/ai_assistant"
PROD_FILES = ("config/production.env", "docker/env.prod.example")
DEV_FILES = (str(LAB / "dev" / "personal_assistant" / "config" / "development.env"),)
RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}
ARG_SPEC_TASK = "Validating arguments against arg spec"
COMMAND_TIMEOUT = 300


class BenchmarkError(RuntimeError):
    """The benchmark cannot measure what it should; the message says why."""


# --- helpers -----------------------------------------------------------------------------------


def stats(samples):
    return {
        "median_s": round(statistics.median(samples), 4),
        "min_s": round(min(samples), 4),
        "max_s": round(max(samples), 4),
        "samples_s": [round(sample, 4) for sample in samples],
    }


def ansible_env(control_dir):
    """The environment of an audit: the repository's ansible.cfg, a private SSH ControlPath directory."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir),
        PATH=str(BIN) + os.pathsep + env.get("PATH", ""),
    )
    return env


def stop_ssh_masters(control_dir):
    """Stop the ControlPersist masters an audit left in its own ControlPath directory (by socket)."""
    sockets = [path for path in Path(control_dir).iterdir() if path.is_socket()]
    for socket in sockets:
        subprocess.run(
            ["ssh", "-o", "ControlPath=%s" % socket, "-O", "exit", "-p", str(PROD_PORT), PROD_TARGET],
            capture_output=True,
            check=False,
            timeout=30,
        )
    deadline = time.monotonic() + 5
    while any(socket.exists() for socket in sockets) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [str(socket) for socket in sockets if socket.exists()]
    if left:
        raise BenchmarkError("an SSH master did not stop: %s" % ", ".join(left))


def tail(text, lines=15):
    return "\n".join((text or "").strip().splitlines()[-lines:])


def check_lab():
    """The lab must be up already: the benchmark reads it, it never builds or changes it."""
    status = subprocess.run(
        ["/usr/bin/python3", str(ROOT / "lab" / "labctl"), "status"],
        capture_output=True,
        text=True,
        check=False,
        timeout=COMMAND_TIMEOUT,
    )
    if status.returncode != 0:
        raise BenchmarkError("the lab is not up (run lab/labctl up first):\n%s" % tail(status.stdout + status.stderr))


# --- measurements --------------------------------------------------------------------------------


def run_audit(workdir, extra_vars=None):
    """One `ansible-playbook compare.yml` in workdir (reports and SSH control sockets); returns its wall time."""
    control_dir = workdir / "cp"
    control_dir.mkdir(mode=0o700)
    variables = {"drift_report_dir": str(workdir / "reports")}
    variables.update(extra_vars or {})
    command = [str(BIN / "ansible-playbook"), "compare.yml", "-e", json.dumps(variables)]
    try:
        start = time.perf_counter()
        proc = subprocess.run(
            command,
            cwd=ROOT,
            env=ansible_env(control_dir),
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
        elapsed = time.perf_counter() - start
    finally:
        stop_ssh_masters(control_dir)
    if proc.returncode != 0:
        raise BenchmarkError("the audit failed (rc %d):\n%s" % (proc.returncode, tail(proc.stdout + proc.stderr)))
    return elapsed


def measure_audit(runs):
    samples = []
    for index in range(runs + 1):
        with tempfile.TemporaryDirectory(prefix="envparity-bench-") as tmp:
            elapsed = run_audit(Path(tmp))
        if index:  # the first run is the warm-up
            samples.append(elapsed)
        progress("audit", index, runs, elapsed)
    return samples


def ssh_command():
    return [
        "ssh",
        "-i",
        str(SSH_KEY),
        "-o",
        "UserKnownHostsFile=%s" % KNOWN_HOSTS,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        # A fresh connection every time, whatever ~/.ssh/config says.
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        "-p",
        str(PROD_PORT),
        PROD_TARGET,
        "sh",
        "-s",
    ]


def floor_once():
    """Prod's files over one fresh SSH connection, then dev's locally; returns (seconds, bytes read)."""
    script = "cd %s && cat %s\n" % (shlex.quote(PROD_PROJECT), " ".join(shlex.quote(name) for name in PROD_FILES))
    start = time.perf_counter()
    prod = subprocess.run(ssh_command(), input=script.encode(), capture_output=True, check=False, timeout=60)
    dev = subprocess.run(["cat", *DEV_FILES], capture_output=True, check=False, timeout=60)
    elapsed = time.perf_counter() - start
    # Never print what was read: the lab's env files hold (canary) secrets.
    if prod.returncode != 0 or not prod.stdout:
        reason = tail(prod.stderr.decode(errors="replace"), 5)
        raise BenchmarkError("the floor's ssh failed (rc %d): %s" % (prod.returncode, reason))
    if dev.returncode != 0 or not dev.stdout:
        raise BenchmarkError("the floor's local read failed (rc %d)" % dev.returncode)
    return elapsed, {"prod": len(prod.stdout), "dev": len(dev.stdout)}


def measure_floor(runs):
    samples, read = [], {}
    for index in range(runs + 1):
        elapsed, read = floor_once()
        if index:
            samples.append(elapsed)
        progress("floor", index, runs, elapsed)
    return samples, read


def count_tasks():
    """Task results per host of one audit, from ansible-runner's events."""
    import ansible_runner

    per_host = {}
    with tempfile.TemporaryDirectory(prefix="envparity-bench-") as tmp:
        workdir = Path(tmp)
        control_dir = workdir / "cp"
        control_dir.mkdir(mode=0o700)
        env = ansible_env(control_dir)
        envvars = {name: env[name] for name in ("ANSIBLE_CONFIG", "ANSIBLE_NOCOLOR", "ANSIBLE_SSH_CONTROL_PATH_DIR")}
        (workdir / "runner").mkdir()
        try:
            runner = ansible_runner.run(
                private_data_dir=str(workdir / "runner"),
                project_dir=str(ROOT),
                playbook=str(ROOT / "compare.yml"),
                extravars={"drift_report_dir": str(workdir / "reports")},
                envvars=envvars,
                quiet=True,
            )
            if runner.rc != 0:
                raise BenchmarkError("the audit run through ansible-runner failed (rc %s)" % runner.rc)
            for event in runner.events:
                status = RESULT_EVENTS.get(event.get("event"))
                if status is None:
                    continue
                data = event.get("event_data", {})
                counts = per_host.setdefault(
                    data.get("host"),
                    {
                        "total": 0,
                        "ok": 0,
                        "failed": 0,
                        "skipped": 0,
                        "unreachable": 0,
                        "arg_spec": 0,
                        "on_controller": 0,
                        "tasks": [],
                    },
                )
                counts["total"] += 1
                counts[status] += 1
                # Each role's "Validating arguments against arg spec" task: controller-side, no remote exec.
                if str(data.get("task", "")).startswith(ARG_SPEC_TASK):
                    counts["arg_spec"] += 1
                # run_once tasks delegated to the controller (open the run, write the report)
                if (data.get("res") or {}).get("_ansible_delegated_vars") or data.get("delegated_host"):
                    counts["on_controller"] += 1
                counts["tasks"].append(data.get("task"))
        finally:
            stop_ssh_masters(control_dir)
    return dict(sorted(per_host.items()))


def measure_render(render_runs):
    """Median time of the pure-Python diff and render of one kept run directory."""
    collections = str(ROOT / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
    from ansible_collections.envparity.audit.plugins.plugin_utils.audit import build_audit
    from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view
    from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown

    with tempfile.TemporaryDirectory(prefix="envparity-bench-") as tmp:
        workdir = Path(tmp)
        run_audit(workdir, {"drift_keep_run_dir": True})
        runs_dir = workdir / "reports" / ".runs"
        kept = sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []
        if len(kept) != 1:
            raise BenchmarkError("expected one kept run directory under %s, found %d" % (runs_dir, len(kept)))
        directory = str(kept[0])
        if not (kept[0] / "settings.json").is_file():
            raise BenchmarkError(
                "%s has no settings.json: this benchmark needs the run directory layout "
                "that carries the report's settings and requests" % directory
            )
        # What the report step feeds these functions (plugin_utils/run_report.py): the run's settings
        # (environments, groups, rules, gate, template, inventory) and every host's requests.
        settings = run_dir.load_settings(directory)
        requests = run_dir.load_requests(directory)
        phases = {"build_audit": [], "build_document+build_view": [], "render_markdown": []}
        totals = []
        document = markdown = None
        for _ in range(render_runs):
            t0 = time.perf_counter()
            audit = build_audit(
                directory,
                settings["environments"],
                settings["production_environments"],
                settings["groups"],
                requests,
                settings["rules_files"],
                settings["fail_on"],
            )
            t1 = time.perf_counter()
            document = build_document(audit, "1970-01-01T00:00:00Z", settings["inventory"])
            view = build_view(document)
            t2 = time.perf_counter()
            markdown = render_markdown(settings["template"], view)
            t3 = time.perf_counter()
            phases["build_audit"].append(t1 - t0)
            phases["build_document+build_view"].append(t2 - t1)
            phases["render_markdown"].append(t3 - t2)
            totals.append(t3 - t0)
    return (
        totals,
        {name: round(statistics.median(values), 5) for name, values in phases.items()},
        {
            "findings": len(document["findings"]),
            "markdown_bytes": len(markdown.encode("utf-8")),
        },
    )


# --- output --------------------------------------------------------------------------------------


def progress(what, index, runs, elapsed):
    label = "warm-up" if index == 0 else "%d/%d" % (index, runs)
    print("  %-6s %-8s %7.3f s" % (what, label, elapsed), file=sys.stderr, flush=True)


def versions():
    from ansible.release import __version__ as ansible_core

    return {
        "python": platform.python_version(),
        "ansible_core": ansible_core,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def table(figures):
    audit, floor, render = figures["audit"], figures["floor"], figures["diff_render"]
    rows = [
        ("audit", "ansible-playbook compare.yml", audit),
        ("floor", "ssh sh -s (prod) + cat (dev)", floor),
        ("diff+render", "build_audit..render_markdown", render),
    ]
    lines = [
        "envparity benchmark: lab (dev local, prod sshd 127.0.0.1:%d); %d runs after 1 warm-up, diff+render %d runs"
        % (PROD_PORT, figures["runs"], figures["render_runs"]),
        "",
        "%-12s %-30s %10s %10s %10s" % ("what", "how", "median", "min", "max"),
    ]
    for name, how, values in rows:
        lines.append(
            "%-12s %-30s %8.3f s %8.3f s %8.3f s" % (name, how, values["median_s"], values["min_s"], values["max_s"])
        )
    lines.append("%-12s %-30s %9.1fx" % ("ratio", "audit / floor (medians)", figures["ratio"]))
    lines.append("")
    lines.append(
        "%-12s %6s %6s %7s %8s %9s %14s" % ("host", "tasks", "ok", "failed", "skipped", "arg spec", "on controller")
    )
    for host, counts in figures["tasks_per_host"].items():
        lines.append(
            "%-12s %6d %6d %7d %8d %9d %14d"
            % (
                host,
                counts["total"],
                counts["ok"],
                counts["failed"],
                counts["skipped"],
                counts["arg_spec"],
                counts["on_controller"],
            )
        )
    lines.append("")
    lines.append(
        "diff+render phases (median): "
        + ", ".join("%s %.1f ms" % (name, seconds * 1000) for name, seconds in render["phases_median_s"].items())
    )
    lines.append(
        "findings %d, Markdown %d bytes; floor read %d bytes on prod, %d on dev"
        % (render["findings"], render["markdown_bytes"], floor["bytes_read"]["prod"], floor["bytes_read"]["dev"])
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of the audit and the floor (default 5)")
    parser.add_argument("--render-runs", type=int, default=20, help="measured runs of diff+render (default 20)")
    parser.add_argument("--output", default=str(ROOT / "reports" / "benchmark.json"), help="JSON file of the figures")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.render_runs < 1:
        parser.error("--runs and --render-runs must be at least 1")
    if not shutil.which("ssh"):
        parser.error("ssh is not installed")
    os.environ["PATH"] = str(BIN) + os.pathsep + os.environ.get("PATH", "")  # ansible-runner finds ansible-playbook

    try:
        check_lab()
        audit_samples = measure_audit(args.runs)
        floor_samples, floor_read = measure_floor(args.runs)
        tasks_per_host = count_tasks()
        render_samples, phases, render_info = measure_render(args.render_runs)
    except (BenchmarkError, subprocess.TimeoutExpired) as exc:
        print("benchmark: %s" % exc, file=sys.stderr)
        return 1

    audit, floor = stats(audit_samples), stats(floor_samples)
    figures = {
        "schema_version": 1,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": versions(),
        "runs": args.runs,
        "render_runs": args.render_runs,
        "audit": dict(
            audit,
            command="ansible-playbook compare.yml -e drift_report_dir=<tmp>",
            note="fresh SSH ControlPath directory per run: the first connection is a new one",
        ),
        "floor": dict(floor, command=" ".join(ssh_command()) + " + cat (dev)", bytes_read=floor_read),
        "ratio": round(audit["median_s"] / floor["median_s"], 1),
        "tasks_per_host": tasks_per_host,
        "diff_render": dict(stats(render_samples), phases_median_s=phases, **render_info),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(table(figures))
    print("\nfigures written to %s" % output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
