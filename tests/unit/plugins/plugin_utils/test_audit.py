"""From run directory to findings: columns, host states, cells, unknowns, rules, gate."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.collect import pack
from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.audit import (
    AuditConfigError,
    build_audit,
    build_columns,
)

GROUPS = {"all": ["d", "p1", "p2"], "dev": ["d"], "prod": ["p1", "p2"]}
REQUEST = {"env": {"project_dir": None, "files": [{"name": "app", "path": "a.env", "template": None}], "max_bytes": 10}}


def env_data(keys):
    records = {
        key: {
            "secret": False,
            "display": value,
            "fp": "fp:" + value,
            "secret_fp": None,
            "length": len(value),
            "empty": not value,
            "line": 1,
        }
        for key, value in keys.items()
    }
    return {
        "files": {
            "app": {
                "path": "/a.env",
                "status": "ok",
                "reason": None,
                "mode": "0600",
                "owner": "x",
                "group": "x",
                "size": 1,
                "keys": records,
                "duplicates": {},
                "errors": [],
                "template": None,
            }
        }
    }


def store(directory, host, data):
    run_dir.store_facts(directory, host, pack({"areas": {"env": {"status": "ok", "data": data}}}))


@pytest.mark.parametrize(
    ("environments", "participating", "labels"),
    [
        (["dev", "prod"], {"d", "p1", "p2"}, ["dev", "prod/p1", "prod/p2"]),
        (["dev", "prod"], {"d", "p1"}, ["dev", "prod"]),
        (["prod", "dev"], {"d", "p2"}, ["prod", "dev"]),
    ],
)
def test_columns(environments, participating, labels):
    assert [c["label"] for c in build_columns(environments, GROUPS, participating)] == labels


@pytest.mark.parametrize(
    ("environments", "groups", "message"),
    [
        ([], GROUPS, "drift_environments is empty"),
        (["dev", "staging"], GROUPS, "'staging' of drift_environments is not an inventory group"),
        (["dev", "prod"], {"dev": ["d"], "prod": ["d"]}, "host d is in two environments"),
    ],
)
def test_bad_environments_are_explained(environments, groups, message):
    with pytest.raises(AuditConfigError, match=message):
        build_columns(environments, groups, {"d", "p1", "p2"})


def test_build_audit_end_to_end(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({"A": "1", "B": "x"}))
    store(directory, "p1", env_data({"A": "2", "B": "x"}))
    run_dir.store_error(directory, "p2", {"host": "p2", "status": "unreachable", "reason": "Connection refused"})
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n  - {path: env/app/A, kinds: [changed], reason: sized per host}\n  - {path: env/x/*, reason: stale}\n"
    )
    audit = build_audit(
        directory, ["dev", "prod"], ["prod"], GROUPS, {h: REQUEST for h in ("d", "p1", "p2")}, [str(rules)], "high"
    )
    keys = [(f["key"], f["kind"], f["expected"]) for f in audit["findings"]]
    assert keys == [("*", "unknown", False), ("A", "changed", True)]
    unknown = audit["findings"][0]
    assert unknown["values"] == {
        "dev": "collected",
        "prod/p1": "collected",
        "prod/p2": {"unknown": "unreachable: Connection refused"},
    }
    # env could not be collected everywhere, so an unused env rule is not evaluated, not stale
    assert audit["stale_rules"] == []
    assert audit["gate"] == {"fail_on": "high", "tripped": True, "count": 1}
    assert audit["errors"] == [{"host": "p2", "area": None, "message": "unreachable: Connection refused"}]


def test_a_failed_area_is_unknown_and_a_missing_host_is_not_collected(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({"A": "1"}))
    run_dir.store_facts(
        directory, "p1", pack({"areas": {"env": {"status": "failed", "reason": "PermissionError: denied"}}})
    )
    audit = build_audit(
        directory, ["dev", "prod"], ["prod"], GROUPS, {h: REQUEST for h in ("d", "p1", "p2")}, [], "never"
    )
    (unknown,) = [f for f in audit["findings"] if f["check"] == "collect.failed"]
    assert unknown["values"]["prod/p1"] == {"unknown": "area env failed: PermissionError: denied"}
    assert unknown["values"]["prod/p2"]["unknown"].startswith("not collected")
    assert audit["gate"]["tripped"] is False
    # prod gave nothing to compare with: the audit says so, and that fails any gate but never
    (alone,) = [f for f in audit["findings"] if f["check"] == "audit.not_compared"]
    assert (alone["area"], alone["kind"], alone["severity"]) == ("env", "unknown", "critical")
    assert "dev" in alone["message"] and "prod gave nothing to compare with" in alone["message"]
    assert audit["compared"] == {"env": ["dev"]}


def test_rules_for_areas_not_audited_are_not_stale(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({}))
    store(directory, "p1", env_data({}))
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - {path: docker/web/ports, reason: r}\n  - {path: env/app/Z, reason: r}\n")
    requests = {"d": REQUEST, "p1": REQUEST}
    audit = build_audit(directory, ["dev", "prod"], [], GROUPS, requests, [str(rules)], "never")
    assert [r["path"] for r in audit["stale_rules"]] == ["env/app/Z"]
    # a single column (e.g. --limit) cannot show a difference: no rule is called stale
    alone = build_audit(directory, ["dev"], [], GROUPS, {"d": REQUEST}, [str(rules)], "never")
    assert alone["stale_rules"] == []


def test_an_area_configured_on_one_host_only_is_a_finding_never_unknown(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({"A": "1"}))
    run_dir.store_facts(directory, "p1", pack({"areas": {}}))
    audit = build_audit(directory, ["dev", "prod"], ["prod"], GROUPS, {"d": REQUEST, "p1": {}}, [], "high")
    found = {(f["subject"], f["key"], f["kind"], f["check"], f["severity"]) for f in audit["findings"]}
    assert found == {
        ("app", "*", "missing", "env.not_configured", "medium"),
        ("*", "*", "unknown", "audit.not_compared", "critical"),
    }
    (missing,) = [f for f in audit["findings"] if f["check"] == "env.not_configured"]
    assert missing["values"] == {"dev": "configured", "prod": "not configured"}
    assert missing["environments"] == ["prod"]
    assert audit["gate"]["tripped"] is True
    assert audit["environments"] == [{"name": "dev", "hosts": ["d"]}, {"name": "prod", "hosts": ["p1"]}]


def test_an_environment_without_any_host_in_the_run_is_listed(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({"A": "1"}))
    audit = build_audit(directory, ["dev", "prod"], [], GROUPS, {"d": REQUEST}, [], "never")
    assert audit["environments"] == [{"name": "dev", "hosts": ["d"]}, {"name": "prod", "hosts": []}]
    assert [f["check"] for f in audit["findings"]] == ["audit.not_compared"]


@pytest.mark.parametrize("fails", [False, True])
def test_the_diff_runs_without_the_garbage_collector_which_is_restored_after(tmp_path, monkeypatch, fails):
    import gc
    import types

    from ansible_collections.envparity.audit.plugins.plugin_utils import audit as audit_module

    seen = []

    def diff(labels, cells, context):
        seen.append(gc.isenabled())
        if fails:
            raise RuntimeError("diff failed")
        return []

    monkeypatch.setattr(
        audit_module, "diff_rules", lambda area: types.SimpleNamespace(diff=diff, subjects=lambda r: [])
    )
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({"A": "1"}))
    assert gc.isenabled()
    if fails:
        with pytest.raises(RuntimeError):
            build_audit(directory, ["dev"], [], GROUPS, {"d": REQUEST}, [], "never")
    else:
        build_audit(directory, ["dev"], [], GROUPS, {"d": REQUEST}, [], "never")
    assert seen == [False]
    assert gc.isenabled()


def test_a_host_whose_variables_did_not_validate_is_unknown_for_every_subject(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({"A": "1"}))
    run_dir.store_request(directory, "p1", None)
    run_dir.store_error(directory, "p1", {"host": "p1", "status": "failed", "reason": "cannot audit p1: bad"})
    requests = run_dir.load_requests(directory)
    requests["d"] = REQUEST
    audit = build_audit(directory, ["dev", "prod"], ["prod"], GROUPS, requests, [], "never")
    found = {(f["subject"], f["check"]) for f in audit["findings"]}
    assert found == {("app", "collect.failed"), ("*", "audit.not_compared")}
    (unknown,) = [f for f in audit["findings"] if f["check"] == "collect.failed"]
    assert unknown["values"]["prod"] == {"unknown": "failed: cannot audit p1: bad"}


def test_a_subject_configured_on_some_hosts_only_is_one_finding(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    store(directory, "d", env_data({"A": "1"}))
    store(directory, "p1", env_data({"A": "1"}))
    store(directory, "p2", env_data({"A": "1"}))
    both = {"env": dict(REQUEST["env"], files=REQUEST["env"]["files"] + [{"name": "worker", "path": "w.env"}])}
    requests = {"d": both, "p1": REQUEST, "p2": both}
    audit = build_audit(directory, ["dev", "prod"], ["prod"], GROUPS, requests, [], "never")
    (finding,) = audit["findings"]
    assert (finding["subject"], finding["key"], finding["check"]) == ("worker", "*", "env.not_configured")
    assert finding["environments"] == ["prod/p1"]
    assert finding["values"] == {"dev": "configured", "prod/p1": "not configured", "prod/p2": "configured"}


def test_hosts_whose_variables_did_not_validate_still_audit_every_selected_area(tmp_path):
    _, directory = run_dir.new_run(str(tmp_path))
    for host in ("d", "p1"):
        run_dir.store_request(directory, host, None)
        run_dir.store_error(directory, host, {"host": host, "status": "failed", "reason": "cannot audit: bad"})
    requests = run_dir.load_requests(directory)
    audit = build_audit(directory, ["dev", "prod"], [], GROUPS, requests, [], "critical", ["env", "git"])
    assert audit["audited_areas"] == ["env", "git"]
    assert [(f["area"], f["check"]) for f in audit["findings"]] == [
        ("env", "audit.not_compared"),
        ("git", "audit.not_compared"),
    ]
    assert audit["gate"]["tripped"] is True


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fail_on_new": "severe"}, "drift_fail_on_new must be one of"),
        ({"baseline": "release", "previous_report": "last.json"}, "set one of them"),
        ({"history": False, "baseline_save": "release"}, "need the history store"),
        ({"history_retention_days": 0}, "at least 1"),
        ({"history_trend_runs": 0}, "drift_history_trend_runs 1 or more"),
    ],
)
def test_history_settings_that_cannot_work_are_refused_before_any_host(changes, message):
    from ansible_collections.envparity.audit.plugins.plugin_utils.audit import check_settings

    settings = {"environments": ["dev", "prod"], "groups": GROUPS, "fail_on": "never", "history": True}
    check_settings(settings)
    with pytest.raises(AuditConfigError, match=message):
        check_settings(dict(settings, **changes))
