"""Server settings and roles compared across environments (pg_cluster), on hand-built catalogs."""

import json

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import pg_cluster
from tests.pg_facts import (
    CANARY,
    assign,
    checks,
    database,
    facts,
    pair,
    record,
    run,
    run_n,
    setting,
)

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


# --- once per server ---------------------------------------------------------------------------------------

SERVER_WIDE = {
    ("settings.max_connections", "changed", "postgres.setting_changed"),
    ("roles.app_reader", "missing", "postgres.role_missing"),
    ("roles.app", "changed", "postgres.role_changed"),
    ("roles.app.config.search_path", "changed", "postgres.role_changed"),
    # COMMENT ON ROLE: the server's, compared with its roles
    ("comments.role app", "extra", "postgres.comment_extra"),
}


def on_server(db, identifier, port=5432, data_directory=None):
    db["cluster"] = {"system_identifier": identifier, "port": port, "data_directory": data_directory}
    return db


def prod_server_drift(db):
    """The server-wide drift of the tests below, planted in one database's catalog."""
    catalog = db["catalog"]
    catalog["settings"]["max_connections"] = setting("200")
    del catalog["roles"]["app_reader"]
    catalog["roles"]["app"]["createdb"] = True
    catalog["roles"]["app"]["config"]["search_path"] = record("app, public")
    catalog.setdefault("comments", {})["role app"] = {"text": "The application", "hash": "h-app"}
    return db


def two_databases(dev_servers=("1", "1"), prod_servers=("2", "2")):
    """app and analytics in dev and prod (dev the baseline), on the servers given (None: unknown)."""
    names = ("app", "analytics")
    dev = {name: on_server(database(), server) for name, server in zip(names, dev_servers, strict=True)}
    prod = {
        name: on_server(prod_server_drift(database()), server) for name, server in zip(names, prod_servers, strict=True)
    }
    return facts(**dev), facts(**prod)


def by_subject(findings):
    subjects = {}
    for finding in findings:
        subjects.setdefault(finding["subject"], set()).add((finding["key"], finding["kind"], finding["check"]))
    return subjects


def test_roles_and_server_settings_of_a_shared_server_are_reported_once():
    dev, prod = two_databases()
    assert by_subject(run(dev, prod)) == {"cluster:analytics+app": SERVER_WIDE}


def test_the_server_s_findings_are_the_database_s_but_for_the_subject():
    shared = [f for f in run(*two_databases()) if f["subject"] == "cluster:analytics+app"]
    alone = [f for f in run(*two_databases((None, None), (None, None))) if f["subject"] == "app"]
    assert len(alone) == len(SERVER_WIDE)
    assert sorted(shared, key=lambda f: f["key"]) == sorted(
        (dict(f, subject="cluster:analytics+app") for f in alone), key=lambda f: f["key"]
    )


@pytest.mark.parametrize(
    ("dev_servers", "prod_servers", "why"),
    [
        (("1", "1"), ("2", "3"), "prod's databases are on two servers"),
        (("1", "1"), ("2", None), "prod's analytics cannot be placed"),
        ((None, None), (None, None), "no server is known"),
        (("1", "9"), ("2", "3"), "each database has a server of its own"),
    ],
)
def test_without_one_server_per_environment_each_database_reports_its_own(dev_servers, prod_servers, why):
    assert by_subject(run(*two_databases(dev_servers, prod_servers))) == {
        "app": SERVER_WIDE,
        "analytics": SERVER_WIDE,
    }, why


def test_a_server_is_its_identifier_port_and_data_directory():
    dev, prod = two_databases()
    on_server(prod["databases"]["analytics"], "2", port=5433)  # a second server from a copy of the first
    assert set(by_subject(run(dev, prod))) == {"app", "analytics"}
    on_server(prod["databases"]["analytics"], "2", data_directory="/srv/other")
    on_server(prod["databases"]["app"], "2", data_directory="/srv/main")
    assert set(by_subject(run(dev, prod))) == {"app", "analytics"}


def test_what_is_the_database_s_own_stays_under_the_database():
    dev, prod = two_databases()
    for db in (dev, prod):
        app = db["databases"]["app"]["catalog"]
        # ALTER DATABASE app SET statement_timeout; ALTER ROLE app IN DATABASE app SET work_mem.
        app["settings"]["statement_timeout"] = dict(setting("0" if db is dev else "30000", "ms"), source="database")
        app["roles"]["app"]["database_config"] = {"work_mem": record("4MB" if db is dev else "64MB")}
    found = by_subject(run(dev, prod))
    assert found == {
        "cluster:analytics+app": SERVER_WIDE,
        "app": {
            ("settings.statement_timeout", "changed", "postgres.setting_changed"),
            ("roles.app.config.work_mem", "changed", "postgres.role_changed"),
        },
    }


def test_a_database_s_own_setting_is_compared_with_what_is_in_effect_elsewhere():
    dev, prod = two_databases()
    # dev sets it in its configuration file, prod for the database only: equal in effect, so nothing
    # for app; the server's own values differ (prod's is its default), reported once.
    dev_setting = setting("30000", "ms")
    prod_setting = dict(setting("30000", "ms"), source="database")
    for db in dev["databases"].values():
        db["catalog"]["settings"]["statement_timeout"] = dev_setting
    prod["databases"]["app"]["catalog"]["settings"]["statement_timeout"] = prod_setting
    found = run(dev, prod)
    assert by_subject(found) == {
        "cluster:analytics+app": SERVER_WIDE | {("settings.statement_timeout", "changed", "postgres.setting_changed")}
    }
    timeout = next(f for f in found if f["key"] == "settings.statement_timeout")
    assert timeout["values"] == {"dev": "30000ms", "prod": "default"}


def test_the_server_is_read_from_whichever_of_its_databases_could_be_read():
    dev, prod = two_databases()
    prod["databases"]["app"] = database(status="unreachable", reason="Cannot connect.")
    found = run(dev, prod)
    assert by_subject(found)["cluster:analytics+app"] == SERVER_WIDE
    prod["databases"]["analytics"] = database(status="timeout", reason="Timed out.")
    found = run(dev, prod)
    assert not [f for f in found if f["subject"].startswith("cluster:")]  # nothing to compare with


def test_a_server_none_of_whose_databases_could_be_read_is_unknown_in_its_rows():
    columns = {
        "dev": facts(app=on_server(database(), "1"), analytics=on_server(database(), "1")),
        "prod/web1": facts(
            app=on_server(prod_server_drift(database()), "2"), analytics=on_server(prod_server_drift(database()), "2")
        ),
        "prod/web2": facts(app=database(status="unreachable"), analytics=database(status="auth_failed")),
    }
    found = [f for f in run_n(columns) if f["subject"] == "cluster:analytics+app"]
    assert found and all(set(f["values"]["prod/web2"]) == {"unknown"} for f in found)
    assert all("prod/web2" not in f["environments"] for f in found)


def test_the_subject_is_the_same_whatever_the_order_of_the_facts():
    dev, prod = two_databases()
    reordered = {"databases": dict(reversed(list(prod["databases"].items())))}
    assert run(dev, prod) == run(dev, reordered)
    assert pg_cluster.shared_servers({"dev": dev, "prod": prod}) == [["analytics", "app"]]
    assert pg_cluster.cluster_subject(["app", "analytics"]) == "cluster:analytics+app"
