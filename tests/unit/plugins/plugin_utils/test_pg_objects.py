"""Catalog objects compared across environments (pg_objects), on hand-built catalogs."""

import copy
import hashlib
import time

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import pg_objects
from tests.pg_facts import (
    TOUCH_TEXT,
    VIEW_TEXT,
    assign,
    checks,
    column,
    database,
    delete,
    facts,
    function,
    on_the_wire,
    pair,
    record,
    run,
    setting,
    table,
    view,
    well_formed,
)

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
    assert pg_objects.column_text(column(1, "integer", False, "0")) == "integer not null default 0"
    assert (
        pg_objects.column_text(column(1, "bigint", False, identity="always"))
        == "bigint not null generated always as identity"
    )
    assert (
        pg_objects.column_text(column(1, "text", generated="lower(name)"))
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
    assert len(lines) == pg_objects.DETAIL_LINES + 1
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


# --- partitions ------------------------------------------------------------------------------------------


def partitioned(columns, partitions=("public.events_2024", "public.events_2025")):
    """A partitioned table public.events and its partitions, each with the given columns."""
    tables = {"public.events": table(copy.deepcopy(columns), kind="partitioned", partition_key="RANGE (at)")}
    for name in partitions:
        tables[name] = table(copy.deepcopy(columns), partition_of="public.events")
    return tables


def with_tables(tables):
    def mutate(db):
        db["catalog"]["tables"].update(copy.deepcopy(tables))

    return mutate


EVENT_COLUMNS = {"id": column(1, "bigint", nullable=False), "at": column(2, "timestamp with time zone")}
WITH_SOURCE = dict(EVENT_COLUMNS, source=column(3, "text"))


def test_a_column_added_to_a_partitioned_table_is_one_finding_on_the_parent():
    found = pair(with_tables(partitioned(EVENT_COLUMNS)), with_tables(partitioned(WITH_SOURCE)))
    assert checks(found) == [("public.events.source", "extra", "postgres.column_extra")]
    found = pair(with_tables(partitioned(WITH_SOURCE)), with_tables(partitioned(EVENT_COLUMNS)))
    assert checks(found) == [("public.events.source", "missing", "postgres.column_missing")]
    changed = dict(EVENT_COLUMNS, at=column(2, "timestamp without time zone"))
    found = pair(with_tables(partitioned(EVENT_COLUMNS)), with_tables(partitioned(changed)))
    assert checks(found) == [("public.events.at", "changed", "postgres.column_changed")]


def test_a_partition_is_reported_where_it_differs_from_its_parent():
    prod = partitioned(WITH_SOURCE)
    # One partition has its own default for the new column (ALTER TABLE events_2025 ALTER … SET DEFAULT).
    prod["public.events_2025"]["columns"]["source"] = column(3, "text", default="'import'::text")
    found = pair(with_tables(partitioned(EVENT_COLUMNS)), with_tables(prod))
    assert checks(found) == [
        ("public.events.source", "extra", "postgres.column_extra"),
        ("public.events_2025.source", "extra", "postgres.column_extra"),
    ]


def test_a_partition_of_another_parent_or_a_plain_table_is_compared_column_by_column():
    dev = partitioned(EVENT_COLUMNS)
    prod = partitioned(WITH_SOURCE)
    # In prod, events_2024 is a plain table: nothing of it is the parent's.
    prod["public.events_2024"]["partition_of"] = None
    found = pair(with_tables(dev), with_tables(prod))
    assert checks(found) == [
        ("public.events.source", "extra", "postgres.column_extra"),
        ("public.events_2024", "changed", "postgres.partitioning_changed"),
        ("public.events_2024.source", "extra", "postgres.column_extra"),
    ]
