"""The other object kinds (plugins/plugin_utils/pg_kinds.py) and the tables' storage, inheritance
and sequences' ownership (pg_objects), on facts built in the contract's shape."""

import pytest

from tests.pg_facts import assign, checks, delete, pair, view, well_formed

TRIGGER = {
    "definition": "CREATE TRIGGER v_ins INSTEAD OF INSERT ON public.v_active_users FOR EACH ROW",
    "enabled": "origin",
}
INDEX = {
    "definition": "CREATE UNIQUE INDEX m_key ON public.v_active_users USING btree (id)",
    "unique": True,
    "primary": False,
}


def test_a_views_trigger_and_a_materialized_views_index():
    dev_view = dict(view("x"), triggers={"v_ins": TRIGGER}, indexes={"m_key": INDEX})
    prod_view = dict(view("x"), triggers={"v_ins": dict(TRIGGER, enabled="disabled")}, indexes={})
    findings = pair(
        assign(dev_view, "views", "public.v_active_users"), assign(prod_view, "views", "public.v_active_users")
    )
    assert checks(findings) == [
        ("public.v_active_users.m_key", "missing", "postgres.index_missing"),
        ("public.v_active_users.v_ins", "changed", "postgres.trigger_changed"),
    ]
    for finding in findings:
        well_formed(finding)


def test_the_parts_of_a_view_missing_on_a_side_are_not_repeated():
    dev_view = dict(view("x"), triggers={"v_ins": TRIGGER})
    findings = pair(assign(dev_view, "views", "public.v_active_users"), delete("views", "public.v_active_users"))
    assert checks(findings) == [("public.v_active_users", "missing", "postgres.view_missing")]


@pytest.mark.parametrize(
    "section, record, change, check",
    [
        ("collations", {"provider": "icu", "locale": "und", "collate": None, "ctype": None, "deterministic": True},
         {"deterministic": False}, "postgres.collation_changed"),
        ("composites", {"attributes": [["a", "integer"], ["b", "text"]]},
         {"attributes": [["b", "text"], ["a", "integer"]]}, "postgres.composite_changed"),
        ("ranges", {"subtype": "double precision", "collation": None, "opclass": "float8_ops", "canonical": None,
                    "subdiff": None}, {"subdiff": "public.float_diff"}, "postgres.range_changed"),
        ("event_triggers", {"event": "ddl_command_start", "function": "public.guard", "enabled": "origin",
                            "tags": ["DROP TABLE"]}, {"enabled": "disabled"}, "postgres.event_trigger_changed"),
        ("publications", {"all_tables": False, "insert": True, "update": True, "delete": True, "truncate": True,
                          "via_root": False, "tables": ["public.users"]}, {"tables": ["public.orders", "public.users"]},
         "postgres.publication_changed"),
        ("subscriptions", {"enabled": True, "slot": "s1", "publications": ["p1"]}, {"enabled": False},
         "postgres.subscription_changed"),
    ],
)  # fmt: skip
def test_each_kind_missing_extra_and_changed(section, record, change, check):
    name = {"event_triggers": "guard", "publications": "pub", "subscriptions": "sub"}.get(section, "public.thing")
    key = {"event_triggers": "event_triggers.", "publications": "publications.", "subscriptions": "subscriptions."}.get(
        section, ""
    ) + name
    base = check[: -len("_changed")]
    assert checks(pair(assign({name: record}, section), assign({}, section))) == [(key, "missing", base + "_missing")]
    assert checks(pair(assign({}, section), assign({name: record}, section))) == [(key, "extra", base + "_extra")]
    changed = pair(assign({name: record}, section), assign({name: dict(record, **change)}, section))
    assert checks(changed) == [(key, "changed", check)]
    well_formed(changed[0])


def test_event_trigger_tags_and_publication_tables_compare_as_sets():
    trigger = {"event": "ddl_command_start", "function": "public.guard", "enabled": "origin", "tags": ["A", "B"]}
    assert (
        pair(assign({"g": trigger}, "event_triggers"), assign({"g": dict(trigger, tags=["B", "A"])}, "event_triggers"))
        == []
    )


def test_rules_of_a_missing_table_are_not_repeated():
    rules = {"public.orders.no_delete": {"relation": "public.orders", "definition": "CREATE RULE no_delete …"}}
    findings = pair(assign(rules, "rules"), delete("tables", "public.orders"))
    assert checks(findings) == [("public.orders", "missing", "postgres.table_missing")]
    assert checks(pair(assign(rules, "rules"), assign({}, "rules"))) == [
        ("public.orders.no_delete", "missing", "postgres.rule_missing")
    ]


def comment(text):
    return {"text": text, "hash": "h-" + text}


def test_comments_changed_missing_and_extra_on_objects_both_sides_have():
    dev = {
        "table public.users": comment("People"),
        "column public.users.email": comment("Login"),
        "index public.users.users_pkey": comment("Key"),
    }
    prod = {
        "table public.users": comment("Persons"),
        "function public.touch()": comment("Sets updated_at"),
        "index public.users.users_pkey": comment("Key"),
        "column public.users.nickname": comment("no such column"),
    }
    findings = pair(assign(dev, "comments"), assign(prod, "comments"))
    assert checks(findings) == [
        ("comments.column public.users.email", "missing", "postgres.comment_missing"),
        ("comments.function public.touch()", "extra", "postgres.comment_extra"),
        ("comments.table public.users", "changed", "postgres.comment_changed"),
    ]
    assert all(finding["severity"] == "low" for finding in findings)
    assert findings[2]["message"] == 'The comment on table public.users differs: dev="People"; prod="Persons".'


# Each kind of object a comment can be on, with the catalog section that lists it (a key there).
COMMENTED = [
    ("rule public.orders.no_delete", "rules", "public.orders.no_delete", {"relation": "public.orders"}),
    ("event trigger guard", "event_triggers", "guard", {"event": "ddl_command_start"}),
    ("publication pub", "publications", "pub", {"tables": []}),
    ("subscription sub", "subscriptions", "sub", {"publications": ["pub"]}),
    ("extension pg_trgm", "extensions", "pg_trgm", None),
    ("database", None, None, None),
]


@pytest.mark.parametrize("key, section, name, record", COMMENTED)
def test_comments_on_rules_event_triggers_publications_subscriptions_extensions_and_the_database(
    key, section, name, record
):
    def with_object(text):
        def mutate(db):
            if section and record is not None:
                db["catalog"].setdefault(section, {})[name] = record
            db["catalog"]["comments"] = {key: comment(text)} if text else {}

        return mutate

    changed = pair(with_object("One"), with_object("Two"))
    assert checks(changed) == [("comments." + key, "changed", "postgres.comment_changed")]
    assert changed[0]["message"] == 'The comment on %s differs: dev="One"; prod="Two".' % key
    well_formed(changed[0])
    assert checks(pair(with_object("One"), with_object(None))) == [
        ("comments." + key, "missing", "postgres.comment_missing")
    ]
    if section:  # on an object one side lacks: that object's own finding, not its comment's
        findings = pair(with_object("One"), assign({}, section))
        assert not [f for f in findings if f["key"].startswith("comments.")]


def test_a_role_comment_is_compared_with_the_roles():
    findings = pair(assign({"role app": comment("The application")}, "comments"))
    assert checks(findings) == [("comments.role app", "missing", "postgres.comment_missing")]
    assert findings[0]["severity"] == "low"
    # A role one side lacks: the role's own finding.
    lacking = pair(assign({"role app": comment("The application")}, "comments"), delete("roles", "app"))
    assert checks(lacking) == [("roles.app", "missing", "postgres.role_missing")]


def test_a_comment_whose_redacted_text_is_the_same_still_differs_by_hash():
    dev = {"table public.users": {"text": "key ‹redacted›", "hash": "one"}}
    prod = {"table public.users": {"text": "key ‹redacted›", "hash": "two"}}
    assert checks(pair(assign(dev, "comments"), assign(prod, "comments"))) == [
        ("comments.table public.users", "changed", "postgres.comment_changed")
    ]


@pytest.mark.parametrize(
    "field, value, severity",
    [
        ("persistence", "unlogged", "high"),
        ("replica_identity", "full", "high"),
        ("options", ["fillfactor=70"], "low"),
        ("access_method", "columnar", "low"),
        ("tablespace", "fast", "low"),
    ],
)
def test_table_storage_changed(field, value, severity):
    findings = pair(mutate_prod=assign(value, "tables", "public.orders", field))
    assert checks(findings) == [("public.orders", "changed", "postgres.table_changed")]
    assert findings[0]["severity"] == severity


def test_inheritance_and_partition_bounds_are_partitioning():
    findings = pair(mutate_prod=assign(["public.users"], "tables", "public.orders", "inherits"))
    assert checks(findings) == [("public.orders", "changed", "postgres.partitioning_changed")]
    assert "inherited tables" in findings[0]["message"]


@pytest.mark.parametrize(
    "field, value, phrase",
    [("owned_by", "public.users.id", "owned by"), ("start", "1000", "start"), ("cache", "20", "cache"),
     ("unlogged", True, "persistence")],
)  # fmt: skip
def test_sequence_ownership_start_cache_and_persistence(field, value, phrase):
    findings = pair(mutate_prod=assign(value, "sequences", "public.orders_id_seq", field))
    assert checks(findings) == [("public.orders_id_seq", "changed", "postgres.sequence_changed")]
    assert "differs in %s" % phrase in findings[0]["message"]
