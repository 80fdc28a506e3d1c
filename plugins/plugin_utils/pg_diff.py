"""Diff rules of the postgres area: schema catalogs, extensions, settings, roles and migrations of
each configured database compared across environments, plus the audit role's own privileges.

Input per column: the host's postgres facts ({"databases": {NAME: DB}}, see docs/postgres-facts.md),
an unknown marker, or None (the area is not configured on that host).

Every comparison is keyed by identity (schema.table, column name, index name …) with dict lookups
and set algebra, so the cost grows linearly with the catalog; a whole table is compared with one
string equality first (its canonical text, pg_tables) and only decoded and descended into when it
differs. difflib only explains the few view
and function bodies that differ. Row estimates, sizes and owners are never compared.
Pure Python; no Ansible imports.
"""

import difflib
import re

from ansible_collections.envparity.audit.plugins.module_utils.pg_tables import decode_table
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SubjectColumns,
    is_unknown,
    join_names,
    subject_names,
    unknown_cell,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import record_text, secret_letters

AREA = "postgres"
DATABASE_KEY = "@database"
SERVER_KEY = "@server.version"
AUDIT_ROLE_KEY = "@audit_role"
AUDIT_ROLE = "envparity_audit"
DETAIL_LINES = 200
LISTED_IDS = 10
LISTED_PRIVILEGES = 5
STATUS_TEXT = {
    "unreachable": "unreachable",
    "auth_failed": "authentication failed",
    "unknown_database": "database does not exist",
    "psql_missing": "psql not installed",
    "container_not_running": "container not running",
    "timeout": "timed out",
    "lock_timeout": "blocked by a lock",
    "failed": "could not be read",
}
# The command that applies pending migrations, per tool (docs/postgres-facts.md names the tools).
UPGRADE = {
    "alembic": "alembic upgrade head",
    "django": "python manage.py migrate",
    "rails": "bin/rails db:migrate",
    "golang-migrate": "migrate up",
    "schema_migrations": "bin/rails db:migrate (or migrate up)",
    "flyway": "flyway migrate",
    "knex": "knex migrate:latest",
    "prisma": "prisma migrate deploy",
    "sequelize": "sequelize db:migrate",
}
# Settings whose difference changes what queries do (not only how fast): medium, the rest low.
BEHAVIOUR_SETTINGS = frozenset(
    (
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "search_path",
        "timezone",
        "TimeZone",
        "datestyle",
        "DateStyle",
        "intervalstyle",
        "IntervalStyle",
        "default_transaction_isolation",
        "default_transaction_read_only",
        "standard_conforming_strings",
        "row_security",
        "session_replication_role",
        "max_connections",
        "lc_messages",
        "lc_monetary",
        "lc_numeric",
        "lc_time",
        "default_text_search_config",
        "bytea_output",
        "extra_float_digits",
    )
)
# Settings that describe the host or the audit's own session, not the database: never drift.
IGNORED_SETTINGS = frozenset(
    (
        "application_name",
        "transaction_read_only",
        "transaction_isolation",
        "transaction_deferrable",
        "data_directory",
        "config_file",
        "hba_file",
        "ident_file",
        "external_pid_file",
        "port",
        "listen_addresses",
        "unix_socket_directories",
        "cluster_name",
    )
)
ROLE_FLAGS = ("superuser", "createdb", "createrole", "login", "replication", "bypassrls")
TRIGGER_STATE = {
    "origin": None,
    "disabled": "disabled",
    "replica": "fires on replicas only",
    "always": "fires always",
}
SIMPLE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]*$")


def subjects(request):
    """Logical database names a host is configured with (drift_postgres[].name)."""
    return sorted({item["name"] for item in (request or {}).get("databases") or []})


# --- small text helpers -------------------------------------------------------------------------


def _record_key(record):
    return None if record is None else (record.get("fp"), bool(record.get("secret")))


def _ids(ids):
    ids = list(ids)
    shown = ", ".join(str(item) for item in ids[:LISTED_IDS])
    more = len(ids) - LISTED_IDS
    return shown + (" and %d more" % more if more > 0 else "")


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def quote_ident(name):
    """An SQL identifier, double-quoted unless it is a plain lower-case name (or quoted already)."""
    if SIMPLE_IDENTIFIER.match(name) or (len(name) > 1 and name[0] == name[-1] == '"'):
        return name
    return '"%s"' % name.replace('"', '""')


def _qualified(name):
    schema, _, table = name.partition(".")
    return "%s.%s" % (quote_ident(schema), quote_ident(table)) if table else quote_ident(schema)


def _short_hash(value):
    return (value or "")[:12] or "?"


def _lines(text):
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")


# --- object types ---------------------------------------------------------------------------------


class _Type:
    """How one kind of catalog object is compared, shown and explained.

    attributes: (name, getter) pairs compared one by one; text: the value shown in a column;
    missing/extra: default severity (or a function of the baseline's / the extra object);
    changed: a function of the set of differing attribute names; body: the field whose unified
    diff goes into the finding's detail when the attribute "definition" differs; namespace: the
    key's prefix for objects whose names are not schema-qualified (`extensions.`, `roles.`);
    advice: recommendations that replace the generic ones (fields: object, noun, where, baseline,
    upgrade, migrate); changed_check: the check of a changed object when not `<check>_changed`.
    """

    def __init__(
        self,
        noun,
        check,
        text,
        attributes,
        missing,
        extra,
        changed,
        body=None,
        advice=None,
        namespace="",
        verb="creates",
        changed_check=None,
    ):
        self.noun = noun
        self.changed_check = changed_check or check + "_changed"
        self.namespace = namespace
        self.verb = verb
        self.check = check
        self.text = text
        self.attributes = attributes
        self.missing = missing
        self.extra = extra
        self.changed = changed
        self.body = body
        self.advice = advice or {}

    def differing(self, base, other):
        return [name for name, getter in self.attributes if getter(base) != getter(other)]

    def same(self, base, other):
        return all(getter(base) == getter(other) for _, getter in self.attributes)


def _severity(rule, value):
    return rule(value) if callable(rule) else rule


def _get(field, default=None):
    return lambda obj: obj.get(field, default)


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
    return "%s, increment %s, %s..%s%s" % (
        sequence.get("type"),
        sequence.get("increment"),
        sequence.get("min"),
        sequence.get("max"),
        ", cycle" if sequence.get("cycle") else "",
    )


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


def _role_text(role):
    flags = [flag for flag in ROLE_FLAGS if role.get(flag)]
    parts = [", ".join(flags) if flags else "no attributes"]
    if role.get("connection_limit") not in (None, -1):
        parts.append("connection limit %s" % role["connection_limit"])
    if role.get("member_of"):
        parts.append("member of %s" % ", ".join(sorted(role["member_of"])))
    return "; ".join(parts)


def _high_if(names, high, otherwise="medium"):
    names = frozenset(names)
    return lambda differing: high if names & set(differing) else otherwise


MIGRATE = "apply the migration that %s (%s) before deploying the code that %s"
COLUMN = _Type(
    "column",
    "postgres.column",
    column_text,
    (
        ("type", _get("type")),
        ("nullability", _get("nullable")),
        ("default", _get("default")),
        ("identity", _get("identity")),
        ("generated expression", _get("generated")),
        ("collation", _get("collation")),
    ),
    "high",
    "low",
    _high_if(("type", "nullability"), "high"),
    verb="adds",
)
CONSTRAINT = _Type(
    "constraint",
    "postgres.constraint",
    lambda c: c.get("definition") or c.get("type") or "?",
    (("type", _get("type")), ("definition", _get("definition"))),
    "high",
    "medium",
    lambda differing: "high",
    verb="adds",
)
INDEX = _Type(
    "index",
    "postgres.index",
    lambda i: i.get("definition") or "?",
    (("definition", _get("definition")), ("uniqueness", _get("unique")), ("primary key", _get("primary"))),
    lambda index: "high" if index.get("unique") or index.get("primary") else "medium",
    lambda index: "medium" if index.get("unique") or index.get("primary") else "low",
    _high_if(("uniqueness", "primary key"), "high"),
)
TRIGGER = _Type(
    "trigger",
    "postgres.trigger",
    _trigger_text,
    (("definition", _get("definition")), ("enabled state", _get("enabled"))),
    "high",
    "medium",
    lambda differing: "high",
)
VIEW = _Type(
    "view",
    "postgres.view",
    _view_text,
    (("materialized", _get("materialized")), ("definition", _get("hash"))),
    "high",
    "low",
    lambda differing: "medium",
    body="definition",
)
FUNCTION = _Type(
    "function",
    "postgres.function",
    _function_text,
    (
        ("kind", _get("kind")),
        ("language", _get("language")),
        ("return type", _get("returns")),
        ("volatility", _get("volatility")),
        ("security definer", _get("security_definer")),
        ("definition", _get("hash")),
    ),
    "high",
    "low",
    _high_if(("return type", "security definer"), "high"),
    body="body",
)
SEQUENCE = _Type(
    "sequence",
    "postgres.sequence",
    _sequence_text,
    tuple((name, _get(name)) for name in ("type", "increment", "min", "max", "cycle")),
    "medium",
    "low",
    lambda differing: "medium",
)
DOMAIN = _Type(
    "domain",
    "postgres.domain",
    _domain_text,
    (
        ("base type", _get("base_type")),
        ("nullability", _get("nullable")),
        ("default", _get("default")),
        ("constraints", lambda d: sorted(d.get("constraints") or [])),
    ),
    "high",
    "low",
    _high_if(("base type", "nullability", "constraints"), "high"),
)
SCHEMA = _Type(
    "schema",
    "postgres.schema",
    lambda s: "schema",
    (),
    "high",
    "low",
    lambda differing: "low",
    namespace="schemas.",
    advice={
        "missing": "Create schema %(object)s on %(where)s: %(migrate)s.",
    },
)
EXTENSION = _Type(
    "extension",
    "postgres.extension",
    _extension_text,
    (("version", _get("version")), ("schema", _get("schema"))),
    "high",
    "low",
    lambda differing: "medium" if "version" in differing else "low",
    namespace="extensions.",
    advice={
        "missing": "Install extension %(object)s on %(where)s (CREATE EXTENSION %(object)s; the server needs "
        "its package), best through a migration, before deploying the code that uses it.",
        "extra": "Install extension %(object)s on %(baseline)s too (so that %(baseline)s tests what %(where)s runs), "
        "or drop it from %(where)s if nothing uses it.",
        "changed": "Update extension %(object)s on %(where)s to what %(baseline)s runs (ALTER EXTENSION %(object)s "
        "UPDATE; the server needs that version's package), or record the difference as expected.",
    },
    changed_check="postgres.extension_version",
)
ROLE = _Type(
    "role",
    "postgres.role",
    _role_text,
    tuple((flag, _get(flag)) for flag in ROLE_FLAGS)
    + (
        ("connection limit", _get("connection_limit")),
        ("membership", lambda r: sorted(r.get("member_of") or [])),
    ),
    "medium",
    "low",
    _high_if(("superuser", "bypassrls"), "high"),
    namespace="roles.",
    advice={
        "missing": "Create role %(object)s on %(where)s with the attributes it has on %(baseline)s, "
        "or record the difference as expected if each environment names its roles differently.",
        "extra": "Check that role %(object)s on %(where)s is still needed (drop it if not), "
        "or record the difference as expected.",
        "changed": "Align role %(object)s on %(where)s with %(baseline)s (ALTER ROLE / GRANT / REVOKE), "
        "or record the difference as expected.",
    },
)


# --- one database across the columns -------------------------------------------------------------


class _Database(SubjectColumns):
    """One logical database (a subject) across the columns."""

    AREA = AREA

    def __init__(self, name, columns, cells, context):
        super().__init__(name, "databases", columns, cells, context)
        self.ok = [
            label
            for label in columns
            if self.records.get(label, {}).get("status") == "ok"
            and isinstance(self.records[label].get("catalog"), dict)
        ]
        # Columns whose database could not be read: never "absent" in an object's row.
        self.blind = {
            label: unknown_cell("database %s" % _status_text(self.records[label]))
            for label in columns
            if label in self.records and label not in self.ok
        }
        self.catalogs = {label: self.records[label]["catalog"] for label in self.ok}
        self.upgrade = self._upgrade_hint()

    def _upgrade_hint(self):
        tools = sorted({tool for label in self.ok for tool in self.records[label].get("migrations") or {}})
        commands = [UPGRADE.get(tool, "%s's upgrade" % tool) for tool in tools]
        return " / ".join(commands) if commands else "your migration tool's upgrade"

    def cells_not_compared(self):
        return self.blind


def _status_text(db):
    status = db.get("status")
    if status == "ok":
        return "returned no catalog"
    return STATUS_TEXT.get(status, status or "failed")


def _status_findings(db):
    broken = [label for label in db.columns if label in db.records and label not in db.ok]
    if not broken:
        return []
    values = {label: ("ok" if label in db.ok else _status_text(db.records[label])) for label in db.records}
    reasons = "; ".join(
        "%s: %s" % (label, db.records[label].get("reason") or _status_text(db.records[label])) for label in broken
    )
    missing = all(db.records[label].get("status") == "unknown_database" for label in broken)
    return [
        db.finding(
            DATABASE_KEY,
            "missing" if missing else "unknown",
            "postgres.database_status",
            "high",
            values,
            broken,
            "Database %s could not be audited on %s (%s); its schema was not compared there."
            % (db.name, join_names(broken), reasons),
            "Check the drift_postgres entry %s (dbname, user, host, port or container), the server and the "
            "audit role's access on %s, then audit again." % (db.name, join_names(broken)),
        )
    ]


def _not_configured_findings(db, cells):
    lacking = [
        label
        for label in db.columns
        if cells.get(label) is not None and not is_unknown(cells[label]) and label not in db.records
    ]
    if not lacking:
        return []
    values = {
        label: ("not configured" if label in lacking else "configured")
        for label in db.columns
        if cells.get(label) is not None and not is_unknown(cells[label])
    }
    return [
        db.finding(
            DATABASE_KEY,
            "missing",
            "postgres.database_not_configured",
            "medium",
            values,
            lacking,
            "Database %s is not configured for %s." % (db.name, join_names(lacking)),
            "Add an entry named %s to drift_postgres for %s, or remove it elsewhere." % (db.name, join_names(lacking)),
        )
    ]


def _server_findings(db):
    ok = db.ok
    versions = {label: db.records[label].get("server_version") for label in ok}
    if len(ok) < 2 or len(set(versions.values())) == 1:
        return []
    baseline = ok[0]
    differing = [label for label in ok if versions[label] != versions[baseline]]

    def major(label):
        number = db.records[label].get("server_version_num") or 0
        return number // 10000 if number >= 100000 else number // 100

    severity = "medium" if any(major(label) != major(baseline) for label in differing) else "low"
    return [
        db.finding(
            SERVER_KEY,
            "changed",
            "postgres.server_version",
            severity,
            versions,
            differing,
            "PostgreSQL server versions differ: %s." % "; ".join("%s=%s" % (label, versions[label]) for label in ok),
            "Run the same PostgreSQL major version on %s as on %s, so that one tests what the other runs "
            "(and the latest minor release everywhere, for its fixes)." % (join_names(differing), baseline),
        )
    ]


# --- keyed comparison ------------------------------------------------------------------------------


def _advice(spec, which, default, **fields):
    return (spec.advice.get(which) or default) % fields


def _fields(db, spec, shown, where):
    return {
        "object": shown,
        "noun": spec.noun,
        "where": where,
        "baseline": db.ok[0],
        "upgrade": db.upgrade,
        "migrate": MIGRATE % (spec.verb + " it", db.upgrade, "uses it"),
    }


def _presence_findings(db, spec, shown, objs, ok):
    """missing / extra findings for one object (shown: its name as written in messages)."""
    baseline = ok[0]
    key = spec.namespace + shown
    present = [label for label in ok if objs[label] is not None]
    values = {label: (spec.text(objs[label]) if objs[label] is not None else None) for label in ok}
    if objs[baseline] is None:
        return [
            db.finding(
                key,
                "extra",
                spec.check + "_extra",
                _severity(spec.extra, objs[present[0]]),
                values,
                present,
                "%s %s exists in %s but not in the baseline %s."
                % (spec.noun.capitalize(), shown, join_names(present), baseline),
                _advice(
                    spec,
                    "extra",
                    "Check where %(noun)s %(object)s on %(where)s comes from: add it to the migrations so that "
                    "%(baseline)s has it too, or drop it where it is no longer used.",
                    **_fields(db, spec, shown, join_names(present)),
                ),
            )
        ]
    absent = [label for label in ok if objs[label] is None]
    if not absent:
        return []
    return [
        db.finding(
            key,
            "missing",
            spec.check + "_missing",
            _severity(spec.missing, objs[baseline]),
            values,
            absent,
            "%s lacks %s %s, which %s has." % (join_names(absent), spec.noun, shown, baseline),
            _advice(
                spec,
                "missing",
                "%(where)s lacks %(noun)s %(object)s: %(migrate)s.",
                **_fields(db, spec, shown, join_names(absent)),
            ),
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
    base = objs[baseline]
    differing = set()
    for label in changed:
        differing.update(spec.differing(base, objs[label]))
    ordered = [name for name, _ in spec.attributes if name in differing]
    values = {label: (spec.text(objs[label]) if objs[label] is not None else None) for label in ok}
    detail = _body_detail(spec, shown, objs, ok, changed) if spec.body and "definition" in ordered else None
    return db.finding(
        spec.namespace + shown,
        "changed",
        spec.changed_check,
        spec.changed(ordered),
        values,
        changed,
        "%s %s differs in %s: %s."
        % (
            spec.noun.capitalize(),
            shown,
            join_names(ordered),
            "; ".join("%s=%s" % (label, values[label]) for label in ok if values[label] is not None),
        ),
        _advice(
            spec,
            "changed",
            "Align %(noun)s %(object)s on %(where)s with %(baseline)s through a migration (%(upgrade)s), "
            "or record the difference as expected.",
            **_fields(db, spec, shown, join_names(changed)),
        ),
        detail,
    )


def _keyed(db, spec, maps, ok, parent=""):
    """missing / extra / changed findings for the objects of one type, keyed by identity.

    maps: {label: {name: object}} for the columns in ok (the first is the baseline); parent: the
    owning table's name and a dot, for columns, constraints, indexes and triggers.
    """
    if len(ok) < 2:
        return []
    baseline = ok[0]
    base = maps[baseline]
    others = ok[1:]
    names = set(base)
    for label in others:
        names.update(maps[label])
    findings = []
    for name in sorted(names):
        objs = {label: maps[label].get(name) for label in ok}
        found = objs[baseline]
        if found is not None and all(objs[label] is not None and spec.same(found, objs[label]) for label in others):
            continue
        findings += _presence_findings(db, spec, parent + name, objs, ok)
        if found is None:
            continue
        changed = [label for label in others if objs[label] is not None and not spec.same(found, objs[label])]
        if changed:
            findings.append(_changed_finding(db, spec, parent + name, objs, ok, changed))
    return findings


# --- tables ------------------------------------------------------------------------------------------


def _table_text(table):
    return "%s, %s" % (
        {"partitioned": "partitioned table", "foreign": "foreign table"}.get(table.get("kind"), "table"),
        _plural(len(table.get("columns") or {}), "column"),
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
    return ", ".join(parts)


TABLE = _Type(
    "table",
    "postgres.table",
    _table_text,
    (),
    "high",
    "medium",
    lambda differing: "high",
)
RLS = _Type(
    "table",
    "postgres.rls",
    _rls_text,
    (("row level security", _get("rls")), ("forced row level security", _get("rls_forced"))),
    "high",
    "high",
    lambda differing: "high",
    advice={
        "changed": "Align row level security of %(object)s on %(where)s with %(baseline)s "
        "(ALTER TABLE … ENABLE / FORCE ROW LEVEL SECURITY) through a migration: it decides which rows "
        "each role sees."
    },
)
PARTITIONING = _Type(
    "table",
    "postgres.partitioning",
    _partitioning_text,
    (("kind", _get("kind")), ("partition key", _get("partition_key")), ("parent", _get("partition_of"))),
    "high",
    "high",
    lambda differing: "high",
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
        findings += _presence_findings(db, TABLE, name, objs, ok)
        if found is None:
            continue
        having = [label for label in ok if objs[label] is not None]
        if len(having) < 2:
            continue
        findings += _table_parts(db, name, {label: objs[label] for label in having}, having)
    return findings


def _table_parts(db, name, tables, ok):
    prefix = name + "."
    findings = []
    findings += _keyed(db, COLUMN, {label: tables[label].get("columns") or {} for label in ok}, ok, prefix)
    constraints = {label: tables[label].get("constraints") or {} for label in ok}
    constraint_findings = _keyed(db, CONSTRAINT, constraints, ok, prefix)
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
    findings += _keyed(db, INDEX, indexes, ok, prefix)
    findings += _keyed(db, TRIGGER, {label: tables[label].get("triggers") or {} for label in ok}, ok, prefix)
    for spec in (RLS, PARTITIONING):
        base = tables[ok[0]]
        changed = [label for label in ok[1:] if not spec.same(base, tables[label])]
        if changed:
            findings.append(_changed_finding(db, spec, name, tables, ok, changed))
    return findings


# --- enums, settings, role configuration --------------------------------------------------------------


ENUM = _Type(
    "enum",
    "postgres.enum",
    lambda e: ", ".join(e.get("labels") or []),
    (("labels", lambda e: list(e.get("labels") or [])),),
    "high",
    "low",
    lambda differing: "medium",
)


def _enum_findings(db):
    ok = db.ok
    if len(ok) < 2:
        return []
    maps = {label: db.catalogs[label].get("enums") or {} for label in ok}
    findings = []
    baseline = ok[0]
    for finding in _keyed(db, ENUM, maps, ok):
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


def _setting_value(setting, letters):
    record = setting.get("value")
    text = record_text(record, letters)
    if text is None:
        return None
    unit = setting.get("unit")
    if not unit or (record or {}).get("secret"):
        return text
    return "%s×%s" % (text, unit) if unit[:1].isdigit() else "%s%s" % (text, unit)


def _setting_findings(db):
    ok = db.ok
    if len(ok) < 2:
        return []
    baseline = ok[0]
    maps = {label: db.catalogs[label].get("settings") or {} for label in ok}
    names = set()
    for label in ok:
        names.update(maps[label])
    findings = []
    for name in sorted(names - IGNORED_SETTINGS):
        settings = {label: maps[label].get(name) for label in ok}
        keys = {
            label: None
            if settings[label] is None
            else (_record_key(settings[label].get("value")), settings[label].get("unit"))
            for label in ok
        }
        if len(set(keys.values())) == 1:
            continue
        records = [settings[label].get("value") if settings[label] else None for label in ok]
        letters = secret_letters(records)
        values = {
            label: (_setting_value(settings[label], letters) if settings[label] is not None else "default")
            for label in ok
        }
        differing = [label for label in ok if keys[label] != keys[baseline]]
        secret = any(record and record.get("secret") for record in records)
        severity = "info" if secret else ("medium" if name in BEHAVIOUR_SETTINGS else "low")
        findings.append(
            db.finding(
                "settings.%s" % name,
                "changed",
                "postgres.setting_changed",
                severity,
                values,
                differing,
                "Setting %s differs%s: %s."
                % (
                    name,
                    " (compared by fingerprint only)" if secret else "",
                    "; ".join("%s=%s" % (label, values[label]) for label in ok),
                ),
                "Set %s on %s as on %s (postgresql.conf, ALTER SYSTEM or ALTER DATABASE, or the container's "
                "command line), or record the difference as expected (e.g. prod has more memory)."
                % (name, join_names(differing), baseline),
            )
        )
    return findings


def _role_config_findings(db, role, configs, ok):
    """The role's own settings (ALTER ROLE … SET), keyed by setting, secrets by fingerprint."""
    baseline = ok[0]
    names = set()
    for label in ok:
        names.update(configs[label])
    findings = []
    for name in sorted(names):
        records = {label: configs[label].get(name) for label in ok}
        keys = {label: _record_key(records[label]) for label in ok}
        if len(set(keys.values())) == 1:
            continue
        letters = secret_letters(records[label] for label in ok)
        values = {label: record_text(records[label], letters) for label in ok}
        secret = any(record and record.get("secret") for record in records.values())
        differing = [label for label in ok if keys[label] != keys[baseline]]
        kind = "extra" if records[baseline] is None else ("missing" if None in keys.values() else "changed")
        findings.append(
            db.finding(
                "roles.%s.config.%s" % (role, name),
                kind,
                "postgres.role_changed",
                "info" if secret else "low",
                values,
                differing,
                "Setting %s of role %s differs in %s%s."
                % (name, role, join_names(differing), " (compared by fingerprint only)" if secret else ""),
                "Nothing to do if each environment must have its own secret; otherwise align it with "
                "ALTER ROLE %s SET %s." % (role, name)
                if secret
                else "Align it with ALTER ROLE %s SET %s = … on %s (or RESET), or record the difference as expected."
                % (role, name, join_names(differing)),
            )
        )
    return findings


def _role_findings(db):
    ok = db.ok
    if len(ok) < 2:
        return []
    maps = {label: db.catalogs[label].get("roles") or {} for label in ok}
    findings = _keyed(db, ROLE, maps, ok)
    names = set(maps[ok[0]])
    for label in ok[1:]:
        names &= set(maps[label])
    for name in sorted(names):
        configs = {label: maps[label][name].get("config") or {} for label in ok}
        if any(configs[label] != configs[ok[0]] for label in ok[1:]):
            findings += _role_config_findings(db, name, configs, ok)
    return findings


def _catalog_findings(db):
    ok = db.ok
    if len(ok) < 2:
        return []

    def section(name):
        return {label: db.catalogs[label].get(name) or {} for label in ok}

    findings = []
    findings += _keyed(db, SCHEMA, section("schemas"), ok)
    findings += _table_findings(db)
    findings += _keyed(db, VIEW, section("views"), ok)
    findings += _keyed(db, FUNCTION, section("functions"), ok)
    findings += _keyed(db, SEQUENCE, section("sequences"), ok)
    findings += _enum_findings(db)
    findings += _keyed(db, DOMAIN, section("domains"), ok)
    findings += _keyed(db, EXTENSION, section("extensions"), ok)
    findings += _setting_findings(db)
    findings += _role_findings(db)
    return findings


# --- migrations ------------------------------------------------------------------------------------------


def _migration_text(tool, record):
    if record is None:
        return None
    heads = ", ".join(record.get("heads") or []) or "none"
    if tool == "alembic":
        return "head %s" % heads
    count = record.get("count")
    if count is None:
        count = len(record.get("applied") or [])
    return "%d applied, head %s%s" % (count, heads, ", dirty" if record.get("dirty") else "")


def _migration_findings(db):
    ok = db.ok
    migrations = {label: db.records[label].get("migrations") or {} for label in ok}
    tools = set()
    for label in ok:
        tools.update(migrations[label])
    findings = []
    for tool in sorted(tools):
        records = {label: migrations[label].get(tool) for label in ok}
        findings += _dirty_findings(db, tool, records, ok)
        if len(ok) < 2:
            continue
        findings += _tool_findings(db, tool, records, ok)
    return findings


def _dirty_findings(db, tool, records, ok):
    dirty = [label for label in ok if records[label] and records[label].get("dirty")]
    if not dirty:
        return []
    values = {label: _migration_text(tool, records[label]) for label in ok}
    return [
        db.finding(
            "migrations.%s" % tool,
            "policy",
            "postgres.migrations_dirty",
            "high",
            values,
            dirty,
            "The %s migration table is marked dirty on %s: a migration failed halfway." % (tool, join_names(dirty)),
            "Inspect the schema on %s, repair what the failed migration left, then force the version and run "
            "the upgrade again before deploying." % join_names(dirty),
        )
    ]


def _tool_findings(db, tool, records, ok):
    baseline = ok[0]
    values = {label: _migration_text(tool, records[label]) for label in ok}
    key = "migrations.%s" % tool
    upgrade = UPGRADE.get(tool, "the migration tool's upgrade")
    base = records[baseline]
    if base is None:
        present = [label for label in ok if records[label] is not None]
        return [
            db.finding(
                key,
                "extra",
                "postgres.migrations_missing",
                "medium",
                values,
                present,
                "%s has a %s migration table (%s) but the baseline %s has none."
                % (join_names(present), tool, records[present[0]].get("table"), baseline),
                "Check that %s runs the same migrations as %s (a leftover table from another tool, or a database "
                "migrated from another branch)." % (baseline, join_names(present)),
            )
        ]
    findings = []
    absent = [label for label in ok if records[label] is None]
    if absent:
        findings.append(
            db.finding(
                key,
                "missing",
                "postgres.migrations_missing",
                "high",
                values,
                absent,
                "%s has no %s migration table (%s exists on %s)."
                % (join_names(absent), tool, base.get("table"), baseline),
                "Run %s on %s (it creates the table and applies every migration), or check that drift_postgres "
                "points at the right database." % (upgrade, join_names(absent)),
            )
        )
    if tool == "alembic":
        findings += _head_findings(db, tool, records, ok, values, upgrade)
        return findings
    base_ids = list(base.get("applied") or [])
    base_set = set(base_ids)
    relations = {"behind": [], "ahead": [], "diverged": []}
    phrases = {"behind": [], "ahead": [], "diverged": []}
    for label in ok[1:]:
        record = records[label]
        if record is None:
            continue
        ids = list(record.get("applied") or [])
        other_set = set(ids)
        lacking = [item for item in base_ids if item not in other_set]
        only = [item for item in ids if item not in base_set]
        if not lacking and not only:
            continue
        if lacking and not only:
            relation = "behind"
            phrase = "%s is %s behind %s: %s" % (label, _plural(len(lacking), "migration"), baseline, _ids(lacking))
        elif only and not lacking:
            relation = "ahead"
            phrase = "%s has %s that %s lacks: %s" % (label, _plural(len(only), "migration"), baseline, _ids(only))
        else:
            relation = "diverged"
            phrase = "%s lacks %s of %s (%s) and has %s that %s lacks (%s)" % (
                label,
                _plural(len(lacking), "migration"),
                baseline,
                _ids(lacking),
                _plural(len(only), "other migration"),
                baseline,
                _ids(only),
            )
        relations[relation].append(label)
        phrases[relation].append(phrase)
    advice = {
        "behind": (
            "high",
            "Run %s on %%s before deploying the code that needs them." % upgrade,
        ),
        "ahead": (
            "medium",
            "Apply the same migrations on %s (%s), or check that %%s was not migrated from an unreleased branch."
            % (baseline, upgrade),
        ),
        "diverged": (
            "high",
            "Reconcile the migration history: %%s has migrations %s does not know; merge them into the "
            "code base (or roll them back) before the next deploy runs %s." % (baseline, upgrade),
        ),
    }
    for relation in ("behind", "ahead", "diverged"):
        labels = relations[relation]
        if not labels:
            continue
        severity, recommendation = advice[relation]
        findings.append(
            db.finding(
                key,
                "changed",
                "postgres.migrations_%s" % relation,
                severity,
                values,
                labels,
                "%s (%s)." % ("; ".join(phrases[relation]), tool),
                recommendation % join_names(labels),
            )
        )
    return findings


def _head_findings(db, tool, records, ok, values, upgrade):
    """Alembic keeps only its current heads: different heads say "differs", not how far."""
    baseline = ok[0]
    base = set(records[baseline].get("heads") or records[baseline].get("applied") or [])
    differing = [
        label
        for label in ok[1:]
        if records[label] is not None
        and set(records[label].get("heads") or records[label].get("applied") or []) != base
    ]
    if not differing:
        return []
    return [
        db.finding(
            "migrations.%s" % tool,
            "changed",
            "postgres.migrations_heads",
            "high",
            values,
            differing,
            "The %s head differs: %s."
            % (tool, "; ".join("%s=%s" % (label, values[label]) for label in ok if values[label])),
            "Run %s on %s before deploying the code that needs it (alembic history shows whether %s is behind "
            "%s or on another branch)." % (upgrade, join_names(differing), join_names(differing), baseline),
        )
    ]


# --- the audit role ------------------------------------------------------------------------------------------


def audit_role_sql(dbname, schemas, tables):
    """The statements that make a least-privileged, read-only audit role."""
    statements = [
        "CREATE ROLE %s LOGIN;" % AUDIT_ROLE,
        "ALTER ROLE %s SET default_transaction_read_only = on;" % AUDIT_ROLE,
        "GRANT CONNECT ON DATABASE %s TO %s;" % (quote_ident(dbname), AUDIT_ROLE),
    ]
    if schemas:
        statements.append(
            "GRANT USAGE ON SCHEMA %s TO %s;" % (", ".join(quote_ident(name) for name in schemas), AUDIT_ROLE)
        )
    statements.append("GRANT pg_read_all_settings, pg_monitor TO %s;" % AUDIT_ROLE)
    if tables:
        statements.append("GRANT SELECT ON %s TO %s;" % (", ".join(_qualified(name) for name in tables), AUDIT_ROLE))
    return " ".join(statements)


def _audit_role_findings(db):
    writers = [label for label in db.ok if (db.records[label].get("audit_role") or {}).get("can_write")]
    if not writers:
        return []
    values = {}
    for label in db.ok:
        role = db.records[label].get("audit_role") or {}
        if label in writers:
            values[label] = "%s can write%s" % (
                role.get("name") or "?",
                " (superuser)" if role.get("superuser") else "",
            )
        else:
            values[label] = "%s read-only" % (role.get("name") or "?")
    privileges = []
    for label in writers:
        for item in db.records[label]["audit_role"].get("write_privileges") or []:
            if item not in privileges:
                privileges.append(item)
    shown = privileges[:LISTED_PRIVILEGES]
    more = len(privileges) - len(shown)
    roles = sorted({db.records[label]["audit_role"].get("name") or "?" for label in writers})
    first = db.records[writers[0]]
    schemas = sorted((first.get("catalog") or {}).get("schemas") or {})
    tables = sorted({record.get("table") for record in (first.get("migrations") or {}).values() if record.get("table")})
    dbname = first.get("dbname") or db.name
    return [
        db.finding(
            AUDIT_ROLE_KEY,
            "policy",
            "postgres.audit_role_can_write",
            "medium",
            values,
            writers,
            "The audit connects to database %s on %s as %s, which can write (%s%s); the audit itself only reads, "
            "inside read-only transactions."
            % (
                db.name,
                join_names(writers),
                join_names(roles),
                "; ".join(shown) or "superuser",
                " and %d more" % more if more > 0 else "",
            ),
            "Audit with a least-privileged role instead (give it a password with \\password %s), then set it as "
            "user of %s in drift_postgres, its password from the vault%s: %s"
            % (
                AUDIT_ROLE,
                db.name,
                "" if len(writers) == 1 else " (shown for %s; repeat with each database's own names)" % writers[0],
                audit_role_sql(dbname, schemas, tables),
            ),
        )
    ]


def diff(columns, cells, context):
    """All postgres findings for the given columns; context: {"baseline", "production": set of labels}."""
    findings = []
    for name in subject_names(cells, "databases"):
        db = _Database(name, columns, cells, context)
        findings += _status_findings(db)
        findings += _not_configured_findings(db, cells)
        findings += _server_findings(db)
        findings += _catalog_findings(db)
        findings += _migration_findings(db)
        findings += _audit_role_findings(db)
    return findings
