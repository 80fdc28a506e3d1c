"""The postgres area's entry: subjects, status, configuration, server versions, N columns."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import pg_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import unknown_cell
from tests.pg_facts import (
    PROD,
    VIEW_TEXT,
    assign,
    catalog,
    checks,
    database,
    delete,
    facts,
    migrations,
    on_the_wire,
    pair,
    run,
    run_n,
    setting,
    view,
    well_formed,
)

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


def test_a_database_configured_on_one_host_only_is_left_to_the_engine():
    # The engine's postgres.not_configured speaks for it (test_audit); the area's diff compares nothing.
    found = run(facts(app=database(), analytics=database()), facts(app=database()))
    assert [f for f in found if f["subject"] == "analytics"] == []
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
