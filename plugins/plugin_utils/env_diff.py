"""Diff rules of the env area: env files compared across environments, plus production policies.

Input per column: the host's env facts ({"files": {name: FILE}}, see module_utils/env_collect.py),
an unknown marker (could not collect), or None (the area is not configured on that host).
Pure Python; no Ansible imports.
"""

import re
from urllib.parse import urlsplit

from ansible_collections.envparity.audit.plugins.module_utils.redact import LENGTH_CLASSES
from ansible_collections.envparity.audit.plugins.plugin_utils.compare import compare_key, union_keys
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    FILE_STATUS_TEXT,
    SubjectColumns,
    by_value,
    join_names,
    subject_names,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.object_type import ObjectType, presence_finding
from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import (
    record_cells,
    reused_secret,
)

AREA = "env"
# A key that one environment's file lacks.
ENV_KEY = ObjectType(
    noun="key",
    check="env.key",
    missing="medium",
    extra="low",
    messages={
        "missing": "%(object)s is set in %(present)s but missing in %(where)s.",
        "extra": "%(object)s is set in %(where)s but not in the baseline %(baseline)s.",
    },
    advice={
        "missing": "Add %(object)s to env file %(file)s on %(where)s before deploying code that reads it, "
        "or record the difference as expected.",
        "extra": "Add %(object)s to %(baseline)s too, or remove it where it is no longer used.",
    },
)
FILE_KEY = "@file"
MODE_KEY = "@file.mode"
SYNTAX_KEY = "@syntax"
SHORT_SECRET_CHARS = 16
# Hosts report length classes, not lengths: the classes wholly below SHORT_SECRET_CHARS.
SHORT_SECRET_CLASSES = frozenset(label for label, above in LENGTH_CLASSES if above <= SHORT_SECRET_CHARS)
DEBUG_NAME = re.compile(r"(^|_)DEBUG($|_)")
TRUTHY = frozenset(("1", "true", "yes", "on", "y", "t"))
DEBUG_LEVELS = frozenset(("debug", "trace", "verbose", "all", "notset"))
LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1", "0.0.0.0"))
STATUS_TEXT = {
    **FILE_STATUS_TEXT,
    "outside_project": "symlink leads outside the project, not read",
}


def subjects(request):
    """Logical env file names a host is configured with."""
    return sorted({item["name"] for item in (request or {}).get("files") or []})


def _lines(lines):
    return "line" + ("s " if len(lines) > 1 else " ") + ", ".join(str(n) for n in sorted(lines))


class _Subject(SubjectColumns):
    """One logical env file across the columns."""

    AREA = AREA

    def __init__(self, name, columns, cells, context):
        super().__init__(name, "files", columns, cells, context)

    def readable(self):
        return [label for label in self.columns if self.records.get(label, {}).get("status") == "ok"]


def _file_status_findings(subject):
    broken = [
        label for label in subject.columns if label in subject.records and subject.records[label]["status"] != "ok"
    ]
    if not broken:
        return []
    values = {label: STATUS_TEXT.get(subject.records[label]["status"], "ok") for label in subject.records}
    values.update({label: "ok" for label in subject.readable()})
    missing_only = all(subject.records[label]["status"] == "missing" for label in broken)
    reasons = "; ".join(
        "%s: %s" % (label, subject.records[label].get("reason") or STATUS_TEXT[subject.records[label]["status"]])
        for label in broken
    )
    return [
        subject.finding(
            FILE_KEY,
            "missing" if missing_only else "unknown",
            "env.file_status",
            "high",
            values,
            broken,
            "Env file %s could not be read on %s (%s)." % (subject.name, join_names(broken), reasons),
            "Check the path in drift_env_files and the file itself on %s; its keys were not compared."
            % join_names(broken),
        )
    ]


def _key_findings(subject):
    """Missing, extra and changed keys across the readable columns (keyed set algebra)."""
    readable = subject.readable()
    if len(readable) < 2:
        return []
    baseline = readable[0]
    keys = {label: subject.records[label]["keys"] for label in readable}
    findings = []
    for key in union_keys(keys.values()):
        records = {label: keys[label].get(key) for label in readable}
        outcome = compare_key(records, readable, same=lambda record, base: record["fp"] == base["fp"])
        if outcome is None:
            continue
        kind, about = outcome
        values = record_cells(records, readable)
        if kind in ("missing", "extra"):
            findings.append(
                presence_finding(
                    subject,
                    ENV_KEY,
                    key,
                    outcome,
                    objects=records,
                    labels=readable,
                    values=values,
                    severity="high" if kind == "missing" and subject.production(about) else None,
                    file=subject.name,
                )
            )
            continue
        differing = about
        if any(records[label]["secret"] for label in readable):
            findings.append(
                subject.finding(
                    key,
                    "changed",
                    "env.secret_changed",
                    "info",
                    values,
                    differing,
                    "%s holds a different secret in %s than in %s (compared by fingerprint only)."
                    % (key, join_names(differing), baseline),
                    "Nothing to do if each environment must have its own secret; "
                    "otherwise align it through your secret store.",
                )
            )
        else:
            findings.append(
                subject.finding(
                    key,
                    "changed",
                    "env.value_changed",
                    "low",
                    values,
                    differing,
                    "%s differs: %s." % (key, by_value((label, values[label]) for label in readable)),
                    "Align %s with %s, or record the difference as expected in the rules file." % (key, baseline),
                )
            )
    return findings


def _per_key_policy(subject, labels, check, severity_for, predicate, message, recommendation):
    """One finding per key for which predicate(record) holds in some of the given columns."""
    hits = {}
    for label in labels:
        for key, record in subject.records[label]["keys"].items():
            if predicate(key, record):
                hits.setdefault(key, []).append(label)
    findings = []
    for key in sorted(hits):
        values = record_cells(
            {label: subject.records[label]["keys"].get(key) for label in subject.readable()}, subject.readable()
        )
        findings.append(
            subject.finding(
                key,
                "policy",
                check,
                severity_for(hits[key]),
                values,
                hits[key],
                message % {"key": key, "where": join_names(hits[key])},
                recommendation % {"key": key, "where": join_names(hits[key])},
            )
        )
    return findings


def _url_host_scheme(record):
    text = record["display"]
    if not text or "://" not in text:
        return None
    try:
        parts = urlsplit(text.strip())
        return (parts.hostname or "").lower(), parts.scheme.lower()
    except ValueError:
        return None


def _is_debug_flag(key, record):
    return (
        bool(DEBUG_NAME.search(key.upper()))
        and not record["secret"]
        and (record["display"] or "").strip().lower() in TRUTHY
    )


def _is_debug_level(key, record):
    name = key.upper().replace("-", "_")
    return ("LOG_LEVEL" in name or "LOGLEVEL" in name) and (record["display"] or "").strip().lower() in DEBUG_LEVELS


def _is_local_url(key, record):
    parsed = _url_host_scheme(record)
    return parsed is not None and parsed[0] in LOCAL_HOSTS


def _is_plain_http(key, record):
    parsed = _url_host_scheme(record)
    return parsed is not None and parsed[1] in ("http", "ws") and parsed[0] not in LOCAL_HOSTS


def _is_empty_secret(key, record):
    return record["secret"] and record["empty"]


def _is_short_secret(key, record):
    return record["secret"] and record["length_class"] in SHORT_SECRET_CLASSES


def _policy_findings(subject):
    readable = subject.readable()
    production = subject.production(readable)

    def prod_high_else_low(labels):
        return "high" if subject.production(labels) else "low"

    def prod_medium_else_low(labels):
        return "medium" if subject.production(labels) else "low"

    findings = []
    findings += _per_key_policy(
        subject,
        production,
        "env.debug_enabled",
        lambda labels: "high",
        _is_debug_flag,
        "%(key)s is true in production (%(where)s).",
        "Set %(key)s=false in production: debug modes leak stack traces and internals.",
    )
    findings += _per_key_policy(
        subject,
        production,
        "env.debug_log_level",
        lambda labels: "medium",
        _is_debug_level,
        "%(key)s is a debug level in production (%(where)s).",
        "Use INFO or WARNING for %(key)s in production: debug logs are verbose and may record sensitive data.",
    )
    findings += _per_key_policy(
        subject,
        production,
        "env.localhost_url",
        lambda labels: "high",
        _is_local_url,
        "%(key)s points at localhost in production (%(where)s).",
        "Set %(key)s to the production address; a localhost URL (e.g. an OAuth redirect) breaks in production.",
    )
    findings += _per_key_policy(
        subject,
        production,
        "env.insecure_url",
        lambda labels: "medium",
        _is_plain_http,
        "%(key)s uses plain http in production (%(where)s).",
        "Use https for %(key)s in production.",
    )
    findings += _per_key_policy(
        subject,
        readable,
        "env.empty_secret",
        prod_high_else_low,
        _is_empty_secret,
        "%(key)s is an empty secret in %(where)s.",
        "Set a strong random value for %(key)s in %(where)s: an empty secret often disables a check.",
    )
    findings += _per_key_policy(
        subject,
        readable,
        "env.short_secret",
        prod_medium_else_low,
        _is_short_secret,
        "%(key)s is a very short secret (under " + str(SHORT_SECRET_CHARS) + " characters) in %(where)s.",
        "Replace %(key)s in %(where)s with at least 32 random characters.",
    )
    findings += _reuse_findings(subject, readable)
    findings += _file_findings(subject, readable, production)
    return findings


def _reuse_findings(subject, readable):
    """The same secret in a production and a non-production column."""
    production = set(subject.production(readable))
    keys = set().union(*(subject.records[label]["keys"] for label in readable)) if readable else set()
    findings = []
    for key in sorted(keys):
        records = {label: subject.records[label]["keys"].get(key) for label in readable}
        labels = reused_secret(records, production)
        if labels:
            findings.append(
                subject.finding(
                    key,
                    "policy",
                    "env.secret_reused",
                    "high",
                    record_cells(records, readable),
                    labels,
                    "%s holds the same secret in %s." % (key, join_names(labels)),
                    "Rotate %s in production: a secret shared with %s is only as safe as the least "
                    "protected environment." % (key, join_names(sorted(set(labels) - production))),
                )
            )
    return findings


def _file_findings(subject, readable, production):
    findings = []
    exposed = [label for label in production if int(subject.records[label]["mode"] or "0", 8) & 0o044]
    if exposed:
        others = [label for label in exposed if int(subject.records[label]["mode"], 8) & 0o004]
        values = {label: subject.records[label]["mode"] for label in readable}
        findings.append(
            subject.finding(
                MODE_KEY,
                "policy",
                "env.file_permissions",
                "high" if others else "medium",
                values,
                exposed,
                "Env file %s is readable by %s in production (%s)."
                % (subject.name, "everyone" if others else "its group", join_names(exposed)),
                "chmod 600 %s on %s (owner %s)."
                % (subject.records[exposed[0]]["path"], join_names(exposed), subject.records[exposed[0]]["owner"]),
            )
        )
    findings += _template_findings(subject, readable)
    dupes = [label for label in readable if subject.records[label]["duplicates"]]
    dup_keys = sorted(set().union(*(subject.records[label]["duplicates"] for label in dupes))) if dupes else []
    for key in dup_keys:
        where = [label for label in dupes if key in subject.records[label]["duplicates"]]
        values = {
            label: (_lines(subject.records[label]["duplicates"][key]) if label in where else None) for label in readable
        }
        findings.append(
            subject.finding(
                key,
                "policy",
                "env.duplicate_key",
                "medium",
                values,
                where,
                "%s is defined more than once in env file %s on %s; the last definition wins."
                % (key, subject.name, join_names(where)),
                "Keep a single definition of %s in %s." % (key, subject.records[where[0]]["path"]),
            )
        )
    broken = [label for label in readable if subject.records[label]["errors"]]
    if broken:
        values = {label: (_lines(subject.records[label]["errors"]) if label in broken else None) for label in readable}
        findings.append(
            subject.finding(
                SYNTAX_KEY,
                "policy",
                "env.unparseable_line",
                "medium",
                values,
                broken,
                "Env file %s has lines that cannot be parsed or have no '=' on %s (content not shown)."
                % (subject.name, join_names(broken)),
                "Fix or remove those lines (a value pasted alone, ':' for '='): loaders stop there, "
                "skip them, or set nothing for a name without '='.",
            )
        )
    return findings


def _template_findings(subject, readable):
    findings = []
    missing = {}
    for label in readable:
        template = subject.records[label].get("template")
        if not template:
            continue
        if template["status"] != "ok":
            findings.append(
                subject.finding(
                    "@template",
                    "unknown",
                    "env.template_status",
                    "medium",
                    {label: STATUS_TEXT.get(template["status"], template["status"])},
                    [label],
                    "Template %s of env file %s could not be read on %s." % (template["path"], subject.name, label),
                    "Fix the template path in drift_env_files for %s." % label,
                )
            )
            continue
        for key in template["keys"]:
            if key not in subject.records[label]["keys"]:
                missing.setdefault(key, []).append(label)
    for key in sorted(missing):
        labels = missing[key]
        values = {label: ("missing (template requires it)" if label in labels else None) for label in readable}
        findings.append(
            subject.finding(
                key,
                "missing",
                "env.template_missing",
                "high",
                values,
                labels,
                "%s is required by the template but missing from env file %s on %s."
                % (key, subject.name, join_names(labels)),
                "Add %s to %s on %s." % (key, subject.records[labels[0]]["path"], join_names(labels)),
            )
        )
    return findings


def diff(columns, cells, context):
    """All env findings for the given columns; context: {"baseline", "production": set of labels}."""
    findings = []
    for name in subject_names(cells, "files"):
        subject = _Subject(name, columns, cells, context)
        findings += _file_status_findings(subject)
        findings += _key_findings(subject)
        findings += _policy_findings(subject)
    return findings
