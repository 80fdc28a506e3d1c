"""The PostgreSQL area end to end: a local dev cluster and prod's database in a container."""

import os
import subprocess

import jsonschema
import pytest

from .test_env_audit import SCHEMA, identities, planted

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
# The lab's data directories (prod's is mounted into its container) and the tool that lists the
# WAL records between two positions.
PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"
WAL_DIRS = {"dev": "/var/lib/envparity-lab/pg-dev/pg_wal", "prod": "/var/lib/envparity-lab/pg-prod/pg_wal"}
# What a server writes of itself, whatever its sessions do: a timed checkpoint and the snapshot
# of running transactions logged with it (checkpoint_timeout after the lab wrote its databases).
SERVER_OWN_RECORDS = ("CHECKPOINT_ONLINE", "RUNNING_XACTS")
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
    found = identities(report["findings"])
    expected = planted(lab["manifest"], area="postgres")
    assert sorted(set(expected) - set(found)) == [], "planted but not found"
    assert sorted(set(found) - set(expected)) == [], "found but never planted"
    details = [f for f in report["findings"] if f.get("detail")]
    assert details, "view and function bodies that differ carry a unified diff"
    assert "<details><summary>" in result.markdown


def written_records(label, start, end):
    """The WAL records a lab server wrote from start to end (pg_waldump lines), but its own."""
    if start == end:
        return []
    dump = subprocess.run(
        [PG_WALDUMP, "-p", WAL_DIRS[label], "-s", start, "-e", end], check=True, capture_output=True, text=True
    )
    kinds = [(line, line.partition("desc: ")[2].split(" ")[0]) for line in dump.stdout.splitlines()]
    return [line for line, kind in kinds if kind not in SERVER_OWN_RECORDS]


def test_the_audit_changes_nothing_in_the_databases(audit):
    audit(cmdline="--tags postgres")  # warm-up: a first read may prune catalog rows (that is not the audit writing)
    before = database_state()
    result = audit(cmdline="--tags postgres")
    assert result.rc == 0, result.stdout
    after = database_state()
    # Every table's write counters are unchanged, and no WAL record but the server's own.
    assert {key: value for key, value in after.items() if key[1] != "wal"} == {
        key: value for key, value in before.items() if key[1] != "wal"
    }
    for label in ("dev", "prod"):
        assert written_records(label, before[label, "wal"], after[label, "wal"]) == [], label


def test_wal_records_tell_a_write_from_the_servers_own_records():
    # The read-only check above must see a write: one committed write on dev is a record of its own.
    start = query(DEV_PSQL, "postgres", "SELECT pg_current_wal_lsn()")
    query(DEV_PSQL, "postgres", "CREATE TEMP TABLE probe (a int); INSERT INTO probe VALUES (1)")
    end = query(DEV_PSQL, "postgres", "SELECT pg_current_wal_lsn()")
    assert written_records("dev", start, end) != []


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


LOCK_HOLDER = "envparity-test-lock-holder"


def test_a_lock_ends_within_the_lock_timeout(audit):
    holder = subprocess.Popen(
        DEV_PSQL + ["-d", "personal_assistant"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PGAPPNAME=LOCK_HOLDER),
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
        # The server's backend outlives its killed client until pg_sleep ends: ended here, so that
        # the lock is not still held when the next test audits this database.
        subprocess.run(
            DEV_PSQL
            + [
                "-d",
                "personal_assistant",
                "-c",
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = '%s'"
                % LOCK_HOLDER,
            ],
            check=True,
            capture_output=True,
        )
    assert result.rc == 0, result.stdout
    status = [
        f for f in result.report["findings"] if f["check"] == "postgres.database_status" and f["subject"] == "app"
    ]
    assert status and status[0]["values"]["dev"] == "blocked by a lock"
    # the other database of the same host is still collected
    assert not [
        f for f in result.report["findings"] if f["check"] == "postgres.database_status" and f["subject"] == "analytics"
    ]
