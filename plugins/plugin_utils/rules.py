"""Expected differences: rules files that mark findings as expected, and stale-rule detection.

Format (docs/rules.md):

    rules:
      - path: env/app/DATABASE_URL   # glob over "<area>/<subject>/<key>"
        kinds: [changed]             # optional: only these finding kinds
        checks: [env.value_changed]  # optional: only these checks
        environments: [prod]         # optional: only when every affected column is of these environments
        reason: why this difference is fine   # required

A rule never hides a finding of kind "unknown" unless it lists that kind explicitly: a host that
could not be collected is never "as expected" by accident. Pure Python; no Ansible imports.
"""

import fnmatch

import yaml

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import KINDS

RULE_FIELDS = frozenset(("path", "kinds", "checks", "environments", "reason"))


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule."""


def _string_list(rule, field, where):
    value = rule.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RulesError("%s: %s must be a list of strings" % (where, field))
    return value


def validate_rule(rule, where):
    """Return a normalised rule or raise RulesError naming where it is."""
    if not isinstance(rule, dict):
        raise RulesError("%s: a rule must be a mapping" % where)
    unknown = sorted(set(rule) - RULE_FIELDS)
    if unknown:
        raise RulesError("%s: unknown field(s) %s" % (where, ", ".join(unknown)))
    for field in ("path", "reason"):
        if not isinstance(rule.get(field), str) or not rule[field].strip():
            raise RulesError("%s: %s is required and must be a non-empty string" % (where, field))
    kinds = _string_list(rule, "kinds", where)
    if kinds and set(kinds) - set(KINDS):
        raise RulesError("%s: kinds must be among %s" % (where, ", ".join(KINDS)))
    return {
        "path": rule["path"],
        "reason": rule["reason"].strip(),
        "kinds": kinds,
        "checks": _string_list(rule, "checks", where),
        "environments": _string_list(rule, "environments", where),
        "source": where,
    }


def parse_rules(text, source):
    """Rules from one file's text; safe YAML only."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = " at line %d" % (mark.line + 1) if mark is not None else ""
        raise RulesError("%s: not valid YAML%s" % (source, line)) from None
    if document is None:
        return []
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise RulesError("%s: expected a mapping with a list under 'rules'" % source)
    return [
        validate_rule(rule, "%s rule %d" % (source, index + 1))
        for index, rule in enumerate(document.get("rules") or [])
    ]


def load_rules(paths):
    """Rules of every file in order, and the errors of the files that could not be used."""
    rules, errors = [], []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                rules.extend(parse_rules(handle.read(), path))
        except OSError as exc:
            errors.append("rules file %s: %s" % (path, exc.strerror))
        except (RulesError, UnicodeDecodeError) as exc:
            errors.append(str(exc))
    return rules, errors


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


def apply_rules(findings, rules, environment_of):
    """Mark matching findings expected (first matching rule wins); return the stale rules."""
    used = set()
    for finding in findings:
        for index, rule in enumerate(rules):
            if rule_matches(rule, finding, environment_of):
                finding["expected"] = True
                finding["reason"] = rule["reason"]
                used.add(index)
                break
    return [rule for index, rule in enumerate(rules) if index not in used]
