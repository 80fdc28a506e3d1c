"""How values are shown in report cells: secrets never in clear, equal secrets share a letter."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.secret_text import record_text, secret_letters


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
