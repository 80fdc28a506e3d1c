"""Table-driven type specs shared by every area's diff: how one kind of keyed thing (a catalog
object, a role, a git remote, a deployed file) is compared, shown and rated, as a record built
with keywords, one per kind, so that a table of kinds reads as what it is; and the keyed walk
over the columns that every such kind shares.

Pure Python; no Ansible imports.
"""

import dataclasses
import typing

from ansible_collections.envparity.audit.plugins.plugin_utils.compare import always_same, compare_key, union_keys
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import join_names


def get(field, default=None):
    """A getter of one field of a record, for `attributes`."""
    return lambda record: record.get(field, default)


def high_if(names, high, otherwise="medium"):
    """A `changed` rule: `high` when one of the named attributes differs, `otherwise` when not."""
    names = frozenset(names)
    return lambda differing: high if names & set(differing) else otherwise


def _rule(rule, argument):
    return rule(argument) if callable(rule) else rule


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObjectType:
    """How one kind of keyed thing is compared, shown and rated.

    noun: its name in messages; check: the prefix of its checks (`<check>_missing`, `_extra`,
    `_changed`), unless `checks` names a kind's check (a check, or for `changed` a function of
    the differing attribute names); text: the value shown in a column; attributes: (name,
    getter) pairs compared one by one; missing / extra: a severity, or a function of the
    baseline's object / of the extra object; changed: a severity, or a function of the differing
    attribute names; namespace: the key's prefix (`remotes.`, `roles.`); advice: recommendations
    by kind (`%(field)s` templates) that replace the area's generic ones.
    """

    noun: str
    check: str
    text: typing.Callable = str
    attributes: tuple = ()
    missing: object = "medium"
    extra: object = "low"
    changed: object = "medium"
    namespace: str = ""
    messages: dict = dataclasses.field(default_factory=dict)
    advice: dict = dataclasses.field(default_factory=dict)
    checks: dict = dataclasses.field(default_factory=dict)

    def differing(self, base, *others):
        """The names of the attributes in which one of others differs from base, in table order."""
        return [name for name, getter in self.attributes if any(getter(base) != getter(other) for other in others)]

    def same(self, base, other):
        return all(getter(base) == getter(other) for _, getter in self.attributes)

    def check_for(self, kind, differing=()):
        """The check of a finding of this kind (for `changed`, given the differing attribute names)."""
        rule = self.checks.get(kind)
        return _rule(rule, differing) if rule else "%s_%s" % (self.check, kind)

    def severity(self, kind, argument=None):
        """The severity of a finding of this kind; argument (for a rule that is a function): the
        baseline's object (missing), the extra object (extra) or the differing attribute names
        (changed)."""
        return _rule(getattr(self, kind), argument)

    def say(self, kind, default, **fields):
        """The type's own message for this kind, or the area's default, filled with fields."""
        return (self.messages.get(kind) or default) % fields

    def recommend(self, kind, default, **fields):
        """The type's own advice for this kind, or the area's default, filled with fields."""
        return (self.advice.get(kind) or default) % fields

    def cells(self, objects, labels):
        """{label: the text shown, or None where the object is absent}."""
        return {label: None if objects[label] is None else self.text(objects[label]) for label in labels}


def keyed_outcomes(spec, maps, labels):
    """How each keyed object of one type stands across the columns (labels[0] is the baseline).

    maps: {label: {name: object}}. Yields (name, objects, outcomes) for every name whose objects
    do not all agree, in name order: objects {label: object or None}; outcomes a list of (kind,
    columns): compare_key's ("missing", the columns lacking it) or ("extra", the columns having
    it), then ("changed", the columns that have it and differ from the baseline's by spec.same).
    """
    others = labels[1:]
    for name in union_keys(maps[label] for label in labels):
        objects = {label: maps[label].get(name) for label in labels}
        base = objects[labels[0]]
        outcomes = []
        presence = compare_key(objects, labels, same=always_same)
        if presence:
            outcomes.append(presence)
        if base is not None:
            changed = [label for label in others if objects[label] is not None and not spec.same(base, objects[label])]
            if changed:
                outcomes.append(("changed", changed))
        if outcomes:
            yield name, objects, outcomes


def presence_finding(subject, spec, shown, outcome, *, objects, labels, values, defaults=None, severity=None, **fields):
    """The missing or extra finding of one keyed object, worded from the spec.

    outcome: compare_key's ("missing", the columns lacking it) or ("extra", the columns having it);
    objects: {label: object or None} over labels (the baseline first); values: the cells shown;
    defaults: {"messages": {kind: template}, "advice": {kind: template}} for what the spec does not
    word itself; severity: overrides the spec's rule. Templates get object (shown), noun, Noun,
    where (the finding's columns), present (the columns having it), baseline, and the given fields.
    """
    kind, where = outcome
    defaults = defaults or {}
    fields.update(
        object=shown,
        noun=spec.noun,
        Noun=spec.noun.capitalize(),
        where=join_names(where),
        present=join_names(label for label in labels if objects[label] is not None),
        baseline=labels[0],
    )
    return subject.finding(
        spec.namespace + shown,
        kind,
        spec.check_for(kind),
        severity or spec.severity(kind, objects[labels[0]] if kind == "missing" else objects[where[0]]),
        values,
        where,
        spec.say(kind, (defaults.get("messages") or {}).get(kind), **fields),
        spec.recommend(kind, (defaults.get("advice") or {}).get(kind), **fields),
    )
