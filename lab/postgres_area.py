"""The postgres area of the lab: dev's PostgreSQL 15 runs natively (a cluster of the lab's own,
started with pg_ctl), prod's runs in the db container of prod's compose stack, and both carry
the application's database with planted drift.

Dev: `initdb` as the system user postgres into STATE_DIR/pg-dev (scram-sha-256, the superuser's
password from a pwfile), listening on 127.0.0.1:55432 only, its socket and log in
/run/envparity-lab/pg-dev; `pg_ctl -w` starts it and `down` stops it (fast shutdown, by the pid
of its postmaster.pid). Databases: personal_assistant (owner ianleblanc) and analytics.

Prod: the image lab/postgres:15 is a root filesystem made from this machine's own PostgreSQL
(/usr/lib/postgresql/15, /usr/share/postgresql/15, the time zone data, psql and every shared
library ldd names) and a static busybox for sh, imported through the Engine API (no registry):
docker_area imports it through the `docker_images()` hook below and Compose runs it as service
`db` of prod's stack (docker_area.compose_runs), as the user postgres with this machine's uid, so
that the data dir (docker_area.DB_DATA_DIR) is initialised here with initdb before the container
first starts, and the container's socket dir is bind-mounted from the host
(docker_area.DB_SOCKET_DIR): the lab administers both clusters the same way, with the host's
psql as postgres over a Unix socket (peer authentication), SQL on stdin. Databases:
ai_assistant (owner prod_user) and analytics. The audit reaches ai_assistant with `docker exec
ai_assistant-db-1 psql` and analytics over TCP on 127.0.0.1:55433 (the published port).

Planted drift: app is dev's personal_assistant against prod's ai_assistant, analytics against
analytics (identical but for one index); prod's app database also has an index created by hand
(HOTFIXES, in no migration: manual schema drift). PLANTED lists every finding the PostgreSQL diff
(plugins/plugin_utils/pg_diff.py) must report for that state, no more: app and analytics share a
server on each side, so the server's own facts (its settings, the roles) are reported once, under
the subject cluster:analytics+app; what is a database's own (ALTER DATABASE … SET) under it.

Canaries (canaries.json, "postgres." names): the passwords of ianleblanc, prod_user and each
cluster's superuser, and a role-level setting (`ALTER ROLE … SET app.api_key`) of ianleblanc and
prod_user. The password files the lab inventory reads (PASSWORD_FILES) hold ianleblanc's and
prod_user's passwords.

Idempotency: a database is created from its DDL and carries in its comment (COMMENT ON DATABASE)
a hash of every database the lab builds, the same text in each, so that the audit, which compares
the databases' comments, finds nothing there; all are recreated when that hash differs.
Roles are compared attribute by attribute with pg_roles, passwords by logging in with them over
TCP, role settings with pg_db_role_setting: `up` changes only what differs. `replant` sets the
fresh secrets in the clusters that run (a password or a setting changes, nothing restarts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import pwd
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import docker_area
from labcore import (
    DEV,
    PROD,
    STATE_DIR,
    Ctx,
    Env,
    LabError,
    canary_maker,
    ensure_dir,
    install_packages,
    pid_alive,
    read_pidfile,
    remove_tree,
    run,
    terminate,
    uninstalled,
    write_file,
)
from labcore import cmdline as process_cmdline

NAME = "postgres"
CANARY_PREFIX = "postgres."

PG_LIB = Path("/usr/lib/postgresql/15")
PG_BIN = PG_LIB / "bin"
PG_SHARE = Path("/usr/share/postgresql/15")
ZONEINFO = Path("/usr/share/zoneinfo")  # Debian builds PostgreSQL --with-system-tzdata
PSQL = PG_BIN / "psql"  # not /usr/bin/psql: Debian's pg_wrapper (perl) picks a cluster itself
# Debian package -> why the lab needs it (checked by package state, like docker_area).
PACKAGES = {
    "postgresql-15": "initdb, pg_ctl, postgres",
    "postgresql-contrib": "the contrib extensions (pg_trgm, citext)",
    "postgresql-client-15": "psql",
}
OS_USER = "postgres"  # the system user the package creates; runs both clusters
SUPERUSER = "postgres"

PG_DIR = STATE_DIR / "pg"
# Read by the lab inventory with lookup('ansible.builtin.file', …), like a mounted secret.
PASSWORD_FILES = {DEV.name: PG_DIR / "dev.password", PROD.name: PG_DIR / "prod.password"}

READY_TIMEOUT = 90.0
LAB_COMMENT = "envparity-lab planted, sha256 "  # + the hash of what the databases were built from


# ---------------------------------------------------------------- the two clusters


@dataclasses.dataclass(frozen=True)
class Cluster:
    env: Env
    data_dir: Path
    socket_dir: Path  # on this machine (prod's is bind-mounted into the container)
    socket_port: int  # the port in the socket's name, .s.PGSQL.<port>
    tcp_port: int  # on 127.0.0.1
    app_db: str
    app_user: str  # owns the application's database; the audit connects as this role
    settings: tuple  # (name, value) in postgresql.conf: the planted server settings

    @property
    def log(self) -> Path:
        return self.socket_dir / "postgresql.log"


DEV_CLUSTER = Cluster(
    DEV,
    STATE_DIR / "pg-dev",
    docker_area.RUN_DIR / "pg-dev",
    55432,
    55432,
    "personal_assistant",
    "ianleblanc",
    (("max_connections", "100"), ("shared_buffers", "128MB")),
)
PROD_CLUSTER = Cluster(
    PROD,
    docker_area.DB_DATA_DIR,
    docker_area.DB_SOCKET_DIR,
    5432,
    docker_area.DB_PORT,
    "ai_assistant",
    "prod_user",
    (("max_connections", "200"), ("shared_buffers", "256MB")),
)
CLUSTERS = (DEV_CLUSTER, PROD_CLUSTER)
CONTAINER = "%s-db-1" % docker_area.PROD_STACK.project  # ai_assistant-db-1

# Written over initdb's files. Everything but the planted settings is the same on both sides (a
# setting not at its default is compared by the audit); the host paths and ports are not
# compared. unix_socket_directories: inside the container, the directory Debian's libpq looks
# in by default, so that `docker exec … psql` needs no host.
CONF = """\
# PostgreSQL of the envparity lab ({env}). Generated by lab/labctl: edits are overwritten.
listen_addresses = '{listen}'
port = {port}
unix_socket_directories = '{sockets}'
password_encryption = scram-sha-256

# Planted: these differ between dev and prod.
{planted}

dynamic_shared_memory_type = posix
max_wal_size = 1GB
min_wal_size = 80MB
datestyle = 'iso, mdy'
timezone = 'UTC'
log_timezone = 'UTC'
lc_messages = 'C'
lc_monetary = 'C'
lc_numeric = 'C'
lc_time = 'C'
default_text_search_config = 'pg_catalog.english'
"""

# The superuser only over the socket as the system user postgres (the lab's own access); every
# other role with its password. Inside the container, TCP comes from docker-proxy on the bridge.
HBA = """\
# Client authentication of the envparity lab ({env}). Generated by lab/labctl.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer
local   all       all                      scram-sha-256
{host_lines}"""
DEV_HBA_HOSTS = "host    all       all       127.0.0.1/32   scram-sha-256\n"
PROD_HBA_HOSTS = (
    "host    all       all       0.0.0.0/0      scram-sha-256\n"
    "host    all       all       ::/0           scram-sha-256\n"
)


def _conf(cluster: Cluster) -> str:
    dev = cluster is DEV_CLUSTER
    return CONF.format(
        env=cluster.env.name,
        listen="127.0.0.1" if dev else "*",
        port=cluster.socket_port,
        sockets=cluster.socket_dir if dev else "/var/run/postgresql",
        planted="\n".join("%s = %s" % pair for pair in cluster.settings),
    )


def _hba(cluster: Cluster) -> str:
    return HBA.format(env=cluster.env.name, host_lines=DEV_HBA_HOSTS if cluster is DEV_CLUSTER else PROD_HBA_HOSTS)


# ---------------------------------------------------------------- what is planted

APP, ANALYTICS = "app", "analytics"
SERVER = "cluster:analytics+app"  # both databases' server, on each side (pg_cluster)


def _finding(subject: str, key: str, kind: str, check: str, expected: bool = False) -> dict:
    return {"area": "postgres", "subject": subject, "key": key, "kind": kind, "check": check, "expected": expected}


# The server's, so once for both databases: the server settings and the roles. The canary role
# settings (ALTER ROLE ianleblanc / prod_user SET app.api_key) imply no finding: each of those
# roles exists on one side only (its settings are compared only when both have it), and a
# custom setting such as app.api_key is not in pg_settings.
def _cluster_wide(subject: str) -> list[dict]:
    return [
        _finding(subject, "settings.max_connections", "changed", "postgres.setting_changed"),  # 100 vs 200
        _finding(subject, "settings.shared_buffers", "changed", "postgres.setting_changed"),  # 128MB vs 256MB
        _finding(subject, "roles.analyst", "missing", "postgres.role_missing"),  # dev only
        _finding(subject, "roles.ianleblanc", "missing", "postgres.role_missing"),  # dev's owner
        _finding(subject, "roles.prod_user", "extra", "postgres.role_extra"),  # prod's owner
        _finding(subject, "roles.reporting", "changed", "postgres.role_changed"),  # CREATEDB in dev only
    ]


# What the audit must find (dev is the baseline). No values here: the manifest never holds a secret.
PLANTED = [
    _finding(APP, "public.reminders", "missing", "postgres.table_missing"),
    _finding(APP, "public.users.avatar_url", "missing", "postgres.column_missing"),
    _finding(APP, "public.users.display_name", "changed", "postgres.column_changed"),  # varchar(120) vs (80)
    _finding(APP, "public.tasks.priority", "changed", "postgres.column_changed"),  # not null in dev only
    _finding(APP, "public.users.timezone", "changed", "postgres.column_changed"),  # default 'UTC' vs Toronto
    # Its index (users_email_key) is not reported again.
    _finding(APP, "public.users.users_email_key", "missing", "postgres.constraint_missing"),
    _finding(APP, "public.tasks.tasks_user_id_fkey", "changed", "postgres.constraint_changed"),  # on delete cascade
    _finding(APP, "public.tasks.tasks_priority_check", "changed", "postgres.constraint_changed"),
    _finding(APP, "public.tasks.tasks_due_at_idx", "missing", "postgres.index_missing"),
    _finding(APP, "public.tasks.tasks_user_id_idx", "changed", "postgres.index_changed"),  # (user_id, status)
    _finding(APP, "public.tasks.tasks_touch_updated_at", "changed", "postgres.trigger_changed"),  # UPDATE OF …
    _finding(APP, "public.open_tasks", "changed", "postgres.view_changed"),
    _finding(APP, "public.user_task_count(p_user bigint)", "changed", "postgres.function_changed"),
    _finding(APP, "public.task_status", "changed", "postgres.enum_changed"),  # prod lacks 'archived'
    _finding(APP, "extensions.pg_trgm", "missing", "postgres.extension_missing"),
    _finding(APP, "extensions.citext", "changed", "postgres.extension_version"),  # 1.6 vs 1.4
    _finding(APP, "settings.work_mem", "changed", "postgres.setting_changed"),  # ALTER DATABASE: 16MB vs 64MB
    _finding(APP, "settings.statement_timeout", "changed", "postgres.setting_changed"),  # default vs 30s
    _finding(APP, "migrations.alembic", "changed", "postgres.migrations_heads"),  # 0002 vs 0001
    _finding(APP, "migrations.django", "changed", "postgres.migrations_behind"),  # prod lacks one
    # ianleblanc and prod_user own the application's databases (analytics' audit role only reads).
    _finding(APP, "@audit_role", "policy", "postgres.audit_role_can_write"),
    # Who may do what (_security_ddl).
    _finding(APP, "privileges.table public.notes to reporting", "extra", "postgres.privilege_extra"),
    _finding(APP, "privileges.table public.tasks to reporting", "changed", "postgres.privilege_changed"),
    _finding(APP, "privileges.column public.tasks.title to reporting", "extra", "postgres.privilege_extra"),
    _finding(
        APP, "privileges.function public.user_task_count(p_user bigint) to PUBLIC", "extra", "postgres.privilege_extra"
    ),
    _finding(
        APP,
        "default_privileges.tables created by reporting in schema public to analytics_owner",
        "missing",
        "postgres.default_privilege_missing",
    ),
    _finding(APP, "public.notes", "changed", "postgres.rls_changed"),  # on in dev only
    _finding(APP, "public.notes.notes_own", "changed", "postgres.policy_changed"),  # roles and USING
    _finding(APP, "public.tasks.tasks_keep_done", "missing", "postgres.policy_missing"),
    # Storage, sequence ownership, comments, a view's trigger, a materialized view's index.
    _finding(APP, "public.sessions", "changed", "postgres.table_changed"),  # unlogged in prod
    _finding(APP, "public.ticket_seq", "changed", "postgres.sequence_changed"),  # owned by another column
    _finding(APP, "comments.table public.tasks", "changed", "postgres.comment_changed"),
    _finding(APP, "public.open_tasks.open_tasks_insert", "missing", "postgres.trigger_missing"),
    _finding(APP, "public.task_counts.task_counts_user", "missing", "postgres.index_missing"),
    # Data parity (DATA_DDL_*); users is a reference table too (users' FKs): its timezone differs
    # row by row, the planted default's doing.
    _finding(APP, "data.public.plans", "changed", "postgres.data_reference_rows"),
    _finding(APP, "data.public.users", "changed", "postgres.data_reference_rows"),
    _finding(APP, "data.public.sessions.rows", "changed", "postgres.data_row_count"),  # empty in prod
    _finding(APP, "data.public.notes_id_seq", "policy", "postgres.data_sequence_behind"),
    _finding(APP, "data.public.notes.notes_body_idx", "policy", "postgres.data_invalid_index"),
    _finding(APP, "data.@never_analyzed", "policy", "postgres.data_never_analyzed"),  # the lab's tables are tiny
    # VALIDITY_DDL_*: NOT VALID in prod only, a publication's column list, large objects' ACLs.
    _finding(APP, "public.user_plans.user_plans_plan_id_check", "policy", "postgres.constraint_not_valid"),
    _finding(APP, "publications.app_changes.public.tasks", "changed", "postgres.publication_table_changed"),
    _finding(APP, "large_objects.owned by (database owner)", "changed", "postgres.large_object_privilege_changed"),
    _finding(ANALYTICS, "public.events.events_occurred_at_idx", "missing", "postgres.index_missing"),
    # HOTFIXES: an index created by hand on prod, in no migration (manual schema drift).
    _finding(APP, "public.tasks.tasks_status_due_at_idx", "extra", "postgres.index_extra"),
    *_cluster_wide(SERVER),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


# ---------------------------------------------------------------- roles and databases


@dataclasses.dataclass(frozen=True)
class Role:
    name: str
    login: bool = False
    createdb: bool = False

    def options(self) -> str:
        return "%s %s NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1" % (
            "LOGIN" if self.login else "NOLOGIN",
            "CREATEDB" if self.createdb else "NOCREATEDB",
        )

    def attributes(self) -> tuple:
        """As pg_roles shows them: rolcanlogin, rolcreatedb, rolsuper, rolcreaterole, rolreplication,
        rolbypassrls, rolconnlimit."""
        return ("t" if self.login else "f", "t" if self.createdb else "f", "f", "f", "f", "f", "-1")


ROLES = {
    DEV_CLUSTER: (
        Role("ianleblanc", login=True),
        Role("analytics_owner"),
        Role("reporting", createdb=True),
        Role("analyst"),
    ),
    PROD_CLUSTER: (
        Role("prod_user", login=True),
        Role("analytics_owner"),
        Role("reporting"),
    ),
}


@dataclasses.dataclass(frozen=True)
class Database:
    name: str
    owner: str
    ddl: str  # run as the owner (SET ROLE), in one transaction
    extensions: tuple = ()  # (name, version or None), created by the superuser first
    settings: tuple = ()  # ALTER DATABASE … SET (name, value)

    def digest(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _app_ddl(dev: bool) -> str:
    """The application's schema; `dev` selects the planted side of every difference."""

    def pick(dev_text: str, prod_text: str = "") -> str:
        return dev_text if dev else prod_text

    django = [
        ("contenttypes", "0001_initial", "2025-01-06 09:00:00+00"),
        ("auth", "0001_initial", "2025-01-06 09:00:01+00"),
        ("assistant", "0001_initial", "2025-01-06 09:00:02+00"),
        ("assistant", "0002_task_priority", "2025-02-03 10:15:00+00"),
    ]
    if dev:
        django.append(("assistant", "0003_user_avatar_url", "2025-03-10 16:40:00+00"))
    values = {
        "enum_extra": pick(", 'archived'"),
        "display_name": pick("120", "80"),
        "timezone": pick("'UTC'", "'America/Toronto'"),
        "users_extra": pick(",\n    avatar_url text,\n    CONSTRAINT users_email_key UNIQUE (email)"),
        "priority_null": pick(" NOT NULL"),
        "fk_action": pick(" ON DELETE CASCADE"),
        "priority_check": pick("priority BETWEEN 0 AND 5", "priority >= 0"),
        "user_index": pick("user_id", "user_id, status"),
        "due_index": pick("CREATE INDEX tasks_due_at_idx ON public.tasks (due_at);\n"),
        "reminders": pick(REMINDERS_DDL),
        "trigger_columns": pick("", " OF title, status"),
        "count_filter": pick(" AND status <> 'done'"),
        "open_filter": pick("t.status IN ('todo', 'doing')", "t.status <> 'done'"),
        # migrations/versions/0002_add_reminders.py is dev's only (git area)
        "alembic_head": pick("0002", "0001"),
        "django_rows": ",\n    ".join("('%s', '%s', '%s')" % row for row in django),
    }
    return APP_DDL % values + _security_ddl(dev)


def _security_ddl(dev: bool) -> str:
    """Who may do what (privileges, default privileges, row level security), then storage,
    sequence ownership, comments, a view's trigger and a materialized view's index, planted apart
    from the schema. The DDL runs as the database's owner; the default privileges are reporting's
    (a role both sides have), set as the superuser."""
    owner = "ianleblanc" if dev else "prod_user"
    if dev:
        return (
            SECURITY_DDL_COMMON
            + SECURITY_DDL_DEV % {"owner": owner}
            + KINDS_DDL_COMMON
            + KINDS_DDL_DEV
            + DATA_DDL_COMMON
            + DATA_DDL_DEV
            + VALIDITY_DDL_DEV
        )
    return (
        SECURITY_DDL_COMMON
        + SECURITY_DDL_PROD
        + KINDS_DDL_COMMON
        + KINDS_DDL_PROD
        + DATA_DDL_COMMON
        + DATA_DDL_PROD % {"owner": owner}
        + VALIDITY_DDL_PROD
    )


# The application's schema, as its migrations left it; %(…)s: the planted differences.
APP_DDL = """\
CREATE TYPE public.task_status AS ENUM ('todo', 'doing', 'done'%(enum_extra)s);

CREATE TABLE public.users (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email character varying(255) NOT NULL,
    display_name character varying(%(display_name)s),
    timezone text NOT NULL DEFAULT %(timezone)s,
    created_at timestamp with time zone NOT NULL DEFAULT now()%(users_extra)s
);

CREATE TABLE public.tasks (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL,
    title text NOT NULL,
    status public.task_status NOT NULL DEFAULT 'todo',
    priority smallint%(priority_null)s DEFAULT 0,
    due_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    updated_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT tasks_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users (id)%(fk_action)s,
    CONSTRAINT tasks_priority_check CHECK (%(priority_check)s)
);
CREATE INDEX tasks_user_id_idx ON public.tasks (%(user_index)s);
%(due_index)s
CREATE TABLE public.notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    body text NOT NULL,
    created_at timestamp with time zone NOT NULL DEFAULT now()
);
CREATE INDEX notes_user_id_idx ON public.notes (user_id);
%(reminders)s
CREATE FUNCTION public.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_touch_updated_at BEFORE UPDATE%(trigger_columns)s ON public.tasks
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

CREATE FUNCTION public.user_task_count(p_user bigint) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT count(*)::integer FROM public.tasks
    WHERE user_id = p_user%(count_filter)s
$$;

CREATE VIEW public.open_tasks AS
    SELECT t.id, t.user_id, t.title, t.status, t.due_at
    FROM public.tasks t
    WHERE %(open_filter)s;

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO public.alembic_version (version_num) VALUES ('%(alembic_head)s');

CREATE TABLE public.django_migrations (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    app character varying(255) NOT NULL,
    name character varying(255) NOT NULL,
    applied timestamp with time zone NOT NULL
);
INSERT INTO public.django_migrations (app, name, applied) VALUES
    %(django_rows)s;

INSERT INTO public.users (email, display_name) VALUES
    ('ian@example.com', 'Ian'),
    ('sam@example.com', 'Sam');
INSERT INTO public.tasks (user_id, title, status, due_at) VALUES
    (1, 'Book the dentist', 'todo', '2025-03-01 09:00+00'),
    (1, 'File taxes', 'doing', NULL),
    (2, 'Renew passport', 'done', NULL);
INSERT INTO public.notes (user_id, body) VALUES (1, 'Prefers mornings.');
"""

# Privileges and row level security on both sides (the same), then each side's own.
SECURITY_DDL_COMMON = """
GRANT USAGE ON SCHEMA public TO reporting;
GRANT SELECT ON public.users TO reporting;
"""
SECURITY_DDL_DEV = """
GRANT SELECT ON public.tasks TO reporting;
REVOKE EXECUTE ON FUNCTION public.user_task_count(bigint) FROM PUBLIC;
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_own ON public.notes FOR SELECT TO reporting USING (user_id = 1);
CREATE POLICY tasks_keep_done ON public.tasks AS RESTRICTIVE FOR DELETE TO PUBLIC USING (status <> 'done');
RESET ROLE;
ALTER DEFAULT PRIVILEGES FOR ROLE reporting IN SCHEMA public GRANT SELECT ON TABLES TO analytics_owner;
SET ROLE %(owner)s;
"""
SECURITY_DDL_PROD = """
GRANT SELECT ON public.tasks TO reporting WITH GRANT OPTION;
GRANT SELECT, INSERT ON public.notes TO reporting;
GRANT UPDATE (title) ON public.tasks TO reporting;
CREATE POLICY notes_own ON public.notes FOR SELECT TO reporting, analytics_owner USING (true);
"""

# Storage, sequence ownership, comments, a view's trigger, a materialized view's index.
KINDS_DDL_COMMON = """
CREATE FUNCTION public.open_tasks_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.tasks (user_id, title) VALUES (NEW.user_id, NEW.title);
    RETURN NEW;
END
$$;
CREATE MATERIALIZED VIEW public.task_counts AS
    SELECT user_id, count(*) AS tasks FROM public.tasks GROUP BY user_id;
"""
KINDS_DDL_DEV = """
CREATE TABLE public.sessions (id bigint PRIMARY KEY, user_id bigint NOT NULL, data text);
CREATE SEQUENCE public.ticket_seq START 1000 OWNED BY public.sessions.id;
COMMENT ON TABLE public.tasks IS 'A user''s to-do items';
CREATE TRIGGER open_tasks_insert INSTEAD OF INSERT ON public.open_tasks
    FOR EACH ROW EXECUTE FUNCTION public.open_tasks_insert();
CREATE UNIQUE INDEX task_counts_user ON public.task_counts (user_id);
"""
KINDS_DDL_PROD = """
CREATE UNLOGGED TABLE public.sessions (id bigint PRIMARY KEY, user_id bigint NOT NULL, data text);
CREATE SEQUENCE public.ticket_seq START 1000 OWNED BY public.notes.user_id;
COMMENT ON TABLE public.tasks IS 'To-do items';
"""

# Data parity (app has data_parity: true in the lab inventory): a reference table (plans, which
# user_plans references) with a row missing and a row changed in prod, sessions empty in prod, a
# note imported into prod with an explicit id (its identity sequence is behind), and an index left
# invalid in prod (what a failed CREATE INDEX CONCURRENTLY leaves; set as the superuser).
DATA_DDL_COMMON = """
CREATE TABLE public.plans (id integer PRIMARY KEY, name text NOT NULL, price_cents integer NOT NULL);
CREATE TABLE public.user_plans (user_id bigint NOT NULL REFERENCES public.users (id),
    plan_id integer NOT NULL REFERENCES public.plans (id));
CREATE INDEX notes_body_idx ON public.notes (body);
"""
DATA_DDL_DEV = """
INSERT INTO public.plans VALUES (1, 'free', 0), (2, 'pro', 900), (3, 'team', 2900);
INSERT INTO public.sessions (id, user_id, data) VALUES (1, 1, 'web'), (2, 2, 'mobile');
"""
DATA_DDL_PROD = """
INSERT INTO public.plans VALUES (1, 'free', 0), (2, 'pro', 1200);
INSERT INTO public.notes (id, user_id, body) OVERRIDING SYSTEM VALUE VALUES (50, 2, 'Imported.');
RESET ROLE;
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.notes_body_idx'::regclass;
SET ROLE %(owner)s;
"""

# A check constraint validated in dev and left NOT VALID in prod (a migration that added it NOT
# VALID and never ran VALIDATE CONSTRAINT), a publication whose column list differs (inserts only:
# a row filter or column list on published updates would bind the replica identity), and large
# objects whose ACLs differ (one readable by reporting in prod only; their oids differ anyway).
VALIDITY_DDL_DEV = """
ALTER TABLE public.user_plans ADD CONSTRAINT user_plans_plan_id_check CHECK (plan_id > 0);
CREATE PUBLICATION app_changes FOR TABLE public.tasks (id, user_id, title, status) WHERE (id > 0)
    WITH (publish = 'insert');
DO $$ BEGIN PERFORM lo_create(0); END $$;
"""
VALIDITY_DDL_PROD = """
ALTER TABLE public.user_plans ADD CONSTRAINT user_plans_plan_id_check CHECK (plan_id > 0) NOT VALID;
CREATE PUBLICATION app_changes FOR TABLE public.tasks (id, user_id, title, status, due_at) WHERE (id > 0)
    WITH (publish = 'insert');
DO $$ BEGIN PERFORM lo_create(0); EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO reporting', lo_create(0)); END $$;
"""

# dev only: migrations/versions/0002_add_reminders.py (git area) has run there.
REMINDERS_DDL = """
CREATE TABLE public.reminders (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id),
    text text NOT NULL,
    due_at timestamp with time zone NOT NULL
);
CREATE INDEX reminders_due_at_idx ON public.reminders (due_at);
"""


def _analytics_ddl(dev: bool, reader: str) -> str:
    """Identical on both sides but for one index; `reader` (the audit role) may only read."""
    return f"""\
CREATE TABLE public.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    user_ref text,
    occurred_at timestamp with time zone NOT NULL DEFAULT now(),
    properties jsonb NOT NULL DEFAULT '{{}}'::jsonb
);
CREATE INDEX events_name_idx ON public.events (name);
{"CREATE INDEX events_occurred_at_idx ON public.events (occurred_at);" if dev else ""}

CREATE MATERIALIZED VIEW public.daily_event_counts AS
    SELECT date_trunc('day', occurred_at) AS day, name, count(*) AS events
    FROM public.events
    GROUP BY 1, 2;

INSERT INTO public.events (name, user_ref, occurred_at) VALUES
    ('signup', 'u1', '2025-01-06 09:00+00'),
    ('login', 'u1', '2025-01-06 09:05+00'),
    ('task_created', 'u1', '2025-01-06 09:10+00');
REFRESH MATERIALIZED VIEW public.daily_event_counts;

GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};
"""


DATABASES = {
    DEV_CLUSTER: (
        Database(
            "personal_assistant",
            "ianleblanc",
            _app_ddl(dev=True),
            extensions=(("pg_trgm", None), ("citext", None)),
            settings=(("work_mem", "16MB"),),
        ),
        Database("analytics", "analytics_owner", _analytics_ddl(dev=True, reader="ianleblanc")),
    ),
    PROD_CLUSTER: (
        Database(
            "ai_assistant",
            "prod_user",
            _app_ddl(dev=False),
            extensions=(("citext", "1.4"),),
            settings=(("work_mem", "64MB"), ("statement_timeout", "30s")),
        ),
        Database("analytics", "analytics_owner", _analytics_ddl(dev=False, reader="prod_user")),
    ),
}


@dataclasses.dataclass(frozen=True)
class Hotfix:
    """DDL someone ran by hand on a live database, outside any migration (no django_migrations or
    alembic_version row, no migration file records it): one index, built CONCURRENTLY as one does
    on a busy table, so it runs on its own (not in the database's DDL transaction) and does not
    change the database's hash: it is added to a database that exists, and again after a rebuild."""

    dbname: str
    index: str
    statement: str


HOTFIXES = {
    DEV_CLUSTER: (),
    PROD_CLUSTER: (
        # 2025-02-18: the open-tasks page timed out on prod; an index was added there by hand.
        Hotfix(
            "ai_assistant",
            "tasks_status_due_at_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_status_due_at_idx"
            " ON public.tasks (status, due_at) WHERE status <> 'done';",
        ),
    ),
}


# ---------------------------------------------------------------- canaries


def _canaries(ctx: Ctx) -> dict[str, str]:
    password = canary_maker(length=24)
    api_key = canary_maker("ak_", 32)
    names = {
        "postgres.dev.password": password,  # ianleblanc
        "postgres.prod.password": password,  # prod_user
        "postgres.dev.superuser_password": password,
        "postgres.prod.superuser_password": password,
        "postgres.dev.role_api_key": api_key,  # ALTER ROLE ianleblanc SET app.api_key
        "postgres.prod.role_api_key": api_key,  # ALTER ROLE prod_user SET app.api_key
    }
    return {name: ctx.canary(name, make) for name, make in names.items()}


def _passwords(cluster: Cluster, c: dict[str, str]) -> list[tuple[str, str]]:
    """(role, password) of the roles that log in with a password."""
    env = cluster.env.name
    return [
        (SUPERUSER, c["postgres.%s.superuser_password" % env]),
        (cluster.app_user, c["postgres.%s.password" % env]),
    ]


def _role_settings(cluster: Cluster, c: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(cluster.app_user, "app.api_key", c["postgres.%s.role_api_key" % cluster.env.name])]


# ---------------------------------------------------------------- psql


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _clean_env(**extra: str) -> dict[str, str]:
    """No inherited PG* variable may redirect the lab's psql."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": "/var/lib/postgresql"}
    env.update(extra)
    return env


def psql(cluster: Cluster, sql: str, dbname: str = "postgres", secret: bool = False) -> str:
    """Run SQL (on stdin) as the superuser over the cluster's socket; the rows, unaligned.

    secret=True: the SQL holds a secret, so a failure never quotes psql's output (it echoes the
    failing statement)."""
    cmd = ["runuser", "-u", OS_USER, "--", str(PSQL), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    cmd += ["-h", str(cluster.socket_dir), "-p", str(cluster.socket_port), "-U", SUPERUSER, "-d", dbname, "-f", "-"]
    proc = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=300, env=_clean_env(), check=False)
    if proc.returncode != 0:
        detail = "(output withheld: the statement holds a secret)" if secret else proc.stderr.strip()[-2000:]
        raise LabError("psql on %s's cluster (database %s) failed: %s" % (cluster.env.name, dbname, detail))
    return proc.stdout


def _rows(output: str) -> list[list[str]]:
    return [line.split("|") for line in output.splitlines() if line]


def can_login(cluster: Cluster, user: str, password: str, dbname: str = "postgres") -> bool:
    """True if `user` logs in over TCP with `password`; False if the server refuses the password."""
    env = _clean_env(
        PGHOST="127.0.0.1",
        PGPORT=str(cluster.tcp_port),
        PGUSER=user,
        PGDATABASE=dbname,
        PGPASSWORD=password,
        PGCONNECT_TIMEOUT="10",
    )
    proc = subprocess.run(
        [str(PSQL), "-X", "-q", "-A", "-t", "-w", "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    if proc.returncode == 0 and proc.stdout.strip() == "1":
        return True
    if "password authentication failed" in proc.stderr:
        return False
    raise LabError(
        "cannot log in to %s's PostgreSQL on 127.0.0.1:%d as %s" % (cluster.env.name, cluster.tcp_port, user)
    )


def accepting(cluster: Cluster) -> bool:
    """pg_isready over the cluster's socket."""
    proc = subprocess.run(
        [str(PG_BIN / "pg_isready"), "-q", "-h", str(cluster.socket_dir), "-p", str(cluster.socket_port)],
        capture_output=True,
        timeout=30,
        env=_clean_env(),
        check=False,
    )
    return proc.returncode == 0


def _wait_ready(cluster: Cluster) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not accepting(cluster):
        if time.monotonic() > deadline:
            raise LabError(
                "%s's PostgreSQL does not accept connections on %s; see %s"
                % (cluster.env.name, cluster.socket_dir, cluster.log if cluster is DEV_CLUSTER else "docker logs")
            )
        time.sleep(0.5)


# ---------------------------------------------------------------- converging a running cluster


def _ensure_roles(ctx: Ctx, cluster: Cluster) -> None:
    roles = ROLES[cluster]
    names = ", ".join(_sql_literal(role.name) for role in roles)
    current = {
        row[0]: tuple(row[1:])
        for row in _rows(
            psql(
                cluster,
                "SELECT rolname, rolcanlogin, rolcreatedb, rolsuper, rolcreaterole, rolreplication, rolbypassrls,"
                " rolconnlimit FROM pg_roles WHERE rolname IN (%s);" % names,
            )
        )
    }
    for role in roles:
        if current.get(role.name) == role.attributes():
            continue
        verb = "ALTER" if role.name in current else "CREATE"
        psql(cluster, "%s ROLE %s WITH %s;" % (verb, role.name, role.options()))
        ctx.changed(
            "%s role %s on %s's PostgreSQL" % ("altered" if verb == "ALTER" else "created", role.name, cluster.env.name)
        )


def _lab_digest() -> str:
    """The hash of every database of both clusters (each database's comment: one text everywhere)."""
    text = "".join(db.digest() for databases in DATABASES.values() for db in databases)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _ensure_databases(ctx: Ctx, cluster: Cluster) -> None:
    comments = {
        row[0]: row[1]
        for row in _rows(
            psql(cluster, "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database;")
        )
    }
    for db in DATABASES[cluster]:
        marker = LAB_COMMENT + _lab_digest()
        if comments.get(db.name) == marker:
            continue
        # New, or built from another version of the lab: rebuilt from scratch.
        psql(cluster, "DROP DATABASE IF EXISTS %s WITH (FORCE);" % db.name)
        psql(cluster, "CREATE DATABASE %s OWNER %s TEMPLATE template0 ENCODING 'UTF8';" % (db.name, db.owner))
        extensions = "".join(
            "CREATE EXTENSION %s%s;\n" % (name, " VERSION %s" % _sql_literal(version) if version else "")
            for name, version in db.extensions
        )
        psql(
            cluster,
            "BEGIN;\n%sSET ROLE %s;\n%s\nRESET ROLE;\nCOMMIT;\n" % (extensions, db.owner, db.ddl),
            dbname=db.name,
        )
        settings = "".join("ALTER DATABASE %s SET %s = %s;\n" % (db.name, k, _sql_literal(v)) for k, v in db.settings)
        psql(cluster, settings + "COMMENT ON DATABASE %s IS %s;\n" % (db.name, _sql_literal(marker)))
        ctx.changed(
            "%s database %s on %s's PostgreSQL"
            % ("rebuilt" if db.name in comments else "created", db.name, cluster.env.name)
        )


def _ensure_secrets(ctx: Ctx, cluster: Cluster, c: dict[str, str]) -> None:
    """Passwords (checked by logging in) and role settings (read back) as canaries.json says."""
    for role, password in _passwords(cluster, c):
        if not can_login(cluster, role, password):
            psql(cluster, "ALTER ROLE %s PASSWORD %s;" % (role, _sql_literal(password)), secret=True)
            ctx.changed("set the password of %s on %s's PostgreSQL" % (role, cluster.env.name))
    for role, name, value in _role_settings(cluster, c):
        rows = _rows(
            psql(
                cluster,
                "SELECT array_to_string(s.setconfig, '|') FROM pg_db_role_setting s"
                " JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = 0 AND r.rolname = %s;"
                % _sql_literal(role),
                secret=True,
            )
        )
        if rows and "%s=%s" % (name, value) in rows[0]:
            continue
        psql(cluster, "ALTER ROLE %s SET %s = %s;" % (role, name, _sql_literal(value)), secret=True)
        ctx.changed("set %s of role %s on %s's PostgreSQL" % (name, role, cluster.env.name))


def _ensure_hotfixes(ctx: Ctx, cluster: Cluster) -> None:
    """Each hand-made index, valid: created when absent; one a failed concurrent build left
    invalid is dropped and built again."""
    for fix in HOTFIXES[cluster]:
        owner = next(db.owner for db in DATABASES[cluster] if db.name == fix.dbname)
        rows = _rows(
            psql(
                cluster,
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = %s AND c.relnamespace = 'public'::regnamespace;" % _sql_literal(fix.index),
                dbname=fix.dbname,
            )
        )
        if rows == [["t"]]:
            continue
        drop = "DROP INDEX CONCURRENTLY IF EXISTS public.%s;\n" % fix.index if rows else ""
        # Statement by statement (psql autocommits each): CONCURRENTLY refuses a transaction block.
        psql(cluster, "SET ROLE %s;\n%s%s\n" % (owner, drop, fix.statement), dbname=fix.dbname)
        ctx.changed("created index %s by hand on %s's %s" % (fix.index, cluster.env.name, fix.dbname))


def _converge(ctx: Ctx, cluster: Cluster, c: dict[str, str]) -> None:
    _ensure_roles(ctx, cluster)
    _ensure_databases(ctx, cluster)
    _ensure_hotfixes(ctx, cluster)
    _ensure_secrets(ctx, cluster, c)


# ---------------------------------------------------------------- the data dirs (both, on this host)


def _initdb(ctx: Ctx, cluster: Cluster, superuser_password: str) -> None:
    if (cluster.data_dir / "PG_VERSION").is_file():
        return
    # A half-made data dir (an initdb that was interrupted) is made again.
    remove_tree(cluster.data_dir, allowed=tuple(c.data_dir for c in CLUSTERS))
    ensure_dir(ctx, cluster.data_dir, 0o700, OS_USER)  # initdb (as postgres) cannot create it in STATE_DIR
    uid, gid = pwd.getpwnam(OS_USER).pw_uid, pwd.getpwnam(OS_USER).pw_gid
    # The password in a file only postgres reads, never on a command line; gone right after.
    with tempfile.TemporaryDirectory(prefix="envparity-initdb-") as tmp:
        os.chown(tmp, uid, gid)
        pwfile = Path(tmp) / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(superuser_password + "\n")
        os.chown(pwfile, uid, gid)
        cmd = ["runuser", "-u", OS_USER, "--", str(PG_BIN / "initdb"), "-D", str(cluster.data_dir), "-U", SUPERUSER]
        cmd += ["--auth-local=peer", "--auth-host=scram-sha-256", "--pwfile=%s" % pwfile]
        cmd += ["--encoding=UTF8", "--locale=C", "--no-instructions"]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, env=_clean_env(TZ="UTC"), check=False, cwd=tmp
        )
    if proc.returncode != 0:
        raise LabError("initdb of %s failed: %s" % (cluster.data_dir, proc.stderr.strip()[-2000:]))
    ctx.changed("initdb %s" % cluster.data_dir)


def _write_config(ctx: Ctx, cluster: Cluster) -> None:
    running = dev_pid() if cluster is DEV_CLUSTER else container_pid()
    changed = write_file(ctx, cluster.data_dir / "postgresql.conf", _conf(cluster), 0o600, OS_USER)
    changed |= write_file(ctx, cluster.data_dir / "pg_hba.conf", _hba(cluster), 0o600, OS_USER)
    if changed and running:
        ctx.flags.add("postgres_restart_%s" % cluster.env.name)  # read only when the server starts


# ---------------------------------------------------------------- dev's server


def dev_pid() -> int | None:
    """The dev postmaster, if it runs (its postmaster.pid names a live postgres on our data dir)."""
    pid = read_pidfile(DEV_CLUSTER.data_dir / "postmaster.pid")
    if pid and pid_alive(pid) and str(DEV_CLUSTER.data_dir) in process_cmdline(pid):
        return pid
    return None


def _pg_ctl(*args: str) -> None:
    cmd = ["runuser", "-u", OS_USER, "--", str(PG_BIN / "pg_ctl"), "-D", str(DEV_CLUSTER.data_dir), *args]
    # Its own session: the postmaster outlives labctl and the terminal it ran in.
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=180,
        env=_clean_env(TZ="UTC"),
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    if proc.returncode != 0:
        raise LabError("pg_ctl %s failed: %s" % (args[-1], (proc.stderr or proc.stdout).strip()[-2000:]))


def _start_dev(ctx: Ctx) -> None:
    cluster = DEV_CLUSTER
    pid = dev_pid()
    if pid and "postgres_restart_dev" in ctx.flags:
        _pg_ctl("-m", "fast", "-w", "-t", "60", "-l", str(cluster.log), "restart")
        ctx.changed("restarted dev's PostgreSQL (new configuration), pid %s" % dev_pid())
    elif not pid:
        _pg_ctl("-w", "-t", "60", "-l", str(cluster.log), "start")
        ctx.changed("started dev's PostgreSQL (pid %s) on 127.0.0.1:%d" % (dev_pid(), cluster.tcp_port))


def _stop_dev(ctx: Ctx) -> None:
    pid = dev_pid()
    if not pid:
        return
    with contextlib.suppress(LabError):
        _pg_ctl("-m", "fast", "-w", "-t", "60", "stop")
    if pid_alive(pid):
        terminate(pid, timeout=30)
    ctx.changed("stopped dev's PostgreSQL (pid %d)" % pid)


# ---------------------------------------------------------------- prod's container


def _container() -> dict | None:
    if not docker_area.running_pid():
        return None
    return docker_area._get("/containers/%s/json" % CONTAINER)


def container_pid() -> int | None:
    """The pid (on this host) of the postmaster in the db container, if it runs."""
    state = ((_container() or {}).get("State")) or {}
    return (state.get("Pid") or None) if state.get("Running") else None


def _start_prod(ctx: Ctx) -> None:
    """docker_area started the container (its healthcheck passed); restart it on a new config."""
    if not container_pid():
        raise LabError("the db container %s does not run (docker area)" % CONTAINER)
    if "postgres_restart_prod" in ctx.flags:
        docker_area._call("POST", "/containers/%s/restart?t=30" % CONTAINER, timeout=120)
        ctx.changed("restarted container %s (new PostgreSQL configuration)" % CONTAINER)


def _stop_prod(ctx: Ctx) -> None:
    pid = container_pid()
    if not pid:
        return
    # SIGINT (the container's stop signal): a fast shutdown, before the engine itself stops.
    docker_area._call("POST", "/containers/%s/stop?t=30" % CONTAINER, timeout=120)
    ctx.changed("stopped container %s (postgres pid %d)" % (CONTAINER, pid))


# ---------------------------------------------------------------- the image, from this host's binaries

DB_IMAGE_CHANGES = [
    "USER %s" % OS_USER,
    "ENV PATH=%s:/usr/bin:/bin" % PG_BIN,
    "ENV PGDATA=/var/lib/postgresql/data",
    'CMD ["postgres", "-D", "/var/lib/postgresql/data"]',
]
# Not needed to serve SQL: the JIT (it pulls in libLLVM, some 100 MB; PostgreSQL runs without
# it) and the build files.
SKIPPED_LIBS = {"llvmjit.so", "llvmjit_types.bc", "bitcode", "pgxs"}
BUSYBOX_APPLETS = ("sh", "ls", "cat", "id", "ps")


class _RootFs:
    """A root filesystem being written into a tar archive; host paths keep their place, and the
    symlinks met on the way (Debian's merged /usr: /lib -> usr/lib …) are recreated."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.GNU_FORMAT)  # noqa: SIM115 (close())
        self.seen: set[str] = set()

    def _add(self, name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "", owner=(0, 0)) -> None:
        if name in self.seen:
            return
        self.seen.add(name)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, 0, len(data), link
        info.uid, info.gid = owner
        self.tar.addfile(info, io.BytesIO(data) if data else None)

    def directory(self, name: str, mode: int = 0o755, owner=(0, 0)) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            self._add("/".join(parts[:i]), tarfile.DIRTYPE, 0o755)
        self._add("/".join(parts), tarfile.DIRTYPE, mode, owner=owner)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.directory(parent)
        self._add(name.strip("/"), tarfile.REGTYPE, mode, data)

    def symlink(self, name: str, target: str) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.directory(parent)
        self._add(name.strip("/"), tarfile.SYMTYPE, 0o777, link=target)

    def host_path(self, path: str) -> None:
        """A host file, directory (recursively) or symlink, at the same path; a symlinked
        directory on the way is recreated and followed."""
        parts = Path(path).parts[1:]
        current = Path("/")
        for i, part in enumerate(parts):
            current = current / part
            if current.is_symlink():
                target = os.readlink(current)
                self.symlink(str(current), target)
                resolved = Path(os.path.normpath(current.parent / target))
                rest = parts[i + 1 :]
                self.host_path(str(resolved.joinpath(*rest)) if rest else str(resolved))
                return
        if current.is_dir():
            self._tree(current)
        else:
            self.file(str(current), current.read_bytes(), current.stat().st_mode & 0o7777)

    def _tree(self, top: Path, skip: frozenset = frozenset()) -> None:
        self.directory(str(top), top.stat().st_mode & 0o7777)
        for entry in sorted(os.scandir(top), key=lambda e: e.name):
            if entry.name in skip:
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                self.symlink(str(path), os.readlink(path))
            elif entry.is_dir():
                self._tree(path)
            else:
                self.file(str(path), path.read_bytes(), path.stat().st_mode & 0o7777)

    def close(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def _shared_libraries(binaries: list[Path]) -> list[str]:
    """Every shared library the binaries need (ldd), the dynamic loader included."""
    proc = run(["ldd", *map(str, binaries)], check=False)
    libs = set()
    for raw in proc.stdout.splitlines():
        if not raw.startswith("\t"):
            continue  # "file:" headers
        line = raw.strip()
        if "not found" in line:
            raise LabError("ldd: a library PostgreSQL needs is missing: %s" % line)
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target:
                libs.add(target)
        elif line.startswith("/"):
            libs.add(line.split("(")[0].strip())
    return sorted(libs)


def db_rootfs_tar() -> bytes:
    """lab/postgres:15: the host's PostgreSQL 15 and what it needs, busybox for sh, and a
    postgres user with the host's uid and gid (the data dir is initialised on the host)."""
    pw = pwd.getpwnam(OS_USER)
    uid, gid = pw.pw_uid, pw.pw_gid
    binaries = sorted(p for p in (PG_BIN).iterdir() if p.is_file() and not p.is_symlink())
    modules = sorted(p for p in (PG_LIB / "lib").glob("*.so") if p.name not in SKIPPED_LIBS)
    root = _RootFs()
    for directory in ("dev", "proc", "sys", "etc", "root"):
        root.directory(directory, 0o700 if directory == "root" else 0o755)
    root.directory("tmp", 0o1777)
    root.directory("var/lib/postgresql", 0o755, owner=(uid, gid))
    root.directory("var/lib/postgresql/data", 0o700, owner=(uid, gid))  # mount point
    root.directory("var/run/postgresql", 0o2775, owner=(uid, gid))  # mount point
    root.file(
        "etc/passwd",
        (
            "root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d:PostgreSQL administrator:/var/lib/postgresql:/bin/sh\n"
            % (OS_USER, uid, gid)
        ).encode(),
    )
    root.file("etc/group", ("root:x:0:\n%s:x:%d:\n" % (OS_USER, gid)).encode())
    root.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    root._tree(PG_BIN)
    root._tree(PG_LIB / "lib", skip=SKIPPED_LIBS)
    for path in (PG_SHARE, ZONEINFO, *_shared_libraries(binaries + modules)):
        root.host_path(str(path))
    busybox = os.path.realpath("/bin/busybox")
    root.host_path("/bin/busybox")
    for applet in BUSYBOX_APPLETS:
        root.symlink(os.path.join(os.path.dirname(busybox), applet), "busybox")
    root.symlink("usr/bin/psql", str(PSQL))
    return root.close()


def docker_images() -> list[tuple]:
    """Images this area contributes to the lab's engine (docker_area imports them when missing):
    (ref, Dockerfile-style changes, a function returning the root filesystem as a tar)."""
    return [(docker_area.DB_IMAGE, list(DB_IMAGE_CHANGES), db_rootfs_tar)]


# ---------------------------------------------------------------- area interface


def build(ctx: Ctx) -> None:
    # Debian's own cluster (main, port 5432) comes with the package; the lab neither uses nor
    # needs it.
    install_packages(ctx, uninstalled(PACKAGES))
    c = _canaries(ctx)
    ctx.save_canaries(CANARY_PREFIX)  # recorded before any file or database holds them
    ensure_dir(ctx, PG_DIR, 0o700)
    write_file(ctx, PASSWORD_FILES[DEV.name], c["postgres.dev.password"], 0o600)
    write_file(ctx, PASSWORD_FILES[PROD.name], c["postgres.prod.password"], 0o600)
    ensure_dir(ctx, docker_area.RUN_DIR, 0o755)
    for cluster in CLUSTERS:
        # /run is emptied at boot: the socket dirs are made again (postgres refuses a missing one).
        ensure_dir(ctx, cluster.socket_dir, 0o755, OS_USER)
        _initdb(ctx, cluster, c["postgres.%s.superuser_password" % cluster.env.name])
        _write_config(ctx, cluster)
    if ctx.replant:
        # The running clusters get the fresh secrets now (no restart); a stopped one on `up`.
        for cluster in CLUSTERS:
            if accepting(cluster):
                _ensure_secrets(ctx, cluster, c)


def start(ctx: Ctx) -> None:
    c = _canaries(ctx)
    _start_dev(ctx)
    _start_prod(ctx)
    for cluster in CLUSTERS:
        _wait_ready(cluster)
        _converge(ctx, cluster, c)


def stop(ctx: Ctx) -> None:
    _stop_dev(ctx)
    _stop_prod(ctx)


def purge(ctx: Ctx) -> None:
    """The data dirs and password files go with the state dir; here: the socket dirs in /run."""
    for cluster in CLUSTERS:
        if remove_tree(cluster.socket_dir, allowed=tuple(c.socket_dir for c in CLUSTERS)):
            ctx.changed("deleted %s" % cluster.socket_dir)


def _answers_postgres(port: int) -> bool:
    """Something on 127.0.0.1:port answers an SSLRequest as PostgreSQL does ('S' or 'N'); a
    published port whose container is down only accepts and closes."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(struct.pack("!ii", 8, 80877103))
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


def status() -> list[tuple[str, bool, str]]:
    checks = []
    pid = dev_pid() if os.geteuid() == 0 else None
    ok = _answers_postgres(DEV_CLUSTER.tcp_port)
    detail = "127.0.0.1:%d%s" % (DEV_CLUSTER.tcp_port, ", pid %d" % pid if pid else "")
    checks.append(("postgres dev", ok, detail if ok else "not running (%s)" % detail))
    ok = _answers_postgres(PROD_CLUSTER.tcp_port)
    checks.append(
        (
            "postgres prod",
            ok,
            "%s on 127.0.0.1:%d%s" % (CONTAINER, PROD_CLUSTER.tcp_port, "" if ok else ": not answering"),
        )
    )
    try:
        missing = [str(path) for path in PASSWORD_FILES.values() if not path.is_file()]
        checks.append(("postgres secrets", not missing, "missing: %s" % ", ".join(missing) if missing else str(PG_DIR)))
    except PermissionError:  # status as another user than root: PG_DIR is root's alone
        checks.append(("postgres secrets", False, "not checked (%s is readable by root only)" % PG_DIR))
    return checks
