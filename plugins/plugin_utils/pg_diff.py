"""Diff rules of the postgres area, its entry point: each configured database compared across
environments (its status and server version here; catalog objects in pg_objects, settings and
roles in pg_cluster, once for the databases that share a server, migrations in pg_migrations, the
audit role in pg_role).

Input per column: the host's postgres facts ({"databases": {NAME: DB}}, see docs/postgres-facts.md),
an unknown marker, or None (the area is not configured on that host).
Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SubjectColumns,
    by_value,
    join_names,
    subject_names,
    unknown_cell,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_cluster import (
    ServerColumns,
    database_own_findings,
    readable,
    role_findings,
    server_findings,
    setting_findings,
    shared_servers,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_data_parity import data_findings
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_kinds import kind_findings
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_migrations import UPGRADE, migration_findings
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_objects import catalog_findings
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_role import audit_role_findings
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_security import security_findings
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_validation import (
    domain_not_valid_findings,
    not_valid_findings,
)

AREA = "postgres"
DATABASE_KEY = "@database"
SERVER_KEY = "@server.version"
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


def subjects(request):
    """Logical database names a host is configured with (drift_postgres[].name)."""
    return sorted({item["name"] for item in (request or {}).get("databases") or []})


# --- one database across the columns -------------------------------------------------------------


class _Database(SubjectColumns):
    """One logical database (a subject) across the columns."""

    AREA = AREA

    def __init__(self, name, columns, cells, context):
        super().__init__(name, "databases", columns, cells, context)
        self.ok = [label for label in columns if readable(self.records.get(label))]
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
            "PostgreSQL server versions differ: %s." % by_value((label, versions[label]) for label in ok),
            "Run the same PostgreSQL major version on %s as on %s, so that one tests what the other runs "
            "(and the latest minor release everywhere, for its fixes)." % (join_names(differing), baseline),
        )
    ]


def diff(columns, cells, context):
    """All postgres findings for the given columns; context: {"baseline", "production": set of labels}."""
    findings = []
    shared = shared_servers(cells)
    sharing = {name for names in shared for name in names}
    for name in subject_names(cells, "databases"):
        db = _Database(name, columns, cells, context)
        findings += _status_findings(db)
        findings += _server_findings(db)
        findings += catalog_findings(db)
        findings += not_valid_findings(db)
        findings += domain_not_valid_findings(db)
        findings += security_findings(db)
        findings += kind_findings(db)
        findings += data_findings(db)
        if name in sharing:
            findings += database_own_findings(db)
        else:
            findings += setting_findings(db)
            findings += role_findings(db)
        findings += migration_findings(db)
        findings += audit_role_findings(db)
    for names in shared:
        findings += server_findings(ServerColumns(names, columns, cells, context))
    return findings
