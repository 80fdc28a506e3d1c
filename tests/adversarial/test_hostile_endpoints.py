"""Hostile endpoints: what a server answers is hostile input to the probe and to the diff.

Real servers on 127.0.0.1; each answer is probed as the area probes it, and the facts go through
the diff and into a finding's text: bounded, never a traceback, never a secret.
"""

import json

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import DEFAULTS
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_probe import MAX_HEADER_CHARS, probe
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_diff import diff
from tests.endpoint_servers import Routes, serve

KEY = b"k" * 32
CANARY = "ghp_" + "CANARYq8Wz3Xv6Tn1Rb4Kd7Lm2Pj5Hs9Yc0Fg"
SETTINGS = dict(DEFAULTS, samples=1, timeout=3)


def nested(depth):
    return ("[" * depth + "]" * depth).encode()


HOSTILE = {
    "/long-header": (200, {"X-Frame-Options": "A" * 70000}, b"{}", 0),
    "/many-headers": (200, {"X-H%d" % i: "v" for i in range(150)}, b"{}", 0),
    "/deep-json": (200, {}, nested(20000), 0),
    "/wide-json": (200, {}, json.dumps({"k%d" % i: i for i in range(20000)}).encode(), 0),
    "/not-utf8": (200, {}, b'{"a": "\xff\xfe"}', 0),
    "/secrets": (
        200,
        {"Set-Cookie": "sid=%s; Secure; HttpOnly" % CANARY, "Server": "nginx | injected `code` %s" % CANARY},
        json.dumps(
            {"token": CANARY, "nested": {"password": "hunter2hunter2"}, "dsn": "postgres://u:%s@db/x" % CANARY}
        ).encode(),
        0,
    ),
    "/redirect-leak": (302, {"Location": "https://user:%s@elsewhere.example/?token=%s" % (CANARY, CANARY)}, b"", 0),
}


@pytest.fixture(scope="module")
def answers():
    with serve(Routes(HOSTILE)) as port:
        yield {
            # connect_to: a redirect elsewhere is recorded, never followed (only loopback is reached)
            path: probe(
                {
                    "name": path,
                    "url": "http://app.test%s" % path,
                    "connect_to": "127.0.0.1:%d" % port,
                    "from": "host",
                    "json_fields": [],
                },
                SETTINGS,
                KEY,
            )
            for path in HOSTILE
        }


def test_malformed_answers_are_reasons(answers):
    assert answers["/long-header"]["status"] == "bad_response"
    assert answers["/many-headers"]["status"] == "bad_response"
    assert "HTTPException" in answers["/many-headers"]["reason"] or "Headers" in answers["/many-headers"]["reason"]
    assert answers["/deep-json"]["http"]["body"]["kind"] == "not_json"
    assert answers["/not-utf8"]["http"]["body"]["kind"] == "not_json"
    wide = answers["/wide-json"]["http"]["body"]
    assert wide["kind"] == "too_large" or (len(wide["fields"]) <= 200 and wide["truncated"])


def test_no_secret_from_an_answer_reaches_the_facts_or_a_finding(answers):
    secrets = answers["/secrets"]
    facts = json.dumps(answers)
    assert CANARY not in facts and "hunter2hunter2" not in facts
    fields = secrets["http"]["body"]["fields"]
    assert fields["token"]["secret"] and fields["nested.password"]["secret"]
    assert fields["dsn"]["value"] == "postgres://u:***@db/x"
    assert set(secrets["http"]["cookies"]) == {"sid"}
    assert len(secrets["http"]["headers"]["server"]) <= MAX_HEADER_CHARS
    assert answers["/redirect-leak"]["http"]["redirects"][0]["location"].startswith("https://user:***@elsewhere")
    cells = {
        "dev": {"endpoints": {name: answers["/wide-json"] for name in ("a",)}},
        "prod": {"endpoints": {"a": answers["/secrets"]}},
    }
    findings = diff(["dev", "prod"], cells, {"baseline": "dev", "production": {"prod"}})
    assert findings and CANARY not in json.dumps(findings)
