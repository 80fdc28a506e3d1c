"""Collect PostgreSQL catalogs and migration state on a host, read-only, through psql.

Standard library only, Python 3.8+: this module runs on the audited hosts.  The request and the
facts are described in docs/postgres-facts.md.  Running psql and reading its failures is
pg_psql's; the SQL is pg_catalog_sql's; shaping the output into facts is pg_shape's.

Each configured database costs one psql run: one session, one READ ONLY transaction with
statement, lock and idle-in-transaction timeouts, ended by ROLLBACK.  In it: a probe (migration
tables and server version, psql ``\\gset``), one catalog query over pg_catalog returning JSON,
and one statement reading the migration tables the probe found (written by a query and run by
psql's ``\\gexec``); for a database whose entry asks for data parity, then the bounded data reads
of pg_data (statistics, exact counts of small tables, sequences against their column, reference
tables as salted hashes), each in a savepoint with its own timeout.

Databases are collected concurrently (a small thread pool); one failure never hides another.

Locks: pg_get_indexdef, pg_get_viewdef, pg_get_expr and pg_total_relation_size take ACCESS
SHARE locks on the tables they describe, held until the ROLLBACK (about a second for 2,000
tables).  A table held in ACCESS EXCLUSIVE mode (a migration's ALTER TABLE) makes the catalog
query wait at most lock_timeout_ms: then the status is "lock_timeout" and nothing is reported.
"""

import concurrent.futures

from ansible_collections.envparity.audit.plugins.module_utils.pg_catalog_sql import (
    CATALOG_QUERY,
    CATALOG_WORK_MEM,
    PUBLICATION_SCHEMAS,
    migration_probe,
    migrations_generator,
)
from ansible_collections.envparity.audit.plugins.module_utils.pg_data import script_lines as data_script
from ansible_collections.envparity.audit.plugins.module_utils.pg_psql import (  # noqa: F401 (DEFAULTS: the registry's)
    DEFAULTS,
    PgError,
    classify,
    command,
    describe,
    int_option,
    pg_environment,
    run_psql,
    run_timeout,
)
from ansible_collections.envparity.audit.plugins.module_utils.pg_shape import MARKER, empty_database, parse_output

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


def preamble(request):
    """The start of every script: the READ ONLY transaction and its timeouts."""
    return (
        "BEGIN TRANSACTION READ ONLY;\n"
        "SET LOCAL statement_timeout = %d;\n"
        "SET LOCAL lock_timeout = %d;\n"
        "SET LOCAL idle_in_transaction_session_timeout = %d;\n"
    ) % (
        int_option(request, "statement_timeout_ms"),
        int_option(request, "lock_timeout_ms"),
        max(1000, int(run_timeout(request) * 1000)),
    )


def build_script(request, db=None, hmac_key=None):
    """The whole psql script for one database (the same for every database of a request, but for
    the data part of a database whose entry asks for data parity: pg_data).

    After the probe, the search path is pg_catalog alone (nothing a database user created can
    shadow a built-in, and every user-defined name is printed schema-qualified whatever the
    audit role's own path is), work_mem is raised for this transaction so that the JSON
    aggregates do not spill to temporary files, and JIT is off (on a large catalog the query's
    estimated cost passes jit_above_cost, and compiling never pays for a catalog read).
    """
    lines = [
        preamble(request) + migration_probe(),
        "SET LOCAL search_path = pg_catalog, pg_temp;",
        "SET LOCAL work_mem = '%s';" % CATALOG_WORK_MEM,
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
        "\\set envparity_pub_where 'pg_get_expr(pr.prqual, pr.prrelid)'",
        "\\set envparity_pub_columns 'pr.prattrs'",
        "\\set envparity_pub_schemas '%s'" % PUBLICATION_SCHEMAS,
        "\\else",
        "\\set envparity_nulls_not_distinct 'false'",
        "\\set envparity_fk_plain 'true'",
        "\\set envparity_pub_where 'NULL::text'",
        "\\set envparity_pub_columns 'NULL::int2[]'",
        "\\set envparity_pub_schemas 'NULL::json'",
        "\\endif",
        "\\echo %scatalog" % MARKER,
        CATALOG_QUERY.strip(),
        "\\echo %smigrations" % MARKER,
        migrations_generator().strip(),
        *(data_script(request, db, hmac_key, MARKER) if db and db.get("data_parity") else ()),
        "\\else",
        "\\echo %sunsupported" % MARKER,
        "SELECT current_setting('server_version');",
        "\\endif",
        "\\echo %send" % MARKER,
        "ROLLBACK;",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ entry points


def collect_database(db, request, hmac_key, password=None):
    """The DB record for one database of the request."""
    what = describe(db)
    try:
        timeout = run_timeout(request)
        argv, env = command(db, request, pg_environment(db, password, timeout))
        returncode, stdout, stderr = run_psql(argv, env, build_script(request, db, hmac_key), timeout, what)
        if returncode != 0:
            raise classify(returncode, stderr, db, request)
        return parse_output(stdout, db, request, hmac_key)
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
