"""Service-level metrics of an environment, read from its Prometheus: request rate, 5xx error ratio
and p95 latency per job (PromQL queries, a documented default set), and the `up` state of every
scrape target. Read-only (GET /api/v1/query only) and bounded: one timeout per request and a
deadline for all of them, an answer read up to MAX_ANSWER_BYTES, at most MAX_SERIES series per
query, label values cut. The answer is hostile input: anything that is not the documented API
shape is a reason, never a traceback.

Standard library only (reuses endpoints_probe's bounded request): runs on the controller (`from:
controller`, the default) or inside the host's one module execution (`from: host`).
"""

import json
import math
import time
import urllib.parse

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_probe import (
    ProbeError,
    display_url,
    parse_connect_to,
    request_once,
    split_url,
    tls_context,
)

# The subject the metrics are compared under (an endpoint may not take this name).
SUBJECT = "prometheus-metrics"
# The default queries, each one value per job (`sum by (job)`). The names are the keys compared;
# the error ratio counts a job with requests and no 5xx as 0 (the `or ... * 0`), and assumes the
# usual http_requests_total{code} and http_request_duration_seconds histogram.
DEFAULT_QUERIES = {
    "request_rate": "sum by (job) (rate(http_requests_total[5m]))",
    "error_ratio": (
        '(sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))'
        " or sum by (job) (rate(http_requests_total[5m])) * 0)"
        " / sum by (job) (rate(http_requests_total[5m]))"
    ),
    "p95_latency_seconds": (
        "histogram_quantile(0.95, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))"
    ),
}
# The scrape targets' state: one series per target (job and instance labels).
UP_QUERY = "up"
MAX_ANSWER_BYTES = 1048576
MAX_SERIES = 500
MAX_LABEL_CHARS = 120
MAX_QUERIES = 20
MAX_QUERY_CHARS = 2000


class AnswerError(ValueError):
    """A Prometheus answer that is not the API's documented shape; str() says why (no data)."""


def _label(metric, name):
    value = metric.get(name)
    return value[:MAX_LABEL_CHARS] if isinstance(value, str) and value else None


def _number(text):
    """A sample's value ("1.5", "NaN", "+Inf") as a float, or None when it is not a finite number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_vector(document):
    """[(metric labels, value or None)] of an instant-vector answer (a scalar counts as one series
    without labels); AnswerError when the answer is an error or not of the API's shape."""
    if not isinstance(document, dict):
        raise AnswerError("the answer is not a JSON object")
    if document.get("status") != "success":
        error = document.get("errorType")
        raise AnswerError("Prometheus answered an error (%s)" % (error[:40] if isinstance(error, str) else "unknown"))
    data = document.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise AnswerError("the answer has no data.result list")
    kind = data.get("resultType")
    if kind == "scalar":
        result = data["result"]
        return [({}, _number(result[1] if len(result) == 2 else None))]
    if kind != "vector":
        raise AnswerError("the query does not give an instant vector (%s)" % str(kind)[:20])
    series = []
    for item in data["result"][:MAX_SERIES]:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise AnswerError("a series is not an object with metric labels")
        value = item.get("value")
        if not isinstance(value, list) or len(value) != 2:
            raise AnswerError("a series has no [time, value] pair")
        series.append((item["metric"], _number(value[1])))
    return series


def by_job(series):
    """{job: value} of a query's series (a series without a job label is '(no job)')."""
    values = {}
    for metric, value in series:
        values[_label(metric, "job") or "(no job)"] = value
    return values


def by_target(series):
    """{job: {instance: 1 | 0 | None}} of the `up` query's series."""
    targets = {}
    for metric, value in series:
        job = _label(metric, "job") or "(no job)"
        targets.setdefault(job, {})[_label(metric, "instance") or "(no instance)"] = (
            None if value is None else int(value == 1)
        )
    return targets


def _query(target, query, context, timeout):
    path = target["path"].rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    headers = {"User-Agent": "envparity-audit", "Accept": "application/json", "Connection": "close"}
    summary, _handshake, _elapsed = request_once(
        dict(target, path=path), "GET", headers, timeout, MAX_ANSWER_BYTES, context
    )
    if summary["truncated"]:
        raise AnswerError("the answer is larger than %d bytes" % MAX_ANSWER_BYTES)
    try:
        document = json.loads(summary["body"].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AnswerError("the answer is not JSON (HTTP status %d)" % summary["status"]) from None
    return parse_vector(document)


def collect(config, timeout, area_timeout):
    """The Prometheus facts of one environment: {"status": ok | failed | timeout | ..., "reason",
    "url", "from", "queries": {name: {"status", "reason"?, "jobs"?: {job: value}, "series"?}},
    "targets": {"status", "reason"?, "jobs"?: {job: {instance: 1 | 0 | None}}}}."""
    record = {"status": "ok", "reason": None, "url": display_url(config.get("url") or ""), "from": config["from"]}
    try:
        scheme, host, port, path = split_url(config["url"])
        address = parse_connect_to(config.get("connect_to"))
        context = tls_context(config.get("ca_file"), verify=True) if scheme == "https" else None
    except (ValueError, OSError) as exc:
        return dict(
            record, status="failed", reason=str(exc) if isinstance(exc, ValueError) else "ca_file cannot be used"
        )
    target = {"scheme": scheme, "host": host, "port": port, "path": path.split("?", 1)[0], "address": address}
    deadline = time.monotonic() + area_timeout
    queries = dict(config.get("queries") or DEFAULT_QUERIES)
    results = {}
    for name, query in sorted(queries.items()) + [("up", UP_QUERY)]:
        left = deadline - time.monotonic()
        if left <= 0:
            results[name] = {"status": "timeout", "reason": "not asked within drift_endpoints_area_timeout"}
            continue
        try:
            series = _query(target, query, context, min(timeout, max(1, int(left))))
        except ProbeError as exc:
            results[name] = {"status": exc.status, "reason": exc.reason}
        except AnswerError as exc:
            results[name] = {"status": "bad_answer", "reason": str(exc)}
        else:
            if name == "up":
                results[name] = {"status": "ok", "jobs": by_target(series), "series": len(series)}
            else:
                results[name] = {"status": "ok", "jobs": by_job(series), "series": len(series)}
    record["targets"] = results.pop("up")
    record["queries"] = results
    failed = [entry for entry in [record["targets"]] + list(results.values()) if entry["status"] != "ok"]
    if len(failed) == len(results) + 1:  # nothing answered: the whole Prometheus is unreachable
        record.update(status=failed[0]["status"], reason=failed[0]["reason"])
    return record
