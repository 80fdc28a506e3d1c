"""Endpoints probed from the controller (`from: controller`), for one host's environment.

They run inside that host's drift_facts action, in a thread started before the host's module
and joined after it: they overlap the host's own collection (no task of their own, which would
cost every host ~0.3 s), run in the host's fork like every host's work (forks bound them), and
their facts join the host's in the one facts file the diff reads. An unreachable host is still
"could not collect" for its environment. Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.module_utils.collect import pack
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import ControllerProbes
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import FactsError, unpack


def start(request, run_key_hex, secrets):
    """The running probes of a host's endpoints request, or None when none is from the controller."""
    if not request or not any(item.get("from") == "controller" for item in request.get("endpoints") or []):
        return None
    return ControllerProbes(request, bytes.fromhex(run_key_hex), secrets or {})


def host_secrets(request, secrets):
    """The secrets of the endpoints probed on the host: those probed here never travel to it."""
    on_host = {item["name"] for item in (request or {}).get("endpoints") or [] if item.get("from") == "host"}
    return {name: value for name, value in (secrets or {}).items() if name in on_host}


def merged_blob(blob, results):
    """The host's packed facts with the controller's probes added to its endpoints area; the blob
    as it came when it cannot be read (storing it then says why) or the host's area failed."""
    try:
        facts = unpack(blob)
    except FactsError:
        return blob
    area = facts["areas"].get("endpoints")
    if not isinstance(area, dict) or area.get("status") != "ok" or not isinstance(area.get("data"), dict):
        return blob
    endpoints = area["data"].setdefault("endpoints", {})
    if not isinstance(endpoints, dict):
        return blob
    endpoints.update(results)
    return pack(facts)
