"""How values are shown in report cells: secrets never in clear, equal secrets share a letter."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import (
    any_secret,
    change_rating,
    record_cells,
    record_identity,
    record_text,
    reused_secret,
    secret_letters,
)


def record(fp, secret=True, display=None, length_class="8-15", empty=False):
    return {"secret": secret, "display": display, "fp": fp, "length_class": length_class, "empty": empty}


def test_letters_follow_column_order_and_equal_values_share_one():
    records = [record("x"), None, record("y"), record("x"), record("z", secret=False, display="v")]
    assert secret_letters(records) == {"x": "A", "y": "B"}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, None),
        (record("p", secret=False, display="INFO"), "INFO"),
        (record("p", secret=False, display=None), ""),
        (record("x"), "‹secret A, 8-15 chars›"),
        (record("e", empty=True, length_class="empty"), "‹empty secret›"),
        (record("x", display="postgresql://u:***@db/x"), "postgresql://u:***@db/x ‹secret A, 8-15 chars›"),
    ],
)
def test_record_text(value, shown):
    assert record_text(value, {"x": "A"}) == shown


def test_record_cells_letter_a_row_in_column_order():
    row = {"dev": record("y"), "prod/web1": record("x"), "prod/web2": None, "prod/web3": record("y")}
    assert record_cells(row, ["dev", "prod/web1", "prod/web2", "prod/web3"]) == {
        "dev": "‹secret A, 8-15 chars›",
        "prod/web1": "‹secret B, 8-15 chars›",
        "prod/web2": None,
        "prod/web3": "‹secret A, 8-15 chars›",
    }


def test_record_identity_and_any_secret():
    assert record_identity(None) is None
    assert record_identity(record("x")) == ("x", True)
    assert record_identity(record("x", secret=False, display="v")) == ("x", False)
    assert any_secret([None, record("x", secret=False, display="v")]) is False
    assert any_secret([None, record("x")]) is True


def shared(fp, empty=False):
    return dict(record(fp, empty=empty), secret_fp="s-" + fp)


@pytest.mark.parametrize(
    ("records", "reused"),
    [
        ({"dev": shared("a"), "prod": shared("a")}, ["dev", "prod"]),
        ({"dev": shared("a"), "prod": shared("b")}, None),
        ({"dev": shared("a", empty=True), "prod": shared("a", empty=True)}, None),  # empty: another check
        ({"prod": shared("a"), "prod/web2": shared("a")}, None),  # production only: not a reuse
        ({"dev": shared("a"), "staging": shared("a"), "prod": shared("b")}, None),  # none in production
        ({"dev": shared("b"), "staging": shared("a"), "prod": shared("a")}, ["staging", "prod"]),
        ({"dev": dict(record("a", secret=False, display="v"), secret_fp="s-a"), "prod": shared("a")}, None),
    ],
)
def test_reused_secret_spans_production_and_another_environment(records, reused):
    assert reused_secret(records, {"prod", "prod/web2"}) == reused


def test_change_rating_of_a_secret_row_is_info_with_a_note():
    assert change_rating([None, record("x")]) == ("info", " (compared by fingerprint only)")
    assert change_rating([record("x", secret=False, display="v")], "medium") == ("medium", "")
