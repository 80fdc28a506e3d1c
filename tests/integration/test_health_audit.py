"""The health area end to end: the lab's hosts, its ops stacks and log files, through ansible-runner."""

import json
import pathlib
import re
import time
import urllib.parse

import jsonschema

from tests.lab.labtest import _UnixConnection

from .test_env_audit import SCHEMA, identities, planted

# the ops stacks, and prod's orphan (lab/health_area.py)
HEALTH_PROJECTS = ("personal_assistant_ops", "ai_assistant_ops", "ai_assistant_hotfix")


def engine_events(since, until, project):
    """The engine's events about a project's containers between two times (newline-separated JSON)."""
    filters = urllib.parse.quote(json.dumps({"label": ["com.docker.compose.project=%s" % project]}))
    body = engine_json("/events?since=%d&until=%d&filters=%s" % (since, until, filters))
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def engine_json(path):
    conn = _UnixConnection()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 200, body[:300]
    return body


def ops_containers():
    """The state of the health lab's containers: ids, names, states, start times, restart counts
    (the engine is shared with other lab parts, which may start and stop their own meanwhile)."""
    found = []
    for project in HEALTH_PROJECTS:
        filters = urllib.parse.quote(json.dumps({"label": ["com.docker.compose.project=%s" % project]}))
        for summary in json.loads(engine_json("/containers/json?all=1&filters=" + filters)):
            info = json.loads(engine_json("/containers/%s/json" % summary["Id"]))
            state = info["State"]
            found.append((info["Id"], info["Name"], state["Status"], state["StartedAt"], info["RestartCount"]))
    return sorted(found)


LOG_CANARIES = ("health.prod.log_password", "health.prod.log_token", "health.prod.log_url_password")


def test_health_recall_and_precision_against_the_manifest(audit, lab):
    result = audit(cmdline="--tags health")
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert report["areas"] == ["health"]
    assert report["errors"] == []
    found = identities(report["findings"], area="health")
    expected = planted(lab["manifest"], area="health")
    assert sorted(set(expected) - set(found)) == [], "planted but not found"
    assert sorted(set(found) - set(expected)) == [], "found but never planted"
    by_check = {f["check"]: f for f in report["findings"]}
    assert by_check["health.oom_killed"]["values"]["prod"] == "OOM-killed (exit 137)"
    assert by_check["health.restarts"]["values"]["prod"] == "2 restarts (exited)"
    assert by_check["health.port_outside_compose"]["values"]["prod"].endswith("(python3)")
    exits = {f["key"]: f["values"] for f in report["findings"] if f["check"] == "health.exit_code_changed"}
    assert exits == {
        "services.batch.exit_code": {"dev": "exit 0", "prod": "exit 137 (OOM-killed)"},
        "services.flaky.exit_code": {"dev": "exit 0", "prod": "exit 1 after 2 restarts"},
    }
    rate = by_check["health.error_rate_higher"]
    assert rate["measured"] is True and rate["severity"] == "high"
    dev_rate, prod_rate = (float(rate["values"][label].split("/h")[0]) for label in ("dev", "prod"))
    assert prod_rate > 1.5 * dev_rate > 0
    orphan = by_check["health.orphan"]
    assert orphan["values"] == {"dev": None, "prod": "lab/health:1.0 (project ai_assistant_hotfix, service shell)"}


def test_the_report_shows_the_tables_and_the_new_errors_first(audit, lab):
    result = audit(cmdline="--tags health")
    assert result.rc == 0, result.stdout
    tables = {table["title"]: table for table in result.report["tables"]["health"]["tables"]}
    resources = tables["Resources per host"]
    assert [row[0] for row in resources["rows"]] == ["dev", "prod"]
    templates = next(table for title, table in tables.items() if title.startswith("Error templates"))
    # The payment error the prod api logs (prod only) comes before the upstream timeout both log.
    sources = [(row[0], row[1]) for row in templates["rows"]]
    payment = next(i for i, (_, text) in enumerate(sources) if "payment" in text)
    timeout = next(i for i, (_, text) in enumerate(sources) if "upstream timeout" in text)
    assert payment < timeout
    rates = next(table for title, table in tables.items() if title.startswith("Errors per hour"))
    api = next(row for row in rates["rows"] if row[0] == "ops/api")
    assert api[1].endswith("/h") or "/h (" in api[1]
    assert "```mermaid\nxychart-beta" in result.markdown
    assert "### Resources per host" in result.markdown


def test_log_canaries_never_leave_the_host(audit, canaries):
    """Prod's log file has canary secrets in its error lines: only masked templates travel. The
    needles are the canaries in the file as the audit reads it (other lab runs on this machine may
    replant meanwhile: what matters is what the host holds)."""
    result = audit(cmdline="--tags health", extravars={"drift_keep_run_dir": True}, verbosity=3)
    assert result.rc == 0, result.stdout
    log = pathlib.Path("/home/deploy/logs/app.log").read_text(encoding="utf-8")
    needles = sorted(set(re.findall(r"CANARY0[A-Za-z0-9]{24}", log)))
    assert len(needles) == len(LOG_CANARIES)  # control: the lines are there, on the host
    places = {"stdout": result.stdout, "markdown": result.markdown, "json": json.dumps(result.report)}
    for path in result.private_dir.rglob("*"):
        if path.is_file() and not (path.name == "command" and path.parent.parent.name == "artifacts"):
            places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaks = {needle: [place for place, text in places.items() if needle in text] for needle in needles}
    assert {needle: where for needle, where in leaks.items() if where} == {}
    # their templates are in the report, masked
    assert "password=<secret>" in places["json"] and "Bearer <secret>" in places["json"]


def test_the_audit_starts_stops_and_execs_nothing(audit):
    """Engine API GETs only: the engine's own event log shows nothing done to the ops containers
    while the audit ran, and their state (ids, start times, restart counts) is the same after."""
    before = ops_containers()
    since = int(time.time()) - 1
    result = audit(cmdline="--tags health")
    until = int(time.time()) + 1
    assert result.rc == 0, result.stdout
    assert ops_containers() == before and len(before) == 9
    for project in HEALTH_PROJECTS:
        assert [event.get("Action") for event in engine_events(since, until, project)] == []
