"""Diff rules of the endpoints area's service-level metrics (each environment's Prometheus, read by
module_utils/endpoints_prometheus.py): the scrape targets' `up` state and which jobs serve traffic,
compared across the environments that have a Prometheus; in production, a target down, a 5xx share
above the tolerance (and above the baseline's), a p95 latency slower than the baseline's by the
endpoints' slower tolerances. An environment without Prometheus is "not configured" (the engine
says so from the request), never "different". Rates, ratios and latencies are measured values:
never compared as values, only by these policies, and their findings are `measured`.

Input per column: the endpoints facts' "prometheus" section ({SUBJECT: record}). Hostile input:
every value is type-checked before use. Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_prometheus import SUBJECT
from ansible_collections.envparity.audit.plugins.plugin_utils.compare import compare_key, union_keys
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SubjectColumns, by_value, join_names

AREA = "endpoints"
RATE = "request_rate"
ERRORS = "error_ratio"
LATENCY = "p95_latency_seconds"
MAX_JOBS = 200


def _dict(value):
    return value if isinstance(value, dict) else {}


def _text(value, limit=200):
    return value[:limit] if isinstance(value, str) else None


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _jobs(entry):
    """{job: value} of an answered query (at most MAX_JOBS jobs), {} otherwise."""
    if _dict(entry).get("status") != "ok":
        return {}
    return {str(job)[:120]: value for job, value in list(_dict(entry.get("jobs")).items())[:MAX_JOBS]}


def metrics_view(record):
    """{key: text} compared across environments, and {query: {job: number}} the policies read."""
    view = {}
    for job, instances in _jobs(record.get("targets")).items():
        states = [state for state in _dict(instances).values() if state in (0, 1)]
        view["up." + job] = "%d of %d targets up" % (sum(states), len(_dict(instances)))
    values = {name: {job: _number(value) for job, value in _jobs(entry).items()} for name, entry in _queries(record)}
    for job, rate in values.get(RATE, {}).items():
        view["traffic." + job] = "serving requests" if rate else "no requests"
    return view, values


def _queries(record):
    return sorted((str(name)[:60], _dict(entry)) for name, entry in _dict(record.get("queries")).items())


class _Subject(SubjectColumns):
    AREA = AREA

    def __init__(self, columns, cells, context, policy_of):
        super().__init__(SUBJECT, "prometheus", columns, cells, context)
        self.views = {
            label: metrics_view(record) for label, record in self.records.items() if record.get("status") == "ok"
        }
        self.policy = {label: policy_of(cells.get(label)) for label in self.views}


def _failure_findings(subject):
    """Prometheus unreachable, a query that failed, or one that answered no series: what it would
    have measured is unknown there (never "no drift")."""
    findings = []
    for label, record in subject.records.items():
        if label not in subject.views:
            reason = "%s: %s" % (_text(record.get("status"), 40), _text(record.get("reason")) or "no reason")
            findings.append(
                subject.finding(
                    "prometheus",
                    "unknown",
                    "endpoints.prometheus_failed",
                    "high" if subject.production([label]) else "medium",
                    {label: reason},
                    [label],
                    "%s's Prometheus could not be queried (%s); its service-level metrics were not compared."
                    % (label, reason),
                    "Check that %s's drift_prometheus url answers from where it is queried (from, connect_to)." % label,
                )
            )
            continue
        for name, entry in [("up", _dict(record.get("targets")))] + _queries(record):
            if entry.get("status") == "ok" and entry.get("jobs"):
                continue
            failed = entry.get("status") != "ok"
            reason = (
                "%s: %s" % (_text(entry.get("status"), 40), _text(entry.get("reason")) or "no reason")
                if failed
                else "no series"
            )
            findings.append(
                subject.finding(
                    "query." + name,
                    "unknown",
                    "endpoints.metrics_query_failed" if failed else "endpoints.metrics_empty",
                    "medium" if failed else "low",
                    {label: reason},
                    [label],
                    "%s's Prometheus query %s %s; that metric is unknown there."
                    % (label, name, "failed (%s)" % reason if failed else "answered no series"),
                    "Check the query %s (drift_prometheus queries) against %s's metric names." % (name, label),
                )
            )
    return findings


def _compare_findings(subject):
    labels = [label for label in subject.columns if label in subject.views]
    if len(labels) < 2:
        return []
    findings = []
    for key in union_keys([subject.views[label][0] for label in labels]):
        records = {label: subject.views[label][0].get(key) for label in labels}
        outcome = compare_key(records, labels)
        if outcome is None:
            continue
        kind, about = outcome
        job = key.split(".", 1)[1]
        targets = key.startswith("up.")
        if kind == "changed":
            what = "has different scrape targets up" if targets else "serves traffic differently"
            message = "Prometheus job %s %s on %s: %s." % (
                job,
                what,
                join_names(about),
                by_value(((label, records[label]) for label in labels), ": "),
            )
        else:
            having = [label for label in labels if records[label] is not None]
            message = "Prometheus job %s is %s on %s but not on %s." % (
                job,
                "scraped" if targets else "measured",
                join_names(having),
                join_names([label for label in labels if records[label] is None]),
            )
        findings.append(
            subject.finding(
                key,
                kind,
                "endpoints.targets_changed" if targets else "endpoints.traffic_changed",
                "medium" if targets else "low",
                records,
                about,
                message,
                "Make the scrape configuration and services of job %s the same everywhere, or record the "
                "difference as expected in the rules file." % job,
            )
        )
    return findings


def _down_findings(subject, label):
    findings = []
    record = subject.records[label]
    for job, instances in _jobs(record.get("targets")).items():
        down = sorted(str(instance)[:120] for instance, state in _dict(instances).items() if state == 0)
        if not down:
            continue
        findings.append(
            subject.finding(
                "up." + job,
                "policy",
                "endpoints.target_down",
                "high",
                {label: "down: %s" % ", ".join(down)},
                [label],
                "Prometheus job %s on %s has %d scrape target(s) down: %s." % (job, label, len(down), ", ".join(down)),
                "Bring %s back up on %s (or remove it from the scrape configuration)." % (", ".join(down), label),
            )
        )
    return findings


def _percent(ratio):
    return "%.1f %% 5xx" % (100.0 * ratio)


def _error_findings(subject, label, baseline):
    values = subject.views[label][1].get(ERRORS, {})
    base = subject.views[baseline][1].get(ERRORS, {}) if baseline in subject.views and baseline != label else {}
    findings = []
    for job, ratio in sorted(values.items()):
        if ratio is None or 100.0 * ratio <= subject.policy[label]["error_percent"]:
            continue
        reference = base.get(job)
        if reference is not None and ratio <= reference:
            continue
        shown = {label: _percent(ratio)}
        if reference is not None:
            shown[baseline] = _percent(reference)
        findings.append(
            subject.finding(
                ERRORS + "." + job,
                "policy",
                "endpoints.error_ratio",
                "high",
                shown,
                [label],
                "Prometheus job %s answers %s of its requests with a 5xx on %s (tolerance %d %%%s)."
                % (
                    job,
                    "%.1f %%" % (100.0 * ratio),
                    label,
                    subject.policy[label]["error_percent"],
                    "; %s: %s" % (baseline, _percent(reference)) if reference is not None else "",
                ),
                "Find what fails in job %s on %s (its logs, its last deploy); tolerance: "
                "drift_endpoints_error_percent." % (job, label),
                measured=True,
            )
        )
    return findings


def _latency_findings(subject, label, baseline, slower):
    if baseline not in subject.views or baseline == label:
        return []
    values = subject.views[label][1].get(LATENCY, {})
    base = subject.views[baseline][1].get(LATENCY, {})
    findings = []
    for job, seconds in sorted(values.items()):
        reference = base.get(job)
        if seconds is None or reference is None:
            continue
        times = (
            {"median_ms": reference * 1000, "p95_ms": reference * 1000},
            {"median_ms": seconds * 1000, "p95_ms": seconds * 1000},
        )
        if not slower(times[0], times[1], subject.policy[label]):
            continue
        shown = {label: "p95 %.0f ms" % (seconds * 1000), baseline: "p95 %.0f ms" % (reference * 1000)}
        findings.append(
            subject.finding(
                LATENCY + "." + job,
                "policy",
                "endpoints.service_slower",
                "medium",
                shown,
                [label],
                "Prometheus job %s is slower on %s than on %s (%s)."
                % (job, label, baseline, by_value(shown.items(), ": ")),
                "Find what slows job %s on %s (tolerances: drift_endpoints_slower_ms and "
                "drift_endpoints_slower_percent)." % (job, label),
                measured=True,
            )
        )
    return findings


def findings(labels, cells, context, policy_of, slower):
    """Every finding on the Prometheus metrics of the columns. policy_of(cell) is the endpoints'
    policy of a column (its tolerances), slower(base, other, policy) their slower-than rule: one
    place for both, shared with the endpoints' response times."""
    if not any(_dict(cell).get("prometheus") for cell in cells.values() if isinstance(cell, dict)):
        return []
    subject = _Subject(labels, cells, context, policy_of)
    result = _failure_findings(subject) + _compare_findings(subject)
    baseline = context["baseline"]
    for label in subject.production(list(subject.views)):
        result += _down_findings(subject, label)
        result += _error_findings(subject, label, baseline)
        result += _latency_findings(subject, label, baseline, slower)
    return result
