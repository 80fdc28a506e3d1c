"""The finding model shared by every area: vocabulary, constructor, identity, ordering, cell markers.

Pure Python; no Ansible imports. See docs/findings.md for the user-facing description.
"""

import hashlib

SEVERITIES = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}
KINDS = ("missing", "extra", "changed", "unknown", "policy")
GATE_NEVER = "never"


def unknown_cell(reason):
    """The distinct marker for a value that could not be collected (never the same as absent)."""
    return {"unknown": reason}


def is_unknown(cell):
    return isinstance(cell, dict) and "unknown" in cell


def make_finding(
    *, area, subject, key, kind, check, severity, values, environments, message, recommendation, measured=False
):
    """A finding. `measured`: its values are measurements (times, loads) held against a tolerance,
    so that their run-to-run noise never makes the finding "changed" (timeline.value_digest)."""
    if kind not in KINDS:
        raise ValueError("unknown finding kind %r" % kind)
    if severity not in SEVERITY_RANK:
        raise ValueError("unknown severity %r" % severity)
    finding = {
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
    if measured:
        finding["measured"] = True
    return finding


ID_LENGTH = 16  # hex digits: 64 bits, no collision among the findings of any real run


def finding_id(finding):
    """A finding's identity, from what it is about (area, subject, key, check) and nothing else:
    not its values, severity, environments, position or run, so that one drift keeps its id from
    run to run, when hosts are added and whatever the order of the findings."""
    about = "\0".join((finding["area"], finding["subject"], finding["key"], finding["check"]))
    return hashlib.sha256(about.encode("utf-8", "surrogatepass")).hexdigest()[:ID_LENGTH]


def with_ids(findings):
    """Set each finding's `id`; the same identity twice in one run (two findings of one check about
    one key, e.g. expected on some hosts and not on others) gets `-2`, `-3`… in the findings' order."""
    seen = {}
    for finding in findings:
        base = finding_id(finding)
        seen[base] = seen.get(base, 0) + 1
        finding["id"] = base if seen[base] == 1 else "%s-%d" % (base, seen[base])
    return findings


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


# How a file the host's bounded reader could not read is described (areas add their own statuses).
FILE_STATUS_TEXT = {
    "missing": "file missing",
    "unreadable": "file unreadable",
    "not_regular": "not a regular file",
    "too_large": "file too large",
    "undecodable": "not UTF-8 text",
}

# Names listed in a sentence before the rest are counted (a fleet of 50 hosts is not 50 names).
SHOWN_NAMES = 3


def join_names(names):
    """'a, b and c'; beyond SHOWN_NAMES + 1 names, 'a, b, c and 47 more'."""
    names = list(names)
    if len(names) > SHOWN_NAMES + 1:
        return "%s and %d more" % (", ".join(names[:SHOWN_NAMES]), len(names) - SHOWN_NAMES)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def by_value(pairs, separator="="):
    """'dev=DEBUG; prod/web1, prod/web2, prod/web3 and 47 more=INFO' from (column, text) pairs: one
    part per distinct text, in column order, its columns folded (a fleet is not 50 parts)."""
    groups = {}
    for label, text in pairs:
        groups.setdefault(str(text), []).append(label)
    return "; ".join("%s%s%s" % (join_names(labels), separator, text) for text, labels in groups.items())


def subject_names(cells, section):
    """Every subject name (cell[section] keys) of the columns that have facts, sorted."""
    names = set()
    for cell in cells.values():
        if cell is not None and not is_unknown(cell):
            names.update((cell.get(section) or {}).keys())
    return sorted(names)


class SubjectColumns:
    """One subject of an area (an env file, a repository, a stack, a database) across the columns:
    its record in each column that has it (cell[section][name]), or the column's unknown marker.
    Each area's diff subclasses it and sets AREA."""

    AREA = None

    def __init__(self, name, section, columns, cells, context):
        self.name = name
        self.columns = columns
        self.context = context
        self.records = {}
        self.unknown = {}
        for label in columns:
            cell = cells.get(label)
            if is_unknown(cell):
                self.unknown[label] = cell
            elif cell is not None:
                record = (cell.get(section) or {}).get(name)
                if record is not None:
                    self.records[label] = record

    def configured(self):
        """The columns where the subject is configured (read, or unknown)."""
        return [label for label in self.columns if label in self.records or label in self.unknown]

    def production(self, labels):
        return [label for label in labels if label in self.context["production"]]

    def cells_not_compared(self):
        """{label: unknown cell} of columns that have the subject but whose record cannot be compared."""
        return {}

    def finding(
        self, key, kind, check, severity, values, environments, message, recommendation, detail=None, measured=False
    ):
        """A finding with a cell for every configured column (None unless values or unknown say otherwise)."""
        full = {label: None for label in self.configured()}
        full.update(self.unknown)
        full.update(self.cells_not_compared())
        full.update(values)
        finding = make_finding(
            area=self.AREA,
            subject=self.name,
            key=key,
            kind=kind,
            check=check,
            severity=severity,
            values=full,
            environments=environments,
            message=message,
            recommendation=recommendation,
            measured=measured,
        )
        if detail is not None:
            finding["detail"] = detail
        return finding
