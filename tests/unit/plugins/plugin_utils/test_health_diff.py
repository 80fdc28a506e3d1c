"""Diff rules and tables of the health area (plugin_utils/health_diff.py) on synthetic facts."""

import copy

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.health_collect import DEFAULT_THRESHOLDS
from ansible_collections.envparity.audit.plugins.plugin_utils import health_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import unknown_cell
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view

LABELS = ["dev", "prod"]
CONTEXT = {"baseline": "dev", "production": {"prod"}}


def host(**changes):
    record = {
        "status": "ok",
        "reason": None,
        "system": "Linux",
        "kernel": "6.1.0",
        "architecture": "x86_64",
        "os": {"id": "debian", "version_id": "12", "pretty_name": "Debian 12"},
        "cpus": 2,
        "cpus_usable": 2,
        "load": [0.5, 0.4, 0.3],
        "memory_total": 8 * 1024**3,
        "memory_available": 6 * 1024**3,
        "swap_total": 0,
        "swap_free": 0,
        "uptime": 100,
        "time_zone": "Etc/UTC",
        "clock_synchronised": True,
        "nofile_soft": 1024,
        "nofile_hard": 4096,
        "file_max": 100000,
        "filesystems": {"data": {"status": "ok", "mount": "/", "used_percent": 40.0, "inodes_used_percent": 5.0}},
        "sockets": [{"protocol": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"}],
        "failed_units": [],
        "timers": ["logrotate.timer -> logrotate.service"],
        "cron": {"entries": ["0 3 * * * root backup"], "unreadable": []},
    }
    record.update(changes)
    return record


def service(**changes):
    record = {
        "status": "ok",
        "reason": None,
        "state": "running",
        "restart_count": 0,
        "oom_killed": False,
        "exit_code": 0,
        "memory_limit": 100 * 1048576,
        "memory_used": 10 * 1048576,
        "memory_percent": 10.0,
    }
    record.update(changes)
    return record


def source(templates, errors=None):
    return {
        "status": "ok",
        "lines": 10,
        "levels": {"error": errors if errors is not None else sum(t[1] for t in templates.values())},
        "templates": {ident: {"template": text, "count": count} for ident, (text, count) in templates.items()},
        "span_seconds": 1800,
        "truncated": False,
    }


def cell(host_record=None, services=None, logs=None, log_files=None, published=(), settings=None, others=()):
    return {
        "host": {"host": host_record or host()},
        "stacks": {
            "shop": {
                "status": "ok",
                "project": "shop",
                "services": services if services is not None else {"api": service()},
                "logs": logs or {},
                "published": list(published),
            }
        },
        "other_containers": {"status": "ok", "reason": None, "running": list(others), "truncated": False},
        "log_files": log_files or {},
        "settings": settings
        or {
            "thresholds": dict(DEFAULT_THRESHOLDS),
            "expected_ports": [22],
            "port_loopback": False,
            "port_range": "1-65535",
            "known_projects": [],
        },
    }


def checks(findings):
    return sorted((f["subject"], f["key"], f["kind"], f["check"]) for f in findings)


def test_two_equal_environments_give_nothing():
    assert health_diff.diff(LABELS, {"dev": cell(), "prod": cell()}, CONTEXT) == []


def test_subjects_are_prefixed():
    request = {"stacks": [{"name": "app"}], "log_files": [{"name": "app"}]}
    assert health_diff.subjects(request) == ["host", "stack:app", "log:app"]


def test_production_policies_and_only_in_production():
    bad = host(
        filesystems={"data": {"status": "ok", "mount": "/srv", "used_percent": 91.0, "inodes_used_percent": 86.0}},
        swap_total=1000,
        swap_free=500,
        load=[5.0, 1.0, 1.0],
        clock_synchronised=False,
        failed_units=["nginx.service"],
        sockets=[
            {"protocol": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"},
            {"protocol": "tcp", "address": "0.0.0.0", "port": 8080, "process": "docker-proxy"},
            {"protocol": "tcp", "address": "0.0.0.0", "port": 5005, "process": None},
            {"protocol": "tcp", "address": "127.0.0.1", "port": 6000, "process": "x"},
        ],
    )
    services = {
        "worker": service(memory_percent=95.0),
        "batch": service(state="exited", oom_killed=True, exit_code=137),
        "flaky": service(restart_count=3),
    }
    found = health_diff.diff(
        LABELS, {"dev": cell(bad, services), "prod": cell(bad, services, published=["8080/tcp"])}, CONTEXT
    )
    assert checks(found) == [
        ("host", "clock_synchronised", "policy", "health.clock_unsynchronised"),
        ("host", "filesystems.data.inodes", "policy", "health.inodes_full"),
        ("host", "filesystems.data.used", "policy", "health.disk_full"),
        ("host", "load", "policy", "health.load_high"),
        ("host", "ports.5005/tcp", "policy", "health.port_outside_compose"),
        ("host", "swap", "policy", "health.swap_in_use"),
        ("host", "systemd.nginx.service", "policy", "health.failed_unit"),
        ("stack:shop", "services.batch.oom_killed", "policy", "health.oom_killed"),
        ("stack:shop", "services.flaky.restarts", "policy", "health.restarts"),
        ("stack:shop", "services.worker.memory", "policy", "health.memory_near_limit"),
    ]
    assert all(f["environments"] == ["prod"] for f in found)
    port = next(f for f in found if f["check"] == "health.port_outside_compose")
    assert port["values"]["prod"] == "0.0.0.0:5005 (owner not visible to the audit user)"


def test_thresholds_are_each_hosts_own():
    bad = host(filesystems={"data": {"status": "ok", "mount": "/", "used_percent": 91.0, "inodes_used_percent": 1}})
    relaxed = dict(DEFAULT_THRESHOLDS, disk_percent=95)
    settings = {"thresholds": relaxed, "expected_ports": [22], "port_loopback": False, "port_range": "1-65535"}
    assert health_diff.diff(LABELS, {"dev": cell(), "prod": cell(bad, settings=settings)}, CONTEXT) == []


def test_loopback_and_the_watched_range():
    sockets = [{"protocol": "tcp", "address": "127.0.0.1", "port": 47010, "process": "python3"}]
    settings = {
        "thresholds": DEFAULT_THRESHOLDS,
        "expected_ports": [],
        "port_loopback": True,
        "port_range": "47000-47099",
    }
    found = health_diff.diff(LABELS, {"dev": cell(), "prod": cell(host(sockets=sockets), settings=settings)}, CONTEXT)
    assert checks(found) == [("host", "ports.47010/tcp", "policy", "health.port_outside_compose")]
    narrow = dict(settings, port_range="1-1024")
    assert (
        health_diff.diff(LABELS, {"dev": cell(), "prod": cell(host(sockets=sockets), settings=narrow)}, CONTEXT) == []
    )


@pytest.mark.parametrize(
    ("fact", "value", "severity"),
    [("time_zone", "Europe/Paris", "medium"), ("kernel", "6.5.0", "low"), ("nofile_soft", 65536, "low")],
)
def test_stable_host_facts_are_compared(fact, value, severity):
    found = health_diff.diff(LABELS, {"dev": cell(), "prod": cell(host(**{fact: value}))}, CONTEXT)
    assert [(f["key"], f["kind"], f["check"], f["severity"]) for f in found] == [
        (fact, "changed", "health.host_changed", severity)
    ]


def test_a_fact_not_available_is_never_a_difference():
    mac = host(time_zone=None, clock_synchronised=None, nofile_soft=None, failed_units=None, timers=None)
    assert health_diff.diff(LABELS, {"dev": cell(), "prod": cell(mac)}, CONTEXT) == []


def test_cron_and_timers_only_in_one_environment():
    prod = host(cron={"entries": ["0 3 * * * root backup", "*/5 * * * * deploy cleanup"], "unreadable": []}, timers=[])
    found = health_diff.diff(LABELS, {"dev": cell(), "prod": cell(prod)}, CONTEXT)
    assert checks(found) == [
        ("host", "cron.*/5 * * * * deploy cleanup", "extra", "health.cron_only_in"),
        ("host", "timers.logrotate.timer -> logrotate.service", "missing", "health.timer_only_in"),
    ]


def test_unreadable_cron_is_unknown_not_absent():
    prod = host(cron={"entries": [], "unreadable": ["/var/spool/cron/crontabs"]})
    found = health_diff.diff(LABELS, {"dev": cell(), "prod": cell(prod)}, CONTEXT)
    assert checks(found) == [("host", "cron", "unknown", "health.not_read")]
    assert found[0]["values"]["prod"] == {"unknown": "unreadable: /var/spool/cron/crontabs"}


def test_error_templates_new_in_production_and_gone():
    # the same errors per hour overall: only the templates differ
    dev_logs = {"api": source({"a1": ("ERROR timeout <n>", 4), "b2": ("ERROR cache <id>", 1)}, errors=40)}
    prod_logs = {"api": source({"a1": ("ERROR timeout <n>", 9), "c3": ("ERROR payment <n> declined", 30)}, errors=40)}
    found = health_diff.diff(LABELS, {"dev": cell(logs=dev_logs), "prod": cell(logs=prod_logs)}, CONTEXT)
    assert [(f["key"], f["kind"], f["check"], f["severity"]) for f in found] == [
        ("services.api.errors.b2", "missing", "health.error_template_gone", "info"),
        ("services.api.errors.c3", "extra", "health.error_template_new", "high"),
    ]
    assert found[1]["values"] == {"dev": None, "prod": "30× ERROR payment <n> declined"}


def test_log_files_compared_and_unreadable_is_unknown():
    dev = {"app": source({"a1": ("ERROR x", 1)})}
    prod = {"app": {"status": "permission_denied", "reason": "Log file app: the audit user may not read it."}}
    found = health_diff.diff(LABELS, {"dev": cell(log_files=dev), "prod": cell(log_files=prod)}, CONTEXT)
    assert checks(found) == [("log:app", "*", "unknown", "health.not_read")]


def test_an_unknown_column_is_left_to_the_engine():
    found = health_diff.diff(LABELS, {"dev": cell(), "prod": unknown_cell("unreachable")}, CONTEXT)
    assert found == []


def test_tables_and_chart_with_hostile_names_escaped():
    hostile = "api|<script>`x`"
    services = {hostile: service(memory_percent=50.0)}
    logs = {hostile: source({"a1": ("ERROR | <b>", 2)})}
    cells = {"dev": cell(services=copy.deepcopy(services), logs=logs), "prod": cell(services=services, logs=logs)}
    given = health_diff.tables(LABELS, cells, CONTEXT)
    titles = [table["title"] for table in given["tables"]]
    assert titles[0] == "Resources per host" and any(title.startswith("Error templates") for title in titles)
    rates = next(table for table in given["tables"] if table["title"].startswith("Errors per hour"))
    assert rates["rows"][0][1] == "4.0/h (2 in 30 min)"
    assert all(isinstance(cell_text, str) for table in given["tables"] for row in table["rows"] for cell_text in row)
    assert '"shop_api__script__x_"' in given["charts"][0]
    audit = {
        "columns": [{"label": label, "environment": label, "host": label} for label in LABELS],
        "states": {label: {"status": "ok", "reason": None} for label in LABELS},
        "production": ["prod"],
        "audited_areas": ["health"],
        "environments": [{"name": label, "hosts": [label]} for label in LABELS],
        "findings": [],
        "stale_rules": [],
        "errors": [],
        "gate": {"fail_on": "never", "tripped": False, "count": 0},
        "tables": {"health": given},
    }
    document = build_document(audit, "2026-01-01T00:00:00Z", "inv")
    view = build_view(document)["areas"][0]
    shown = repr(view["tables"])
    assert "<script>" not in shown and "api\\\\|" in shown
    assert view["charts"][0].startswith("```mermaid\nxychart-beta")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"drift_health_thresholds": {"disk": 80}}, "names disk"),
        ({"drift_health_thresholds": {"disk_percent": "85%"}}, "must be numbers"),
        ({"drift_health_port_range": "80-20"}, "range of ports"),
        ({"drift_log_files": [{"name": "a"}]}, "needs a name and path"),
        ({"drift_health_stacks": [{"name": "a", "project": "p"}, {"name": "a", "project": "q"}]}, "unique"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(params, words):
    from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request
    from ansible_collections.envparity.audit.plugins.plugin_utils.requests import RequestError

    base = {"drift_health_paths": [{"name": "project", "path": "."}]}
    with pytest.raises(RequestError, match=words):
        build_request("health", dict(base, **params))


def test_partial_thresholds_are_accepted():
    from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request

    request = build_request(
        "health", {"drift_health_paths": [{"name": "p", "path": "."}], "drift_health_thresholds": {"disk_percent": 90}}
    )
    assert request["thresholds"] == {"disk_percent": 90}


# ---------------------------------------------------------------- orphans


def running(name, project=None, svc=None, image="busybox:1.36"):
    return {"name": name, "project": project, "service": svc, "image": image}


def docker_cells(projects, engine="ok"):
    """The docker area's cells as context["area_cells"]("docker") gives them."""
    cell_of = {
        "stacks": {"app": {"status": "ok", "project": projects}},
        "engine": {"status": engine},
    }
    return lambda area: {"dev": cell_of, "prod": cell_of} if area == "docker" else {}


def test_orphans_per_environment_with_a_production_severity():
    hotfix = running("hotfix-shell-1", "hotfix", "shell", "app:1.2")
    loose = running("adminer", image="adminer:4")
    dev = cell(others=[running("dev-tool-1", "tooling", "x")])
    prod = cell(others=[hotfix, loose, running("app-web-1", "app", "web")])
    context = dict(CONTEXT, area_cells=docker_cells("app", engine="failed"))
    found = health_diff.diff(LABELS, {"dev": dev, "prod": prod}, context)
    assert [(f["key"], f["environments"], f["severity"], f["kind"]) for f in found] == [
        ("containers.adminer", ["prod"], "high", "policy"),
        ("containers.dev-tool-1", ["dev"], "low", "policy"),
        ("containers.hotfix-shell-1", ["prod"], "high", "policy"),
    ]
    assert {f["check"] for f in found} == {"health.orphan"}
    assert found[2]["values"] == {"dev": None, "prod": "app:1.2 (project hotfix, service shell)"}
    assert found[0]["values"]["prod"] == "adminer:4 (no compose project)"


def test_known_projects_patterns_and_the_docker_areas_own_report():
    others = [running("hotfix-shell-1", "hotfix", "shell"), running("adminer"), running("ai_ops-api-1", "ai_ops")]
    settings = dict(cell()["settings"], known_projects=["ai_*"])
    both = {"dev": cell(settings=settings, others=others), "prod": cell(settings=settings, others=others)}
    # the docker area reads the engine: it reports the container without a project (docker.orphan)
    found = health_diff.diff(LABELS, both, dict(CONTEXT, area_cells=docker_cells("hotfix")))
    assert found == []
    found = health_diff.diff(LABELS, both, dict(CONTEXT, area_cells=docker_cells("app")))
    assert [(f["key"], f["environments"]) for f in found] == [("containers.hotfix-shell-1", ["dev", "prod"])]


def test_orphans_not_looked_for_or_not_read_are_no_finding():
    quiet = cell()
    quiet["other_containers"] = None  # no stack configured: the engine is not read
    down = cell(others=[running("x", "p")])
    down["other_containers"]["status"] = "unreachable"
    assert health_diff.diff(LABELS, {"dev": quiet, "prod": down}, CONTEXT) == []
    assert health_diff.orphans([running("x", "p")], {"p"}, [], True) == []
    assert health_diff.orphans([running("x")], set(), ["*"], False) == []
    assert health_diff.orphans([running("x")], set(), ["*"], True) == [running("x")]


# ---------------------------------------------------------------- exit codes


def test_a_job_that_exits_otherwise_in_production():
    dev = {"batch": service(state="exited", exit_code=0, finished_at=1796612400), "api": service()}
    prod = {
        "batch": service(state="exited", exit_code=137, oom_killed=True, finished_at=1796616000),
        "api": service(),
    }
    found = [
        f
        for f in health_diff.diff(LABELS, {"dev": cell(services=dev), "prod": cell(services=prod)}, CONTEXT)
        if f["check"] == "health.exit_code_changed"
    ]
    assert [(f["key"], f["kind"], f["severity"], f["environments"]) for f in found] == [
        ("services.batch.exit_code", "changed", "high", ["prod"])
    ]
    assert found[0]["values"] == {"dev": "exit 0", "prod": "exit 137 (OOM-killed)"}
    assert "2026-12-07 04:00 UTC" in found[0]["message"] and "measured" not in found[0]


@pytest.mark.parametrize(
    ("dev", "prod", "expected"),
    [
        # restarts count: the same exit after restarts is another ending
        (service(state="exited", exit_code=1), service(state="exited", exit_code=1, restart_count=2), "high"),
        # dev failed, prod did not: a difference, not a production failure
        (service(state="exited", exit_code=2), service(state="exited", exit_code=0), "low"),
        # running in one: nothing to compare (its exit code is not a last run's)
        (service(state="running", exit_code=0), service(state="exited", exit_code=1), None),
        (service(state="exited", exit_code=3), service(state="exited", exit_code=3), None),
        (service(state="exited", exit_code=None), service(state="exited", exit_code=1), None),
    ],
)
def test_exit_codes_compared_only_between_ended_runs(dev, prod, expected):
    found = health_diff.diff(
        LABELS, {"dev": cell(services={"job": dev}), "prod": cell(services={"job": prod})}, CONTEXT
    )
    exits = [f["severity"] for f in found if f["check"] == "health.exit_code_changed"]
    assert exits == ([expected] if expected else [])


# ---------------------------------------------------------------- error rates


def rated(errors, span=1800, truncated=False):
    return dict(source({}, errors=errors), span_seconds=span, truncated=truncated)


@pytest.mark.parametrize(
    ("dev", "prod", "fires"),
    [
        (rated(10), rated(40), True),  # 20/h against 80/h
        (rated(10), rated(14), False),  # +8/h: within error_rate_per_hour (10)
        (rated(100), rated(140), False),  # +40%: within error_rate_percent (50)
        (rated(0), rated(6), True),  # none in dev, 12/h in prod
        (rated(40), rated(10), False),  # fewer errors is no finding
        (rated(10), rated(40, span=30), False),  # 30 s of logs is no rate
        (rated(10, truncated=True), rated(40), False),  # a truncated baseline is a floor, not a reference
        (rated(10), rated(40, truncated=True), True),  # a truncated higher rate is higher still
        (rated(10, span=None), rated(40), False),  # no span (a log file's tail): no rate
    ],
)
def test_error_rates_against_the_baseline_with_tolerances(dev, prod, fires):
    found = health_diff.diff(LABELS, {"dev": cell(logs={"api": dev}), "prod": cell(logs={"api": prod})}, CONTEXT)
    rates = [f for f in found if f["check"] == "health.error_rate_higher"]
    assert len(rates) == (1 if fires else 0)
    if fires:
        finding = rates[0]
        assert (finding["key"], finding["kind"], finding["severity"]) == ("services.api.error_rate", "policy", "high")
        assert finding["measured"] is True and finding["environments"] == ["prod"]
        assert finding["values"]["prod"].startswith("%.1f/h" % (prod["levels"]["error"] * 2.0))


def test_error_rate_tolerances_are_each_hosts_own_and_log_files_compare_too():
    settings = dict(cell()["settings"], thresholds=dict(DEFAULT_THRESHOLDS, error_rate_percent=500))
    logs = ({"api": rated(10)}, {"api": rated(40)})
    cells = {"dev": cell(logs=logs[0]), "prod": cell(logs=logs[1], settings=settings)}
    assert [f for f in health_diff.diff(LABELS, cells, CONTEXT) if f["check"] == "health.error_rate_higher"] == []
    files = {"dev": cell(log_files={"app": rated(1)}), "prod": cell(log_files={"app": rated(50)})}
    found = [f for f in health_diff.diff(LABELS, files, CONTEXT) if f["check"] == "health.error_rate_higher"]
    assert [(f["subject"], f["key"]) for f in found] == [("log:app", "error_rate")]


def test_an_error_rate_persists_in_history_while_its_figures_vary():
    from ansible_collections.envparity.audit.plugins.plugin_utils.findings import finding_id
    from ansible_collections.envparity.audit.plugins.plugin_utils.timeline import value_digest

    runs = []
    for prod_errors in (40, 55):
        cells = {"dev": cell(logs={"api": rated(10)}), "prod": cell(logs={"api": rated(prod_errors)})}
        found = [f for f in health_diff.diff(LABELS, cells, CONTEXT) if f["check"] == "health.error_rate_higher"]
        runs.append(found[0])
    assert runs[0]["values"] != runs[1]["values"]
    assert finding_id(runs[0]) == finding_id(runs[1]) and value_digest(runs[0]) == value_digest(runs[1])
