#!/usr/bin/env python3
"""Benchmark the lab audit against the raw floor. Not a test: it measures and prints figures.

    .venv/bin/python scripts/benchmark.py [--runs 5] [--render-runs 20] [--load-containers 50]
                                          [--output reports/benchmark.json]
    .venv/bin/python scripts/benchmark.py --fleet 1,50 [--runs 5]   # only the fleet figures
    .venv/bin/python scripts/benchmark.py --remove-load   # only remove containers an interrupted run left
    .venv/bin/python scripts/benchmark.py --deps [--runs 5]   # only the deps area's container figures
    .venv/bin/python scripts/benchmark.py --slices 4 --hosts 200 [--runs 1] [--forks 50]
                                          # only one run vs collect slices + report (scripts/benchmark_slices.py)

Against the lab (run `lab/labctl up` first). The benchmark only reads the lab, except for the
docker load below, which it removes again.

  audit        wall time of `ansible-playbook compare.yml -e drift_report_dir=<tmp>`, all areas, the floor's
               areas alone (`--tags env,git,docker,postgres`) when the engine has more, and each area of the
               engine's registry alone (`--tags env` …): 1 warm-up, median of --runs
  floor        the same work without Ansible, per host in ONE shell script: one fresh
               `ssh deploy@127.0.0.1 -p 2222 sh -s` for prod, then the same script with `sh -s` locally for
               dev. Its sections, from the inputs in inventory/lab/group_vars:
                 env      cat the env files and their templates
                 git      the collector's git calls (plugins/module_utils/git_collect.py): --version, status
                          --porcelain=v2 -b -z --untracked-files=all, describe, log -z --name-only,
                          config --get-regexp remote, ls-files -s; always `git --no-optional-locks`
                 deploy   sha256sum of every file of the deployed directories (.git skipped)
                 engine   python3 -c (stdlib): GET /version, /containers/json?all=1, /containers/{id}/json
                          for each, /images/json on the Docker socket, one keep-alive connection
                 compose  python3 -c 'import yaml': load the stack's compose files, read its env file
                 psql     per database, the collector's psql script (plugins/module_utils/pg_collect.py) on
                          psql's stdin, psql on the host or `docker exec -i` in the database's container, with
                          the collector's PG* variables; the password, read from the file the lab's group_vars
                          look up, is only in the environment of a subshell (the script travels on stdin)
                 health   cat the /proc files the collector reads, tail -c the log files, cat the crontabs;
                          python3 -c (stdlib): for each container of the stacks' projects, at once (a
                          thread and a connection each), GET its inspection, one one-shot stats sample
                          (running ones) and its log tail
               Wall time of all sections (1 warm-up, median of --runs), and of each area's sections alone
               (env; git = git + deploy; docker = engine + compose; postgres = psql; health) for the per-area
               ratios. Each section is also timed inside the script (`date +%s%N`): that excludes ssh and
               sh start-up.
  ratio        audit / floor (medians): all the floor's areas, and per area
  ping floor   Ansible's own floor: a playbook of one ansible.builtin.ping per lab host (same inventory, same
               ansible.cfg, a fresh ControlPath directory per run): 1 warm-up, median of --runs
  goals        env-only audit <= ping floor + 0.15 s; each area's audit <= ping floor + the area's raw time
               (its floor sections timed inside the script, on the slower host: Ansible collects the hosts
               in parallel) + 0.15 s, an area without floor sections (none today) against the ping
               floor alone; task results <= 3 per host; diff+render <= 20 ms. Each with its margin and PASS/MISS.
  docker load  --load-containers (default 50) extra running containers started in the lab's engine through its
               API (image lab/worker:1.0 and its idle command, network none, 16 MiB memory limit), labelled
               as compose project `envparity-bench` (service `load`; no stack of the lab uses it, so the
               audit's orphan check ignores them): the docker-only audit and the docker floor again, then
               exactly those containers are stopped and removed (by label, in a finally, also on Ctrl-C).
               The docker-only audit must give the same findings (check, key, environments) with and
               without the load, and the engine's container list must be what it was before.
  tasks        task results per host of one audit, counted from ansible-runner events (the run_once tasks
               delegated to the controller count for the host that ran them)
  diff+render  build_audit + build_document + build_view + render_markdown + build_junit and the metrics
               text on the run directory of one
               audit kept with drift_keep_run_dir=true: median of --render-runs (the report files are
               not written; that is I/O, not diff and render)

--fleet N,M,…: instead of the above, for each N an inventory in a temporary directory
(scripts/fleet_inventory.py): N prod hosts prod-001 … all on the lab's sshd (its address, port, user, key
and known_hosts as inventory/lab/hosts.yml has them, each host with its own ControlPath, so its own SSH
master, as distinct machines), dev as in the lab, the lab's group_vars less every variable but the audit's,
env's and git's. With forks N+1: the ping floor and the audit `--tags env,git`, 1 warm-up and median of
--runs each: T(N), the controller CPU (user+sys of the ansible-playbook process tree, from the rusage of
children around the run; the detached ControlPersist masters are not in it) and the Markdown report's
size. Goals, largest N against smallest: T ratio <= 3, CPU per extra host <= 60 ms, Markdown <= 1.5x.
With many hosts on one sshd, connections past its MaxStartups are dropped, which distinct machines would
not do: Ansible's SSH retries (ANSIBLE_SSH_RETRIES=3) reconnect them, and the drops are counted from
sshd's log (every user's). A run with a host still unreachable is repeated (3 tries at most) and counted.

Every audit gets its own SSH ControlPath directory, so that its first connection is fresh like the
floor's (a CI run on a new runner); the ControlPersist master it leaves behind is stopped through its
socket right after the run. Reports and run directories go to temporary directories, removed at the
end. Nothing is left running. The figures go to stdout and, as JSON, to reports/benchmark.json
(reports/benchmark-fleet.json for --fleet).
Nothing read from the hosts is printed or stored: the floor's output is counted in bytes and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import posixpath
import re
import resource
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from benchlib import BenchmarkError, stats
from fleet_inventory import write_fleet_inventory

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv's bin: ansible-playbook and friends
LAB = Path("/var/lib/envparity-lab")
SSH_KEY = LAB / "ssh" / "id_ed25519"
KNOWN_HOSTS = LAB / "ssh" / "known_hosts"
PROD_TARGET = "deploy@127.0.0.1"
PROD_PORT = 2222
# The interpreters of inventory/lab/hosts.yml: prod's system python, dev's ansible_playbook_python.
PROD_PYTHON = "/usr/bin/python3"
DEV_PYTHON = sys.executable
GROUP_VARS = ROOT / "inventory" / "lab" / "group_vars"
RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}
ARG_SPEC_TASK = "Validating arguments against arg spec"
COMMAND_TIMEOUT = 300

# The areas the floor does; an area of the engine that is not here is audited and timed, with no
# floor to compare with.
AREAS = ("env", "git", "docker", "postgres", "health")
FLOOR_ALL = "+".join(AREAS)
# The floor script's sections, in order, and the audit area each belongs to.
SECTIONS = {
    "env": "env",
    "git": "git",
    "deploy": "git",
    "engine": "docker",
    "compose": "docker",
    "psql": "postgres",
    "health": "health",
}
# How the lab's group_vars give a database password: read from a file on the controller.
PASSWORD_LOOKUP = re.compile(
    r"""^\{\{\s*lookup\(\s*['"](?:ansible\.builtin\.)?file['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*\}\}$"""
)

# Ansible's own floor: the cheapest playbook that reaches every host.
PING_PLAYBOOK = """\
---
- name: Ansible's floor, one ping per host
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""
# A run where the lab's sshd refused a connection (MaxStartups: too many unauthenticated connections at
# once, as a large fleet on its one sshd opens) says nothing about the engine: it is repeated, and counted.
UNREACHABLE_ATTEMPTS = 3

# The goals the engine is held to (seconds unless said otherwise).
GOAL_TASKS_PER_HOST = 3
GOAL_OVER_FLOORS_S = 0.15  # an audit's time over Ansible's ping floor plus the area's own raw reads
GOAL_DIFF_RENDER_S = 0.020
GOAL_FLEET_TIME_RATIO = 3.0  # T(largest fleet) / T(smallest)
GOAL_FLEET_CPU_PER_HOST_S = 0.060
GOAL_FLEET_MARKDOWN_RATIO = 1.5
FLEET_AREAS = ("env", "git")
FLEET_ROLES = ("audit", *FLEET_AREAS)  # the group_vars a fleet inventory keeps
# A fleet on the lab's one sshd opens N connections at once; past its MaxStartups sshd drops some, which
# distinct machines would not: Ansible's own SSH retries reconnect them (counted from sshd's log).
FLEET_SSH_RETRIES = 3
SSHD_LOG = LAB / "ssh" / "sshd.log"
SSHD_DROPPED = b"past MaxStartups"

# The docker load: containers of a compose project no stack of the lab uses.
LOAD_PROJECT = "envparity-bench"
LOAD_SERVICE = "load"
LOAD_LABEL = "com.docker.compose.project=%s" % LOAD_PROJECT
LOAD_IMAGE = "lab/worker:1.0"
LOAD_MEMORY = 16 * 1024 * 1024
LOAD_TIMEOUT = 120


# --- helpers -----------------------------------------------------------------------------------


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


# --- the lab's inputs ----------------------------------------------------------------------------


def host_inputs(group):
    """What the audit reads on the hosts of a group, from inventory/lab/group_vars/<group>.yml.

    Paths are absolute or relative to drift_project_dir, as the collectors take them.
    """
    import yaml

    data = yaml.safe_load((GROUP_VARS / ("%s.yml" % group)).read_text(encoding="utf-8")) or {}
    project = data.get("drift_project_dir") or ""

    def path(value):
        if not value.startswith(("/", "~")) and project:
            value = "%s/%s" % (project.rstrip("/"), value)
        # Normalised unless it has a ".." part, like the collectors' paths.
        return value if ".." in value.split("/") else posixpath.normpath(value)

    env_files = []
    for item in data.get("drift_env_files") or []:
        env_files.append(path(item["path"]))
        if item.get("template"):
            env_files.append(path(item["template"]))
    stacks = [
        {
            "files": [path(name) for name in item.get("files") or []],
            "env_file": path(item["env_file"]) if item.get("env_file") else None,
        }
        for item in data.get("drift_compose") or []
    ]
    docker_host = data.get("drift_docker_host") or "unix:///var/run/docker.sock"
    if not docker_host.startswith("unix://"):
        raise BenchmarkError("%s: drift_docker_host %s is not a unix:// socket" % (group, docker_host))
    return {
        "env_files": env_files,
        "repos": [path(item["path"]) for item in data.get("drift_git_repos") or []],
        "deploy_dirs": [path(item["path"]) for item in data.get("drift_deploy_dirs") or []],
        "history_limit": int(data.get("drift_git_history_limit", 200)),
        "docker_socket": docker_host[len("unix://") :] or "/var/run/docker.sock",
        "stacks": stacks,
        "databases": postgres_databases(group, data),
        # health: the /proc files and crontabs read, the log files' tails, the stacks' projects
        "health_files": [path(item["path"]) for item in data.get("drift_log_files") or []],
        "health_cron": [path(item) for item in data.get("drift_health_cron_paths") or []],
        "health_projects": [item["project"] for item in data.get("drift_health_stacks") or []],
        "health_max_bytes": int(data.get("drift_health_log_max_bytes", 1048576)),
        "health_max_lines": int(data.get("drift_health_log_max_lines", 1000)),
    }


def lab_password(group, value):
    """A drift_postgres password as the lab's group_vars give it: lookup('ansible.builtin.file', path)."""
    if value is None:
        return None
    match = PASSWORD_LOOKUP.match(str(value).strip())
    if not match:
        raise BenchmarkError("%s: the floor reads a drift_postgres password only from lookup('file', path)" % group)
    try:
        return Path(match.group(1)).read_text(encoding="utf-8").rstrip()  # as the file lookup strips it
    except OSError as exc:
        raise BenchmarkError("%s: cannot read a drift_postgres password file: %s" % (group, exc.strerror)) from None


def postgres_databases(group, data):
    """Per configured database: the collector's psql command tail, its variables (password included)
    and its script, from the postgres area's request builder and collector
    (plugins/plugin_utils/requests.py, plugins/module_utils/pg_collect.py)."""
    if not data.get("drift_postgres"):
        return []
    collection_import()
    from ansible_collections.envparity.audit.plugins.module_utils import pg_collect, pg_psql
    from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request

    request = build_request("postgres", data)
    passwords = {str(item["name"]): lab_password(group, item.get("password")) for item in data["drift_postgres"]}
    databases = []
    for db in request["databases"]:
        variables = pg_psql.pg_environment(db, passwords[db["name"]], request["timeout"])
        if db["container"]:
            command = ["docker", "-H", request["docker_host"], "exec", "-i"]
            command += [part for name in variables for part in ("-e", name)] + [db["container"], "psql"]
        else:
            command = ["psql"]
        databases.append(
            {
                "command": command + list(pg_psql.PSQL_ARGS),
                "variables": variables,
                "script": pg_collect.build_script(request),
            }
        )
    return databases


# --- the floor -----------------------------------------------------------------------------------

# The engine section: the collector's GETs (plugins/module_utils/docker_engine.py) on one keep-alive
# connection. Raw answers go to stdout, where the benchmark counts them.
ENGINE_PY = """\
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(sys.argv[1])
c = C("localhost", timeout=30)
out = sys.stdout.buffer
def get(path, missing_ok=False):
    c.request("GET", path, headers={"Accept": "application/json"})
    r = c.getresponse()
    body = r.read()
    if r.status == 404 and missing_ok:
        return None
    if r.status != 200:
        sys.exit("GET %s: HTTP %d" % (path, r.status))
    out.write(body)
    return json.loads(body)
api = "/v" + get("/version")["ApiVersion"]
for item in get(api + "/containers/json?all=1"):
    get(api + "/containers/%s/json" % item["Id"], missing_ok=True)
get(api + "/images/json")
"""

# The compose section: the stack's env file read, its compose files loaded with PyYAML (libyaml's
# parser when there is one, BaseLoader's strings-only semantics, like plugins/module_utils/compose_load.py).
COMPOSE_PY = """\
import json, sys, yaml
loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
out = sys.stdout
if sys.argv[1]:
    with open(sys.argv[1], "rb") as f:
        sys.stdout.buffer.write(f.read())
for name in sys.argv[2:]:
    with open(name, "rb") as f:
        out.write(json.dumps(yaml.load(f, Loader=loader)))
out.flush()
"""

# The health section: the /proc files the collector reads (socket owners aside), and for each
# container of the stacks' projects its inspection, one one-shot stats sample and its log tail, the
# containers at once (threads, one connection each), as plugins/module_utils/health_containers.py.
HEALTH_PROC_FILES = (
    "/etc/os-release",
    "/proc/loadavg",
    "/proc/meminfo",
    "/proc/uptime",
    "/proc/self/mountinfo",
    "/proc/net/tcp",
    "/proc/net/tcp6",
    "/proc/net/udp",
    "/proc/net/udp6",
)
HEALTH_PY = """\
import http.client, json, socket, sys, threading, urllib.parse
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(sys.argv[1])
def get(path):
    c = C("localhost", timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return body
api = "/v" + json.loads(get("/version"))["ApiVersion"]
wanted = set(sys.argv[3:])
ids = [i["Id"] for i in json.loads(get(api + "/containers/json?all=1"))
       if (i.get("Labels") or {}).get("com.docker.compose.project") in wanted]
out, lock = [], threading.Lock()
def one(ident, what):
    if what == "state":
        body = get(api + "/containers/%s/json" % ident)
        if json.loads(body).get("State", {}).get("Running"):
            body += get(api + "/containers/%s/stats?stream=false&one-shot=true" % ident)
    else:
        body = get(api + "/containers/%s/logs?stdout=1&stderr=1&tail=%s" % (ident, sys.argv[2]))
    with lock:
        out.append(body)
threads = [threading.Thread(target=one, args=(i, w)) for i in ids for w in ("state", "logs")]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.stdout.buffer.write(b"".join(out))
"""

GIT_LOG_FORMAT = "--format=%x00%H%x00%P%x00%cI%x00%s"


def sh_path(path):
    """A path for the script: quoted, with a leading ~ expanded by the host's shell."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def floor_script(inputs, python, sections, nonce):
    """One sh script doing the audit's reads of the given sections on one host.

    stdout: for each section a marker line `@@<nonce> <section> <date +%s%N>` followed by what the
    section read; a last marker `end`. Commands read stdin from /dev/null (stdin is the script).
    """
    q = shlex.quote
    lines = [
        "set -u",
        "export LC_ALL=C LANGUAGE=C GIT_OPTIONAL_LOCKS=0 GIT_TERMINAL_PROMPT=0 GIT_PAGER=cat PAGER=cat",
        "mark() { printf '\\n@@%s %s %s\\n' " + q(nonce) + ' "$1" "$(date +%s%N)"; }',
        'fail() { echo "floor section $1 failed" >&2; exit 1; }',
    ]
    git = "git --no-optional-locks"
    for section in sections:
        lines.append("mark %s" % section)
        if section == "env":
            if inputs["env_files"]:
                lines.append(
                    "cat -- %s </dev/null || fail env" % " ".join(sh_path(path) for path in inputs["env_files"])
                )
        elif section == "git":
            if inputs["repos"]:
                lines.append("%s --version </dev/null || fail git" % git)
            for repo in inputs["repos"]:
                limit = str(max(inputs["history_limit"], 1) + 1)
                calls = [
                    "status --porcelain=v2 -b -z --untracked-files=all --ignore-submodules=none --show-stash",
                    "describe --tags --always --long",
                    "log --topo-order --no-color --no-show-signature --no-renames --no-abbrev -z --name-only "
                    + q(GIT_LOG_FORMAT)
                    + " -n "
                    + limit
                    + " HEAD --",
                    "config -z --get-regexp " + q(r"^remote\..*\.url$"),
                    "ls-files --stage -z",
                ]
                commands = ["%s %s" % (git, call) for call in calls]
                commands[3] = "{ %s || [ $? -eq 1 ]; }" % commands[3]  # exit status 1: no remote at all
                body = " && ".join(commands)
                lines.append("( cd -- %s && %s ) </dev/null || fail git" % (sh_path(repo), body))
        elif section == "deploy":
            for directory in inputs["deploy_dirs"]:
                lines.append(
                    "( cd -- %s && find . -name .git -prune -o -type f -print0 | xargs -0 -r sha256sum -- ) "
                    "</dev/null || fail deploy" % sh_path(directory)
                )
        elif section == "engine":
            lines.append(
                "%s -c %s %s </dev/null || fail engine" % (q(python), q(ENGINE_PY), sh_path(inputs["docker_socket"]))
            )
        elif section == "compose":
            for stack in inputs["stacks"]:
                env_file = sh_path(stack["env_file"]) if stack["env_file"] else "''"
                files = " ".join(sh_path(name) for name in stack["files"])
                lines.append("%s -c %s %s %s </dev/null || fail compose" % (q(python), q(COMPOSE_PY), env_file, files))
        elif section == "health":
            if inputs["health_files"] or inputs["health_cron"] or inputs["health_projects"]:
                lines.append("cat -- %s </dev/null >/dev/null || fail health" % " ".join(HEALTH_PROC_FILES))
            for path in inputs["health_files"]:
                lines.append("tail -c %d -- %s </dev/null || fail health" % (inputs["health_max_bytes"], sh_path(path)))
            for path in inputs["health_cron"]:
                lines.append("{ cat -- %s/* %s 2>/dev/null || true; } </dev/null" % (sh_path(path), sh_path(path)))
            if inputs["health_projects"]:
                lines.append(
                    "%s -c %s %s %d %s </dev/null || fail health"
                    % (
                        q(python),
                        q(HEALTH_PY),
                        sh_path(inputs["docker_socket"]),
                        inputs["health_max_lines"],
                        " ".join(q(project) for project in inputs["health_projects"]),
                    )
                )
        elif section == "psql":
            # One psql session per database, the collector's script on its stdin (a here-document);
            # the password only in the subshell's environment, never on a command line.
            for db in inputs["databases"]:
                exports = " ".join("%s=%s" % (name, q(value)) for name, value in db["variables"].items())
                delimiter = "PSQL_%s" % nonce
                lines.append(
                    "( export %s; exec %s ) <<'%s' || fail psql" % (exports, " ".join(map(q, db["command"])), delimiter)
                )
                lines.append(db["script"].rstrip("\n"))
                lines.append(delimiter)
        else:
            raise ValueError(section)
    lines.append("mark end")
    return "\n".join(lines) + "\n"


def parse_floor(stdout, nonce, sections):
    """{section: {"s": seconds inside the script, "bytes": bytes read}} from the script's stdout."""
    chunks = stdout.split(b"\n@@" + nonce.encode() + b" ")
    if chunks[0]:
        raise BenchmarkError("the floor script printed something before its first marker")
    marks = []
    for chunk in chunks[1:]:
        header, _, content = chunk.partition(b"\n")
        name, _, stamp = header.decode("ascii", "replace").partition(" ")
        if not stamp.isdigit():
            raise BenchmarkError("the floor script's marker for %r has no timestamp (date +%%s%%N?)" % name)
        marks.append((name, int(stamp), len(content)))
    names = [name for name, _, _ in marks]
    if names != [*sections, "end"]:
        raise BenchmarkError("the floor script's sections are %s, expected %s" % (names, [*sections, "end"]))
    return {
        name: {"s": (marks[index + 1][1] - stamp) / 1e9, "bytes": size}
        for index, (name, stamp, size) in enumerate(marks[:-1])
    }


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


class Floor:
    """The floor scripts of prod and dev, for a set of sections."""

    def __init__(self, sections):
        self.sections = list(sections)
        self.nonce = secrets.token_hex(16)
        self.hosts = {
            "prod": (ssh_command(), floor_script(host_inputs("prod"), PROD_PYTHON, self.sections, self.nonce)),
            "dev": (["sh", "-s"], floor_script(host_inputs("dev"), DEV_PYTHON, self.sections, self.nonce)),
        }

    def once(self):
        """Prod over one fresh SSH connection, then dev locally; returns (seconds, {host: sections})."""
        results = {}
        start = time.perf_counter()
        for host, (command, script) in self.hosts.items():
            results[host] = subprocess.run(
                command, input=script.encode(), capture_output=True, check=False, timeout=120
            )
        elapsed = time.perf_counter() - start
        # Never print what was read: the lab's env files, compose env files and containers hold (canary) secrets.
        per_host = {}
        for host, proc in results.items():
            if proc.returncode != 0:
                reason = tail(proc.stderr.decode(errors="replace"), 5)
                raise BenchmarkError("the floor script on %s failed (rc %d): %s" % (host, proc.returncode, reason))
            per_host[host] = parse_floor(proc.stdout, self.nonce, self.sections)
        return elapsed, per_host


def measure_floor(sections, runs, label="floor"):
    """Wall time of the floor (1 warm-up, runs measured) and each section's in-script time and bytes."""
    floor = Floor(sections)
    samples, inside = [], []
    for index in range(runs + 1):
        elapsed, per_host = floor.once()
        if index:
            samples.append(elapsed)
            inside.append(per_host)
        progress(label, index, runs, elapsed)
    sections_figures = {
        host: {
            section: {
                "median_s": round(statistics.median(run[host][section]["s"] for run in inside), 4),
                "bytes": inside[-1][host][section]["bytes"],
            }
            for section in sections
        }
        for host in floor.hosts
    }
    return dict(stats(samples), sections=sections_figures)


def collection_import():
    """Make the repository importable as the envparity.audit collection (its collections/ symlink)."""
    collections = str(ROOT / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)


def playbook_areas():
    """The areas compare.yml audits: the engine's area registry, in its order."""
    collection_import()
    from ansible_collections.envparity.audit.plugins.module_utils.areas import AREA_NAMES

    return list(AREA_NAMES)


def area_sections(area):
    return [section for section, owner in SECTIONS.items() if owner == area]


# --- the audit and Ansible's own floor --------------------------------------------------------------


def run_playbook(workdir, playbook, args=(), env=None):
    """One `ansible-playbook` from the repository root with a fresh ControlPath directory in workdir.

    Returns (wall seconds, controller CPU seconds, the finished process). The CPU is the user+sys time of
    the ansible-playbook process tree (its forks, and the ssh clients they wait for): the children's
    rusage around the run. ControlPersist masters detach, so their CPU is not in it.
    """
    control_dir = workdir / "cp"
    control_dir.mkdir(mode=0o700)
    command = [str(BIN / "ansible-playbook"), str(playbook), *args]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            command,
            cwd=ROOT,
            env=dict(ansible_env(control_dir), **(env or {})),
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        stop_ssh_masters(control_dir)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode == 4:
        raise Unreachable(playbook.name, unreachable_reasons(proc.stdout + proc.stderr))
    if proc.returncode != 0:
        raise BenchmarkError(
            "%s failed (rc %d):\n%s" % (playbook.name, proc.returncode, tail(proc.stdout + proc.stderr))
        )
    return elapsed, cpu, proc


class Unreachable(BenchmarkError):
    """A host could not be reached in one run; reasons: Ansible's messages (ssh's errors), at most a few."""

    def __init__(self, playbook, reasons):
        super().__init__(
            "%s: a host was unreachable (%s); with many hosts on the lab's one sshd, look for 'past MaxStartups' "
            "in /var/lib/envparity-lab/ssh/sshd.log (MaxStartups of lab/ssh_area.py)" % (playbook, "; ".join(reasons))
        )
        self.reasons = reasons


def sshd_dropped():
    """How many connections the lab's sshd has dropped past MaxStartups (its log: every user's); None
    when the log cannot be read."""
    try:
        with SSHD_LOG.open("rb") as log:
            return sum(1 for line in log if SSHD_DROPPED in line)
    except OSError:
        return None


def unreachable_reasons(output, limit=3):
    """The distinct messages of Ansible's UNREACHABLE! lines (ssh's errors, no host data)."""
    reasons = []
    for line in output.splitlines():
        if "UNREACHABLE!" not in line:
            continue
        result = line.partition("=>")[2].strip()
        try:
            reason = str(json.loads(result).get("msg", result))
        except (ValueError, AttributeError):
            reason = result
        reason = reason.removeprefix("Task failed: ")[:200]
        if reason and reason not in reasons:
            reasons.append(reason)
    return reasons[:limit] or ["no reason given"]


def retried(run, counter):
    """run() again when a host was unreachable, up to UNREACHABLE_ATTEMPTS times; counts the repeats."""
    attempt = 1
    while True:
        try:
            return run()
        except Unreachable as exc:
            if attempt == UNREACHABLE_ATTEMPTS:
                raise
            attempt += 1
            counter.append(exc.reasons)
            print("  repeated: %s" % exc, file=sys.stderr, flush=True)


def run_audit(workdir, extra_vars=None, tags=None, inventory=None, env=None):
    """One `ansible-playbook compare.yml` in workdir.

    Returns {"s", "cpu_s", "markdown_bytes", "findings"}; a finding is named by (check, key, environments,
    expected): no values.
    """
    variables = {"drift_report_dir": str(workdir / "reports")}
    variables.update(extra_vars or {})
    args = ["-e", json.dumps(variables)]
    if tags:
        args += ["--tags", tags]
    if inventory:
        args += ["-i", str(inventory)]
    elapsed, cpu, _ = run_playbook(workdir, ROOT / "compare.yml", args, env)
    try:
        report = json.loads((workdir / "reports" / "latest.json").read_text(encoding="utf-8"))
        markdown_bytes = (workdir / "reports" / "latest.md").stat().st_size
    except (OSError, ValueError) as exc:
        raise BenchmarkError("the audit wrote no readable reports/latest.json and latest.md: %s" % exc) from None
    findings = sorted(
        (item["check"], item["key"], ",".join(item.get("environments") or []), bool(item.get("expected")))
        for item in report["findings"]
    )
    return {"s": elapsed, "cpu_s": cpu, "markdown_bytes": markdown_bytes, "findings": findings}


def findings_difference(first, second):
    """The findings in one list and not in the other, named by check, key and environments."""
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))

    def names(items):
        return ", ".join("%s %s [%s]" % item[:3] for item in items[:10]) + (" …" if len(items) > 10 else "")

    return "only in the first: %s; only in the second: %s" % (names(only_first) or "-", names(only_second) or "-")


def measure_audit(runs, tags=None, label="audit", inventory=None, env=None):
    """1 warm-up + runs; every run must give the same findings. Returns (figures, the findings).

    figures: the wall time's stats, the median controller CPU, the findings count and the Markdown size.
    """
    samples, cpu, findings, markdown_bytes, repeats = [], [], None, None, []

    def one_run():
        with tempfile.TemporaryDirectory(prefix="envparity-bench-") as tmp:
            return run_audit(Path(tmp), tags=tags, inventory=inventory, env=env)

    for index in range(runs + 1):
        run = retried(one_run, repeats)
        if findings is not None and run["findings"] != findings:
            raise BenchmarkError(
                "%s: the findings changed between runs (is something else changing the lab?): %s"
                % (label, findings_difference(findings, run["findings"]))
            )
        findings, markdown_bytes = run["findings"], run["markdown_bytes"]
        if index:  # the first run is the warm-up
            samples.append(run["s"])
            cpu.append(run["cpu_s"])
        progress(label, index, runs, run["s"])
    figures = dict(
        stats(samples),
        cpu_median_s=round(statistics.median(cpu), 4),
        findings=len(findings),
        markdown_bytes=markdown_bytes,
        repeated_after_unreachable=len(repeats),
    )
    return figures, findings


def measure_ping_floor(runs, inventory=None, env=None, label="ping floor"):
    """Ansible's own floor: one ansible.builtin.ping per host of the inventory (the lab's by default),
    with the same ansible.cfg and a fresh ControlPath directory per run. 1 warm-up + runs."""
    args = ["-i", str(inventory)] if inventory else []
    samples, cpu, repeats = [], [], []
    with tempfile.TemporaryDirectory(prefix="envparity-bench-") as tmp:
        playbook = Path(tmp) / "ping.yml"
        playbook.write_text(PING_PLAYBOOK, encoding="utf-8")
        for index in range(runs + 1):
            elapsed, used, _ = retried(
                lambda: run_playbook(Path(tempfile.mkdtemp(dir=tmp)), playbook, args, env), repeats
            )
            if index:
                samples.append(elapsed)
                cpu.append(used)
            progress(label, index, runs, elapsed)
    return dict(stats(samples), cpu_median_s=round(statistics.median(cpu), 4), repeated_after_unreachable=len(repeats))


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
    collection_import()
    from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
    from ansible_collections.envparity.audit.plugins.plugin_utils.audit import build_audit
    from ansible_collections.envparity.audit.plugins.plugin_utils.junit import build_junit
    from ansible_collections.envparity.audit.plugins.plugin_utils.metrics import exposition, samples
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
        phases = {"build_audit": [], "build_document+build_view": [], "render_markdown": [], "junit+metrics": []}
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
            build_junit(document)
            exposition(samples(document, 0.0, 1.0))
            t4 = time.perf_counter()
            phases["build_audit"].append(t1 - t0)
            phases["build_document+build_view"].append(t2 - t1)
            phases["render_markdown"].append(t3 - t2)
            phases["junit+metrics"].append(t4 - t3)
            totals.append(t4 - t0)
    return (
        totals,
        {name: round(statistics.median(values), 5) for name, values in phases.items()},
        {
            "findings": len(document["findings"]),
            "markdown_bytes": len(markdown.encode("utf-8")),
        },
    )


# --- the docker load -----------------------------------------------------------------------------


def docker_lab():
    """lab/docker_area.py: the lab's Engine API helper (stdlib http over its unix socket) and its images."""
    lab = str(ROOT / "lab")
    if lab not in sys.path:
        sys.path.insert(0, lab)
    sys.dont_write_bytecode = True  # no __pycache__ in lab/, like labctl
    import docker_area

    return docker_area


def engine(method, path, body=None, ok=(200, 201, 204, 304)):
    area = docker_lab()
    try:
        status, answer = area.api(method, path, body)
    except area.LabError as exc:
        raise BenchmarkError(str(exc)) from None
    if status not in ok:
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise BenchmarkError("Docker engine: %s %s failed (%d): %s" % (method, path, status, message))
    return answer


def engine_containers():
    """The engine's containers as {id: (name, image, state)}: what must be the same before and after."""
    return {
        item["Id"]: ((item.get("Names") or ["?"])[0].lstrip("/"), item.get("Image"), item.get("State"))
        for item in engine("GET", "/containers/json?all=1")
    }


def engine_difference(before, after):
    """None when the engine's containers are the same, else a sentence naming what differs."""
    if after == before:
        return None
    gone = sorted(before[key][0] for key in set(before) - set(after))
    new = sorted(after[key][0] for key in set(after) - set(before))
    changed = sorted(after[key][0] for key in set(after) & set(before) if after[key] != before[key])
    return "the engine's containers are not what they were before the load: gone %s, new %s, changed %s" % (
        gone,
        new,
        changed,
    )


def load_containers(running_only=False):
    filters = {"label": [LOAD_LABEL]}
    if running_only:
        filters["status"] = ["running"]
    query = urllib.parse.quote(json.dumps(filters), safe="")
    return engine("GET", "/containers/json?all=1&filters=" + query)


def check_no_load():
    if load_containers():
        raise BenchmarkError(
            "containers of project %s are already in the engine (an interrupted benchmark?): "
            "remove them with `scripts/benchmark.py --remove-load`" % LOAD_PROJECT
        )


def start_load(count):
    """Create and start `count` idle containers of project envparity-bench; wait until all run."""
    area = docker_lab()
    idle = next(image.cmd for image in area.IMAGES if image.ref == LOAD_IMAGE)
    for number in range(1, count + 1):
        name = "%s-%s-%d" % (LOAD_PROJECT, LOAD_SERVICE, number)
        body = {
            "Image": LOAD_IMAGE,
            "Cmd": list(idle),
            "Labels": {
                "com.docker.compose.project": LOAD_PROJECT,
                "com.docker.compose.service": LOAD_SERVICE,
                "com.docker.compose.oneoff": "False",
                "com.docker.compose.container-number": str(number),
            },
            "HostConfig": {
                "NetworkMode": "none",
                "Memory": LOAD_MEMORY,
                "RestartPolicy": {"Name": "no"},
            },
        }
        created = engine("POST", "/containers/create?name=%s" % name, body)
        engine("POST", "/containers/%s/start" % created["Id"])
    deadline = time.monotonic() + LOAD_TIMEOUT
    while len(load_containers(running_only=True)) < count:
        if time.monotonic() > deadline:
            raise BenchmarkError("the %d load containers were not all running after %ds" % (count, LOAD_TIMEOUT))
        time.sleep(0.5)


def remove_load():
    """Stop and remove every container of project envparity-bench (the load, and nothing else)."""
    removed = 0
    for item in load_containers():
        labels = item.get("Labels") or {}
        if labels.get("com.docker.compose.project") != LOAD_PROJECT:  # the filter did its job; belt and braces
            continue
        engine("POST", "/containers/%s/stop?t=5" % item["Id"], ok=(204, 304, 404))
        engine("DELETE", "/containers/%s" % item["Id"], ok=(204, 404))
        removed += 1
    return removed


@contextlib.contextmanager
def no_interrupt():
    """Ctrl-C waits until the block is done (the cleanup of the load must not be cut short)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def measure_docker_load(count, runs, findings_without):
    """The docker-only audit and floor with `count` extra running containers; the load always goes again.

    findings_without: the findings of the docker-only audit without the load, measured just before.
    """
    check_no_load()
    before = engine_containers()
    try:
        print("  load   starting %d containers (project %s)" % (count, LOAD_PROJECT), file=sys.stderr, flush=True)
        start_load(count)
        audit, findings_with = measure_audit(runs, tags="docker", label="audit+load")
        floor = measure_floor(area_sections("docker"), runs, label="floor+load")
    finally:
        with no_interrupt():
            removed = remove_load()
            difference = engine_difference(before, engine_containers())
            print("  load   removed %d containers" % removed, file=sys.stderr, flush=True)
            if difference:  # said here too, in case an error or Ctrl-C is on its way out
                print("  load   %s" % difference, file=sys.stderr, flush=True)
    if difference:
        raise BenchmarkError(difference)
    if findings_with != findings_without:
        raise BenchmarkError(
            "the docker-only audit found %d findings with the load and %d without it (%s)"
            % (len(findings_with), len(findings_without), findings_difference(findings_without, findings_with))
        )
    print("  load   findings of the docker-only audit: %d, as without the load" % len(findings_with), file=sys.stderr)
    return {
        "containers_added": count,
        "containers_before": len(before),
        "audit": audit,
        "floor": floor,
        "findings_with_load": len(findings_with),
        "findings_without_load": len(findings_without),
        "engine_unchanged_after": True,
    }


# --- goals (pure) -------------------------------------------------------------------------------------


def verdict(value, goal):
    """PASS when the measured value is within its goal (at most), else MISS."""
    return "PASS" if value <= goal else "MISS"


def area_raw_seconds(sections, area):
    """An area's own raw collection time: its floor sections timed inside the scripts (no ssh or sh
    start-up), on the slower host, since the audit collects the hosts in parallel. None: no floor."""
    owned = area_sections(area)
    if not owned:
        return None
    return max(sum(per_host[section]["median_s"] for section in owned) for per_host in sections.values())


def area_goals(audits, ping_s, sections, areas):
    """Each area's audit against Ansible's ping floor plus the area's raw reads, and the env-only audit
    against the ping floor alone. Rows of {goal, audit_s, allowed_s, over_s, margin_s, verdict}; an area
    without a raw floor (raw None) is held to the ping floor alone and says so."""
    rows = []

    def row(goal, audit_s, raw_s):
        over = audit_s - ping_s - (raw_s or 0.0)
        margin = GOAL_OVER_FLOORS_S - over
        return {
            "goal": goal,
            "audit_s": round(audit_s, 4),
            "ping_floor_s": round(ping_s, 4),
            "raw_s": None if raw_s is None else round(raw_s, 4),
            "over_s": round(over, 4),
            "margin_s": round(margin, 4),
            "verdict": verdict(over, GOAL_OVER_FLOORS_S),
        }

    rows.append(row("env-only <= ping + 0.15 s", audits["env"]["median_s"], None))
    for area in areas:
        raw = area_raw_seconds(sections, area)
        label = (
            "%s <= ping + raw %s + 0.15 s" % (area, area)
            if raw is not None
            else "%s <= ping + 0.15 s (no raw floor)" % area
        )
        rows.append(row(label, audits[area]["median_s"], raw))
    return rows


def parse_fleet(text):
    """--fleet 1,50 -> [1, 50]: prod host counts, at least 1 each, sorted, without repeats."""
    try:
        sizes = sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("--fleet takes host counts separated by commas, e.g. 1,50") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("--fleet takes host counts of at least 1, e.g. 1,50")
    return sizes


def fleet_goals(fleet):
    """T(largest)/T(smallest), controller CPU per extra host and the Markdown growth, with verdicts.

    fleet: {N: {"audit": {"median_s", "cpu_median_s", "markdown_bytes"}}} with at least two sizes.
    """
    small, large = min(fleet), max(fleet)
    first, last = fleet[small]["audit"], fleet[large]["audit"]
    time_ratio = last["median_s"] / first["median_s"]
    cpu_per_host = (last["cpu_median_s"] - first["cpu_median_s"]) / (large - small)
    markdown_ratio = last["markdown_bytes"] / first["markdown_bytes"]
    ping_first, ping_last = fleet[small].get("ping_floor"), fleet[large].get("ping_floor")
    ping = None
    if ping_first and ping_last:  # Ansible's own floor on the same fleets: what no engine can go below
        ping = {
            "time_ratio": round(ping_last["median_s"] / ping_first["median_s"], 2),
            "cpu_per_extra_host_s": round(
                (ping_last["cpu_median_s"] - ping_first["cpu_median_s"]) / (large - small), 4
            ),
            "audit_over_ping_s": [
                round(first["median_s"] - ping_first["median_s"], 4),
                round(last["median_s"] - ping_last["median_s"], 4),
            ],
        }
    return {
        "sizes": [small, large],
        "ping_floor": ping,
        "time_ratio": round(time_ratio, 2),
        "time_ratio_verdict": verdict(time_ratio, GOAL_FLEET_TIME_RATIO),
        "cpu_per_extra_host_s": round(cpu_per_host, 4),
        "cpu_per_extra_host_verdict": verdict(cpu_per_host, GOAL_FLEET_CPU_PER_HOST_S),
        "markdown_ratio": round(markdown_ratio, 2),
        "markdown_ratio_verdict": verdict(markdown_ratio, GOAL_FLEET_MARKDOWN_RATIO),
    }


# --- output --------------------------------------------------------------------------------------


def progress(what, index, runs, elapsed):
    label = "warm-up" if index == 0 else "%d/%d" % (index, runs)
    print("  %-14s %-8s %7.3f s" % (what, label, elapsed), file=sys.stderr, flush=True)


def versions():
    from ansible.release import __version__ as ansible_core

    return {
        "python": platform.python_version(),
        "ansible_core": ansible_core,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def in_script(floor, sections):
    """Seconds of the given sections inside the floor scripts, prod + dev."""
    return sum(floor["sections"][host][section]["median_s"] for host in floor["sections"] for section in sections)


def table(figures):
    audits, floors, render = figures["audit"], figures["floor"], figures["diff_render"]
    lines = [
        "envparity benchmark: lab (dev local, prod sshd 127.0.0.1:%d); %d runs after 1 warm-up, diff+render %d runs"
        % (PROD_PORT, figures["runs"], figures["render_runs"]),
        "",
        "%-15s %10s %10s %10s %7s %9s %16s"
        % ("area", "audit", "(min)", "floor", "ratio", "findings", "floor in-script"),
    ]
    for area, audit in audits.items():
        row = "%-15s %8.3f s %8.3f s" % (
            "all (%d areas)" % len(figures["areas"]) if area == "all" else area,
            audit["median_s"],
            audit["min_s"],
        )
        floor_key = FLOOR_ALL if area == "all" and FLOOR_ALL not in audits else area
        if floor_key in floors:
            sections = list(SECTIONS) if floor_key == FLOOR_ALL else area_sections(floor_key)
            row += " %8.3f s %6.1fx %9d %14.3f s" % (
                floors[floor_key]["median_s"],
                figures["ratio"][floor_key],
                audit["findings"],
                in_script(floors[FLOOR_ALL], sections),
            )
        else:
            row += " %10s %7s %9d %16s" % ("-", "-", audit["findings"], "-")
        lines.append(row)
    ping = figures["ping_floor"]
    lines.append(
        "%-15s %8.3f s %8.3f s   (Ansible's floor: ansible.builtin.ping on every lab host, same ansible.cfg)"
        % ("ping floor", ping["median_s"], ping["min_s"])
    )
    lines.append("")
    lines.append(
        "goals (audit medians; raw = the area's floor sections timed inside the script, slower host; "
        "margin = 0.15 s - over):"
    )
    lines.append("%-44s %9s %9s %9s %9s %9s  %s" % ("goal", "audit", "ping", "raw", "over", "margin", ""))
    for goal in figures["goals"]["areas"]:
        lines.append(
            "%-44s %7.3f s %7.3f s %9s %7.3f s %7.3f s  %s"
            % (
                goal["goal"],
                goal["audit_s"],
                goal["ping_floor_s"],
                "-" if goal["raw_s"] is None else "%7.3f s" % goal["raw_s"],
                goal["over_s"],
                goal["margin_s"],
                goal["verdict"],
            )
        )
    lines.append("")
    lines.append("floor sections (the %s script, timed inside it; median):" % FLOOR_ALL)
    lines.append("%-9s %-7s %10s %10s %12s %12s" % ("section", "area", "prod", "dev", "prod bytes", "dev bytes"))
    sections = floors[FLOOR_ALL]["sections"]
    for section, area in SECTIONS.items():
        lines.append(
            "%-9s %-7s %8.1f ms %7.1f ms %12d %12d"
            % (
                section,
                area,
                sections["prod"][section]["median_s"] * 1000,
                sections["dev"][section]["median_s"] * 1000,
                sections["prod"][section]["bytes"],
                sections["dev"][section]["bytes"],
            )
        )
    load = figures.get("docker_load")
    if load:
        base_audit, base_floor = audits["docker"], floors["docker"]
        lines.append("")
        lines.append(
            "docker with %d more running containers (%d in the engine before):"
            % (load["containers_added"], load["containers_before"])
        )
        lines.append("%-26s %10s %10s" % ("", "without", "with load"))
        lines.append(
            "%-26s %8.3f s %8.3f s" % ("audit --tags docker", base_audit["median_s"], load["audit"]["median_s"])
        )
        lines.append(
            "%-26s %8.3f s %8.3f s" % ("floor engine+compose", base_floor["median_s"], load["floor"]["median_s"])
        )
        for section in area_sections("docker"):
            for host in ("prod", "dev"):
                lines.append(
                    "%-26s %7.1f ms %7.1f ms"
                    % (
                        "  %s %s (in-script)" % (section, host),
                        floors[FLOOR_ALL]["sections"][host][section]["median_s"] * 1000,
                        load["floor"]["sections"][host][section]["median_s"] * 1000,
                    )
                )
        lines.append(
            "%-26s %10d %10d   (same: asserted)"
            % ("findings", load["findings_without_load"], load["findings_with_load"])
        )
        lines.append("engine containers after the load was removed: the same as before (asserted)")
    lines.append("")
    lines.append(
        "%-12s %6s %6s %7s %8s %9s %14s" % ("host", "tasks", "ok", "failed", "skipped", "arg spec", "on controller")
    )
    for host, counts in figures["tasks_per_host"].items():
        lines.append(
            "%-12s %6d %6d %7d %8d %9d %14d   goal <= 3: %s"
            % (
                host,
                counts["total"],
                counts["ok"],
                counts["failed"],
                counts["skipped"],
                counts["arg_spec"],
                counts["on_controller"],
                verdict(counts["total"], GOAL_TASKS_PER_HOST),
            )
        )
    lines.append("")
    lines.append(
        "diff+render %.1f ms (median; min %.1f, max %.1f): "
        % (render["median_s"] * 1000, render["min_s"] * 1000, render["max_s"] * 1000)
        + ", ".join("%s %.1f ms" % (name, seconds * 1000) for name, seconds in render["phases_median_s"].items())
    )
    lines.append(
        "diff+render goal <= %.0f ms: %s (margin %.1f ms)"
        % (
            GOAL_DIFF_RENDER_S * 1000,
            verdict(render["median_s"], GOAL_DIFF_RENDER_S),
            (GOAL_DIFF_RENDER_S - render["median_s"]) * 1000,
        )
    )
    lines.append("findings %d, Markdown %d bytes" % (render["findings"], render["markdown_bytes"]))
    return "\n".join(lines)


def fleet_table(figures):
    fleet, goals = figures["fleet"], figures["fleet_goals"]
    lines = [
        "envparity fleet benchmark: N prod hosts on the lab's sshd (127.0.0.1:%d, one SSH master each) + dev; "
        "--tags %s; forks N+1; %d runs after 1 warm-up" % (PROD_PORT, ",".join(FLEET_AREAS), figures["runs"]),
        "",
        "%6s %10s %10s %12s %10s %12s %9s %10s %13s"
        % ("N", "T(N)", "(min)", "CPU(N)", "ping(N)", "ping CPU", "findings", "Markdown", "sshd dropped"),
    ]
    for size, values in fleet.items():
        audit, ping = values["audit"], values["ping_floor"]
        lines.append(
            "%6d %8.3f s %8.3f s %10.3f s %8.3f s %10.3f s %9d %8d B %13s"
            % (
                size,
                audit["median_s"],
                audit["min_s"],
                audit["cpu_median_s"],
                ping["median_s"],
                ping["cpu_median_s"],
                audit["findings"],
                audit["markdown_bytes"],
                "?" if values["sshd_dropped"] is None else values["sshd_dropped"],
            )
        )
    lines.append(
        "sshd dropped: connections the lab's sshd dropped past its MaxStartups during N's runs (its log, every "
        "user's); Ansible reconnected them (ANSIBLE_SSH_RETRIES=%d)" % FLEET_SSH_RETRIES
    )
    repeats = sum(
        values[kind]["repeated_after_unreachable"] for values in fleet.values() for kind in ("audit", "ping_floor")
    )
    if repeats:
        lines.append(
            "%d run(s) repeated: a host was unreachable (the lab's sshd refused connections past its MaxStartups)"
            % repeats
        )
    if goals:
        small, large = goals["sizes"]
        lines.append("")
        lines.append(
            "T(%d)/T(%d) = %.2f   goal <= %.1f: %s"
            % (large, small, goals["time_ratio"], GOAL_FLEET_TIME_RATIO, goals["time_ratio_verdict"])
        )
        lines.append(
            "controller CPU per extra host = %.1f ms   goal <= %.0f ms: %s   "
            "(user+sys of the ansible-playbook process tree, (CPU(%d) - CPU(%d)) / %d)"
            % (
                goals["cpu_per_extra_host_s"] * 1000,
                GOAL_FLEET_CPU_PER_HOST_S * 1000,
                goals["cpu_per_extra_host_verdict"],
                large,
                small,
                large - small,
            )
        )
        ping = goals["ping_floor"]
        if ping:
            lines.append(
                "Ansible's ping floor on the same fleets: ping(%d)/ping(%d) = %.2f, CPU per extra host %.1f ms; "
                "audit - ping: %.3f s at N=%d, %.3f s at N=%d"
                % (
                    large,
                    small,
                    ping["time_ratio"],
                    ping["cpu_per_extra_host_s"] * 1000,
                    ping["audit_over_ping_s"][0],
                    small,
                    ping["audit_over_ping_s"][1],
                    large,
                )
            )
        lines.append(
            "Markdown(%d)/Markdown(%d) = %.2f   goal <= %.1f: %s"
            % (large, small, goals["markdown_ratio"], GOAL_FLEET_MARKDOWN_RATIO, goals["markdown_ratio_verdict"])
        )
    return "\n".join(lines)


def measure_lab(args):
    """The default benchmark: floors, tasks per host, diff+render, each area's audit, the docker load."""
    areas = playbook_areas()
    if not set(AREAS) <= set(areas):
        raise BenchmarkError("compare.yml has the areas %s; the floor needs %s" % (areas, list(AREAS)))
    if args.load_containers:
        check_no_load()  # now rather than after the audits
    floors = {FLOOR_ALL: measure_floor(list(SECTIONS), args.runs)}
    for area in AREAS:
        floors[area] = measure_floor(area_sections(area), args.runs, label="floor " + area)
    ping = measure_ping_floor(args.runs)
    tasks_per_host = count_tasks()
    render_samples, phases, render_info = measure_render(args.render_runs)
    audits, findings = {"all": measure_audit(args.runs)[0]}, {}
    if areas != list(AREAS):  # the floor's areas alone, for a like-for-like ratio
        audits[FLOOR_ALL] = measure_audit(args.runs, tags=",".join(AREAS), label="audit " + FLOOR_ALL)[0]
    for area in sorted(areas, key=lambda name: name == "docker"):  # docker last
        audits[area], findings[area] = measure_audit(args.runs, tags=area, label="audit " + area)
    # Right after the docker-only audit, whose findings the load must leave as they are.
    audits = {key: audits[key] for key in ("all", FLOOR_ALL, *areas) if key in audits}  # in reading order
    load = None
    if args.load_containers:
        load = measure_docker_load(args.load_containers, args.runs, findings["docker"])
    render = dict(stats(render_samples), phases_median_s=phases, **render_info)
    return {
        "schema_version": 3,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": versions(),
        "runs": args.runs,
        "render_runs": args.render_runs,
        "areas": areas,
        "floor_areas": list(AREAS),
        "audit": {
            area: dict(
                values,
                command="ansible-playbook compare.yml -e drift_report_dir=<tmp>"
                + ("" if area == "all" else " --tags %s" % (",".join(AREAS) if area == FLOOR_ALL else area)),
            )
            for area, values in audits.items()
        },
        "audit_note": "fresh SSH ControlPath directory per run: the first connection is a new one",
        "ping_floor": ping,
        "floor": {
            area: dict(values, script_sections=list(values["sections"]["prod"])) for area, values in floors.items()
        },
        "floor_note": "prod: %s with the script on stdin; then dev: sh -s locally; sequential. Section times are "
        "measured inside the scripts (date +%%s%%N) and exclude ssh and sh start-up." % " ".join(ssh_command()),
        "ratio": {
            area: round(audits.get(area, audits["all"])["median_s"] / floors[area]["median_s"], 1) for area in floors
        },
        "goals": {
            "areas": area_goals(audits, ping["median_s"], floors[FLOOR_ALL]["sections"], areas),
            "tasks_per_host": {
                host: verdict(counts["total"], GOAL_TASKS_PER_HOST) for host, counts in tasks_per_host.items()
            },
            "diff_render": verdict(render["median_s"], GOAL_DIFF_RENDER_S),
        },
        "tasks_per_host": tasks_per_host,
        "diff_render": render,
        "docker_load": load,
    }


def measure_fleet(args):
    """T(N), controller CPU and report size of an env+git audit of N prod hosts on the lab's sshd, and
    Ansible's ping floor on the same inventory, for each N of --fleet."""
    fleet = {}
    with tempfile.TemporaryDirectory(prefix="envparity-bench-fleet-") as tmp:
        for size in args.fleet:
            inventory = write_fleet_inventory(Path(tmp) / ("fleet-%d" % size), size, FLEET_ROLES)
            forks = size + 1  # every host at once, dev included
            env = {"ANSIBLE_FORKS": str(forks), "ANSIBLE_SSH_RETRIES": str(FLEET_SSH_RETRIES)}
            dropped_before = sshd_dropped()
            ping = measure_ping_floor(args.runs, inventory, env, label="ping N=%d" % size)
            audit, _ = measure_audit(
                args.runs, tags=",".join(FLEET_AREAS), label="audit N=%d" % size, inventory=inventory, env=env
            )
            dropped_after = sshd_dropped()
            fleet[size] = {
                "prod_hosts": size,
                "forks": forks,
                "ping_floor": ping,
                "audit": audit,
                "sshd_dropped": None if None in (dropped_before, dropped_after) else dropped_after - dropped_before,
            }
    return {
        "schema_version": 3,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": versions(),
        "runs": args.runs,
        "fleet_areas": list(FLEET_AREAS),
        "fleet": fleet,
        "fleet_note": "N prod hosts prod-001 … on 127.0.0.1:%d as deploy (the lab's key and known_hosts), each "
        "with its own ControlPath; dev as in the lab; group_vars of the lab less all but the audit, env and git "
        "variables; CPU = user+sys of the ansible-playbook process tree (rusage of children); ANSIBLE_SSH_RETRIES=%d "
        "reconnects what the lab's one sshd drops past its MaxStartups (sshd_dropped: from its log, every user's, "
        "during the N's runs)" % (PROD_PORT, FLEET_SSH_RETRIES),
        "fleet_goals": fleet_goals(fleet) if len(fleet) > 1 else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each audit and floor (default 5)")
    parser.add_argument("--render-runs", type=int, default=20, help="measured runs of diff+render (default 20)")
    parser.add_argument(
        "--load-containers", type=int, default=50, help="extra running containers for the docker load (0: skip)"
    )
    parser.add_argument(
        "--fleet",
        type=parse_fleet,
        help="only the fleet benchmark: prod host counts on the lab's sshd, e.g. 1,50 (env and git areas)",
    )
    parser.add_argument(
        "--remove-load", action="store_true", help="only stop and remove the load containers an interrupted run left"
    )
    parser.add_argument(
        "--deps",
        action="store_true",
        help="only the deps area: its collection with 0, 1 and 15 containers of 300 distributions, a dpkg "
        "status and a Node project each (lab/pyapp:1.0), where the time goes, the floor of one exec "
        "(scripts/benchmark_deps.py)",
    )
    parser.add_argument(
        "--slices",
        type=int,
        help="only the sliced audit: the fleet of --hosts in one run, then in this many collect jobs at once and "
        "a report job (env area; scripts/benchmark_slices.py)",
    )
    parser.add_argument("--hosts", type=int, default=200, help="prod hosts of --slices' fleet (default 200)")
    parser.add_argument("--forks", type=int, default=50, help="forks of each job of --slices (default 50)")
    parser.add_argument(
        "--output",
        help="JSON file of the figures (default reports/benchmark.json, reports/benchmark-fleet.json, "
        "reports/benchmark-slices.json)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.render_runs < 1 or args.load_containers < 0:
        parser.error("--runs and --render-runs must be at least 1, --load-containers at least 0")
    if args.slices is not None and not (2 <= args.slices <= args.hosts + 1 and args.forks >= 1):
        parser.error("--slices needs 2 to --hosts + 1 slices and --forks of at least 1")
    if not shutil.which("ssh"):
        parser.error("ssh is not installed")
    os.environ["PATH"] = str(BIN) + os.pathsep + os.environ.get("PATH", "")  # ansible-runner finds ansible-playbook

    if args.deps:
        import benchmark_deps

        return benchmark_deps.main(
            ["--runs", str(args.runs), "--audit-runs", "0", "--containers", "0,1,15", "--image", "lab/pyapp:1.0"]
        )
    try:
        if args.remove_load:
            with no_interrupt():
                print("removed %d containers of project %s" % (remove_load(), LOAD_PROJECT))
            return 0
        check_lab()
        if args.slices:
            import benchmark_slices

            figures = benchmark_slices.measure(args)
            output = Path(args.output or ROOT / "reports" / "benchmark-slices.json")
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
            print(benchmark_slices.table(figures))
            print("\nfigures written to %s" % output)
            return 0
        figures = measure_fleet(args) if args.fleet else measure_lab(args)
    except (BenchmarkError, subprocess.TimeoutExpired) as exc:
        print("benchmark: %s" % exc, file=sys.stderr)
        return 1

    output = Path(args.output or ROOT / "reports" / ("benchmark-fleet.json" if args.fleet else "benchmark.json"))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(fleet_table(figures) if args.fleet else table(figures))
    print("\nfigures written to %s" % output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
