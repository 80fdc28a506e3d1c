"""The team's policies of the rules file (plugin_utils/policies.py): parsing, the compared values
of each area (equal ones too, secrets by fingerprint), evaluation and the findings."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.redact import describe_value
from ansible_collections.envparity.audit.plugins.plugin_utils import deps_diff, health_diff, pg_diff, policies
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import finding_id, make_finding, unknown_cell
from ansible_collections.envparity.audit.plugins.plugin_utils.one_finding import one_finding_per_fact
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import RulesError
from ansible_collections.envparity.audit.plugins.plugin_utils.rules_file import parse_sections
from tests.pg_facts import catalog, database, facts, on_the_wire
from tests.unit.plugins.plugin_utils.test_deps_diff import cell as deps_cell
from tests.unit.plugins.plugin_utils.test_deps_diff import dist, env
from tests.unit.plugins.plugin_utils.test_health_diff import cell as health_cell

KEY = b"k" * 32
ENVIRONMENT_OF = {"dev": "dev", "staging": "staging", "prod": "prod"}


def env_cell(**values):
    keys = {name: describe_value(name, value, KEY) for name, value in values.items()}
    return {"files": {"app": {"status": "ok", "keys": keys}}}


def docker_cell(image, **environment):
    service = {
        "image": {"ref": image},
        "environment": {name: describe_value(name, value, KEY) for name, value in environment.items()},
    }
    return {"stacks": {"app": {"status": "ok", "services": {"web": service}}}}


def policy(**fields):
    return policies.validate_policy(dict({"severity": "high", "reason": "because"}, **fields), "r.yml policy 1")


def judge(policy_list, area, cells, findings=()):
    matched = set()
    table = policies.compared_values(area, cells, list(findings))
    return policies.evaluate(policy_list, area, table, ENVIRONMENT_OF, matched), matched


def test_must_equal_sees_equal_values_and_breaks_on_a_difference():
    rule = policy(must_equal="docker/app/services.web.image", environments=["staging", "prod"])
    same = {"dev": docker_cell("web:2"), "staging": docker_cell("web:1"), "prod": docker_cell("web:1")}
    found, matched = judge([rule], "docker", same)
    assert found == [] and matched == {0}  # judged on equal values: the policy holds
    differ = dict(same, prod=docker_cell("web:0"))
    (finding,) = judge([rule], "docker", differ)[0]
    assert (finding["kind"], finding["check"], finding["severity"]) == ("policy", "policy.must_equal", "high")
    assert finding["environments"] == ["prod"]
    assert finding["values"] == {"staging": "web:1", "prod": "web:0"}  # dev is not in the policy
    assert "because" in finding["message"] and "r.yml policy 1" in finding["message"]
    assert finding["policy"] == {
        "type": "must_equal",
        "path": "docker/app/services.web.image",
        "source": "r.yml policy 1",
        "reason": "because",
    }
    assert finding_id(finding) == finding_id(dict(finding, values={}, environments=[]))


def test_must_differ_on_secrets_compares_fingerprints_and_never_shows_them():
    rule = policy(must_differ="env/app/*", secret=True, environments=["dev", "prod"])
    cells = {
        "dev": env_cell(API_TOKEN="s3cr3t-shared-value-0123456789", SECRET_KEY="dev-only-secret-abcdefghij", MODE="x"),
        "prod": env_cell(API_TOKEN="s3cr3t-shared-value-0123456789", SECRET_KEY="prod-own-secret-abcdefghij", MODE="x"),
    }
    (finding,) = judge([rule], "env", cells)[0]
    assert finding["key"] == "API_TOKEN" and finding["environments"] == ["dev", "prod"]
    assert finding["values"] == {"dev": "‹secret A, 16-31 chars›", "prod": "‹secret A, 16-31 chars›"}
    assert "s3cr3t" not in repr(finding)
    # MODE is equal but not secret: the secret filter leaves it out.
    assert judge([policy(must_differ="env/app/MODE", secret=True)], "env", cells) == ([], set())


def test_must_differ_with_several_hosts_per_environment():
    environment_of = {"dev": "dev", "prod/a": "prod", "prod/b": "prod"}
    cells = {"dev": env_cell(APP_ENV="x"), "prod/a": env_cell(APP_ENV="y"), "prod/b": env_cell(APP_ENV="x")}
    table = policies.compared_values("env", cells, [])
    (finding,) = policies.evaluate([policy(must_differ="env/app/APP_ENV")], "env", table, environment_of, set())
    assert finding["environments"] == ["dev", "prod/b"]  # two hosts of prod may agree with each other


def test_value_policy_with_unset_and_secret_values():
    rule = policy(value="env/app/*LEVEL", environments=["prod"], one_of=["INFO", "WARNING"])
    cells = {"dev": env_cell(LOG_LEVEL="DEBUG", SQL_LEVEL="DEBUG"), "prod": env_cell(LOG_LEVEL="INFO")}
    (finding,) = judge([rule], "env", cells)[0]
    assert (finding["key"], finding["values"], finding["environments"]) == ("SQL_LEVEL", {"prod": None}, ["prod"])
    assert "SQL_LEVEL must be one of INFO, WARNING in prod: prod=—" in finding["message"]
    # A secret value cannot be read: the policy is not judged on it (never a violation by default).
    secret = {"dev": env_cell(DB_PASSWORD="x"), "prod": env_cell(DB_PASSWORD="hunter2hunter2")}
    assert judge([policy(value="env/app/DB_PASSWORD", one_of=["x"])], "env", secret) == ([], set())


def git_cell(head, branch="main", origin="https://git.example.test/app.git"):
    return {
        "repos": {
            "app": {"status": "ok", "head": head, "branch": branch, "stash_count": 0, "remotes": {"origin": origin}}
        }
    }


def test_git_heads_branches_and_remotes_equal_or_not():
    same = "a" * 40
    cells = {"dev": git_cell("b" * 40, "dev"), "staging": git_cell(same), "prod": git_cell(same)}
    rules = [
        policy(must_equal="git/app/head", environments=["staging", "prod"]),
        policy(must_equal="git/app/remotes.*"),
        policy(value="git/app/branch", environments=["prod"], one_of=["main"]),
    ]
    found, matched = judge(rules, "git", cells)
    assert found == [] and matched == {0, 1, 2}
    cells["prod"] = git_cell("c" * 40, "hotfix")
    found = {f["key"]: f for f in judge(rules, "git", cells)[0]}
    assert sorted(found) == ["branch", "head"]
    assert found["head"]["values"] == {"staging": "a" * 10, "prod": "c" * 10}


def test_endpoints_status_headers_and_secret_body_fields():
    from tests.unit.plugins.plugin_utils import test_endpoints_diff as endpoints

    def answer(token, server="nginx"):
        record = endpoints.record()
        record["http"]["headers"] = {"server": server}
        record["http"]["body"] = {"kind": "json", "fields": {"token": {"secret": True, "fp": token}}}
        return record

    cells = {
        "dev": {"endpoints": {"api": answer("hmac-sha256:aaaa")}},
        "prod": {"endpoints": {"api": answer("hmac-sha256:aaaa", server="nginx/1.2")}},
    }
    rules = [
        policy(must_equal="endpoints/api/status"),
        policy(must_equal="endpoints/api/headers.server"),
        policy(must_differ="endpoints/api/body.*", secret=True),
    ]
    found = {f["key"]: f for f in judge(rules, "endpoints", cells)[0]}
    assert sorted(found) == ["body.token", "headers.server"]  # the same status everywhere: it holds
    assert found["body.token"]["values"] == {"dev": "‹secret A›", "prod": "‹secret A›"}
    assert "aaaa" not in repr(found)


def test_every_area_exposes_the_values_of_its_differences():
    differing = make_finding(
        area="postgres",
        subject="app",
        key="settings.statement_timeout",
        kind="changed",
        check="postgres.setting_changed",
        severity="low",
        values={"dev": "default", "prod": "30000ms", "staging": unknown_cell("down")},
        environments=["prod"],
        message="m",
        recommendation="r",
    )
    rule = policy(must_equal="postgres/app/settings.*", environments=["dev", "prod"])
    (finding,) = judge([rule], "postgres", {}, [differing])[0]
    assert finding["values"] == {"dev": "default", "prod": "30000ms"}  # the unknown column is not judged


def recorded(diff, cells):
    """Run an area's real diff with the audit's sink for compared values, as audit.py does."""
    context = {"baseline": "dev", "production": {"prod"}, "compared_values": {}}
    found = diff.diff(list(cells), cells, context)
    return found, context["compared_values"]


def judge_recorded(policy_list, area, diff, cells):
    found, sink = recorded(diff, cells)
    table = policies.compared_values(area, cells, found, sink)
    return policies.evaluate(policy_list, area, table, ENVIRONMENT_OF, set())


def test_postgres_health_and_deps_record_equal_values_for_policies():
    # postgres: equal settings are judged too (a value policy holds, a must_differ breaks).
    dev, prod = catalog(), catalog()
    prod["settings"]["work_mem"] = dict(prod["settings"]["work_mem"])
    pg_cells = on_the_wire({"dev": facts(app=database(dev)), "prod": facts(app=database(prod))})
    found, sink = recorded(pg_diff, pg_cells)
    assert not [f for f in found if f["key"].startswith("settings.")]  # nothing differs
    assert sink[("app", "settings.max_connections")] == {"dev": "100", "prod": "100"}
    holds = policy(value="postgres/app/settings.max_connections", environments=["prod"], one_of=["100"])
    breaks = policy(must_differ="postgres/app/settings.work_mem", environments=["dev", "prod"])
    (finding,) = judge_recorded([holds, breaks], "postgres", pg_diff, pg_cells)
    assert (finding["check"], finding["key"]) == ("policy.must_differ", "settings.work_mem")
    # deps: the same package version everywhere is a compared value.
    deps_cells = {label: deps_cell(python={"app": env({"django": dist("5.1")})}) for label in ("dev", "prod")}
    pinned = policy(value="deps/python app/django", environments=["prod"], one_of=["5.0"])
    (finding,) = judge_recorded([pinned], "deps", deps_diff, deps_cells)
    assert finding["values"] == {"prod": "5.1"} and finding["check"] == "policy.value"
    # health: an equal host fact (the time zone) is judged.
    health_cells = {label: health_cell() for label in ("dev", "prod")}
    _, sink = recorded(health_diff, health_cells)
    assert sink[("host", "time_zone")] == {"dev": "Etc/UTC", "prod": "Etc/UTC"}
    local = policy(must_differ="health/host/time_zone", environments=["dev", "prod"])
    (finding,) = judge_recorded([local], "health", health_diff, health_cells)
    assert finding["values"] == {"dev": "Etc/UTC", "prod": "Etc/UTC"}


def test_without_policies_nothing_is_recorded():
    context = {"baseline": "dev", "production": {"prod"}}
    cells = {label: deps_cell(python={"app": env({"django": dist("5.1")})}) for label in ("dev", "prod")}
    assert deps_diff.diff(["dev", "prod"], cells, context) == [] and "compared_values" not in context


def test_unknown_columns_and_single_environments_are_not_judged():
    rule = policy(must_equal="env/app/X")
    cells = {"dev": env_cell(X="1"), "prod": unknown_cell("unreachable")}
    assert judge([rule], "env", cells) == ([], set())
    assert policies.unmatched([rule], set(), ["env"]) == [
        {"type": "must_equal", "path": "env/app/X", "reason": "because", "source": "r.yml policy 1"}
    ]
    assert policies.unmatched([rule], set(), ["git"]) == []  # its area was not audited


def test_a_broken_policy_stays_a_finding_of_its_own():
    rule = policy(must_equal="env/app/LOG_LEVEL")
    cells = {"dev": env_cell(LOG_LEVEL="DEBUG"), "prod": env_cell(LOG_LEVEL="INFO")}
    (broken,) = judge([rule], "env", cells)[0]
    change = dict(broken, check="env.value_changed", kind="changed", severity="critical")
    del change["policy"]
    merged = one_finding_per_fact([change, broken])
    assert [f["check"] for f in merged] == ["env.value_changed", "policy.must_equal"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"must_equal": "env/app/X", "reason": "r"}, "severity is required"),
        ({"must_equal": "env/app/X", "severity": "high"}, "reason is required"),
        ({"severity": "high", "reason": "r"}, "exactly one of must_equal, must_differ, value"),
        ({"must_equal": "a/b/c", "must_differ": "a/b/c", "severity": "high", "reason": "r"}, "exactly one of"),
        ({"must_equal": "env/X", "severity": "high", "reason": "r"}, "<area>/<subject>/<key>"),
        ({"must_equal": "nope/app/X", "severity": "high", "reason": "r"}, "names no area"),
        ({"value": "env/app/X", "severity": "high", "reason": "r"}, "needs one_of"),
        ({"must_equal": "env/app/X", "one_of": ["a"], "severity": "high", "reason": "r"}, "value policies only"),
        ({"must_equal": "env/app/X", "environments": ["prod"], "severity": "high", "reason": "r"}, "at least two"),
        ({"must_equal": "env/app/X", "severity": "high", "reason": "r", "secret": "yes"}, "true or false"),
        ({"must_equal": "env/app/X", "severity": "high", "reason": "r", "when": 1}, "unknown field(s) when"),
    ],
)
def test_malformed_policies_name_the_entry_and_line(entry, message):
    import yaml

    text = "rules: []\npolicies:\n" + yaml.safe_dump([entry], default_flow_style=False).replace("\n", "\n  ")
    text = text.replace("policies:\n", "policies:\n  ", 1)
    with pytest.raises(RulesError) as caught:
        parse_sections(text, "r.yml")
    assert message in str(caught.value)
    assert "r.yml policy 1 (line 3)" in str(caught.value)


def test_sections_parse_together_and_unknown_sections_are_refused():
    text = (
        "rules:\n  - {path: env/a/b, reason: r}\n"
        "policies:\n  - {value: env/app/X, one_of: [1, two], severity: low, reason: r}\n"
        "tolerances:\n  - {path: health/host, thresholds: {disk_percent: 95}, reason: r}\n"
    )
    sections = parse_sections(text, "r.yml")
    assert [len(sections[name]) for name in ("rules", "policies", "tolerances")] == [1, 1, 1]
    assert sections["policies"][0]["one_of"] == ["1", "two"]
    assert sections["policies"][0]["source"] == "r.yml policy 1 (line 4)"
    with pytest.raises(RulesError, match="unknown section"):
        parse_sections("polices: []\n", "r.yml")


def test_the_report_says_broken_policies_unmatched_entries_and_tolerances():
    import jsonschema

    from ansible_collections.envparity.audit.plugins.plugin_utils.findings import with_ids
    from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view
    from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown
    from tests.unit.plugins.plugin_utils.test_report_model import SCHEMA, TEMPLATE, sample_audit

    audit = sample_audit()
    rule = policy(must_equal="env/app/LOG_LEVEL", reason="one *level* | everywhere")
    cells = {"dev": env_cell(LOG_LEVEL="DEBUG"), "prod": env_cell(LOG_LEVEL="INFO")}
    audit["findings"] += judge([rule], "env", cells)[0]
    with_ids(audit["findings"])
    audit["unmatched_policies"] = policies.unmatched([policy(value="git/x/y", one_of=["a"])], set(), ["git"])
    audit["tolerances"] = [
        {
            "area": "health",
            "subject": "host",
            "column": "prod",
            "name": "disk_percent",
            "value": 95,
            "default": 85,
            "source": "r.yml tolerance 1 (line 9)",
            "reason": "grown at 95%",
        }
    ]
    audit["unmatched_tolerances"] = []
    document = build_document(audit, "2026-01-01T00:00:00Z", "inventory/lab")
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["policies_broken"] == 1
    markdown = render_markdown(str(TEMPLATE), build_view(document))
    section = markdown.split("## Team policies and tolerances", 1)[1].split("\n## ", 1)[0]
    assert "**policy broken**: **high** · env · app · `LOG_LEVEL`" in section
    assert "`policy.must_equal`) on prod: one \\*level\\* \\| everywhere (r.yml policy 1)" in section
    assert "policy `git/x/y` (r.yml policy 1) matched no compared value" in section
    assert "health · host on prod: `disk_percent` = `95` (inventory: `85`); r.yml tolerance 1 (line 9)" in section
