"""The endpoints request (what is stored and may be shown), its secrets, and how the controller's
probes join a host's facts."""

import json

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.collect import pack
from ansible_collections.envparity.audit.plugins.plugin_utils import controller_side, endpoints_controller
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import unpack
from ansible_collections.envparity.audit.plugins.plugin_utils.requests import (
    RequestError,
    endpoints_request,
    endpoints_secrets,
)
from tests.endpoint_servers import Routes, serve

CANARY = "CANARYpw9Xq2Lm7Zt4Vb"
KEY = bytes.fromhex("ab" * 32)


def params(*endpoints, **settings):
    return {"drift_endpoints": list(endpoints), **settings}


def test_credentials_and_header_values_stay_out_of_the_request():
    variables = params(
        {"name": "a", "url": "https://u:%s@example.test/x?token=%s" % (CANARY, CANARY), "headers": {"X-Key": CANARY}},
        {"name": "b", "url": "http://example.test/", "from": "host", "method": "head", "expect_status": "204"},
    )
    request = build_request("endpoints", variables)
    assert CANARY not in json.dumps(request)
    first, second = request["endpoints"]
    assert first["url"].startswith("https://u:***@example.test/x?token=***")
    assert first["header_names"] == ["X-Key"] and first["from"] == "controller"
    assert (second["method"], second["expect_status"], second["from"]) == ("HEAD", 204, "host")
    assert request["samples"] == 5 and request["slower_ms"] == 250
    secrets = endpoints_secrets(variables)
    assert secrets == {"a": {"url": variables["drift_endpoints"][0]["url"], "headers": {"X-Key": CANARY}}}


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"name": "a"}, "needs a name and a url"),
        ({"name": "a", "url": "http://x/", "method": "POST"}, "read-only"),
        ({"name": "a", "url": "http://x/", "from": "elsewhere"}, "controller or host"),
        ({"name": "a", "url": "http://x/", "samples": 0}, "between 1 and 100"),
        ({"name": "a", "url": "http://x/", "samples": 1000}, "between 1 and 100"),
    ],
)
def test_bad_endpoints_are_refused(endpoint, message):
    with pytest.raises(RequestError, match=message):
        build_request("endpoints", params(endpoint))


def test_names_are_unique_and_limits_positive():
    with pytest.raises(RequestError, match="unique"):
        build_request("endpoints", params({"name": "a", "url": "http://x/"}, {"name": "a", "url": "http://y/"}))
    with pytest.raises(RequestError, match="drift_endpoints_timeout"):
        build_request("endpoints", params({"name": "a", "url": "http://x/"}, drift_endpoints_timeout=0))
    assert endpoints_request(params()) is None


def test_only_the_host_side_secrets_travel_to_the_host():
    request = {"endpoints": [{"name": "a", "from": "controller"}, {"name": "b", "from": "host"}]}
    secrets = {"a": {"headers": {"X": "1"}}, "b": {"headers": {"X": "2"}}}
    assert endpoints_controller.host_secrets(request, secrets) == {"b": {"headers": {"X": "2"}}}
    assert endpoints_controller.start({"endpoints": [{"name": "b", "from": "host"}]}, KEY, {}) is None


def test_controller_probes_join_the_hosts_facts():
    with serve(Routes({"/": (200, {}, b"{}", 0)})) as port:
        request = build_request(
            "endpoints",
            params(
                {"name": "c", "url": "http://127.0.0.1:%d/" % port, "samples": 1},
                {"name": "h", "url": "http://127.0.0.1:1/", "from": "host"},
            ),
        )
        secrets = {"endpoints": {"c": {"headers": {"X": "1"}}}}
        running = controller_side.start({"endpoints": request}, KEY, secrets)
        assert secrets == {"endpoints": {}}  # the controller's own never travel to the host
        host_facts = {"areas": {"endpoints": {"status": "ok", "data": {"endpoints": {"h": {"status": "refused"}}}}}}
        finished = controller_side.finish(running)
        merged = unpack(controller_side.merged_blob(pack(host_facts), finished))
    records = merged["areas"]["endpoints"]["data"]["endpoints"]
    assert records["h"]["status"] == "refused" and records["c"]["http"]["status"] == 200
    failed = pack({"areas": {"endpoints": {"status": "failed", "reason": "x"}}})
    assert controller_side.merged_blob(failed, finished) == failed
    assert controller_side.merged_blob("not a blob", finished) == "not a blob"


def test_areas_without_a_controller_side_part_start_nothing():
    secrets = {"env": {"x": "1"}}
    assert controller_side.start({"env": {"files": []}, "git": {"repos": []}}, KEY, secrets) == {}
    assert secrets == {"env": {"x": "1"}}
