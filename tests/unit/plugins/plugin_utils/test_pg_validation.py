"""Constraints NOT VALID in production (plugins/plugin_utils/pg_validation.py and the constraint
comparison of pg_objects), publications' row filters and column lists (pg_kinds) and large objects'
ACLs (pg_security), on facts built in the contract's shape."""

import pytest

from tests.pg_facts import assign, checks, database, facts, pair, run, well_formed

FKEY = "FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE"
FKEY_PATH = ("tables", "public.orders", "constraints", "orders_user_id_fkey", "definition")


def not_valid(definition=FKEY):
    return assign(definition + " NOT VALID", *FKEY_PATH)


def interesting(findings):
    return [f for f in checks(findings) if f[2] != "postgres.audit_role_can_write"]


# --- NOT VALID -------------------------------------------------------------------------------------


def test_not_valid_in_production_only_is_one_high_policy_finding_not_a_definition_change_too():
    findings = pair(None, not_valid())
    assert interesting(findings) == [
        ("public.orders.orders_user_id_fkey", "policy", "postgres.constraint_not_valid"),
    ]
    finding = findings[0] if findings[0]["check"] == "postgres.constraint_not_valid" else findings[1]
    well_formed(finding)
    assert (finding["severity"], finding["environments"]) == ("high", ["prod"])
    assert finding["values"] == {"dev": "validated", "prod": "NOT VALID"}
    assert "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_id_fkey;" in finding["recommendation"]


def test_not_valid_everywhere_is_a_medium_policy_finding_for_production_only():
    findings = pair(not_valid(), not_valid())
    assert interesting(findings) == [("public.orders.orders_user_id_fkey", "policy", "postgres.constraint_not_valid")]
    assert [f["severity"] for f in findings if f["check"] == "postgres.constraint_not_valid"] == ["medium"]


def test_not_valid_outside_production_is_a_validation_difference():
    findings = pair(not_valid(), None)
    assert interesting(findings) == [("public.orders.orders_user_id_fkey", "changed", "postgres.constraint_changed")]
    changed = next(f for f in findings if f["check"] == "postgres.constraint_changed")
    assert changed["severity"] == "medium" and "validation" in changed["message"]


def test_without_production_a_validation_difference_is_the_only_finding():
    dev, prod = database(), database()
    not_valid()(prod)
    findings = run(facts(app=dev), facts(app=prod), production=set())
    assert interesting(findings) == [("public.orders.orders_user_id_fkey", "changed", "postgres.constraint_changed")]


def test_a_definition_change_and_not_valid_are_two_findings():
    findings = pair(None, not_valid(FKEY.replace(" ON DELETE CASCADE", "")))
    assert interesting(findings) == [
        ("public.orders.orders_user_id_fkey", "changed", "postgres.constraint_changed"),
        ("public.orders.orders_user_id_fkey", "policy", "postgres.constraint_not_valid"),
    ]
    changed = next(f for f in findings if f["check"] == "postgres.constraint_changed")
    assert changed["severity"] == "high" and "validation" not in changed["message"]


def test_a_literal_that_reads_not_valid_is_not_the_mark():
    check = ("tables", "public.orders", "constraints", "orders_total_check", "definition")
    findings = pair(None, assign("CHECK ((note <> ' NOT VALID'::text))", *check))
    assert "postgres.constraint_not_valid" not in [f["check"] for f in findings]


# --- NOT VALID on domains -----------------------------------------------------------------------------

EMAIL = "public.email_address"
AT_CHECK = "CHECK ((VALUE ~ '@'::text))"


def domain_constraints(named, domain=EMAIL):
    """The domain's constraints, by name ({name: definition}) and as the list every domain has."""

    def mutate(db):
        record = db["catalog"]["domains"].setdefault(
            domain, {"base_type": "text", "nullable": True, "default": None, "constraints": []}
        )
        record["named_constraints"] = dict(named)
        record["constraints"] = sorted(named.values())

    return mutate


def test_a_domain_constraint_not_valid_in_production_only_is_one_high_policy_finding():
    findings = pair(
        domain_constraints({"email_at": AT_CHECK}), domain_constraints({"email_at": AT_CHECK + " NOT VALID"})
    )
    assert interesting(findings) == [("public.email_address.email_at", "policy", "postgres.constraint_not_valid")]
    finding = next(f for f in findings if f["check"] == "postgres.constraint_not_valid")
    well_formed(finding)
    assert (finding["severity"], finding["environments"]) == ("high", ["prod"])
    assert finding["values"] == {"dev": "validated", "prod": "NOT VALID"}
    assert "Constraint email_at of domain public.email_address on prod is NOT VALID" in finding["message"]
    assert finding["recommendation"] == (
        "On prod, fix the values that break it, then: ALTER DOMAIN public.email_address VALIDATE CONSTRAINT "
        "email_at; (it reads every column of the domain, holding a SHARE lock on each of their tables: writes to "
        "them wait), as dev has it validated."
    )


def test_a_domain_constraint_not_valid_everywhere_is_medium_with_quoted_names():
    odd = domain_constraints({"Odd Check": "CHECK ((VALUE <> ''::text)) NOT VALID"}, domain="public.Odd Domain")
    findings = pair(odd, odd)
    assert interesting(findings) == [("public.Odd Domain.Odd Check", "policy", "postgres.constraint_not_valid")]
    finding = findings[0]
    assert finding["severity"] == "medium" and finding["values"] == {"dev": "NOT VALID", "prod": "NOT VALID"}
    assert 'ALTER DOMAIN public."Odd Domain" VALIDATE CONSTRAINT "Odd Check";' in finding["recommendation"]
    assert "as dev has it validated" not in finding["recommendation"]


def test_a_domain_constraint_not_valid_outside_production_is_a_validation_difference():
    findings = pair(
        domain_constraints({"email_at": AT_CHECK + " NOT VALID"}), domain_constraints({"email_at": AT_CHECK})
    )
    assert interesting(findings) == [("public.email_address", "changed", "postgres.domain_changed")]
    assert findings[0]["severity"] == "medium" and "validation" in findings[0]["message"]


def test_without_production_a_domain_validation_difference_is_the_only_finding():
    dev, prod = database(), database()
    domain_constraints({"email_at": AT_CHECK})(dev)
    domain_constraints({"email_at": AT_CHECK + " NOT VALID"})(prod)
    findings = run(facts(app=dev), facts(app=prod), production=set())
    assert interesting(findings) == [("public.email_address", "changed", "postgres.domain_changed")]


def test_a_domain_constraint_changed_and_not_valid_are_two_findings():
    findings = pair(
        domain_constraints({"email_at": AT_CHECK}),
        domain_constraints({"email_at": "CHECK ((VALUE ~ '@.'::text)) NOT VALID"}),
    )
    assert interesting(findings) == [
        ("public.email_address", "changed", "postgres.domain_changed"),
        ("public.email_address.email_at", "policy", "postgres.constraint_not_valid"),
    ]
    changed = next(f for f in findings if f["check"] == "postgres.domain_changed")
    assert changed["severity"] == "high" and "validation" not in changed["message"]


def test_domains_without_names_and_a_literal_reading_not_valid_are_no_finding():
    literal = domain_constraints({"email_note": "CHECK ((VALUE <> ' NOT VALID'::text))"})
    assert interesting(pair(literal, literal)) == []
    assert interesting(pair()) == []  # facts without named_constraints (collected before they were read)


# --- publications: row filters and column lists ------------------------------------------------------

PUBLICATION = {
    "all_tables": False,
    "insert": True,
    "update": True,
    "delete": True,
    "truncate": True,
    "via_root": False,
    "tables": ["public.orders", "public.users"],
    "schemas": None,
    "filters": {"public.orders": {"where": "(total > (0)::numeric)", "columns": ["id", "total"]}},
}


def publish(publication):
    return assign({"pub": publication}, "publications")


@pytest.mark.parametrize(
    "change, attribute",
    [
        ({"public.orders": {"where": "(total > (10)::numeric)", "columns": ["id", "total"]}}, "row filter"),
        ({"public.orders": {"where": "(total > (0)::numeric)", "columns": ["id", "status", "total"]}}, "column list"),
        ({}, "row filter and column list"),
        (
            {
                "public.orders": {"where": "(total > (0)::numeric)", "columns": ["id", "total"]},
                "public.users": {"where": None, "columns": ["id"]},
            },
            "column list",
        ),
    ],
)
def test_a_published_tables_row_filter_or_column_list(change, attribute):
    findings = pair(publish(PUBLICATION), publish(dict(PUBLICATION, filters=change)))
    (finding,) = findings_of(findings, "postgres.publication_table_changed")
    well_formed(finding)
    assert finding["key"] in ("publications.pub.public.orders", "publications.pub.public.users")
    assert "differs in %s" % attribute in finding["message"] and finding["severity"] == "high"


def test_a_table_published_on_one_side_only_is_the_publications_finding_alone():
    prod = dict(PUBLICATION, tables=["public.users"], filters={})
    findings = pair(publish(PUBLICATION), publish(prod))
    assert interesting(findings) == [("publications.pub", "changed", "postgres.publication_changed")]


def test_publication_schemas_compare_as_a_set():
    findings = pair(
        publish(dict(PUBLICATION, schemas=["billing", "public"])),
        publish(dict(PUBLICATION, schemas=["public", "billing"])),
    )
    assert interesting(findings) == []
    findings = pair(
        publish(dict(PUBLICATION, schemas=["billing"])),
        publish(PUBLICATION),
    )
    assert interesting(findings) == [("publications.pub", "changed", "postgres.publication_changed")]


# --- large objects ----------------------------------------------------------------------------------


def large(owners, truncated=False):
    return {
        "count": sum(entry["count"] for entry in owners.values()),
        "truncated": truncated,
        "owners": owners,
    }


def owner(**acls):
    return {"count": sum(acls.values()), "acls": dict(acls)}


DEFAULT = "(owner): SELECT, UPDATE"
PUBLIC_READ = "(owner): SELECT, UPDATE; PUBLIC: SELECT"


def findings_of(findings, check):
    return [f for f in findings if f["check"] == check]


def test_large_objects_compared_by_acl_not_by_oid_nor_count():
    dev = large({"(database owner)": {"count": 3, "acls": {DEFAULT: 3}}})
    prod = large({"(database owner)": {"count": 900, "acls": {DEFAULT: 900}}})
    assert interesting(pair(assign(dev, "large_objects"), assign(prod, "large_objects"))) == []


def test_an_acl_only_prod_has_is_high_and_one_only_dev_has_is_medium():
    dev = large({"(database owner)": {"count": 3, "acls": {DEFAULT: 3}}})
    prod = large({"(database owner)": {"count": 5, "acls": {DEFAULT: 4, PUBLIC_READ: 1}}})
    findings = findings_of(
        pair(assign(dev, "large_objects"), assign(prod, "large_objects")), "postgres.large_object_privilege_changed"
    )
    (finding,) = findings
    well_formed(finding)
    assert (finding["key"], finding["severity"]) == ("large_objects.owned by (database owner)", "high")
    assert finding["values"]["prod"] == "5 large objects: 4 × %s; 1 × %s" % (DEFAULT, PUBLIC_READ)
    assert "prod has large objects with %s" % PUBLIC_READ in finding["message"]
    (finding,) = findings_of(
        pair(assign(prod, "large_objects"), assign(dev, "large_objects")), "postgres.large_object_privilege_changed"
    )
    assert finding["severity"] == "medium" and "none with %s" % PUBLIC_READ in finding["message"]


def test_large_objects_of_an_owner_on_one_side_only_or_a_missing_role_are_not_compared():
    dev = large({"(database owner)": {"count": 1, "acls": {DEFAULT: 1}}, "loader": {"count": 1, "acls": {DEFAULT: 1}}})
    prod = large({"(database owner)": {"count": 1, "acls": {DEFAULT: 1}}, "ghost": {"count": 2, "acls": {"": 2}}})
    assert interesting(pair(assign(dev, "large_objects"), assign(prod, "large_objects"))) == []


def test_too_many_distinct_acls_are_said_not_compared():
    dev = large({"(database owner)": {"count": 1, "acls": {DEFAULT: 1}}})
    prod = large({"(database owner)": {"count": 1, "acls": {PUBLIC_READ: 1}}}, truncated=True)
    findings = pair(assign(dev, "large_objects"), assign(prod, "large_objects"))
    assert interesting(findings) == [("large_objects", "unknown", "postgres.large_object_privilege_unknown")]
    well_formed(findings_of(findings, "postgres.large_object_privilege_unknown")[0])
