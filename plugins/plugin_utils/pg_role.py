"""The audit's own role: a policy finding when it can write, with the SQL for a read-only one.

Pure Python; no Ansible imports.
"""

import re

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import join_names

AUDIT_ROLE_KEY = "@audit_role"
AUDIT_ROLE = "envparity_audit"
LISTED_PRIVILEGES = 5
SIMPLE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote_ident(name):
    """An SQL identifier, double-quoted unless it is a plain lower-case name (or quoted already)."""
    if SIMPLE_IDENTIFIER.match(name) or (len(name) > 1 and name[0] == name[-1] == '"'):
        return name
    return '"%s"' % name.replace('"', '""')


def qualified_name(name):
    schema, _, table = name.partition(".")
    return "%s.%s" % (quote_ident(schema), quote_ident(table)) if table else quote_ident(schema)


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
        statements.append(
            "GRANT SELECT ON %s TO %s;" % (", ".join(qualified_name(name) for name in tables), AUDIT_ROLE)
        )
    return " ".join(statements)


def audit_role_findings(db):
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
