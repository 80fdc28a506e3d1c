"""Terminal summary lines, failure reasons, and area requests from inventory inputs."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request
from ansible_collections.envparity.audit.plugins.plugin_utils.requests import RequestError, postgres_secrets
from ansible_collections.envparity.audit.plugins.plugin_utils.summary import (
    MAX_REASON,
    collect_phase,
    collected_line,
    failure_reason,
    summary_lines,
)


def report(tripped=False, fail_on="high"):
    return {
        "summary": {
            "unexpected": 3,
            "expected": 1,
            "unknown": 0,
            "stale_rules": 2,
            "by_severity": {"critical": 0, "high": 1, "medium": 1, "low": 1, "info": 0},
        },
        "gate": {"fail_on": fail_on, "tripped": tripped, "count": 1 if tripped else 0},
        "report": {"markdown": "/r/x.md", "json": "/r/x.json"},
    }


def test_summary_lines():
    lines = summary_lines(report(tripped=True))
    assert lines[0].startswith("envparity: 3 unexpected finding(s) (critical 0, high 1, medium 1, low 1, info 0)")
    assert lines[1] == "envparity: report /r/x.md (JSON /r/x.json)"
    assert lines[2] == "envparity: gate FAILED: 1 finding(s) at or above high."
    assert summary_lines(report(fail_on="never"))[2] == "envparity: gate off (drift_fail_on=never)."


def test_summary_without_report_says_so():
    assert "no report was written" in summary_lines(None)[0]
    assert summary_lines({"msg": "cannot compare environments: x"}) == [
        "envparity: the report step failed: cannot compare environments: x"
    ]


def test_failure_reason_is_one_bounded_line():
    assert failure_reason({"msg": "a\n  b"}, "failed") == "a b"
    assert failure_reason({}, "unreachable") == "host unreachable"
    assert len(failure_reason({"msg": "x" * 5000}, "failed")) == MAX_REASON


def test_env_request():
    assert build_request("env", {"drift_env_files": []}) is None
    assert build_request("env", {}) is None
    params = {
        "drift_env_files": [{"name": "app", "path": "a.env"}],
        "drift_project_dir": "/p",
        "drift_env_max_file_bytes": 5,
    }
    assert build_request("env", params) == {
        "project_dir": "/p",
        "files": [{"name": "app", "path": "a.env", "template": None, "allow_outside_project": False}],
        "max_bytes": 5,
    }


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([{"name": "app"}], "item 1 needs a name and a path"),
        ([{"name": "a", "path": "x"}, {"name": "a", "path": "y"}], "a appears twice"),
        (["x"], "item 1 needs"),
    ],
)
def test_env_request_rejects_bad_input(files, message):
    with pytest.raises(RequestError, match=message):
        build_request("env", {"drift_env_files": files})


def test_requests_take_the_role_defaults():
    request = build_request("git", {"drift_git_repos": [{"name": "app", "path": "."}]})
    assert (request["history_limit"], request["timeout"], request["fetch"]) == (200, 20, False)
    request = build_request("docker", {"drift_compose": [{"name": "app", "files": ["c.yml"]}]})
    assert request["docker_host"] == "unix:///var/run/docker.sock" and request["max_file_bytes"] == 1048576


def test_docker_request_reader_settings():
    stacks = [{"name": "app", "files": ["c.yml"]}]
    request = build_request("docker", {"drift_compose": stacks})
    assert request["compose_reader"] == "auto"
    assert request["compose_paths"][0] == "/usr/local/lib/docker/cli-plugins/docker-compose"
    with pytest.raises(RequestError, match="drift_docker_compose_reader must be auto, built-in or compose"):
        build_request("docker", {"drift_compose": stacks, "drift_docker_compose_reader": "docker"})


def test_postgres_request_never_carries_a_password():
    databases = [
        {"name": "app", "dbname": "ai_assistant", "user": "prod_user", "password": "CANARYpw123", "container": "db-1"},
        {"name": "analytics", "dbname": "analytics", "user": "prod_user", "host": "127.0.0.1", "port": "55433"},
    ]
    params = {"drift_postgres": databases, "drift_docker_host": "unix:///run/d.sock", "drift_postgres_timeout": 9}
    request = build_request("postgres", params)
    assert "CANARYpw123" not in repr(request)
    assert request["databases"][1] == {
        "name": "analytics",
        "dbname": "analytics",
        "user": "prod_user",
        "host": "127.0.0.1",
        "port": 55433,
        "container": None,
        "data_parity": False,
        "reference_tables": [],
    }
    assert request["timeout"] == 9 and request["docker_host"] == "unix:///run/d.sock"
    assert postgres_secrets(params) == {"app": "CANARYpw123"}
    assert build_request("postgres", {"drift_postgres": []}) is None
    with pytest.raises(RequestError, match="needs a name, a dbname and a user"):
        build_request("postgres", {"drift_postgres": [{"name": "x"}]})
    with pytest.raises(RequestError, match="reference_tables must be a list of schema.table names"):
        build_request(
            "postgres",
            {"drift_postgres": [{"name": "x", "dbname": "d", "user": "u", "reference_tables": ["plans'; --"]}]},
        )


def test_areas_not_compared_are_said_on_the_terminal():
    compared_nothing = report(tripped=True, fail_on="low")
    compared_nothing["summary"]["not_compared"] = ["env", "git"]
    lines = summary_lines(compared_nothing)
    assert "envparity: NOT COMPARED: env, git: fewer than two environments were collected" in lines[2]
    assert not any("NOT COMPARED" in line for line in summary_lines(report()))


def test_summary_names_the_junit_and_metrics_files_and_a_metrics_failure():
    written = dict(report(), metrics={"file": "/m/envparity.prom", "error": None})
    written["report"] = dict(written["report"], junit="/r/x.junit.xml")
    lines = summary_lines(written)
    assert lines[2:4] == ["envparity: JUnit /r/x.junit.xml", "envparity: metrics /m/envparity.prom"]
    failed = dict(written, metrics={"file": "/m/envparity.prom", "error": "cannot write the metrics file x: why"})
    assert summary_lines(failed)[3] == (
        "envparity: METRICS: cannot write the metrics file x: why (the report is written; the exit code is unchanged)"
    )


def test_a_report_phase_names_the_hosts_no_slice_delivered():
    partial = dict(report(), not_collected=["prod-2", "prod-7"])
    lines = summary_lines(partial)
    assert lines[2] == (
        "envparity: NOT COLLECTED by any collect job of the shared run: prod-2, prod-7 (could not collect in the "
        "report; exit code 4)."
    )
    assert not any("NOT COLLECTED" in line for line in summary_lines(dict(report(), not_collected=[])))


def test_a_collect_phase_says_what_it_took_and_who_writes_the_report():
    run = {"phase": "collect", "run_id": "wf-42"}
    assert collect_phase(run) and not collect_phase({"phase": "all"}) and not collect_phase(None)
    assert collected_line(run, {"a": 1, "b": 1, "c": 1}, {"c": 1}, {"b": 1}) == (
        "envparity: run wf-42: this collect job took 3 host(s) into the shared run (2 could not be collected: "
        "b, c); the report job (drift_phase=report) writes the report."
    )
