"""The endpoints diff on facts shaped as the probe writes them, with certificates made in the test."""

import json

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_diff import diff, slower, subjects
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_tls import (
    hostname_matches,
    read_certificate,
    relative_names,
)
from tests.endpoint_servers import der_b64, make_ca, make_cert

CA = make_ca("Lab CA")
OTHER_CA = make_ca("Other CA")
CONTEXT = {"baseline": "dev", "production": {"prod"}}
FP = "hmac-sha256:" + "a" * 24


def record(url="https://app.example.test/api/health", cert=None, **changes):
    http = {
        "status": 200,
        "redirects": [],
        "final_url": url,
        "content_type": "application/json",
        "size": 40,
        "size_truncated": False,
        "headers": {"strict-transport-security": "max-age=60", "x-content-type-options": "nosniff"},
        "cookies": {"sid": {"secure": True, "httponly": True, "samesite": "Lax"}},
        "body": {
            "kind": "json",
            "fields": {
                "version": {"type": "str", "secret": False, "value": "1.4.2", "fp": None},
                "token": {"type": "str", "secret": True, "value": None, "fp": FP},
            },
        },
    }
    http.update(changes.pop("http", {}))
    result = {
        "status": "ok",
        "reason": None,
        "url": url,
        "from": "controller",
        "http": http,
        "timing": {"samples": 5, "failed": 0, "median_ms": 10.0, "p95_ms": 12.0, "max_ms": 12.0},
    }
    if url.startswith("https"):
        cert = cert if cert is not None else make_cert(["app.example.test", "www.app.example.test"], issuer=CA)[1]
        result["tls"] = {
            "protocol": "TLSv1.3",
            "cipher": "TLS_AES_256_GCM_SHA384",
            "verified": True,
            "verify_error": None,
            "cert_der": der_b64(cert),
            "legacy": {"TLSv1": False, "TLSv1.1": False},
        }
    result.update(changes)
    return result


def cells(dev, prod):
    return {"dev": {"endpoints": {"api": dev}}, "prod": {"endpoints": {"api": prod}}}


def run(dev, prod):
    return {(f["key"], f["check"]): f for f in diff(["dev", "prod"], cells(dev, prod), CONTEXT)}


def test_the_same_answer_everywhere_is_no_finding():
    assert run(record(), record()) == {}


def test_subjects_are_the_endpoint_names():
    assert subjects({"endpoints": [{"name": "b"}, {"name": "a"}]}) == ["a", "b"]


def test_a_production_certificate_near_expiry_and_a_missing_san():
    near = make_cert(["app.example.test"], issuer=CA, days_left=10)[1]
    found = run(record(), record(cert=near))
    expiring = found[("tls.expiry", "endpoints.cert_expiring")]
    assert expiring["severity"] == "high" and "10 days" in expiring["message"]
    assert found[("tls.san.www.{host}", "endpoints.cert_names_changed")]["kind"] == "missing"
    critical = run(record(), record(cert=make_cert(["app.example.test"], issuer=CA, days_left=3)[1]))
    assert critical[("tls.expiry", "endpoints.cert_expiring")]["severity"] == "critical"
    expired = run(record(), record(cert=make_cert(["app.example.test"], issuer=CA, days_left=-2)[1]))
    assert expired[("tls.expiry", "endpoints.cert_expired")]["severity"] == "critical"
    future = run(record(), record(cert=make_cert(["app.example.test"], issuer=CA, not_before_days=2)[1]))
    assert ("tls.expiry", "endpoints.cert_not_yet_valid") in future


def test_dev_near_expiry_is_no_policy_finding():
    near = make_cert(["app.example.test", "www.app.example.test"], issuer=CA, days_left=3)[1]
    assert run(record(cert=near), record()) == {}


def test_issuer_trust_and_hostname():
    other = make_cert(["other.example.test"], issuer=OTHER_CA)[1]
    prod = record(cert=other)
    prod["tls"].update(verified=False, verify_error="unable to get local issuer certificate")
    found = run(record(), prod)
    assert found[("tls.issuer", "endpoints.cert_issuer_changed")]["values"] == {
        "dev": "CN=Lab CA",
        "prod": "CN=Other CA",
    }
    assert found[("tls.trust", "endpoints.cert_untrusted")]["severity"] == "critical"
    assert found[("tls.hostname", "endpoints.cert_hostname_mismatch")]["severity"] == "critical"


def test_headers_cookies_redirects_and_version_leaks_in_production():
    prod = record(
        url="http://app.example.test/",
        http={
            "headers": {"server": "nginx/1.18.0", "x-content-type-options": "nosniff"},
            "cookies": {"sid": {"secure": False, "httponly": True, "samesite": None}},
            "final_url": "http://app.example.test/",
        },
    )
    dev = record(
        url="http://app.example.test/",
        http={
            "redirects": [{"status": 301, "location": "https://app.example.test/", "followed": True}],
            "final_url": "https://app.example.test/",
        },
    )
    found = run(dev, prod)
    assert ("redirects", "endpoints.no_https_redirect") in found
    assert found[("redirects", "endpoints.redirects_changed")]["values"] == {"dev": "301 to https", "prod": "none"}
    assert found[("headers.strict-transport-security", "endpoints.header_changed")]["kind"] == "missing"
    assert found[("headers.server", "endpoints.version_leak")]["severity"] == "low"
    assert found[("cookies.sid", "endpoints.cookie_changed")]["values"]["prod"] == "httponly, no samesite"


def test_hsts_missing_on_https_in_production():
    prod = record()
    del prod["http"]["headers"]["strict-transport-security"]
    found = run(record(), prod)
    assert found[("headers.strict-transport-security", "endpoints.hsts_missing")]["severity"] == "high"


def test_body_fields_version_and_secrets_never_shown():
    prod = record()
    prod["http"]["body"]["fields"]["version"]["value"] = "1.3.0"
    prod["http"]["body"]["fields"]["token"]["fp"] = "hmac-sha256:" + "b" * 24
    prod["http"]["body"]["fields"]["legacy"] = {"type": "bool", "secret": False, "value": "true", "fp": None}
    found = run(record(), prod)
    version = found[("body.version", "endpoints.version_changed")]
    assert version["values"] == {"dev": "1.4.2", "prod": "1.3.0"}
    token = found[("body.token", "endpoints.body_changed")]
    # named by letter, as every area names secrets: a per-run fingerprint would read as a change
    # from one audit to the next (history) and is never shown
    assert token["values"] == {"dev": "‹secret A›", "prod": "‹secret B›"}
    assert "aaaaaaaa" not in token["message"] and "bbbbbbbb" not in token["message"]
    assert found[("body.legacy", "endpoints.body_changed")]["kind"] == "extra"


def test_status_and_expect_status():
    prod = record(http={"status": 503}, expect_status=None)
    found = run(record(), prod)
    assert found[("status", "endpoints.status_changed")]["values"] == {"dev": "200", "prod": "503"}
    assert ("status", "endpoints.status_unexpected") in found
    assert ("status", "endpoints.status_unexpected") in run(record(), record(expect_status=204))


@pytest.mark.parametrize(
    ("base", "other", "expected"),
    [
        ((10, 12), (11, 300), False),  # one slow sample: the median is the same
        ((10, 12), (200, 240), False),  # within the absolute tolerance
        ((900, 1000), (1300, 1400), False),  # within 50%
        ((10, 12), (610, 640), True),
    ],
)
def test_slower_needs_both_tolerances_on_median_and_p95(base, other, expected):
    policy = {"slower_ms": 250, "slower_percent": 50}
    as_timing = lambda pair: {"median_ms": pair[0], "p95_ms": pair[1]}  # noqa: E731
    assert slower(as_timing(base), as_timing(other), policy) is expected


def test_a_slow_production_endpoint_is_one_finding():
    prod = record(timing={"samples": 5, "failed": 0, "median_ms": 610.0, "p95_ms": 640.0, "max_ms": 650.0})
    finding = run(record(), prod)[("timing", "endpoints.slower")]
    assert "median 610.0 ms, p95 640.0 ms, max 650.0 ms over 5 samples" in finding["message"]
    assert finding["measured"] is True  # its figures vary from run to run: history keeps it persisting


def test_failed_probes_and_hostile_facts():
    prod = {"status": "refused", "reason": "connection refused", "url": "https://x/", "from": "host"}
    found = run(record(), prod)
    assert list(found) == [("probe", "endpoints.probe_failed")]
    assert found[("probe", "endpoints.probe_failed")]["values"]["prod"] == "refused: connection refused"
    hostile = record()
    hostile["http"]["headers"] = ["not", "a", "dict"]
    hostile["http"]["body"] = {"fields": {"x": 5}}
    hostile["tls"]["cert_der"] = "!!!notbase64"
    json.dumps(diff(["dev", "prod"], cells(record(), hostile), CONTEXT))  # no crash, plain data


def test_certificate_names():
    cert = read_certificate(der_b64(make_cert(["*.example.test", "example.test"], issuer=CA)[1]))
    assert hostname_matches("a.example.test", cert["sans"], cert["subject"])
    assert not hostname_matches("a.b.example.test", cert["sans"], cert["subject"])
    assert relative_names("example.test", cert["sans"]) == ["*.{host}", "{host}"]
    assert read_certificate("") is None and read_certificate("AAAA") is None


def test_legacy_tls_offered_in_production():
    prod = record()
    prod["tls"]["legacy"] = {"TLSv1": True, "TLSv1.1": False}
    found = run(record(), prod)
    assert found[("tls.legacy", "endpoints.legacy_tls")]["values"] == {"dev": None, "prod": "TLSv1 offered"}
    assert found[("tls.legacy", "endpoints.tls_changed")]["values"] == {"dev": "none offered", "prod": "TLSv1 offered"}
    untestable = record()
    untestable["tls"]["legacy"] = {"TLSv1": None, "TLSv1.1": None}
    assert list(run(record(), untestable)) == [("tls.legacy", "endpoints.tls_changed")]


def test_the_commit_an_endpoint_runs_is_its_checkouts_head():
    dev, prod = record(git_repo="app"), record(git_repo="app")
    for rec, commit in ((dev, "1a2b3c4"), (prod, "9f8e7d6")):
        rec["http"]["body"]["fields"]["commit"] = {"type": "str", "secret": False, "value": commit, "fp": None}
    heads = {"dev": "1a2b3c4d5e6f" + "0" * 28, "prod": "abcdef0123" + "0" * 30}
    git = {label: {"repos": {"app": {"status": "ok", "head": head}}} for label, head in heads.items()}
    context = dict(CONTEXT, area_cells=lambda area: git if area == "git" else {})
    found = {(f["key"], f["check"]): f for f in diff(["dev", "prod"], cells(dev, prod), context)}
    mismatch = found[("body.commit", "endpoints.commit_not_checkout")]
    assert mismatch["environments"] == ["prod"] and mismatch["severity"] == "high"
    assert mismatch["message"].startswith("prod's api says 9f8e7d6, prod's checkout app is at abcdef0123")
    # without the git area's facts (not in this run) nothing is said
    assert ("body.commit", "endpoints.commit_not_checkout") not in run(dev, prod)


def test_credentials_withheld_are_said():
    found = run(record(), record(credentials_withheld=True))
    assert found[("credentials", "endpoints.credentials_withheld")]["values"]["prod"].startswith("not sent")
