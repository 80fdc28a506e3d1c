"""Server settings and roles, compared across environments.

Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_objects import ObjectType, get, high_if, keyed
from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import record_text, secret_letters

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


def _record_key(record):
    return None if record is None else (record.get("fp"), bool(record.get("secret")))


def _role_text(role):
    flags = [flag for flag in ROLE_FLAGS if role.get(flag)]
    parts = [", ".join(flags) if flags else "no attributes"]
    if role.get("connection_limit") not in (None, -1):
        parts.append("connection limit %s" % role["connection_limit"])
    if role.get("member_of"):
        parts.append("member of %s" % ", ".join(sorted(role["member_of"])))
    return "; ".join(parts)


ROLE = ObjectType(
    "role",
    "postgres.role",
    _role_text,
    tuple((flag, get(flag)) for flag in ROLE_FLAGS)
    + (
        ("connection limit", get("connection_limit")),
        ("membership", lambda r: sorted(r.get("member_of") or [])),
    ),
    "medium",
    "low",
    high_if(("superuser", "bypassrls"), "high"),
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


def setting_findings(db):
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


def role_findings(db):
    ok = db.ok
    if len(ok) < 2:
        return []
    maps = {label: db.catalogs[label].get("roles") or {} for label in ok}
    findings = keyed(db, ROLE, maps, ok)
    names = set(maps[ok[0]])
    for label in ok[1:]:
        names &= set(maps[label])
    for name in sorted(names):
        configs = {label: maps[label][name].get("config") or {} for label in ok}
        if any(configs[label] != configs[ok[0]] for label in ok[1:]):
            findings += _role_config_findings(db, name, configs, ok)
    return findings
