"""Expected differences: rules files that mark findings as expected, and stale-rule detection.

Format (docs/rules.md):

    rules:
      - path: env/app/DATABASE_URL   # glob over "<area>/<subject>/<key>"
        kinds: [changed]             # optional: only these finding kinds
        checks: [env.value_changed]  # optional: only these checks
        environments: [prod]         # optional: only when every affected column is of these environments
        reason: why this difference is fine   # required
        expires: 2026-12-31          # optional: a waiver; a date is UTC, to the end of that day
        owner: alice                 # required with expires: who answers for the waiver
        approver: bob                # optional
        ticket: OPS-123              # optional, free text

A rule whose expiry has passed hides nothing: its finding is reported unexpected, with the waiver
marked expired and its owner named. A rule never hides a finding of kind "unknown" unless it
lists that kind explicitly: a host that could not be collected is never "as expected" by
accident. Pure Python; no Ansible imports.
"""

import datetime
import fnmatch
import time

import yaml

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import KINDS

# The sections of a rules file: expected differences, the team's policies (policies.py) and
# tolerances of measured figures (tolerances.py).
SECTIONS = ("rules", "policies", "tolerances")
RULE_FIELDS = frozenset(("path", "kinds", "checks", "environments", "reason", "expires", "owner", "approver", "ticket"))
# A waiver this close to its expiry is listed as expiring soon.
EXPIRING_SOON_DAYS = 14
UTC = datetime.UTC


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule."""


def string_list(rule, field, where):
    value = rule.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RulesError("%s: %s must be a list of strings" % (where, field))
    return value


def check_entry(entry, noun, fields, required, where):
    """RulesError unless the entry of a section is a mapping of known fields whose required ones
    are non-empty strings."""
    if not isinstance(entry, dict):
        raise RulesError("%s: a %s must be a mapping" % (where, noun))
    unknown = sorted(str(name) for name in set(entry) - fields)
    if unknown:
        raise RulesError("%s: unknown field(s) %s" % (where, ", ".join(unknown)))
    for field in required:
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise RulesError("%s: %s is required and must be a non-empty string" % (where, field))


def validate_rule(rule, where):
    """Return a normalised rule or raise RulesError naming where it is."""
    check_entry(rule, "rule", RULE_FIELDS, ("path", "reason"), where)
    kinds = string_list(rule, "kinds", where)
    if kinds and set(kinds) - set(KINDS):
        raise RulesError("%s: kinds must be among %s" % (where, ", ".join(KINDS)))
    people = {}
    for field in ("owner", "approver", "ticket"):
        value = rule.get(field)
        if value is not None and (not isinstance(value, (str, int)) or not str(value).strip()):
            raise RulesError("%s: %s must be a non-empty string" % (where, field))
        people[field] = None if value is None else str(value).strip()
    expires = None
    if rule.get("expires") is not None:
        expires = parse_expiry(rule["expires"], where)
        if people["owner"] is None:
            raise RulesError("%s: a rule with expires (a waiver) must name its owner" % where)
    return dict(
        {
            "path": rule["path"],
            "reason": rule["reason"].strip(),
            "kinds": kinds,
            "checks": string_list(rule, "checks", where),
            "environments": string_list(rule, "environments", where),
            "source": where,
            "expires": expires,
        },
        **people,
    )


def _aware(moment, where):
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise RulesError(
            "%s: expires %s has no time zone: write a date (UTC, to the end of that day) or a time with "
            "Z or an offset, e.g. 2026-12-31T18:00:00+01:00" % (where, moment.isoformat())
        )
    return moment.astimezone(UTC)


def parse_expiry(value, where):
    """The moment a waiver stops hiding its finding, in UTC. A date means the end of that day in UTC
    (the waiver holds through 2026-12-31 UTC and no longer from 2027-01-01T00:00:00Z); a time must
    say its zone. Returns {"at": POSIX seconds, "text": the moment in UTC, as written}."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.date.fromisoformat(text)
        except ValueError:
            try:
                value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise RulesError(
                    "%s: expires must be a date (YYYY-MM-DD, UTC) or a time with its zone, not %r" % (where, text[:40])
                ) from None
    if isinstance(value, datetime.datetime):
        moment = _aware(value, where)
    elif isinstance(value, datetime.date):
        moment = datetime.datetime(value.year, value.month, value.day, tzinfo=UTC) + datetime.timedelta(days=1)
    else:
        raise RulesError("%s: expires must be a date (YYYY-MM-DD, UTC) or a time with its zone" % where)
    return {"at": moment.timestamp(), "text": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


def parse_document(text, source):
    """The rules file's mapping (safe YAML only), {} when empty; RulesError when it is not a mapping
    of known sections, each a list."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = " at line %d" % (mark.line + 1) if mark is not None else ""
        raise RulesError("%s: not valid YAML%s" % (source, line)) from None
    if document is None:
        return {}
    if not isinstance(document, dict) or not all(isinstance(document.get(name, []), list) for name in SECTIONS):
        raise RulesError("%s: expected a mapping with a list under %s" % (source, " or ".join(SECTIONS)))
    unknown = sorted(str(name) for name in document if name not in SECTIONS)
    if unknown:
        raise RulesError("%s: unknown section(s) %s (sections: %s)" % (source, ", ".join(unknown), ", ".join(SECTIONS)))
    return document


def section_entries(document, text, source, section, noun, validate):
    """Each entry of one section validated, named "<file> <noun> <n> (line <l>)" in its errors."""
    lines = section_lines(text, section)
    return [
        validate(
            entry, "%s %s %d%s" % (source, noun, index + 1, " (line %d)" % lines[index] if index < len(lines) else "")
        )
        for index, entry in enumerate(document.get(section) or [])
    ]


def parse_rules(text, source):
    """Rules from one file's text; safe YAML only."""
    return section_entries(parse_document(text, source), text, source, "rules", "rule", validate_rule)


def section_lines(text, section="rules"):
    """The line where each entry of a section's list starts (1-based), from the YAML node tree."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for key, value in root.value if isinstance(root, yaml.MappingNode) else ():
        if key.value == section and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def rule_matches(rule, finding, environment_of):
    if finding["kind"] == "unknown" and "unknown" not in (rule["kinds"] or []):
        return False
    if rule["kinds"] is not None and finding["kind"] not in rule["kinds"]:
        return False
    if rule["checks"] is not None and finding["check"] not in rule["checks"]:
        return False
    if rule["environments"] is not None:
        affected = {environment_of.get(label, label) for label in finding["environments"]}
        if not affected <= set(rule["environments"]):
            return False
    return fnmatch.fnmatchcase("%s/%s/%s" % (finding["area"], finding["subject"], finding["key"]), rule["path"])


def waiver_state(rule, now, soon_days=EXPIRING_SOON_DAYS):
    """None for a rule without expiry; else expired, expiring (within soon_days) or active."""
    if rule.get("expires") is None:
        return None
    left = rule["expires"]["at"] - now
    if left <= 0:
        return "expired"
    return "expiring" if left <= soon_days * 86400 else "active"


def waiver_record(rule, state):
    """What the report says about the waiver that matched a finding."""
    record = {"state": state, "expires": rule["expires"]["text"], "source": rule["source"], "reason": rule["reason"]}
    record.update({field: rule[field] for field in ("owner", "approver", "ticket")})
    return record


def apply_rules(findings, rules, environment_of, now=None, soon_days=EXPIRING_SOON_DAYS):
    """Mark matching findings expected (the first matching rule in force wins); return the stale rules.

    An expired waiver hides nothing: its finding stays unexpected (unless a later rule in force
    matches) and carries the waiver, marked expired, so the report names it and its owner. A rule
    that matched only as an expired waiver is not stale: it is reported as expired. `now`: POSIX
    time, default the current one."""
    now = time.time() if now is None else now
    used = set()
    for finding in findings:
        expired = None
        for index, rule in enumerate(rules):
            if not rule_matches(rule, finding, environment_of):
                continue
            used.add(index)
            state = waiver_state(rule, now, soon_days)
            if state == "expired":
                expired = expired or waiver_record(rule, state)
                continue
            finding["expected"] = True
            finding["reason"] = rule["reason"]
            if state is not None:
                finding["waiver"] = waiver_record(rule, state)
            break
        else:
            if expired is not None:
                finding["waiver"] = expired
    return [rule for index, rule in enumerate(rules) if index not in used]
