"""Waivers: rules with an expiry (UTC date or a time with its zone), an owner, approver and
ticket; expired ones no longer hide their finding; the day boundary; expiring soon; line numbers."""

import calendar
import datetime

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.rules import (
    RulesError,
    apply_rules,
    parse_expiry,
    parse_rules,
)
from tests.unit.plugins.plugin_utils.test_timeline import finding


def at(text):
    return calendar.timegm(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).utctimetuple())


def debug():
    return finding("DEBUG", kind="policy", check="env.debug_enabled")


WAIVER = """\
rules:
  - path: env/app/LOG_LEVEL
    reason: dev logs more
  - path: env/app/DEBUG
    reason: debugging the payment incident
    expires: 2026-12-31
    owner: alice
    approver: bob
    ticket: OPS-42
"""


def applied(text, now):
    finding = debug()
    stale = apply_rules([finding], parse_rules(text, "rules.yml"), {"prod": "prod"}, now=now)
    return finding, stale


def test_a_date_waives_through_the_end_of_that_day_in_utc():
    finding, _ = applied(WAIVER, at("2026-12-31T23:59:59Z"))
    assert finding["expected"] is True and finding["waiver"]["state"] == "expiring"
    finding, stale = applied(WAIVER, at("2027-01-01T00:00:00Z"))
    assert finding["expected"] is False and finding["reason"] is None
    assert finding["waiver"] == {
        "state": "expired",
        "expires": "2027-01-01T00:00:00Z",
        "owner": "alice",
        "approver": "bob",
        "ticket": "OPS-42",
        "source": "rules.yml rule 2 (line 4)",
        "reason": "debugging the payment incident",
    }
    assert [rule["path"] for rule in stale] == ["env/app/LOG_LEVEL"]  # expired is reported as such, not stale


def test_expiring_soon_is_within_14_days_else_active():
    finding, _ = applied(WAIVER, at("2026-12-18T00:00:00Z"))  # 14 days before 2027-01-01T00:00Z
    assert finding["waiver"]["state"] == "expiring"
    finding, _ = applied(WAIVER, at("2026-12-17T23:59:59Z"))
    assert finding["waiver"]["state"] == "active" and finding["expected"] is True


def test_a_later_rule_in_force_still_waives_after_an_expired_one():
    text = WAIVER + "  - path: env/app/*\n    reason: the whole file is being migrated\n"
    finding, _ = applied(text, at("2027-02-01T00:00:00Z"))
    assert finding["expected"] is True and finding["reason"] == "the whole file is being migrated"
    assert "waiver" not in finding


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-12-31", "2027-01-01T00:00:00Z"),
        (datetime.date(2026, 12, 31), "2027-01-01T00:00:00Z"),
        ("2026-12-31T18:00:00+01:00", "2026-12-31T17:00:00Z"),
        ("2026-12-31T18:00:00Z", "2026-12-31T18:00:00Z"),
        (
            datetime.datetime(2026, 12, 31, 18, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
            "2026-12-31T23:00:00Z",
        ),
    ],
)
def test_expiry_forms_and_their_moment_in_utc(value, moment):
    assert parse_expiry(value, "r")["text"] == moment
    assert parse_expiry(value, "r")["at"] == at(moment)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("expires: 2026-12-31 18:00:00\n    owner: a", "has no time zone"),
        ("expires: 2026-12-31T18:00:00\n    owner: a", "has no time zone"),
        ("expires: next friday\n    owner: a", "must be a date"),
        ("expires: 2026-12-31", "must name its owner"),
        ("expires: 2026-12-31\n    owner: ''", "owner must be a non-empty string"),
        ("expires: [2026]\n    owner: a", "must be a date"),
    ],
)
def test_a_waiver_without_zone_or_owner_is_refused_with_its_line(rule, message):
    text = "rules:\n  - path: a\n    reason: r\n  - path: env/app/DEBUG\n    reason: r\n    %s\n" % rule
    with pytest.raises(RulesError, match=message) as caught:
        parse_rules(text, "rules.yml")
    assert "rules.yml rule 2 (line 4)" in str(caught.value)
