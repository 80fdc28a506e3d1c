"""Who may do what in one database, compared across environments: privileges on every object
(GRANT / REVOKE), default privileges (ALTER DEFAULT PRIVILEGES), row level security policies and
large objects' ACLs (per owner, without the oids each environment numbers its own).

A prod table whose grants or policies differ from dev's is a security incident, not a cosmetic
difference: a privilege or a policy one side has and the other lacks is one finding per object
and grantee (privileges) or per policy, worded as what the environment grants or lets through.

Privileges travel as {"<kind> <object>": {grantee: [privileges]}} for the objects with an explicit
ACL; an object without one has its kind's default (privilege_defaults, as the server's acldefault
prints it), so that an ACL written out equal to the default is no difference. The owner is
"(owner)" whatever its name. The privileges of an object missing on a side are not compared (the
object's own finding says it). Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.module_utils.pg_tables import decode_shape
from ansible_collections.envparity.audit.plugins.plugin_utils.compare import compare_key, union_keys
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import by_value, join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_objects import CatalogType, get, keyed

GRANT_OPTION = " WITH GRANT OPTION"
# Where an object of each kind of the privileges and comments sections is listed in the catalog.
KIND_SECTIONS = {
    "table": ("tables",),
    "foreign table": ("tables",),
    "view": ("views",),
    "materialized view": ("views",),
    "sequence": ("sequences",),
    "function": ("functions",),
    "schema": ("schemas",),
    "type": ("enums", "domains", "composites", "ranges"),
    "collation": ("collations",),
    "rule": ("rules",),
    "event trigger": ("event_triggers",),
    "publication": ("publications",),
    "subscription": ("subscriptions",),
    "extension": ("extensions",),
    "role": ("roles",),
}
# Kinds whose objects belong to a table (or a view): "<kind> schema.table.name".
TABLE_PARTS = {"column": "columns", "index": "indexes", "constraint": "constraints", "trigger": "triggers"}
# Every kind a privileges or comments key starts with, the two-word ones first.
KINDS = ("materialized view", "foreign table", *KIND_SECTIONS, *TABLE_PARTS, "policy", "database")
# The kind of object each ALTER DEFAULT PRIVILEGES entry is about (its defaults when global).
DEFAULT_PRIVILEGE_KINDS = {
    "tables": "table",
    "sequences": "sequence",
    "functions": "function",
    "types": "type",
    "schemas": "schema",
}


def split_key(name):
    """(kind, object) from a privileges or comments key: "table public.notes", "column public.t.c", "database"."""
    for kind in KINDS:
        if name == kind or name.startswith(kind + " "):
            return kind, name[len(kind) + 1 :]
    return None, name


def object_exists(catalog, kind, name):
    """Whether the object a privileges or comments key names is in the catalog (the database always is)."""
    if kind == "database":
        return True
    if kind == "policy":
        return name in (catalog.get("policies") or {})
    if kind in TABLE_PARTS:
        table, _, item = name.rpartition(".")
        wire = (catalog.get("tables") or {}).get(table)
        if wire is not None:
            return item in (decode_shape(wire["shape"]).get(TABLE_PARTS[kind]) or {})
        view = (catalog.get("views") or {}).get(table)
        # A view's columns are not in the facts: a view that exists has them.
        return view is not None and (kind == "column" or item in (view.get(TABLE_PARTS[kind]) or {}))
    return any(name in (catalog.get(section) or {}) for section in KIND_SECTIONS.get(kind, ()))


def privileges_text(privileges):
    """'INSERT, SELECT WITH GRANT OPTION' (sorted as collected), 'no privileges' for none."""
    return ", ".join(privileges) if privileges else "no privileges"


def _held(privileges):
    """{privilege: with grant option} from the collected list."""
    held = {}
    for item in privileges or ():
        name = item[: -len(GRANT_OPTION)] if item.endswith(GRANT_OPTION) else item
        held[name] = held.get(name, False) or item.endswith(GRANT_OPTION)
    return held


def _grant_sql(held, statement, grantee):
    """The statements that give a grantee exactly these privileges (after revoking the rest).

    statement: (prefix, ON clause, column or None): a column's privileges read `UPDATE (title)`."""
    prefix, target, column = statement
    columns = " (%s)" % column if column else ""
    grantee = "the owner" if grantee == "(owner)" else grantee
    statements = ["%sREVOKE ALL%s ON %s FROM %s" % (prefix, columns, target, grantee)]
    for option, suffix in ((False, ""), (True, GRANT_OPTION)):
        names = sorted(name + columns for name, grantable in held.items() if grantable is option)
        if names:
            statements.append("%sGRANT %s ON %s TO %s%s" % (prefix, ", ".join(names), target, grantee, suffix))
    return "; ".join(statements)


def _statement(kind, name):
    """(prefix, ON clause, column) of a GRANT for a privileges key."""
    if kind == "column":
        table, _, column = name.rpartition(".")
        return "", "TABLE %s" % table, column
    if kind in ("view", "materialized view", "foreign table"):
        return "", "TABLE %s" % name, None
    if kind == "database":
        return "", "DATABASE (this database)", None
    return "", "%s %s" % (kind.upper(), name), None


def _changes(base, other):
    """What `other` grants beyond `base` and lacks of it, as phrases, and whether it widens access."""
    added = sorted(set(other) - set(base))
    removed = sorted(set(base) - set(other))
    option_added = sorted(name for name in other if other[name] and base.get(name) is False)
    option_removed = sorted(name for name in other if base.get(name) and other[name] is False)
    parts = []
    if added:
        parts.append("grants %s" % ", ".join(added))
    if option_added:
        parts.append("adds the grant option on %s" % ", ".join(option_added))
    if removed:
        parts.append("lacks %s" % ", ".join(removed))
    if option_removed:
        parts.append("lacks the grant option on %s" % ", ".join(option_removed))
    return " and ".join(parts), bool(added or option_added)


def common_roles(db):
    """The grantees compared: PUBLIC, the owner, predefined roles and the roles every column has
    (a role missing on a side is its own finding, its grants are not repeated)."""
    names = None
    for label in db.ok:
        roles = set(db.catalogs[label].get("roles") or {})
        names = roles if names is None else names & roles
    return frozenset(names or ()) | {"PUBLIC", "(owner)"}


def _compared(grantee, roles):
    return grantee in roles or grantee.startswith("pg_")


def _grant_findings(db, key, what, statement, grants, ok):
    """The findings of one object's grants: one per grantee that differs (grantees every column has).

    grants: {label: {grantee: [privileges]}} for the columns in ok (the baseline first); what: the
    object as written in keys and messages ("table public.notes", "database"); statement: what
    _grant_sql needs for the recommended SQL.
    """
    baseline = ok[0]
    roles = common_roles(db)
    findings = []
    for grantee in union_keys(grants[label] for label in ok):
        if not _compared(grantee, roles):
            continue
        held = {label: _held(grants[label].get(grantee)) or None for label in ok}
        outcome = compare_key(held, ok)
        if outcome is None:
            continue
        kind, about = outcome
        values = {label: privileges_text(sorted(grants[label].get(grantee) or ())) for label in ok}
        base = held[baseline] or {}
        phrases, widened = [], False
        for label in about:
            phrase, wider = _changes(base, held[label] or {})
            phrases.append("%s %s" % (label, phrase))
            widened = widened or wider
        message = "Privileges of %s on %s differ from %s (%s): %s." % (
            grantee,
            what,
            baseline,
            by_value((label, values[label]) for label in ok),
            "; ".join(phrases),
        )
        recommendation = (
            "Give %s on %s exactly the privileges %s gives it on %s (%s) through a migration, or record the "
            "difference as expected: %s."
            % (
                grantee,
                join_names(about),
                baseline,
                what,
                _grant_sql(base, statement, grantee),
                "a privilege one environment grants beyond the baseline is access nobody tested"
                if widened
                else "a privilege the code needs and lacks fails at run time",
            )
        )
        findings.append(
            db.finding(
                "%s.%s to %s" % (key, what, grantee),
                kind,
                "%s_%s" % (_check(key), kind),
                "high" if widened else "medium",
                values,
                about,
                message,
                recommendation,
            )
        )
    return findings


def _check(key):
    return "postgres.privilege" if key == "privileges" else "postgres.default_privilege"


def privilege_findings(db):
    """One finding per object and grantee whose privileges differ (objects present everywhere)."""
    ok = db.ok
    if len(ok) < 2:
        return []
    sections = {label: db.catalogs[label].get("privileges") or {} for label in ok}
    defaults = {label: db.catalogs[label].get("privilege_defaults") or {} for label in ok}
    findings = []
    for name in union_keys(sections.values()):
        kind, ident = split_key(name)
        if kind is None or not all(object_exists(db.catalogs[label], kind, ident) for label in ok):
            continue
        grants = {label: sections[label].get(name, defaults[label].get(kind) or {}) for label in ok}
        findings += _grant_findings(db, "privileges", name, _statement(kind, ident), grants, ok)
    return findings


def default_privilege_findings(db):
    """ALTER DEFAULT PRIVILEGES entries (per creating role, schema, kind) compared per grantee.

    A global entry (no schema) replaces the kind's defaults, so its absence means those; a
    schema's entry adds to them, so its absence means nothing added.
    """
    ok = db.ok
    if len(ok) < 2:
        return []
    sections = {label: db.catalogs[label].get("default_privileges") or {} for label in ok}
    roles = common_roles(db)
    findings = []
    for name in union_keys(sections.values()):
        entries = {label: sections[label].get(name) for label in ok}
        sample = next(entry for entry in entries.values() if entry is not None)
        if not _compared(sample.get("role") or "", roles):
            continue
        kind = DEFAULT_PRIVILEGE_KINDS.get(sample.get("on"), "")
        grants = {}
        for label in ok:
            entry = entries[label]
            if entry is not None:
                grants[label] = entry.get("grants") or {}
            elif sample.get("schema"):
                grants[label] = {}
            else:
                grants[label] = db.catalogs[label].get("privilege_defaults", {}).get(kind) or {}
        what = "%s created by %s%s" % (
            sample.get("on"),
            sample.get("role"),
            " in schema %s" % sample["schema"] if sample.get("schema") else "",
        )
        prefix = "ALTER DEFAULT PRIVILEGES FOR ROLE %s %s" % (
            sample.get("role"),
            "IN SCHEMA %s " % sample["schema"] if sample.get("schema") else "",
        )
        findings += _grant_findings(
            db, "default_privileges", what, (prefix, (sample.get("on") or "").upper(), None), grants, ok
        )
    return findings


# --- row level security policies ---------------------------------------------------------------------


def policy_text(policy):
    """A policy as CREATE POLICY reads: `PERMISSIVE FOR SELECT TO app USING (…) WITH CHECK (…)`."""
    parts = [
        "PERMISSIVE" if policy.get("permissive") else "RESTRICTIVE",
        "FOR %s" % (policy.get("command") or "ALL"),
        "TO %s" % ", ".join(policy.get("roles") or ["PUBLIC"]),
    ]
    if policy.get("using") is not None:
        parts.append("USING (%s)" % policy["using"])
    if policy.get("with_check") is not None:
        parts.append("WITH CHECK (%s)" % policy["with_check"])
    return " ".join(parts)


POLICY = CatalogType(
    noun="policy",
    check="postgres.policy",
    text=policy_text,
    attributes=(
        ("command", get("command")),
        ("permissive / restrictive", get("permissive")),
        ("roles", lambda p: sorted(p.get("roles") or [])),
        ("USING expression", get("using")),
        ("WITH CHECK expression", get("with_check")),
    ),
    missing="high",
    extra="high",
    changed=lambda differing: "high",
    advice={
        "missing": "Create policy %(object)s on %(where)s as %(baseline)s has it (CREATE POLICY), through a "
        "migration: row level security decides which rows each role sees and writes.",
        "extra": "Check policy %(object)s on %(where)s: %(baseline)s has no such policy, so %(where)s lets roles "
        "see or write rows differently; add it to the migrations or drop it.",
        "changed": "Align policy %(object)s on %(where)s with %(baseline)s (ALTER POLICY, or DROP and CREATE POLICY "
        "for its command or kind) through a migration: it decides which rows each role sees and writes.",
    },
)


def policy_findings(db):
    """Policies of the tables every readable column has (a missing table is its own finding)."""
    ok = db.ok
    if len(ok) < 2:
        return []
    tables = [db.catalogs[label].get("tables") or {} for label in ok]
    maps = {}
    for label in ok:
        maps[label] = {
            key: policy
            for key, policy in (db.catalogs[label].get("policies") or {}).items()
            if all(policy.get("table") in section for section in tables)
        }
    return keyed(db, POLICY, maps, ok)


# --- large objects ------------------------------------------------------------------------------------


def _large_object_text(entry):
    """`3 large objects: 2 × (owner): SELECT, UPDATE; 1 × …` (the most common ACL first)."""
    acls = sorted((entry.get("acls") or {}).items(), key=lambda item: (-item[1], item[0]))
    shapes = "; ".join("%d × %s" % (count, acl or "no privileges") for acl, count in acls)
    return "%s: %s" % (plural_objects(entry.get("count") or 0), shapes)


def _acl_pairs(acl):
    """{(grantee, privilege)} of an ACL text as the catalog query writes it ("(owner): SELECT, UPDATE; PUBLIC: …")."""
    pairs = set()
    for item in (acl or "").split("; "):
        grantee, _, privileges = item.rpartition(": ")
        pairs.update((grantee, privilege) for privilege in privileges.split(", ") if privilege)
    return pairs


def plural_objects(count):
    return "%d large object%s" % (count, "" if count == 1 else "s")


def large_object_findings(db):
    """Large objects' ACLs, without their oids (each environment numbers its own): per owner with
    large objects on every column, the ACLs one column's carry and the baseline's never do. How
    many carry each one is shown, not compared (it is data, which differs between environments)."""
    ok = db.ok
    if len(ok) < 2:
        return []
    sections = {label: db.catalogs[label].get("large_objects") or {} for label in ok}
    truncated = [label for label in ok if sections[label].get("truncated")]
    if truncated:
        return [
            db.finding(
                "large_objects",
                "unknown",
                "postgres.large_object_privilege_unknown",
                "info",
                {label: plural_objects(sections[label].get("count") or 0) for label in ok},
                truncated,
                "The ACLs of the large objects on %s were not compared: they carry more distinct ACLs than the "
                "audit reads." % join_names(truncated),
                "Check the large objects' ACLs on %s by hand (pg_largeobject_metadata.lomacl)." % join_names(truncated),
            )
        ]
    owners = {label: sections[label].get("owners") or {} for label in ok}
    baseline = ok[0]
    roles = common_roles(db) | {"(database owner)"}
    findings = []
    for owner in sorted(set.intersection(*(set(owners[label]) for label in ok))):
        if not _compared(owner, roles):
            continue
        shapes = {label: set(owners[label][owner].get("acls") or {}) for label in ok}
        about = [label for label in ok[1:] if shapes[label] != shapes[baseline]]
        if not about:
            continue
        phrases, widened = [], False
        for label in about:
            extra = sorted(shapes[label] - shapes[baseline])
            lacking = sorted(shapes[baseline] - shapes[label])
            parts = []
            if extra:
                parts.append("has large objects with %s" % " / ".join(acl or "no privileges" for acl in extra))
            if lacking:
                parts.append("none with %s" % " / ".join(acl or "no privileges" for acl in lacking))
            phrases.append("%s %s" % (label, " and ".join(parts)))
            granted = set().union(*(_acl_pairs(acl) for acl in shapes[baseline]))
            widened = widened or any(_acl_pairs(acl) - granted for acl in extra)
        values = {label: _large_object_text(owners[label][owner]) for label in ok}
        findings.append(
            db.finding(
                "large_objects.owned by %s" % owner,
                "changed",
                "postgres.large_object_privilege_changed",
                "high" if widened else "medium",
                values,
                about,
                "The ACLs of the large objects owned by %s differ from %s (%s): %s."
                % (owner, baseline, by_value((label, values[label]) for label in ok), "; ".join(phrases)),
                "Give the large objects owned by %s on %s the privileges they have on %s (GRANT / REVOKE … ON LARGE "
                "OBJECT <oid>, for the oids pg_largeobject_metadata lists with that ACL), or record the difference "
                "as expected: a large object readable beyond the baseline is data nobody meant to share."
                % (owner, join_names(about), baseline),
            )
        )
    return findings


def security_findings(db):
    return privilege_findings(db) + default_privilege_findings(db) + policy_findings(db) + large_object_findings(db)
