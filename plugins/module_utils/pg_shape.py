"""Shaping psql's output into the PostgreSQL facts of docs/postgres-facts.md: the catalog
(redacted, normalised, hashed), the migrations, the audit role.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Secrets: role-level settings (ALTER ROLE … SET) and server settings pass through
redact.describe_value; function bodies and view definitions pass through redact.redact_text
(so do the string literals of every other definition: defaults, constraints, indexes, triggers,
domains); no password hash is ever selected.
"""

import hashlib
import json
import re

from ansible_collections.envparity.audit.plugins.module_utils.pg_catalog_sql import WRITE_PRIVILEGE_LIMIT
from ansible_collections.envparity.audit.plugins.module_utils.pg_data import shape_data
from ansible_collections.envparity.audit.plugins.module_utils.pg_psql import PgError, describe
from ansible_collections.envparity.audit.plugins.module_utils.pg_tables import (
    COLUMN_FIELDS,
    CONSTRAINT_FIELDS,
    INDEX_FIELDS,
    TABLE_FIELDS,
    TRIGGER_FIELDS,
    encode_shape,
    encode_text,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import describe_value, fingerprint, redact_text

# The lines the script echoes before each section of its output.
MARKER = "@@envparity:"
# A string literal in a definition PostgreSQL printed ('...', '' inside for a quote).
_SQL_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def normalise_text(text):
    """Line endings unified, trailing whitespace trimmed per line, no blank lines around."""
    if text is None:
        return None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _sha256(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def redacted_and_hash(raw, hmac_key):
    """(text to show, sha256 hex) for a view definition or a function body.

    Without a secret, the hash is the sha256 of the text shown.  When redact_text masked
    something, the text shown cannot tell two secrets apart; the hash then also covers a keyed
    fingerprint of the whole text, so that a changed secret still changes the hash and the
    secret cannot be guessed from it.
    """
    text = normalise_text(raw) or ""
    shown = redact_text(text)
    if shown == text:
        return shown, _sha256(text)
    return shown, _sha256(shown + "\n" + fingerprint(hmac_key, text))


class _LiteralRedactor:
    """redact_text on the string literals of a definition PostgreSQL printed (cached)."""

    def __init__(self):
        self.literals = {}
        self.texts = {}  # the same default or definition recurs across tables

    def _literal(self, match):
        inner = match.group(1)
        shown = self.literals.get(inner)
        if shown is None:
            shown = redact_text(inner)
            self.literals[inner] = shown
        return "'" + shown + "'"

    def __call__(self, text):
        if not text or "'" not in text:
            return text
        shown = self.texts.get(text)
        if shown is None:
            shown = _SQL_LITERAL.sub(self._literal, text)
            self.texts[text] = shown
        return shown


def _describe_pairs(items, hmac_key):
    """{name: describe_value record} from ["name=value", ...]."""
    described = {}
    for item in items or []:
        name, _, value = str(item).partition("=")
        described[name] = describe_value(name, value, hmac_key)
    return described


def _migration_sort_key(version):
    return (0, len(version), version) if version.isdigit() else (1, 0, version)


def _migration(tool, entry):
    """One migrations record from what the reader returned ({"ids": [...], "dirty": ...})."""
    read = entry.get("read") or {}
    ids = [item for item in read.get("ids") or [] if item is not None]
    dirty = read.get("dirty")
    if tool == "alembic":
        applied = sorted(ids)
        heads = list(applied)
    elif tool == "django":
        applied = ["%s.%s" % (app, name) for app, name in ids]
        last = {}
        for app, name in ids:
            last[app] = "%s.%s" % (app, name)
        heads = [last[app] for app in sorted(last)]
    elif tool in ("rails", "golang-migrate"):
        applied = sorted(ids, key=_migration_sort_key)
        heads = applied[-1:]
    elif tool == "sequelize":
        applied = sorted(ids)
        heads = applied[-1:]
    else:  # flyway, knex, prisma: in applied order already
        applied = list(ids)
        heads = applied[-1:]
    return {
        "table": entry.get("table"),
        "applied": applied,
        "heads": heads,
        "count": len(applied),
        "dirty": None if dirty is None else bool(dirty),
    }


def shape_migrations(document):
    """(migrations, [skip notes]) from the migrations statement's JSON (None: no table found)."""
    migrations, skipped = {}, []
    for tool in sorted(document or {}):
        entry = document[tool] or {}
        if entry.get("skipped"):
            skipped.append((entry.get("table"), entry["skipped"]))
            continue
        migrations[tool] = _migration(tool, entry)
    return migrations, skipped


def _redacted_shape(text, literals):
    """A table's shape from its JSON text, string literals redacted (defaults and definitions)."""
    table, columns, constraints, indexes, triggers = json.loads(text)
    bound = TABLE_FIELDS.index("partition_bound")
    table[bound] = literals(table[bound])
    # Each row is [name, *FIELDS] (pg_tables): the positions of the texts that can hold a literal.
    for rows, fields, names in (
        (columns, COLUMN_FIELDS, ("default", "generated")),
        (constraints, CONSTRAINT_FIELDS, ("definition",)),
        (indexes, INDEX_FIELDS, ("definition",)),
        (triggers, TRIGGER_FIELDS, ("definition",)),
    ):
        positions = [fields.index(name) + 1 for name in names]
        for row in rows:
            for position in positions:
                row[position] = literals(row[position])
    return encode_shape(table, columns, constraints, indexes, triggers)


def _tables(raw, literals):
    """{"schema.table": {"owner", "row_estimate", "size_estimate_bytes", "shape"}} (pg_tables).

    The catalog query writes each table's shape as JSON text and lists the texts in it that hold a
    quote; the text travels as it is unless redaction changes one of them.
    """
    block_size = raw.get("block_size") or 8192
    tables = {}
    for ident, owner, rows, pages, text, quoted in raw.get("tables") or []:
        if quoted and any(literals(item) != item for item in quoted):
            shape = _redacted_shape(text, literals)
        else:
            shape = encode_text(text)
        tables[ident] = {
            "owner": owner,
            "row_estimate": rows,
            "size_estimate_bytes": (pages or 0) * block_size,
            "shape": shape,
        }
    return tables


def _grants(grants):
    """{grantee: [privileges, sorted]} (the query sorts too, in byte order; this keeps it so)."""
    return {grantee: sorted(privileges or []) for grantee, privileges in (grants or {}).items()}


def _policies(raw, literals):
    """{"schema.table.policy": {"table", "command", "permissive", "roles": [sorted], "using", "with_check"}}."""
    return {
        key: {
            "table": policy.get("table"),
            "command": policy.get("command"),
            "permissive": bool(policy.get("permissive")),
            "roles": sorted(policy.get("roles") or []),
            "using": literals(policy.get("using")),
            "with_check": literals(policy.get("with_check")),
        }
        for key, policy in (raw or {}).items()
    }


def _publications(raw, literals):
    """Publications with each table's row filter redacted like any expression (a literal in it)."""
    publications = {}
    for name, publication in (raw or {}).items():
        filters = {
            table: {"where": literals(item.get("where")), "columns": item.get("columns")}
            for table, item in (publication.get("filters") or {}).items()
        }
        publications[name] = dict(publication, filters=filters)
    return publications


def _large_objects(raw):
    """{"count", "truncated", "owners": {owner: {"count", "acls": {ACL text: count}}}}."""
    raw = raw or {}
    return {
        "count": raw.get("count") or 0,
        "truncated": bool(raw.get("truncated")),
        "owners": {
            owner: {"count": entry.get("count") or 0, "acls": dict(entry.get("acls") or {})}
            for owner, entry in (raw.get("owners") or {}).items()
        },
    }


def _comments(raw, hmac_key):
    """{"<kind> <object>": {"text": redacted, "hash"}}: a comment is free text, redacted like a body."""
    comments = {}
    for key, text in (raw or {}).items():
        shown, digest = redacted_and_hash(text, hmac_key)
        comments[key] = {"text": shown, "hash": digest}
    return comments


def shape_catalog(raw, hmac_key):
    """The CATALOG of the contract from the catalog query's JSON (redacted, normalised, hashed)."""
    literals = _LiteralRedactor()
    tables = _tables(raw, literals)
    views = {}
    for ident, view in (raw.get("views") or {}).items():
        definition, digest = redacted_and_hash(view.get("definition"), hmac_key)
        views[ident] = {
            "materialized": bool(view.get("materialized")),
            "definition": definition,
            "hash": digest,
            "triggers": {
                name: dict(trigger, definition=literals(trigger.get("definition")))
                for name, trigger in (view.get("triggers") or {}).items()
            },
            "indexes": {
                name: dict(index, definition=literals(index.get("definition")))
                for name, index in (view.get("indexes") or {}).items()
            },
        }
    functions = {}
    for ident, function in (raw.get("functions") or {}).items():
        body, digest = redacted_and_hash(function.get("body"), hmac_key)
        functions[ident] = dict(function, body=body, hash=digest)
    domains = {}
    for ident, domain in (raw.get("domains") or {}).items():
        domains[ident] = dict(
            domain,
            default=literals(domain.get("default")),
            constraints=sorted(literals(item) for item in domain.get("constraints") or []),
            named_constraints={name: literals(item) for name, item in (domain.get("named_constraints") or {}).items()},
        )
    settings = {
        name: {
            "value": describe_value(name, setting.get("value"), hmac_key),
            "unit": setting.get("unit"),
            "source": setting.get("source"),
        }
        for name, setting in (raw.get("settings") or {}).items()
    }
    roles = {}
    for name, role in (raw.get("roles") or {}).items():
        record = dict(role)
        # The role's own settings (ALTER ROLE … SET, server-wide) apart from those of this database
        # (ALTER ROLE … IN DATABASE … SET), which apply here over them.
        record.update(
            config=_describe_pairs(role.get("config"), hmac_key),
            database_config=_describe_pairs(role.get("database_config"), hmac_key),
            member_of=sorted(role.get("member_of") or []),
        )
        roles[name] = record
    return {
        "schemas": raw.get("schemas") or {},
        "tables": tables,
        "views": views,
        "functions": functions,
        "sequences": raw.get("sequences") or {},
        "enums": raw.get("enums") or {},
        "domains": domains,
        "extensions": raw.get("extensions") or {},
        "settings": settings,
        "roles": roles,
        "privileges": {key: _grants(grants) for key, grants in (raw.get("privileges") or {}).items()},
        "privilege_defaults": {kind: _grants(grants) for kind, grants in (raw.get("privilege_defaults") or {}).items()},
        "default_privileges": {
            key: dict(entry, grants=_grants(entry.get("grants")))
            for key, entry in (raw.get("default_privileges") or {}).items()
        },
        "policies": _policies(raw.get("policies"), literals),
        "composites": raw.get("composites") or {},
        "ranges": raw.get("ranges") or {},
        "collations": raw.get("collations") or {},
        "rules": {
            key: dict(rule, definition=literals(rule.get("definition")))
            for key, rule in (raw.get("rules") or {}).items()
        },
        "event_triggers": raw.get("event_triggers") or {},
        "publications": _publications(raw.get("publications"), literals),
        "subscriptions": raw.get("subscriptions") or {},
        "comments": _comments(raw.get("comments"), hmac_key),
        "large_objects": _large_objects(raw.get("large_objects")),
    }


def _cluster(raw):
    """The server's identity: {"system_identifier": text or None, "port", "data_directory" or None}."""
    cluster = raw or {}
    return {name: cluster.get(name) for name in ("system_identifier", "port", "data_directory")}


def _audit_role(raw):
    role = raw or {}
    superuser = bool(role.get("superuser"))
    privileges = list(role.get("write_privileges") or [])
    if superuser:
        privileges = ["SUPERUSER"]
    return {
        "name": role.get("name"),
        "superuser": superuser,
        "can_write": superuser or bool(role.get("can_write")),
        "write_privileges": privileges[:WRITE_PRIVILEGE_LIMIT],
    }


def split_sections(stdout):
    """{section: text} from psql's output, cut at the marker lines the script echoes."""
    sections = {}
    current = None
    for line in stdout.split("\n"):
        if line.startswith(MARKER):
            current = line[len(MARKER) :].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in sections.items()}


def _short_version(text):
    return str(text).split()[0] if text else None


def empty_database(status, reason):
    """A DB record for a database that could not be collected."""
    return {
        "status": status,
        "reason": reason,
        "server_version": None,
        "server_version_num": None,
        "cluster": None,
        "audit_role": None,
        "catalog": None,
        "migrations": None,
        "data": None,
    }


def parse_output(stdout, db, request, hmac_key):
    what = describe(db)
    sections = split_sections(stdout)
    if "unsupported" in sections:
        version = _short_version(sections["unsupported"])
        record = empty_database(
            "failed",
            "PostgreSQL %s on %s is older than the collector supports (12 or later)." % (version, what),
        )
        record["server_version"] = version
        return record
    if "catalog" not in sections or "end" not in sections:
        raise PgError("failed", "psql ended without the catalog for %s." % what)
    try:
        document = json.loads(sections["catalog"])
        migrations_text = sections.get("migrations")
        migration_document = json.loads(migrations_text) if migrations_text else None
    except ValueError:
        raise PgError("failed", "The catalog query returned output that could not be parsed, for %s." % what) from None
    migrations, skipped = shape_migrations(migration_document)
    reason = None
    if skipped:
        reason = "Migration tables not read on %s: %s." % (
            what,
            "; ".join(
                "%s (%s)" % (table, "no SELECT privilege" if why == "no_select_privilege" else "not the tool's columns")
                for table, why in skipped
            ),
        )
    return {
        "status": "ok",
        "reason": reason,
        "dbname": db["dbname"],  # the name on the server, for the audit-role SQL of the report
        "server_version": _short_version(document.get("server_version")),
        "server_version_num": document.get("server_version_num"),
        "cluster": _cluster(document.get("cluster")),
        "audit_role": _audit_role(document.get("audit_role")),
        "catalog": shape_catalog(document.get("catalog") or {}, hmac_key),
        "migrations": migrations,
        "data": shape_data(sections.get("data"), request, db, hmac_key) if db.get("data_parity") else None,
    }
