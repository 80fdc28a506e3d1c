"""The postgres area's diff rules on hand-built catalogs (the shape of docs/postgres-facts.md)."""

import copy
import hashlib
import json
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import pg_tables
from ansible_collections.envparity.audit.plugins.module_utils.redact import length_class
from ansible_collections.envparity.audit.plugins.plugin_utils import pg_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import KINDS, SEVERITIES, unknown_cell

CANARY = "CANARY-pg-7f3e9a1c55d04b2e"


# --- builders: the contract's shapes ------------------------------------------------------------


def record(value, secret=False, fp=None):
    """A describe_value record; a secret one carries no display (its fp may carry a canary)."""
    return {
        "secret": secret,
        "display": None if secret else value,
        "fp": fp or "hmac-sha256:" + hashlib.sha256(value.encode()).hexdigest()[:24],
        "secret_fp": (fp or "hmac-sha256:s" + value) if secret else None,
        "length_class": length_class(len(value)),
        "empty": not value,
    }


def column(position, type_="integer", nullable=True, default=None, identity=None, generated=None, collation=None):
    return {
        "position": position,
        "type": type_,
        "nullable": nullable,
        "default": default,
        "identity": identity,
        "generated": generated,
        "collation": collation,
    }


def table(columns, constraints=None, indexes=None, triggers=None, **overrides):
    base = {
        "kind": "table",
        "owner": "app",
        "rls": False,
        "rls_forced": False,
        "partition_key": None,
        "partition_of": None,
        "row_estimate": 1000,
        "size_estimate_bytes": 65536,
        "columns": columns,
        "constraints": constraints or {},
        "indexes": indexes or {},
        "triggers": triggers or {},
    }
    base.update(overrides)
    return base


def body(text):
    return {"definition": text, "hash": hashlib.sha256(text.encode()).hexdigest()}


def view(text, materialized=False):
    return dict(body(text), materialized=materialized)


def function(text, language="plpgsql", returns="trigger", **overrides):
    base = {
        "kind": "function",
        "language": language,
        "returns": returns,
        "volatility": "volatile",
        "security_definer": False,
        "body": text,
        "hash": hashlib.sha256(text.encode()).hexdigest(),
    }
    base.update(overrides)
    return base


def role(**attributes):
    base = {
        "superuser": False,
        "createdb": False,
        "createrole": False,
        "login": True,
        "replication": False,
        "bypassrls": False,
        "connection_limit": -1,
        "member_of": [],
        "config": {},
    }
    base.update(attributes)
    return base


def setting(value, unit=None, secret=False, fp=None):
    return {"value": record(value, secret=secret, fp=fp), "unit": unit, "source": "configuration file"}


def migrations(tool, applied, heads=None, table=None, dirty=None):
    tables = {
        "alembic": "public.alembic_version",
        "django": "public.django_migrations",
        "rails": "public.schema_migrations",
        "golang-migrate": "public.schema_migrations",
        "flyway": "public.flyway_schema_history",
        "knex": "public.knex_migrations",
        "prisma": "public._prisma_migrations",
        "sequelize": 'public."SequelizeMeta"',
    }
    return {
        "table": table or tables[tool],
        "applied": list(applied),
        "heads": list(heads if heads is not None else applied[-1:]),
        "count": len(applied),
        "dirty": dirty,
    }


VIEW_TEXT = " SELECT users.id,\n    users.email\n   FROM users\n  WHERE users.active;"
TOUCH_TEXT = "\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n"


def catalog():
    users = table(
        {
            "id": column(1, "integer", False, identity="by default"),
            "email": column(2, "character varying(120)", False),
            "name": column(3, "text", collation="C"),
            "active": column(4, "boolean", False, "true"),
            "updated_at": column(5, "timestamp with time zone", True, "now()"),
        },
        constraints={
            "users_pkey": {"type": "primary key", "definition": "PRIMARY KEY (id)"},
            "users_email_key": {"type": "unique", "definition": "UNIQUE (email)"},
        },
        indexes={
            "users_pkey": {
                "definition": "CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)",
                "unique": True,
                "primary": True,
            },
            "users_email_key": {
                "definition": "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)",
                "unique": True,
                "primary": False,
            },
            "users_name_idx": {
                "definition": "CREATE INDEX users_name_idx ON public.users USING btree (name)",
                "unique": False,
                "primary": False,
            },
        },
        triggers={
            "users_touch": {
                "definition": "CREATE TRIGGER users_touch BEFORE UPDATE ON public.users FOR EACH ROW "
                "EXECUTE FUNCTION public.touch()",
                "enabled": "origin",
            }
        },
    )
    orders = table(
        {
            "id": column(1, "bigint", False, "nextval('orders_id_seq'::regclass)"),
            "user_id": column(2, "integer", False),
            "total": column(3, "numeric(10,2)", False, "0"),
            "status": column(4, "public.order_status", False, "'new'::public.order_status"),
        },
        constraints={
            "orders_pkey": {"type": "primary key", "definition": "PRIMARY KEY (id)"},
            "orders_user_id_fkey": {
                "type": "foreign key",
                "definition": "FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE",
            },
            "orders_total_check": {"type": "check", "definition": "CHECK ((total >= (0)::numeric))"},
        },
        indexes={
            "orders_pkey": {
                "definition": "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)",
                "unique": True,
                "primary": True,
            }
        },
    )
    return {
        "schemas": {"public": {"owner": "pg_database_owner"}, "billing": {"owner": "app"}},
        "tables": {"public.users": users, "public.orders": orders},
        "views": {"public.v_active_users": view(VIEW_TEXT)},
        "functions": {
            "public.touch()": function(TOUCH_TEXT),
            "public.add(integer, integer)": function(
                "SELECT $1 + $2", language="sql", returns="integer", volatility="immutable"
            ),
        },
        "sequences": {
            "public.orders_id_seq": {
                "type": "bigint",
                "increment": "1",
                "min": "1",
                "max": "9223372036854775807",
                "cycle": False,
            }
        },
        "enums": {"public.order_status": {"labels": ["new", "paid", "shipped"]}},
        "domains": {
            "public.email_address": {
                "base_type": "text",
                "nullable": True,
                "default": None,
                "constraints": ["CHECK ((VALUE ~ '@'::text))", "CHECK ((length(VALUE) < 255))"],
            }
        },
        "extensions": {
            "pg_trgm": {"version": "1.6", "schema": "public"},
            "citext": {"version": "1.6", "schema": "public"},
        },
        "settings": {
            "work_mem": setting("4096", "kB"),
            "max_connections": setting("100"),
            "shared_buffers": setting("16384", "8kB"),
        },
        "roles": {
            "app": role(config={"search_path": record("public")}),
            "app_reader": role(member_of=["pg_read_all_data", "pg_monitor"]),
        },
    }


def database(cat=None, status="ok", reason=None, tools=None, audit_role=None):
    return {
        "status": status,
        "reason": reason,
        "server_version": "15.18" if status == "ok" else None,
        "server_version_num": 150018 if status == "ok" else None,
        "audit_role": audit_role or {"name": "app", "superuser": False, "can_write": False, "write_privileges": []},
        "catalog": (cat if cat is not None else catalog()) if status == "ok" else None,
        "migrations": tools if tools is not None else {"alembic": migrations("alembic", ["3f2a9c1b4d5e"])},
    }


def facts(**databases):
    return {"databases": databases or {"app": database()}}


def _rows(records, fields):
    return [[name, *(record[field] for field in fields)] for name, record in records.items()]


def wire_table(table):
    """A table of the contract's TABLE shape as the collector sends it (pg_tables)."""
    columns = sorted(table["columns"].items(), key=lambda item: item[1]["position"])
    return {
        "owner": table["owner"],
        "row_estimate": table["row_estimate"],
        "size_estimate_bytes": table["size_estimate_bytes"],
        "shape": pg_tables.encode_shape(
            [table[field] for field in pg_tables.TABLE_FIELDS],
            _rows(dict(columns), pg_tables.COLUMN_FIELDS),
            _rows(table["constraints"], pg_tables.CONSTRAINT_FIELDS),
            _rows(table["indexes"], pg_tables.INDEX_FIELDS),
            _rows(table["triggers"], pg_tables.TRIGGER_FIELDS),
        ),
    }


def on_the_wire(cells):
    """The cells with every table in its wire form (in place; tables already encoded are kept)."""
    for cell in cells.values():
        for db in ((cell or {}).get("databases") or {}).values():
            catalog = db.get("catalog")
            if isinstance(catalog, dict):
                catalog["tables"] = {
                    name: table if "shape" in table else wire_table(table)
                    for name, table in (catalog.get("tables") or {}).items()
                }
    return cells


PROD = {"prod"}


def run(dev, prod, production=PROD):
    cells = on_the_wire({"dev": dev, "prod": prod})
    return pg_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": production})


def run_n(cells):
    labels = list(cells)
    return pg_diff.diff(labels, on_the_wire(cells), {"baseline": labels[0], "production": {"prod/web1", "prod/web2"}})


def checks(findings):
    return sorted((f["key"], f["kind"], f["check"]) for f in findings)


def pair(mutate_dev=None, mutate_prod=None):
    """Two identical databases, each optionally changed in place by a function of its DB record."""
    dev, prod = database(), database()
    if mutate_dev:
        mutate_dev(dev)
    if mutate_prod:
        mutate_prod(prod)
    return run(facts(app=dev), facts(app=prod))


def delete(*path):
    def mutate(db):
        node = db["catalog"]
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def assign(value, *path):
    def mutate(db):
        node = db["catalog"]
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = copy.deepcopy(value)

    return mutate


def well_formed(finding):
    assert finding["kind"] in KINDS and finding["severity"] in SEVERITIES
    assert finding["area"] == "postgres" and finding["subject"] == "app"
    assert finding["message"].endswith(".") and finding["recommendation"]
    for cell in finding["values"].values():
        assert cell is None or isinstance(cell, str) or set(cell) == {"unknown"}
    assert set(finding) - {"detail"} == {
        "area",
        "subject",
        "key",
        "kind",
        "check",
        "severity",
        "expected",
        "reason",
        "values",
        "environments",
        "message",
        "recommendation",
    }


# --- identical, subjects -----------------------------------------------------------------------


def test_identical_databases_give_nothing():
    assert pair() == []


def test_subjects_are_the_logical_database_names():
    request = {"databases": [{"name": "app", "dbname": "ai_assistant"}, {"name": "analytics", "dbname": "a"}]}
    assert pg_diff.subjects(request) == ["analytics", "app"]
    assert pg_diff.subjects(None) == []


@pytest.mark.parametrize(
    "mutate",
    [
        assign(999999, "tables", "public.users", "row_estimate"),
        assign(1, "tables", "public.users", "size_estimate_bytes"),
        assign("someone_else", "tables", "public.users", "owner"),
        assign({"owner": "root"}, "schemas", "billing"),
        assign(9, "tables", "public.users", "columns", "email", "position"),
        assign(["pg_monitor", "pg_read_all_data"], "roles", "app_reader", "member_of"),
        assign(
            ["CHECK ((length(VALUE) < 255))", "CHECK ((VALUE ~ '@'::text))"],
            "domains",
            "public.email_address",
            "constraints",
        ),
        assign(setting("psql"), "settings", "application_name"),
        assign(setting("/var/lib/postgresql/data"), "settings", "data_directory"),
    ],
    ids=[
        "row-estimate",
        "size",
        "owner",
        "schema-owner",
        "column-position",
        "membership-order",
        "domain-constraint-order",
        "session-setting",
        "host-setting",
    ],
)
def test_volatile_or_meaningless_differences_are_never_drift(mutate):
    assert pair(mutate_prod=mutate) == []


# --- presence both ways ------------------------------------------------------------------------


PRESENCE = [
    (("tables", "public.orders"), "public.orders", "postgres.table", "high", "medium"),
    (("tables", "public.users", "columns", "name"), "public.users.name", "postgres.column", "high", "low"),
    (
        ("tables", "public.orders", "constraints", "orders_user_id_fkey"),
        "public.orders.orders_user_id_fkey",
        "postgres.constraint",
        "high",
        "medium",
    ),
    (
        ("tables", "public.orders", "constraints", "orders_total_check"),
        "public.orders.orders_total_check",
        "postgres.constraint",
        "high",
        "medium",
    ),
    (
        ("tables", "public.users", "indexes", "users_name_idx"),
        "public.users.users_name_idx",
        "postgres.index",
        "medium",
        "low",
    ),
    (
        ("tables", "public.users", "triggers", "users_touch"),
        "public.users.users_touch",
        "postgres.trigger",
        "high",
        "medium",
    ),
    (("views", "public.v_active_users"), "public.v_active_users", "postgres.view", "high", "low"),
    (("functions", "public.touch()"), "public.touch()", "postgres.function", "high", "low"),
    (("sequences", "public.orders_id_seq"), "public.orders_id_seq", "postgres.sequence", "medium", "low"),
    (("enums", "public.order_status"), "public.order_status", "postgres.enum", "high", "low"),
    (("domains", "public.email_address"), "public.email_address", "postgres.domain", "high", "low"),
    (("extensions", "pg_trgm"), "extensions.pg_trgm", "postgres.extension", "high", "low"),
    (("roles", "app_reader"), "roles.app_reader", "postgres.role", "medium", "low"),
    (("schemas", "billing"), "schemas.billing", "postgres.schema", "high", "low"),
]


@pytest.mark.parametrize(("path", "key", "check", "missing_severity", "extra_severity"), PRESENCE)
def test_object_only_in_dev_is_missing_in_prod(path, key, check, missing_severity, extra_severity):
    found = pair(mutate_prod=delete(*path))
    assert checks(found) == [(key, "missing", check + "_missing")]
    finding = found[0]
    well_formed(finding)
    assert finding["severity"] == missing_severity
    assert finding["environments"] == ["prod"]
    assert finding["values"]["prod"] is None and finding["values"]["dev"]
    assert finding["recommendation"].startswith(("prod lacks", "Install", "Create"))


@pytest.mark.parametrize(("path", "key", "check", "missing_severity", "extra_severity"), PRESENCE)
def test_object_only_in_prod_is_extra(path, key, check, missing_severity, extra_severity):
    found = pair(mutate_dev=delete(*path))
    assert checks(found) == [(key, "extra", check + "_extra")]
    well_formed(found[0])
    assert found[0]["severity"] == extra_severity
    assert found[0]["environments"] == ["prod"]
    assert found[0]["values"]["dev"] is None


def test_missing_column_recommendation_names_the_migration_tool():
    found = pair(mutate_prod=delete("tables", "public.users", "columns", "email"))
    assert found[0]["message"] == "prod lacks column public.users.email, which dev has."
    assert found[0]["recommendation"] == (
        "prod lacks column public.users.email: apply the migration that adds it (alembic upgrade head) "
        "before deploying the code that uses it."
    )
    assert found[0]["values"] == {"dev": "character varying(120) not null", "prod": None}


def test_missing_table_does_not_list_its_columns_indexes_or_constraints():
    found = pair(mutate_prod=delete("tables", "public.users"))
    assert checks(found) == [("public.users", "missing", "postgres.table_missing")]
    assert found[0]["values"]["dev"] == "table, 5 columns"


def test_unique_index_missing_is_high_and_a_constraint_is_reported_once_with_its_index():
    def drop_unique(db):
        del db["catalog"]["tables"]["public.users"]["constraints"]["users_email_key"]
        del db["catalog"]["tables"]["public.users"]["indexes"]["users_email_key"]

    assert checks(pair(mutate_prod=drop_unique)) == [
        ("public.users.users_email_key", "missing", "postgres.constraint_missing")
    ]
    lone = pair(mutate_prod=delete("tables", "public.users", "constraints", "users_email_key"))
    assert checks(lone) == [("public.users.users_email_key", "missing", "postgres.constraint_missing")]

    def widen_unique(db):
        db["catalog"]["tables"]["public.users"]["constraints"]["users_email_key"]["definition"] = "UNIQUE (email, name)"
        db["catalog"]["tables"]["public.users"]["indexes"]["users_email_key"]["definition"] = (
            "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email, name)"
        )

    changed = pair(mutate_prod=widen_unique)
    assert checks(changed) == [("public.users.users_email_key", "changed", "postgres.constraint_changed")]
    assert changed[0]["values"] == {"dev": "UNIQUE (email)", "prod": "UNIQUE (email, name)"}
    index_only = pair(mutate_prod=delete("tables", "public.users", "indexes", "users_email_key"))
    assert checks(index_only) == [("public.users.users_email_key", "missing", "postgres.index_missing")]
    assert index_only[0]["severity"] == "high"


# --- columns ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "attributes", "severity", "prod_text"),
    [
        ({"type": "text"}, "type", "high", "text not null"),
        ({"nullable": True}, "nullability", "high", "character varying(120)"),
        (
            {"default": "''::character varying"},
            "default",
            "medium",
            "character varying(120) not null default ''::character varying",
        ),
        ({"identity": "always"}, "identity", "medium", None),
        ({"generated": "lower((name)::text)"}, "generated expression", "medium", None),
        ({"collation": "en_US"}, "collation", "medium", 'character varying(120) collate "en_US" not null'),
        ({"type": "text", "nullable": True}, "type and nullability", "high", "text"),
        (
            {"default": "'x'::character varying", "collation": "C"},
            "default and collation",
            "medium",
            "character varying(120) collate \"C\" not null default 'x'::character varying",
        ),
        (
            {"type": "character varying(255)", "nullable": True, "default": "'a'::text", "collation": "C"},
            "type, nullability, default and collation",
            "high",
            None,
        ),
    ],
)
def test_column_changed_is_one_finding_listing_the_attributes(changes, attributes, severity, prod_text):
    def mutate(db):
        db["catalog"]["tables"]["public.users"]["columns"]["email"].update(changes)

    found = pair(mutate_prod=mutate)
    assert checks(found) == [("public.users.email", "changed", "postgres.column_changed")]
    finding = found[0]
    well_formed(finding)
    assert finding["severity"] == severity
    assert finding["message"].startswith("Column public.users.email differs in %s: " % attributes)
    assert finding["values"]["dev"] == "character varying(120) not null"
    if prod_text:
        assert finding["values"]["prod"] == prod_text
    assert finding["recommendation"].startswith("Align column public.users.email on prod with dev")


def test_column_text_reads_like_a_declaration():
    assert pg_diff.column_text(column(1, "integer", False, "0")) == "integer not null default 0"
    assert (
        pg_diff.column_text(column(1, "bigint", False, identity="always"))
        == "bigint not null generated always as identity"
    )
    assert (
        pg_diff.column_text(column(1, "text", generated="lower(name)"))
        == "text generated always as (lower(name)) stored"
    )


# --- other objects changed ---------------------------------------------------------------------------


CHANGED = [
    (
        "index-definition",
        assign(
            {
                "definition": "CREATE INDEX users_name_idx ON public.users USING btree (lower(name))",
                "unique": False,
                "primary": False,
            },
            "tables",
            "public.users",
            "indexes",
            "users_name_idx",
        ),
        ("public.users.users_name_idx", "changed", "postgres.index_changed"),
        "medium",
    ),
    (
        "index-unique",
        assign(
            {
                "definition": "CREATE UNIQUE INDEX users_name_idx ON public.users USING btree (name)",
                "unique": True,
                "primary": False,
            },
            "tables",
            "public.users",
            "indexes",
            "users_name_idx",
        ),
        ("public.users.users_name_idx", "changed", "postgres.index_changed"),
        "high",
    ),
    (
        "foreign-key",
        assign(
            {"type": "foreign key", "definition": "FOREIGN KEY (user_id) REFERENCES public.users(id)"},
            "tables",
            "public.orders",
            "constraints",
            "orders_user_id_fkey",
        ),
        ("public.orders.orders_user_id_fkey", "changed", "postgres.constraint_changed"),
        "high",
    ),
    (
        "check",
        assign(
            {"type": "check", "definition": "CHECK ((total > (0)::numeric))"},
            "tables",
            "public.orders",
            "constraints",
            "orders_total_check",
        ),
        ("public.orders.orders_total_check", "changed", "postgres.constraint_changed"),
        "high",
    ),
    (
        "trigger-disabled",
        assign("disabled", "tables", "public.users", "triggers", "users_touch", "enabled"),
        ("public.users.users_touch", "changed", "postgres.trigger_changed"),
        "high",
    ),
    (
        "rls",
        assign(True, "tables", "public.users", "rls"),
        ("public.users", "changed", "postgres.rls_changed"),
        "high",
    ),
    (
        "partitioning",
        assign("partitioned", "tables", "public.orders", "kind"),
        ("public.orders", "changed", "postgres.partitioning_changed"),
        "high",
    ),
    (
        "function-volatility",
        assign("stable", "functions", "public.add(integer, integer)", "volatility"),
        ("public.add(integer, integer)", "changed", "postgres.function_changed"),
        "medium",
    ),
    (
        "function-security-definer",
        assign(True, "functions", "public.touch()", "security_definer"),
        ("public.touch()", "changed", "postgres.function_changed"),
        "high",
    ),
    (
        "materialized",
        assign(True, "views", "public.v_active_users", "materialized"),
        ("public.v_active_users", "changed", "postgres.view_changed"),
        "medium",
    ),
    (
        "sequence",
        assign("integer", "sequences", "public.orders_id_seq", "type"),
        ("public.orders_id_seq", "changed", "postgres.sequence_changed"),
        "medium",
    ),
    (
        "domain",
        assign(["CHECK ((VALUE ~ '@'::text))"], "domains", "public.email_address", "constraints"),
        ("public.email_address", "changed", "postgres.domain_changed"),
        "high",
    ),
    (
        "domain-default",
        assign("'a@b'::text", "domains", "public.email_address", "default"),
        ("public.email_address", "changed", "postgres.domain_changed"),
        "medium",
    ),
    (
        "extension-version",
        assign("1.5", "extensions", "pg_trgm", "version"),
        ("extensions.pg_trgm", "changed", "postgres.extension_version"),
        "medium",
    ),
    (
        "role-superuser",
        assign(True, "roles", "app_reader", "superuser"),
        ("roles.app_reader", "changed", "postgres.role_changed"),
        "high",
    ),
    (
        "role-membership",
        assign(["pg_read_all_data"], "roles", "app_reader", "member_of"),
        ("roles.app_reader", "changed", "postgres.role_changed"),
        "medium",
    ),
    (
        "role-config",
        assign({"search_path": record("app, public")}, "roles", "app", "config"),
        ("roles.app.config.search_path", "changed", "postgres.role_changed"),
        "low",
    ),
    (
        "role-config-extra",
        assign({"search_path": record("public"), "work_mem": record("64MB")}, "roles", "app", "config"),
        ("roles.app.config.work_mem", "extra", "postgres.role_changed"),
        "low",
    ),
    (
        "setting",
        assign(setting("65536", "kB"), "settings", "work_mem"),
        ("settings.work_mem", "changed", "postgres.setting_changed"),
        "low",
    ),
    (
        "setting-behaviour",
        assign(setting("200"), "settings", "max_connections"),
        ("settings.max_connections", "changed", "postgres.setting_changed"),
        "medium",
    ),
    (
        "setting-only-in-prod",
        assign(setting("30000", "ms"), "settings", "statement_timeout"),
        ("settings.statement_timeout", "changed", "postgres.setting_changed"),
        "medium",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected", "severity"), [case[1:] for case in CHANGED], ids=[c[0] for c in CHANGED]
)
def test_changed_objects(mutate, expected, severity):
    found = pair(mutate_prod=mutate)
    assert checks(found) == [expected]
    well_formed(found[0])
    assert found[0]["severity"] == severity
    assert found[0]["environments"] == ["prod"]
    assert "detail" not in found[0]


def test_changed_values_are_shown_per_column():
    found = pair(mutate_prod=assign(setting("32768", "8kB"), "settings", "shared_buffers"))
    assert found[0]["values"] == {"dev": "16384×8kB", "prod": "32768×8kB"}
    found = pair(mutate_prod=assign(setting("30000", "ms"), "settings", "statement_timeout"))
    assert found[0]["values"] == {"dev": "default", "prod": "30000ms"}
    found = pair(mutate_prod=assign("disabled", "tables", "public.users", "triggers", "users_touch", "enabled"))
    assert found[0]["values"]["prod"].endswith("[disabled]")
    found = pair(mutate_prod=assign("1.5", "extensions", "pg_trgm", "version"))
    assert found[0]["values"] == {"dev": "1.6 (schema public)", "prod": "1.5 (schema public)"}
    assert found[0]["recommendation"].startswith("Update extension pg_trgm on prod")


# --- view and function bodies ------------------------------------------------------------------------


def test_view_changed_carries_a_unified_diff_of_the_definitions():
    changed = VIEW_TEXT.replace("WHERE users.active;", "WHERE users.active AND NOT users.banned;")
    found = pair(mutate_prod=assign(view(changed), "views", "public.v_active_users"))
    assert checks(found) == [("public.v_active_users", "changed", "postgres.view_changed")]
    detail = found[0]["detail"]
    assert detail.splitlines()[:2] == ["--- dev: public.v_active_users", "+++ prod: public.v_active_users"]
    assert "-  WHERE users.active;" in detail.splitlines()
    assert "+  WHERE users.active AND NOT users.banned;" in detail.splitlines()
    assert found[0]["message"].startswith("View public.v_active_users differs in definition: ")


def test_function_changed_detail_shows_the_changed_line_of_a_secret_free_body():
    changed = TOUCH_TEXT.replace("now()", "clock_timestamp()")
    found = pair(mutate_prod=assign(function(changed), "functions", "public.touch()"))
    assert checks(found) == [("public.touch()", "changed", "postgres.function_changed")]
    lines = found[0]["detail"].splitlines()
    assert lines[0] == "--- dev: public.touch()" and lines[1] == "+++ prod: public.touch()"
    assert "-  NEW.updated_at := now();" in lines and "+  NEW.updated_at := clock_timestamp();" in lines
    assert "   RETURN NEW;" in lines  # context: n=2 around the change


def test_body_that_differs_only_where_secrets_were_redacted():
    redacted = "\nBEGIN\n  PERFORM set_config('app.key', '***', false);\nEND;\n"
    dev_function = function(redacted)
    prod_function = dict(function(redacted), hash=hashlib.sha256(b"another secret").hexdigest())
    found = pair(
        mutate_dev=assign(dev_function, "functions", "public.touch()"),
        mutate_prod=assign(prod_function, "functions", "public.touch()"),
    )
    assert "differs only where secrets were redacted" in found[0]["detail"]


def test_long_body_diff_is_capped():
    dev_body = "\n".join("line %d" % n for n in range(1000))
    prod_body = "\n".join("LINE %d" % n for n in range(1000))
    found = pair(
        mutate_dev=assign(function(dev_body), "functions", "public.touch()"),
        mutate_prod=assign(function(prod_body), "functions", "public.touch()"),
    )
    lines = found[0]["detail"].splitlines()
    assert len(lines) == pg_diff.DETAIL_LINES + 1
    assert lines[-1].startswith("… ") and lines[-1].endswith("more lines not shown")


# --- enums -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "severity", "phrase"),
    [
        (["new", "paid", "shipped", "refunded"], "medium", "prod adds 'refunded'"),
        (["new", "paid"], "high", "prod lacks 'shipped'"),
        (["new", "shipped", "paid"], "low", "prod orders the labels differently"),
        (["new", "paid", "cancelled"], "high", "prod lacks 'shipped' and adds 'cancelled'"),
    ],
    ids=["added", "removed", "reordered", "replaced"],
)
def test_enum_labels_are_order_sensitive(labels, severity, phrase):
    found = pair(mutate_prod=assign({"labels": labels}, "enums", "public.order_status"))
    assert checks(found) == [("public.order_status", "changed", "postgres.enum_changed")]
    assert found[0]["severity"] == severity
    assert found[0]["message"] == "Enum public.order_status differs from dev: %s." % phrase
    assert found[0]["values"] == {"dev": "new, paid, shipped", "prod": ", ".join(labels)}


# --- secrets ---------------------------------------------------------------------------------------------


def test_secret_setting_and_role_config_are_never_shown():
    def plant(fp):
        def mutate(db):
            db["catalog"]["settings"]["app.api_key"] = setting("x" * 32, secret=True, fp=fp)
            db["catalog"]["roles"]["app"]["config"]["app.api_key"] = record("y" * 40, secret=True, fp=fp + "-role")

        return mutate

    found = pair(mutate_dev=plant("hmac-sha256:dev-" + CANARY), mutate_prod=plant("hmac-sha256:prod-" + CANARY))
    assert checks(found) == [
        ("roles.app.config.app.api_key", "changed", "postgres.role_changed"),
        ("settings.app.api_key", "changed", "postgres.setting_changed"),
    ]
    by_check = {f["check"]: f for f in found}
    assert by_check["postgres.setting_changed"]["values"] == {
        "dev": "‹secret A, 32-63 chars›",
        "prod": "‹secret B, 32-63 chars›",
    }
    assert by_check["postgres.role_changed"]["values"] == {
        "dev": "‹secret A, 32-63 chars›",
        "prod": "‹secret B, 32-63 chars›",
    }
    assert all(f["severity"] == "info" and "fingerprint" in f["message"] for f in found)
    assert CANARY not in json.dumps(found)


def test_equal_secrets_are_not_drift_and_an_unset_one_shows_as_default():
    same = "hmac-sha256:same-" + CANARY
    assert (
        pair(
            mutate_dev=assign(setting("z" * 20, secret=True, fp=same), "settings", "app.token"),
            mutate_prod=assign(setting("z" * 20, secret=True, fp=same), "settings", "app.token"),
        )
        == []
    )
    found = pair(mutate_dev=assign(setting("z" * 20, secret=True, fp=same), "settings", "app.token"))
    assert found[0]["values"] == {"dev": "‹secret A, 16-31 chars›", "prod": "default"}
    assert CANARY not in json.dumps(found)


# --- migrations ------------------------------------------------------------------------------------------


MIGRATION_CASES = [
    ("django", ["auth.0001", "app.0001", "app.0002", "app.0003"], ["auth.0001", "app.0001"], "behind", "high"),
    ("django", ["auth.0001", "app.0001"], ["auth.0001", "app.0001", "app.0002"], "ahead", "medium"),
    ("django", ["auth.0001", "app.0001", "app.0002"], ["auth.0001", "app.0001", "app.0002_hotfix"], "diverged", "high"),
    ("rails", ["20240101000000", "20240201000000"], ["20240101000000"], "behind", "high"),
    ("rails", ["20240101000000"], ["20240101000000", "20240301000000"], "ahead", "medium"),
    ("rails", ["20240101000000", "20240201000000"], ["20240101000000", "20240202000000"], "diverged", "high"),
    ("flyway", ["1", "1.1", "2"], ["1", "1.1"], "behind", "high"),
    ("flyway", ["1"], ["1", "1.1"], "ahead", "medium"),
    ("flyway", ["1", "2"], ["1", "3"], "diverged", "high"),
    ("knex", ["001_init.js", "002_users.js"], ["001_init.js"], "behind", "high"),
    ("prisma", ["20240101_init"], ["20240101_init", "20240102_x"], "ahead", "medium"),
    ("sequelize", ["a.js", "b.js"], ["a.js", "c.js"], "diverged", "high"),
]


@pytest.mark.parametrize(("tool", "dev_ids", "prod_ids", "relation", "severity"), MIGRATION_CASES)
def test_migrations_behind_ahead_diverged(tool, dev_ids, prod_ids, relation, severity):
    dev = database(tools={tool: migrations(tool, dev_ids)})
    prod = database(tools={tool: migrations(tool, prod_ids)})
    found = run(facts(app=dev), facts(app=prod))
    assert checks(found) == [("migrations.%s" % tool, "changed", "postgres.migrations_%s" % relation)]
    well_formed(found[0])
    assert found[0]["severity"] == severity
    lacking = [item for item in dev_ids if item not in prod_ids]
    only = [item for item in prod_ids if item not in dev_ids]
    for item in lacking + only:
        assert item in found[0]["message"]
    assert found[0]["values"]["prod"].startswith("%d applied, head %s" % (len(prod_ids), prod_ids[-1]))


def test_behind_message_counts_and_names_the_migrations_and_the_upgrade():
    dev = database(tools={"django": migrations("django", ["app.0001", "app.0002", "app.0003"])})
    prod = database(tools={"django": migrations("django", ["app.0001"])})
    found = run(facts(app=dev), facts(app=prod))
    assert found[0]["message"] == "prod is 2 migrations behind dev: app.0002, app.0003 (django)."
    assert found[0]["recommendation"] == (
        "Run python manage.py migrate on prod before deploying the code that needs them."
    )


@pytest.mark.parametrize(
    ("dev_heads", "prod_heads", "expected"),
    [
        (["9c1b7e2a0f11"], ["3f2a9c1b4d5e"], [("migrations.alembic", "changed", "postgres.migrations_heads")]),
        (["9c1b7e2a0f11", "aa11bb22cc33"], ["aa11bb22cc33", "9c1b7e2a0f11"], []),
        (["9c1b7e2a0f11"], ["9c1b7e2a0f11"], []),
    ],
    ids=["head-differs", "same-heads-in-another-order", "same"],
)
def test_alembic_heads_are_compared(dev_heads, prod_heads, expected):
    dev = database(tools={"alembic": migrations("alembic", dev_heads, dev_heads)})
    prod = database(tools={"alembic": migrations("alembic", prod_heads, prod_heads)})
    found = run(facts(app=dev), facts(app=prod))
    assert checks(found) == expected
    if expected:
        assert found[0]["severity"] == "high"
        assert found[0]["values"] == {"dev": "head 9c1b7e2a0f11", "prod": "head 3f2a9c1b4d5e"}
        assert "alembic upgrade head" in found[0]["recommendation"]


@pytest.mark.parametrize("tool", ["alembic", "django", "rails", "flyway"])
def test_migration_table_only_on_one_side(tool):
    with_table = database(tools={tool: migrations(tool, ["1"])})
    without = database(tools={})
    missing = run(facts(app=with_table), facts(app=without))
    assert checks(missing) == [("migrations.%s" % tool, "missing", "postgres.migrations_missing")]
    assert missing[0]["severity"] == "high"
    extra = run(facts(app=without), facts(app=copy.deepcopy(with_table)))
    assert checks(extra) == [("migrations.%s" % tool, "extra", "postgres.migrations_missing")]


def test_dirty_migration_table():
    dev = database(tools={"golang-migrate": migrations("golang-migrate", ["1", "2"], dirty=False)})
    prod = database(tools={"golang-migrate": migrations("golang-migrate", ["1", "2"], dirty=True)})
    found = run(facts(app=dev), facts(app=prod))
    assert checks(found) == [("migrations.golang-migrate", "policy", "postgres.migrations_dirty")]
    assert found[0]["values"]["prod"] == "2 applied, head 2, dirty"


def test_long_migration_lists_are_capped():
    ids = ["%04d" % n for n in range(30)]
    found = run(
        facts(app=database(tools={"rails": migrations("rails", ids)})),
        facts(app=database(tools={"rails": migrations("rails", ids[:2])})),
    )
    assert "prod is 28 migrations behind dev" in found[0]["message"]
    assert found[0]["message"].endswith("0011 and 18 more (rails).")


# --- status, configuration, versions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("unreachable", "unknown"),
        ("auth_failed", "unknown"),
        ("unknown_database", "missing"),
        ("container_not_running", "unknown"),
        ("lock_timeout", "unknown"),
    ],
)
def test_database_that_cannot_be_read_is_one_finding_and_not_compared(status, kind):
    prod = database(status=status, reason="the reason in one sentence")
    found = run(facts(), facts(app=prod))
    assert checks(found) == [("@database", kind, "postgres.database_status")]
    well_formed(found[0])
    assert found[0]["severity"] == "high"
    assert found[0]["values"]["dev"] == "ok"
    assert "the reason in one sentence" in found[0]["message"]


def test_unreachable_column_is_unknown_in_object_rows_not_absent():
    cells = {
        "dev": facts(),
        "prod/web1": facts(app=database(status="unreachable", reason="connection refused")),
        "prod/web2": facts(app=database(cat=catalog())),
    }
    cells["prod/web2"]["databases"]["app"]["catalog"]["tables"]["public.users"]["columns"]["email"]["type"] = "text"
    found = run_n(cells)
    assert checks(found) == [
        ("@database", "unknown", "postgres.database_status"),
        ("public.users.email", "changed", "postgres.column_changed"),
    ]
    changed = found[1]
    assert changed["environments"] == ["prod/web2"]
    assert changed["values"]["prod/web1"] == {"unknown": "database unreachable"}


def test_a_column_that_could_not_be_collected_adds_no_finding_of_its_own():
    found = run(facts(), unknown_cell("unreachable: ssh refused"))
    assert found == []
    found = pair(mutate_prod=delete("tables", "public.orders"))
    cells = {"dev": facts(), "prod": facts(), "staging": unknown_cell("unreachable: no route")}
    cells["prod"]["databases"]["app"]["catalog"]["tables"].pop("public.orders")
    found = pg_diff.diff(["dev", "prod", "staging"], on_the_wire(cells), {"baseline": "dev", "production": PROD})
    assert checks(found) == [("public.orders", "missing", "postgres.table_missing")]
    assert found[0]["values"]["staging"] == {"unknown": "unreachable: no route"}


def test_database_not_configured_on_a_host_that_audits_postgres():
    found = run(facts(app=database(), analytics=database()), facts(app=database()))
    assert checks(found) == [("@database", "missing", "postgres.database_not_configured")]
    assert found[0]["subject"] == "analytics"
    assert run(facts(), None) == []


@pytest.mark.parametrize(
    ("version", "number", "severity"),
    [("15.4", 150004, "low"), ("16.2", 160002, "medium")],
)
def test_server_version(version, number, severity):
    prod = database()
    prod.update(server_version=version, server_version_num=number)
    found = run(facts(), facts(app=prod))
    assert checks(found) == [("@server.version", "changed", "postgres.server_version")]
    assert found[0]["severity"] == severity


# --- N-way -----------------------------------------------------------------------------------------------


def test_three_columns_dev_and_two_prod_hosts():
    web1, web2 = database(), database()
    del web1["catalog"]["tables"]["public.users"]["columns"]["name"]
    web2["catalog"]["tables"]["public.users"]["columns"]["name"]["type"] = "character varying(50)"
    web2["catalog"]["views"]["public.v_active_users"] = view(VIEW_TEXT.replace("users.email", "users.name"))
    web1["catalog"]["views"]["public.v_active_users"] = view(VIEW_TEXT.replace("users.email", "users.name"))
    dev_tool = migrations("django", ["app.0001", "app.0002", "app.0003"])
    web1["migrations"] = {"django": migrations("django", ["app.0001"])}
    web2["migrations"] = {"django": migrations("django", ["app.0001", "app.0002"])}
    found = run_n(
        {
            "dev": facts(app=database(tools={"django": dev_tool})),
            "prod/web1": facts(app=web1),
            "prod/web2": facts(app=web2),
        }
    )
    assert [(f["key"], f["check"], f["environments"]) for f in sorted(found, key=lambda f: (f["key"], f["check"]))] == [
        ("migrations.django", "postgres.migrations_behind", ["prod/web1", "prod/web2"]),
        ("public.users.name", "postgres.column_changed", ["prod/web2"]),
        ("public.users.name", "postgres.column_missing", ["prod/web1"]),
        ("public.v_active_users", "postgres.view_changed", ["prod/web1", "prod/web2"]),
    ]
    behind = next(f for f in found if f["check"] == "postgres.migrations_behind")
    assert behind["message"] == (
        "prod/web1 is 2 migrations behind dev: app.0002, app.0003; "
        "prod/web2 is 1 migration behind dev: app.0003 (django)."
    )
    view_finding = next(f for f in found if f["check"] == "postgres.view_changed")
    # the same body on both prod hosts is diffed once
    assert view_finding["detail"].count("+++ ") == 1
    assert "+++ prod/web1, prod/web2: public.v_active_users" in view_finding["detail"]
    missing = next(f for f in found if f["check"] == "postgres.column_missing")
    assert missing["values"] == {
        "dev": 'text collate "C"',
        "prod/web1": None,
        "prod/web2": 'character varying(50) collate "C"',
    }


def test_baseline_is_the_first_readable_column():
    cells = {
        "dev": facts(app=database(status="timeout", reason="the catalog query timed out")),
        "prod/web1": facts(),
        "prod/web2": facts(),
    }
    del cells["prod/web2"]["databases"]["app"]["catalog"]["extensions"]["citext"]
    found = run_n(cells)
    assert checks(found) == [
        ("@database", "unknown", "postgres.database_status"),
        ("extensions.citext", "missing", "postgres.extension_missing"),
    ]
    assert found[1]["message"] == "prod/web2 lacks extension citext, which prod/web1 has."


# --- the audit role ----------------------------------------------------------------------------------------


def test_audit_role_that_can_write_gets_the_sql_for_a_least_privileged_role():
    privileges = ["INSERT on public.users", "UPDATE on public.users", "DELETE on public.users"]
    privileges += ["CREATE on schema public", "TRUNCATE on public.orders", "INSERT on public.orders", "TEMP"]
    prod = database(
        tools={"alembic": migrations("alembic", ["3f2a9c1b4d5e"]), "django": migrations("django", ["a.1"])},
        audit_role={"name": "prod_user", "superuser": False, "can_write": True, "write_privileges": privileges},
    )
    dev = database(tools=copy.deepcopy(prod["migrations"]))
    found = run(facts(app=dev), facts(app=prod))
    assert checks(found) == [("@audit_role", "policy", "postgres.audit_role_can_write")]
    finding = found[0]
    well_formed(finding)
    assert finding["severity"] == "medium" and finding["environments"] == ["prod"]
    assert finding["values"] == {"dev": "app read-only", "prod": "prod_user can write"}
    for item in privileges[:5]:
        assert item in finding["message"]
    assert "TEMP" not in finding["message"] and "and 2 more" in finding["message"]
    recommendation = finding["recommendation"]
    for line in (
        "CREATE ROLE envparity_audit LOGIN;",
        "GRANT CONNECT ON DATABASE app TO envparity_audit;",
        "GRANT USAGE ON SCHEMA billing, public TO envparity_audit;",
        "GRANT pg_read_all_settings, pg_monitor TO envparity_audit;",
        "GRANT SELECT ON public.alembic_version, public.django_migrations TO envparity_audit;",
    ):
        assert line in recommendation


def test_audit_role_sql_quotes_identifiers_and_uses_the_database_name_when_known():
    sql = pg_diff.audit_role_sql(
        "AI-Assistant", ["public", "Sales"], ['public."SequelizeMeta"', "app.SchemaMigrations"]
    )
    assert 'GRANT CONNECT ON DATABASE "AI-Assistant" TO envparity_audit;' in sql
    assert 'GRANT USAGE ON SCHEMA public, "Sales" TO envparity_audit;' in sql
    assert 'GRANT SELECT ON public."SequelizeMeta", app."SchemaMigrations" TO envparity_audit;' in sql
    prod = database(audit_role={"name": "postgres", "superuser": True, "can_write": True, "write_privileges": []})
    prod["dbname"] = "ai_assistant"
    found = run(facts(), facts(app=prod))
    assert "GRANT CONNECT ON DATABASE ai_assistant TO envparity_audit;" in found[0]["recommendation"]
    assert found[0]["values"]["prod"] == "postgres can write (superuser)"


# --- scale -------------------------------------------------------------------------------------------------


def synthetic(tables):
    """A catalog of `tables` tables: 15 columns, 2 indexes (one the primary key) and 1 FK each."""
    result = {}
    for n in range(tables):
        name = "public.t%05d" % n
        columns = {"id": column(1, "bigint", False, identity="by default")}
        for c in range(1, 15):
            columns["c%02d" % c] = column(c + 1, "integer" if c % 2 else "text", c % 3 != 0, "0" if c == 4 else None)
        result[name] = table(
            columns,
            constraints={
                "t%05d_pkey" % n: {"type": "primary key", "definition": "PRIMARY KEY (id)"},
                "t%05d_c01_fkey" % n: {
                    "type": "foreign key",
                    "definition": "FOREIGN KEY (c01) REFERENCES public.t%05d(id)" % max(n - 1, 0),
                },
            },
            indexes={
                "t%05d_pkey" % n: {
                    "definition": "CREATE UNIQUE INDEX t%05d_pkey ON %s USING btree (id)" % (n, name),
                    "unique": True,
                    "primary": True,
                },
                "t%05d_c02_idx" % n: {
                    "definition": "CREATE INDEX t%05d_c02_idx ON %s USING btree (c02)" % (n, name),
                    "unique": False,
                    "primary": False,
                },
            },
        )
    return {"schemas": {"public": {"owner": "app"}}, "tables": result}


def plant(prod_tables, tables):
    """1% drift, each planted difference giving exactly one finding; returns how many were planted."""
    planted = 0
    for step, n in enumerate(range(0, tables, 100)):
        name = "public.t%05d" % n
        target = prod_tables[name]
        kind = step % 6
        if kind == 0:
            del target["columns"]["c07"]
        elif kind == 1:
            target["columns"]["c03"]["type"] = "bigint"
        elif kind == 2:
            del target["indexes"]["t%05d_c02_idx" % n]
        elif kind == 3:
            target["constraints"]["t%05d_c01_fkey" % n]["definition"] += " ON DELETE CASCADE"
        elif kind == 4:
            del prod_tables[name]
        else:
            prod_tables["public.extra%05d" % n] = copy.deepcopy(target)
        planted += 1
    return planted


def timed_diff(tables):
    dev_catalog, prod_catalog = synthetic(tables), synthetic(tables)
    planted = plant(prod_catalog["tables"], tables)
    dev = facts(app=database(cat=dev_catalog, tools={}))
    prod = facts(app=database(cat=prod_catalog, tools={}))
    on_the_wire({"dev": dev, "prod": prod})  # as the facts arrive: encoding is the hosts' work
    start = time.perf_counter()
    found = run(dev, prod)
    elapsed = time.perf_counter() - start
    assert len(found) == planted == tables // 100
    return elapsed


def test_scale_is_linear_and_exact():
    small = min(timed_diff(2000) for _ in range(2))
    large = min(timed_diff(8000) for _ in range(2))
    print("\npg_diff: 2,000 tables %.3f s; 8,000 tables %.3f s (ratio %.1f)" % (small, large, large / small))
    assert large <= 5 * small + 0.5
