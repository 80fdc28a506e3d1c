"""The audit role's policy finding and its SQL (pg_role)."""

import copy

from ansible_collections.envparity.audit.plugins.plugin_utils import pg_role
from tests.pg_facts import (
    checks,
    database,
    facts,
    migrations,
    run,
    well_formed,
)

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
    sql = pg_role.audit_role_sql(
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
