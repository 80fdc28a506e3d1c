"""Run every requested area's collector on the host, concurrently, and pack the facts.

Standard library only: this file travels to the audited host inside the module.
"""

import base64
import concurrent.futures
import contextlib
import gc
import gzip
import json

from ansible_collections.envparity.audit.plugins.module_utils.docker_collect import collect_docker
from ansible_collections.envparity.audit.plugins.module_utils.env_collect import collect_env_files
from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git


def _collect_env(request, run_key, limits, secrets):
    return collect_env_files(
        request.get("files") or [],
        request.get("project_dir"),
        run_key,
        max_bytes=request.get("max_bytes") or limits.get("max_file_bytes", 1048576),
    )


def _collect_git(request, run_key, limits, secrets):
    return collect_git(request, run_key)


def _collect_docker(request, run_key, limits, secrets):
    return collect_docker(request, run_key)


def _collect_postgres(request, run_key, limits, secrets):
    # Imported here so that a host without the PostgreSQL area pays nothing for it; the module
    # packer still ships it (it finds imports inside functions too).
    from ansible_collections.envparity.audit.plugins.module_utils.pg_collect import collect_postgres

    return collect_postgres(request, run_key, secrets or {})


# One entry per area. Each collector gets its request, the run key, the limits and the area's
# secrets (database passwords; a no_log option of the module, never part of the request).
AREA_COLLECTORS = {
    "docker": _collect_docker,
    "env": _collect_env,
    "git": _collect_git,
    "postgres": _collect_postgres,
}


def describe_failure(exc):
    """A reason safe to show: exception type and OS error text, never a value read."""
    if isinstance(exc, OSError):
        return "%s: %s" % (type(exc).__name__, exc.strerror or "operating system error")
    return "%s in the collector (see the module's documentation)" % type(exc).__name__


def _run_one(area, request, run_key, limits, secrets):
    collector = AREA_COLLECTORS.get(area)
    if collector is None:
        return {"status": "failed", "reason": "no collector for area %r" % area}
    try:
        return {"status": "ok", "data": collector(request, run_key, limits, secrets)}
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


def collect_areas(areas, run_key, limits=None, secrets=None):
    """Collect every requested area concurrently; returns {area: {status, data|reason}}."""
    limits = limits or {}
    secrets = secrets or {}
    names = sorted(areas)
    if not names:
        return {}
    with without_gc(), concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(_run_one, name, areas[name], run_key, limits, secrets.get(name)) for name in names}
        return {name: futures[name].result() for name in names}


def pack(facts):
    """Bulky facts travel as gzip+base64 text: cheap for Ansible to carry (PERFORMANCE.md).

    Keys unsorted and the fastest compression: on a 2,000-table catalog (3.7 MB of JSON) sorted
    keys and level 9 take 0.04 s more on the host for 22% fewer bytes (121 KB, not 155 KB).
    """
    raw = json.dumps(facts, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=1, mtime=0)).decode("ascii")


def summarize(collected):
    """The small part that may travel through Ansible's results: statuses only."""
    return {area: {"status": result["status"], "reason": result.get("reason")} for area, result in collected.items()}
