"""Diff rules of the docker area: compose stacks declared across environments, the running
containers against their declaration on each host, and production policies.

Input per column: the host's docker facts ({"stacks": {...}, "engine": {...}}, see
docs/docker-facts.md), an unknown marker, or None (not configured there).
Pure Python; no Ansible imports.
"""

import re

from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import capabilities
from ansible_collections.envparity.audit.plugins.plugin_utils.compare import (
    always_same,
    compare_key,
    union_keys,
    value_outcome,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    FILE_STATUS_TEXT,
    SubjectColumns,
    by_value,
    is_unknown,
    join_names,
    subject_names,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.object_type import ObjectType, presence_finding
from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import (
    change_rating,
    record_cells,
    record_identity,
    reused_secret,
)

AREA = "docker"
LIST_ATTRIBUTES = ("ports", "env_file", "volumes", "networks", "depends_on", "cap_add", "cap_drop", "profiles")
SCALAR_ATTRIBUTES = ("restart", "user", "privileged", "read_only", "network_mode")
MEDIUM_ATTRIBUTES = frozenset(
    (
        "image",
        "ports",
        "volumes",
        "limits.memory",
        "limits.cpus",
        "reservations.memory",
        "reservations.cpus",
        "privileged",
    )
)
ATTRIBUTES = (
    "image",
    "build",
    "command",
    "entrypoint",
    "ports",
    "env_file",
    "volumes",
    "networks",
    "depends_on",
    "healthcheck",
    "restart",
    "limits.memory",
    "limits.cpus",
    "reservations.memory",
    "reservations.cpus",
    "logging",
    "labels",
    "user",
    "privileged",
    "read_only",
    "cap_add",
    "cap_drop",
    "network_mode",
    "profiles",
)
TRUE_WORDS = frozenset(("true", "yes", "on", "1", "y"))
MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)
UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
STATUS_TEXT = {
    **FILE_STATUS_TEXT,
    "malformed": "malformed YAML",
    "unsafe": "unsafe YAML (bomb)",
    "failed": "could not be read",
}


# A service that one environment's compose files do not declare.
SERVICE = ObjectType(
    noun="service",
    check="docker.service",
    text=lambda service: "declared",
    missing="medium",
    extra="low",
    namespace="services.",
    messages={
        "missing": "Service %(object)s is declared in %(present)s but not in %(where)s.",
        "extra": "Service %(object)s is declared in %(where)s but not in the baseline %(baseline)s.",
    },
    advice={
        "missing": "Add %(object)s to the compose files of %(where)s, or remove it where it is no longer used.",
        "extra": "Declare %(object)s in %(baseline)s too, or remove it.",
    },
)


def subjects(request):
    return sorted({item["name"] for item in (request or {}).get("stacks") or []})


def memory_bytes(text):
    """Compose memory strings ("256M", "1g", "512mb", "1048576") to bytes; None when unparseable."""
    match = MEMORY.match(str(text)) if text is not None else None
    if not match:
        return None
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def nano_cpus(text):
    try:
        return int(round(float(text) * 1e9))
    except (TypeError, ValueError):
        return None


def _joined(items):
    return ", ".join(str(item) for item in items) if items else None


def attribute_text(service, attribute):
    """One declared attribute as the text compared and shown (None = not set)."""
    if "." in attribute:
        group, field = attribute.split(".", 1)
        return (service.get(group) or {}).get(field)
    value = service.get(attribute)
    if attribute == "image":
        return value["ref"] if value else None
    if attribute in LIST_ATTRIBUTES:
        return _joined(value)
    if attribute in ("command", "entrypoint"):
        return " ".join(value) if isinstance(value, list) else value
    if attribute == "healthcheck":
        if not value:
            return None
        test = value.get("test")
        parts = ["test=%s" % (" ".join(test) if isinstance(test, list) else test)] if test is not None else []
        parts += [
            "%s=%s" % (name, value[name])
            for name in ("interval", "timeout", "retries", "start_period", "disable")
            if value.get(name) is not None
        ]
        return "; ".join(parts)
    if attribute == "build":
        return _joined("%s=%s" % (k, v) for k, v in sorted(value.items()) if v is not None) if value else None
    if attribute == "logging":
        if not value:
            return None
        options = ["%s=%s" % (k, v) for k, v in sorted((value.get("options") or {}).items())]
        return _joined(["driver=%s" % value.get("driver")] + options)
    if attribute == "labels":
        return _joined("%s=%s" % (k, v) for k, v in sorted((value or {}).items()))
    return value


def _enabled(service):
    """Services with profiles only start when a profile is activated: not expected to run."""
    return not service.get("profiles")


class _Stack(SubjectColumns):
    """One stack across the columns, with the engine of each column that declares it."""

    AREA = AREA

    def __init__(self, name, columns, cells, context):
        super().__init__(name, "stacks", columns, cells, context)
        self.engines = {
            label: cells[label].get("engine") or {"status": "failed", "reason": "no engine facts"}
            for label in self.records
        }

    def declared(self):
        return [label for label in self.columns if self.records.get(label, {}).get("status") == "ok"]

    def running(self):
        return [label for label in self.declared() if self.engines[label].get("status") == "ok"]


def _status_findings(stack):
    findings = []
    broken = [label for label in stack.columns if label in stack.records and stack.records[label]["status"] != "ok"]
    if broken:
        values = {}
        for label, record in stack.records.items():
            bad = [f for f in record.get("files") or [] if f["status"] != "ok"]
            values[label] = "; ".join(
                "%s: %s" % (f["path"], STATUS_TEXT.get(f["status"], f["status"])) for f in bad
            ) or ("ok" if record["status"] == "ok" else record.get("reason") or "failed")
        missing = all(
            all(f["status"] == "missing" for f in stack.records[label].get("files") or [] if f["status"] != "ok")
            and any(f["status"] == "missing" for f in stack.records[label].get("files") or [])
            for label in broken
        )
        reasons = by_value(((label, stack.records[label].get("reason") or values[label]) for label in broken), ": ")
        findings.append(
            stack.finding(
                "@files",
                "missing" if missing else "unknown",
                "docker.stack_status",
                "high",
                values,
                broken,
                "Compose stack %s could not be read on %s (%s); its services were not compared there."
                % (stack.name, join_names(broken), reasons),
                "Fix the compose files (or drift_compose paths) of %s on %s." % (stack.name, join_names(broken)),
            )
        )
    truncated = [label for label in stack.running() if stack.engines[label].get("truncated")]
    if truncated:
        findings.append(
            stack.finding(
                "@engine",
                "unknown",
                "docker.engine_truncated",
                "medium",
                {label: "more containers than inspected" for label in truncated},
                truncated,
                "The engine on %s runs more containers than the audit inspects; services not seen may be "
                "reported as not running, and orphans may be missed." % join_names(truncated),
                "Audit a smaller engine, or raise the collector's container cap.",
            )
        )
    down = [label for label in stack.declared() if stack.engines[label].get("status") != "ok"]
    if down:
        values = {
            label: ("ok" if stack.engines[label].get("status") == "ok" else stack.engines[label].get("status"))
            for label in stack.declared()
        }
        reasons = by_value(((label, stack.engines[label].get("reason")) for label in down), ": ")
        findings.append(
            stack.finding(
                "@engine",
                "unknown",
                "docker.engine_status",
                "high",
                values,
                down,
                "The Docker engine could not be queried on %s (%s); running containers were not compared there."
                % (join_names(down), reasons),
                "Check drift_docker_host and that the audit user may use the Docker socket on %s." % join_names(down),
            )
        )
    return findings


def _declared_findings(stack):
    ok = stack.declared()
    if len(ok) < 2:
        return []
    services = {label: stack.records[label]["services"] for label in ok}
    findings = []
    for svc in union_keys(services.values()):
        declared = {label: services[label].get(svc) for label in ok}
        outcome = compare_key(declared, ok, same=always_same)
        if outcome:
            values = SERVICE.cells(declared, ok)
            findings.append(presence_finding(stack, SERVICE, svc, outcome, objects=declared, labels=ok, values=values))
            continue
        findings += _attribute_findings(stack, svc, ok, {label: services[label][svc] for label in ok})
        findings += _environment_findings(stack, svc, ok, {label: services[label][svc] for label in ok})
    return findings


def _attribute_findings(stack, svc, ok, declared):
    findings = []
    for attribute in ATTRIBUTES:
        values = {label: attribute_text(declared[label], attribute) for label in ok}
        outcome = value_outcome(values, ok)
        if outcome is None:
            continue
        kind, differing = outcome
        findings.append(
            stack.finding(
                "services.%s.%s" % (svc, attribute),
                kind,
                "docker.declared_changed",
                "medium" if attribute in MEDIUM_ATTRIBUTES else "low",
                values,
                differing,
                "%s of service %s differs: %s."
                % (attribute, svc, by_value((label, values[label] or "—") for label in ok)),
                "Align %s of %s with %s, or record the difference as expected in the rules file."
                % (attribute, svc, ok[0]),
            )
        )
    return findings


def _environment_findings(stack, svc, ok, declared):
    findings = []
    environments = {label: declared[label].get("environment") or {} for label in ok}
    production = set(stack.production(ok))
    for key in union_keys(environments.values()):
        records = {label: environments[label].get(key) for label in ok}
        values = record_cells(records, ok)
        severity, note = change_rating(records.values())
        outcome = value_outcome(records, ok, key=record_identity)
        if outcome:
            kind, differing = outcome
            findings.append(
                stack.finding(
                    "services.%s.environment.%s" % (svc, key),
                    kind,
                    "docker.secret_changed" if note else "docker.env_changed",
                    severity,
                    values,
                    differing,
                    "%s of service %s differs in %s%s." % (key, svc, join_names(differing), note),
                    "Nothing to do if each environment must have its own secret."
                    if note
                    else "Align %s of %s with %s, or record the difference as expected." % (key, svc, ok[0]),
                )
            )
        labels = reused_secret(records, production)
        if labels:
            findings.append(
                stack.finding(
                    "services.%s.environment.%s" % (svc, key),
                    "policy",
                    "docker.secret_reused",
                    "high",
                    values,
                    labels,
                    "%s of service %s holds the same secret in %s." % (key, svc, join_names(labels)),
                    "Rotate %s in production so that no other environment shares it." % key,
                )
            )
    return findings


def _same_image(declared_ref, running_ref):
    def normal(ref):
        ref = ref or ""
        for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
            if ref.startswith(prefix):
                ref = ref[len(prefix) :]
        name = ref.split("@", 1)[0]
        if ":" not in name.rsplit("/", 1)[-1]:
            ref = ref.replace(name, name + ":latest", 1)
        return ref

    return normal(declared_ref) == normal(running_ref)


def _image_healthcheck(stack, label, svc):
    """Whether a container of the service on label runs a healthcheck (its image's, when the
    compose files set none)."""
    engine = stack.engines.get(label) or {}
    project = stack.records[label]["project"]
    return any(
        c.get("healthcheck") is True
        for c in engine.get("containers") or []
        if c.get("project") == project and c.get("service") == svc
    )


def _replicas(service):
    """How many containers of the service Compose runs (deploy.replicas or scale; 1 when unset);
    None when the number is not one."""
    text = service.get("replicas")
    if text is None:
        return 1
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _failing(container):
    """Unhealthy, restarting (a crash loop: never "running" between two attempts) or exited with an
    error code."""
    if container["state"] == "restarting" or container.get("health") == "unhealthy":
        return True
    return container["state"] == "exited" and bool(container.get("exit_code"))


def _container_text(container):
    text = container["state"]
    if container.get("health"):
        text += ", " + container["health"]
    if container["state"] != "running":
        text += " (exit %s)" % container.get("exit_code")
    return text


class _PerHost:
    """Policy findings gathered host by host: one per (key, check), naming every host it hit."""

    def __init__(self, stack):
        self.stack = stack
        self.found = {}

    def hit(self, key, check, severity, label, text, message, recommendation):
        """message has one %s left for the hosts' names."""
        entry = self.found.setdefault(
            (key, check),
            {"severity": severity, "hits": [], "values": {}, "message": message, "recommendation": recommendation},
        )
        if label not in entry["hits"]:
            entry["hits"].append(label)
        entry["values"][label] = text

    def findings(self):
        findings = []
        for (key, check), entry in sorted(self.found.items()):
            where = sorted(entry["hits"], key=self.stack.columns.index)
            findings.append(
                self.stack.finding(
                    key,
                    "policy",
                    check,
                    entry["severity"],
                    entry["values"],
                    where,
                    entry["message"] % join_names(where),
                    entry["recommendation"],
                )
            )
        return findings


def _runtime_findings(stack, claimed_unlabelled):
    """Each host's running containers against its own declaration."""
    per_host = _PerHost(stack)
    hit = per_host.hit
    for label in stack.running():
        record, engine = stack.records[label], stack.engines[label]
        project = record["project"]
        mine = [c for c in engine.get("containers") or [] if c.get("project") == project]
        declared = record["services"]
        for svc, service in sorted(declared.items()):
            if not _enabled(service):
                continue
            containers = [c for c in mine if c.get("service") == svc]
            running = [c for c in containers if c["state"] == "running"]
            failing = [c for c in containers if _failing(c)]
            if failing:
                hit(
                    "services.%s.health" % svc,
                    "docker.unhealthy",
                    "high",
                    label,
                    "; ".join(_container_text(c) for c in failing),
                    "A container of %s is unhealthy, restarting or exited with an error on %%s." % svc,
                    "Read the container's logs and healthcheck output of %s; fix before deploying on top." % svc,
                )
            expected = _replicas(service)
            if running and expected is not None and len(running) != expected:
                hit(
                    "services.%s.replicas" % svc,
                    "docker.replicas_differ",
                    "medium",
                    label,
                    "declared %d, running %d" % (expected, len(running)),
                    "The number of running containers of %s differs from its compose file on %%s." % svc,
                    "Run `docker compose up -d` so that %s runs as many containers as declared "
                    "(or fix deploy.replicas / scale)." % svc,
                )
            if not running and not failing and expected != 0:
                text = "; ".join(_container_text(c) for c in containers) or "no container"
                hit(
                    "services.%s" % svc,
                    "docker.not_running",
                    "high",
                    label,
                    text,
                    "Service %s is declared but not running on %%s." % svc,
                    "Start %s (docker compose up -d %s) or remove it from the compose files." % (svc, svc),
                )
                continue
            for container in running:
                image = service.get("image")
                if image and not _same_image(image["ref"], container["image"]):
                    hit(
                        "services.%s.image" % svc,
                        "docker.image_mismatch",
                        "high",
                        label,
                        "declared %s, running %s" % (image["ref"], container["image"]),
                        "A container of %s runs another image than its compose file declares on %%s." % svc,
                        "Redeploy %s with `docker compose up -d` so the declared image runs (or fix the compose file)."
                        % svc,
                    )
                _limit_findings(hit, svc, service, container, label)
                _setting_findings(hit, svc, service, container, label)
                if _stale(service, container):
                    hit(
                        "services.%s.config_hash" % svc,
                        "docker.stale",
                        "medium",
                        label,
                        "created from an earlier configuration",
                        "The compose files changed since the running %s was created on %%s: "
                        "`docker compose up -d` would recreate it." % svc,
                        "Run `docker compose up -d` for %s (or restore the compose files it was started from)." % svc,
                    )
                for key, what, declared_text, running_text in _runtime_differences(service, container, mine):
                    hit(
                        "services.%s.%s" % (svc, key),
                        "docker.runtime_differs",
                        "medium",
                        label,
                        "declared %s, running %s" % (declared_text, running_text),
                        "The %s of the running %s differs from its compose file on %%s." % (what, svc),
                        "Recreate %s (docker compose up -d) so the compose file applies." % svc,
                    )
        for container in mine:
            if container.get("service") not in declared:
                hit(
                    "containers.%s" % container["name"],
                    "docker.orphan",
                    "medium",
                    label,
                    _container_text(container),
                    "Container %s (service %s) runs in project %s but no compose file declares it on %%s."
                    % (container["name"], container.get("service"), project),
                    "Remove the orphan (docker compose up -d --remove-orphans) or declare it.",
                )
        if claimed_unlabelled is not None and label not in claimed_unlabelled:
            claimed_unlabelled.add(label)
            for container in engine.get("containers") or []:
                if container.get("project") is None and container["state"] == "running":
                    hit(
                        "containers.%s" % container["name"],
                        "docker.orphan",
                        "medium",
                        label,
                        _container_text(container),
                        "Container %s runs outside any compose project on %%s." % container["name"],
                        "Declare it in a compose file or remove it.",
                    )
    return per_host.findings()


def _setting_findings(hit, svc, service, container, label):
    """The restart policy, the user and each declared environment value of a running container
    against its declaration (a value as its fingerprint: a secret is never shown)."""
    recreate = "Recreate %s (docker compose up -d) so the compose file applies." % svc
    declared_restart = (service.get("restart") or "no").split(":")[0]
    running_restart = container.get("restart_policy")
    if running_restart is not None and declared_restart != running_restart:
        hit(
            "services.%s.restart" % svc,
            "docker.runtime_differs",
            "medium",
            label,
            "declared %s, running %s" % (declared_restart, running_restart),
            "The restart policy of the running %s differs from its compose file on %%s." % svc,
            recreate,
        )
    # Without a user in the compose files the image's applies: nothing to compare.
    if service.get("user") is not None and service["user"] != container.get("user"):
        hit(
            "services.%s.user" % svc,
            "docker.runtime_differs",
            "medium",
            label,
            "declared %s, running %s" % (service["user"], container.get("user") or "the image's"),
            "The user of the running %s differs from its compose file on %%s." % svc,
            recreate,
        )
    running_env = container.get("environment") or {}
    for key, declared in sorted((service.get("environment") or {}).items()):
        # An unset or empty entry: Compose may pass nothing.
        if not isinstance(declared, dict) or declared.get("empty"):
            continue
        running = running_env.get(key)
        if running is not None and running.get("fp") == declared.get("fp"):
            continue
        shown = record_cells({"declared": declared, "running": running}, ("declared", "running"))
        hit(
            "services.%s.environment.%s" % (svc, key),
            "docker.runtime_differs",
            "medium",
            label,
            "declared %s, running %s" % (shown["declared"], shown["running"] if running is not None else "not set"),
            "The environment of the running %s differs from its compose file on %%s (%s)." % (svc, key),
            recreate,
        )


def _stale(service, container):
    """Compose's config hash of the declared service differs from the one its container was
    created with (both as fingerprints; either unknown: not compared)."""
    declared, running = service.get("config_hash"), container.get("config_hash")
    return bool(declared and running and declared != running)


def _words_text(words):
    return " ".join(words) if isinstance(words, list) else (words or "the image's")


def _command_differences(service, container):
    """The command and entrypoint, compared by fingerprint where the compose files set them (else
    the image's apply)."""
    declared_fps = service.get("fingerprints") or {}
    running_fps = container.get("fingerprints") or {}
    for key in ("command", "entrypoint"):
        if service.get(key) is not None and declared_fps.get(key) != running_fps.get(key):
            yield key, key, _words_text(service[key]), _words_text(container.get(key))


def _healthcheck_differences(service, container):
    """The healthcheck the compose files set (the image's applies otherwise), field by field: the
    test by fingerprint, the durations and retries as Go prints them."""
    declared = service.get("healthcheck")
    if not declared:
        return
    running = container.get("health_config") or {}
    if declared.get("disable") == "true" or declared.get("test") in (["NONE"], "NONE"):
        if container.get("healthcheck"):
            yield "healthcheck", "healthcheck", "disabled", _words_text(running.get("test"))
        return
    declared_fp = (service.get("fingerprints") or {}).get("healthcheck")
    if declared.get("test") is not None and declared_fp != running.get("test_fp"):
        yield "healthcheck.test", "healthcheck", _words_text(declared["test"]), _words_text(running.get("test"))
    for field in ("interval", "timeout", "start_period", "retries"):
        if declared.get(field) is not None and declared[field] != running.get(field):
            yield "healthcheck.%s" % field, "healthcheck %s" % field, declared[field], running.get(field) or "none"


def _label_differences(service, container):
    """Each label the compose files set, by fingerprint (the image's and Compose's own labels are
    not the compose file's)."""
    declared_fps = (service.get("fingerprints") or {}).get("labels") or {}
    running = container.get("labels") or {}
    for key, declared_fp in sorted(declared_fps.items()):
        record = running.get(key)
        if record is None or record.get("fp") != declared_fp:
            shown = record_cells({"running": record}, ("running",))["running"] if record else "not set"
            yield "labels.%s" % key, "label %s" % key, (service.get("labels") or {}).get(key), shown


def _mount_differences(service, container):
    """Each declared volume is mounted as declared (mounts Compose adds itself, secrets and
    configs, and the image's anonymous volumes are not the compose file's)."""
    running = container.get("mounts") or []
    for volume in service.get("volumes") or []:
        if volume in running:
            continue
        target = volume.split(":")[1] if volume.count(":") >= 1 else volume
        same_target = [mount for mount in running if mount.split(":")[1:2] == [target]]
        yield "volumes", "mounts", volume, _joined(same_target) or "not mounted"


def _network_mode_matches(declared, running, containers):
    if declared.startswith("service:"):
        wanted = declared[len("service:") :]
        if not (running or "").startswith("container:"):
            return False
        name = running[len("container:") :]
        return any(c.get("name") == name and c.get("service") == wanted for c in containers)
    return declared == running


def _runtime_differences(service, container, containers):
    """(key, what, declared text, running text) of each attribute a running container has other
    than its declaration says; containers: the project's containers (a network mode
    "service:<name>" is one of them)."""
    yield from _command_differences(service, container)
    yield from _healthcheck_differences(service, container)
    for key in ("cap_add", "cap_drop"):
        declared, running = capabilities(service.get(key)), container.get(key) or []
        if declared != running:
            yield key, key, _joined(declared) or "none", _joined(running) or "none"
    declared_privileged = service.get("privileged") == "true"
    if declared_privileged != bool(container.get("privileged")):
        yield (
            "privileged",
            "privileged flag",
            str(declared_privileged).lower(),
            str(bool(container.get("privileged"))).lower(),
        )
    mode = service.get("network_mode")
    if mode and not _network_mode_matches(mode, container.get("network_mode"), containers):
        yield "network_mode", "network mode", mode, container.get("network_mode") or "none"
    yield from _label_differences(service, container)
    yield from _mount_differences(service, container)


def _limit_findings(hit, svc, service, container, label):
    declared_memory = memory_bytes((service.get("limits") or {}).get("memory"))
    if declared_memory != container.get("memory"):
        hit(
            "services.%s.limits.memory" % svc,
            "docker.runtime_differs",
            "medium",
            label,
            "declared %s, running %s bytes"
            % ((service.get("limits") or {}).get("memory") or "none", container.get("memory") or "no limit"),
            "The memory limit of the running %s differs from its compose file on %%s." % svc,
            "Recreate %s (docker compose up -d) so the declared limit applies." % svc,
        )
    declared_cpus = nano_cpus((service.get("limits") or {}).get("cpus"))
    if declared_cpus != container.get("nano_cpus"):
        hit(
            "services.%s.limits.cpus" % svc,
            "docker.runtime_differs",
            "medium",
            label,
            "declared %s, running %s"
            % (
                (service.get("limits") or {}).get("cpus") or "none",
                (container.get("nano_cpus") or 0) / 1e9 or "no limit",
            ),
            "The CPU limit of the running %s differs from its compose file on %%s." % svc,
            "Recreate %s (docker compose up -d) so the declared limit applies." % svc,
        )
    published = sorted(port for port in service.get("ports") or [] if ":" in port)
    running = sorted(port for port in container.get("ports") or [] if ":" in port)
    if published != running:
        hit(
            "services.%s.ports" % svc,
            "docker.runtime_differs",
            "medium",
            label,
            "declared %s, running %s" % (_joined(published) or "none", _joined(running) or "none"),
            "The published ports of the running %s differ from its compose file on %%s." % svc,
            "Recreate %s (docker compose up -d) so the declared ports apply." % svc,
        )


def _production_findings(stack):
    per_host = _PerHost(stack)
    for label in stack.production(stack.declared()):
        for svc, service in sorted(stack.records[label]["services"].items()):
            if not _enabled(service):
                continue
            checks = []
            if (service.get("limits") or {}).get("memory") is None:
                checks.append(
                    (
                        "limits.memory",
                        "docker.no_memory_limit",
                        "medium",
                        "no memory limit",
                        "Service %s has no memory limit in production (%%s)." % svc,
                        "Set deploy.resources.limits.memory for %s: one leaking service can take the host down." % svc,
                    )
                )
            health = service.get("healthcheck") or {}
            test = health.get("test")
            declared_none = not health or str(health.get("disable")).lower() in TRUE_WORDS or test in (["NONE"], "NONE")
            # Without a healthcheck in the compose files, the image's applies (the container reports it).
            if declared_none and not (not health and _image_healthcheck(stack, label, svc)):
                checks.append(
                    (
                        "healthcheck",
                        "docker.no_healthcheck",
                        "low",
                        "no healthcheck",
                        "Service %s has no healthcheck in production (%%s)." % svc,
                        "Add a healthcheck to %s so failures are seen and restarts are meaningful." % svc,
                    )
                )
            if str(service.get("privileged") or "").lower() in TRUE_WORDS:
                checks.append(
                    (
                        "privileged",
                        "docker.privileged",
                        "high",
                        "privileged",
                        "Service %s runs privileged in production (%%s)." % svc,
                        "Drop privileged from %s; grant only the capabilities it needs (cap_add)." % svc,
                    )
                )
            image = service.get("image")
            if image and not image.get("digest") and image.get("tag") in (None, "latest"):
                checks.append(
                    (
                        "image",
                        "docker.unpinned_image",
                        "medium",
                        image["ref"],
                        "Service %s uses an unpinned image (latest or no tag) in production (%%s)." % svc,
                        "Pin %s to the tag (or digest) dev runs." % svc,
                    )
                )
            if service.get("restart") in (None, "no"):
                checks.append(
                    (
                        "restart",
                        "docker.no_restart_policy",
                        "low",
                        service.get("restart") or "none",
                        "Service %s has no restart policy in production (%%s)." % svc,
                        "Set restart: unless-stopped (or always) for %s." % svc,
                    )
                )
            for attribute, check, severity, text, message, recommendation in checks:
                per_host.hit("services.%s.%s" % (svc, attribute), check, severity, label, text, message, recommendation)
    return per_host.findings()


def _reader_text(stack):
    """Who read a stack's compose files on one column, and why not Compose when it says."""
    reader = stack.get("reader") if isinstance(stack, dict) else None
    if not isinstance(reader, dict):
        return "—"
    if reader.get("name") == "compose":
        return "Compose %s" % (reader.get("version") or "")
    note = reader.get("note")
    return "built-in reader (%s)" % note if note else "built-in reader"


def tables(columns, cells, context):
    """The report's table of who read each stack's compose files on each column (plain text cells:
    the report model escapes them)."""
    rows = []
    for name in subject_names(cells, "stacks"):
        row = [name]
        for label in columns:
            cell = cells.get(label)
            known = cell is not None and not is_unknown(cell)
            row.append(_reader_text((cell.get("stacks") or {}).get(name)) if known else "—")
        rows.append(row)
    tables = [{"title": "Compose files read by", "header": ["stack"] + list(columns), "rows": rows}] if rows else []
    return {"tables": tables, "charts": []}


def diff(columns, cells, context):
    """All docker findings for the given columns; context: {"baseline", "production": set of labels}."""
    findings = []
    claimed_unlabelled = set()
    for name in subject_names(cells, "stacks"):
        stack = _Stack(name, columns, cells, context)
        findings += _status_findings(stack)
        findings += _declared_findings(stack)
        findings += _runtime_findings(stack, claimed_unlabelled)
        findings += _production_findings(stack)
    return findings
