"""Privileges, default privileges and row level security policies compared across environments
(plugins/plugin_utils/pg_security.py), on facts built in the contract's shape."""

import pytest

from tests.pg_facts import checks, database, delete, facts, pair, run_n, well_formed

OWNER_TABLE = ["DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"]
DEFAULTS = {
    "table": {"(owner)": OWNER_TABLE},
    "view": {"(owner)": OWNER_TABLE},
    "sequence": {"(owner)": ["SELECT", "UPDATE", "USAGE"]},
    "function": {"(owner)": ["EXECUTE"], "PUBLIC": ["EXECUTE"]},
    "schema": {"(owner)": ["CREATE", "USAGE"]},
    "database": {"(owner)": ["CONNECT", "CREATE", "TEMPORARY"], "PUBLIC": ["CONNECT", "TEMPORARY"]},
    "type": {"(owner)": ["USAGE"], "PUBLIC": ["USAGE"]},
}


def secured(privileges=None, default_privileges=None, policies=None):
    """A mutation giving a database these security sections (and the server's defaults)."""

    def mutate(db):
        db["catalog"]["privilege_defaults"] = DEFAULTS
        db["catalog"]["privileges"] = privileges or {}
        db["catalog"]["default_privileges"] = default_privileges or {}
        db["catalog"]["policies"] = policies or {}

    return mutate


def grants(**by_grantee):
    return {"(owner)": OWNER_TABLE, **{name: list(items) for name, items in by_grantee.items()}}


def security(findings):
    return [f for f in findings if f["check"].startswith(("postgres.privilege", "postgres.default", "postgres.policy"))]


def test_same_privileges_written_in_another_order_are_no_finding():
    dev = {"table public.users": {"app_reader": ["SELECT"], "(owner)": OWNER_TABLE}}
    prod = {"table public.users": {"(owner)": list(reversed(OWNER_TABLE)), "app_reader": ["SELECT"]}}
    assert security(pair(secured(dev), secured(prod))) == []


def test_an_acl_written_out_equal_to_the_default_is_no_finding():
    prod = {"function public.touch()": {"(owner)": ["EXECUTE"], "PUBLIC": ["EXECUTE"]}}
    assert security(pair(secured(), secured(prod))) == []


def test_a_grant_only_in_prod_is_high_and_names_the_revoke():
    findings = security(pair(secured(), secured({"table public.users": grants(app_reader=["DELETE", "SELECT"])})))
    assert checks(findings) == [("privileges.table public.users to app_reader", "extra", "postgres.privilege_extra")]
    finding = findings[0]
    well_formed(finding)
    assert finding["severity"] == "high"
    assert finding["values"] == {"dev": "no privileges", "prod": "DELETE, SELECT"}
    assert "prod grants DELETE, SELECT" in finding["message"]
    assert "REVOKE ALL ON TABLE public.users FROM app_reader" in finding["recommendation"]


def test_a_grant_missing_in_prod_is_medium_and_names_the_grant():
    findings = security(pair(secured({"table public.users": grants(app_reader=["SELECT"])}), secured()))
    assert checks(findings) == [
        ("privileges.table public.users to app_reader", "missing", "postgres.privilege_missing")
    ]
    assert findings[0]["severity"] == "medium"
    assert "GRANT SELECT ON TABLE public.users TO app_reader" in findings[0]["recommendation"]


def test_the_grant_option_is_a_difference_of_its_own():
    dev = {"sequence public.orders_id_seq": {"(owner)": ["SELECT", "UPDATE", "USAGE"], "app_reader": ["USAGE"]}}
    prod = {
        "sequence public.orders_id_seq": {
            "(owner)": ["SELECT", "UPDATE", "USAGE"],
            "app_reader": ["USAGE WITH GRANT OPTION"],
        }
    }
    findings = security(pair(secured(dev), secured(prod)))
    assert checks(findings) == [
        ("privileges.sequence public.orders_id_seq to app_reader", "changed", "postgres.privilege_changed")
    ]
    assert findings[0]["severity"] == "high"
    assert "prod adds the grant option on USAGE" in findings[0]["message"]
    backwards = security(pair(secured(prod), secured(dev)))
    assert backwards[0]["severity"] == "medium"
    assert "prod lacks the grant option on USAGE" in backwards[0]["message"]


def test_public_execute_revoked_in_dev_only():
    dev = {"function public.touch()": {"(owner)": ["EXECUTE"]}}
    findings = security(pair(secured(dev), secured()))
    assert checks(findings) == [("privileges.function public.touch() to PUBLIC", "extra", "postgres.privilege_extra")]


def test_column_and_database_privileges():
    prod = {
        "column public.users.email": {"app_reader": ["UPDATE"]},
        "database": {**DEFAULTS["database"], "app_reader": ["CREATE"]},
    }
    findings = security(pair(secured(), secured(prod)))
    assert checks(findings) == [
        ("privileges.column public.users.email to app_reader", "extra", "postgres.privilege_extra"),
        ("privileges.database to app_reader", "extra", "postgres.privilege_extra"),
    ]
    assert "REVOKE ALL (email) ON TABLE public.users FROM app_reader" in findings[0]["recommendation"]


def test_privileges_of_an_object_or_a_role_missing_on_a_side_are_not_repeated():
    prod = {
        "table public.users": grants(stranger=["SELECT"]),  # no role stranger on either side
        "column public.users.nickname": {"app_reader": ["SELECT"]},  # no such column
        "view public.gone": {"app_reader": ["SELECT"]},  # no such view
    }
    assert security(pair(secured(), secured(prod))) == []


def test_a_grantee_present_in_three_columns_one_differing():
    prod = {"table public.users": grants(app_reader=["SELECT", "UPDATE"])}
    cells = {
        "dev": facts(app=database()),
        "prod/web1": facts(app=database()),
        "prod/web2": facts(app=database()),
    }
    for label, privileges in (("dev", None), ("prod/web1", None), ("prod/web2", prod)):
        secured(privileges)(cells[label]["databases"]["app"])
    findings = security(run_n(cells))
    assert [(f["key"], f["environments"]) for f in findings] == [
        ("privileges.table public.users to app_reader", ["prod/web2"])
    ]


DEFAULT_ENTRY = {"role": "app", "schema": "public", "on": "tables", "grants": {"app_reader": ["SELECT"]}}


def test_default_privileges_of_a_schema():
    findings = security(pair(secured(default_privileges={"app in schema public on tables": DEFAULT_ENTRY}), secured()))
    assert checks(findings) == [
        (
            "default_privileges.tables created by app in schema public to app_reader",
            "missing",
            "postgres.default_privilege_missing",
        )
    ]
    assert (
        "ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA public GRANT SELECT ON TABLES TO app_reader"
        in findings[0]["recommendation"]
    )


def test_global_default_privileges_are_compared_against_the_kinds_defaults():
    same = {"role": "app", "schema": None, "on": "functions", "grants": DEFAULTS["function"]}
    assert security(pair(secured(default_privileges={"app on functions": same}), secured())) == []
    revoked = dict(same, grants={"(owner)": ["EXECUTE"]})
    findings = security(pair(secured(default_privileges={"app on functions": revoked}), secured()))
    assert checks(findings) == [
        ("default_privileges.functions created by app to PUBLIC", "extra", "postgres.default_privilege_extra")
    ]


POLICY = {
    "table": "public.users",
    "command": "SELECT",
    "permissive": True,
    "roles": ["app", "app_reader"],
    "using": "(id = 1)",
    "with_check": None,
}


@pytest.mark.parametrize(
    "change, attribute",
    [
        ({"command": "ALL"}, "command"),
        ({"permissive": False}, "permissive / restrictive"),
        ({"roles": ["app"]}, "roles"),
        ({"using": "true"}, "USING expression"),
        ({"with_check": "(id > 0)"}, "WITH CHECK expression"),
    ],
)
def test_a_policy_changed_in_one_attribute(change, attribute):
    prod = dict(POLICY, **change)
    findings = security(
        pair(secured(policies={"public.users.own": POLICY}), secured(policies={"public.users.own": prod}))
    )
    assert checks(findings) == [("public.users.own", "changed", "postgres.policy_changed")]
    assert findings[0]["severity"] == "high"
    assert "differs in %s" % attribute in findings[0]["message"]


def test_policy_roles_in_another_order_are_no_finding():
    prod = dict(POLICY, roles=["app_reader", "app"])
    assert (
        security(pair(secured(policies={"public.users.own": POLICY}), secured(policies={"public.users.own": prod})))
        == []
    )


def test_policies_missing_and_extra_but_not_those_of_a_missing_table():
    orphan = dict(POLICY, table="public.orders")

    def prod(db):
        secured(policies={"public.users.other": POLICY})(db)
        delete("tables", "public.orders")(db)

    findings = pair(secured(policies={"public.users.own": POLICY, "public.orders.own": orphan}), prod)
    assert checks(security(findings)) == [
        ("public.users.other", "extra", "postgres.policy_extra"),
        ("public.users.own", "missing", "postgres.policy_missing"),
    ]
    assert ("public.orders", "missing", "postgres.table_missing") in checks(findings)


def test_policy_text_reads_like_create_policy():
    findings = security(pair(secured(policies={"public.users.own": POLICY}), secured()))
    assert findings[0]["values"]["dev"] == "PERMISSIVE FOR SELECT TO app, app_reader USING ((id = 1))"
