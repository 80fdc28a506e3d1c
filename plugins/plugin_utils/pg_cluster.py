"""Server settings and roles, compared across environments, once per server.

Roles and most settings belong to the server (the cluster), not to one database: databases that
share a server in every environment (same system identifier, port and data directory in the
facts) have them compared once, under one subject named after them (`cluster:analytics+app`).
What is the database's own stays under the database: settings set for it or for the audit role
(ALTER DATABASE … SET, ALTER ROLE … [IN DATABASE …] SET: sources "database", "database user",
"user") and the roles' settings in it (ALTER ROLE … IN DATABASE … SET). A database alone on its
server, whose server is unknown, or that shares a server with another in one environment but not
in another, has everything compared under its own name, as if it had its server to itself.

Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.compare import record_compared, union_keys, value_outcome
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SubjectColumns,
    by_value,
    join_names,
    unknown_cell,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.object_type import get, high_if
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_kinds import comment_findings
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_objects import CatalogType, keyed
from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import (
    change_rating,
    record_cells,
    record_identity,
    record_text,
    secret_letters,
)

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
# Where a setting comes from when it is the database's own (or the audit role's, chosen per database).
DATABASE_SOURCES = frozenset(("database", "database user", "user"))
CLUSTER_PREFIX = "cluster:"
ROLE_FLAGS = ("superuser", "createdb", "createrole", "login", "replication", "bypassrls")


def _role_text(role):
    flags = [flag for flag in ROLE_FLAGS if role.get(flag)]
    parts = [", ".join(flags) if flags else "no attributes"]
    if role.get("connection_limit") not in (None, -1):
        parts.append("connection limit %s" % role["connection_limit"])
    if role.get("member_of"):
        parts.append("member of %s" % ", ".join(sorted(role["member_of"])))
    return "; ".join(parts)


ROLE = CatalogType(
    noun="role",
    check="postgres.role",
    text=_role_text,
    attributes=tuple((flag, get(flag)) for flag in ROLE_FLAGS)
    + (
        ("connection limit", get("connection_limit")),
        ("membership", lambda r: sorted(r.get("member_of") or [])),
    ),
    missing="medium",
    extra="low",
    changed=high_if(("superuser", "bypassrls"), "high"),
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


def _setting_value(setting, letters):
    record = setting.get("value")
    text = record_text(record, letters)
    if text is None:
        return None
    unit = setting.get("unit")
    if not unit or (record or {}).get("secret"):
        return text
    return "%s×%s" % (text, unit) if unit[:1].isdigit() else "%s%s" % (text, unit)


def setting_findings(db, only=None):
    """Findings of the settings of the columns' catalogs; only: a function of the catalogs giving the
    names to compare (all by default)."""
    ok = db.ok
    if len(ok) < 2:
        return []
    baseline = ok[0]
    maps = {label: db.catalogs[label].get("settings") or {} for label in ok}
    names = set()
    for label in ok:
        names.update(maps[label])
    if only is not None:
        names &= only(maps.values())
    findings = []
    for name in sorted(names - IGNORED_SETTINGS):
        settings = {label: maps[label].get(name) for label in ok}
        keys = {
            label: None
            if settings[label] is None
            else (record_identity(settings[label].get("value")), settings[label].get("unit"))
            for label in ok
        }
        differs = len(set(keys.values())) > 1
        if not differs and db.context.get("compared_values") is None:
            continue  # equal, and no team policy reads equal values
        records = [settings[label].get("value") if settings[label] else None for label in ok]
        letters = secret_letters(records)
        values = {
            label: (_setting_value(settings[label], letters) if settings[label] is not None else "default")
            for label in ok
        }
        record_compared(db.context, db.name, "settings.%s" % name, values)
        if not differs:
            continue
        differing = [label for label in ok if keys[label] != keys[baseline]]
        severity, note = change_rating(records, "medium" if name in BEHAVIOUR_SETTINGS else "low")
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
                    note,
                    by_value((label, values[label]) for label in ok),
                ),
                "Set %s on %s as on %s (postgresql.conf, ALTER SYSTEM or ALTER DATABASE, or the container's "
                "command line), or record the difference as expected (e.g. prod has more memory)."
                % (name, join_names(differing), baseline),
            )
        )
    return findings


def _role_config_findings(db, role, configs, ok):
    """The role's own settings (ALTER ROLE … SET), keyed by setting, secrets by fingerprint."""
    findings = []
    for name in union_keys(configs[label] for label in ok):
        records = {label: configs[label].get(name) for label in ok}
        outcome = value_outcome(records, ok, key=record_identity)
        if outcome is None:
            continue
        kind, differing = outcome
        values = record_cells(records, ok)
        severity, note = change_rating(records.values())
        findings.append(
            db.finding(
                "roles.%s.config.%s" % (role, name),
                kind,
                "postgres.role_changed",
                severity,
                values,
                differing,
                "Setting %s of role %s differs in %s%s." % (name, role, join_names(differing), note),
                "Nothing to do if each environment must have its own secret; otherwise align it with "
                "ALTER ROLE %s SET %s." % (role, name)
                if note
                else "Align it with ALTER ROLE %s SET %s = … on %s (or RESET), or record the difference as expected."
                % (role, name, join_names(differing)),
            )
        )
    return findings


def effective_config(role):
    """A role's settings in the audited database: its own, overridden by ALTER ROLE … IN DATABASE … SET."""
    config = dict(role.get("config") or {})
    config.update(role.get("database_config") or {})
    return config


def role_findings(db, config=effective_config):
    """Roles (attributes, membership), their settings (config: a role's settings to compare) and
    their comments (COMMENT ON ROLE)."""
    ok = db.ok
    if len(ok) < 2:
        return []
    maps = {label: db.catalogs[label].get("roles") or {} for label in ok}
    findings = keyed(db, ROLE, maps, ok)
    return findings + _shared_role_config_findings(db, maps, config) + comment_findings(db, roles=True)


def _shared_role_config_findings(db, maps, config, only=None):
    """The settings of each role every column has; only: a function of the roles' records giving the
    setting names to compare (all by default)."""
    ok = db.ok
    names = set(maps[ok[0]])
    for label in ok[1:]:
        names &= set(maps[label])
    findings = []
    for name in sorted(names):
        configs = {label: config(maps[label][name]) for label in ok}
        if only is not None:
            kept = only([maps[label][name] for label in ok])
            configs = {label: {key: value for key, value in configs[label].items() if key in kept} for label in ok}
        if any(configs[label] != configs[ok[0]] for label in ok[1:]):
            findings += _role_config_findings(db, name, configs, ok)
    return findings


# --- once per server ----------------------------------------------------------------------------------


def readable(record):
    """Whether a database's record holds a catalog to compare."""
    return isinstance(record, dict) and record.get("status") == "ok" and isinstance(record.get("catalog"), dict)


def server_identity(record):
    """The server a readable database was read from, or None when the facts cannot tell."""
    cluster = record.get("cluster") or {}
    if not cluster.get("system_identifier"):
        return None
    return (str(cluster["system_identifier"]), cluster.get("port"), cluster.get("data_directory"))


def _readable_databases(cells):
    """{label: {name: record}} of the readable databases of each column that has facts."""
    found = {}
    for label, cell in cells.items():
        if isinstance(cell, dict) and "unknown" not in cell:
            databases = cell.get("databases") or {}
            found[label] = {name: record for name, record in databases.items() if readable(record)}
    return found


def shared_servers(cells):
    """Sorted lists of the database names whose roles and server settings are compared once.

    Databases are joined when they share a server in some column; a group is kept when, in every
    column, its readable databases are on one known server (or there is only one of them).
    """
    readable_databases = _readable_databases(cells)
    group_of = {}

    def join(names):
        merged = set(names)
        for name in names:
            merged |= group_of.get(name, {name})
        for name in merged:
            group_of[name] = merged

    for databases in readable_databases.values():
        by_server = {}
        for name, record in databases.items():
            identity = server_identity(record)
            if identity is not None:
                by_server.setdefault(identity, []).append(name)
        for names in by_server.values():
            join(names)
    groups = []
    for group in {frozenset(group) for group in group_of.values() if len(group) > 1}:
        if all(_one_server(databases, group) for databases in readable_databases.values()):
            groups.append(sorted(group))
    return sorted(groups)


def _one_server(databases, group):
    members = [databases[name] for name in group if name in databases]
    identities = {server_identity(record) for record in members}
    return len(members) <= 1 or (len(identities) == 1 and None not in identities)


def cluster_subject(names):
    return CLUSTER_PREFIX + "+".join(sorted(names))


def _server_settings(catalogs):
    """The server's own settings, from the first database that shows each (they all show the same)."""
    settings = {}
    for catalog in catalogs:
        for name, setting in (catalog.get("settings") or {}).items():
            if setting.get("source") not in DATABASE_SOURCES:
                settings.setdefault(name, setting)
    return settings


class ServerColumns(SubjectColumns):
    """The server that several databases (names) share, across the columns: its roles and settings."""

    AREA = "postgres"
    # Advice on roles and settings names no migration tool (pg_objects asks every subject for one).
    upgrade = "your migration tool's upgrade"

    def __init__(self, names, columns, cells, context):
        super().__init__(cluster_subject(names), "databases", columns, cells, context)
        per_column = {}
        for label in columns:
            cell = cells.get(label)
            if isinstance(cell, dict) and "unknown" not in cell:
                databases = cell.get("databases") or {}
                present = [databases[name] for name in names if name in databases]
                if present:
                    per_column[label] = present
        self.records = {label: {"databases": records} for label, records in per_column.items()}
        self.ok = [label for label in columns if any(readable(record) for record in per_column.get(label, ()))]
        self.blind = {
            label: unknown_cell("no database of this server could be read (%s)" % join_names(names))
            for label in per_column
            if label not in self.ok
        }
        self.catalogs = {}
        for label in self.ok:
            catalogs = [record["catalog"] for record in per_column[label] if readable(record)]
            self.catalogs[label] = {
                "settings": _server_settings(catalogs),
                "roles": catalogs[0].get("roles") or {},
                # the roles' comments among the first database's (the same in every database)
                "comments": catalogs[0].get("comments") or {},
            }

    def cells_not_compared(self):
        return self.blind


def server_findings(server):
    """Roles and server settings, once for the databases that share the server."""
    return setting_findings(server) + role_findings(server, config=lambda role: role.get("config") or {})


def _database_setting_names(maps):
    return {
        name for settings in maps for name, setting in settings.items() if setting.get("source") in DATABASE_SOURCES
    }


def _database_role_setting_names(roles):
    return {name for role in roles for name in role.get("database_config") or {}}


def database_own_findings(db):
    """For a database that shares its server: only what is its own (settings set for it or for the
    audit role; the roles' settings in it), compared by the value in effect there."""
    if len(db.ok) < 2:
        return []
    maps = {label: db.catalogs[label].get("roles") or {} for label in db.ok}
    return setting_findings(db, only=_database_setting_names) + _shared_role_config_findings(
        db, maps, effective_config, only=_database_role_setting_names
    )
