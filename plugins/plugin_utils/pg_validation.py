"""Constraints that production never validated: a foreign key or check constraint added NOT VALID
(pg_constraint.convalidated false) holds for the rows written since, but the rows that were there
when it was added were never checked against it; a migration that adds a constraint NOT VALID to
avoid a long lock and never runs VALIDATE CONSTRAINT leaves it so.  The same for a domain's check
constraint (ALTER DOMAIN … ADD CONSTRAINT … NOT VALID): the values stored in columns of the domain
before it was added were never checked.

A policy finding per production column and constraint, whatever the baseline says (the baseline's
state is named: validated there is drift as well). Every table of a production column is looked at,
not only the tables that differ, cheaply: a table's shape text (pg_tables) is decoded from base64
and searched for the mark, and only a table that holds it is parsed. Pure Python; no Ansible
imports.
"""

import base64

from ansible_collections.envparity.audit.plugins.module_utils.pg_tables import decode_shape
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import by_value, join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_objects import (
    NOT_VALID,
    is_not_valid,
    marked_not_valid,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_role import qualified_name, quote_ident

_MARK = NOT_VALID.encode("ascii")


def not_valid_constraints(tables):
    """{(table, constraint): constraint record} of the constraints NOT VALID among tables (the facts'
    {"schema.table": {"shape": …}})."""
    found = {}
    for table, wire in tables.items():
        shape = wire.get("shape") or ""
        if _MARK not in base64.b64decode(shape):
            continue
        for name, constraint in (decode_shape(shape).get("constraints") or {}).items():
            if is_not_valid(constraint):
                found[(table, name)] = constraint
    return found


def _state(catalog, table, name):
    wire = (catalog.get("tables") or {}).get(table)
    if wire is None:
        return None
    constraint = (decode_shape(wire["shape"]).get("constraints") or {}).get(name)
    if constraint is None:
        return None
    return "NOT VALID" if is_not_valid(constraint) else "validated"


# What a finding says of a constraint NOT VALID on a table and on a domain: (message, advice), over
# name, label (the production column), definition, owner (the table or domain), statement (the ALTER).
TABLE_WORDS = (
    "Constraint %(name)s on %(label)s is NOT VALID (%(definition)s): the rows that were in %(owner)s when it was "
    "added were never checked against it and may break it",
    "On %(label)s, fix the rows that break it, then: %(statement)s; (it reads the whole table under a SHARE UPDATE "
    "EXCLUSIVE lock: reads and writes go on)",
)
DOMAIN_WORDS = (
    "Constraint %(name)s of domain %(owner)s on %(label)s is NOT VALID (%(definition)s): the values stored in "
    "columns of that domain before it was added were never checked against it and may break it",
    "On %(label)s, fix the values that break it, then: %(statement)s; (it reads every column of the domain, "
    "holding a SHARE lock on each of their tables: writes to them wait)",
)


def _policy_finding(db, label, where, definition, state, words):
    """The policy finding of one constraint NOT VALID on a production column.

    where: (owner, constraint, "TABLE" or "DOMAIN"); state(catalog, owner, name): its state there."""
    owner, name, statement = where
    values = {other: state(db.catalogs[other], owner, name) for other in db.ok}
    validated = [other for other in db.ok if values[other] == "validated"]
    elsewhere = [(other, values[other]) for other in db.ok if other != label and values[other]]
    fields = {
        "name": name,
        "label": label,
        "definition": definition or "?",
        "owner": owner,
        "statement": "ALTER %s %s VALIDATE CONSTRAINT %s" % (statement, qualified_name(owner), quote_ident(name)),
    }
    message, advice = words
    return db.finding(
        "%s.%s" % (owner, name),
        "policy",
        "postgres.constraint_not_valid",
        "high" if validated else "medium",
        values,
        [label],
        message % fields + ("; %s" % by_value(elsewhere) if elsewhere else "") + ".",
        advice % fields + (", as %s has it validated" % join_names(validated) if validated else "") + ".",
    )


def not_valid_findings(db):
    """One policy finding per production column and constraint NOT VALID there."""
    findings = []
    for label in db.production(db.ok):
        found = not_valid_constraints(db.catalogs[label].get("tables") or {})
        for (table, name), constraint in sorted(found.items()):
            findings.append(
                _policy_finding(db, label, (table, name, "TABLE"), constraint.get("definition"), _state, TABLE_WORDS)
            )
    return findings


def _domain_state(catalog, domain, name):
    domains = catalog.get("domains") or {}
    definition = ((domains.get(domain) or {}).get("named_constraints") or {}).get(name)
    if definition is None:
        return None
    return "NOT VALID" if marked_not_valid(definition) else "validated"


def domain_not_valid_findings(db):
    """One policy finding per production column and domain constraint NOT VALID there, keyed
    `<schema>.<domain>.<constraint>` (a domain and a table never share a name in a schema)."""
    findings = []
    for label in db.production(db.ok):
        for domain, record in sorted((db.catalogs[label].get("domains") or {}).items()):
            for name, definition in sorted((record.get("named_constraints") or {}).items()):
                if marked_not_valid(definition):
                    findings.append(
                        _policy_finding(db, label, (domain, name, "DOMAIN"), definition, _domain_state, DOMAIN_WORDS)
                    )
    return findings
