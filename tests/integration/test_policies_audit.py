"""The team's policies and tolerances of a rules file in a real audit of the lab (ansible-runner,
real SSH): policies that hold and policies that are broken (a finding of its own, with its reason
and line), a policy matching nothing, tolerances that turn lab findings off and on; then the rules
linter on the same file with that audit's report."""

import json

from .conftest import LAB_STATE, ROOT
from .test_lint_rules import lint

LAB_RULES = ROOT / "inventory" / "lab" / "drift_rules.yml"
RULES = """\
---
policies:
  - must_equal: docker/app/services.web.image
    environments: [dev, prod]
    severity: high
    reason: prod runs the image dev tested
  - must_differ: docker/app/services.web.environment.API_KEY
    severity: critical
    reason: the web service has its own API key in each environment
  - must_differ: env/app/*
    secret: true
    environments: [dev, prod]
    severity: critical
    reason: no secret is shared between dev and prod
  - must_differ: env/app/APP_ENV
    severity: high
    reason: each environment names itself
  - value: env/app/LOG_LEVEL
    environments: [prod]
    one_of: [INFO, WARNING]
    severity: medium
    reason: prod logs at INFO or above
  - value: env/app/CELERY_LOG_LEVEL
    environments: [prod]
    one_of: [INFO, WARNING]
    severity: medium
    reason: the workers log at INFO or above in prod
  - must_equal: postgres/nowhere/*
    severity: low
    reason: a database the lab does not have
  - must_equal: endpoints/api-health/status
    severity: high
    reason: the health endpoint answers alike everywhere
  - must_equal: endpoints/api-health/body.cache_token
    severity: low
    reason: one cache token (a policy that cannot hold in the lab)
tolerances:
  - path: health/host
    environments: [prod]
    thresholds: {disk_percent: 95}
    reason: the uploads volume is grown at 95%
  - path: endpoints/api-search
    thresholds: {slower_ms: 60000}
    reason: search is slow by design
  - path: health/stack:ops
    environments: [prod]
    thresholds: {restarts: 0}
    reason: every container of ops in prod is listed, restarted or not
"""


def facts(audit):
    return {(f["area"], f["subject"], f["key"], f["check"]): f for f in audit.findings()}


def test_policies_and_tolerances_in_a_lab_audit(audit, tmp_path):
    plain = audit(extravars={"drift_rules_files": [str(LAB_RULES)]})
    assert plain.rc == 0, plain.stdout
    before = facts(plain)
    assert ("health", "host", "filesystems.uploads.used", "health.disk_full") in before
    assert [key for key in before if key[3] == "health.restarts"] == [
        ("health", "stack:ops", "services.flaky.restarts", "health.restarts")
    ]
    assert not [key for key in before if key[3].startswith("policy.")]

    rules = tmp_path / "team.yml"
    rules.write_text(RULES)
    run = audit(extravars={"drift_rules_files": [str(LAB_RULES), str(rules)]})
    assert run.rc == 0, run.stdout
    after = facts(run)
    report = run.report

    # Policies: the broken ones, each a finding of its own; those that hold give none.
    broken = {key: f for key, f in after.items() if key[3].startswith("policy.")}
    assert sorted(broken) == [
        ("docker", "app", "services.web.image", "policy.must_equal"),
        ("endpoints", "api-health", "body.cache_token", "policy.must_equal"),
        ("env", "app", "CELERY_LOG_LEVEL", "policy.value"),
        ("env", "app", "OPENAI_API_KEY", "policy.must_differ"),
    ]
    image = broken[("docker", "app", "services.web.image", "policy.must_equal")]
    assert image["kind"] == "policy" and image["severity"] == "high" and image["environments"] == ["prod"]
    assert image["values"] == {"dev": "lab/web:1.1", "prod": "lab/web:1.0"}
    assert image["policy"]["source"] == "%s policy 1 (line 3)" % rules
    assert "prod runs the image dev tested" in image["message"]
    shared = broken[("env", "app", "OPENAI_API_KEY", "policy.must_differ")]
    assert shared["severity"] == "critical" and shared["environments"] == ["dev", "prod"]
    assert shared["values"]["dev"] == shared["values"]["prod"] and shared["values"]["dev"].startswith("‹secret A")
    assert "%s policy 3 (line 10)" % rules in shared["message"]
    token = broken[("endpoints", "api-health", "body.cache_token", "policy.must_equal")]
    assert token["values"] == {"dev": "‹secret A›", "prod": "‹secret B›"}  # lettered, never the fingerprint
    assert report["summary"]["policies_broken"] == 4
    # Stable ids: from area, subject, key and check, so the same in every run.
    again = audit(extravars={"drift_rules_files": [str(LAB_RULES), str(rules)]})
    assert {f["id"] for f in again.findings() if "policy" in f} == {f["id"] for f in broken.values()}
    assert all(f["state"] == "persisting" for f in again.findings() if "policy" in f)
    assert report["unmatched_policies"] == [
        {
            "type": "must_equal",
            "path": "postgres/nowhere/*",
            "reason": "a database the lab does not have",
            "source": "%s policy 7 (line 28)" % rules,
        }
    ]

    # Tolerances: findings off (disk in prod; the slow search, planted but timed, so not asserted
    # before), restarts on for every ops container.
    assert ("health", "host", "filesystems.uploads.used", "health.disk_full") not in after
    assert ("endpoints", "api-search", "timing", "endpoints.slower") not in after
    restarts = {key[2]: f for key, f in after.items() if key[3] == "health.restarts"}
    assert set(restarts) > {"services.flaky.restarts", "services.worker.restarts"}
    assert restarts["services.worker.restarts"]["tolerances"] == [
        {"column": "prod", "name": "restarts", "value": 0, "default": 1, "source": "%s tolerance 3 (line 45)" % rules}
    ]
    applied = {
        (t["area"], t["subject"], t["column"], t["name"]): (t["value"], t["default"]) for t in report["tolerances"]
    }
    assert applied[("health", "host", "prod", "disk_percent")] == (95, 85)
    assert applied[("endpoints", "api-search", "prod", "slower_ms")][0] == 60000
    assert report["unmatched_tolerances"] == []

    markdown = run.markdown
    assert "## Team policies and tolerances" in markdown
    assert "no secret is shared between dev and prod" in markdown
    assert "`disk_percent` = `95` (inventory: `85`)" in markdown
    # Secrets by fingerprint only: no canary of the lab in the report.
    canaries = json.loads((LAB_STATE / "canaries.json").read_text())
    written = (run.report_dir / "latest.json").read_text() + markdown
    assert not [name for name, value in canaries.items() if str(value) in written]

    # The linter, with this audit's report: the policy matching nothing is named with its line.
    linted = lint(run.report_dir, "-e", json.dumps({"drift_rules_files": [str(LAB_RULES), str(rules)]}))
    assert linted.returncode == 0, linted.stdout
    said = " ".join((linted.stdout + linted.stderr).split())
    assert "%s:28: unmatched: policy matched nothing in the last audit: postgres/nowhere/*" % rules in said
