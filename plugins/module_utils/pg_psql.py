"""Running psql for the PostgreSQL collector, and what its failures mean: the transport, apart
from the SQL (pg_catalog_sql) and from shaping its output (pg_shape).

Standard library only, Python 3.8+: this module runs on the audited hosts.

One psql run per database (``psql -X -q -A -t -w -v ON_ERROR_STOP=1 -f -``, the script on stdin),
on the host or inside a container with ``docker exec -i``.  The connection is given to psql
through its environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGCONNECT_TIMEOUT,
PGAPPNAME=envparity): a password never appears on a command line.  With ``container``,
``docker -H <docker_host> exec -i -e PGHOST -e PGPASSWORD …`` names the variables only; docker
takes their values from its own environment.  Inherited PG* variables are dropped (but for the
password file and TLS settings), so that the shell's PGHOST or PGOPTIONS cannot redirect or alter
the audit.

A failure becomes a status and a fixed sentence naming the database and where it was looked
for: psql's output never reaches a reason (it can quote a password-bearing connection string).
"""

import os
import re

from ansible_collections.envparity.audit.plugins.module_utils.bounded_run import (
    CollectError,
    CommandTimeout,
    find_executable,
    run_bounded,
    seconds,
)

DEFAULTS = {
    "docker_host": "unix:///var/run/docker.sock",
    "timeout": 60,
    "statement_timeout_ms": 30000,
    "lock_timeout_ms": 5000,
    # Data parity (for the databases whose entry has data_parity: true).
    "data_exact_count_max_mb": 64,
    "data_row_cap": 10000,
    "data_table_timeout_ms": 2000,
    "data_budget_ms": 10000,
}
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


class PgError(CollectError):
    """A database that could not be collected; carries a status and a reason sentence."""


# ------------------------------------------------------------------ the script


def int_option(request, name):
    value = request.get(name)
    if value is None or isinstance(value, bool):
        return DEFAULTS[name]
    try:
        number = int(value)
    except (TypeError, ValueError):
        return DEFAULTS[name]
    return number if number > 0 else DEFAULTS[name]


def run_timeout(request):
    value = request.get("timeout")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULTS["timeout"]


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


def pg_environment(db, password, timeout):
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


def command(db, request, pg_env):
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


def run_psql(argv, env, script, timeout, what):
    """Return (returncode, stdout text, stderr text); raise PgError when psql cannot run or hangs."""
    try:
        code, out, err = run_bounded(argv, env, timeout, stdin_bytes=script.encode("utf-8"))
    except CommandTimeout:
        raise PgError("timeout", "psql did not finish within %s seconds for %s." % (seconds(timeout), what)) from None
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


def describe(db):
    return "database %s at %s" % (db.get("dbname") or db.get("name"), _where(db))


def classify(returncode, stderr, db, request):
    """Map psql's (or docker's) failure to a PgError; the reason never quotes their output."""
    text = stderr.lower()
    what = describe(db)
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
            % (what, int_option(request, "lock_timeout_ms")),
        )
    if any(marker in text for marker in _STATEMENT_TIMEOUT):
        return PgError(
            "timeout",
            "Reading the catalog of %s was cancelled by the statement timeout (%d ms)."
            % (what, int_option(request, "statement_timeout_ms")),
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
