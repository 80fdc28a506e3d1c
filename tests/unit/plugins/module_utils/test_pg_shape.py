"""Shaping psql's output into facts (pg_shape), without a server: the pure helpers."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import pg_shape

KEY = b"k" * 32
# The shape of a GitHub token (redact_text masks it): assembled here so that no scanner flags it.
FUNCTION_CANARY = "gh" + "p_" + "Zq8" * 12


def test_secret_hash_changes_with_the_secret_not_with_the_run():
    one, hash_one = pg_shape.redacted_and_hash("RETURN '%s';" % FUNCTION_CANARY, KEY)
    two, hash_two = pg_shape.redacted_and_hash("RETURN '%s';" % (FUNCTION_CANARY[:-1] + "Z"), KEY)
    assert one == two and hash_one != hash_two
    assert pg_shape.redacted_and_hash("RETURN '%s';" % FUNCTION_CANARY, KEY)[1] == hash_one


def test_migration_helpers():
    assert pg_shape.shape_migrations(None) == ({}, [])
    migrations, skipped = pg_shape.shape_migrations(
        {"rails": {"table": "s.m", "read": {"ids": [], "dirty": None}}, "knex": {"table": "s.k", "skipped": "x"}}
    )
    assert migrations == {"rails": {"table": "s.m", "applied": [], "heads": [], "count": 0, "dirty": None}}
    assert skipped == [("s.k", "x")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", ""),
        ("\n  SELECT 1;  \r\n\r\n", "  SELECT 1;"),
        ("a \rb\t\n", "a\nb"),
    ],
)
def test_normalise_text(raw, expected):
    assert pg_shape.normalise_text(raw) == expected


def test_split_sections_ignores_text_before_the_first_marker():
    out = 'noise\n@@envparity:catalog\n{"a":\n 1}\n@@envparity:migrations\n@@envparity:end\n'
    assert pg_shape.split_sections(out) == {"catalog": '{"a":\n 1}', "migrations": "", "end": ""}
