"""The rules file linter: malformed, duplicate, shadowed and stale rules, expired and expiring
waivers, malformed, duplicate and unmatched policies and tolerances, each with its file, entry
number and line.

Shadowed: a rule that can never match because an earlier rule (with no expiry) always matches
whatever it would. Stale: a rule the last audit's report lists as matching nothing (the linter
runs no audit). Unmatched: a policy the last report lists as judged on no compared value, or a
tolerance that gave no threshold in it though its area was audited. Pure Python; no Ansible imports.
"""

import fnmatch
import time

import yaml

from ansible_collections.envparity.audit.plugins.plugin_utils.policies import validate_policy
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import (
    EXPIRING_SOON_DAYS,
    RulesError,
    parse_document,
    section_lines,
    validate_rule,
    waiver_state,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.tolerances import validate_tolerance

# Problems that make the linter fail; the others are said and pass.
ERRORS = ("malformed", "duplicate", "shadowed", "expired")
WILDCARDS = "*?["


def problem(kind, source, line, message):
    return {"kind": kind, "source": source, "line": line, "message": message}


def _covers(earlier, later):
    """True when every "<area>/<subject>/<key>" that `later` matches, `earlier` matches too.

    Sound for literal paths and for patterns whose only wildcard is `*` (a `*` in the earlier
    pattern matches the later one's `*` as a character, and so every string it stands for);
    other wildcards are compared for equality only."""
    if earlier == later:
        return True
    if any(ch in later for ch in "?["):
        return False
    if "*" in later and any(ch in earlier for ch in "?["):
        return False
    return fnmatch.fnmatchcase(later, earlier)


def _list_covers(earlier, later):
    """None means every value (for kinds: every kind but unknown, as in rules.rule_matches)."""
    if earlier is None:
        return later is None or "unknown" not in later
    return later is not None and set(later) <= set(earlier)


def shadows(earlier, later):
    """Whether `earlier`, a rule in force with no expiry, matches every finding `later` matches."""
    if earlier.get("expires") is not None:
        return False
    return (
        _covers(earlier["path"], later["path"])
        and _list_covers(earlier["kinds"], later["kinds"])
        and _list_covers(earlier["checks"], later["checks"])
        and _list_covers(earlier["environments"], later["environments"])
    )


def _identity(rule):
    return tuple(
        (rule[field] if field == "path" else tuple(sorted(rule[field] or ())) if rule[field] is not None else None)
        for field in ("path", "kinds", "checks", "environments")
    )


def _entry_identity(entry):
    """What an entry matches and decides: a second entry with the same is never used (a policy's
    severity aside; a tolerance's values aside, as the first one's win)."""
    fields = {key: value for key, value in entry.items() if key not in ("source", "reason", "severity")}
    if "thresholds" in fields:
        fields["thresholds"] = sorted(fields["thresholds"])
    return repr(sorted(fields.items()))


def _entry_problems(document, text, source, section, noun, validate, unmatched_sources):
    """Malformed, duplicate and unmatched entries of the policies or tolerances section."""
    lines = section_lines(text, section)
    found, seen = [], {}
    for index, raw in enumerate(document.get(section) or []):
        line = lines[index] if index < len(lines) else None
        where = "%s %s %d" % (source, noun, index + 1)
        try:
            entry = validate(raw, where)
        except RulesError as exc:
            found.append(problem("malformed", source, line, str(exc)[len(where) + 2 :]))
            continue
        identity = _entry_identity(entry)
        if identity in seen:
            found.append(problem("duplicate", source, line, "same as %s %d (line %s)" % ((noun,) + seen[identity])))
        seen.setdefault(identity, (index + 1, line))
        if where in unmatched_sources:
            found.append(
                problem(
                    "unmatched",
                    source,
                    line,
                    "%s matched nothing in the last audit: %s" % (noun, entry["path"]),
                )
            )
    return found


def lint_text(text, source, now=None, stale_sources=(), soon_days=EXPIRING_SOON_DAYS, unmatched_sources=()):
    """Every problem of one rules file's text, in line order."""
    now = time.time() if now is None else now
    try:
        document = yaml.safe_load(text)
        lines = section_lines(text) if isinstance(document, dict) else []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return [problem("malformed", source, line, "not valid YAML")]
    if document is None:
        return []
    try:
        parse_document(text, source)
    except RulesError as exc:
        return [problem("malformed", source, 1, str(exc)[len(source) + 2 :])]
    found = _entry_problems(document, text, source, "policies", "policy", validate_policy, unmatched_sources)
    found += _entry_problems(document, text, source, "tolerances", "tolerance", validate_tolerance, unmatched_sources)
    return sorted(_rule_problems(document, lines, source, now, stale_sources, soon_days) + found, key=_line_order)


def _line_order(found):
    return found["line"] or 0


def _rule_problems(document, lines, source, now, stale_sources, soon_days):
    found, valid = [], []
    for index, raw in enumerate(document.get("rules") or []):
        line = lines[index] if index < len(lines) else None
        where = "%s rule %d" % (source, index + 1)
        try:
            rule = validate_rule(raw, where)
        except RulesError as exc:
            found.append(problem("malformed", source, line, str(exc)[len(where) + 2 :]))
            continue
        rule["line"], rule["number"] = line, index + 1
        for before in valid:
            if _identity(before) == _identity(rule):
                found.append(
                    problem(
                        "duplicate",
                        source,
                        line,
                        "same match as rule %d (line %s)" % (before["number"], before["line"]),
                    )
                )
                break
            if shadows(before, rule):
                found.append(
                    problem(
                        "shadowed",
                        source,
                        line,
                        "never matches: rule %d (line %s, %s) always matches first"
                        % (before["number"], before["line"], before["path"]),
                    )
                )
                break
        state = waiver_state(rule, now, soon_days)
        if state in ("expired", "expiring"):
            found.append(
                problem(
                    state,
                    source,
                    line,
                    "waiver %s %s (owner %s)"
                    % ("expired on" if state == "expired" else "expires", rule["expires"]["text"], rule["owner"]),
                )
            )
        if where in stale_sources:
            found.append(problem("stale", source, line, "matched nothing in the last audit: %s" % rule["path"]))
        valid.append(rule)
    return found


def unmatched_sources(report):
    """The policies and tolerances a report lists as matching nothing, as "<file> policy <n>" or
    "<file> tolerance <n>" (their line dropped)."""
    report = report or {}
    entries = (report.get("unmatched_policies") or []) + (report.get("unmatched_tolerances") or [])
    return {entry["source"].split(" (line ", 1)[0] for entry in entries}


def stale_sources(report):
    """The rules a report lists as stale, as "<file> rule <n>" (its line, if any, dropped)."""
    return {entry["source"].split(" (line ", 1)[0] for entry in (report or {}).get("stale_rules") or []}


def lint_files(paths, now=None, report=None):
    """Problems of every rules file; a file that cannot be read is one malformed problem."""
    stale, unmatched = stale_sources(report), unmatched_sources(report)
    found = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            found.append(problem("malformed", path, None, "cannot read: %s" % exc.strerror))
            continue
        except UnicodeDecodeError:
            found.append(problem("malformed", path, None, "not UTF-8 text"))
            continue
        found += lint_text(text, path, now, stale, unmatched_sources=unmatched)
    return found


def problem_lines(problems):
    """One line per problem, as compilers print them: file:line: kind: message."""
    return ["%s:%s: %s: %s" % (p["source"], p["line"] or "?", p["kind"], p["message"]) for p in problems]
