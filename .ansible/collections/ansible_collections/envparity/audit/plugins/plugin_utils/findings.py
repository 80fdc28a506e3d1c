"""The finding model shared by every area: vocabulary, constructor, ordering, cell markers.

Pure Python; no Ansible imports. See docs/findings.md for the user-facing description.
"""

SEVERITIES = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}
KINDS = ("missing", "extra", "changed", "unknown", "policy")
GATE_NEVER = "never"


def unknown_cell(reason):
    """The distinct marker for a value that could not be collected (never the same as absent)."""
    return {"unknown": reason}


def is_unknown(cell):
    return isinstance(cell, dict) and "unknown" in cell


def make_finding(area, subject, key, kind, check, severity, values, environments, message, recommendation):
    if kind not in KINDS:
        raise ValueError("unknown finding kind %r" % kind)
    if severity not in SEVERITY_RANK:
        raise ValueError("unknown severity %r" % severity)
    return {
        "area": area,
        "subject": subject,
        "key": key,
        "kind": kind,
        "check": check,
        "severity": severity,
        "expected": False,
        "reason": None,
        "values": dict(values),
        "environments": list(environments),
        "message": message,
        "recommendation": recommendation,
    }


def sort_key(finding):
    """Deterministic order: (area, subject, key, check)."""
    return (finding["area"], finding["subject"], finding["key"], finding["check"])


def action_order(finding):
    """Most severe first, then the deterministic order."""
    return (-SEVERITY_RANK[finding["severity"]],) + sort_key(finding)


def at_or_above(severity, threshold):
    if threshold == GATE_NEVER:
        return False
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


def join_names(names):
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
