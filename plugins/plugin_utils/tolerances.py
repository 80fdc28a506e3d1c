"""Tolerances of measured figures from the rules file: per area, subject (a glob) and, optionally,
environment, they override the thresholds the inventory sets (health: drift_health_thresholds;
endpoints: drift_endpoints_slower_ms and drift_endpoints_slower_percent).

Format (docs/rules.md):

    tolerances:
      - path: health/stack:ops      # "<area>/<subject glob>"
        environments: [prod]        # optional: only the columns of these environments
        thresholds: {memory_percent: 97, restarts: 5}
        reason: the batch worker runs near its limit by design   # required

The first tolerance (in file order) that matches an area, subject, column and threshold name
gives its value; the inventory's value (or the documented default) otherwise. Every value a
tolerance gave is recorded, so that the report says where the rules file changed a threshold.
Pure Python; no Ansible imports.
"""

import fnmatch
import numbers

from ansible_collections.envparity.audit.plugins.module_utils.health_collect import DEFAULT_THRESHOLDS
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import RulesError, check_entry, string_list

FIELDS = frozenset(("path", "environments", "thresholds", "reason"))
# The check each threshold decides (a finding it produced names the tolerance that applied).
CHECKS = {
    "disk_percent": "health.disk_full",
    "inode_percent": "health.inodes_full",
    "memory_percent": "health.memory_near_limit",
    "swap_percent": "health.swap_in_use",
    "load_per_cpu": "health.load_high",
    "restarts": "health.restarts",
    "clock_sync": "health.clock_unsynchronised",
    "error_rate_percent": "health.error_rate_higher",
    "error_rate_per_hour": "health.error_rate_higher",
    "slower_ms": "endpoints.slower",
    "slower_percent": "endpoints.slower",
}
# The thresholds each area reads through tolerance(): name -> the type its value must have.
NAMES = {
    "health": {name: type(value) for name, value in DEFAULT_THRESHOLDS.items()},
    "endpoints": {"slower_ms": float, "slower_percent": float},
}


def _valid_value(kind, value):
    if kind is bool:
        return isinstance(value, bool)
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value >= 0


def validate_tolerance(entry, where):
    """A normalised tolerance, or RulesError naming where it is."""
    check_entry(entry, "tolerance", FIELDS, ("path", "reason"), where)
    area, _, subject = entry["path"].partition("/")
    if area not in NAMES or not subject:
        raise RulesError(
            "%s: path must be <area>/<subject glob> with an area that has thresholds (%s), not %r"
            % (where, ", ".join(sorted(NAMES)), entry["path"])
        )
    thresholds = entry.get("thresholds")
    if not isinstance(thresholds, dict) or not thresholds:
        raise RulesError("%s: thresholds is required: a mapping of threshold name to value" % where)
    for name, value in thresholds.items():
        if name not in NAMES[area]:
            raise RulesError(
                "%s: %s has no threshold %r (thresholds: %s)" % (where, area, name, ", ".join(sorted(NAMES[area])))
            )
        if not _valid_value(NAMES[area][name], value):
            raise RulesError(
                "%s: %s must be %s" % (where, name, "true or false" if NAMES[area][name] is bool else "a number >= 0")
            )
    return {
        "path": entry["path"],
        "area": area,
        "subject": subject,
        "environments": string_list(entry, "environments", where),
        "thresholds": dict(thresholds),
        "reason": entry["reason"].strip(),
        "source": where,
    }


class Tolerances:
    """The run's tolerances, and a record of every value they gave (for the report)."""

    def __init__(self, entries, environment_of):
        self.entries = list(entries)
        self.environment_of = dict(environment_of)
        self.applied = {}

    def lookup(self, area, subject, label, name, default):
        """The value of threshold `name` for one subject and column: the first matching tolerance's,
        else `default` (the inventory's)."""
        environment = self.environment_of.get(label, label)
        for entry in self.entries:
            if (
                entry["area"] == area
                and name in entry["thresholds"]
                and fnmatch.fnmatchcase(subject, entry["subject"])
                and (entry["environments"] is None or environment in entry["environments"])
            ):
                value = entry["thresholds"][name]
                self.applied.setdefault(
                    (area, subject, label, name),
                    {
                        "area": area,
                        "subject": subject,
                        "column": label,
                        "name": name,
                        "value": value,
                        "default": default,
                        "source": entry["source"],
                        "reason": entry["reason"],
                    },
                )
                return value
        return default

    def unmatched(self, audited_areas):
        """The tolerances of audited areas that gave no threshold: their path matches nothing."""
        used = {entry["source"] for entry in self.applied.values()}
        return [
            {field: entry[field] for field in ("path", "reason", "source")}
            for entry in self.entries
            if entry["area"] in audited_areas and entry["source"] not in used
        ]

    def report(self):
        """Every value a tolerance gave, in (area, subject, column, name) order."""
        return [self.applied[key] for key in sorted(self.applied)]


def tolerance(context, area, subject, label, name, default):
    """The threshold a diff uses: the rules file's tolerance when one matches, else `default`.
    A context without tolerances (a diff called alone, as in unit tests) uses the default."""
    found = context.get("tolerances")
    return default if found is None else found.lookup(area, subject, label, name, default)


def annotate(findings, applied):
    """Give each finding the tolerances that applied to its check, subject and columns."""
    by_subject = {}
    for entry in applied:
        by_subject.setdefault((entry["area"], entry["subject"]), []).append(entry)
    for finding in findings:
        used = [
            {field: entry[field] for field in ("column", "name", "value", "default", "source")}
            for entry in by_subject.get((finding["area"], finding["subject"]), ())
            if entry["column"] in finding["environments"] and CHECKS[entry["name"]] == finding["check"]
        ]
        if used:
            finding["tolerances"] = used
    return findings
