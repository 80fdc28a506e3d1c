"""Run every requested area's collector on the host, concurrently, and pack the facts.

Standard library only: this file travels to the audited host inside the module.
"""

import base64
import concurrent.futures
import contextlib
import gc
import gzip
import json

from ansible_collections.envparity.audit.plugins.module_utils.areas import BY_NAME
from ansible_collections.envparity.audit.plugins.module_utils.redact import BaselineKey, redact_text


def describe_failure(exc):
    """A reason safe to show: exception type and OS error text, never a value read."""
    if isinstance(exc, OSError):
        return "%s: %s" % (type(exc).__name__, exc.strerror or "operating system error")
    return "%s in the collector (see the module's documentation)" % type(exc).__name__


def _run_one(area, request, run_key, secrets):
    entry = BY_NAME.get(area)
    if entry is None:
        return {"status": "failed", "reason": "no collector for area %s on this host" % redact_text(repr(area)[:80])}
    try:
        return {"status": "ok", "data": redact_reasons(entry.load().collect_area(request, run_key, secrets))}
    except Exception as exc:  # one failing area must not hide the others
        return {"status": "failed", "reason": describe_failure(exc)}


@contextlib.contextmanager
def without_gc():
    """Facts are many small acyclic objects: the cyclic garbage collector only slows building and
    diffing them, and made the postgres diff grow faster than linearly with the schema
    (benchmark_postgres). Used on the host while collecting, on the controller while diffing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def redact_reasons(data):
    """Every reason sentence a collector wrote, with URL passwords and password=... pairs masked.

    Reasons may quote what the inventory gave (a connection string pasted into a database's host
    or dbname): they leave the host masked, whatever the collector did."""
    if isinstance(data, dict):
        return {
            key: (redact_text(value) if key == "reason" and isinstance(value, str) else redact_reasons(value))
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redact_reasons(item) for item in data]
    return data


def collect_areas(areas, run_key, secrets=None):
    """Collect every requested area concurrently; returns {area: {status, data|reason}}."""
    secrets = secrets or {}
    names = sorted(areas)
    if not names:
        return {}
    with without_gc(), concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(_run_one, name, areas[name], run_key, secrets.get(name)) for name in names}
        return {name: futures[name].result() for name in names}


def pack(facts):
    """Bulky facts travel as gzip+base64 text: cheap for Ansible to carry (a 7 MB
    structured result costs the controller ~1.9 s; the same as gzip+base64 text ~0.17 s).

    Keys unsorted and the fastest compression: on a 2,000-table catalog (3.7 MB of JSON) sorted
    keys and level 9 take 0.04 s more on the host for 22% fewer bytes (121 KB, not 155 KB).
    """
    raw = json.dumps(facts, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=1, mtime=0)).decode("ascii")


def host_facts(collected, run_key):
    """The envelope the host sends: {"areas": ...}, and with a BaselineKey the pairs of this run's
    fingerprints with their baseline twins ({"pairs": {run fp: baseline fp}, "truncated": bool})."""
    facts = {"areas": collected}
    if isinstance(run_key, BaselineKey):
        facts["baseline_fingerprints"] = {"pairs": dict(run_key.pairs), "truncated": run_key.truncated}
    return facts


def summarize(collected):
    """The small part that may travel through Ansible's results: statuses only."""
    return {area: {"status": result["status"], "reason": result.get("reason")} for area, result in collected.items()}
