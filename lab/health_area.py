"""The health area of the lab: containers with real load and real logs, log files, cron entries, a
debug server and a nearly full filesystem, planted so that dev and prod differ in known ways.

Additive: nothing of the other areas' stacks changes. The containers form a compose project of
their own per environment (personal_assistant_ops in dev, ai_assistant_ops in prod, network
"none"), on the docker area's engine, from an image of the lab's busybox (lab/health:1.0, given to
the docker area through its docker_images() hook). They carry their own spec label:
- api logs "INFO request ok" every 5 s and an upstream-timeout error every 20 s in both
  environments (one template, seen in both), and in prod a payment error every 10 s (360 an hour,
  a template seen in prod only);
- worker holds 45 MiB of a 48 MiB limit in prod (a tmpfs file: the memory stays charged);
- batch was OOM-killed in prod (it writes 64 MiB under a 16 MiB limit), exits 0 in dev;
- flaky exits 1 in prod with `on-failure:2`, so the engine restarted it twice (batch and flaky:
  their last runs end otherwise in prod than in dev, exit codes compared);
- api's errors per hour are three times dev's in prod (the payment error on top);
- an orphan in prod: a leftover shell of a compose project nobody declares (ai_assistant_hotfix).
  The lab runs both environments on one engine: each environment's inventory lists the other's
  projects, and its own docker-area projects, in drift_health_known_projects.
The log files (dev/logs/app.log, /home/deploy/logs/app.log) share one error template; prod's has
three more whose lines carry canary secrets (a password, a bearer token, a URL password), which
must never leave the host; dev's has one prod's has not. Cron: a cleanup entry only in prod's
cron directory. Prod's debug server (python3 -m http.server as deploy, 127.0.0.1:47010) listens
in the port range prod's inventory watches; prod's uploads directory is a 4 MiB tmpfs 92% full.

Machine-dependent figures (load, swap, the clock's synchronisation) are not planted: the lab's
inventory sets thresholds that keep them quiet (inventory/lab/group_vars), so that recall and
precision hold on any machine. PLANTED lists every finding, no more.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import docker_area
from labcore import (
    DEV,
    PROD,
    STATE_DIR,
    Ctx,
    LabError,
    canary_maker,
    cmdline,
    ensure_dir,
    ids,
    pid_alive,
    read_pidfile,
    run,
    terminate,
    write_file,
)

# The collection's host-side code, to name the planted templates by the ids the audit gives them
# (standard library only, like the lab).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collections"))
from ansible_collections.envparity.audit.plugins.module_utils.health_logs import (  # noqa: E402
    template_id,
    template_of,
)

NAME = "health"
CANARY_PREFIX = "health."
IMAGE = "lab/health:1.0"
APPLETS = ("sh", "sleep", "dd", "echo", "true")
SPEC_LABEL = "envparity-lab.health-spec"
STACK = "ops"  # drift_health_stacks name in both environments
PROJECTS = {DEV.name: "personal_assistant_ops", PROD.name: "ai_assistant_ops"}
ORPHAN_PROJECT = "ai_assistant_hotfix"
# Errors per hour are compared from a minute of logs (plugin_utils/health_diff.py MIN_RATE_SECONDS).
RATE_SECONDS = 60

HEALTH_DIR = STATE_DIR / "health"
LOG_FILES = {DEV.name: STATE_DIR / "dev" / "logs" / "app.log", PROD.name: Path("/home/deploy/logs/app.log")}
CRON_DIRS = {DEV.name: STATE_DIR / "dev" / "cron.d", PROD.name: Path("/home/deploy/cron.d")}
UPLOADS = {DEV.name: STATE_DIR / "dev" / "uploads", PROD.name: HEALTH_DIR / "prod-uploads"}
UPLOADS_TMPFS_SIZE = 4 * 1024 * 1024
UPLOADS_FILL = int(UPLOADS_TMPFS_SIZE * 0.92)
DEBUG_PORT = 47010
DEBUG_DIR = HEALTH_DIR / "debug-www"
DEBUG_PIDFILE = docker_area.RUN_DIR / "health-debug.pid"
SYSTEM_PYTHON = "/usr/bin/python3"

# ---------------------------------------------------------------- logs and cron

SHARED_ERROR = "2026-12-07T03:00:00Z ERROR db connection reset by peer (pool 3/10, conn 7)"
DEV_ONLY_ERROR = "2026-12-07T03:05:00Z ERROR cache stampede on key user:42 (118 waiters)"
API_SHARED = "ERROR upstream timeout after 30s calling 10.0.0.7:8443 (request $i)"
API_PROD_ONLY = "ERROR payment $i declined for alice@example.com: card_declined"


def _prod_only_errors(c: dict[str, str]) -> list[str]:
    return [
        "2026-12-07T03:10:00Z ERROR login failed for user bob password=%s" % c["health.prod.log_password"],
        "2026-12-07T03:11:00Z ERROR upstream call failed: Authorization: Bearer %s" % c["health.prod.log_token"],
        "2026-12-07T03:12:00Z ERROR webhook https://hooks:%s@hooks.example.com/notify failed (502)"
        % c["health.prod.log_url_password"],
    ]


def render_log(env_name: str, c: dict[str, str]) -> str:
    lines = []
    for minute in range(30):
        lines.append("2026-12-07T02:%02d:00Z INFO request served in %d ms" % (minute, 20 + minute))
        if minute % 10 == 0:
            lines.append("2026-12-07T02:%02d:30Z WARN slow query took %d ms" % (minute, 900 + minute))
    lines += [SHARED_ERROR, SHARED_ERROR.replace("conn 7", "conn 9")]
    lines += _prod_only_errors(c) if env_name == PROD.name else [DEV_ONLY_ERROR]
    return "\n".join(lines) + "\n"


CRON_SHARED = "0 3 * * * root /usr/local/bin/backup --quiet\n"
CRON_PROD_ONLY = "*/5 * * * * deploy /home/deploy/ai_assistant/bin/cleanup --older-than 7d\n"


def render_cron(env_name: str) -> str:
    header = "# the application's scheduled jobs\nSHELL=/bin/sh\n"
    return header + CRON_SHARED + (CRON_PROD_ONLY if env_name == PROD.name else "")


# ---------------------------------------------------------------- containers

IDLE = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"
# How the command of every long-running planted service ends (api's loop, worker's idle loop).
IDLE_LOOP_END = "& wait; done"


def _api_loop(errors: list[str]) -> str:
    """Log INFO every 5 s; each error every `period` seconds (a counter makes the numbers vary)."""
    steps = []
    for text, period in errors:
        steps.append('[ $((i %% %d)) -eq 0 ] && echo "%s"' % (period // 5, text))
    return "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo \"INFO request ok $i\"; %s; sleep 5 & wait; done" % (
        "; ".join(steps) or ":"
    )


def _containers() -> list[dict]:
    """(env name, service, command, memory limit, restart policy, runs) of the planted containers."""
    shared = [(API_SHARED, 20)]
    return [
        {"env": DEV.name, "service": "api", "cmd": _api_loop(shared)},
        {"env": DEV.name, "service": "worker", "cmd": IDLE},
        {"env": DEV.name, "service": "batch", "cmd": "true"},
        {"env": DEV.name, "service": "flaky", "cmd": "exit 0", "restart": ("on-failure", 2)},
        {"env": PROD.name, "service": "api", "cmd": _api_loop([*shared, (API_PROD_ONLY, 10)])},
        {
            "env": PROD.name,
            "service": "worker",
            "cmd": "trap 'exit 0' TERM; dd if=/dev/zero of=/dev/shm/held bs=64k count=720 2>/dev/null; " + IDLE,
            "memory": 48 * 1024 * 1024,
        },
        {
            "env": PROD.name,
            "service": "batch",
            "cmd": "dd if=/dev/zero of=/dev/shm/fill bs=1M count=64",
            "memory": 16 * 1024 * 1024,
        },
        {"env": PROD.name, "service": "flaky", "cmd": "exit 1", "restart": ("on-failure", 2)},
        # someone's `docker compose -p ai_assistant_hotfix run shell`, left running
        {"env": PROD.name, "service": "shell", "cmd": IDLE, "project": ORPHAN_PROJECT},
    ]


def _project(spec: dict) -> str:
    return spec.get("project") or PROJECTS[spec["env"]]


def container_name(spec: dict) -> str:
    return "%s-%s-1" % (_project(spec), spec["service"])


def create_body(spec: dict) -> dict:
    project = _project(spec)
    restart, retries = spec.get("restart", ("no", 0))
    body = {
        "Image": IMAGE,
        "Cmd": ["sh", "-c", spec["cmd"]],
        "Labels": {
            "com.docker.compose.project": project,
            "com.docker.compose.service": spec["service"],
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.container-number": "1",
        },
        "HostConfig": {
            "NetworkMode": "none",
            "RestartPolicy": {"Name": restart, "MaximumRetryCount": retries},
            "Memory": spec.get("memory", 0),
        },
    }
    body["Labels"][SPEC_LABEL] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return body


def docker_images() -> list[tuple]:
    """The image of the planted containers (the docker area imports it when missing)."""
    image = docker_area.Image(IMAGE, ["sh"], {"VERSION": "health 1.0\n"}, APPLETS)
    return [(IMAGE, ['CMD ["sh"]'], lambda: docker_area._rootfs_tar(image))]


def _ensure_container(ctx: Ctx, spec: dict) -> None:
    name = container_name(spec)
    body = create_body(spec)
    current = docker_area._get("/containers/%s/json" % name)
    if current and ((current.get("Config") or {}).get("Labels") or {}).get(SPEC_LABEL) == body["Labels"][SPEC_LABEL]:
        # As planted. A long-running service is started again after the engine was (labctl down and
        # up); batch and flaky keep the state they ended in (OOM-killed, restarted twice).
        if spec["cmd"].endswith(IDLE_LOOP_END) and not (current.get("State") or {}).get("Running"):
            docker_area._call("POST", "/containers/%s/start" % name)
            ctx.changed("started container %s" % name)
        return
    if current:
        docker_area._call("DELETE", "/containers/%s?force=1" % name)
    docker_area._call("POST", "/containers/create?name=%s" % urllib.parse.quote(name), body)
    docker_area._call("POST", "/containers/%s/start" % name)
    ctx.changed("%s container %s" % ("recreated" if current else "created", name))


def _up_for(name: str) -> float:
    """Seconds the container has been running (0 when it is not)."""
    state = (docker_area._get("/containers/%s/json" % name) or {}).get("State") or {}
    started = state.get("StartedAt") or ""
    if not state.get("Running") or not started[:19]:
        return 0.0
    return time.time() - calendar.timegm(time.strptime(started[:19], "%Y-%m-%dT%H:%M:%S"))


def _wait_for_planted_states() -> None:
    """batch's OOM kill and flaky's two restarts take a few seconds, and the api's errors per hour
    need a minute of logs: an audit right after `up` must see them."""
    deadline = time.monotonic() + 60 + RATE_SECONDS
    apis = ["%s-api-1" % PROJECTS[env.name] for env in (DEV, PROD)]
    while time.monotonic() < deadline:
        batch = docker_area._get("/containers/%s-batch-1/json" % PROJECTS[PROD.name]) or {}
        flaky = docker_area._get("/containers/%s-flaky-1/json" % PROJECTS[PROD.name]) or {}
        if (
            (batch.get("State") or {}).get("OOMKilled")
            and flaky.get("RestartCount") == 2
            and not (flaky.get("State") or {}).get("Running")
            and all(_up_for(name) >= RATE_SECONDS + 5 for name in apis)
        ):
            return
        time.sleep(0.5)
    raise LabError(
        "prod's batch was not OOM-killed, flaky not restarted twice, or the api not up for %d s, within %d s"
        % (RATE_SECONDS + 5, 60 + RATE_SECONDS)
    )


# ---------------------------------------------------------------- the debug server and the tmpfs


def _debug_pid() -> int | None:
    pid = read_pidfile(DEBUG_PIDFILE)
    if pid and pid_alive(pid) and str(DEBUG_PORT) in cmdline(pid):
        return pid
    return None


def _start_debug_server(ctx: Ctx) -> None:
    if _debug_pid():
        return
    proc = subprocess.Popen(
        ["runuser", "-u", PROD.owner, "--", SYSTEM_PYTHON, "-m", "http.server", "--bind", "127.0.0.1"]
        + ["--directory", str(DEBUG_DIR), str(DEBUG_PORT)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    DEBUG_PIDFILE.write_text("%d\n" % proc.pid)
    ctx.changed("started prod's debug server on 127.0.0.1:%d" % DEBUG_PORT)


def _mounted(path: Path) -> bool:
    mounts = Path("/proc/mounts").read_text().split("\n")
    return any(len(line.split()) > 1 and line.split()[1] == str(path) for line in mounts)


def _ensure_uploads_tmpfs(ctx: Ctx) -> None:
    path = UPLOADS[PROD.name]
    ensure_dir(ctx, path, 0o755, PROD.owner)
    if not _mounted(path):
        uid, gid = ids(PROD.owner)
        options = "size=%d,mode=0755,uid=%d,gid=%d" % (UPLOADS_TMPFS_SIZE, uid, gid)
        run(["mount", "-t", "tmpfs", "-o", options, "envparity-lab-uploads", str(path)])
        ctx.changed("mounted a %d-byte tmpfs on %s" % (UPLOADS_TMPFS_SIZE, path))
    write_file(ctx, path / "big-upload.bin", b"\0" * UPLOADS_FILL, 0o644, PROD.owner)


# ---------------------------------------------------------------- what is planted


def _finding(subject: str, key: str, kind: str, check: str) -> dict:
    return {"area": "health", "subject": subject, "key": key, "kind": kind, "check": check, "expected": False}


def _tid(line: str) -> str:
    return template_id(template_of(line))


def planted() -> list[dict]:
    fake = {name: "CANARY0placeholder" for name in _canary_names()}  # ids do not depend on the values
    stack = "stack:" + STACK
    found = [
        _finding("host", "cron." + template_line(CRON_PROD_ONLY), "extra", "health.cron_only_in"),
        _finding("host", "ports.%d/tcp" % DEBUG_PORT, "policy", "health.port_outside_compose"),
        _finding("host", "filesystems.uploads.used", "policy", "health.disk_full"),
        _finding(stack, "services.worker.memory", "policy", "health.memory_near_limit"),
        _finding(stack, "services.batch.oom_killed", "policy", "health.oom_killed"),
        _finding(stack, "services.flaky.restarts", "policy", "health.restarts"),
        _finding(stack, "services.batch.exit_code", "changed", "health.exit_code_changed"),
        _finding(stack, "services.flaky.exit_code", "changed", "health.exit_code_changed"),
        _finding(stack, "services.api.error_rate", "policy", "health.error_rate_higher"),
        _finding("host", "containers.%s-shell-1" % ORPHAN_PROJECT, "policy", "health.orphan"),
        _finding(
            stack, "services.api.errors." + _tid(API_PROD_ONLY.replace("$i", "1")), "extra", "health.error_template_new"
        ),
        _finding("log:app", "errors." + _tid(DEV_ONLY_ERROR), "missing", "health.error_template_gone"),
    ]
    found += [
        _finding("log:app", "errors." + _tid(line), "extra", "health.error_template_new")
        for line in _prod_only_errors(fake)
    ]
    return found


def template_line(line: str) -> str:
    """A cron line as the audit keys it (blanks folded; nothing to redact in the lab's)."""
    return " ".join(line.split())


def _canary_names() -> tuple[str, ...]:
    return ("health.prod.log_password", "health.prod.log_token", "health.prod.log_url_password")


def _canaries(ctx: Ctx) -> dict[str, str]:
    # A digit after the marker: a canary is never a word of letters only.
    make = canary_maker(marker="CANARY0")
    return {name: ctx.canary(name, make) for name in _canary_names()}


# ---------------------------------------------------------------- area interface


def build(ctx: Ctx) -> None:
    c = _canaries(ctx)
    ctx.save_canaries(CANARY_PREFIX)  # recorded before any file holds them
    ensure_dir(ctx, HEALTH_DIR, 0o755)
    ensure_dir(ctx, DEBUG_DIR, 0o755)
    write_file(ctx, DEBUG_DIR / "index.html", "debug\n", 0o644)
    for env in (DEV, PROD):
        for directory in (LOG_FILES[env.name].parent, CRON_DIRS[env.name]):
            ensure_dir(ctx, directory, 0o755, env.owner)
        write_file(ctx, LOG_FILES[env.name], render_log(env.name, c), 0o640, env.owner)
        write_file(ctx, CRON_DIRS[env.name] / "app", render_cron(env.name), 0o644, env.owner)
    ensure_dir(ctx, UPLOADS[DEV.name], 0o755)


def start(ctx: Ctx) -> None:
    _ensure_uploads_tmpfs(ctx)
    _start_debug_server(ctx)
    for spec in _containers():
        _ensure_container(ctx, spec)
    _wait_for_planted_states()


def stop(ctx: Ctx) -> None:
    pid = _debug_pid()
    if pid:
        terminate(pid)
        ctx.changed("stopped prod's debug server")
    DEBUG_PIDFILE.unlink(missing_ok=True)
    if _mounted(UPLOADS[PROD.name]):
        run(["umount", str(UPLOADS[PROD.name])])
        ctx.changed("unmounted %s" % UPLOADS[PROD.name])
    # The containers stop with the docker area's engine.


def status() -> list[tuple[str, bool, str]]:
    pid = _debug_pid()
    checks = [
        ("health debug", bool(pid), "pid %d, 127.0.0.1:%d" % (pid, DEBUG_PORT) if pid else "not running"),
        ("health uploads", _mounted(UPLOADS[PROD.name]), str(UPLOADS[PROD.name])),
    ]
    with contextlib.suppress(LabError):
        states = []
        for spec in _containers():
            info = docker_area._get("/containers/%s/json" % container_name(spec)) or {}
            states.append("%s %s" % (container_name(spec), (info.get("State") or {}).get("Status", "missing")))
        checks.append(("health stacks", all(not s.endswith("missing") for s in states), "; ".join(states)))
    return checks
