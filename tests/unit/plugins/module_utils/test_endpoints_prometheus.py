"""Service-level metrics: the Prometheus HTTP API read from a real HTTP server on 127.0.0.1 that
answers as Prometheus does (and as a broken one does), then the metrics diff on those facts."""

import json
import urllib.parse

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import endpoints_prometheus as prom
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import POLICY_DEFAULTS
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_diff import diff, subjects
from ansible_collections.envparity.audit.plugins.plugin_utils.requests import RequestError, prometheus_request
from tests.endpoint_servers import Routes, free_port, serve

CONTEXT = {"baseline": "dev", "production": {"prod"}}


def path(query):
    return "/api/v1/query?" + urllib.parse.urlencode({"query": query})


def vector(*series):
    result = [{"metric": labels, "value": [1700000000.0, value]} for labels, value in series]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def answers(rate, errors, p95, up, delay=0):
    json_headers = {"Content-Type": "application/json"}
    return Routes(
        {
            path(prom.DEFAULT_QUERIES["request_rate"]): (200, json_headers, vector(*rate), delay),
            path(prom.DEFAULT_QUERIES["error_ratio"]): (200, json_headers, vector(*errors), delay),
            path(prom.DEFAULT_QUERIES["p95_latency_seconds"]): (200, json_headers, vector(*p95), delay),
            path("up"): (200, json_headers, vector(*up), delay),
        }
    )


WEB = {"job": "web"}


def healthy(p95="0.05"):
    return answers(
        [(WEB, "12.5")],
        [(WEB, "0")],
        [(WEB, p95)],
        [({"job": "web", "instance": "10.0.0.1:8000"}, "1"), ({"job": "node", "instance": "10.0.0.1:9100"}, "1")],
    )


def collect(routes, timeout=5, area_timeout=30):
    with serve(routes) as port:
        return prom.collect({"url": "http://127.0.0.1:%d" % port, "from": "controller"}, timeout, area_timeout)


def test_the_default_queries_and_up_per_target():
    record = collect(healthy())
    assert record["status"] == "ok"
    assert record["queries"]["request_rate"] == {"status": "ok", "jobs": {"web": 12.5}, "series": 1}
    assert record["queries"]["error_ratio"]["jobs"] == {"web": 0.0}
    assert record["targets"]["jobs"] == {"web": {"10.0.0.1:8000": 1}, "node": {"10.0.0.1:9100": 1}}


def test_errors_empty_answers_slowness_and_size_are_reasons():
    routes = answers([], [], [], [({"job": "web", "instance": "a"}, "1")])
    routes.routes[path(prom.DEFAULT_QUERIES["error_ratio"])] = (500, {}, b"<html>oops</html>", 0)
    error = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode()
    routes.routes[path(prom.DEFAULT_QUERIES["p95_latency_seconds"])] = (400, {}, error, 0)
    huge = b'{"status": "success", "data": {"result": [' + b"1," * prom.MAX_ANSWER_BYTES + b"1]}}"
    routes.routes[path("up")] = (200, {}, huge, 0)
    record = collect(routes)
    assert record["status"] == "ok"  # some answered
    assert record["queries"]["request_rate"] == {"status": "ok", "jobs": {}, "series": 0}
    assert record["queries"]["error_ratio"] == {
        "status": "bad_answer",
        "reason": "the answer is not JSON (HTTP status 500)",
    }
    assert record["queries"]["p95_latency_seconds"]["reason"] == "Prometheus answered an error (bad_data)"
    assert record["targets"]["reason"] == "the answer is larger than %d bytes" % prom.MAX_ANSWER_BYTES
    slow = collect(healthy(), timeout=1, area_timeout=2)  # each answer takes 0 s: fine
    assert slow["status"] == "ok"
    stuck = collect(answers([], [], [], [], delay=3), timeout=1, area_timeout=2)
    assert stuck["status"] == "timeout" and stuck["queries"]["request_rate"]["status"] == "timeout"


def test_an_unreachable_prometheus_and_a_bad_url():
    refused = prom.collect({"url": "http://127.0.0.1:%d" % free_port(), "from": "host"}, 2, 5)
    assert refused["status"] == "refused" and refused["reason"] == "connection refused"
    assert prom.collect({"url": "ftp://x/", "from": "host"}, 2, 5)["status"] == "failed"


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"status": "success"},
        {"status": "success", "data": {"resultType": "matrix", "result": []}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": 1, "value": [0, "1"]}]}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": "1"}]}},
    ],
)
def test_hostile_answers_are_refused(document):
    with pytest.raises(prom.AnswerError):
        prom.parse_vector(document)


def test_values_that_are_not_finite_numbers_are_none():
    series = prom.parse_vector(json.loads(vector((WEB, "NaN"), ({"job": "x" * 500}, "+Inf"))))
    assert prom.by_job(series) == {"web": None, "x" * prom.MAX_LABEL_CHARS: None}
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [0, "2"]}}
    assert prom.by_job(prom.parse_vector(scalar)) == {"(no job)": 2.0}


def test_the_request_validates_and_the_subject_name_is_reserved():
    request = prometheus_request({"url": "http://127.0.0.1:9090"})
    assert request["queries"] == prom.DEFAULT_QUERIES and request["from"] == "controller"
    for bad in (
        {"url": "http://user:CANARYpw@127.0.0.1:9090"},
        {"url": "ftp://127.0.0.1"},
        {"url": "http://127.0.0.1", "queries": {"up": "up"}},
        {"url": "http://127.0.0.1", "queries": {"bad name": "x"}},
        {"url": "http://127.0.0.1", "queries": {"x": ""}},
        {"url": "http://127.0.0.1", "from": "elsewhere"},
        {"queries": {"x": "y"}},
    ):
        with pytest.raises(RequestError) as raised:
            prometheus_request(bad)
        assert "CANARYpw" not in str(raised.value)
    assert subjects({"endpoints": [], "prometheus": request}) == [prom.SUBJECT]


def cell(record):
    return {"endpoints": {}, "policy": dict(POLICY_DEFAULTS), "prometheus": {prom.SUBJECT: record}}


def metrics_findings(dev, prod):
    cells = {"dev": cell(dev) if dev else {"endpoints": {}}, "prod": cell(prod)}
    return {(f["key"], f["check"]): f for f in diff(["dev", "prod"], cells, CONTEXT)}


def test_the_same_metrics_everywhere_is_no_finding():
    assert metrics_findings(collect(healthy()), collect(healthy())) == {}


def test_production_targets_down_errors_and_latency_against_the_baseline():
    prod = collect(
        answers(
            [(WEB, "30"), ({"job": "api"}, "0")],
            [(WEB, "0.25")],
            [(WEB, "0.9")],
            [({"job": "web", "instance": "10.0.0.2:8000"}, "1"), ({"job": "node", "instance": "10.0.0.2:9100"}, "0")],
        )
    )
    found = metrics_findings(collect(healthy()), prod)
    down = found[("up.node", "endpoints.target_down")]
    assert down["values"]["prod"] == "down: 10.0.0.2:9100" and down["severity"] == "high"
    assert found[("up.node", "endpoints.targets_changed")]["values"] == {
        "dev": "1 of 1 targets up",
        "prod": "0 of 1 targets up",
    }
    errors = found[("error_ratio.web", "endpoints.error_ratio")]
    assert errors["measured"] is True and errors["values"] == {"prod": "25.0 % 5xx", "dev": "0.0 % 5xx"}
    slower = found[("p95_latency_seconds.web", "endpoints.service_slower")]
    assert slower["measured"] is True and slower["values"] == {"prod": "p95 900 ms", "dev": "p95 50 ms"}
    assert found[("traffic.api", "endpoints.traffic_changed")]["kind"] == "extra"
    # a p95 within the tolerances (250 ms and 50 %) is not slower
    assert not [key for key in metrics_findings(collect(healthy()), collect(healthy("0.25"))) if "p95" in key[0]]


def test_an_error_ratio_no_higher_than_the_baselines_is_no_finding():
    routes = healthy()
    routes.routes[path(prom.DEFAULT_QUERIES["error_ratio"])] = (200, {}, vector((WEB, "0.3")), 0)
    same = collect(routes)
    assert ("error_ratio.web", "endpoints.error_ratio") not in metrics_findings(same, same)
    alone = metrics_findings(None, same)  # no baseline Prometheus: the tolerance alone
    assert alone[("error_ratio.web", "endpoints.error_ratio")]["values"] == {"prod": "30.0 % 5xx"}


def test_failures_and_empty_queries_are_unknown_never_no_drift():
    refused = prom.collect({"url": "http://127.0.0.1:%d" % free_port(), "from": "host"}, 2, 5)
    found = metrics_findings(collect(healthy()), refused)
    failed = found[("prometheus", "endpoints.prometheus_failed")]
    assert failed["kind"] == "unknown" and failed["severity"] == "high" and "connection refused" in failed["message"]
    empty = collect(answers([], [], [], [({"job": "web", "instance": "a"}, "1")]))
    found = metrics_findings(None, empty)
    assert found[("query.request_rate", "endpoints.metrics_empty")]["values"]["prod"] == "no series"
    hostile = {"status": "ok", "queries": {"x": {"status": "ok", "jobs": {"web": "1e9"}}}, "targets": 7}
    assert ("query.up", "endpoints.metrics_query_failed") in metrics_findings(None, hostile)


def test_the_controller_side_part_reads_a_prometheus_of_an_environment_without_endpoints():
    from ansible_collections.envparity.audit.plugins.plugin_utils import endpoints_controller

    with serve(healthy()) as port:
        request = {"endpoints": [], "prometheus": prometheus_request({"url": "http://127.0.0.1:%d" % port})}
        results = endpoints_controller.start(request, "00" * 32, {}).results()
    data = {"endpoints": {}, "policy": {}}
    endpoints_controller.merge(data, results)
    assert data["prometheus"][prom.SUBJECT]["queries"]["request_rate"]["jobs"] == {"web": 12.5}
    on_host = {"endpoints": [], "prometheus": dict(request["prometheus"], **{"from": "host"})}
    assert endpoints_controller.start(on_host, "00" * 32, {}) is None
