"""The other catalog object kinds of one database, compared across environments: triggers on views
(INSTEAD OF …) and indexes on materialized views, collations, composite and range types, rules,
event triggers, publications (and each published table's row filter and column list),
subscriptions, and the comments on every object (on roles: compared with the roles, pg_cluster).

Keyed like every other kind (pg_objects.keyed); the parts of an object missing on a side (a
view's triggers, a table's rules, a dropped object's comment) are not compared there. Pure
Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.compare import compare_key, union_keys
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import by_value, join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_objects import (
    INDEX,
    TRIGGER,
    CatalogType,
    get,
    high_if,
    keyed,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_security import object_exists, split_key


def _collation_text(collation):
    locale = collation.get("locale") or collation.get("collate")
    parts = ["%s %s" % (collation.get("provider"), locale)]
    if collation.get("ctype") and collation.get("ctype") != locale:
        parts.append("ctype %s" % collation["ctype"])
    if collation.get("deterministic") is False:
        parts.append("nondeterministic")
    return ", ".join(parts)


def _range_text(range_type):
    parts = ["range of %s" % range_type.get("subtype")]
    for field in ("collation", "opclass", "canonical", "subdiff"):
        if range_type.get(field):
            parts.append("%s %s" % (field, range_type[field]))
    return ", ".join(parts)


def _event_trigger_text(trigger):
    text = "ON %s EXECUTE FUNCTION %s()" % (trigger.get("event"), trigger.get("function"))
    if trigger.get("tags"):
        text += " WHEN TAG IN (%s)" % ", ".join(trigger["tags"])
    if trigger.get("enabled") not in (None, "origin"):
        text += " [%s]" % trigger["enabled"]
    return text


def _publication_text(publication):
    actions = [name for name in ("insert", "update", "delete", "truncate") if publication.get(name)]
    parts = [
        "all tables"
        if publication.get("all_tables")
        else "tables: %s" % (", ".join(publication.get("tables") or []) or "none")
    ]
    if publication.get("schemas"):
        parts.append("tables in schemas: %s" % ", ".join(publication["schemas"]))
    parts.append("publishes %s" % (", ".join(actions) or "nothing"))
    if publication.get("via_root"):
        parts.append("via the partition root")
    return "; ".join(parts)


def _subscription_text(subscription):
    return "publications %s%s%s" % (
        ", ".join(subscription.get("publications") or []),
        "" if subscription.get("enabled") else ", disabled",
        ", slot %s" % subscription["slot"] if subscription.get("slot") else "",
    )


COLLATION = CatalogType(
    noun="collation",
    check="postgres.collation",
    text=_collation_text,
    attributes=(
        ("provider", get("provider")),
        ("locale", lambda c: (c.get("locale"), c.get("collate"), c.get("ctype"))),
        ("deterministic", get("deterministic")),
    ),
    missing="high",
    extra="low",
    changed=lambda differing: "high",
)
COMPOSITE = CatalogType(
    noun="composite type",
    check="postgres.composite",
    text=lambda c: "(%s)" % ", ".join("%s %s" % tuple(item) for item in c.get("attributes") or []),
    attributes=(("attributes", lambda c: [list(item) for item in c.get("attributes") or []]),),
    missing="high",
    extra="low",
    changed=lambda differing: "high",
)
RANGE = CatalogType(
    noun="range type",
    check="postgres.range",
    text=_range_text,
    attributes=tuple(
        (name, get(field))
        for name, field in (
            ("subtype", "subtype"),
            ("collation", "collation"),
            ("operator class", "opclass"),
            ("canonical function", "canonical"),
            ("subtype difference function", "subdiff"),
        )
    ),
    missing="high",
    extra="low",
    changed=high_if(("subtype",), "high"),
)
RULE = CatalogType(
    noun="rule",
    check="postgres.rule",
    text=lambda r: r.get("definition") or "?",
    attributes=(("definition", get("definition")),),
    missing="high",
    extra="high",
    changed=lambda differing: "high",
)
EVENT_TRIGGER = CatalogType(
    noun="event trigger",
    check="postgres.event_trigger",
    text=_event_trigger_text,
    attributes=(
        ("event", get("event")),
        ("function", get("function")),
        ("tags", lambda e: sorted(e.get("tags") or [])),
        ("enabled state", get("enabled")),
    ),
    missing="high",
    extra="medium",
    changed=lambda differing: "high",
    namespace="event_triggers.",
)
PUBLICATION = CatalogType(
    noun="publication",
    check="postgres.publication",
    text=_publication_text,
    attributes=(
        ("all tables", get("all_tables")),
        ("tables", lambda p: sorted(p.get("tables") or [])),
        ("schemas", lambda p: sorted(p.get("schemas") or [])),
        ("published actions", lambda p: [bool(p.get(name)) for name in ("insert", "update", "delete", "truncate")]),
        ("via the partition root", get("via_root")),
    ),
    missing="high",
    extra="medium",
    changed=lambda differing: "high",
    namespace="publications.",
)


def _published_text(table):
    parts = ["WHERE %s" % table["where"] if table.get("where") else "every row"]
    parts.append("columns (%s)" % ", ".join(table["columns"]) if table.get("columns") else "every column")
    return ", ".join(parts)


# A table of a publication: its row filter (pg_get_expr) and column list, from PostgreSQL 15.
PUBLISHED_TABLE = CatalogType(
    noun="published table",
    check="postgres.publication_table",
    text=_published_text,
    attributes=(
        ("row filter", get("where")),
        ("column list", lambda t: list(t.get("columns") or [])),
    ),
    missing="high",
    extra="medium",
    changed=lambda differing: "high",
    namespace="publications.",
    advice={
        "changed": "Align the row filter and column list of published table %(object)s (publication.table) on "
        "%(where)s with %(baseline)s (ALTER PUBLICATION … SET TABLE … (columns) WHERE (…)) through a migration: "
        "subscribers receive other rows or columns."
    },
)
SUBSCRIPTION = CatalogType(
    noun="subscription",
    check="postgres.subscription",
    text=_subscription_text,
    attributes=(
        ("publications", lambda s: sorted(s.get("publications") or [])),
        ("enabled state", get("enabled")),
        ("slot", get("slot")),
    ),
    missing="high",
    extra="medium",
    changed=lambda differing: "medium",
    namespace="subscriptions.",
)


def _sections(db, name):
    return {label: db.catalogs[label].get(name) or {} for label in db.ok}


def view_part_findings(db):
    """Triggers of views (INSTEAD OF …) and indexes of materialized views, of the views every
    column has, keyed `<schema>.<view>.<name>` like a table's."""
    views = _sections(db, "views")
    common = set.intersection(*(set(views[label]) for label in db.ok))
    findings = []
    for name in sorted(common):
        for spec, part in ((TRIGGER, "triggers"), (INDEX, "indexes")):
            maps = {label: views[label][name].get(part) or {} for label in db.ok}
            findings += keyed(db, spec, maps, db.ok, name + ".")
    return findings


def rule_findings(db):
    """Rules of the relations every column has (a missing table or view is its own finding)."""
    relations = [
        set(db.catalogs[label].get("tables") or {}) | set(db.catalogs[label].get("views") or {}) for label in db.ok
    ]
    maps = {
        label: {key: rule for key, rule in rules.items() if all(rule.get("relation") in names for names in relations)}
        for label, rules in _sections(db, "rules").items()
    }
    return keyed(db, RULE, maps, db.ok)


def published_table_findings(db):
    """Row filters and column lists of the tables a publication lists on every column (which tables
    it lists is the publication's own finding), keyed `<publication>.<schema>.<table>`."""
    publications = _sections(db, "publications")
    common = set.intersection(*(set(publications[label]) for label in db.ok))
    maps = {label: {} for label in db.ok}
    for name in sorted(common):
        tables = set.intersection(*(set(publications[label][name].get("tables") or ()) for label in db.ok))
        for label in db.ok:
            filters = publications[label][name].get("filters") or {}
            for table in tables:
                maps[label]["%s.%s" % (name, table)] = filters.get(table) or {}
    return keyed(db, PUBLISHED_TABLE, maps, db.ok)


def comment_findings(db, roles=False):
    """COMMENT ON differences, on objects every column has: low (documentation, read by people
    and by tools that generate documentation or APIs from the schema).

    roles: the comments on roles only, which are the server's (pg_cluster compares them with the
    roles, once per server); else every other comment."""
    ok = db.ok
    baseline = ok[0]
    comments = _sections(db, "comments")
    findings = []
    for key in union_keys(comments.values()):
        kind, name = split_key(key)
        if (kind == "role") != roles:
            continue
        if kind is None or not all(object_exists(db.catalogs[label], kind, name) for label in ok):
            continue
        records = {label: comments[label].get(key) for label in ok}
        outcome = compare_key(records, ok, same=lambda one, other: one.get("hash") == other.get("hash"))
        if outcome is None:
            continue
        change, about = outcome
        values = {label: records[label]["text"] if records[label] else None for label in ok}
        shown = {label: ('"%s"' % values[label] if values[label] is not None else "no comment") for label in ok}
        findings.append(
            db.finding(
                "comments." + key,
                change,
                "postgres.comment_" + change,
                "low",
                values,
                about,
                "The comment on %s differs: %s." % (key, by_value((label, shown[label]) for label in ok)),
                "Set the comment on %s on %s as %s has it (COMMENT ON … IS …) through a migration, or record the "
                "difference as expected." % (key, join_names(about), baseline),
            )
        )
    return findings


def kind_findings(db):
    """The findings of every kind this module compares."""
    if len(db.ok) < 2:
        return []
    findings = view_part_findings(db)
    findings += keyed(db, COLLATION, _sections(db, "collations"), db.ok)
    findings += keyed(db, COMPOSITE, _sections(db, "composites"), db.ok)
    findings += keyed(db, RANGE, _sections(db, "ranges"), db.ok)
    findings += rule_findings(db)
    findings += keyed(db, EVENT_TRIGGER, _sections(db, "event_triggers"), db.ok)
    findings += keyed(db, PUBLICATION, _sections(db, "publications"), db.ok)
    findings += published_table_findings(db)
    findings += keyed(db, SUBSCRIPTION, _sections(db, "subscriptions"), db.ok)
    findings += comment_findings(db)
    return findings
