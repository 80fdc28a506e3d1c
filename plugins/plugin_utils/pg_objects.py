"""Catalog objects of one database compared across environments: schemas, tables (columns,
constraints, indexes, triggers, row level security, partitioning), views, functions, sequences,
enums, domains and extensions.

Every comparison is keyed by identity (schema.table, column name, index name …) with dict lookups
and set algebra, so the cost grows linearly with the catalog; a whole table is compared with one
string equality first (its canonical text, pg_tables) and only decoded and descended into when it
differs. difflib only explains the few view and function bodies that differ. Row estimates, sizes
and owners are never compared.

The keyed comparison (CatalogType, the shared ObjectType with a body and a verb, and keyed) serves
the cluster-wide roles too (pg_cluster): a subject passed in as `db` has `ok` (the readable
columns, the baseline first), `catalogs`, `upgrade` and `finding`. Pure Python; no Ansible imports.
"""

import dataclasses
import difflib

from ansible_collections.envparity.audit.plugins.module_utils.pg_tables import decode_table
from ansible_collections.envparity.audit.plugins.plugin_utils.compare import always_same, compare_key
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import by_value, join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.object_type import (
    ObjectType,
    get,
    high_if,
    keyed_outcomes,
    presence_finding,
)

DETAIL_LINES = 200
TRIGGER_STATE = {
    "origin": None,
    "disabled": "disabled",
    "replica": "fires on replicas only",
    "always": "fires always",
}


def plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def _short_hash(value):
    return (value or "")[:12] or "?"


def _lines(text):
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")


# --- object types ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class CatalogType(ObjectType):
    """A kind of catalog object: the shared type spec, plus body (the field whose unified diff goes
    into the finding's detail when the attribute "definition" differs) and verb (what the migration
    that brings it does: creates, adds). Its advice may also use the fields upgrade and migrate."""

    body: str = None
    verb: str = "creates"


def column_text(column):
    """A column as PostgreSQL would declare it, e.g. `integer not null default 0`."""
    parts = [column.get("type") or "?"]
    if column.get("collation"):
        parts.append('collate "%s"' % column["collation"])
    if column.get("nullable") is False:
        parts.append("not null")
    if column.get("default") is not None:
        parts.append("default %s" % column["default"])
    if column.get("identity"):
        parts.append("generated %s as identity" % column["identity"])
    if column.get("generated"):
        parts.append("generated always as (%s) stored" % column["generated"])
    return " ".join(parts)


def _trigger_text(trigger):
    state = TRIGGER_STATE.get(trigger.get("enabled"), trigger.get("enabled"))
    definition = trigger.get("definition") or "?"
    return "%s [%s]" % (definition, state) if state else definition


def _view_text(view):
    return "%s, sha256 %s" % (
        "materialized view" if view.get("materialized") else "view",
        _short_hash(view.get("hash")),
    )


def _function_text(function):
    parts = ["%s %s" % (function.get("language") or "?", function.get("kind") or "function")]
    if function.get("returns"):
        parts.append("returns %s" % function["returns"])
    parts.append(function.get("volatility") or "volatile")
    if function.get("security_definer"):
        parts.append("security definer")
    parts.append("sha256 %s" % _short_hash(function.get("hash")))
    return ", ".join(parts)


def _sequence_text(sequence):
    parts = [
        "%s%s" % ("unlogged " if sequence.get("unlogged") else "", sequence.get("type")),
        "increment %s" % sequence.get("increment"),
        "%s..%s" % (sequence.get("min"), sequence.get("max")),
    ]
    if sequence.get("start") is not None:
        parts.append("start %s" % sequence["start"])
    if sequence.get("cache") is not None:
        parts.append("cache %s" % sequence["cache"])
    if sequence.get("cycle"):
        parts.append("cycle")
    parts.append("owned by %s" % sequence["owned_by"] if sequence.get("owned_by") else "owned by none")
    return ", ".join(parts)


def _domain_text(domain):
    parts = [domain.get("base_type") or "?"]
    if domain.get("nullable") is False:
        parts.append("not null")
    if domain.get("default") is not None:
        parts.append("default %s" % domain["default"])
    parts += sorted(domain.get("constraints") or [])
    return " ".join(parts)


def _extension_text(extension):
    return "%s (schema %s)" % (extension.get("version"), extension.get("schema"))


MIGRATE = "apply the migration that %s (%s) before deploying the code that %s"
# An inherited column declared by the table too (local) or only inherited: a difference of its own,
# never between a child's column and its parent's (which is never inherited).
DECLARED = "declared by the table (not only inherited)"
COLUMN = CatalogType(
    noun="column",
    check="postgres.column",
    text=column_text,
    attributes=(
        ("type", get("type")),
        ("nullability", get("nullable")),
        ("default", get("default")),
        ("identity", get("identity")),
        ("generated expression", get("generated")),
        ("collation", get("collation")),
        (DECLARED, get("local")),
    ),
    missing="high",
    extra="low",
    changed=high_if(("type", "nullability"), "high"),
    verb="adds",
)
# pg_get_constraintdef ends a constraint that is not validated (convalidated false: added NOT VALID,
# its existing rows never checked) with this.
NOT_VALID = " NOT VALID"


def without_not_valid(definition):
    """A constraint definition without its NOT VALID mark (validation is compared on its own)."""
    if marked_not_valid(definition):
        return definition[: -len(NOT_VALID)]
    return definition


def definition_core(constraint):
    return without_not_valid(constraint.get("definition"))


def marked_not_valid(definition):
    """Whether a constraint definition (None: none) ends with the NOT VALID mark."""
    return (definition or "").endswith(NOT_VALID)


def is_not_valid(constraint):
    return bool(constraint) and marked_not_valid(constraint.get("definition"))


CONSTRAINT = CatalogType(
    noun="constraint",
    check="postgres.constraint",
    text=lambda c: c.get("definition") or c.get("type") or "?",
    attributes=(
        ("type", get("type")),
        ("definition", definition_core),
        # None where a production column's constraint_not_valid finding speaks for it (_constraint_maps)
        ("validation", lambda c: None if c.get("validation_reported") else is_not_valid(c)),
    ),
    missing="high",
    extra="medium",
    changed=high_if(("type", "definition"), "high"),
    verb="adds",
)
INDEX = CatalogType(
    noun="index",
    check="postgres.index",
    text=lambda i: i.get("definition") or "?",
    attributes=(("definition", get("definition")), ("uniqueness", get("unique")), ("primary key", get("primary"))),
    missing=lambda index: "high" if index.get("unique") or index.get("primary") else "medium",
    extra=lambda index: "medium" if index.get("unique") or index.get("primary") else "low",
    changed=high_if(("uniqueness", "primary key"), "high"),
)
TRIGGER = CatalogType(
    noun="trigger",
    check="postgres.trigger",
    text=_trigger_text,
    attributes=(("definition", get("definition")), ("enabled state", get("enabled"))),
    missing="high",
    extra="medium",
    changed=lambda differing: "high",
)
VIEW = CatalogType(
    noun="view",
    check="postgres.view",
    text=_view_text,
    attributes=(("materialized", get("materialized")), ("definition", get("hash"))),
    missing="high",
    extra="low",
    changed=lambda differing: "medium",
    body="definition",
)
FUNCTION = CatalogType(
    noun="function",
    check="postgres.function",
    text=_function_text,
    attributes=(
        ("kind", get("kind")),
        ("language", get("language")),
        ("return type", get("returns")),
        ("volatility", get("volatility")),
        ("security definer", get("security_definer")),
        ("definition", get("hash")),
    ),
    missing="high",
    extra="low",
    changed=high_if(("return type", "security definer"), "high"),
    body="body",
)
SEQUENCE = CatalogType(
    noun="sequence",
    check="postgres.sequence",
    text=_sequence_text,
    attributes=(
        *((name, get(name)) for name in ("type", "increment", "min", "max", "cycle", "start", "cache")),
        ("owned by", get("owned_by")),
        ("persistence", get("unlogged")),
    ),
    missing="medium",
    extra="low",
    changed=lambda differing: "medium",
)


def _domain_not_valid(domain):
    """The names of a domain's constraints NOT VALID, but those a production column's
    constraint_not_valid finding speaks for (_domain_maps)."""
    reported = set(domain.get("validation_reported") or ())
    return sorted(
        name
        for name, definition in (domain.get("named_constraints") or {}).items()
        if marked_not_valid(definition) and name not in reported
    )


DOMAIN = CatalogType(
    noun="domain",
    check="postgres.domain",
    text=_domain_text,
    attributes=(
        ("base type", get("base_type")),
        ("nullability", get("nullable")),
        ("default", get("default")),
        ("constraints", lambda d: sorted(without_not_valid(item) for item in d.get("constraints") or [])),
        ("validation", _domain_not_valid),
    ),
    missing="high",
    extra="low",
    changed=high_if(("base type", "nullability", "constraints"), "high"),
)
SCHEMA = CatalogType(
    noun="schema",
    check="postgres.schema",
    text=lambda s: "schema",
    attributes=(),
    missing="high",
    extra="low",
    changed=lambda differing: "low",
    namespace="schemas.",
    advice={
        "missing": "Create schema %(object)s on %(where)s: %(migrate)s.",
    },
)
EXTENSION = CatalogType(
    noun="extension",
    check="postgres.extension",
    text=_extension_text,
    attributes=(("version", get("version")), ("schema", get("schema"))),
    missing="high",
    extra="low",
    changed=lambda differing: "medium" if "version" in differing else "low",
    namespace="extensions.",
    advice={
        "missing": "Install extension %(object)s on %(where)s (CREATE EXTENSION %(object)s; the server needs "
        "its package), best through a migration, before deploying the code that uses it.",
        "extra": "Install extension %(object)s on %(baseline)s too (so that %(baseline)s tests what %(where)s runs), "
        "or drop it from %(where)s if nothing uses it.",
        "changed": "Update extension %(object)s on %(where)s to what %(baseline)s runs (ALTER EXTENSION %(object)s "
        "UPDATE; the server needs that version's package), or record the difference as expected.",
    },
    checks={"changed": "postgres.extension_version"},
)

# --- keyed comparison ------------------------------------------------------------------------------


def _fields(db, spec, shown, where):
    return {
        "object": shown,
        "noun": spec.noun,
        "where": where,
        "baseline": db.ok[0],
        "upgrade": db.upgrade,
        "migrate": MIGRATE % (spec.verb + " it", db.upgrade, "uses it"),
    }


# How a catalog object that one environment lacks is worded, unless its type says otherwise.
PRESENCE_WORDING = {
    "messages": {
        "missing": "%(where)s lacks %(noun)s %(object)s, which %(baseline)s has.",
        "extra": "%(Noun)s %(object)s exists in %(where)s but not in the baseline %(baseline)s.",
    },
    "advice": {
        "missing": "%(where)s lacks %(noun)s %(object)s: %(migrate)s.",
        "extra": "Check where %(noun)s %(object)s on %(where)s comes from: add it to the migrations so that "
        "%(baseline)s has it too, or drop it where it is no longer used.",
    },
}


def _presence_findings(db, spec, shown, objs, ok, outcome):
    """missing / extra findings for one object (shown: its name as written in messages; outcome:
    compare_key's for its presence)."""
    if outcome is None:
        return []
    return [
        presence_finding(
            db,
            spec,
            shown,
            outcome,
            objects=objs,
            labels=ok,
            values=spec.cells(objs, ok),
            defaults=PRESENCE_WORDING,
            upgrade=db.upgrade,
            migrate=MIGRATE % (spec.verb + " it", db.upgrade, "uses it"),
        )
    ]


def _body_detail(spec, shown, objs, ok, changed):
    """A unified diff of the baseline's normalised body against each distinct differing one."""
    baseline = ok[0]
    base = objs[baseline]
    groups = {}
    for label in changed:
        other = objs[label]
        if other.get("hash") != base.get("hash"):
            groups.setdefault(other.get("hash"), []).append(label)
    lines = []
    for labels in groups.values():
        other = objs[labels[0]]
        diff = list(
            difflib.unified_diff(
                _lines(base.get(spec.body)),
                _lines(other.get(spec.body)),
                fromfile="%s: %s" % (baseline, shown),
                tofile="%s: %s" % (", ".join(labels), shown),
                n=2,
                lineterm="",
            )
        )
        if not diff:
            diff = [
                "%s and %s: the %s of %s differs only where secrets were redacted on the host"
                % (baseline, ", ".join(labels), spec.body, shown)
            ]
        lines += diff
    if len(lines) > DETAIL_LINES:
        more = len(lines) - DETAIL_LINES
        lines = lines[:DETAIL_LINES] + ["… %d more lines not shown" % more]
    return "\n".join(lines) if lines else None


def _changed_finding(db, spec, shown, objs, ok, changed):
    baseline = ok[0]
    ordered = spec.differing(objs[baseline], *(objs[label] for label in changed))
    values = spec.cells(objs, ok)
    detail = _body_detail(spec, shown, objs, ok, changed) if spec.body and "definition" in ordered else None
    return db.finding(
        spec.namespace + shown,
        "changed",
        spec.check_for("changed", ordered),
        spec.severity("changed", ordered),
        values,
        changed,
        "%s %s differs in %s: %s."
        % (
            spec.noun.capitalize(),
            shown,
            join_names(ordered),
            by_value((label, values[label]) for label in ok if values[label] is not None),
        ),
        spec.recommend(
            "changed",
            "Align %(noun)s %(object)s on %(where)s with %(baseline)s through a migration (%(upgrade)s), "
            "or record the difference as expected.",
            **_fields(db, spec, shown, join_names(changed)),
        ),
        detail,
    )


def keyed(db, spec, maps, ok, parent=""):
    """missing / extra / changed findings for the objects of one type, keyed by identity.

    maps: {label: {name: object}} for the columns in ok (the first is the baseline); parent: the
    owning table's name and a dot, for columns, constraints, indexes and triggers.
    """
    if len(ok) < 2:
        return []
    findings = []
    for name, objs, outcomes in keyed_outcomes(spec, maps, ok):
        for kind, labels in outcomes:
            if kind == "changed":
                findings.append(_changed_finding(db, spec, parent + name, objs, ok, labels))
            else:
                findings += _presence_findings(db, spec, parent + name, objs, ok, (kind, labels))
    return findings


# --- tables ------------------------------------------------------------------------------------------


def _table_text(table):
    return "%s, %s" % (
        {"partitioned": "partitioned table", "foreign": "foreign table"}.get(table.get("kind"), "table"),
        plural(len(table.get("columns") or {}), "column"),
    )


def _rls_text(table):
    if not table.get("rls"):
        return "row level security off"
    return "row level security on" + (", forced" if table.get("rls_forced") else "")


def _partitioning_text(table):
    parts = [{"partitioned": "partitioned table", "foreign": "foreign table"}.get(table.get("kind"), "table")]
    if table.get("partition_key"):
        parts.append("partitioned by %s" % table["partition_key"])
    if table.get("partition_of"):
        parts.append("partition of %s" % table["partition_of"])
    if table.get("partition_bound"):
        parts.append(table["partition_bound"])
    if table.get("inherits"):
        parts.append("inherits %s" % ", ".join(table["inherits"]))
    return ", ".join(parts)


def _storage_text(table):
    """`unlogged, heap, (fillfactor=70), replica identity full, tablespace fast`: what differs from a
    plain table is named, the rest said as PostgreSQL's defaults."""
    parts = [table.get("persistence") or "logged"]
    if table.get("access_method"):
        parts.append("access method %s" % table["access_method"])
    if table.get("options"):
        parts.append("with (%s)" % ", ".join(table["options"]))
    parts.append("replica identity %s" % (table.get("replica_identity") or "default"))
    parts.append("tablespace %s" % (table.get("tablespace") or "default"))
    return ", ".join(parts)


TABLE = CatalogType(
    noun="table",
    check="postgres.table",
    text=_table_text,
    attributes=(),
    missing="high",
    extra="medium",
    changed=lambda differing: "high",
)
RLS = CatalogType(
    noun="table",
    check="postgres.rls",
    text=_rls_text,
    attributes=(("row level security", get("rls")), ("forced row level security", get("rls_forced"))),
    missing="high",
    extra="high",
    changed=lambda differing: "high",
    advice={
        "changed": "Align row level security of %(object)s on %(where)s with %(baseline)s "
        "(ALTER TABLE … ENABLE / FORCE ROW LEVEL SECURITY) through a migration: it decides which rows "
        "each role sees."
    },
)
PARTITIONING = CatalogType(
    noun="table",
    check="postgres.partitioning",
    text=_partitioning_text,
    attributes=(
        ("kind", get("kind")),
        ("partition key", get("partition_key")),
        ("parent", get("partition_of")),
        ("partition bound", get("partition_bound")),
        ("inherited tables", lambda t: list(t.get("inherits") or [])),
    ),
    missing="high",
    extra="high",
    changed=lambda differing: "high",
)
# Persistence, storage parameters, replica identity, access method, tablespace: an unlogged table
# is emptied by a crash, and a replica identity decides what logical replication can update.
STORAGE = CatalogType(
    noun="table",
    check="postgres.table",
    text=_storage_text,
    attributes=(
        ("persistence", get("persistence")),
        ("storage parameters", lambda t: list(t.get("options") or [])),
        ("replica identity", get("replica_identity")),
        ("access method", get("access_method")),
        ("tablespace", get("tablespace")),
    ),
    missing="high",
    extra="medium",
    changed=high_if(("persistence", "replica identity"), "high", "low"),
    advice={
        "changed": "Align table %(object)s on %(where)s with %(baseline)s (ALTER TABLE … SET LOGGED / UNLOGGED, "
        "SET (…) / RESET (…), REPLICA IDENTITY, SET ACCESS METHOD, SET TABLESPACE) through a migration, or record "
        "the difference as expected: an unlogged table loses its rows in a crash."
    },
)


def _table_findings(db):
    ok = db.ok
    if len(ok) < 2:
        return []
    baseline = ok[0]
    maps = {label: db.catalogs[label].get("tables") or {} for label in ok}
    # The fast path for the (many) identical tables: a table whose text (pg_tables) is the same in
    # every environment is not looked at (one string comparison each; only the others are sorted).
    base = maps[baseline]
    differing = set()
    for label in ok[1:]:
        other = maps[label]
        for name, table in base.items():
            twin = other.get(name)
            if twin is None or twin.get("shape") != table.get("shape"):
                differing.add(name)
        differing.update(name for name in other if name not in base)
    findings = []
    for name in sorted(differing):
        wire = {label: maps[label].get(name) for label in ok}
        objs = {label: None if wire[label] is None else decode_table(wire[label]) for label in ok}
        found = objs[baseline]
        findings += _presence_findings(db, TABLE, name, objs, ok, compare_key(objs, ok, same=always_same))
        if found is None:
            continue
        having = [label for label in ok if objs[label] is not None]
        if len(having) < 2:
            continue
        tables = {label: objs[label] for label in having}
        inherited = _inherited_columns(tables, maps, having)
        findings += _table_parts(db, name, tables, having, inherited)
    return findings


def _same_column(column, other):
    """A child's column and its parent's: the same but for being inherited."""
    if column is None or other is None:
        return column is other
    return all(getter(column) == getter(other) for name, getter in COLUMN.attributes if name != DECLARED)


def _single_parent(table):
    inherits = table.get("inherits") or []
    return table.get("partition_of") or (inherits[0] if len(inherits) == 1 else None)


def _inherited_columns(tables, maps, ok):
    """The columns of a partition, or of a table that inherits from one parent, that are its
    parent's in every column (a column added to a parent reaches each child) and inherited alike
    everywhere: the parent's findings speak for them."""
    parents = {_single_parent(tables[label]) for label in ok}
    if len(parents) != 1 or None in parents:
        return frozenset()
    parent = parents.pop()
    wires = {label: maps[label].get(parent) for label in ok}
    if any(wire is None for wire in wires.values()):
        return frozenset()
    parent_columns = {label: decode_table(wires[label]).get("columns") or {} for label in ok}
    columns = {label: tables[label].get("columns") or {} for label in ok}
    names = set()
    for label in ok:
        names.update(columns[label])
    return frozenset(
        name
        for name in names
        if all(_same_column(columns[label].get(name), parent_columns[label].get(name)) for label in ok)
        and len({columns[label][name].get("local") for label in ok if name in columns[label]}) == 1
    )


def _constraint_maps(db, tables, ok):
    """{label: {name: constraint}}; a constraint NOT VALID in a production column has its validation
    left out of the comparison: its own policy finding (pg_validation) says it, naming where it is
    validated, so that one fact is one finding."""
    maps = {label: tables[label].get("constraints") or {} for label in ok}
    reported = {name for label in db.production(ok) for name, item in maps[label].items() if is_not_valid(item)}
    if not reported:
        return maps
    return {
        label: {
            name: dict(item, validation_reported=True) if name in reported else item
            for name, item in maps[label].items()
        }
        for label in ok
    }


def _domain_maps(db, maps, ok):
    """{label: {domain: record}}; as for tables (_constraint_maps), a domain constraint NOT VALID in a
    production column is left out of the validation compared: its policy finding says it."""
    reported = {}
    for label in db.production(ok):
        for name, domain in maps[label].items():
            for constraint, definition in (domain.get("named_constraints") or {}).items():
                if marked_not_valid(definition):
                    reported.setdefault(name, set()).add(constraint)
    if not reported:
        return maps
    return {
        label: {
            name: dict(domain, validation_reported=sorted(reported[name])) if name in reported else domain
            for name, domain in maps[label].items()
        }
        for label in ok
    }


def _table_parts(db, name, tables, ok, inherited):
    prefix = name + "."
    findings = []
    columns = {
        label: {
            column: value for column, value in (tables[label].get("columns") or {}).items() if column not in inherited
        }
        for label in ok
    }
    findings += keyed(db, COLUMN, columns, ok, prefix)
    constraint_findings = keyed(db, CONSTRAINT, _constraint_maps(db, tables, ok), ok, prefix)
    findings += constraint_findings
    # An index that backs a constraint (primary key, unique, exclusion) has the constraint's name:
    # when the constraint itself is reported, its index is not reported a second time.
    reported = {finding["key"][len(prefix) :] for finding in constraint_findings}
    indexes = {
        label: {k: v for k, v in (tables[label].get("indexes") or {}).items() if k not in reported}
        if reported
        else tables[label].get("indexes") or {}
        for label in ok
    }
    findings += keyed(db, INDEX, indexes, ok, prefix)
    findings += keyed(db, TRIGGER, {label: tables[label].get("triggers") or {} for label in ok}, ok, prefix)
    for spec in (RLS, PARTITIONING, STORAGE):
        base = tables[ok[0]]
        changed = [label for label in ok[1:] if not spec.same(base, tables[label])]
        if changed:
            findings.append(_changed_finding(db, spec, name, tables, ok, changed))
    return findings


# --- enums, settings, role configuration --------------------------------------------------------------


ENUM = CatalogType(
    noun="enum",
    check="postgres.enum",
    text=lambda e: ", ".join(e.get("labels") or []),
    attributes=(("labels", lambda e: list(e.get("labels") or [])),),
    missing="high",
    extra="low",
    changed=lambda differing: "medium",
)


def _enum_findings(db):
    ok = db.ok
    if len(ok) < 2:
        return []
    maps = {label: db.catalogs[label].get("enums") or {} for label in ok}
    findings = []
    baseline = ok[0]
    for finding in keyed(db, ENUM, maps, ok):
        if finding["check"] != "postgres.enum_changed":
            findings.append(finding)
            continue
        key = finding["key"]
        base = list(maps[baseline][key].get("labels") or [])
        base_set = set(base)
        phrases, severity = [], "low"
        for label in finding["environments"]:
            other = list(maps[label][key].get("labels") or [])
            other_set = set(other)
            removed = [item for item in base if item not in other_set]
            added = [item for item in other if item not in base_set]
            parts = []
            if removed:
                parts.append("lacks %s" % ", ".join("'%s'" % item for item in removed))
                severity = "high"
            if added:
                parts.append("adds %s" % ", ".join("'%s'" % item for item in added))
                if severity != "high":
                    severity = "medium"
            if not removed and not added:
                parts.append("orders the labels differently")
            phrases.append("%s %s" % (label, " and ".join(parts)))
        finding["severity"] = severity
        finding["message"] = "Enum %s differs from %s: %s." % (key, baseline, "; ".join(phrases))
        finding["recommendation"] = (
            "Align the labels of %s on %s with %s through a migration (ALTER TYPE … ADD VALUE; a label can only be "
            "removed or reordered by recreating the type): the code writes labels the database must accept."
            % (key, join_names(finding["environments"]), baseline)
        )
        findings.append(finding)
    return findings


def catalog_findings(db):
    """The findings of every kind of catalog object but settings and roles (pg_cluster)."""
    ok = db.ok
    if len(ok) < 2:
        return []

    def section(name):
        return {label: db.catalogs[label].get(name) or {} for label in ok}

    findings = []
    findings += keyed(db, SCHEMA, section("schemas"), ok)
    findings += _table_findings(db)
    findings += keyed(db, VIEW, section("views"), ok)
    findings += keyed(db, FUNCTION, section("functions"), ok)
    findings += keyed(db, SEQUENCE, section("sequences"), ok)
    findings += _enum_findings(db)
    findings += keyed(db, DOMAIN, _domain_maps(db, section("domains"), ok), ok)
    findings += keyed(db, EXTENSION, section("extensions"), ok)
    return findings
