"""Endpoints probed from the controller (`from: controller`), for one host's environment: the
endpoints area's controller-side part (plugin_utils/controller_side.py says how such parts run).
An unreachable host is still "could not collect" for its environment. Pure Python; no Ansible imports.
"""

import threading

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import (
    DEFAULTS,
    collect_controller_side,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_chain import add_chains


def start(request, run_key, secrets):
    """The running probes of a host's endpoints request, or None when none is from the controller."""
    if not request:
        return None
    prometheus = request.get("prometheus")
    metrics = bool(prometheus) and prometheus.get("from", "controller") == "controller"
    if not metrics and not any(item.get("from") == "controller" for item in request.get("endpoints") or []):
        return None
    return ControllerProbes(request, run_key, secrets or {})


class ControllerProbes:
    """Controller-side probes run in a thread while the host's module executes, so that they cost
    no time of their own when the host takes longer (a drift_facts action's helper); each https
    endpoint's chain and stapled OCSP response are read after its probe (endpoints_chain.py)."""

    def __init__(self, request, hmac_key, secrets):
        self._result = {}
        self._thread = threading.Thread(
            target=self._run, args=(request, hmac_key, secrets), name="envparity-endpoints", daemon=True
        )
        self._thread.start()

    def _run(self, request, hmac_key, secrets):
        result = collect_controller_side(request, hmac_key, secrets)
        settings = {field: int(request.get(field) or DEFAULTS[field]) for field in ("timeout", "concurrency")}
        add_chains(request, result.get("endpoints") or {}, settings["timeout"], settings["concurrency"])
        self._result = result

    def results(self):
        self._thread.join()
        return self._result


def host_secrets(request, secrets):
    """The secrets of the endpoints probed on the host: those probed here never travel to it."""
    on_host = {item["name"] for item in (request or {}).get("endpoints") or [] if item.get("from") == "host"}
    return {name: value for name, value in (secrets or {}).items() if name in on_host}


def merge(data, results):
    """The controller's probes (and Prometheus metrics) added to the host's endpoints data (in place)."""
    for section in ("endpoints", "prometheus"):
        if section not in results:
            continue
        records = data.setdefault(section, {})
        if isinstance(records, dict):
            records.update(results[section])
