"""The endpoints area end to end: compare.yml through ansible-runner against the lab's web service
(dev probed from the controller, prod from inside the prod host over SSH)."""

import json
import pathlib
import time

import jsonschema
import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import unpack
from tests.endpoint_servers import Routes, free_port, serve, trickle_server
from tests.readable import readable

from .test_env_audit import SCHEMA, identities, planted

LAB_CANARIES = pathlib.Path("/var/lib/envparity-lab/canaries.json")


def test_endpoints_recall_and_precision_against_the_manifest(audit, lab):
    """With the git area, whose HEAD prod's health commit is compared with (git_repo: app)."""
    result = audit(cmdline="--tags endpoints,git")
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert report["areas"] == ["endpoints", "git"]
    found = identities(report["findings"], "endpoints")
    expected = planted(lab["manifest"], area="endpoints")
    assert expected, "the manifest plants no endpoints drift (was the lab brought up by this tree?)"
    assert sorted(set(expected) - set(found)) == [], "planted but not found"
    assert sorted(set(found) - set(expected)) == [], "found but never planted"
    by_key = {(f["subject"], f["key"]): f for f in report["findings"]}
    expiry = by_key[("api-health", "tls.expiry")]
    assert expiry["severity"] == "high" and expiry["environments"] == ["prod"]
    slow = by_key[("api-search", "timing")]["message"]
    assert "over 5 samples" in slow and "prod: median 6" in slow
    token = by_key[("api-health", "body.cache_token")]
    assert token["values"] == {"dev": "‹secret A›", "prod": "‹secret B›"}  # never a per-run fingerprint
    # the credentials were sent: no 401 anywhere
    assert not any(f["key"] == "status" for f in report["findings"])
    assert "## Area: endpoints" in result.markdown
    # prod's health answers v1.0.0's commit, its checkout is at the hot-fix; dev runs its HEAD
    commit = next(f for f in report["findings"] if f["check"] == "endpoints.commit_not_checkout")
    assert commit["environments"] == ["prod"] and commit["severity"] == "high"
    assert "the code that runs is not the code on disk" in commit["message"]
    # prod's real Prometheus: a target down, a 5xx share far above 1 %; dev has none (not configured)
    metrics = {f["key"]: f for f in report["findings"] if f["subject"] == "prometheus-metrics"}
    errors = metrics["error_ratio.web"]
    assert errors["measured"] is True and errors["severity"] == "high", errors
    assert "of its requests with a 5xx on prod" in errors["message"]
    assert float(errors["values"]["prod"].split()[0]) > 10
    assert metrics["up.node"]["values"]["prod"] == "down: 127.0.0.1:29100"
    assert metrics["*"]["values"] == {"dev": "not configured", "prod": "configured"}


def test_every_failure_is_a_bounded_reason(audit, lab):
    """Refused, silent, not JSON, huge and a bad URL: each endpoint says why, the run reports."""
    routes = Routes(
        {
            "/bad": (200, {"Content-Type": "application/json"}, b"{oops", 0),
            "/huge": (200, {}, lambda stream: [stream.write(b"x" * 65536) for _ in range(1600)], 0),
        }
    )
    with serve(routes) as port, trickle_server() as silent:
        endpoints = [
            {"name": "refused", "url": "http://127.0.0.1:%d/" % free_port()},
            {"name": "silent", "url": "http://127.0.0.1:%d/" % silent, "from": "host"},
            {"name": "bad-json", "url": "http://127.0.0.1:%d/bad" % port, "samples": 1},
            {"name": "huge", "url": "http://127.0.0.1:%d/huge" % port, "from": "host", "samples": 1},
            {"name": "not-a-url", "url": "ftp://127.0.0.1/"},
        ]
        started = time.monotonic()
        result = audit(
            cmdline="--tags endpoints",
            extravars={"drift_endpoints": endpoints, "drift_endpoints_timeout": 1, "drift_keep_run_dir": True},
        )
        elapsed = time.monotonic() - started
    assert result.rc == 0, result.stdout
    assert elapsed < 60
    reasons = {
        f["subject"]: f["values"]["prod"] for f in result.report["findings"] if f["check"] == "endpoints.probe_failed"
    }
    assert reasons == {
        "refused": "refused: connection refused",
        "silent": "timeout: no complete answer within the timeout",
        "not-a-url": "failed: the URL must be http:// or https:// with a host",
    }
    facts = readable(unpack(next(result.report_dir.glob(".runs/*/facts/prod-vm.b64gz")).read_text()))
    records = facts["areas"]["endpoints"]["data"]["endpoints"]
    assert records["bad-json"]["http"]["body"]["kind"] == "not_json"
    assert records["huge"]["http"]["body"]["kind"] == "too_large"


@pytest.mark.parametrize("verbosity", [0, 4])
def test_no_probe_credential_or_body_secret_in_any_output(audit, lab, verbosity):
    """The lab's endpoint canaries (a URL password, a bearer header, tokens in health bodies)
    appear nowhere: stdout, runner artifacts, the report, the kept run directory's facts."""
    canaries = {k: v for k, v in json.loads(LAB_CANARIES.read_text()).items() if k.startswith("endpoints.")}
    assert len(canaries) == 4
    result = audit(cmdline="--tags endpoints", extravars={"drift_keep_run_dir": True}, verbosity=verbosity)
    assert result.rc == 0, result.stdout
    places = {"stdout": result.stdout}
    for root in (result.report_dir, result.private_dir):
        for path in pathlib.Path(root).rglob("*"):
            if not path.is_file() or (path.name == "command" and path.parent.parent.name == "artifacts"):
                continue
            if path.suffix == ".b64gz":
                places[str(path)] = json.dumps(readable(unpack(path.read_text())))
            else:
                places[str(path)] = path.read_text(errors="replace")
    leaks = {name: [p for p, text in places.items() if value in text] for name, value in canaries.items()}
    assert {name: where for name, where in leaks.items() if where} == {}
    # control: the places scanned hold what the audit saw (the masked URL, the fingerprinted token)
    assert any("monitor:***@localhost" in text for text in places.values())
    assert any("cache_token" in text for place, text in places.items() if place.endswith(".b64gz"))
    if verbosity:
        assert "ESTABLISH SSH CONNECTION" in result.stdout


def test_without_the_git_area_the_commit_is_only_compared_across_environments(audit, lab):
    """--tags endpoints alone: no HEAD to compare the body's commit with, so no
    endpoints.commit_not_checkout (docs/endpoints.md); everything else the lab plants is found."""
    result = audit(cmdline="--tags endpoints")
    assert result.rc == 0, result.stdout
    assert result.report["areas"] == ["endpoints"]
    found = identities(result.report["findings"], "endpoints")
    expected = planted(lab["manifest"], "endpoints", audited=["endpoints"])
    assert found == expected
    assert set(planted(lab["manifest"], "endpoints")) - set(expected) == {
        ("endpoints", "api-health", "body.commit", "policy", "endpoints.commit_not_checkout", False)
    }
