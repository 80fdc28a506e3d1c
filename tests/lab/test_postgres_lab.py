"""The lab's postgres area (lab/postgres_area.py), run as root against the real lab on this machine.

Like tests/lab/test_labctl.py, the module brings the lab up and leaves it as it found it: running
(with fresh canaries, since replant is tested) if it was up, stopped otherwise. The down/up
cycle stops both PostgreSQL servers, so it only runs when the lab was not up before, or with
ENVPARITY_LAB_DISRUPTIVE=1. The databases are only read here, as their superuser over the lab's
sockets or as the application's roles with the password files.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from tests.lab.labtest import (  # noqa: E402
    CANARIES,
    DOCKER_SOCKET,
    LABCTL,
    MANIFEST,
    RUN_DIR,
    STATE,
    engine_get,
    labctl,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = str(PG_BIN / "psql")
CONTAINER = "ai_assistant-db-1"
DEV_DATA = STATE / "pg-dev"
PASSWORD_FILES = {"dev": STATE / "pg" / "dev.password", "prod": STATE / "pg" / "prod.password"}

# env -> (socket dir on this host, port in the socket's name, TCP port on 127.0.0.1, app database, app role)
CLUSTERS = {
    "dev": (RUN_DIR / "pg-dev", 55432, 55432, "personal_assistant", "ianleblanc"),
    "prod": (RUN_DIR / "pg-prod", 5432, 55433, "ai_assistant", "prod_user"),
}
CANARY_NAMES = {
    "postgres.dev.password",
    "postgres.prod.password",
    "postgres.dev.superuser_password",
    "postgres.prod.superuser_password",
    "postgres.dev.role_api_key",
    "postgres.prod.role_api_key",
}


def _cluster_wide(subject: str) -> set[tuple]:
    return {
        (subject, "settings.max_connections", "changed", "postgres.setting_changed"),
        (subject, "settings.shared_buffers", "changed", "postgres.setting_changed"),
        (subject, "roles.analyst", "missing", "postgres.role_missing"),
        (subject, "roles.ianleblanc", "missing", "postgres.role_missing"),
        (subject, "roles.prod_user", "extra", "postgres.role_extra"),
        (subject, "roles.reporting", "changed", "postgres.role_changed"),
    }


# The planted postgres findings: (subject, key, kind, check); none is expected (no rule).
EXPECTED_POSTGRES_FINDINGS = {
    ("app", "public.reminders", "missing", "postgres.table_missing"),
    ("app", "public.users.avatar_url", "missing", "postgres.column_missing"),
    ("app", "public.users.display_name", "changed", "postgres.column_changed"),
    ("app", "public.tasks.priority", "changed", "postgres.column_changed"),
    ("app", "public.users.timezone", "changed", "postgres.column_changed"),
    ("app", "public.users.users_email_key", "missing", "postgres.constraint_missing"),
    ("app", "public.tasks.tasks_user_id_fkey", "changed", "postgres.constraint_changed"),
    ("app", "public.tasks.tasks_priority_check", "changed", "postgres.constraint_changed"),
    ("app", "public.tasks.tasks_due_at_idx", "missing", "postgres.index_missing"),
    ("app", "public.tasks.tasks_status_due_at_idx", "extra", "postgres.index_extra"),  # by hand on prod
    ("app", "public.tasks.tasks_user_id_idx", "changed", "postgres.index_changed"),
    ("app", "public.tasks.tasks_touch_updated_at", "changed", "postgres.trigger_changed"),
    ("app", "public.open_tasks", "changed", "postgres.view_changed"),
    ("app", "public.user_task_count(p_user bigint)", "changed", "postgres.function_changed"),
    ("app", "public.task_status", "changed", "postgres.enum_changed"),
    ("app", "extensions.pg_trgm", "missing", "postgres.extension_missing"),
    ("app", "extensions.citext", "changed", "postgres.extension_version"),
    ("app", "settings.work_mem", "changed", "postgres.setting_changed"),
    ("app", "settings.statement_timeout", "changed", "postgres.setting_changed"),
    ("app", "migrations.alembic", "changed", "postgres.migrations_heads"),
    ("app", "migrations.django", "changed", "postgres.migrations_behind"),
    ("app", "@audit_role", "policy", "postgres.audit_role_can_write"),
    # Who may do what: privileges, default privileges, row level security.
    ("app", "privileges.table public.notes to reporting", "extra", "postgres.privilege_extra"),
    ("app", "privileges.table public.tasks to reporting", "changed", "postgres.privilege_changed"),
    ("app", "privileges.column public.tasks.title to reporting", "extra", "postgres.privilege_extra"),
    ("app", "privileges.function public.user_task_count(p_user bigint) to PUBLIC", "extra", "postgres.privilege_extra"),
    (
        "app",
        "default_privileges.tables created by reporting in schema public to analytics_owner",
        "missing",
        "postgres.default_privilege_missing",
    ),
    ("app", "public.notes", "changed", "postgres.rls_changed"),
    ("app", "public.notes.notes_own", "changed", "postgres.policy_changed"),
    ("app", "public.tasks.tasks_keep_done", "missing", "postgres.policy_missing"),
    ("app", "public.sessions", "changed", "postgres.table_changed"),
    ("app", "public.ticket_seq", "changed", "postgres.sequence_changed"),
    ("app", "comments.table public.tasks", "changed", "postgres.comment_changed"),
    ("app", "public.open_tasks.open_tasks_insert", "missing", "postgres.trigger_missing"),
    ("app", "public.task_counts.task_counts_user", "missing", "postgres.index_missing"),
    ("app", "data.public.plans", "changed", "postgres.data_reference_rows"),
    ("app", "data.public.users", "changed", "postgres.data_reference_rows"),
    ("app", "data.public.sessions.rows", "changed", "postgres.data_row_count"),
    ("app", "data.public.notes_id_seq", "policy", "postgres.data_sequence_behind"),
    ("app", "data.public.notes.notes_body_idx", "policy", "postgres.data_invalid_index"),
    ("app", "data.@never_analyzed", "policy", "postgres.data_never_analyzed"),
    ("app", "public.user_plans.user_plans_plan_id_check", "policy", "postgres.constraint_not_valid"),
    ("app", "publications.app_changes.public.tasks", "changed", "postgres.publication_table_changed"),
    ("app", "large_objects.owned by (database owner)", "changed", "postgres.large_object_privilege_changed"),
    ("analytics", "public.events.events_occurred_at_idx", "missing", "postgres.index_missing"),
    # app and analytics share a server on each side: its settings and roles are reported once.
    *_cluster_wide("cluster:analytics+app"),
}


def canaries() -> dict[str, str]:
    return {k: v for k, v in json.loads(CANARIES.read_text()).items() if k.startswith("postgres.")}


def admin(env: str, sql: str, dbname: str = "postgres") -> list[list[str]]:
    """Read-only SQL as the cluster's superuser (peer authentication on the lab's socket)."""
    socket_dir, socket_port, _, _, _ = CLUSTERS[env]
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", PSQL, "-X", "-q", "-A", "-t", "-h", str(socket_dir)]
        + ["-p", str(socket_port), "-U", "postgres", "-d", dbname, "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split("|") for line in proc.stdout.splitlines() if line]


def login(env: str, password: str, dbname: str | None = None, user: str | None = None) -> subprocess.CompletedProcess:
    """psql over TCP on 127.0.0.1 as the application's role (the password in the environment only)."""
    _, _, tcp_port, app_db, app_user = CLUSTERS[env]
    return subprocess.run(
        [PSQL, "-X", "-A", "-t", "-w", "-c", "SELECT current_user, current_database()"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "LC_ALL": "C",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(tcp_port),
            "PGUSER": user or app_user,
            "PGDATABASE": dbname or app_db,
            "PGPASSWORD": password,
            "PGCONNECT_TIMEOUT": "10",
        },
        check=False,
    )


def docker_exec_psql(password: str) -> subprocess.CompletedProcess:
    """What the audit runs for prod's ai_assistant: psql inside the container, over its socket."""
    return subprocess.run(
        ["docker", "-H", "unix://%s" % DOCKER_SOCKET, "exec", "-i", "-e", "PGUSER", "-e", "PGDATABASE"]
        + ["-e", "PGPASSWORD", CONTAINER, "psql", "-X", "-A", "-t", "-w", "-c", "SELECT current_user"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PGUSER": "prod_user", "PGDATABASE": "ai_assistant", "PGPASSWORD": password},
        check=False,
    )


def dev_pid() -> int:
    return int((DEV_DATA / "postmaster.pid").read_text().split()[0])


def container() -> dict:
    found = engine_get("/containers/%s/json" % CONTAINER)
    assert found is not None, "no container %s" % CONTAINER
    return found


def cmdline(pid: int) -> list[str]:
    return Path("/proc/%d/cmdline" % pid).read_bytes().decode().split("\0")[:-1]


def proc_uid(pid: int) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


# ---------------------------------------------------------------- the two servers


def test_status_reports_both_servers():
    proc = labctl("status")
    assert proc.returncode == 0, proc.stdout
    lines = {line.split()[1] + " " + line.split()[2]: line.split()[0] for line in proc.stdout.splitlines()[:-1]}
    assert lines["postgres dev"] == lines["postgres prod"] == lines["postgres secrets"] == "ok"


def test_dev_cluster_runs_from_its_pidfile_on_loopback():
    pid = dev_pid()
    cmd = cmdline(pid)
    assert cmd[0] == str(PG_BIN / "postgres") and str(DEV_DATA) in cmd
    assert proc_uid(pid) != 0
    assert admin("dev", "SHOW listen_addresses") == [["127.0.0.1"]]
    assert admin("dev", "SHOW port") == [["55432"]]
    assert admin("dev", "SHOW unix_socket_directories") == [[str(RUN_DIR / "pg-dev")]]
    assert admin("dev", "SHOW password_encryption") == [["scram-sha-256"]]


def test_prod_runs_in_the_db_container_as_non_root():
    found = container()
    state, config, host = found["State"], found["Config"], found["HostConfig"]
    assert (state["Status"], state["Health"]["Status"], config["Image"]) == ("running", "healthy", "lab/postgres:15")
    assert config["User"] == "postgres"
    assert proc_uid(state["Pid"]) != 0
    assert cmdline(state["Pid"])[0] == "postgres"
    assert host["PortBindings"] == {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "55433"}]}
    assert host["Memory"] > 0 and host["RestartPolicy"]["Name"] == "unless-stopped"
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "pg_isready"]
    labels = config["Labels"]
    assert (labels["com.docker.compose.project"], labels["com.docker.compose.service"]) == ("ai_assistant", "db")
    image = engine_get("/images/lab%2Fpostgres:15/json")
    assert image["RepoDigests"] == []  # imported, never pulled
    # No secret in the container's configuration: the passwords live in the database only.
    assert [name for name, value in canaries().items() if value in json.dumps(config)] == []


def test_both_run_the_same_server_version():
    assert admin("dev", "SHOW server_version") == admin("prod", "SHOW server_version")


# ---------------------------------------------------------------- logins and password files


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_password_files_hold_the_app_roles_passwords(env):
    path = PASSWORD_FILES[env]
    st = path.stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)
    assert path.read_text() == canaries()["postgres.%s.password" % env]


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize("dbname", ["app", "analytics"])
def test_app_role_logs_in_with_the_password_file(env, dbname):
    _, _, _, app_db, app_user = CLUSTERS[env]
    database = app_db if dbname == "app" else "analytics"
    proc = login(env, PASSWORD_FILES[env].read_text(), dbname=database)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "%s|%s" % (app_user, database)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_wrong_password_is_refused(env):
    proc = login(env, "wrong-" + secrets.token_hex(8))
    assert proc.returncode != 0
    assert "password authentication failed" in proc.stderr


def test_docker_exec_psql_needs_the_password_too():
    proc = docker_exec_psql(PASSWORD_FILES["prod"].read_text())
    assert (proc.returncode, proc.stdout.strip()) == (0, "prod_user"), proc.stderr
    proc = docker_exec_psql("wrong-" + secrets.token_hex(8))
    assert proc.returncode != 0 and "password authentication failed" in proc.stderr


# ---------------------------------------------------------------- canaries and manifest


def test_canaries_are_recorded_and_planted_in_the_clusters():
    found = canaries()
    assert set(found) == CANARY_NAMES
    for env, (_, _, _, _, app_user) in CLUSTERS.items():
        assert login(env, found["postgres.%s.superuser_password" % env], user="postgres").returncode == 0
        settings = admin(
            env,
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
            " WHERE s.setdatabase = 0 AND r.rolname = '%s'" % app_user,
        )
        assert settings == [["{app.api_key=%s}" % found["postgres.%s.role_api_key" % env]]]


def test_no_canary_in_the_manifest():
    text = MANIFEST.read_text()
    assert [name for name, value in canaries().items() if value in text] == []


def test_manifest_lists_exactly_the_planted_postgres_drift():
    planted = [e for e in json.loads(MANIFEST.read_text())["planted"] if e["area"] == "postgres"]
    assert {(e["subject"], e["key"], e["kind"], e["check"]) for e in planted} == EXPECTED_POSTGRES_FINDINGS
    assert len(planted) == len(EXPECTED_POSTGRES_FINDINGS)
    assert not any(e["expected"] for e in planted)


def test_the_next_up_writes_exactly_the_planted_postgres_drift():
    """The lab code's own list (the manifest on disk is as of the last `labctl up`)."""
    code = "import json, sys; sys.path.insert(0, %r); import postgres_area; print(json.dumps(postgres_area.planted()))"
    proc = subprocess.run(
        [sys.executable, "-c", code % str(LABCTL.parent)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    planted = json.loads(proc.stdout)
    assert {(e["subject"], e["key"], e["kind"], e["check"]) for e in planted} == EXPECTED_POSTGRES_FINDINGS
    assert len(planted) == len(EXPECTED_POSTGRES_FINDINGS)


def test_manifest_has_the_db_service_as_an_expected_docker_difference():
    planted = json.loads(MANIFEST.read_text())["planted"]
    entry = {"area": "docker", "subject": "app", "key": "services.db", "kind": "extra"}
    entry.update(check="docker.service_extra", expected=True)
    assert entry in planted


# ---------------------------------------------------------------- the planted objects (spot checks)


def _one(env: str, sql: str, dbname: str) -> str:
    rows = admin(env, sql, dbname)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


def both(sql: str) -> tuple[str, str]:
    """One value of the application's database, dev's and prod's."""
    return _one("dev", sql, "personal_assistant"), _one("prod", sql, "ai_assistant")


def test_planted_schema_differences():
    assert both("SELECT to_regclass('public.reminders') IS NOT NULL") == ("t", "f")
    assert both("SELECT enum_range(NULL::public.task_status)") == ("{todo,doing,done,archived}", "{todo,doing,done}")
    assert both("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.users'::regclass"
                " AND attname = 'display_name'") == ("character varying(120)", "character varying(80)")  # fmt: skip
    assert both("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'avatar_url'"
                " AND NOT attisdropped") == ("1", "0")  # fmt: skip
    assert both("SELECT count(*) FROM pg_constraint WHERE conname = 'users_email_key'") == ("1", "0")
    assert both("SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension") == (
        "citext 1.6, pg_trgm 1.6, plpgsql 1.0",
        "citext 1.4, plpgsql 1.0",
    )
    assert both("SELECT string_agg(version_num, ',') FROM public.alembic_version") == ("0002", "0001")
    assert both("SELECT count(*) FROM public.django_migrations") == ("5", "4")
    # The index made by hand on prod (lab HOTFIXES): valid, and recorded by no migration.
    assert both("SELECT coalesce(string_agg(i.indisvalid::text || ' ' || pg_get_indexdef(i.indexrelid), ','), 'none')"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = 'tasks_status_due_at_idx'") == (
        "none",
        "true CREATE INDEX tasks_status_due_at_idx ON public.tasks USING btree (status, due_at)"
        " WHERE (status <> 'done'::task_status)",
    )  # fmt: skip


def test_planted_privileges_and_row_level_security():
    def acl(relation: str) -> str:
        return (
            "SELECT coalesce(array_to_string(relacl, ','), 'none') FROM pg_class WHERE oid = '%s'::regclass" % relation
        )

    dev, prod = both(acl("public.notes"))
    assert "reporting=" not in dev and "reporting=ar/prod_user" in prod.split(",")
    dev, prod = both(acl("public.tasks"))
    assert "reporting=r/ianleblanc" in dev.split(",") and "reporting=r*/prod_user" in prod.split(",")
    column_acl = (
        "SELECT coalesce(array_to_string(attacl, ','), 'none') FROM pg_attribute"
        " WHERE attrelid = 'public.tasks'::regclass AND attname = 'title'"
    )
    assert both(column_acl) == ("none", "reporting=w/prod_user")
    assert both("SELECT has_function_privilege('public', 'public.user_task_count(bigint)', 'EXECUTE')") == ("f", "t")
    assert both("SELECT count(*) FROM pg_default_acl") == ("1", "0")
    assert both("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.notes'::regclass") == ("t", "f")
    assert both("SELECT string_agg(polname || ':' || pg_get_expr(polqual, polrelid), ',' ORDER BY polname)"
                " FROM pg_policy") == ("notes_own:(user_id = 1),tasks_keep_done:(status <> 'done'::task_status)",
                                       "notes_own:true")  # fmt: skip


def test_planted_storage_sequences_comments_and_view_parts():
    assert both("SELECT relpersistence FROM pg_class WHERE oid = 'public.sessions'::regclass") == ("p", "u")
    owned = (
        "SELECT c.relname || '.' || a.attname FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid"
        " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
        " WHERE d.objid = 'public.ticket_seq'::regclass AND d.deptype = 'a'"
    )
    assert both(owned) == ("sessions.id", "notes.user_id")
    assert both("SELECT obj_description('public.tasks'::regclass, 'pg_class')") == (
        "A user's to-do items",
        "To-do items",
    )
    assert both("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.open_tasks'::regclass") == ("1", "0")
    assert both("SELECT count(*) FROM pg_index WHERE indrelid = 'public.task_counts'::regclass") == ("1", "0")


def test_every_lab_database_carries_the_same_comment():
    """The lab's rebuild marker (COMMENT ON DATABASE) is no drift: the audit compares it."""
    comments = {
        (env, dbname): _one(env, "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                        " WHERE datname = current_database()", dbname)
        for env, dbname in (("dev", "personal_assistant"), ("dev", "analytics"), ("prod", "ai_assistant"),
                            ("prod", "analytics"))
    }  # fmt: skip
    assert len(set(comments.values())) == 1, comments
    assert next(iter(comments.values())).startswith("envparity-lab planted, sha256 ")


def test_planted_validation_publication_and_large_objects():
    """As PostgreSQL itself says them: convalidated, prattrs, pg_largeobject_metadata."""
    assert both("SELECT convalidated FROM pg_constraint WHERE conname = 'user_plans_plan_id_check'") == ("t", "f")
    columns = (
        "SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_publication_rel pr"
        " JOIN pg_publication p ON p.oid = pr.prpubid JOIN pg_attribute a ON a.attrelid = pr.prrelid"
        " AND a.attnum = ANY (pr.prattrs) WHERE p.pubname = 'app_changes'"
    )
    assert both(columns) == ("id,user_id,title,status", "id,user_id,title,status,due_at")
    assert both("SELECT count(*) FROM pg_largeobject_metadata WHERE lomacl IS NULL") == ("1", "1")
    assert both("SELECT count(*) FROM pg_largeobject_metadata WHERE lomacl::text LIKE '%reporting=r/%'") == ("0", "1")


def test_planted_settings():
    assert (_one("dev", "SHOW max_connections", "postgres"), _one("prod", "SHOW max_connections", "postgres")) == (
        "100",
        "200",
    )
    assert (_one("dev", "SHOW shared_buffers", "postgres"), _one("prod", "SHOW shared_buffers", "postgres")) == (
        "128MB",
        "256MB",
    )
    sql = (
        "SELECT coalesce(array_to_string(s.setconfig, ','), 'none') FROM pg_database d"
        " LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0 WHERE d.datname = '%s'"
    )
    assert _one("dev", sql % "personal_assistant", "postgres") == "work_mem=16MB"
    assert _one("prod", sql % "ai_assistant", "postgres") == "work_mem=64MB,statement_timeout=30s"
    assert _one("dev", sql % "analytics", "postgres") == _one("prod", sql % "analytics", "postgres") == "none"


def test_planted_roles():
    sql = (
        "SELECT string_agg(rolname || ':' || rolcanlogin::int || rolcreatedb::int, ',' ORDER BY rolname) FROM pg_roles"
    )
    sql += " WHERE rolname !~ '^pg_' AND rolname <> 'postgres'"
    assert _one("dev", sql, "postgres") == "analyst:00,analytics_owner:00,ianleblanc:10,reporting:01"
    assert _one("prod", sql, "postgres") == "analytics_owner:00,prod_user:10,reporting:00"


def test_analytics_differs_by_one_index_only():
    sql = "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'"
    assert _one("dev", sql, "analytics") == "events_name_idx,events_occurred_at_idx,events_pkey"
    assert _one("prod", sql, "analytics") == "events_name_idx,events_pkey"


def test_the_audit_of_the_lab_finds_exactly_the_manifest():
    """The real collector (psql on this host, docker exec for prod's app database) and the real
    diff, without Ansible: every planted postgres finding, and nothing else."""
    pg_collect = pytest.importorskip("ansible_collections.envparity.audit.plugins.module_utils.pg_collect")
    pg_diff = pytest.importorskip("ansible_collections.envparity.audit.plugins.plugin_utils.pg_diff")
    key = secrets.token_bytes(32)

    def database(name, dbname, user, port=None, container_name=None):
        host = None if container_name else "127.0.0.1"
        entry = {"name": name, "dbname": dbname, "user": user, "host": host, "port": port, "container": container_name}
        return dict(entry, data_parity=name == "app")  # as the lab inventory has it

    requests = {
        "dev": {
            "databases": [
                database("app", "personal_assistant", "ianleblanc", 55432),
                database("analytics", "analytics", "ianleblanc", 55432),
            ]
        },
        "prod": {
            "databases": [
                database("app", "ai_assistant", "prod_user", container_name=CONTAINER),
                database("analytics", "analytics", "prod_user", 55433),
            ],
            "docker_host": "unix://%s" % DOCKER_SOCKET,
        },
    }
    facts = {}
    for env, request in requests.items():
        password = PASSWORD_FILES[env].read_text()
        facts[env] = pg_collect.collect_postgres(request, key, {"app": password, "analytics": password})
        for name, db in facts[env]["databases"].items():
            assert db["status"] == "ok", (env, name, db["reason"])
    findings = pg_diff.diff(["dev", "prod"], facts, {"baseline": "dev", "production": {"prod"}})
    found = [(f["subject"], f["key"], f["kind"], f["check"]) for f in findings]
    assert sorted(set(found)) == sorted(EXPECTED_POSTGRES_FINDINGS)
    assert len(found) == len(set(found))
    text = json.dumps(findings) + json.dumps(facts)
    assert [name for name, value in canaries().items() if value in text] == []


# ---------------------------------------------------------------- idempotency, replant, down


def test_second_up_restarts_nothing():
    before = (dev_pid(), container()["Id"], container()["State"]["StartedAt"], container()["State"]["Pid"])
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "labctl up: no changes" in proc.stdout
    assert (dev_pid(), container()["Id"], container()["State"]["StartedAt"], container()["State"]["Pid"]) == before


def test_replant_sets_fresh_secrets_without_restarting():
    old, manifest = canaries(), MANIFEST.read_bytes()
    before = (dev_pid(), container()["State"]["Pid"])
    proc = labctl("replant")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new = canaries()
    assert set(new) == set(old) and [name for name in new if new[name] == old[name]] == []
    assert (dev_pid(), container()["State"]["Pid"]) == before
    for env in CLUSTERS:
        assert PASSWORD_FILES[env].read_text() == new["postgres.%s.password" % env]
        assert login(env, new["postgres.%s.password" % env]).returncode == 0
        assert login(env, old["postgres.%s.password" % env]).returncode != 0
    assert MANIFEST.read_bytes() == manifest
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "labctl up: no changes" in proc.stdout


def test_down_stops_both_servers_by_pid_and_up_restores_them(lab):
    if lab["was_up"] and os.environ.get("ENVPARITY_LAB_DISRUPTIVE") != "1":
        pytest.skip("the lab was already up (maybe in use); set ENVPARITY_LAB_DISRUPTIVE=1 to cycle it")
    dev, found = dev_pid(), container()
    prod, container_id = found["State"]["Pid"], found["Id"]
    assert labctl("down").returncode == 0
    for pid in (dev, prod):
        assert not Path("/proc/%d" % pid).exists() or b"postgres" not in Path("/proc/%d/cmdline" % pid).read_bytes()
    assert not (DEV_DATA / "postmaster.pid").exists()
    assert login("dev", PASSWORD_FILES["dev"].read_text()).returncode != 0
    assert labctl("status").returncode == 1
    second = labctl("down")
    assert second.returncode == 0 and "no changes" in second.stdout
    proc = labctl("up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert container()["Id"] == container_id  # restarted, not recreated
    for env in CLUSTERS:
        assert login(env, PASSWORD_FILES[env].read_text()).returncode == 0
