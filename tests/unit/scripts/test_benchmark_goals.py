"""scripts/benchmark.py: the goals it holds the figures to (pure functions)."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from benchmark import (  # noqa: E402
    area_goals,
    area_raw_seconds,
    fleet_goals,
    parse_fleet,
    unreachable_reasons,
    verdict,
)


def sections(prod, dev):
    """Floor sections per host, in seconds: {section: s} for prod and dev."""
    return {
        host: {name: {"median_s": seconds, "bytes": 0} for name, seconds in values.items()}
        for host, values in (("prod", prod), ("dev", dev))
    }


FLOOR = sections(
    {"env": 0.002, "git": 0.010, "deploy": 0.010, "engine": 0.080, "compose": 0.040, "psql": 0.300},
    {"env": 0.004, "git": 0.020, "deploy": 0.005, "engine": 0.090, "compose": 0.050, "psql": 0.200},
)


def test_raw_time_of_an_area_is_its_sections_on_the_slower_host():
    assert area_raw_seconds(FLOOR, "git") == pytest.approx(0.025)  # dev 0.020 + 0.005 > prod 0.010 + 0.010
    assert area_raw_seconds(FLOOR, "docker") == pytest.approx(0.140)
    assert area_raw_seconds(FLOOR, "postgres") == pytest.approx(0.300)
    assert area_raw_seconds(FLOOR, "an-area-without-floor") is None


def test_area_goals_margin_and_verdict():
    audits = {
        "env": {"median_s": 1.60},
        "docker": {"median_s": 1.80},
        "postgres": {"median_s": 1.90},
        "new": {"median_s": 1.70},
    }
    rows = area_goals(audits, 1.50, FLOOR, ["env", "docker", "postgres", "new"])
    by_goal = {row["goal"].split(" ")[0]: row for row in rows}
    assert [row["goal"].split(" ")[0] for row in rows] == ["env-only", "env", "docker", "postgres", "new"]
    assert by_goal["env-only"]["over_s"] == pytest.approx(0.10)
    assert by_goal["env-only"]["margin_s"] == pytest.approx(0.05)
    assert by_goal["env-only"]["verdict"] == "PASS"
    assert by_goal["env"]["raw_s"] == pytest.approx(0.004)
    # docker: 1.80 - 1.50 - 0.14 = 0.16, over the 0.15 s allowed
    assert by_goal["docker"]["over_s"] == pytest.approx(0.16)
    assert by_goal["docker"]["verdict"] == "MISS"
    assert by_goal["docker"]["margin_s"] == pytest.approx(-0.01)
    # postgres: 1.90 - 1.50 - 0.30 = 0.10
    assert by_goal["postgres"]["verdict"] == "PASS"
    assert by_goal["postgres"]["margin_s"] == pytest.approx(0.05)
    # an area without floor sections: held to the ping floor alone, and says so
    assert by_goal["new"]["raw_s"] is None
    assert by_goal["new"]["verdict"] == "MISS"
    assert "no raw floor" in by_goal["new"]["goal"]


def test_fleet_goals_compare_the_largest_fleet_with_the_smallest():
    fleet = {
        1: {"audit": {"median_s": 2.0, "cpu_median_s": 1.5, "markdown_bytes": 10000}},
        10: {"audit": {"median_s": 3.0, "cpu_median_s": 2.0, "markdown_bytes": 12000}},
        50: {"audit": {"median_s": 7.0, "cpu_median_s": 4.95, "markdown_bytes": 16000}},
    }
    goals = fleet_goals(fleet)
    assert goals["sizes"] == [1, 50]
    assert goals["time_ratio"] == 3.5 and goals["time_ratio_verdict"] == "MISS"
    assert goals["cpu_per_extra_host_s"] == pytest.approx(0.0704, abs=1e-4)
    assert goals["cpu_per_extra_host_verdict"] == "MISS"
    assert goals["markdown_ratio"] == 1.6 and goals["markdown_ratio_verdict"] == "MISS"
    assert goals["ping_floor"] is None
    fleet[1]["ping_floor"] = {"median_s": 1.5, "cpu_median_s": 1.0}
    fleet[50]["ping_floor"] = {"median_s": 6.0, "cpu_median_s": 3.45}
    ping = fleet_goals(fleet)["ping_floor"]
    assert ping["time_ratio"] == 4.0
    assert ping["cpu_per_extra_host_s"] == pytest.approx(0.05)
    assert ping["audit_over_ping_s"] == [pytest.approx(0.5), pytest.approx(1.0)]
    fleet[50]["audit"].update(median_s=6.0, cpu_median_s=4.4, markdown_bytes=15000)
    goals = fleet_goals(fleet)
    assert (goals["time_ratio_verdict"], goals["cpu_per_extra_host_verdict"], goals["markdown_ratio_verdict"]) == (
        "PASS",
        "PASS",
        "PASS",
    )


def test_goal_is_inclusive():
    assert verdict(0.15, 0.15) == "PASS"
    assert verdict(0.1501, 0.15) == "MISS"


def test_parse_fleet():
    assert parse_fleet("50,1,50") == [1, 50]
    assert parse_fleet("10") == [10]
    for text in ("0,5", "a,b", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_fleet(text)


def test_unreachable_reasons_are_ssh_messages_once_each():
    refused = "Failed to connect to the host via ssh: kex_exchange_identification: Connection reset by peer"
    output = "\n".join(
        [
            "[ERROR]: Task failed: " + refused,
            'fatal: [prod-007]: UNREACHABLE! => {"changed": false, "msg": "Task failed: %s", "unreachable": true}'
            % refused,
            'fatal: [prod-031]: UNREACHABLE! => {"changed": false, "msg": "%s", "unreachable": true}' % refused,
            "fatal: [prod-040]: UNREACHABLE! => changed=false",
            "PLAY RECAP",
        ]
    )
    assert unreachable_reasons(output) == [refused, "changed=false"]
    assert unreachable_reasons("fatal: [x]: UNREACHABLE! =>") == ["no reason given"]
