"""The PostgreSQL area end to end: a local dev cluster and prod's database in a container."""

import subprocess

import jsonschema
import pytest

from .test_env_audit import SCHEMA, identity, planted

DOCKER = ["docker", "-H", "unix:///run/envparity-lab/docker.sock"]
DEV_PSQL = [
    "runuser",
    "-u",
    "postgres",
    "--",
    "psql",
    "-X",
    "-A",
    "-t",
    "-h",
    "/run/envparity-lab/pg-dev",
    "-p",
    "55432",
]
PROD_PSQL = DOCKER + ["exec", "-i", "ai_assistant-db-1", "psql", "-X", "-A", "-t", "-U", "postgres"]
STATS = (
    "SELECT coalesce(string_agg(relid::text || ':' || n_tup_ins || ':' || n_tup_upd || ':' || n_tup_del, ','"
    " ORDER BY relid), '') FROM pg_stat_user_tables"
)


def query(psql, dbname, sql):
    return subprocess.run(psql + ["-d", dbname, "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def database_state():
    """WAL position of both servers and every table's write counters in every audited database."""
    state = {}
    for label, psql, databases in (
        ("dev", DEV_PSQL, ("personal_assistant", "analytics")),
        ("prod", PROD_PSQL, ("ai_assistant", "analytics")),
    ):
        state[label, "wal"] = query(psql, "postgres", "SELECT pg_current_wal_lsn()")
        for dbname in databases:
            query(psql, dbname, "SELECT pg_stat_force_next_flush()")
            state[label, dbname] = query(psql, dbname, STATS)
    return state


def test_postgres_recall_and_precision_against_the_manifest(audit, lab):
    result = audit(cmdline="--tags postgres")
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert report["areas"] == ["postgres"]
    found = sorted(identity(f) for f in report["findings"])
    expected = planted(lab["manifest"], area="postgres")
    assert sorted(set(expected) - set(found)) == [], "planted but not found"
    assert sorted(set(found) - set(expected)) == [], "found but never planted"
    details = [f for f in report["findings"] if f.get("detail")]
    assert details, "view and function bodies that differ carry a unified diff"
    assert "<details><summary>" in result.markdown


def test_the_audit_changes_nothing_in_the_databases(audit):
    audit(cmdline="--tags postgres")  # warm-up: a first read may prune catalog rows (that is not the audit writing)
    before = database_state()
    result = audit(cmdline="--tags postgres")
    assert result.rc == 0, result.stdout
    assert database_state() == before


def _databases(**changes):
    """The lab's prod databases with one entry altered, for the failure tests."""
    app = {
        "name": "app",
        "dbname": "ai_assistant",
        "user": "prod_user",
        "container": "ai_assistant-db-1",
        "password": "{{ lookup('ansible.builtin.file', '/var/lib/envparity-lab/pg/prod.password') }}",
    }
    app.update(changes)
    return [app]


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"password": "not-the-password"}, "authentication failed"),
        ({"dbname": "no_such_db"}, "database does not exist"),
        ({"container": "no-such-container"}, "container not running"),
        ({"container": None, "host": "127.0.0.1", "port": 2999}, "unreachable"),
    ],
)
def test_database_failures_are_clear_statuses(audit, changes, status):
    result = audit(
        cmdline="--tags postgres --limit prod-vm,dev-laptop", extravars={"drift_postgres": _databases(**changes)}
    )
    assert result.rc == 0, result.stdout
    failures = [f for f in result.report["findings"] if f["check"] == "postgres.database_status"]
    assert failures, result.report["findings"]
    assert failures[0]["values"] == {"dev": status, "prod": status}
    assert "not-the-password" not in result.stdout and "not-the-password" not in result.markdown
    assert "Traceback" not in result.stdout


def test_a_lock_ends_within_the_lock_timeout(audit):
    holder = subprocess.Popen(
        DEV_PSQL + ["-d", "personal_assistant"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        # a migration holding its tool's table: the migrations read waits for it (the catalog
        # itself locks no table but those a view reads)
        holder.stdin.write("BEGIN; LOCK TABLE public.alembic_version IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);\n")
        holder.stdin.flush()
        result = audit(cmdline="--tags postgres", extravars={"drift_postgres_lock_timeout_ms": 1000})
    finally:
        holder.kill()
        holder.wait()
    assert result.rc == 0, result.stdout
    status = [
        f for f in result.report["findings"] if f["check"] == "postgres.database_status" and f["subject"] == "app"
    ]
    assert status and status[0]["values"]["dev"] == "blocked by a lock"
    # the other database of the same host is still collected
    assert not [
        f for f in result.report["findings"] if f["check"] == "postgres.database_status" and f["subject"] == "analytics"
    ]
