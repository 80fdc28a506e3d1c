"""Endpoints probed from the controller (`from: controller`), for one host's environment: the
endpoints area's controller-side part (plugin_utils/controller_side.py says how such parts run).
An unreachable host is still "could not collect" for its environment. Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import ControllerProbes


def start(request, run_key, secrets):
    """The running probes of a host's endpoints request, or None when none is from the controller."""
    if not request or not any(item.get("from") == "controller" for item in request.get("endpoints") or []):
        return None
    return ControllerProbes(request, run_key, secrets or {})


def host_secrets(request, secrets):
    """The secrets of the endpoints probed on the host: those probed here never travel to it."""
    on_host = {item["name"] for item in (request or {}).get("endpoints") or [] if item.get("from") == "host"}
    return {name: value for name, value in (secrets or {}).items() if name in on_host}


def merge(data, results):
    """The controller's probes added to the host's endpoints data (in place)."""
    endpoints = data.setdefault("endpoints", {})
    if isinstance(endpoints, dict):
        endpoints.update(results)
