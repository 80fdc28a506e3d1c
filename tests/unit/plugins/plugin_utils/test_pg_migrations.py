"""Migration state compared across environments (pg_migrations)."""

import copy

import pytest

from tests.pg_facts import (
    checks,
    database,
    facts,
    migrations,
    run,
    well_formed,
)

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
