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

The audit reads the compose files in the checkouts and the containers from the engine. The lab
starts the containers itself (there is no compose tool to rely on), with the settings the files
declare and the labels compose would set, except for the drift planted on purpose: PLANTED
lists every finding it implies (dev is the baseline; prod is production), no more.

The compose files and their env files are new, untracked files of the checkouts. The seed's
docker/docker-compose.{dev,prod}.yml are committed placeholders that project_area rewrites on
every `up`, so this area does not use those names (writing them too would never converge).

Idempotency: an image is imported only when its tag is missing; a container carries a hash of
its settings (SPEC_LABEL, secret values left out) and is recreated only when that hash, or a
secret in its environment, differs; otherwise it is at most started. `replant` gives the
API_KEY canaries fresh values in the env files and, when the engine runs, in the containers
that carry them (recreated), so that the runtime never holds a value canaries.json forgot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import hashlib
import http.client
import io
import json
import os
import socket
import subprocess
import tarfile
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

SPEC_LABEL = "envparity-lab.spec-hash"
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
    # prod's containers against prod's declaration (dev's run as declared).
    _finding("services.web.image", "policy", "docker.image_mismatch"),  # declared 1.0, runs 0.9
    _finding("services.web.health", "policy", "docker.unhealthy"),  # 0.9 has no /health
    _finding("services.worker.privileged", "policy", "docker.runtime_differs"),  # declared privileged, runs without
    # dev's containers against dev's declaration.
    _finding("services.worker.config_hash", "policy", "docker.stale"),  # compose file edited since
    _finding("services.web.environment.TZ", "policy", "docker.runtime_differs"),  # started with another TZ
    _finding("services.scheduler", "policy", "docker.not_running"),  # created, never started
    _finding("containers.ai_assistant-legacy-cron-1", "policy", "docker.orphan"),
    # prod's PostgreSQL runs in the stack, dev's natively (postgres_area): a rule in drift_rules.yml.
    _finding("services.db", "extra", "docker.service_extra", expected=True),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


# ---------------------------------------------------------------- images

# Every container's main process exits on SIGTERM (the traps): as PID 1 it would otherwise ignore
# it, and stopping dockerd would wait out each container's stop timeout.
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


WEB_HEALTH_TEST = ("CMD", "wget", "-q", "-O-", "http://127.0.0.1/health")


@dataclasses.dataclass(frozen=True)
class Health:
    interval: str
    test: tuple = WEB_HEALTH_TEST
    timeout: str = "5s"
    retries: int = 2  # prod's web turns unhealthy after 2 x 30s: `up` waits for it


@dataclasses.dataclass(frozen=True)
class Stack:
    env: Env
    project: str
    files: tuple  # relative to the project dir, merged in this order
    env_file: str
    bridge: str  # the network's Linux bridge name, fixed so that `down --purge` can delete it

    @property
    def network(self) -> str:
        return self.project + "_default"

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


@dataclasses.dataclass(frozen=True)
class Container:
    """One container as the lab runs it (the settings its compose file declares, unless planted)."""

    stack: Stack
    service: str
    image: str
    command: tuple = ()
    env: tuple = ()  # (KEY, value)
    secret_env: tuple = ()  # (KEY, canary name)
    ports: tuple = ()  # "127.0.0.1:published:target"
    binds: tuple = ()  # "source:target:ro"
    restart: str = "unless-stopped"
    memory: str | None = None  # compose notation: "256M"
    cpus: str | None = None
    health: Health | None = None
    labels: tuple = ()  # declared labels: (key, value)
    config_hash: str | None = None  # the com.docker.compose.config-hash label Compose would have written
    running: bool = True  # False: created, never started
    stop_signal: str | None = None  # compose's stop_signal
    planted_health: str | None = None  # what `up` waits for
    config_files: tuple = ()  # the compose files it was started from, when not the stack's

    @property
    def name(self) -> str:
        return "%s-%s-1" % (self.stack.project, self.service)


# Commands as written in the compose files; `$$` is compose's escaped `$`, so the container runs
# the command with a single `$`.
WORKER_COMMAND = (
    "sh",
    "-c",
    "trap 'exit 0' TERM; echo $$HOSTNAME > /tmp/worker.alive; while :; do sleep 30 & wait; done",
)
SCHEDULER_COMMAND = ("sh", "-c", "trap 'exit 0' TERM; : > /tmp/scheduler.alive; while :; do sleep 60 & wait; done")
MAILHOG_COMMAND = ("sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8025 -h /www & wait")
LEGACY_COMMAND = ("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 300 & wait; done")
SCHEDULER_HEALTH = Health("10s", test=("CMD-SHELL", "test -f /tmp/scheduler.alive"))
WEB_LABELS = (("com.example.owner", "platform"),)  # added by both override files
DEV_WEB_TAG, PROD_WEB_TAG, PROD_WEB_RUNNING_TAG = "1.1", "1.0", "0.9"
# prod's PostgreSQL (service db): postgres_area builds the image from this machine's own
# binaries (its docker_images hook), initialises the data dir here before the container first
# starts, and plants the databases through the socket dir, which is shared with the host.
DB_IMAGE = "lab/postgres:15"
DB_DATA_DIR = STATE_DIR / "pg-prod"
DB_SOCKET_DIR = RUN_DIR / "pg-prod"
DB_PORT = 55433
DB_HEALTH = Health("10s", test=("CMD", "pg_isready", "-q", "-h", "/var/run/postgresql"))


# dev's worker as `docker compose up` first created it, before its compose file was edited (its
# loop slept 60 s then): the model Compose hashed (compose-go's ServiceConfig as Go's JSON writes
# it), so that its config-hash label is the one Compose wrote then (planted: docker.stale).
EARLIER_WORKER_MODEL = (
    '{"command":["sh","-c","trap \'exit 0\' TERM; echo $HOSTNAME \\u003e /tmp/worker.alive; while :; do sleep 60 '
    '\\u0026 wait; done"],"entrypoint":null,"image":"lab/worker:1.0","networks":{"default":null},'
    '"restart":"unless-stopped"}'
)
EARLIER_WORKER_HASH = hashlib.sha256(EARLIER_WORKER_MODEL.encode()).hexdigest()


def _run(command: tuple) -> tuple:
    return tuple(part.replace("$$", "$") for part in command)


CONTAINERS = [
    # dev: everything runs as declared.
    Container(
        DEV_STACK,
        "web",
        "lab/web:" + DEV_WEB_TAG,
        # Started by hand with another TZ than the compose files declare (planted: docker.runtime_differs).
        env=(("LOG_LEVEL", "debug"), ("TZ", "Europe/Paris")),
        secret_env=(("API_KEY", "docker.dev.API_KEY"),),
        ports=("127.0.0.1:8080:80",),
        binds=("%s:/www/site:ro" % (DEV.project_dir / "site"),),
        health=Health("10s"),
        labels=WEB_LABELS,
        planted_health="healthy",
    ),
    # Created by Compose from an earlier compose file, not recreated since (planted: docker.stale).
    Container(DEV_STACK, "worker", "lab/worker:1.0", command=_run(WORKER_COMMAND), config_hash=EARLIER_WORKER_HASH),
    Container(
        DEV_STACK,
        "scheduler",
        "lab/worker:1.0",
        command=_run(SCHEDULER_COMMAND),
        health=SCHEDULER_HEALTH,
        planted_health="healthy",
    ),
    Container(DEV_STACK, "mailhog", "lab/worker:1.0", command=_run(MAILHOG_COMMAND), ports=("127.0.0.1:8025:8025",)),
    # prod: web runs an older image than declared (planted), which fails its healthcheck.
    Container(
        PROD_STACK,
        "web",
        "lab/web:" + PROD_WEB_RUNNING_TAG,
        env=(("LOG_LEVEL", "info"), ("TZ", "UTC")),
        secret_env=(("API_KEY", "docker.prod.API_KEY"),),
        ports=("127.0.0.1:8081:80",),
        binds=("%s:/www/site:ro" % STATIC_DIR,),
        restart="always",
        memory="256M",
        cpus="0.5",
        health=Health("30s"),
        labels=WEB_LABELS,
        planted_health="unhealthy",
    ),
    # Declared privileged, but run without it: runc cannot grant every capability on every
    # machine (a sandbox's bounding set may lack some); the audit reports it both as declared
    # (docker.privileged, docker.declared_changed) and as running otherwise (docker.runtime_differs).
    Container(PROD_STACK, "worker", "lab/worker:1.0", command=_run(WORKER_COMMAND), cpus="0.25"),
    # Declared, never started (planted: docker.not_running); otherwise as declared.
    Container(
        PROD_STACK,
        "scheduler",
        "lab/worker:1.0",
        command=_run(SCHEDULER_COMMAND),
        memory="64M",
        health=SCHEDULER_HEALTH,
        running=False,
    ),
    # As declared: the docker area's production checks find nothing on it.
    Container(
        PROD_STACK,
        "db",
        DB_IMAGE,
        ports=("127.0.0.1:%d:5432" % DB_PORT,),
        binds=("%s:/var/lib/postgresql/data" % DB_DATA_DIR, "%s:/var/run/postgresql" % DB_SOCKET_DIR),
        memory="768M",
        health=DB_HEALTH,
        planted_health="healthy",
        stop_signal="SIGINT",
    ),
    # No prod compose file declares legacy-cron (planted: docker.orphan): it was started long
    # ago from the seed's old compose file.
    Container(
        PROD_STACK,
        "legacy-cron",
        "lab/worker:1.0",
        command=LEGACY_COMMAND,
        config_files=("docker/docker-compose.prod.yml",),
    ),
]


# ---------------------------------------------------------------- compose files
# Written by hand (not generated from CONTAINERS) so that they read like a team's files; the
# shared pieces (commands, healthcheck tests) come from the constants above, as JSON flow
# sequences, which are valid YAML. tests/lab/test_docker_lab.py checks files against containers.


def _flow(items) -> str:
    return json.dumps(list(items))


COMPOSE_DEV = f"""\
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
    command: {_flow(WORKER_COMMAND)}
    restart: unless-stopped

  scheduler:
    image: lab/worker:1.0
    command: {_flow(SCHEDULER_COMMAND)}
    healthcheck:
      test: {_flow(SCHEDULER_HEALTH.test)}
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
"""

COMPOSE_DEV_OVERRIDE = """\
# Local additions to compose.dev.yml (merged after it).
services:
  web:
    environment:
      TZ: UTC
    labels:
      com.example.owner: platform
"""

COMPOSE_PROD = f"""\
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
    command: {_flow(WORKER_COMMAND)}
    # Mounted the backup share itself once; nobody dared to take it away since.
    privileged: true
    cpus: 0.25
    restart: unless-stopped

  scheduler:
    image: lab/worker:1.0
    command: {_flow(SCHEDULER_COMMAND)}
    healthcheck:
      test: {_flow(SCHEDULER_HEALTH.test)}
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
      test: {_flow(DB_HEALTH.test)}
      interval: 10s
      timeout: 5s
      retries: 2
    restart: unless-stopped
    deploy:
      resources:
        limits:
          memory: 768M
"""

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


def _canaries(ctx: Ctx) -> dict[str, str]:
    make = canary_maker("ak_", 32)
    return {name: ctx.canary(name, make) for name in ("docker.dev.API_KEY", "docker.prod.API_KEY")}


def render_env_file(stack: Stack, c: dict[str, str]) -> str:
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
WEB_TAG={PROD_WEB_TAG}
API_KEY={c["docker.prod.API_KEY"]}
"""


COMPOSE_TEXT = {
    DEV_STACK.files[0]: COMPOSE_DEV,
    DEV_STACK.files[1]: COMPOSE_DEV_OVERRIDE,
    PROD_STACK.files[0]: COMPOSE_PROD,
    PROD_STACK.files[1]: COMPOSE_PROD_OVERRIDE,
}


def _write_stack_files(ctx: Ctx, stack: Stack, c: dict[str, str]) -> None:
    for rel in stack.files:
        write_file(ctx, stack.path(rel), COMPOSE_TEXT[rel], 0o644, stack.env.owner)
    write_file(ctx, stack.path(stack.env_file), render_env_file(stack, c), 0o600, stack.env.owner)


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


def _ensure_network(ctx: Ctx, stack: Stack) -> None:
    """The project's default network, as compose names and labels it."""
    if _get("/networks/%s" % _quote(stack.network)) is not None:
        return
    _call(
        "POST",
        "/networks/create",
        {
            "Name": stack.network,
            "Driver": "bridge",
            "CheckDuplicate": True,
            "Options": {"com.docker.network.bridge.name": stack.bridge},
            "Labels": {"com.docker.compose.network": "default", "com.docker.compose.project": stack.project},
        },
    )
    ctx.changed("created network %s" % stack.network)


# ---------------------------------------------------------------- containers


def _duration_ns(text: str) -> int:
    return int(text.rstrip("s")) * 10**9  # the lab writes whole seconds only


def _memory_bytes(text: str | None) -> int:
    return int(text.rstrip("M")) * 1024**2 if text else 0  # the lab writes megabytes only


def _nano_cpus(text: str | None) -> int:
    return round(float(text) * 10**9) if text else 0


def _compose_labels(c: Container) -> dict:
    stack = c.stack
    files = [str(stack.path(rel)) for rel in c.config_files or stack.files]
    return {
        "com.docker.compose.project": stack.project,
        "com.docker.compose.service": c.service,
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.project.working_dir": str(Path(files[0]).parent),
        "com.docker.compose.project.config_files": ",".join(files),
        **({"com.docker.compose.config-hash": c.config_hash} if c.config_hash else {}),
    }


def create_body(c: Container, secret) -> dict:
    """The POST /containers/create body; `secret(canary name)` gives a secret's value."""
    env = ["%s=%s" % pair for pair in c.env] + ["%s=%s" % (key, secret(name)) for key, name in c.secret_env]
    bindings = {}
    for port in c.ports:
        ip, published, target = port.split(":")
        bindings.setdefault(target + "/tcp", []).append({"HostIp": ip, "HostPort": published})
    body = {
        "Image": c.image,
        "Env": sorted(env),
        "Labels": {**_compose_labels(c), **dict(c.labels)},
        "ExposedPorts": {port: {} for port in sorted(bindings)},
        "HostConfig": {
            "NetworkMode": c.stack.network,
            "RestartPolicy": {"Name": c.restart},
            "PortBindings": bindings,
            "Binds": list(c.binds),
            "Memory": _memory_bytes(c.memory),
            "NanoCpus": _nano_cpus(c.cpus),
        },
        "NetworkingConfig": {"EndpointsConfig": {c.stack.network: {"Aliases": [c.service]}}},
    }
    if c.command:
        body["Cmd"] = list(c.command)
    if c.stop_signal:
        body["StopSignal"] = c.stop_signal
    if c.health:
        body["Healthcheck"] = {
            "Test": list(c.health.test),
            "Interval": _duration_ns(c.health.interval),
            "Timeout": _duration_ns(c.health.timeout),
            "Retries": c.health.retries,
        }
    return body


def spec_hash(c: Container) -> str:
    """A hash of everything the lab sets, with canary names in place of secret values."""
    body = create_body(c, lambda name: "<%s>" % name)
    body["Extra"] = {"running": c.running}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _matches(current: dict, body: dict) -> bool:
    config = current.get("Config") or {}
    same_spec = (config.get("Labels") or {}).get(SPEC_LABEL) == body["Labels"][SPEC_LABEL]
    return same_spec and set(body["Env"]) <= set(config.get("Env") or [])


def _ensure_container(ctx: Ctx, c: Container, secrets: dict[str, str]) -> None:
    body = create_body(c, secrets.__getitem__)
    body["Labels"][SPEC_LABEL] = spec_hash(c)
    current = _get("/containers/%s/json" % c.name)
    state = (current or {}).get("State") or {}
    if current and _matches(current, body) and (c.running or state.get("Status") == "created"):
        if c.running and not (state.get("Running") or state.get("Restarting")):
            _call("POST", "/containers/%s/start" % c.name)
            ctx.changed("started container %s" % c.name)
        return
    if current:
        _call("DELETE", "/containers/%s?force=1" % c.name)
    _call("POST", "/containers/create?name=%s" % c.name, body)
    if c.running:
        _call("POST", "/containers/%s/start" % c.name)
    # The name only: the body holds a secret.
    ctx.changed("%s container %s" % ("recreated" if current else "created", c.name))


def _lab_containers() -> list[dict]:
    filters = _quote(json.dumps({"label": [SPEC_LABEL]}))
    return _call("GET", "/containers/json?all=1&filters=" + filters)


def _ensure_stacks(ctx: Ctx) -> None:
    secrets = _canaries(ctx)
    for stack in STACKS:
        _ensure_network(ctx, stack)
    for c in CONTAINERS:
        _ensure_container(ctx, c, secrets)
    # Containers an earlier version of the lab planted and this one does not (only the lab's own,
    # by their label: other containers on the engine are not the lab's business).
    wanted = {c.name for c in CONTAINERS}
    for info in _lab_containers():
        name = (info.get("Names") or ["/?"])[0].lstrip("/")
        if name not in wanted:
            _call("DELETE", "/containers/%s?force=1" % info["Id"])
            ctx.changed("removed container %s" % name)


def health(name: str) -> str | None:
    current = _get("/containers/%s/json" % name) or {}
    return (((current.get("State") or {}).get("Health")) or {}).get("Status")


def _wait_for_health() -> None:
    """Healthchecks take a while to settle (prod's web: two failed probes 30s apart); an audit
    right after `up` must see the planted states, so wait for them, bounded."""
    watched = [c for c in CONTAINERS if c.running and c.health]
    bound = max(_duration_ns(c.health.interval) * (c.health.retries + 1) for c in watched) / 1e9 + 30
    deadline = time.monotonic() + bound
    while True:
        states = {c.name: health(c.name) for c in watched}
        if "starting" not in states.values() or time.monotonic() > deadline:
            break
        time.sleep(1)
    wrong = [
        "%s is %s, not %s" % (c.name, states[c.name], c.planted_health)
        for c in watched
        if states[c.name] != c.planted_health
    ]
    if wrong:
        raise LabError("containers did not reach their planted health within %ds: %s" % (bound, "; ".join(wrong)))


# ---------------------------------------------------------------- area interface


def build(ctx: Ctx) -> None:
    # by package state: /bin/busybox may be the dynamic busybox
    install_packages(ctx, uninstalled(PACKAGES))
    _ensure_group(ctx)
    ensure_dir(ctx, RUN_DIR, 0o755)
    if write_file(ctx, CONFIG, CONFIG_TEXT, 0o644):
        ctx.flags.add("dockerd_restart")
    c = _canaries(ctx)
    ctx.save_canaries(CANARY_PREFIX)  # recorded before any file holds them
    for stack in STACKS:
        _write_stack_files(ctx, stack, c)
    if ctx.replant and running_pid():
        _ensure_stacks(ctx)  # the containers carry the canaries too: web is recreated
        _wait_for_health()  # so that an audit right after a replant sees the planted states


def start(ctx: Ctx) -> None:
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
    """The data root goes with the state dir; here: what lives outside it."""
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
    for c in (c for c in CONTAINERS if c.stack is stack):
        state = ((_get("/containers/%s/json" % c.name) or {}).get("State")) or {}
        state_now, health_now = state.get("Status"), (state.get("Health") or {}).get("Status")
        if state_now != ("running" if c.running else "created"):
            wrong.append("%s %s" % (c.service, state_now or "missing"))
        elif c.planted_health and health_now not in (c.planted_health, "starting"):
            wrong.append("%s %s" % (c.service, health_now))
        else:
            notes.append("%s (%s)" % (c.service, health_now or state_now))
    detail = "%s: %s" % (stack.project, "; ".join(wrong) if wrong else ", ".join(notes))
    return ("%s stack" % stack.env.name, not wrong, detail)
