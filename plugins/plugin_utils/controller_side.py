"""Parts of areas collected from the controller while their host collects (the endpoints probed
`from: controller`).

They start inside the host's drift_facts action before its module and are joined after it, within
the same task timeout: they overlap the host's own collection (a task of their own would cost
every host ~0.3 s), run in the host's fork (forks bound them), and their facts join the host's in
the one facts file the diff reads. An area declares such a part in the registry
(module_utils/areas.py, controller_module): a plugin_utils module with
  start(request, run_key, secrets) -> a handle with results(), or None when nothing is to run
    (run_key: the run's key as bytes, a redact.BaselineKey when the run records or compares a
    baseline, whose fingerprint pairs then join the host's);
  host_secrets(request, secrets) -> the secrets the host itself needs (the others never travel);
  merge(data, results) -> the results added to the host's area data (in place).
Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.module_utils.collect import host_facts, pack
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import controller_part
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import FactsError, unpack


def start(requests, run_key, secrets):
    """Start every controller-side part of a host's requests ({area: request}); narrows `secrets`
    ({area: secrets}) in place to what the host needs. Returns {area: (part, handle)}."""
    running = {}
    for area, request in requests.items():
        part = controller_part(area)
        if part is None:
            continue
        handle = part.start(request, run_key, secrets.get(area))
        if area in secrets:
            secrets[area] = part.host_secrets(request, secrets[area])
        if handle is not None:
            running[area] = (part, handle)
    return running


def finish(running):
    """{area: (part, results)}: waits for every started part."""
    return {area: (part, handle.results()) for area, (part, handle) in running.items()}


def merged_blob(blob, finished, run_key=None):
    """The host's packed facts with the controller-side results added to their areas (and, with a
    BaselineKey, the fingerprint pairs made here to the host's); the blob as it came when it cannot
    be read (storing it then says why); an area the host failed is left as it is."""
    if not finished:
        return blob
    try:
        facts = unpack(blob)
    except FactsError:
        return blob
    for area, (part, results) in finished.items():
        record = facts["areas"].get(area)
        if isinstance(record, dict) and record.get("status") == "ok" and isinstance(record.get("data"), dict):
            part.merge(record["data"], results)
    mine = host_facts({}, run_key).get("baseline_fingerprints")
    theirs = facts.get("baseline_fingerprints")
    if mine and isinstance(theirs, dict) and isinstance(theirs.get("pairs"), dict):
        theirs["pairs"].update(mine["pairs"])
        theirs["truncated"] = bool(theirs.get("truncated")) or mine["truncated"]
    return pack(facts)
