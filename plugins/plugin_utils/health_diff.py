"""Diff rules of the health area: host facts, containers and log error templates across
environments, production policies on measurements, and the area's tables (resources, memory use
vs limit, error rates) for the report.

Input per column: the host's health facts ({"host": {"host": HOST}, "stacks": {name: STACK},
"log_files": {name: LOG}, "settings": {...}}, see module_utils/health_collect.py), an unknown
marker, or None (not configured). Volatile figures (load, free memory, uptime, CPU use) are never
compared as drift: they feed the policies, with the thresholds each host's inventory sets
(drift_health_thresholds), and the tables. A fact a platform cannot give (None) is left out of
every comparison, never a difference. Pure Python; no Ansible imports.
"""

import fnmatch
import re
import time

from ansible_collections.envparity.audit.plugins.module_utils.health_collect import DEFAULT_THRESHOLDS
from ansible_collections.envparity.audit.plugins.plugin_utils.compare import (
    always_same,
    compare_key,
    record_compared,
    union_keys,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SubjectColumns,
    by_value,
    is_unknown,
    join_names,
    subject_names,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.tolerances import tolerance

AREA = "health"
HOST = "host"
STACK_PREFIX = "stack:"
LOG_PREFIX = "log:"
# Host facts compared N-way (stable ones only), with the severity of a difference.
COMPARED_HOST_FACTS = (
    ("os", "low", "operating system"),
    ("kernel", "low", "kernel"),
    ("architecture", "medium", "architecture"),
    ("time_zone", "medium", "time zone"),
    ("nofile_soft", "low", "open-file limit (soft)"),
)
_CHART_LABEL = re.compile(r"[^A-Za-z0-9_.-]")
# Container states whose exit code is the last run's (a running container's is 0 and says nothing).
ENDED_STATES = ("exited", "dead", "restarting")
# Errors per hour are compared only from this many seconds of logs (a container up for 10 s with one
# error is no rate).
MIN_RATE_SECONDS = 60


def subjects(request):
    """The host, then each configured stack and log file (prefixed: a stack and a log file may share a name)."""
    request = request or {}
    names = [HOST]
    names += sorted(STACK_PREFIX + item["name"] for item in request.get("stacks") or [])
    names += sorted(LOG_PREFIX + item["name"] for item in request.get("log_files") or [])
    return names


class _Subject(SubjectColumns):
    AREA = AREA

    def __init__(self, name, section, prefix, columns, cells, context):
        super().__init__(name, section, columns, cells, context)
        self.name = prefix + name
        self.settings = {
            label: (cells[label].get("settings") or {}) for label in self.records if not is_unknown(cells[label])
        }

    def ok(self):
        return [label for label in self.columns if self.records.get(label, {}).get("status") == "ok"]

    def threshold(self, label, name):
        """The rules file's tolerance for this subject and host, else the host's threshold (its
        inventory's), else the documented default."""
        value = (self.settings.get(label, {}).get("thresholds") or {}).get(name)
        return tolerance(
            self.context, AREA, self.name, label, name, DEFAULT_THRESHOLDS[name] if value is None else value
        )

    def per_host(self, key, check, severity, hits, message, recommendation):
        """A policy finding about the columns in hits ({label: shown value}); the values are
        measurements (use, load, counts), so their noise never makes it "changed" from run to run."""
        where = sorted(hits, key=self.columns.index)
        return self.finding(
            key, "policy", check, severity, hits, where, message % join_names(where), recommendation, measured=True
        )


def _not_read(subject, key, records, what):
    """Parts that could not be read in some columns: unknown, never "same"."""
    broken = {label: record for label, record in records.items() if (record or {}).get("status") != "ok"}
    if not broken:
        return []
    values = {label: "ok" for label in records if label not in broken}
    values.update(
        {label: {"unknown": record.get("reason") or record.get("status")} for label, record in broken.items()}
    )
    reasons = by_value(
        ((label, record.get("reason") or record.get("status")) for label, record in broken.items()), ": "
    )
    where = sorted(broken, key=subject.columns.index)
    return [
        subject.finding(
            key,
            "unknown",
            "health.not_read",
            "medium",
            values,
            where,
            "%s could not be read on %s (%s); it was not compared there." % (what, join_names(where), reasons),
            "Make it readable by the audit user (or fix its path), then audit again.",
        )
    ]


# ---------------------------------------------------------------- the host


def _shown(value):
    if isinstance(value, dict):
        return value.get("pretty_name") or " ".join(str(v) for v in value.values() if v)
    return str(value)


def _host_fact_findings(host, ok):
    findings = []
    for fact, severity, what in COMPARED_HOST_FACTS:
        # A fact a platform cannot give is left out, never a difference.
        have = [label for label in ok if host.records[label].get(fact) is not None]
        if len(have) < 2 or have[0] != ok[0]:
            continue
        records = {label: _shown(host.records[label][fact]) for label in have}
        record_compared(host.context, host.name, fact, records)
        found = compare_key(records, have)
        if not found:
            continue
        _, where = found
        findings.append(
            host.finding(
                fact,
                "changed",
                "health.host_changed",
                severity,
                records,
                where,
                "The %s differs: %s." % (what, by_value(records.items())),
                "Align the %s of %s with %s, or record the difference as expected in the rules file."
                % (what, join_names(where), have[0]),
            )
        )
    return findings


def _ratio_percent(used, total):
    return round(100.0 * used / total, 1) if total else None


def _host_policy_findings(host, ok):
    findings = []
    production = host.production(ok)
    disk, inodes, swap, load, clock, units = {}, {}, {}, {}, {}, {}
    for label in production:
        record = host.records[label]
        for name, fs in sorted((record.get("filesystems") or {}).items()):
            if fs.get("status") != "ok":
                continue
            if (fs.get("used_percent") or 0) >= host.threshold(label, "disk_percent"):
                disk.setdefault(name, {})[label] = "%s%% used (%s)" % (fs["used_percent"], fs.get("mount"))
            if (fs.get("inodes_used_percent") or 0) >= host.threshold(label, "inode_percent"):
                inodes.setdefault(name, {})[label] = "%s%% of inodes used" % fs["inodes_used_percent"]
        if record.get("swap_total"):
            used = _ratio_percent(record["swap_total"] - (record.get("swap_free") or 0), record["swap_total"])
            if used is not None and used >= host.threshold(label, "swap_percent"):
                swap[label] = "%s%% of swap used" % used
        cpus = record.get("cpus_usable") or record.get("cpus")
        if record.get("load") and cpus and record["load"][0] > cpus * host.threshold(label, "load_per_cpu"):
            load[label] = "load %s on %d CPUs" % (record["load"][0], cpus)
        if record.get("clock_synchronised") is False and host.threshold(label, "clock_sync"):
            clock[label] = "not synchronised"
        for unit in record.get("failed_units") or []:
            units.setdefault(unit, {})[label] = "failed"
    for name, hits in sorted(disk.items()):
        findings.append(
            host.per_host(
                "filesystems.%s.used" % name,
                "health.disk_full",
                "high",
                hits,
                "The filesystem holding %s is nearly full on %%s." % name,
                "Free space or grow the filesystem before the next deploy "
                "(the threshold is drift_health_thresholds.disk_percent).",
            )
        )
    for name, hits in sorted(inodes.items()):
        findings.append(
            host.per_host(
                "filesystems.%s.inodes" % name,
                "health.inodes_full",
                "high",
                hits,
                "The filesystem holding %s is running out of inodes on %%s." % name,
                "Remove small files (caches, sessions, mail queues) or grow the filesystem.",
            )
        )
    if swap:
        findings.append(
            host.per_host(
                "swap",
                "health.swap_in_use",
                "medium",
                swap,
                "Swap is in use on %s: the host is short of memory.",
                "Find what uses the memory (the containers' table) and add memory or set limits.",
            )
        )
    if load:
        findings.append(
            host.per_host(
                "load",
                "health.load_high",
                "medium",
                load,
                "The load average exceeds the CPUs on %s.",
                "Find what keeps the CPUs busy before deploying more work on the host.",
            )
        )
    if clock:
        findings.append(
            host.per_host(
                "clock_synchronised",
                "health.clock_unsynchronised",
                "medium",
                clock,
                "The clock is not synchronised on %s (time stamps, TLS and tokens drift).",
                "Run an NTP client (systemd-timesyncd, chrony) on the host.",
            )
        )
    for unit, hits in sorted(units.items()):
        findings.append(
            host.per_host(
                "systemd.%s" % unit,
                "health.failed_unit",
                "medium",
                hits,
                "The systemd unit %s failed on %%s." % unit,
                "Read `journalctl -u %s` on the host and fix or disable the unit." % unit,
            )
        )
    return findings


def _port_range(text):
    low, _, high = str(text).partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        return 1, 65535


def published_ports(cells, labels):
    """Ports published by a container of a configured stack, in any of the columns."""
    found = set()
    for label in labels:
        cell = cells.get(label)
        if cell is None or is_unknown(cell):
            continue
        for stack in (cell.get("stacks") or {}).values():
            found.update(stack.get("published") or [])
    return found


def _port_findings(host, ok, published):
    hits = {}
    for label in host.production(ok):
        settings = host.settings.get(label, {})
        low, high = _port_range(settings.get("port_range", "1-65535"))
        expected = set(settings.get("expected_ports") or [])
        for socket in host.records[label].get("sockets") or []:
            port = socket["port"]
            if not low <= port <= high or port in expected or "%d/%s" % (port, socket["protocol"]) in published:
                continue
            if _is_loopback(socket["address"]) and not settings.get("port_loopback"):
                continue
            key = "ports.%d/%s" % (port, socket["protocol"])
            owner = socket.get("process") or "owner not visible to the audit user"
            hits.setdefault(key, {})[label] = "%s:%d (%s)" % (socket["address"], port, owner)
    return [
        host.per_host(
            key,
            "health.port_outside_compose",
            "high",
            values,
            "Port %s listens on %%s, and no compose stack publishes it." % key.split(".", 1)[1],
            "Stop what listens there (a debug server?) or declare it; "
            "list deliberate ports in drift_health_expected_ports.",
        )
        for key, values in sorted(hits.items())
    ]


def _is_loopback(address):
    return address.startswith("127.") or address == "::1" or address.startswith("::ffff:127.")


def _presence_findings(subject, ok, key_prefix, sets, check, what):
    """Entries (cron lines, timers) present in some columns and not others."""
    findings = []
    for entry in union_keys(sets.values()):
        records = {label: (entry if entry in sets[label] else None) for label in ok}
        found = compare_key(records, ok, always_same)
        if not found:
            continue
        kind, where = found
        having = [label for label in ok if records[label] is not None]
        severity = "medium" if subject.production(where) else "low"
        findings.append(
            subject.finding(
                "%s.%s" % (key_prefix, entry),
                kind,
                check,
                severity,
                records,
                where,
                "The %s runs on %s only." % (what, join_names(having)),
                "Install it on every environment that needs it, or remove it from %s." % join_names(having),
            )
        )
    return findings


def _schedule_findings(host, ok):
    findings = []
    readable = [label for label in ok if not (host.records[label].get("cron") or {}).get("unreadable")]
    unreadable = {
        label: {
            "status": "unreadable",
            "reason": "unreadable: %s" % ", ".join(host.records[label]["cron"]["unreadable"]),
        }
        for label in ok
        if label not in readable
    }
    findings += _not_read(host, "cron", dict(unreadable, **{label: {"status": "ok"} for label in readable}), "Cron")
    if len(readable) >= 2 and readable[0] == ok[0]:
        sets = {label: set((host.records[label].get("cron") or {}).get("entries") or []) for label in readable}
        findings += _presence_findings(host, readable, "cron", sets, "health.cron_only_in", "cron entry")
    with_timers = [label for label in ok if host.records[label].get("timers") is not None]
    if len(with_timers) >= 2 and with_timers[0] == ok[0]:
        sets = {label: set(host.records[label]["timers"]) for label in with_timers}
        findings += _presence_findings(host, with_timers, "timers", sets, "health.timer_only_in", "systemd timer")
    return findings


def _docker_view(context, label):
    """(the docker area's compose projects on this column, whether it reads this column's engine:
    then it reports the containers without a compose project itself, as docker.orphan)."""
    cells_of = context.get("area_cells")
    cell = (cells_of("docker") if cells_of is not None else {}).get(label)
    if not isinstance(cell, dict) or is_unknown(cell):
        return set(), False
    stacks = cell.get("stacks") if isinstance(cell.get("stacks"), dict) else {}
    projects = {stack.get("project") for stack in stacks.values() if isinstance(stack, dict)}
    engine = cell.get("engine") if isinstance(cell.get("engine"), dict) else {}
    return projects - {None}, bool(stacks) and engine.get("status") == "ok"


def orphans(others, known, patterns, unlabelled):
    """The containers of `others` (running, of no configured health stack) that belong to no known
    project and match no pattern; those without a compose project only when `unlabelled`."""
    found = []
    for container in others:
        project = container.get("project")
        if project is None:
            if unlabelled:
                found.append(container)
        elif project not in known and not any(fnmatch.fnmatchcase(project, pattern) for pattern in patterns):
            found.append(container)
    return found


def _orphan_text(container):
    where = (
        "project %s, service %s" % (container["project"], container.get("service") or "?")
        if container.get("project") is not None
        else "no compose project"
    )
    return "%s (%s)" % (container.get("image") or "image not known", where)


def _orphan_findings(host, ok, cells, context):
    """Running containers that belong to no stack the host declares, per column."""
    hits = {}
    for label in ok:
        others = cells[label].get("other_containers")
        if not isinstance(others, dict) or others.get("status") != "ok":
            continue  # not looked for (no stack configured), or the stacks say why it could not be read
        known, docker_reads_engine = _docker_view(context, label)
        patterns = host.settings.get(label, {}).get("known_projects") or []
        for container in orphans(others.get("running") or [], known, patterns, not docker_reads_engine):
            hits.setdefault(container["name"], {})[label] = _orphan_text(container)
    findings = []
    for name, values in sorted(hits.items()):
        where = sorted(values, key=host.columns.index)
        findings.append(
            host.finding(
                "containers.%s" % name,
                "policy",
                "health.orphan",
                "high" if host.production(where) else "low",
                values,
                where,
                "Container %s runs on %s and belongs to no stack declared there." % (name, join_names(where)),
                "Remove it (a leftover `docker run` or `compose run`?), or declare its project: "
                "drift_health_stacks, drift_compose, or drift_health_known_projects when it may run unaudited.",
            )
        )
    return findings


def _host_findings(columns, cells, context):
    host = _Subject(HOST, "host", "", columns, cells, context)
    if not host.records:
        return []
    findings = _not_read(host, "*", host.records, "The host's facts")
    ok = host.ok()
    if not ok:
        return findings
    findings += _host_fact_findings(host, ok)
    findings += _host_policy_findings(host, ok)
    findings += _port_findings(host, ok, published_ports(cells, columns))
    findings += _schedule_findings(host, ok)
    findings += _orphan_findings(host, ok, cells, context)
    return findings


# ---------------------------------------------------------------- containers


def _container_policy_findings(stack, ok):
    findings = []
    memory, restarts, oom = {}, {}, {}
    for label in stack.production(ok):
        for svc, record in sorted((stack.records[label].get("services") or {}).items()):
            if record.get("status") != "ok":
                continue
            percent = record.get("memory_percent")
            if percent is not None and percent >= stack.threshold(label, "memory_percent"):
                memory.setdefault(svc, {})[label] = "%s%% of %s MiB" % (percent, record["memory_limit"] // 1048576)
            if record.get("restart_count", 0) >= stack.threshold(label, "restarts"):
                restarts.setdefault(svc, {})[label] = "%d restarts (%s)" % (
                    record["restart_count"],
                    record.get("state"),
                )
            if record.get("oom_killed"):
                oom.setdefault(svc, {})[label] = "OOM-killed (exit %s)" % record.get("exit_code")
    for svc, hits in sorted(memory.items()):
        findings.append(
            stack.per_host(
                "services.%s.memory" % svc,
                "health.memory_near_limit",
                "high",
                hits,
                "%s uses nearly all of its memory limit on %%s." % svc,
                "Raise %s's memory limit or find what it holds; near the limit the kernel kills it." % svc,
            )
        )
    for svc, hits in sorted(restarts.items()):
        findings.append(
            stack.per_host(
                "services.%s.restarts" % svc,
                "health.restarts",
                "medium",
                hits,
                "%s has restarted on %%s." % svc,
                "Read %s's logs around its restarts (docker logs) and fix the crash." % svc,
            )
        )
    for svc, hits in sorted(oom.items()):
        findings.append(
            stack.per_host(
                "services.%s.oom_killed" % svc,
                "health.oom_killed",
                "high",
                hits,
                "%s was killed for lack of memory on %%s." % svc,
                "Raise %s's memory limit or reduce what it holds." % svc,
            )
        )
    return findings


def _template_findings(subject, ok, sources, key_prefix, what):
    """Error templates seen in some columns and not in the baseline (new), or gone from them."""
    findings = []
    have = [label for label in ok if sources.get(label) is not None and sources[label].get("status") == "ok"]
    if len(have) < 2 or have[0] != ok[0]:
        return findings
    templates = {label: sources[label].get("templates") or {} for label in have}
    for ident in union_keys(templates.values()):
        records = {
            label: ("%d× %s" % (templates[label][ident]["count"], templates[label][ident]["template"]))
            if ident in templates[label]
            else None
            for label in have
        }
        found = compare_key(records, have, always_same)
        if not found:
            continue
        kind, where = found
        text = next(templates[label][ident]["template"] for label in have if ident in templates[label])
        if kind == "extra":
            new_in = [label for label in have if records[label] is not None]
            findings.append(
                subject.finding(
                    "%s%s" % (key_prefix, ident),
                    "extra",
                    "health.error_template_new",
                    "high" if subject.production(new_in) else "low",
                    records,
                    new_in,
                    "An error %s logs on %s only: %s" % (what, join_names(new_in), text),
                    "Look at this error on %s before the next release: it is not seen on %s."
                    % (join_names(new_in), have[0]),
                    measured=True,  # counts per template vary from run to run
                )
            )
        else:
            findings.append(
                subject.finding(
                    "%s%s" % (key_prefix, ident),
                    "missing",
                    "health.error_template_gone",
                    "info",
                    records,
                    where,
                    "An error %s logs on %s is not seen on %s: %s" % (what, have[0], join_names(where), text),
                    "Nothing to do if the fix reached %s; otherwise check that %s still logs there."
                    % (join_names(where), what),
                    measured=True,  # counts per template vary from run to run
                )
            )
    return findings


def _exit_text(record):
    text = "exit %d" % record["exit_code"]
    if record.get("oom_killed"):
        text += " (OOM-killed)"
    if record.get("restart_count"):
        text += " after %d restarts" % record["restart_count"]
    return text


def _when(seconds):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds)) if seconds else "at a time not known"


def _exit_findings(stack, ok, svc):
    """A service whose last run ended otherwise than the baseline's (exit code, OOM kill, restarts),
    among the columns where it is not running (a job: exited 0 in dev and 137 in prod)."""
    ended = {}
    for label in ok:
        record = (stack.records[label].get("services") or {}).get(svc) or {}
        if record.get("status") == "ok" and record.get("state") in ENDED_STATES and record.get("exit_code") is not None:
            ended[label] = record
    have = [label for label in ok if label in ended]
    if len(have) < 2 or have[0] != ok[0]:
        return []
    values = {label: _exit_text(ended[label]) for label in have}
    found = compare_key(values, have)
    if not found:
        return []
    _, where = found
    failed = [label for label in where if ended[label]["exit_code"] != 0 or ended[label].get("oom_killed")]
    ended_at = by_value(((label, _when(ended[label].get("finished_at"))) for label in have), " ")
    return [
        stack.finding(
            "services.%s.exit_code" % svc,
            "changed",
            "health.exit_code_changed",
            "high" if stack.production(failed) else "low",
            values,
            where,
            "The last run of %s ended otherwise on %s than on %s: %s (ended: %s)."
            % (svc, join_names(where), have[0], by_value(values.items()), ended_at),
            "Read %s's logs of that run on %s (docker logs): a job that fails in one environment only "
            "points at its data, its limits or its configuration there." % (svc, join_names(failed or where)),
        )
    ]


def errors_per_hour(source):
    """A log source's errors per hour, or None when it covers too short a time to tell."""
    if not source or source.get("status") != "ok":
        return None
    span = source.get("span_seconds")
    if not span or span < MIN_RATE_SECONDS:
        return None
    return source["levels"]["error"] * 3600.0 / span


def _rate_findings(subject, ok, sources, key, what):
    """Columns whose errors per hour exceed the baseline's by both tolerances (error_rate_percent and
    error_rate_per_hour). A truncated read (more lines than read) counts fewer errors than there
    were: it is a floor, enough to show a higher rate, never a baseline."""
    base_label = ok[0] if ok else None
    base = sources.get(base_label)
    reference = errors_per_hour(base)
    if reference is None or base.get("truncated"):
        return []
    higher = []
    for label in ok[1:]:
        rate = errors_per_hour(sources.get(label))
        if rate is None:
            continue
        percent = subject.threshold(label, "error_rate_percent")
        if rate - reference > subject.threshold(label, "error_rate_per_hour") and rate > reference * (
            1 + percent / 100.0
        ):
            higher.append(label)
    if not higher:
        return []
    values = {label: _rate(sources[label]) for label in [base_label] + higher}
    return [
        subject.finding(
            key,
            "policy",
            "health.error_rate_higher",
            "high" if subject.production(higher) else "low",
            values,
            higher,
            "%s logs more errors per hour on %s than on %s (%s)."
            % (what[0].upper() + what[1:], join_names(higher), base_label, by_value(values.items(), ": ")),
            "Compare %s's error templates on %s with %s's (the table of error templates); the tolerances are "
            "drift_health_thresholds.error_rate_percent and error_rate_per_hour."
            % (what, join_names(higher), base_label),
            measured=True,  # rates vary from run to run: the finding persists while they stay above
        )
    ]


def _stack_findings(name, columns, cells, context):
    stack = _Subject(name, "stacks", STACK_PREFIX, columns, cells, context)
    findings = _not_read(stack, "*", stack.records, "Stack %s's containers" % name)
    ok = stack.ok()
    for svc in union_keys([stack.records[label].get("services") or {} for label in ok]):
        records = {
            label: stack.records[label]["services"][svc] for label in ok if svc in stack.records[label]["services"]
        }
        findings += _not_read(stack, "services.%s" % svc, records, "Container %s" % svc)
        logs = {label: stack.records[label].get("logs", {}).get(svc) for label in ok}
        findings += _template_findings(stack, ok, logs, "services.%s.errors." % svc, "service %s" % svc)
        findings += _rate_findings(stack, ok, logs, "services.%s.error_rate" % svc, "service %s" % svc)
        findings += _exit_findings(stack, ok, svc)
    findings += _container_policy_findings(stack, ok)
    return findings


def _log_file_findings(name, columns, cells, context):
    log = _Subject(name, "log_files", LOG_PREFIX, columns, cells, context)
    findings = _not_read(log, "*", log.records, "Log file %s" % name)
    ok = log.ok()
    read = {label: log.records[label] for label in ok}
    findings += _template_findings(log, ok, read, "errors.", "log file %s" % name)
    findings += _rate_findings(log, ok, read, "error_rate", "log file %s" % name)
    return findings


def diff(columns, cells, context):
    """All health findings; context: {"baseline", "production": set of labels}."""
    findings = _host_findings(columns, cells, context)
    for name in subject_names(cells, "stacks"):
        findings += _stack_findings(name, columns, cells, context)
    for name in subject_names(cells, "log_files"):
        findings += _log_file_findings(name, columns, cells, context)
    return findings


# ---------------------------------------------------------------- tables for the report


def _facts(cells, label, section):
    cell = cells.get(label)
    if cell is None or is_unknown(cell):
        return {}
    return cell.get(section) or {}


def _gib(value):
    return "%.1f GiB" % (value / 1073741824.0) if value else "—"


def _host_row(label, host):
    if not host or host.get("status") != "ok":
        return [label] + ["could not collect"] + ["—"] * 7
    total, available = host.get("memory_total"), host.get("memory_available")
    disks = [fs for fs in (host.get("filesystems") or {}).values() if fs.get("status") == "ok"]
    fullest = max((fs["used_percent"] for fs in disks if fs.get("used_percent") is not None), default=None)
    clock = {True: "yes", False: "no", None: "not available"}[host.get("clock_synchronised")]
    return [
        label,
        (host.get("os") or {}).get("pretty_name") or host.get("system") or "—",
        str(host.get("cpus_usable") or host.get("cpus") or "—"),
        " / ".join("%.2f" % value for value in host.get("load") or []) or "—",
        "%s of %s" % (_gib(total - available), _gib(total)) if total and available is not None else "—",
        "%s%%" % _ratio_percent(host["swap_total"] - (host.get("swap_free") or 0), host["swap_total"])
        if host.get("swap_total")
        else "none",
        "%s%%" % fullest if fullest is not None else "—",
        host.get("time_zone") or "not available",
        clock,
    ]


def _rate(source):
    if not source or source.get("status") != "ok":
        return "could not collect"
    errors = source["levels"]["error"]
    span = source.get("span_seconds")
    if span:
        covered = "%d min" % (span // 60) if span >= 120 else "%d s" % span
        text = "%.1f/h (%d in %s)" % (errors * 3600.0 / span, errors, covered)
    else:
        text = "%d in the last %d lines" % (errors, source["lines"])
    return text + (", truncated" if source.get("truncated") else "")


def _memory_cell(record):
    if not record or record.get("status") != "ok":
        return "—"
    parts = []
    if record.get("memory_percent") is not None:
        parts.append("%s%% of limit" % record["memory_percent"])
    elif record.get("memory_used") is not None:
        parts.append("%.0f MiB, no limit" % (record["memory_used"] / 1048576.0))
    else:
        parts.append(record.get("state") or "?")
    if record.get("restart_count"):
        parts.append("%d restarts" % record["restart_count"])
    if record.get("oom_killed"):
        parts.append("OOM-killed")
    return ", ".join(parts)


def _chart(label, rows):
    """A Mermaid bar chart of memory use as a share of the limit per service, for one column.
    Names are reduced to safe characters: the chart's text is code, not escaped Markdown."""
    names = ", ".join('"%s"' % _CHART_LABEL.sub("_", name)[:40] for name, _ in rows)
    values = ", ".join("%s" % value for _, value in rows)
    title = _CHART_LABEL.sub("_", label)[:40]
    return "\n".join(
        [
            "xychart-beta",
            '    title "Memory use, %% of the limit: %s"' % title,
            "    x-axis [%s]" % names,
            '    y-axis "% of limit" 0 --> 100',
            "    bar [%s]" % values,
        ]
    )


def _template_sources(columns, cells):
    """[(source name, {label: templates})] of every stack service and log file read somewhere."""
    sources = []
    for name in subject_names(cells, "stacks"):
        stacks = {label: _facts(cells, label, "stacks").get(name) or {} for label in columns}
        for svc in union_keys([stack.get("logs") or {} for stack in stacks.values()]):
            logs = {label: (stacks[label].get("logs") or {}).get(svc) for label in columns}
            sources.append(("%s/%s" % (name, svc), logs))
    for name in subject_names(cells, "log_files"):
        sources.append(
            ("log file %s" % name, {label: _facts(cells, label, "log_files").get(name) for label in columns})
        )
    return sources


def template_rows(columns, cells, context):
    """One row per error template and source with its count per column: those seen in production
    only first (the errors a release brought), then those seen elsewhere too, then those gone
    from production."""
    production = [label for label in columns if label in context["production"]]
    ranked = []
    for source, logs in _template_sources(columns, cells):
        read = {
            label: (log or {}).get("templates") or {}
            for label, log in logs.items()
            if (log or {}).get("status") == "ok"
        }
        for ident in union_keys(read.values()):
            having = [label for label in read if ident in read[label]]
            in_production = any(label in having for label in production)
            elsewhere = any(label not in production for label in having)
            rank = 0 if in_production and not elsewhere else (1 if in_production else 2)
            text = read[having[0]][ident]["template"]
            counts = [str(read[label][ident]["count"]) if ident in read.get(label, {}) else "—" for label in columns]
            ranked.append((rank, source, text, [source, text] + counts))
    return [row for _, _, _, row in sorted(ranked, key=lambda item: item[:3])]


def tables(columns, cells, context):
    """The area's tables for the report: plain text cells (the report model escapes them)."""
    found = [
        {
            "title": "Resources per host",
            "header": [
                "column",
                "system",
                "CPUs",
                "load 1/5/15",
                "memory used",
                "swap used",
                "fullest disk",
                "time zone",
                "clock synced",
            ],
            "rows": [_host_row(label, _facts(cells, label, "host").get("host")) for label in columns],
        }
    ]
    services, sources, charts = [], [], []
    for name in subject_names(cells, "stacks"):
        stacks = {label: _facts(cells, label, "stacks").get(name) or {} for label in columns}
        for svc in union_keys([stack.get("services") or {} for stack in stacks.values()]):
            services.append(
                ["%s/%s" % (name, svc)]
                + [_memory_cell((stacks[label].get("services") or {}).get(svc)) for label in columns]
            )
            sources.append(
                ["%s/%s" % (name, svc)] + [_rate((stacks[label].get("logs") or {}).get(svc)) for label in columns]
            )
    for name in subject_names(cells, "log_files"):
        sources.append(
            ["log file %s" % name] + [_rate(_facts(cells, label, "log_files").get(name)) for label in columns]
        )
    templates = template_rows(columns, cells, context)
    if services:
        found.append(
            {
                "title": "Containers: memory use vs limit, restarts",
                "header": ["service"] + list(columns),
                "rows": services,
            }
        )
    if sources:
        found.append(
            {
                "title": "Errors per hour (containers: the last window; log files: their tail)",
                "header": ["source"] + list(columns),
                "rows": sources,
            }
        )
    if templates:
        found.append(
            {
                "title": "Error templates (seen in production only first, then in both, then gone from production)",
                "header": ["source", "template"] + list(columns),
                "rows": templates,
            }
        )
    for label in columns:
        rows = []
        for name, stack in sorted(_facts(cells, label, "stacks").items()):
            for svc, record in sorted((stack.get("services") or {}).items()):
                if (record or {}).get("memory_percent") is not None:
                    rows.append(("%s/%s" % (name, svc), record["memory_percent"]))
        if rows:
            charts.append(_chart(label, rows))
    return {"tables": found, "charts": charts}
