"""Diff rules of the deps area: packages and runtimes across environments, and the chain
declared → locked → installed within each.

Subjects (one section per ecosystem in the report): ``python <env>`` (a configured virtualenv or
interpreter), ``containers <stack>`` (the Python inside each running service of a compose stack,
and its image's platform), ``node <project>``, ``os packages`` and ``runtimes``. Keys are package
names (canonical), ``service/package`` in containers, or ``@…`` for a subject's own state.

Input per column: the host's deps facts (module_utils/deps_collect.py), an unknown marker, or None
(not configured there). Pure Python; no Ansible imports.
"""

import re

from ansible_collections.envparity.audit.plugins.plugin_utils.compare import compare_key, record_compared, union_keys
from ansible_collections.envparity.audit.plugins.plugin_utils.deps_declared import (
    declared_requirements,
    locked_versions,
    satisfies,
    version,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.deps_semver import satisfies as satisfies_range
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SubjectColumns,
    by_value,
    is_unknown,
    join_names,
)

AREA = "deps"
OS_SUBJECT = "os packages"
RUNTIMES_SUBJECT = "runtimes"
# Installed by venv / pip themselves: never "unlocked" in a lock's sense.
BOOTSTRAP = frozenset({"pip", "setuptools", "wheel", "distribute", "pkg-resources"})
DIRECT_KINDS = {"editable": "an editable install", "directory": "a local-path install", "vcs": "a VCS install"}
_RELEASE = re.compile(r"^(?:\d+[:!])?v?(\d+(?:\.\d+)*)")
# The host's runtimes compared as they are (the Python of each environment is compared in its own
# section, Node's declared version in its project's).
RUNTIME_KEYS = ("os", "kernel", "docker_engine", "compose", "node")
STATUS_TEXT = {
    "missing": "path missing",
    "not_an_environment": "not a Python environment",
    "failed": "could not be read",
    "timeout": "timed out",
    "too_large": "answer too large",
    "not_running": "container stopped",
    "no_python": "no python3",
    "unreadable": "unreadable",
    "unsupported": "not supported",
    "none": "no package database",
}


def subjects(request):
    """The configured subjects (OS packages and runtimes come with any of them: not listed, so that
    a host that could not be collected is not said five times)."""
    request = request or {}
    names = ["python %s" % item["name"] for item in request.get("python_envs") or []]
    names += ["node %s" % item["name"] for item in request.get("node_projects") or []]
    names += ["containers %s" % item["name"] for item in request.get("stacks") or []]
    return sorted(names)


def release(text):
    """The numeric release of a version string (epoch and suffixes dropped): (1, 2, 3) or None."""
    match = _RELEASE.match(text or "")
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def severity_of_change(old, new):
    """high when the major release differs, medium for the minor, low otherwise."""
    first, second = release(old), release(new)
    if not first or not second:
        return "medium"
    width = max(len(first), len(second))
    first, second = first + (0,) * (width - len(first)), second + (0,) * (width - len(second))
    for index, (one, other) in enumerate(zip(first, second, strict=True)):
        if one != other:
            return ("high", "medium")[index] if index < 2 else "low"
    return "low"


def _subject_view(cell):
    """A column's facts as {subject: record}, the shape SubjectColumns reads."""
    if cell is None or is_unknown(cell):
        return cell
    view = {"python %s" % name: record for name, record in (cell.get("python") or {}).items()}
    view.update({"node %s" % name: record for name, record in (cell.get("node") or {}).items()})
    view.update({"containers %s" % name: record for name, record in (cell.get("containers") or {}).items()})
    if isinstance(cell.get("os"), dict):
        view[OS_SUBJECT] = cell["os"]
    if isinstance(cell.get("runtimes"), dict):
        view[RUNTIMES_SUBJECT] = dict(cell["runtimes"], status="ok")
    return {"subjects": view}


class _Subject(SubjectColumns):
    AREA = AREA

    def ok(self):
        return [label for label in self.columns if self.records.get(label, {}).get("status") == "ok"]

    def per_column(self, key, kind, check, severity, hits, message, recommendation, shown=None):
        """One finding for a check that holds in some columns: hits {label: text}."""
        if not hits:
            return []
        values = dict(shown or {})
        values.update(hits)
        where = [label for label in self.columns if label in hits]
        return [self.finding(key, kind, check, severity, values, where, message(where), recommendation(where))]


def _status_findings(subject, what, bad_kind="unknown"):
    broken = [label for label in subject.columns if subject.records.get(label, {}).get("status", "ok") != "ok"]
    if not broken:
        return []
    values = {
        label: STATUS_TEXT.get(record.get("status"), "ok") if record.get("status") != "ok" else "ok"
        for label, record in subject.records.items()
    }
    reasons = by_value(((label, subject.records[label].get("reason") or values[label]) for label in broken), ": ")
    return [
        subject.finding(
            "@" + what,
            bad_kind,
            "deps.%s_status" % what,
            "high",
            values,
            broken,
            "%s could not be read on %s (%s)." % (subject.name, join_names(broken), reasons),
            "Fix the path in the deps area's variables or the environment on %s; it was not compared."
            % join_names(broken),
        )
    ]


def _package_findings(subject, packages, labels, ecosystem, reason_of=None):
    """Missing / extra / version differs per package across the columns (labels[0] is the baseline)."""
    findings = []
    for key in union_keys(packages[label] for label in labels):
        records = {label: packages[label].get(key) for label in labels}
        record_compared(subject.context, subject.name, key, records)
        outcome = compare_key(records, labels)
        if not outcome:
            continue
        kind, where = outcome
        baseline = labels[0]
        values = {label: records[label] for label in labels}
        if kind == "missing":
            check, severity = "deps.package_missing", "medium"
            message = "%s %s is installed in %s but not in %s." % (ecosystem, key, baseline, join_names(where))
            recommendation = "Install %s on %s (from the lock), or remove it from %s." % (
                key,
                join_names(where),
                baseline,
            )
        elif kind == "extra":
            check, severity = "deps.package_extra", "medium"
            message = "%s %s is installed in %s but not in %s." % (ecosystem, key, join_names(where), baseline)
            recommendation = "Remove %s from %s, or add it where it is missing." % (key, join_names(where))
        else:
            check = "deps.version_changed"
            severity = max(
                (severity_of_change(records[baseline], records[label]) for label in where),
                key=("low", "medium", "high").index,
            )
            message = "%s %s differs: %s." % (ecosystem, key, by_value((label, records[label]) for label in labels))
            recommendation = "Install the same version of %s everywhere (deploy the lock)." % key
        note = reason_of(key, labels) if reason_of else ""
        findings.append(subject.finding(key, kind, check, severity, values, where, message + note, recommendation))
    return findings


# ------------------------------------------------------------------ Python


def _python_versions(record):
    return {name: dist.get("version") or "(unknown version)" for name, dist in (record.get("dists") or {}).items()}


def _edges(record, target):
    """Which installed distributions require target (the dependency edges into it)."""
    found = []
    for name, dist in sorted((record.get("dists") or {}).items()):
        for requirement in dist.get("requires") or []:
            head = re.split(r"[\s;<>=!~\[(@]", requirement, maxsplit=1)[0]
            if head and re.sub(r"[-_.]+", "-", head).lower() == target and "extra ==" not in requirement:
                found.append("%s (%s)" % (name, requirement))
                break
    return found


class _PythonSubject(_Subject):
    def __init__(self, *args):
        super().__init__(*args)
        self.locks, self.lock_problems, self.declared, self.declared_problems = {}, {}, {}, {}
        for label in self.ok():
            record = self.records[label]
            self.locks[label], problem = locked_versions(record.get("lock"))
            if problem:
                self.lock_problems[label] = problem
            self.declared[label], problems = declared_requirements(record.get("declared"))
            if problems:
                self.declared_problems[label] = "; ".join(problems)

    def reason(self, key, labels):
        """Why a package differs: the dependency edges into it, and the locks' word on it."""
        parts = []
        for label in labels:
            record = self.records[label]
            dist = (record.get("dists") or {}).get(key)
            if dist is None:
                continue
            edges = _edges(record, key)
            if edges:
                parts.append("in %s required by %s" % (label, ", ".join(edges[:3])))
            elif dist.get("requested"):
                parts.append("in %s installed on request" % label)
        locked = {label: (self.locks.get(label) or {}).get(key) for label in labels if self.locks.get(label)}
        if len(locked) == len(labels) and len(labels) > 1:
            if len(set(locked.values())) > 1:
                parts.append(
                    "the lockfiles differ (%s): a deploy of the lock did not happen"
                    % by_value((label, value or "not locked") for label, value in locked.items())
                )
            else:
                parts.append("the lockfiles agree: only the installed set differs (pip was run by hand)")
        return (" Reason: %s." % "; ".join(parts)) if parts else ""


def _python_policy(subject):
    """Production policies: pre-release / local versions, editable / local-path / VCS installs."""
    findings = []
    production = subject.production(subject.ok())
    prerelease, direct = {}, {}
    for label in production:
        for name, dist in (subject.records[label].get("dists") or {}).items():
            parsed = version(dist.get("version"))
            if parsed is not None and (parsed.is_prerelease or parsed.local):
                prerelease.setdefault(name, {})[label] = dist["version"]
            kind = (dist.get("direct") or {}).get("kind")
            if kind in DIRECT_KINDS:
                direct.setdefault(name, {})[label] = "%s from %s" % (kind, dist["direct"].get("url") or "?")
    for name, hits in sorted(prerelease.items()):
        findings += subject.per_column(
            name,
            "policy",
            "deps.prerelease_production",
            "medium",
            hits,
            lambda where, name=name, hits=hits: (
                "%s runs a pre-release or local version of %s (%s)." % (join_names(where), name, by_value(hits.items()))
            ),
            lambda where, name=name: "Pin a final release of %s for %s." % (name, join_names(where)),
        )
    for name, hits in sorted(direct.items()):
        findings += subject.per_column(
            name,
            "policy",
            "deps.direct_install_production",
            "high",
            hits,
            lambda where, name=name, hits=hits: (
                "%s is %s on %s, not a released distribution (%s)."
                % (
                    name,
                    " / ".join(sorted({DIRECT_KINDS[h.split(" ")[0]] for h in hits.values()})),
                    join_names(where),
                    by_value(hits.items()),
                )
            ),
            lambda where, name=name: "Install %s from a built release on %s." % (name, join_names(where)),
        )
    return findings


def _python_chain(subject):
    """Declared → locked → installed, per column; and pip check's unmet requirements."""
    problems = {}

    def hit(key, check, label, text):
        problems.setdefault((key, check), {})[label] = text

    for label in subject.ok():
        record = subject.records[label]
        installed = _python_versions(record)
        declared = subject.declared.get(label) or {}
        lock = subject.locks.get(label)
        for name, requirement in declared.items():
            if name not in installed:
                hit(
                    name,
                    "deps.declared_not_installed",
                    label,
                    "declared %s, not installed" % (requirement["spec"] or "*"),
                )
            elif satisfies(installed[name], requirement["spec"]) is False:
                hit(
                    name,
                    "deps.pin_violated",
                    label,
                    "declared %s, installed %s" % (requirement["spec"], installed[name]),
                )
            if lock is not None and name in lock and satisfies(lock[name], requirement["spec"]) is False:
                hit(name, "deps.lock_unsatisfied", label, "declared %s, locked %s" % (requirement["spec"], lock[name]))
        if lock is not None:
            for name, pinned in lock.items():
                if (
                    name in installed
                    and version(pinned)
                    and version(installed[name])
                    and version(pinned) != version(installed[name])
                ):
                    hit(name, "deps.lock_mismatch", label, "locked %s, installed %s" % (pinned, installed[name]))
            if label in subject.context["production"]:
                for name in installed:
                    if name not in lock and name not in BOOTSTRAP and name not in declared:
                        hit(name, "deps.unlocked_installed", label, "installed %s, in no lock" % installed[name])
        python = record.get("python")
        for name, dist in (record.get("dists") or {}).items():
            for text in _unmet(dist.get("requires") or [], installed, python):
                hit(name, "deps.requirement_unmet", label, text)
    return _chain_findings(subject, problems)


CHAIN = {
    "deps.declared_not_installed": (
        "missing",
        "high",
        "is declared but not installed",
        "Install it (deploy the lock).",
    ),
    "deps.pin_violated": (
        "policy",
        "high",
        "is installed in a version its declaration excludes",
        "Install a version the declaration allows, or fix the pin.",
    ),
    "deps.lock_unsatisfied": (
        "policy",
        "medium",
        "is locked in a version its declaration excludes",
        "Re-lock (the lockfile does not satisfy the manifest).",
    ),
    "deps.lock_mismatch": (
        "changed",
        "medium",
        "is installed in another version than the lock says",
        "Install from the lock (pip install -r the lock / sync).",
    ),
    "deps.unlocked_installed": (
        "policy",
        "medium",
        "is installed in production but named by no lock",
        "Remove it, or add it to the manifest and re-lock.",
    ),
    "deps.requirement_unmet": (
        "policy",
        "high",
        "has unmet requirements (what pip check finds)",
        "Install the versions its requirements need.",
    ),
}


def _chain_findings(subject, problems):
    findings = []
    for (key, check), hits in sorted(problems.items()):
        kind, severity, what, recommendation = CHAIN[check]
        findings += subject.per_column(
            key,
            kind,
            check,
            severity,
            hits,
            lambda where, key=key, what=what, hits=hits: (
                "%s %s on %s (%s)." % (key, what, join_names(where), by_value(hits.items(), ": "))
            ),
            lambda where, recommendation=recommendation: recommendation,
        )
    return findings


def _unmet(requires, installed, python):
    """The requirements (no extra, marker true for this Python) that the installed set misses."""
    from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    unmet = []
    environment = {"extra": ""}
    if python and release(python):
        parts = release(python)
        environment["python_version"] = ".".join(map(str, parts[:2]))
        environment["python_full_version"] = ".".join(map(str, parts))
    for text in requires:
        try:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
        except (InvalidRequirement, InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            continue
        name = canonicalize_name(requirement.name)
        if name not in installed:
            unmet.append("needs %s, not installed" % text.split(";")[0].strip())
        elif satisfies(installed[name], str(requirement.specifier)) is False:
            unmet.append("needs %s, has %s" % (text.split(";")[0].strip(), installed[name]))
    return unmet


def _python_findings(subject):
    findings = _status_findings(subject, "environment")
    ok = subject.ok()
    findings += _limits(subject, ok)
    versions = {label: _python_versions(subject.records[label]) for label in ok}
    if len(ok) > 1:
        findings += _package_findings(subject, versions, ok, "Python package", subject.reason)
        pythons = {label: subject.records[label].get("python") or "unknown" for label in ok}
        if len(set(pythons.values())) > 1:
            findings.append(
                subject.finding(
                    "@python",
                    "changed",
                    "deps.runtime_changed",
                    severity_of_change(pythons[ok[0]], next(v for v in pythons.values() if v != pythons[ok[0]])),
                    pythons,
                    [label for label in ok if pythons[label] != pythons[ok[0]]],
                    "The Python version of %s differs: %s." % (subject.name, by_value(pythons.items())),
                    "Build every environment on the same Python release.",
                )
            )
    findings += _python_policy(subject)
    findings += _python_chain(subject)
    for label, problem in sorted({**subject.lock_problems, **subject.declared_problems}.items()):
        findings += subject.per_column(
            "@declared",
            "unknown",
            "deps.declared_unreadable",
            "medium",
            {label: problem},
            lambda where: "A declared or lock file of %s could not be used on %s." % (subject.name, join_names(where)),
            lambda where: "Fix the file (or its path in drift_python_envs) on %s." % join_names(where),
        )
    return findings


def _truncated(subject, hits, recommendation):
    """The finding for columns whose package list was cut at a limit: the rest was not compared."""
    return subject.per_column(
        "@truncated",
        "unknown",
        "deps.truncated",
        "medium",
        hits,
        lambda where: (
            "The package list of %s was cut at the limit on %s; the rest was not compared."
            % (subject.name, join_names(where))
        ),
        lambda where: recommendation % join_names(where),
    )


def _limits(subject, ok):
    findings = []
    truncated = {
        label: "cut at %d entries" % subject.records[label].get("count", 0)
        for label in ok
        if subject.records[label].get("truncated")
    }
    findings += _truncated(subject, truncated, "Raise drift_deps_max_dists for %s.")
    broken = {
        label: ", ".join(subject.records[label]["broken"][:10]) for label in ok if subject.records[label].get("broken")
    }
    findings += subject.per_column(
        "@broken",
        "policy",
        "deps.broken_metadata",
        "medium",
        broken,
        lambda where: (
            "%s holds package metadata that cannot be read (no METADATA, no Name or Version) on %s."
            % (subject.name, join_names(where))
        ),
        lambda where: "Reinstall the packages listed on %s." % join_names(where),
    )
    return findings


# ------------------------------------------------------------------ containers


def _container_findings(subject):
    findings = _status_findings(subject, "stack")
    ok = subject.ok()
    services = {label: subject.records[label].get("services") or {} for label in ok}
    no_python = {
        label: ", ".join(
            sorted(
                name
                for name, record in services[label].items()
                if (record.get("python") or {}).get("status") == "no_python"
            )
        )
        for label in ok
    }
    no_python = {label: text for label, text in no_python.items() if text}
    findings += subject.per_column(
        "@no_python",
        # A fact about the services, not a failure to collect: never counted as "could not be collected".
        "policy",
        "deps.container_no_python",
        "info",
        no_python,
        lambda where: (
            "Services of %s run without python3, so their Python packages were not compared: %s."
            % (subject.name, by_value(no_python.items(), ": "))
        ),
        lambda where: "Nothing to do if these services run no Python.",
    )
    failed = {}
    for label in ok:
        for name, record in sorted(services[label].items()):
            status = (record.get("python") or {}).get("status")
            if status not in ("ok", "no_python"):
                failed.setdefault(name, {})[label] = "%s: %s" % (
                    STATUS_TEXT.get(status, status),
                    record["python"].get("reason"),
                )
    for name, hits in sorted(failed.items()):
        findings += subject.per_column(
            name,
            "unknown",
            "deps.container_unreadable",
            "high",
            hits,
            lambda where, name=name, hits=hits: (
                "The Python packages of service %s could not be read on %s (%s)."
                % (name, join_names(where), by_value(hits.items(), " → "))
            ),
            lambda where: "Check the container on %s and audit again." % join_names(where),
        )
    findings += _platform_findings(subject, ok, services)
    if len(ok) > 1:
        packages = {
            label: {
                "%s/%s" % (service, name): dist.get("version") or "(unknown version)"
                for service, record in services[label].items()
                if (record.get("python") or {}).get("status") == "ok"
                for name, dist in (record["python"].get("dists") or {}).items()
            }
            for label in ok
        }
        readable = {
            service
            for label in ok
            for service, record in services[label].items()
            if (record.get("python") or {}).get("status") == "ok"
        }
        shared = {service for service in readable if all(service in services[label] for label in ok)}
        packages = {
            label: {key: value for key, value in found.items() if key.split("/")[0] in shared}
            for label, found in packages.items()
        }
        findings += _package_findings(subject, packages, ok, "Python package (container)")
        for part, ecosystem in (("os", "OS package (container)"), ("node", "Node package (container)")):
            findings += _package_findings(subject, _container_part(services, ok, part), ok, ecosystem)
    findings += _container_node_chain(subject, ok, services)
    return findings


def _container_part(services, ok, part):
    """{label: {key: version}} of the services that every column read: OS packages keyed
    ``service/os:package``, top-level installed Node packages ``service/node project:package``."""
    found = {label: {} for label in ok}
    for service in sorted(set.intersection(*(set(services[label]) for label in ok))):
        if part == "os":
            records = [services[label][service].get("os") or {} for label in ok]
            if all(record.get("status") == "ok" for record in records):
                for label, record in zip(ok, records, strict=True):
                    found[label].update(
                        ("%s/os:%s" % (service, name), value) for name, value in (record.get("packages") or {}).items()
                    )
            continue
        projects = [services[label][service].get("node") or {} for label in ok]
        for project in sorted(set.intersection(*(set(record) for record in projects))):
            records = [record[project] for record in projects]
            if all(record.get("status") == "ok" for record in records):
                for label, record in zip(ok, records, strict=True):
                    found[label].update(
                        ("%s/node %s:%s" % (service, project, name), value)
                        for name, value in (record.get("installed") or {}).items()
                    )
    return found


def _container_node_chain(subject, ok, services):
    """The declared → locked → installed chain of the Node projects read in each container."""
    problems = {}
    for label in ok:
        production = label in subject.context["production"]
        for service, record in sorted(services[label].items()):
            for project, facts in sorted((record.get("node") or {}).items()):
                if facts.get("status") != "ok":
                    continue
                for name, check, text in _node_chain(facts, production):
                    problems.setdefault(("%s/node %s:%s" % (service, project, name), check), {})[label] = text
    return _chain_findings(subject, problems)


def _platform_findings(subject, ok, services):
    findings = []
    for service in sorted({name for label in ok for name in services[label]}):
        present = [label for label in ok if service in services[label]]
        if len(present) < 2:
            continue
        for field, check, severity, what in (
            ("platform", "deps.image_platform_changed", "high", "platform (architecture)"),
            ("digest", "deps.image_digest_changed", "medium", "repo digest"),
        ):
            values = {label: services[label][service].get(field) for label in present}
            images = {services[label][service].get("image") for label in present}
            if None in values.values() or len(set(values.values())) < 2 or (field == "digest" and len(images) > 1):
                continue
            findings.append(
                subject.finding(
                    "%s/@image.%s" % (service, field),
                    "changed",
                    check,
                    severity,
                    values,
                    [label for label in present if values[label] != values[present[0]]],
                    "Service %s runs an image of another %s: %s." % (service, what, by_value(values.items())),
                    "Build and pull one image for every environment (e.g. a multi-arch manifest pinned by digest).",
                )
            )
    return findings


# ------------------------------------------------------------------ Node, OS, runtimes


def _node_findings(subject):
    findings = _status_findings(subject, "project")
    ok = subject.ok()
    problems = {
        label: "; ".join(subject.records[label]["problems"]) for label in ok if subject.records[label].get("problems")
    }
    findings += subject.per_column(
        "@files",
        "unknown",
        "deps.declared_unreadable",
        "medium",
        problems,
        lambda where: (
            "A file of Node project %s could not be used on %s (%s)."
            % (subject.name, join_names(where), by_value(problems.items(), ": "))
        ),
        lambda where: "Fix package.json / the lockfile on %s." % join_names(where),
    )
    findings += _node_runtime_findings(subject, ok)
    installed = {label: subject.records[label].get("installed") or {} for label in ok}
    locked = {label: {k: v["version"] for k, v in (subject.records[label].get("locked") or {}).items()} for label in ok}
    if len(ok) > 1:
        findings += _package_findings(subject, installed, ok, "Node package")
        with_lock = [label for label in ok if subject.records[label].get("locked") is not None]
        if len(with_lock) > 1:
            for finding in _package_findings(
                subject, {label: locked[label] for label in with_lock}, with_lock, "Locked Node package"
            ):
                finding["key"] = "lock: " + finding["key"]
                finding["check"] = finding["check"].replace("deps.", "deps.lock_", 1)
                findings.append(finding)
    problems = {}
    for label in ok:
        production = label in subject.context["production"]
        for name, check, text in _node_chain(subject.records[label], production):
            problems.setdefault((name, check), {})[label] = text
    findings += _chain_findings(subject, problems)
    return findings


def node_runtime_text(record):
    """A Node project's declared Node version as shown: "20.11.1 (.nvmrc)", or None."""
    runtime = record.get("runtime")
    return "%s (%s)" % (runtime["version"], runtime["source"]) if runtime else None


def _node_runtime_findings(subject, ok):
    """The Node version the project declares (.nvmrc, .node-version, engines.node), across columns."""
    declared = {label: (subject.records[label].get("runtime") or {}).get("version") for label in ok}
    present = [label for label in ok if declared[label] is not None]
    if len(present) < 2 or len({declared[label] for label in present}) < 2:
        return []
    values = {label: node_runtime_text(subject.records[label]) or "not declared" for label in ok}
    where = [label for label in present if declared[label] != declared[present[0]]]
    return [
        subject.finding(
            "@node",
            "changed",
            "deps.runtime_changed",
            severity_of_change(declared[present[0]], declared[where[0]]),
            values,
            where,
            "The Node version declared by %s differs: %s." % (subject.name, by_value(values.items())),
            "Run every environment on one Node release (one .nvmrc / engines.node for all).",
        )
    ]


def _node_chain(record, production):
    """[(package, check, text)] of one Node project: a locked or installed version outside the
    range package.json declares (npm's semver), an installed version that is not the locked one,
    and (in production) an installed package no lock names."""
    found = []
    installed = record.get("installed") or {}
    locked = record.get("locked")
    top = {key: value["version"] for key, value in (locked or {}).items() if " > " not in key}
    for name, declaration in sorted((record.get("declared") or {}).items()):
        wanted = declaration.get("range")
        if name in top and satisfies_range(top[name], wanted) is False:
            found.append((name, "deps.lock_unsatisfied", "declared %s, locked %s" % (wanted, top[name])))
        if name in installed and satisfies_range(installed[name], wanted) is False:
            found.append((name, "deps.pin_violated", "declared %s, installed %s" % (wanted, installed[name])))
    if locked is None:
        return found
    for name, pinned in sorted(top.items()):
        if name in installed and installed[name] != pinned:
            found.append((name, "deps.lock_mismatch", "locked %s, installed %s" % (pinned, installed[name])))
    if production:
        for name in sorted(installed):
            if name not in top:
                found.append((name, "deps.unlocked_installed", "installed %s, in no lock" % installed[name]))
    return found


def _os_findings(subject):
    findings = _status_findings(subject, "os", bad_kind="unknown")
    ok = subject.ok()
    packages = {label: subject.records[label].get("packages") or {} for label in ok}
    truncated = {label: "cut at the limit" for label in ok if subject.records[label].get("truncated")}
    findings += _truncated(subject, truncated, "Nothing to do on %s, or audit its OS packages with a tool made for it.")
    if len(ok) > 1:
        findings += _package_findings(subject, packages, ok, "OS package")
    return findings


def _runtime_findings(subject):
    ok = subject.ok()
    findings = []
    if len(ok) < 2:
        return findings
    for key in RUNTIME_KEYS:
        values = {label: subject.records[label].get(key) for label in ok}
        present = [label for label in ok if values[label] is not None]
        if len(present) < 2 or len({values[label] for label in present}) < 2:
            continue
        where = [label for label in present if values[label] != values[present[0]]]
        severity = {"os": "medium", "node": severity_of_change(values[present[0]], values[where[0]])}.get(key, "low")
        findings.append(
            subject.finding(
                key,
                "changed",
                "deps.runtime_changed",
                severity,
                values,
                where,
                "Runtime %s differs: %s."
                % (key.replace("_", " "), by_value((label, values[label]) for label in present)),
                "Run the same %s release in every environment, or record the difference as expected."
                % key.replace("_", " "),
            )
        )
    return findings


def diff(columns, cells, context):
    """All deps findings for the given columns; context: {"baseline", "production": set of labels}."""
    views = {label: _subject_view(cells.get(label)) for label in columns}
    names = sorted({name for view in views.values() if view and not is_unknown(view) for name in view["subjects"]})
    findings = []
    for name in names:
        if name.startswith("python "):
            findings += _python_findings(_PythonSubject(name, "subjects", columns, views, context))
        elif name.startswith("containers "):
            findings += _container_findings(_Subject(name, "subjects", columns, views, context))
        elif name.startswith("node "):
            findings += _node_findings(_Subject(name, "subjects", columns, views, context))
        elif name == OS_SUBJECT:
            findings += _os_findings(_Subject(name, "subjects", columns, views, context))
        elif name == RUNTIMES_SUBJECT:
            findings += _runtime_findings(_Subject(name, "subjects", columns, views, context))
    return findings


# ------------------------------------------------------------------ the report's tables

# A package × environment table shows the packages that differ, at most this many rows: a big set
# folds (its equal rows are counted, not listed).
MAX_TABLE_ROWS = 200
ABSENT = "—"
NOT_READ = "(not read)"


def _container_packages(services, part):
    """{key: version} of one column's containers for one ecosystem: Python ``service/package``,
    OS ``service/os:package``, Node ``service/node project:package``."""
    found = {}
    for service, record in services.items():
        if part == "python":
            facts = record.get("python") or {}
            if facts.get("status") == "ok":
                found.update(
                    ("%s/%s" % (service, name), dist.get("version") or "(unknown version)")
                    for name, dist in (facts.get("dists") or {}).items()
                )
        elif part == "os":
            facts = record.get("os") or {}
            if facts.get("status") == "ok":
                found.update(
                    ("%s/os:%s" % (service, name), value) for name, value in (facts.get("packages") or {}).items()
                )
        else:
            for project, facts in (record.get("node") or {}).items():
                if facts.get("status") == "ok":
                    found.update(
                        ("%s/node %s:%s" % (service, project, name), value)
                        for name, value in (facts.get("installed") or {}).items()
                    )
    return found


def package_table(title, columns, packages):
    """A package × environment table of the packages that differ between the columns read
    (packages {label: {package: version}}; a column missing from it was not read), then a row
    counting the packages the same everywhere; at most MAX_TABLE_ROWS differing rows, then a row
    saying how many more. None when no column was read."""
    read = [label for label in columns if label in packages]
    if not read:
        return None
    differing, same = [], 0
    for key in union_keys(packages[label] for label in read):
        values = [packages[label].get(key) for label in read]
        if len(read) > 1 and len(set(values)) == 1:
            same += 1
            continue
        differing.append(
            [str(key)]
            + [
                (ABSENT if packages[label].get(key) is None else str(packages[label][key]))
                if label in packages
                else NOT_READ
                for label in columns
            ]
        )
    if not differing and not same:
        return None
    rows = differing[:MAX_TABLE_ROWS]
    if len(differing) > MAX_TABLE_ROWS:
        rows.append(["… %d more differing packages" % (len(differing) - MAX_TABLE_ROWS)] + [""] * len(columns))
    if len(read) > 1:
        rows.append(["(%d packages the same in %s)" % (same, join_names(read))] + [""] * len(columns))
    return {"title": title, "header": ["package"] + list(columns), "rows": rows}


def _ok_records(columns, views, name):
    """{label: record} of the columns whose subject `name` was read (status ok)."""
    found = {}
    for label in columns:
        record = _subjects_of(views.get(label)).get(name)
        if isinstance(record, dict) and record.get("status", "ok") == "ok":
            found[label] = record
    return found


def _subject_tables(name, columns, records):
    if name.startswith("python "):
        return [package_table("%s: packages" % name, columns, {k: _python_versions(r) for k, r in records.items()})]
    if name.startswith("node "):
        return [
            package_table("%s: packages" % name, columns, {k: r.get("installed") or {} for k, r in records.items()})
        ]
    if name == OS_SUBJECT:
        return [package_table(name, columns, {k: r.get("packages") or {} for k, r in records.items()})]
    if name.startswith("containers "):
        return [
            package_table(
                "%s: %s" % (name, what),
                columns,
                {k: _container_packages(r.get("services") or {}, part) for k, r in records.items()},
            )
            for part, what in (("python", "Python packages"), ("os", "OS packages"), ("node", "Node packages"))
        ]
    return []


def _runtime_rows(view):
    """{runtime: text} of one column: the host's runtimes, each Python environment's version and
    each Node project's declared Node version."""
    subjects = view["subjects"] if view and not is_unknown(view) else {}
    rows = {key: value for key, value in (subjects.get(RUNTIMES_SUBJECT) or {}).items() if key in RUNTIME_KEYS}
    for name, record in subjects.items():
        if record.get("status", "ok") != "ok":
            continue
        if name.startswith("python "):
            rows[name] = record.get("python")
        elif name.startswith("node "):
            rows[name] = node_runtime_text(record)
    return rows


def _runtime_table(columns, views):
    read = {label: _runtime_rows(views[label]) for label in columns if RUNTIMES_SUBJECT in _subjects_of(views[label])}
    keys = [key for key in RUNTIME_KEYS if any(rows.get(key) is not None for rows in read.values())]
    keys += sorted({key for rows in read.values() for key in rows if key not in RUNTIME_KEYS})
    if not keys:
        return None
    rows = [
        [key.replace("_", " ")]
        + [
            (str(read[label][key]) if read[label].get(key) is not None else ABSENT) if label in read else NOT_READ
            for label in columns
        ]
        for key in keys
    ]
    return {"title": RUNTIMES_SUBJECT, "header": ["runtime"] + list(columns), "rows": rows}


def _subjects_of(view):
    return view["subjects"] if view and not is_unknown(view) else {}


def tables(columns, cells, context):
    """The report's tables, one per ecosystem of each subject (plain text cells: the report model
    escapes them): package × environment, only the packages that differ, and a count of the rest;
    and the runtimes side by side."""
    views = {label: _subject_view(cells.get(label)) for label in columns}
    names = sorted({name for view in views.values() for name in _subjects_of(view)})
    found = []
    for name in names:
        if name == RUNTIMES_SUBJECT:
            found.append(_runtime_table(columns, views))
        else:
            found += _subject_tables(name, columns, _ok_records(columns, views, name))
    found = [table for table in found if table and table["rows"]]
    return {"tables": found, "charts": []}
