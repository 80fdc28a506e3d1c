"""The endpoints probe against real servers on 127.0.0.1, with certificates made in the test."""

import json
import pathlib
import shutil
import subprocess
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import DEFAULTS, collect_area
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_probe import (
    cookie_flags,
    parse_connect_to,
    percentile,
    probe,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_tls import read_certificate
from tests.endpoint_servers import (
    Routes,
    free_port,
    json_body,
    make_ca,
    make_cert,
    serve,
    trickle_server,
    write_pem,
)

KEY = b"k" * 32
COLLECTIONS = pathlib.Path(__file__).resolve().parents[4] / "collections"
CANARY = "sk-live-CANARYx9Qw7Zt3Lm5Vb8Nc2Rd4"
SETTINGS = dict(DEFAULTS, samples=2, timeout=2)


def endpoint(url, **extra):
    item = {"name": "api", "url": url, "from": "controller", "method": "GET", "json_fields": []}
    item.update(extra)
    return item


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    ca_path, _ = write_pem(directory, "ca", None, ca[1])
    good = write_pem(directory, "good", *make_cert(["app.example.test"], issuer=ca))
    selfsigned = write_pem(directory, "self", *make_cert(["app.example.test"]))
    return {"ca": ca_path, "good": good, "self": selfsigned}


HEALTH = {
    "status": "ok",
    "version": "1.4.2",
    "uptime": 1234,
    "db": {"ok": True, "api_token": CANARY},
    "checks": [1, 2],
}


def test_a_json_health_body_is_read_key_by_key_with_secrets_fingerprinted():
    routes = Routes(
        {
            "/health": (
                200,
                {
                    "Content-Type": "application/json",
                    "X-Frame-Options": "DENY",
                    "X-Powered-By": "Express 4.18",
                    "Set-Cookie": ["session=%s; Secure; HttpOnly; SameSite=lax" % CANARY, "theme=dark"],
                },
                json_body(HEALTH),
                0,
            )
        }
    )
    with serve(routes) as port:
        record = probe(endpoint("http://127.0.0.1:%d/health" % port), SETTINGS, KEY)
    assert record["status"] == "ok", record
    http = record["http"]
    assert http["status"] == 200 and http["redirects"] == []
    assert http["headers"] == {"x-frame-options": "DENY", "x-powered-by": "Express 4.18", "server": "TestServer"}
    assert http["cookies"] == {
        "session": {"secure": True, "httponly": True, "samesite": "Lax"},
        "theme": {"secure": False, "httponly": False, "samesite": None},
    }
    fields = http["body"]["fields"]
    assert fields["version"]["value"] == "1.4.2" and fields["db.ok"]["value"] == "true"
    assert fields["db.api_token"]["secret"] and fields["db.api_token"]["value"] is None
    assert fields["db.api_token"]["fp"].startswith("hmac-sha256:")
    assert "uptime" not in fields  # volatile
    assert fields["checks[]"]["value"] == "2"
    assert record["timing"]["samples"] == 2 and record["timing"]["p95_ms"] >= record["timing"]["median_ms"]
    assert CANARY not in json.dumps(record)
    # the warm-up is not timed: 1 + 2 requests, plus the first
    assert len(routes.seen) == 4


def test_json_fields_select_keys():
    routes = Routes({"/": (200, {}, json_body(HEALTH), 0)})
    with serve(routes) as port:
        record = probe(endpoint("http://127.0.0.1:%d/" % port, json_fields=["db"]), SETTINGS, KEY)
    assert sorted(record["http"]["body"]["fields"]) == ["db.api_token", "db.ok"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_https_through_connect_to_keeps_the_url_host_for_sni_and_host(pki):
    routes = Routes({"/": (200, {"Strict-Transport-Security": "max-age=60"}, b"{}", 0)})
    with serve(routes, pki["good"]) as port:
        record = probe(
            endpoint("https://app.example.test/", connect_to="127.0.0.1:%d" % port, ca_file=str(pki["ca"])),
            SETTINGS,
            KEY,
        )
    assert record["status"] == "ok", record
    assert routes.seen[0]["headers"]["Host"] == "app.example.test"
    tls = record["tls"]
    assert tls["verified"] is True and tls["verify_error"] is None
    assert tls["protocol"] in ("TLSv1.2", "TLSv1.3") and tls["cipher"]
    assert tls["legacy"] == {"TLSv1": False, "TLSv1.1": False}
    cert = read_certificate(tls["cert_der"])
    assert cert["sans"] == ["app.example.test"] and cert["issuer"] == "CN=Test CA" and cert["key"] == "EC secp256r1"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_untrusted_certificate_is_read_and_credentials_are_withheld(pki):
    routes = Routes({"/": (200, {}, b"{}", 0)})
    with serve(routes, pki["self"]) as port:
        record = probe(
            endpoint("https://app.example.test/", connect_to="127.0.0.1:%d" % port, ca_file=str(pki["ca"])),
            SETTINGS,
            KEY,
            {"headers": {"Authorization": "Bearer " + CANARY}},
        )
    assert record["status"] == "ok"
    assert record["tls"]["verified"] is False and "self" in record["tls"]["verify_error"]
    assert record["credentials_withheld"] is True
    assert all("Authorization" not in seen["headers"] for seen in routes.seen)
    assert read_certificate(record["tls"]["cert_der"])["self_signed"] is True


def test_url_credentials_are_sent_and_never_shown():
    routes = Routes({"/": (200, {}, b"{}", 0)})
    secret_url = None
    with serve(routes) as port:
        secret_url = "http://admin:%s@127.0.0.1:%d/" % (CANARY, port)
        shown = "http://admin:***@127.0.0.1:%d/" % port
        record = probe(endpoint(shown), SETTINGS, KEY, {"url": secret_url})
    assert routes.seen[0]["headers"]["Authorization"].startswith("Basic ")
    assert CANARY not in json.dumps(record) and record["url"] == shown


def test_refused_timeout_and_bad_urls_are_reasons():
    refused = probe(endpoint("http://127.0.0.1:%d/" % free_port()), SETTINGS, KEY)
    assert (refused["status"], refused["reason"]) == ("refused", "connection refused")
    with trickle_server() as port:
        started = time.monotonic()
        silent = probe(endpoint("http://127.0.0.1:%d/" % port), dict(SETTINGS, timeout=1), KEY)
        assert time.monotonic() - started < 3
    assert silent["status"] == "timeout"
    assert probe(endpoint("ftp://x/"), SETTINGS, KEY)["status"] == "failed"
    assert probe(endpoint("http://127.0.0.1/", connect_to="nowhere"), SETTINGS, KEY)["status"] == "failed"
    assert "read-only" in probe(endpoint("http://127.0.0.1/", method="POST"), SETTINGS, KEY)["reason"]


def test_a_tls_handshake_with_a_plain_server_fails_clearly():
    with serve(Routes({})) as port:
        record = probe(endpoint("https://127.0.0.1:%d/" % port), SETTINGS, KEY)
    assert record["status"] == "tls_failed" and "TLS" in record["reason"]


def test_a_huge_body_is_not_read_past_the_limit():
    sent = []

    def endless(stream):
        try:
            for _ in range(1600):  # 100 MB in 64 KB chunks, unless the client goes away
                stream.write(b"x" * 65536)
                sent.append(1)
        except OSError:
            pass

    with serve(Routes({"/big": (200, {"Content-Type": "text/plain"}, endless, 0)})) as port:
        started = time.monotonic()
        record = probe(endpoint("http://127.0.0.1:%d/big" % port, samples=1), dict(SETTINGS, samples=1), KEY)
        elapsed = time.monotonic() - started
    assert record["http"]["body"]["kind"] == "too_large" and record["http"]["size_truncated"]
    assert record["http"]["size"] == DEFAULTS["max_body_bytes"]
    assert elapsed < 5 and len(sent) < 1600


def test_invalid_json_and_redirects():
    routes = Routes(
        {
            "/bad": (200, {"Content-Type": "application/json"}, b"{not json", 0),
            "/loop": (302, {"Location": "/loop2"}, b"", 0),
            "/loop2": (302, {"Location": "/loop"}, b"", 0),
            "/moved": (301, {"Location": "/bad"}, b"", 0),
            "/away": (301, {"Location": "https://elsewhere.example/"}, b"", 0),
        }
    )
    with serve(routes) as port:
        base = "http://127.0.0.1:%d" % port
        bad = probe(endpoint(base + "/bad"), SETTINGS, KEY)
        loop = probe(endpoint(base + "/loop"), SETTINGS, KEY)
        moved = probe(endpoint(base + "/moved"), SETTINGS, KEY)
        away = probe(endpoint(base + "/away", connect_to="127.0.0.1:%d" % port), SETTINGS, KEY)
    assert bad["http"]["body"]["kind"] == "not_json"
    assert loop["status"] == "redirect_loop"
    assert moved["http"]["redirects"] == [{"status": 301, "location": "/bad", "followed": True}]
    assert moved["http"]["final_url"].endswith("/bad")
    # connect_to pins one address: another origin is never reached through it
    assert away["http"]["status"] == 301 and away["http"]["redirects"][0]["followed"] is False


def test_the_area_time_bounds_every_probe():
    with serve(Routes({"/slow": (200, {}, b"{}", 1.5)})) as port:
        started = time.monotonic()
        facts = collect_area(
            {
                "endpoints": [endpoint("http://127.0.0.1:%d/slow" % port, **{"from": "host"})],
                "samples": 3,
                "area_timeout": 1,
                "timeout": 3,
            },
            KEY,
        )
        assert time.monotonic() - started < 2
    record = facts["endpoints"]["api"]
    assert record["status"] == "timeout" and "drift_endpoints_area_timeout" in record["reason"]
    assert facts["policy"]["slower_ms"] == 250


def test_the_host_probes_only_its_own_endpoints():
    facts = collect_area({"endpoints": [endpoint("http://127.0.0.1:1/")]}, KEY)
    assert facts["endpoints"] == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:8443", ("127.0.0.1", 8443)), ("[::1]:443", ("::1", 443)), (None, None)],
)
def test_parse_connect_to(value, expected):
    assert parse_connect_to(value) == expected


def test_percentile_and_cookie_names_only():
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3 and percentile([5, 1, 3, 2, 4], 0.95) == 5
    assert cookie_flags([("set-cookie", "sid=%s; Secure" % CANARY)]) == {
        "sid": {"secure": True, "httponly": False, "samesite": None}
    }


@pytest.mark.parametrize(
    ("head", "scheme"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", "http"),  # a body one byte at a time
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", "http"),  # a header line that never ends
        (b"", "https"),  # a TLS handshake that never completes
    ],
)
def test_a_server_that_trickles_is_cut_at_the_request_deadline(head, scheme):
    with trickle_server(head) as port:
        started = time.monotonic()
        record = probe(endpoint("%s://127.0.0.1:%d/" % (scheme, port)), dict(SETTINGS, timeout=1), KEY)
        elapsed = time.monotonic() - started
    assert (record["status"], record["reason"]) == ("timeout", "no complete answer within the timeout")
    assert elapsed < 2.5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_legacy_protocols_offered_are_seen(pki):
    with serve(Routes({"/": (200, {}, b"{}", 0)}), pki["good"], legacy=True) as port:
        record = probe(endpoint("https://127.0.0.1:%d/" % port, samples=1), SETTINGS, KEY)
    assert record["tls"]["legacy"] == {"TLSv1": True, "TLSv1.1": True}
    assert record["tls"]["protocol"] == "TLSv1.3"  # what a modern client negotiates


def python38():
    """A Python 3.8 that runs (PATH's python3.8, or a pyenv-installed one whose shim is inactive)."""
    candidates = [shutil.which("python3.8")] + sorted(
        str(p) for p in pathlib.Path.home().glob(".pyenv/versions/3.8*/bin/python")
    )
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


PYTHON38 = python38()
RUN_ON_38 = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import collect_area
request = {"endpoints": [{"name": "a", "url": sys.argv[2], "from": "host", "json_fields": []}], "samples": 1}
print(json.dumps(collect_area(request, b"k" * 32)))
"""


@pytest.mark.skipif(PYTHON38 is None, reason="no python3.8 on this machine")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_probe_runs_on_a_python_38_host(pki):
    """Host code must run on Python 3.8 (vermin checks the syntax; this runs it)."""
    routes = Routes({"/": (200, {"Content-Type": "application/json"}, json_body({"version": "1"}), 0)})
    with serve(routes, pki["good"]) as port:
        proc = subprocess.run(
            [PYTHON38, "-c", RUN_ON_38, str(COLLECTIONS), "https://127.0.0.1:%d/" % port],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)["endpoints"]["a"]
    assert record["http"]["body"]["fields"]["version"]["value"] == "1"
    assert record["tls"]["verified"] is False and read_certificate(record["tls"]["cert_der"])["sans"]
