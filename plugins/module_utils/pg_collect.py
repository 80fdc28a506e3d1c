"""Collect PostgreSQL catalogs and migration state on a host, read-only, through psql.

Standard library only, Python 3.8+: this module runs on the audited hosts.  The request and the
facts are described in docs/postgres-facts.md.

Each configured database costs one psql run (``psql -X -q -A -t -w -v ON_ERROR_STOP=1 -f -``,
the script on stdin), on the host or inside a container with ``docker exec -i``: one session,
one READ ONLY transaction with statement, lock and idle-in-transaction timeouts, ended by
ROLLBACK.  In it: a probe (migration tables and server version, psql ``\\gset``), one catalog
query over pg_catalog returning JSON, and one statement reading the migration tables the probe
found (written by a query and run by psql's ``\\gexec``).  See pg_catalog_sql for the SQL.

The connection is given to psql through its environment (PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD, PGCONNECT_TIMEOUT, PGAPPNAME=envparity): a password never appears on a command
line.  With ``container``, ``docker -H <docker_host> exec -i -e PGHOST -e PGPASSWORD …`` names
the variables only; docker takes their values from its own environment.  Inherited PG*
variables are dropped (but for the password file and TLS settings), so that the shell's
PGHOST or PGOPTIONS cannot redirect or alter the audit.

Databases are collected concurrently (a small thread pool); one failure never hides another.
A failure becomes a status and a fixed sentence naming the database and where it was looked
for: psql's output never reaches a reason (it can quote a password-bearing connection string).

Locks: pg_get_indexdef, pg_get_viewdef, pg_get_expr and pg_total_relation_size take ACCESS
SHARE locks on the tables they describe, held until the ROLLBACK (about a second for 2,000
tables).  A table held in ACCESS EXCLUSIVE mode (a migration's ALTER TABLE) makes the catalog
query wait at most lock_timeout_ms: then the status is "lock_timeout" and nothing is reported.

Secrets: role-level settings (ALTER ROLE … SET) and server settings pass through
redact.describe_value; function bodies and view definitions pass through redact.redact_text
(so do the string literals of every other definition: defaults, constraints, indexes, triggers,
domains); no password hash is ever selected.
"""

import concurrent.futures
import hashlib
import json
import os
import re

from ansible_collections.envparity.audit.plugins.module_utils import pg_catalog_sql, pg_tables
from ansible_collections.envparity.audit.plugins.module_utils.bounded_run import (
    CollectError,
    CommandTimeout,
    find_executable,
    run_bounded,
    seconds,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    describe_value,
    fingerprint,
    redact_text,
)

DEFAULTS = {
    "docker_host": "unix:///var/run/docker.sock",
    "timeout": 60,
    "statement_timeout_ms": 30000,
    "lock_timeout_ms": 5000,
}
STATUSES = (
    "ok",
    "unreachable",
    "auth_failed",
    "unknown_database",
    "psql_missing",
    "container_not_running",
    "timeout",
    "lock_timeout",
    "failed",
)
MAX_WORKERS = 4
# Seconds libpq may spend connecting (capped by the whole run's timeout).
CONNECT_TIMEOUT = 10
# Where psql and docker are looked for when PATH (often minimal over SSH) has none.
PSQL_FALLBACKS = (
    "/usr/bin/psql",
    "/usr/local/bin/psql",
    "/opt/homebrew/bin/psql",
    "/Applications/Postgres.app/Contents/Versions/latest/bin/psql",
)
DOCKER_FALLBACKS = ("/usr/bin/docker", "/usr/local/bin/docker", "/opt/homebrew/bin/docker")
PSQL_ARGS = ("-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-f", "-")
APPLICATION_NAME = "envparity"
MARKER = "@@envparity:"
# Inherited variables that still apply: the password file and how to reach the server over TLS.
_KEPT_PG_VARIABLES = frozenset(
    {
        "PGPASSFILE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "PGSSLCRL",
        "PGSSLCRLDIR",
        "PGSSLSNI",
        "PGREQUIRESSL",
        "PGGSSENCMODE",
        "PGKRBSRVNAME",
        "PGGSSLIB",
    }
)
# The variables set for psql, forwarded by name with docker exec -e.
_FORWARDED = (
    "PGHOST",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGCLIENTENCODING",
    "LC_ALL",
)

# Error texts (LC_ALL=C; with VERBOSITY=verbose, errors also carry their SQLSTATE).
_NO_CONTAINER = ("no such container",)
_CONTAINER_STOPPED = ("is not running", "is paused", "is restarting", "container not running")
_DOCKER_UNREACHABLE = ("cannot connect to the docker daemon", "error during connect")
_DOCKER_DENIED = ("permission denied while trying to connect to the docker",)
_EXEC_NOT_FOUND = ("executable file not found", 'exec: "psql"', "psql: not found", "psql: command not found")
_AUTH = (
    "password authentication failed",
    "no password supplied",
    "peer authentication failed",
    "ident authentication failed",
    "authentication failed for user",
    "no pg_hba.conf entry",
    "pg_hba.conf rejects connection",
)
_ROLE_MISSING = re.compile(r'role "[^"\n]*" does not exist')
_UNKNOWN_DATABASE = re.compile(r'database "[^"\n]*" does not exist')
_LOCK_TIMEOUT = ("canceling statement due to lock timeout", "55p03")
_STATEMENT_TIMEOUT = ("canceling statement due to statement timeout", "idle-in-transaction timeout", "25p03")
_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "no such file or directory",
    "could not translate host name",
    "name or service not known",
    "timeout expired",
    "network is unreachable",
    "no route to host",
    "server closed the connection unexpectedly",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
)
_OLD_PSQL = ("invalid command \\if", "invalid command \\gexec")
_PERMISSION = ("permission denied", "42501", "must be superuser")

# A string literal in a definition PostgreSQL printed ('...', '' inside for a quote).
_SQL_LITERAL = re.compile(r"'((?:[^']|'')*)'")


class PgError(CollectError):
    """A database that could not be collected; carries a status and a reason sentence."""


# ------------------------------------------------------------------ the script


def _int_option(request, name):
    value = request.get(name)
    if value is None or isinstance(value, bool):
        return DEFAULTS[name]
    try:
        number = int(value)
    except (TypeError, ValueError):
        return DEFAULTS[name]
    return number if number > 0 else DEFAULTS[name]


def _timeout(request):
    value = request.get("timeout")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULTS["timeout"]


def preamble(request):
    """The start of every script: the READ ONLY transaction and its timeouts."""
    return (
        "BEGIN TRANSACTION READ ONLY;\n"
        "SET LOCAL statement_timeout = %d;\n"
        "SET LOCAL lock_timeout = %d;\n"
        "SET LOCAL idle_in_transaction_session_timeout = %d;\n"
    ) % (
        _int_option(request, "statement_timeout_ms"),
        _int_option(request, "lock_timeout_ms"),
        max(1000, int(_timeout(request) * 1000)),
    )


def build_script(request):
    """The whole psql script for one database (the same for every database of a request).

    After the probe, the search path is pg_catalog alone (nothing a database user created can
    shadow a built-in, and every user-defined name is printed schema-qualified whatever the
    audit role's own path is), work_mem is raised for this transaction so that the JSON
    aggregates do not spill to temporary files, and JIT is off (on a large catalog the query's
    estimated cost passes jit_above_cost, and compiling never pays for a catalog read).
    """
    lines = [
        preamble(request) + pg_catalog_sql.migration_probe(),
        "SET LOCAL search_path = pg_catalog, pg_temp;",
        "SET LOCAL work_mem = '%s';" % pg_catalog_sql.CATALOG_WORK_MEM,
        "SET LOCAL jit = off;",
        "\\if :envparity_supported",
        "\\if :envparity_pg14",
        "\\set envparity_sqlbody 'pg_get_function_sqlbody(p.oid)'",
        "\\else",
        "\\set envparity_sqlbody 'NULL::text'",
        "\\endif",
        "\\if :envparity_pg15",
        "\\set envparity_nulls_not_distinct 'i.indnullsnotdistinct'",
        "\\set envparity_fk_plain 'co.confdelsetcols IS NULL'",
        "\\else",
        "\\set envparity_nulls_not_distinct 'false'",
        "\\set envparity_fk_plain 'true'",
        "\\endif",
        "\\echo %scatalog" % MARKER,
        pg_catalog_sql.CATALOG_QUERY.strip(),
        "\\echo %smigrations" % MARKER,
        pg_catalog_sql.migrations_generator().strip(),
        "\\else",
        "\\echo %sunsupported" % MARKER,
        "SELECT current_setting('server_version');",
        "\\endif",
        "\\echo %send" % MARKER,
        "ROLLBACK;",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ running psql


def _port_text(port):
    if port is None or port == "":
        return None
    if isinstance(port, bool):
        raise PgError("failed", "The port in the request is not a number.")
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise PgError("failed", "The port in the request is not a number.") from None
    if not 0 < number < 65536:
        raise PgError("failed", "The port in the request is not a valid TCP port.")
    return str(number)


def _pg_environment(db, password, timeout):
    """The variables psql connects with (never on a command line)."""
    env = {
        "PGDATABASE": db.get("dbname") or None,
        "PGUSER": db.get("user") or None,
        "PGHOST": db.get("host") or None,
        "PGPORT": _port_text(db.get("port")),
        "PGPASSWORD": password or None,
        "PGCONNECT_TIMEOUT": str(max(2, min(CONNECT_TIMEOUT, int(timeout)))),
        "PGAPPNAME": APPLICATION_NAME,
        "PGCLIENTENCODING": "UTF8",
        "LC_ALL": "C",
    }
    return {key: value for key, value in env.items() if value is not None}


def _base_environment():
    env = {}
    for key, value in os.environ.items():
        if key.startswith("PG") and key not in _KEPT_PG_VARIABLES:
            continue
        if key.startswith("LC_") or key in (
            "LANG",
            "LANGUAGE",
            "PSQLRC",
            "PSQL_HISTORY",
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
        ):
            continue
        env[key] = value
    return env


def _command(db, request, pg_env):
    """(argv, env) for one database: psql here, or psql in a container through docker exec."""
    env = _base_environment()
    env.update(pg_env)
    path = env.get("PATH") or os.defpath
    container = db.get("container")
    if container:
        docker = find_executable("docker", DOCKER_FALLBACKS, path)
        if docker is None:
            raise PgError(
                "psql_missing",
                "docker is not installed on this host (no docker executable found), so psql cannot be run "
                "in container %s." % container,
            )
        argv = [docker, "-H", request.get("docker_host") or DEFAULTS["docker_host"], "exec", "-i"]
        for name in _FORWARDED:
            if name in pg_env:
                argv.extend(["-e", name])
        argv.extend([container, "psql"])
    else:
        psql = find_executable("psql", PSQL_FALLBACKS, path)
        if psql is None:
            raise PgError("psql_missing", "psql is not installed on this host (no psql executable found).")
        argv = [psql]
    argv.extend(PSQL_ARGS)
    return argv, env


def _run(argv, env, script, timeout, describe):
    """Return (returncode, stdout text, stderr text); raise PgError when psql cannot run or hangs."""
    try:
        code, out, err = run_bounded(argv, env, timeout, stdin_bytes=script.encode("utf-8"))
    except CommandTimeout:
        raise PgError(
            "timeout", "psql did not finish within %s seconds for %s." % (seconds(timeout), describe)
        ) from None
    except FileNotFoundError:
        raise PgError("psql_missing", "%s is not installed on this host." % os.path.basename(argv[0])) from None
    except PermissionError:
        raise PgError(
            "psql_missing", "%s on this host cannot be run (permission denied)." % os.path.basename(argv[0])
        ) from None
    except OSError as exc:
        detail = os.strerror(exc.errno) if exc.errno else "operating system error"
        raise PgError("failed", "Starting %s failed: %s." % (os.path.basename(argv[0]), detail)) from None
    return code, out.decode("utf-8", "replace"), err


# ------------------------------------------------------------------ failures


def _where(db):
    """Where the database was looked for, for reasons: host:port, a socket, or a container."""
    if db.get("container"):
        return "container %s" % db["container"]
    host, port = db.get("host"), db.get("port")
    if not host:
        return "the local socket" + (" (port %s)" % port if port else "")
    if str(host).startswith("/"):
        return "the socket in %s" % host + (" (port %s)" % port if port else "")
    return "%s:%s" % (host, port or 5432)


def _describe(db):
    return "database %s at %s" % (db.get("dbname") or db.get("name"), _where(db))


def classify(returncode, stderr, db, request):
    """Map psql's (or docker's) failure to a PgError; the reason never quotes their output."""
    text = stderr.lower()
    what = _describe(db)
    container = db.get("container")
    if container:
        docker_host = request.get("docker_host") or DEFAULTS["docker_host"]
        if any(marker in text for marker in _NO_CONTAINER):
            return PgError(
                "container_not_running",
                "Container %s does not exist on the Docker engine at %s." % (container, docker_host),
            )
        if any(marker in text for marker in _CONTAINER_STOPPED):
            return PgError("container_not_running", "Container %s is not running." % container)
        if any(marker in text for marker in _DOCKER_UNREACHABLE):
            return PgError(
                "unreachable",
                "The Docker engine at %s cannot be reached, so container %s could not be queried."
                % (docker_host, container),
            )
        if any(marker in text for marker in _DOCKER_DENIED):
            return PgError(
                "failed",
                "Permission denied on the Docker engine at %s; the audit user needs access to it "
                "(for example membership of the docker group)." % docker_host,
            )
        if returncode in (126, 127) or any(marker in text for marker in _EXEC_NOT_FOUND):
            return PgError("psql_missing", "psql is not available inside container %s." % container)
    if any(marker in text for marker in _AUTH) or _ROLE_MISSING.search(text):
        user = db.get("user") or "(default user)"
        if "no password supplied" in text:
            return PgError(
                "auth_failed",
                "PostgreSQL asks user %s for a password and none was given, for %s." % (user, what),
            )
        return PgError(
            "auth_failed",
            "PostgreSQL rejected the credentials of user %s for %s." % (user, what),
        )
    if _UNKNOWN_DATABASE.search(text):
        return PgError(
            "unknown_database",
            "Database %s does not exist on the PostgreSQL server at %s."
            % (db.get("dbname") or db.get("name"), _where(db)),
        )
    if any(marker in text for marker in _LOCK_TIMEOUT):
        return PgError(
            "lock_timeout",
            "Reading the catalog of %s waited longer than the lock timeout (%d ms) for a lock another "
            "session holds (a migration or maintenance in progress?); nothing was read."
            % (what, _int_option(request, "lock_timeout_ms")),
        )
    if any(marker in text for marker in _STATEMENT_TIMEOUT):
        return PgError(
            "timeout",
            "Reading the catalog of %s was cancelled by the statement timeout (%d ms)."
            % (what, _int_option(request, "statement_timeout_ms")),
        )
    if any(marker in text for marker in _UNREACHABLE):
        return PgError("unreachable", "Cannot connect to PostgreSQL for %s (refused, unknown host or down)." % what)
    if any(marker in text for marker in _OLD_PSQL):
        return PgError("failed", "psql is older than version 10 (no \\if or \\gexec) for %s." % what)
    if any(marker in text for marker in _PERMISSION):
        return PgError(
            "failed", "The audit role lacks a privilege the catalog query needs (permission denied) on %s." % what
        )
    return PgError("failed", "psql failed with exit code %s on %s." % (returncode, what))


# ------------------------------------------------------------------ shaping the facts


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
    # Each row is [name, *FIELDS] (pg_tables): the positions of the texts that can hold a literal.
    for rows, fields, names in (
        (columns, pg_tables.COLUMN_FIELDS, ("default", "generated")),
        (constraints, pg_tables.CONSTRAINT_FIELDS, ("definition",)),
        (indexes, pg_tables.INDEX_FIELDS, ("definition",)),
        (triggers, pg_tables.TRIGGER_FIELDS, ("definition",)),
    ):
        positions = [fields.index(name) + 1 for name in names]
        for row in rows:
            for position in positions:
                row[position] = literals(row[position])
    return pg_tables.encode_shape(table, columns, constraints, indexes, triggers)


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
            shape = pg_tables.encode_text(text)
        tables[ident] = {
            "owner": owner,
            "row_estimate": rows,
            "size_estimate_bytes": (pages or 0) * block_size,
            "shape": shape,
        }
    return tables


def shape_catalog(raw, hmac_key):
    """The CATALOG of the contract from the catalog query's JSON (redacted, normalised, hashed)."""
    literals = _LiteralRedactor()
    tables = _tables(raw, literals)
    views = {}
    for ident, view in (raw.get("views") or {}).items():
        definition, digest = redacted_and_hash(view.get("definition"), hmac_key)
        views[ident] = {"materialized": bool(view.get("materialized")), "definition": definition, "hash": digest}
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
        config = _describe_pairs(role.get("config"), hmac_key)
        # ALTER ROLE … IN DATABASE … SET applies in this database over the role's own.
        config.update(_describe_pairs(role.get("database_config"), hmac_key))
        record = {key: value for key, value in role.items() if key not in ("config", "database_config")}
        record.update(config=config, member_of=sorted(role.get("member_of") or []))
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
    }


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
        "write_privileges": privileges[: pg_catalog_sql.WRITE_PRIVILEGE_LIMIT],
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
        "audit_role": None,
        "catalog": None,
        "migrations": None,
    }


def _parse(stdout, db, request, hmac_key):
    what = _describe(db)
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
        "audit_role": _audit_role(document.get("audit_role")),
        "catalog": shape_catalog(document.get("catalog") or {}, hmac_key),
        "migrations": migrations,
    }


# ------------------------------------------------------------------ entry points


def collect_database(db, request, hmac_key, password=None):
    """The DB record for one database of the request."""
    what = _describe(db)
    try:
        timeout = _timeout(request)
        argv, env = _command(db, request, _pg_environment(db, password, timeout))
        returncode, stdout, stderr = _run(argv, env, build_script(request), timeout, what)
        if returncode != 0:
            raise classify(returncode, stderr, db, request)
        return _parse(stdout, db, request, hmac_key)
    except PgError as exc:
        return empty_database(exc.status, exc.reason)
    except Exception as exc:  # one database must not hide the others
        return empty_database("failed", "%s in the PostgreSQL collector for %s." % (type(exc).__name__, what))


def _databases(request):
    seen = []
    for db in request.get("databases") or []:
        if isinstance(db, dict) and isinstance(db.get("name"), str) and db["name"] not in {d["name"] for d in seen}:
            seen.append(db)
    return seen


def collect_postgres(request, hmac_key, passwords=None):
    """``{"databases": {name: DB}}`` for a postgres request (docs/postgres-facts.md).

    ``passwords`` maps a database's name to its password; it reaches psql only through the
    environment of the child process.
    """
    if not isinstance(hmac_key, bytes) or not hmac_key:
        raise ValueError("hmac_key must be non-empty bytes")
    request = request if isinstance(request, dict) else {}
    passwords = passwords if isinstance(passwords, dict) else {}
    databases = _databases(request)
    if not databases:
        return {"databases": {}}
    workers = max(1, min(MAX_WORKERS, len(databases)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            db["name"]: pool.submit(collect_database, db, request, hmac_key, passwords.get(db["name"]))
            for db in databases
        }
        return {"databases": {name: futures[name].result() for name in sorted(futures)}}


def collect_area(request, hmac_key, secrets=None):
    """The registry's entry: the area's secrets are the databases' passwords by name."""
    return collect_postgres(request, hmac_key, secrets or {})
