"""New / persisting / changed / resolved across synthetic runs, first seen and age, the gate on new
findings, a previous report as the earlier run (also of schema version 1)."""

import json

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import timeline
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import make_finding, with_ids

DAY = 86400
T0 = 1763107200  # 2025-11-14T08:00:00Z


def stamp(when):
    import time

    return time.strftime(timeline.STAMP, time.gmtime(when))


def finding(key, value="x", severity="high", subject="app", area="env", kind="changed", check=None, measured=False):
    return make_finding(
        area=area,
        subject=subject,
        key=key,
        kind=kind,
        check=check or "%s.value_changed" % area,
        severity=severity,
        values={"dev": "a", "prod": value},
        environments=["prod"],
        message="m",
        recommendation="r",
        measured=measured,
    )


def audit_run(findings, when, previous, areas=("env",)):
    """One run: compare, then what the store would keep of it (as read_history gives it back)."""
    with_ids(findings)
    outcome = timeline.compare_with(findings, list(areas), previous, stamp(when), when)
    rows = [timeline.state_row(f) for f in findings] + outcome["carried"]
    kept = {
        "areas": list(areas),
        "generated_at": stamp(when),
        "recorded_at": when,
        "states": {row["id"]: row for row in rows},
    }
    return outcome, kept


def test_state_transitions_across_three_runs():
    first, kept = audit_run([finding("DEBUG"), finding("LOG_LEVEL"), finding("OLD")], T0, None)
    assert first["counts"] == {"new": 3, "persisting": 0, "changed": 0, "resolved": 0}

    second_findings = [finding("DEBUG"), finding("LOG_LEVEL", value="y"), finding("FRESH")]
    second, kept = audit_run(second_findings, T0 + 23 * DAY, kept)
    states = {f["key"]: (f["state"], f["first_seen"], f["age_days"]) for f in second_findings}
    assert states == {
        "DEBUG": ("persisting", stamp(T0), 23),
        "LOG_LEVEL": ("changed", stamp(T0), 23),
        "FRESH": ("new", stamp(T0 + 23 * DAY), 0),
    }
    assert [(r["key"], r["age_days"], r["first_seen"]) for r in second["resolved"]] == [("OLD", 23, stamp(T0))]
    assert second["counts"] == {"new": 1, "persisting": 1, "changed": 1, "resolved": 1}

    third_findings = [finding("LOG_LEVEL", value="y"), finding("OLD")]
    third, _ = audit_run(third_findings, T0 + 30 * DAY, kept)
    states = {f["key"]: (f["state"], f["first_seen"]) for f in third_findings}
    # OLD came back: a new drift, its age counted again from now
    assert states == {"LOG_LEVEL": ("persisting", stamp(T0)), "OLD": ("new", stamp(T0 + 30 * DAY))}
    assert sorted(r["key"] for r in third["resolved"]) == ["DEBUG", "FRESH"]


def test_a_measured_finding_stays_persisting_while_its_figures_vary_and_another_does_not():
    _, kept = audit_run([finding("timing", "610 ms", measured=True), finding("DEBUG", "1")], T0, None)
    later = [finding("timing", "655 ms", measured=True), finding("DEBUG", "2")]
    audit_run(later, T0 + DAY, kept)
    assert [(f["key"], f["state"]) for f in later] == [("timing", "persisting"), ("DEBUG", "changed")]


def test_a_subject_not_collected_now_is_carried_not_resolved_and_keeps_its_age():
    _, kept = audit_run([finding("DEBUG"), finding("LOG_LEVEL", subject="worker")], T0, None)
    blind = finding("*", subject="app", kind="unknown", check="collect.failed")
    outcome, kept = audit_run([blind, finding("LOG_LEVEL", subject="worker")], T0 + DAY, kept)
    assert outcome["resolved"] == [] and [r["key"] for r in outcome["carried"]] == ["DEBUG"]
    back = [finding("DEBUG"), finding("LOG_LEVEL", subject="worker")]
    audit_run(back, T0 + 5 * DAY, kept)
    assert (back[0]["state"], back[0]["first_seen"], back[0]["age_days"]) == ("persisting", stamp(T0), 5)


def test_an_area_not_compared_resolves_nothing_and_an_area_not_audited_is_left_alone():
    _, kept = audit_run([finding("DEBUG"), finding("main", area="git")], T0, None, areas=("env", "git"))
    not_compared = finding("*", subject="*", kind="unknown", check="audit.not_compared")
    outcome, _ = audit_run([not_compared], T0 + DAY, kept, areas=("env",))
    assert outcome["resolved"] == [] and [r["key"] for r in outcome["carried"]] == ["DEBUG"]


def test_a_run_limited_to_some_hosts_resolves_nothing_and_a_host_gone_changes_values():
    _, kept = audit_run([finding("DEBUG"), finding("LOG_LEVEL")], T0, None)
    limited = [finding("DEBUG")]
    with_ids(limited)
    outcome = timeline.compare_with(limited, ["env"], kept, stamp(T0 + DAY), T0 + DAY, partial=True)
    assert outcome["resolved"] == [] and [r["key"] for r in outcome["carried"]] == ["LOG_LEVEL"]
    # a host of the earlier run that no longer exists: same id, its column gone, so "changed"
    fewer = finding("DEBUG")
    fewer["values"] = {"dev": "a"}
    audit_run([fewer, finding("LOG_LEVEL")], T0 + 2 * DAY, kept)
    assert (fewer["state"], fewer["first_seen"]) == ("changed", stamp(T0))


def test_a_merged_finding_whose_lead_changes_keeps_its_history():
    change = finding("privileged", severity="low")
    _, kept = audit_run([change], T0, None)
    # next run: a policy check on the same fact leads, the change is merged under `also`
    policy = finding("privileged", severity="high", kind="policy", check="docker.privileged")
    policy["also"] = [{field: change[field] for field in ("kind", "check", "severity", "message", "recommendation")}]
    with_ids([policy])
    outcome = timeline.compare_with([policy], ["env"], kept, stamp(T0 + 3 * DAY), T0 + 3 * DAY)
    assert (policy["state"], policy["first_seen"], policy["age_days"]) == ("persisting", stamp(T0), 3)
    assert outcome["resolved"] == []
    rows = timeline.state_rows([policy], outcome["carried"])
    assert [(row["check"], row["first_seen"]) for row in rows] == [
        ("docker.privileged", stamp(T0)),
        ("env.value_changed", stamp(T0)),
    ]
    # and back: the change leads alone again, the policy is gone (resolved), the change persists
    kept = {"areas": ["env"], "recorded_at": T0 + 3 * DAY, "states": {row["id"]: row for row in rows}}
    back = [finding("privileged", severity="low")]
    outcome, _ = audit_run(back, T0 + 4 * DAY, kept)
    assert (back[0]["state"], back[0]["first_seen"]) == ("persisting", stamp(T0))
    assert [row["check"] for row in outcome["resolved"]] == ["docker.privileged"]
    # a fact resolved whole is one resolved entry, led by its most severe check
    outcome, _ = audit_run([], T0 + 5 * DAY, kept)
    assert [(row["check"], row["severity"]) for row in outcome["resolved"]] == [("docker.privileged", "high")]


def test_a_clock_that_went_back_gives_age_zero_and_says_so():
    _, kept = audit_run([finding("DEBUG")], T0, None)
    again = [finding("DEBUG")]
    outcome, _ = audit_run(again, T0 - 3 * DAY, kept)
    assert again[0]["state"] == "persisting" and again[0]["age_days"] == 0
    assert outcome["warnings"] and "clock is behind" in outcome["warnings"][0]


def test_the_gate_on_new_findings_ignores_known_and_expected_drift():
    _, kept = audit_run([finding("KNOWN")], T0, None)
    findings = [finding("KNOWN"), finding("NEW_LOW", severity="low"), finding("NEW_HIGH"), finding("WAIVED")]
    findings[3]["expected"] = True
    audit_run(findings, T0 + DAY, kept)
    closed = {"fail_on": "never", "tripped": False, "count": 0}
    assert timeline.new_gate(closed, findings, "high") == dict(closed, fail_on_new="high", new_count=1, tripped=True)
    assert timeline.new_gate(closed, findings, "critical")["tripped"] is False
    assert timeline.new_gate(closed, findings, "never") == dict(closed, fail_on_new="never", new_count=0)
    # the other gate still trips on its own
    assert timeline.new_gate(dict(closed, tripped=True, count=3), findings, "critical")["tripped"] is True


def write_report(path, findings, generated_at, version=2, **extra):
    document = {"tool": "envparity", "schema_version": version, "generated_at": generated_at, "areas": ["env"]}
    document.update(findings=findings, **extra)
    path.write_text(json.dumps(document))
    return str(path)


def test_a_previous_report_gives_the_same_comparison_as_the_store(tmp_path):
    old = [finding("DEBUG"), finding("OLD")]
    outcome, kept = audit_run(old, T0, None)
    path = write_report(tmp_path / "last.json", old, stamp(T0))
    previous = timeline.read_previous_report(path, 2)
    assert previous["states"] == kept["states"]
    now = [finding("DEBUG", value="changed")]
    outcome, _ = audit_run(now, T0 + 2 * DAY, previous)
    assert now[0]["state"] == "changed" and now[0]["age_days"] == 2
    assert [r["key"] for r in outcome["resolved"]] == ["OLD"]


def test_a_previous_report_of_schema_version_1_is_read_with_ids_computed(tmp_path):
    old = [finding("DEBUG")]
    for field in ("id",):
        old[0].pop(field, None)
    path = write_report(tmp_path / "v1.json", old, stamp(T0), version=1, summary={"by_severity": {"high": 1}})
    previous = timeline.read_previous_report(path, 2)
    now = [finding("DEBUG")]
    audit_run(now, T0 + DAY, previous)
    assert (now[0]["state"], now[0]["first_seen"]) == ("persisting", stamp(T0))
    assert previous["trend"] == [{"generated_at": stamp(T0), "unexpected": {"high": 1}}]


def test_a_first_seen_that_is_not_a_date_is_not_carried_on(tmp_path):
    old = [finding("DEBUG")]
    with_ids(old)
    old[0]["first_seen"] = "<b>yesterday</b>"
    previous = timeline.read_previous_report(write_report(tmp_path / "r.json", old, stamp(T0)), 2)
    now = [finding("DEBUG")]
    audit_run(now, T0 + DAY, previous)
    assert (now[0]["state"], now[0]["first_seen"]) == ("persisting", stamp(T0 + DAY))


def test_a_previous_reports_trend_keeps_only_points_of_the_right_shape(tmp_path):
    good = {"generated_at": stamp(T0), "unexpected": {"high": 2}}
    bad = [None, {"generated_at": 5, "unexpected": {}}, {"generated_at": "x", "unexpected": {"high": "2"}}]
    path = write_report(tmp_path / "r.json", [], stamp(T0 + DAY), history={"trend": [*bad, good]})
    assert timeline.read_previous_report(path, 2)["trend"] == [good]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ('{"tool": "other"}', "is not an envparity report"),
        ('{"tool": "envparity", "schema_version": 9, "findings": []}', "newer than this envparity reads"),
        ('{"tool": "envparity", "schema_version": 2, "findings": [{"area": 1}]}', "unknown shape"),
    ],
)
def test_a_previous_report_that_cannot_be_used_says_why(tmp_path, content, message):
    path = tmp_path / "last.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(timeline.PreviousReportError, match=message):
        timeline.read_previous_report(str(path), 2)


def test_age_is_in_whole_days_and_never_negative():
    assert timeline.age_days(stamp(T0), T0 + DAY - 1) == 0
    assert timeline.age_days(stamp(T0), T0 + DAY) == 1
    assert timeline.age_days(stamp(T0), T0 - DAY) == 0
    assert timeline.age_days("garbage", T0) == 0
