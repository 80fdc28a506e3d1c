"""Drift over time, without storage: each finding of this run compared with the same finding (by
id) in an earlier run, as new, persisting or changed, with its first-seen date and age; the
earlier findings gone now as resolved; the gate on new findings; the previous report as the
earlier run (a CI runner without a persistent disk).

The earlier run is given as {"areas": [...], "generated_at", "recorded_at", "states": {id: row}},
rows holding id, area, subject, key, check, kind, severity, expected, digest and first_seen, so
that the SQLite store (history.py) and a previous report give the same comparison.
Pure Python; no Ansible imports.
"""

import calendar
import hashlib
import json
import time

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    GATE_NEVER,
    SEVERITIES,
    SEVERITY_RANK,
    at_or_above,
    finding_id,
    with_ids,
)

NEW, PERSISTING, CHANGED, RESOLVED = "new", "persisting", "changed", "resolved"
# A finding that this run could not see (its host or area was not collected), kept with its age
# until a run can tell whether it is still there.
CARRIED = "carried"
STATES = (NEW, PERSISTING, CHANGED)
DAY = 86400
STAMP = "%Y-%m-%dT%H:%M:%SZ"
ROW_FIELDS = ("id", "area", "subject", "key", "check", "kind", "severity", "expected", "digest", "first_seen")


class PreviousReportError(ValueError):
    """A previous report that cannot be read; the message says why."""


def value_digest(finding):
    """A fingerprint of what a finding says per column (already redacted values): equal digests,
    same values. Only this digest is kept, never the values. A measured finding's values are noise
    from run to run: it stays "persisting" while it holds."""
    values = None if finding.get("measured") else finding["values"]
    text = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def state_row(finding, state=None, first_seen=None):
    """What is kept of a finding from run to run: its identity and a digest of its values."""
    row = {field: finding.get(field) for field in ROW_FIELDS}
    row["expected"] = bool(finding.get("expected"))
    row["digest"] = finding.get("digest") or value_digest(finding)
    row["first_seen"] = first_seen or finding.get("first_seen")
    row["state"] = state or finding.get("state")
    return row


def severity_counts(findings):
    return {severity: sum(1 for f in findings if f["severity"] == severity) for severity in SEVERITIES}


def resolved_record(row):
    """A resolved finding as the report lists it: what it was about, since when, how severe."""
    fields = ("id", "area", "subject", "key", "check", "kind", "severity", "expected", "first_seen", "age_days")
    return {field: row.get(field) for field in fields}


def state_rows(findings, carried):
    """The rows a run keeps: one per finding, one per check merged into a finding (so that the
    fact keeps its history whichever check leads next time), and the carried ones."""
    rows = []
    for finding in findings:
        rows.append(state_row(finding))
        for other in finding.get("also") or ():
            merged = dict(finding, check=other["check"], kind=other["kind"], severity=other["severity"])
            rows.append(state_row(dict(merged, id=finding_id(merged))))
    return rows + list(carried)


def parse_stamp(text):
    """POSIX seconds of a report stamp (2026-11-14T08:00:00Z), or None."""
    try:
        return calendar.timegm(time.strptime(str(text), STAMP))
    except (TypeError, ValueError):
        return None


def age_days(first_seen, now):
    """Whole days since first_seen; never negative (a clock that went back gives 0)."""
    since = parse_stamp(first_seen)
    return 0 if since is None else max(0, int((now - since) // DAY))


def not_seen(findings):
    """(area, subject) pairs and areas this run could not compare: there, an earlier finding that
    is absent now is not resolved, only not seen."""
    subjects, areas = set(), set()
    for finding in findings:
        if finding["kind"] != "unknown":
            continue
        if finding["check"] == "audit.not_compared":
            areas.add(finding["area"])
        else:
            subjects.add((finding["area"], finding["subject"]))
    return subjects, areas


def own_ids(finding):
    """The finding's id, then those of the checks merged into it (one finding per fact): the lead
    of a merged finding may change from run to run while the fact stays."""
    merged = [finding_id(dict(finding, check=other["check"])) for other in finding.get("also") or ()]
    return [finding["id"]] + merged


def _earlier_of(finding, earlier):
    """The earlier state of this finding: by its id, else by a check merged into it."""
    for identity in own_ids(finding):
        before = earlier.get(identity)
        if before is not None and before.get("state") != RESOLVED:
            return before
    return None


def one_per_fact(rows):
    """Resolved rows of one fact (a finding and the checks merged into it) as one, led as
    one_finding_per_fact leads: the most severe, then a change before a policy, then by check."""

    def lead_order(row):
        return (-SEVERITY_RANK[row["severity"]], row["kind"] == "policy", row["check"])

    leads = {}
    for row in rows:
        fact = (row["area"], row["subject"], row["key"])
        if fact not in leads or lead_order(row) < lead_order(leads[fact]):
            leads[fact] = row
    return sorted(leads.values(), key=lambda row: (row["area"], row["subject"], row["key"], row["check"]))


def compare_with(findings, audited_areas, previous, generated_at, now, partial=False):
    """Set each finding's state, first_seen and age_days; return {resolved, carried, counts, warnings}:
    resolved are the earlier unexpected findings gone now, counts are of unexpected findings.

    With no earlier run, every finding is new (nothing is known of it). Only the areas both runs
    audited are compared: a finding of an area the earlier run did not audit is new, and one of an
    area this run did not audit is neither resolved nor carried. A `partial` run (some hosts of the
    environments left out, e.g. by --limit) resolves nothing: what it did not see is carried."""
    earlier = (previous or {}).get("states") or {}
    warnings = []
    if previous and previous.get("recorded_at") is not None and now < previous["recorded_at"]:
        warnings.append(
            "the clock is behind the earlier run's (%s): ages are counted from the dates recorded, never below 0"
            % time.strftime(STAMP, time.gmtime(previous["recorded_at"]))
        )
    for finding in findings:
        before = _earlier_of(finding, earlier)
        if before is None:
            finding["state"], finding["first_seen"] = NEW, generated_at
        else:
            finding["state"] = PERSISTING if before["digest"] == value_digest(finding) else CHANGED
            # a date that is not one (a hand-edited previous report) is not carried on
            known = before.get("first_seen")
            finding["first_seen"] = known if parse_stamp(known) is not None else generated_at
        finding["age_days"] = age_days(finding["first_seen"], now)
    current = {identity for finding in findings for identity in own_ids(finding)}
    blind_subjects, blind_areas = not_seen(findings)
    audited = set(audited_areas)
    resolved, carried = [], []
    for identity, row in sorted(earlier.items()):
        if identity in current or row["area"] not in audited:
            continue
        if partial or row["area"] in blind_areas or (row["area"], row["subject"]) in blind_subjects:
            carried.append(dict(row, state=CARRIED))
        elif not row["expected"]:
            resolved.append(dict(row, state=RESOLVED, age_days=age_days(row.get("first_seen"), now)))
    resolved = one_per_fact(resolved)
    # What changed in the drift that counts: unexpected findings (an expected one gone is a stale rule).
    counts = {state: sum(1 for f in findings if f["state"] == state and not f["expected"]) for state in STATES}
    counts[RESOLVED] = len(resolved)
    return {"resolved": resolved, "carried": carried, "counts": counts, "warnings": warnings}


def without_history(findings, generated_at, run_id=None):
    """The history section of a run compared with nothing (no store, no previous report): every
    finding new since generated_at. Sets the ids, states and ages the findings lack."""
    if any("id" not in finding for finding in findings):
        with_ids(findings)
    now = parse_stamp(generated_at) or 0
    outcome = compare_with([f for f in findings if "state" not in f], (), None, generated_at, now)
    unexpected = [f for f in findings if not f["expected"]]
    return {
        "run_id": run_id or "",
        "source": None,
        "compared_with": None,
        "error": None,
        "warnings": [],
        "counts": outcome["counts"],
        "resolved": [],
        "trend": [{"generated_at": generated_at, "unexpected": severity_counts(unexpected)}],
        "store": None,
        "baseline_saved": None,
    }


def new_gate(gate, findings, fail_on_new):
    """The gate with drift_fail_on_new: it also trips on unexpected findings that are new at or
    above that severity (known drift does not block, new drift does)."""
    new = [
        f for f in findings if not f["expected"] and f.get("state") == NEW and at_or_above(f["severity"], fail_on_new)
    ]
    tripped_new = bool(new) and fail_on_new != GATE_NEVER
    return dict(gate, fail_on_new=fail_on_new, new_count=len(new), tripped=gate["tripped"] or tripped_new)


def trend_point(point):
    """Whether a trend point read from a previous report has the shape this report writes."""
    return (
        isinstance(point, dict)
        and isinstance(point.get("generated_at"), str)
        and isinstance(point.get("unexpected"), dict)
        and all(severity in SEVERITIES and isinstance(count, int) for severity, count in point["unexpected"].items())
    )


def read_previous_report(path, newest_schema):
    """The earlier run from a previous report's JSON (the last CI run's artifact).

    Reads every schema version up to newest_schema: a report written before finding ids existed
    (schema 1) gets them computed from its findings, its first-seen dates are its own date.
    Raises PreviousReportError saying why it cannot be used."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise PreviousReportError("cannot read the previous report %s: %s" % (path, exc.strerror)) from None
    except (ValueError, UnicodeDecodeError):
        raise PreviousReportError("the previous report %s is not JSON" % path) from None
    if not isinstance(document, dict) or document.get("tool") != "envparity":
        raise PreviousReportError("%s is not an envparity report" % path)
    version = document.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise PreviousReportError("the previous report %s has no schema version" % path)
    if version > newest_schema:
        raise PreviousReportError(
            "the previous report %s has schema version %d, newer than this envparity reads (%d): "
            "upgrade envparity" % (path, version, newest_schema)
        )
    generated_at = document.get("generated_at")
    try:
        findings = []
        for earlier in document["findings"]:
            finding = dict(earlier)
            finding.setdefault("id", finding_id(finding))
            finding.setdefault("first_seen", generated_at)
            finding.setdefault("state", NEW)
            findings.append(finding)
        states = {row["id"]: row for row in state_rows(findings, ())}
    except (KeyError, TypeError, AttributeError):
        raise PreviousReportError("the previous report %s has findings of an unknown shape" % path) from None
    trend = [point for point in ((document.get("history") or {}).get("trend") or ()) if trend_point(point)] or [
        {"generated_at": generated_at, "unexpected": (document.get("summary") or {}).get("by_severity", {})}
    ]
    return {
        "areas": list(document.get("areas") or []),
        "generated_at": generated_at,
        "recorded_at": parse_stamp(generated_at),
        "states": states,
        "trend": trend,
        "run_id": (document.get("history") or {}).get("run_id"),
    }
