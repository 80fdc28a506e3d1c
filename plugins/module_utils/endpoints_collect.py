"""Collect the endpoints area: probe every requested endpoint concurrently, bounded in number of
probes at once and in time for the whole area.

Standard library only: this file runs on the audited host (endpoints `from: host`, inside the
host's one module execution) and on the controller (endpoints `from: controller`, inside the
drift_facts action of the host whose environment they belong to).
"""

import threading
import time

from ansible_collections.envparity.audit.plugins.module_utils import endpoints_prometheus
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_probe import display_url, probe

# The request's settings when a field is missing; the same as the endpoints role's argument
# specs (a test holds them equal).
DEFAULTS = {
    "samples": 5,
    "timeout": 5,
    "area_timeout": 60,
    "max_body_bytes": 65536,
    "max_redirects": 5,
    "concurrency": 8,
}
# The diff's tolerances and thresholds, passed through with the facts (the diff sees only facts).
POLICY_DEFAULTS = {
    "slower_ms": 250,
    "slower_percent": 50,
    "expiry_high_days": 21,
    "expiry_critical_days": 7,
    "error_percent": 1,
}


def _settings(request):
    return {field: int(request.get(field) or default) for field, default in DEFAULTS.items()}


def probe_all(endpoints, settings, hmac_key, secrets=None):
    """{name: record} of every endpoint; one that has not finished when the area's time runs out
    is reported as such. The workers are daemon threads, never waited for past that time (a
    thread pool's workers would hold the module's exit until their own timeouts ran out)."""
    secrets = secrets or {}
    pending = list(endpoints)
    results = {}
    lock = threading.Condition()

    def work():
        while True:
            with lock:
                if not pending:
                    return
                item = pending.pop(0)
            try:
                record = probe(item, settings, hmac_key, secrets.get(item["name"]))
            except Exception as exc:  # a probe's bug must not hide the other endpoints
                record = _failed(item, "failed", "%s while probing" % type(exc).__name__)
            with lock:
                results[item["name"]] = record
                lock.notify_all()

    for _ in range(max(1, min(settings["concurrency"], len(endpoints)))):
        threading.Thread(target=work, name="envparity-probe", daemon=True).start()
    deadline = time.monotonic() + settings["area_timeout"]
    with lock:
        while len(results) < len(endpoints) and time.monotonic() < deadline:
            lock.wait(deadline - time.monotonic())
        finished = dict(results)
        del pending[:]
    late = "not finished within the area's %d s (drift_endpoints_area_timeout)" % settings["area_timeout"]
    return {item["name"]: finished.get(item["name"]) or _failed(item, "timeout", late) for item in endpoints}


def _failed(item, status, reason):
    return {"status": status, "reason": reason, "url": display_url(item["url"]), "from": item["from"]}


def _metrics_thread(request, source, settings):
    """A daemon thread reading the environment's Prometheus when it is read from `source`, and its
    result holder; (None, None) when there is none to read here."""
    config = request.get("prometheus")
    if not isinstance(config, dict) or config.get("from", "controller") != source:
        return None, None
    holder = {}

    def work():
        try:
            holder["record"] = endpoints_prometheus.collect(config, settings["timeout"], settings["area_timeout"])
        except Exception as exc:  # a bug must not hide the endpoints
            holder["record"] = {"status": "failed", "reason": "%s while querying" % type(exc).__name__}

    thread = threading.Thread(target=work, name="envparity-prometheus", daemon=True)
    thread.start()
    return thread, holder


def _collect(request, source, hmac_key, secrets):
    """{"endpoints": {...}} of the endpoints probed from `source` (host or controller), with
    {"prometheus": {SUBJECT: record}} when the environment's Prometheus is read from there too; the
    metrics are read while the endpoints are probed, within the same area time."""
    settings = _settings(request)
    started = time.monotonic()
    thread, holder = _metrics_thread(request, source, settings)
    endpoints = [item for item in request.get("endpoints") or [] if item.get("from", "host") == source]
    results = {"endpoints": probe_all(endpoints, settings, hmac_key, secrets)}
    if thread is not None:
        thread.join(max(0.0, settings["area_timeout"] - (time.monotonic() - started)))
        late = {"status": "timeout", "reason": "no answer within the area's %d s" % settings["area_timeout"]}
        record = holder.get("record") or dict(late, url=display_url(request["prometheus"].get("url") or ""))
        results["prometheus"] = {endpoints_prometheus.SUBJECT: record}
    return results


def collect_area(request, hmac_key, secrets=None):
    """The registry's entry: the endpoints request (see the request builder) to {"endpoints": {...},
    "policy": {...}, "prometheus"?: {...}}."""
    results = _collect(request, "host", hmac_key, secrets)
    results["policy"] = {field: int(request.get(field) or default) for field, default in POLICY_DEFAULTS.items()}
    return results


def collect_controller_side(request, hmac_key, secrets=None):
    """The endpoints `from: controller` of one host's request (and its Prometheus when read from
    the controller), probed here, on the controller."""
    return _collect(request, "controller", hmac_key, secrets)
