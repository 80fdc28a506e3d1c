"""The team's own policies from the rules file, held against the compared values of every area.

Format (docs/rules.md):

    policies:
      - must_equal: docker/app/services.web.image   # glob over "<area>/<subject>/<key>"
        environments: [staging, prod]               # optional: default every environment
        severity: high
        reason: prod runs the image staging tested
      - must_differ: env/app/*
        secret: true                                # optional: only secret (true) or plain (false) values
        environments: [dev, prod]
        severity: critical
        reason: no secret is shared between dev and prod
      - value: env/app/LOG_LEVEL
        environments: [prod]
        one_of: [INFO, WARNING]
        severity: medium
        reason: prod logs at INFO or above

Compared values: each area's values per (subject, key) and column, equal ones included, as the
area's diff compares them (compared_values). Secrets are compared by their keyed fingerprint and
shown lettered (‹secret A›), never in clear; a `value` policy never reads a secret (it cannot).
A violated policy is a finding of kind "policy", check "policy.<type>", its id from area, subject,
key and check like every finding. Pure Python; no Ansible imports.
"""

import fnmatch
import re

from ansible_collections.envparity.audit.plugins.module_utils.areas import AREA_NAMES
from ansible_collections.envparity.audit.plugins.plugin_utils import docker_diff, endpoints_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SEVERITIES,
    by_value,
    is_unknown,
    join_names,
    make_finding,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import RulesError, check_entry, string_list
from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import record_cells, record_identity

TYPES = ("must_equal", "must_differ", "value")
FIELDS = frozenset(TYPES + ("environments", "severity", "reason", "one_of", "secret"))
# Finding kinds whose values are the compared values themselves (a policy finding's are descriptions).
VALUE_KINDS = ("missing", "extra", "changed")
SECRET_MARK = "‹"  # secret cells are shown as ‹secret A, …› or ‹empty secret› (secret_text.record_text)


def validate_policy(entry, where):
    """A normalised policy, or RulesError naming where it is."""
    check_entry(entry, "policy", FIELDS, ("reason",), where)
    types = [name for name in TYPES if name in entry]
    if len(types) != 1:
        raise RulesError("%s: a policy has exactly one of %s (its path)" % (where, ", ".join(TYPES)))
    kind = types[0]
    if not isinstance(entry[kind], str) or entry[kind].count("/") < 2:
        raise RulesError("%s: %s must be a path glob <area>/<subject>/<key>" % (where, kind))
    area = entry[kind].split("/", 1)[0]
    if not any(fnmatch.fnmatchcase(name, area) for name in AREA_NAMES):
        raise RulesError("%s: %s names no area (%r; areas: %s)" % (where, kind, area, ", ".join(AREA_NAMES)))
    if entry.get("severity") not in SEVERITIES:
        raise RulesError("%s: severity is required: one of %s" % (where, ", ".join(SEVERITIES)))
    one_of = entry.get("one_of")
    if kind == "value":
        if not isinstance(one_of, list) or not one_of or not all(isinstance(v, (str, int, float)) for v in one_of):
            raise RulesError("%s: a value policy needs one_of: a non-empty list of values" % where)
        one_of = [str(v) for v in one_of]
    elif one_of is not None:
        raise RulesError("%s: one_of belongs to value policies only" % where)
    if entry.get("secret") is not None and not isinstance(entry["secret"], bool):
        raise RulesError("%s: secret must be true or false" % where)
    environments = string_list(entry, "environments", where)
    if kind != "value" and environments is not None and len(set(environments)) < 2:
        raise RulesError("%s: %s compares environments: list at least two (or none: all)" % (where, kind))
    return {
        "type": kind,
        "path": entry[kind],
        "environments": environments,
        "severity": entry["severity"],
        "reason": entry["reason"].strip(),
        "one_of": one_of,
        "secret": entry.get("secret"),
        "source": where,
    }


# ---------------------------------------------------------------- compared values
class _Row(dict):
    """One key's compared values: {label: (identity, secret) or None where absent}. identity decides
    equality (a secret's fingerprint, never its value); texts() is what a report shows (a secret
    lettered, never in clear), made only when asked (a broken policy, a value policy)."""

    def __init__(self, values, show):
        super().__init__(values)
        self._show = show
        self._texts = None

    def texts(self):
        if self._texts is None:
            self._texts = self._show()
        return self._texts


def _record_row(records, labels):
    """Values of describe_value records (module_utils/redact.py) of one key across columns."""
    return _Row(
        {
            label: None if records[label] is None else (record_identity(records[label]), records[label]["secret"])
            for label in labels
        },
        lambda: record_cells(records, labels),
    )


def _plain_row(texts, secret=lambda text: False):
    """Values compared and shown as they are (already redacted by the host or the area)."""
    return _Row(
        {label: None if text is None else (text, secret(str(text))) for label, text in texts.items()},
        lambda: {label: None if text is None else str(text) for label, text in texts.items()},
    )


def _readable(cells, section, ok):
    """{subject: {label: record}} of the columns whose facts hold the subject and ok(record) says it was read."""
    found = {}
    for label, cell in cells.items():
        if cell is None or is_unknown(cell):
            continue
        for name, record in (cell.get(section) or {}).items():
            if ok(record):
                found.setdefault(name, {})[label] = record
    return found


def _env_values(cells):
    for name, files in _readable(cells, "files", lambda record: record.get("status") == "ok").items():
        labels = list(files)
        for key in sorted(set().union(*(files[label]["keys"] for label in labels))):
            yield name, key, _record_row({label: files[label]["keys"].get(key) for label in labels}, labels)


def _docker_values(cells):
    for name, stacks in _readable(cells, "stacks", lambda record: record.get("status") == "ok").items():
        labels = list(stacks)
        services = {label: stacks[label].get("services") or {} for label in labels}
        for svc in sorted(set().union(*services.values())):
            declared = {label: services[label].get(svc) for label in labels}
            for attribute in docker_diff.ATTRIBUTES:
                texts = {
                    label: None if declared[label] is None else docker_diff.attribute_text(declared[label], attribute)
                    for label in labels
                }
                yield name, "services.%s.%s" % (svc, attribute), _plain_row(texts)
            environments = {label: (declared[label] or {}).get("environment") or {} for label in labels}
            for key in sorted(set().union(*environments.values())):
                records = {label: environments[label].get(key) for label in labels}
                yield name, "services.%s.environment.%s" % (svc, key), _record_row(records, labels)


def _git_values(cells):
    for name, repos in _readable(cells, "repos", lambda record: record.get("status") == "ok").items():
        labels = list(repos)
        heads = {label: repos[label].get("head") for label in labels}
        # the commit checked out, compared whole, shown abbreviated
        yield (
            name,
            "head",
            _Row(
                {label: None if sha is None else (sha, False) for label, sha in heads.items()},
                lambda heads=heads: {label: None if sha is None else sha[:10] for label, sha in heads.items()},
            ),
        )
        yield name, "branch", _plain_row({label: repos[label].get("branch") or "(detached)" for label in labels})
        yield name, "stash", _plain_row({label: str(repos[label].get("stash_count") or 0) for label in labels})
        remotes = {label: repos[label].get("remotes") or {} for label in labels}
        for remote in sorted(set().union(*remotes.values())):
            yield name, "remotes." + remote, _plain_row({label: remotes[label].get(remote) for label in labels})


def _lettered(texts, secret):
    """{label: text} with each distinct secret text named ‹secret A›, B… in column order (as the
    areas show secrets), never by its fingerprint."""
    letters = {}
    for text in texts.values():
        if text is not None and secret(text) and text not in letters:
            letters[text] = "‹secret %s›" % chr(ord("A") + len(letters) % 26)
    return {label: letters.get(text, text) for label, text in texts.items()}


def _endpoint_values(cells):
    def answered(record):
        return record.get("status") == "ok" and isinstance(record.get("http"), dict)

    def secret(text):
        return text.startswith(endpoints_diff.SECRET_PREFIX)

    for name, records in _readable(cells, "endpoints", answered).items():
        views = {label: endpoints_diff.endpoint_view(record)["view"] for label, record in records.items()}
        for key in sorted(set().union(*views.values())):
            texts = {label: view.get(key) for label, view in views.items()}
            yield (
                name,
                key,
                _Row(
                    {label: None if text is None else (text, secret(text)) for label, text in texts.items()},
                    lambda texts=texts: _lettered(texts, secret),
                ),
            )


# Areas whose every compared value (equal ones too) is read from the facts; elsewhere policies
# see what the area's diff recorded as it compared (equal ones too), and the values of what
# differs (the area's findings of kinds missing, extra and changed).
VALUE_READERS = {"env": _env_values, "docker": _docker_values, "git": _git_values, "endpoints": _endpoint_values}


def _finding_row(finding):
    return _plain_row(
        {label: text for label, text in finding["values"].items() if not is_unknown(text)},
        lambda text: SECRET_MARK in text,
    )


def compared_values(area, cells, findings, recorded=None):
    """{(subject, key): _Row} of one area: read from the facts (VALUE_READERS), else the values
    its diff recorded as it compared them (compare.record_compared: postgres settings, health host
    facts, deps packages), completed by the values of the area's findings about differences."""
    table = {}
    reader = VALUE_READERS.get(area)
    if reader is not None:
        for subject, key, row in reader(cells):
            table[(subject, key)] = row
    for (subject, key), texts in sorted((recorded or {}).items()):
        table.setdefault((subject, key), _plain_row(texts, lambda text: SECRET_MARK in text))
    for finding in findings:
        if finding["area"] == area and finding["kind"] in VALUE_KINDS:
            table.setdefault((finding["subject"], finding["key"]), _finding_row(finding))
    return table


# ---------------------------------------------------------------- evaluation


def _scope(policy, row, environment_of):
    """The columns of the row in the policy's environments, in column order."""
    wanted = policy["environments"]
    return [label for label in row if wanted is None or environment_of[label] in wanted]


def _violations(policy, row, scope, environment_of):
    """The columns that break the policy (empty: it holds), or None when it cannot be judged here."""
    if policy["type"] == "value":
        judged = [label for label in scope if row[label] is None or not row[label][1]]
        if not judged:
            return None
        return [label for label in judged if row[label] is None or row.texts()[label] not in policy["one_of"]]
    if len({environment_of[label] for label in scope}) < 2:
        return None
    if policy["type"] == "must_equal":
        reference = row[scope[0]]
        identity = None if reference is None else reference[0]
        return [label for label in scope if (None if row[label] is None else row[label][0]) != identity]
    broken = set()
    for first in scope:
        for second in scope:
            same = row[first] is not None and row[second] is not None and row[first][0] == row[second][0]
            if same and environment_of[first] != environment_of[second]:
                broken.update((first, second))
    return [label for label in scope if label in broken]


def _wording(policy, key, scope, environment_of):
    where = join_names(sorted({environment_of[label] for label in scope}, key=list(environment_of.values()).index))
    if policy["type"] == "must_equal":
        return "%s must be the same in %s" % (key, where), "Make %s the same in %s" % (key, where)
    if policy["type"] == "must_differ":
        return "%s must differ between %s" % (key, where), "Give %s its own value in each of %s" % (key, where)
    allowed = ", ".join(policy["one_of"])
    return "%s must be one of %s in %s" % (key, allowed, where), "Set %s to one of %s in %s" % (key, allowed, where)


def policy_finding(policy, area, subject, key, row, scope, broken, environment_of):
    values = {label: row.texts()[label] for label in scope}
    rule, advice = _wording(policy, key, scope, environment_of)
    shown = by_value((label, "—" if values[label] is None else values[label]) for label in scope)
    finding = make_finding(
        area=area,
        subject=subject,
        key=key,
        kind="policy",
        check="policy.%s" % policy["type"],
        severity=policy["severity"],
        values=values,
        environments=broken,
        message="Policy broken on %s (%s): %s. %s: %s."
        % (join_names(broken), policy["source"], policy["reason"], rule, shown),
        recommendation="%s, or change the policy (%s)." % (advice, policy["source"]),
    )
    finding["policy"] = {
        "type": policy["type"],
        "path": policy["path"],
        "source": policy["source"],
        "reason": policy["reason"],
    }
    return finding


def evaluate(policies, area, table, environment_of, matched):
    """The findings of the policies broken in one area's compared values. `matched` (a set of
    policy indexes) gains each policy judged on at least one value."""
    findings = []
    rows = [("%s/%s/%s" % (area, subject, key), subject, key, row) for (subject, key), row in sorted(table.items())]
    for index, policy in enumerate(policies):
        matches = re.compile(fnmatch.translate(policy["path"])).match
        for path, subject, key, row in rows:
            if not matches(path):
                continue
            if policy["secret"] is not None and any(value and value[1] for value in row.values()) != policy["secret"]:
                continue
            scope = _scope(policy, row, environment_of)
            broken = _violations(policy, row, scope, environment_of) if scope else None
            if broken is None:
                continue
            matched.add(index)
            if broken:
                findings.append(policy_finding(policy, area, subject, key, row, scope, broken, environment_of))
    return findings


def unmatched(policies, matched, audited_areas):
    """Policies judged on no value though their area was audited: their path matches nothing."""
    found = []
    for index, policy in enumerate(policies):
        area = policy["path"].split("/", 1)[0]
        if index in matched:
            continue
        if any(fnmatch.fnmatchcase(name, area) for name in audited_areas):
            found.append({field: policy[field] for field in ("type", "path", "reason", "source")})
    return found
