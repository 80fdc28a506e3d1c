"""Collect the Docker area on a host: declared stacks and the engine's runtime state.

Standard library only, Python 3.8+: this module runs on the audited hosts.

The compose files (compose.collect_stacks) and the engine (docker_engine.
collect_engine) are read concurrently, in two threads.  A failure of one side
never hides the other: an exception becomes status "failed" with a reason
naming only the exception's type.  The request is described in
docs/docker-facts.md.
"""

import concurrent.futures
import os

from ansible_collections.envparity.audit.plugins.module_utils.compose_cli import DEFAULT_COMPOSE_PATHS, find_compose
from ansible_collections.envparity.audit.plugins.module_utils.compose_load import MAX_EXPANDED_CHARS
from ansible_collections.envparity.audit.plugins.module_utils.docker_engine import (
    DEFAULT_DOCKER_HOST,
    DEFAULT_TIMEOUT,
    collect_engine,
    empty_engine,
)
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import project_relative
from ansible_collections.envparity.audit.plugins.module_utils.env_collect import _resolve

DEFAULT_MAX_FILE_BYTES = 1048576
# The request's settings when a field is missing: the docker role's argument specs (a test holds them equal).
DEFAULTS = {
    "max_file_bytes": DEFAULT_MAX_FILE_BYTES,
    "docker_host": DEFAULT_DOCKER_HOST,
    "timeout": DEFAULT_TIMEOUT,
    "compose_reader": "auto",
    "compose_paths": list(DEFAULT_COMPOSE_PATHS),
}


def _failure(exc, side):
    """A reason safe to show: the exception's type, never its text (it may quote a value)."""
    return "%s in the %s collector." % (type(exc).__name__, side)


def _stack_names(request):
    names = []
    for stack in request.get("stacks") or []:
        if isinstance(stack, dict) and isinstance(stack.get("name"), str) and stack["name"] not in names:
            names.append(stack["name"])
    return names


def failed_stack(reason):
    """A STACK that could not be collected at all."""
    return {
        "project": None,
        "status": "failed",
        "reason": reason,
        "files": [],
        "env_file": None,
        "services": {},
        "reader": None,
    }


def _compose(request, max_bytes):
    """The host's usable Compose, or why none is used (None: the audit asks for the built-in reader)."""
    if request.get("compose_reader") == "built-in":
        return None
    paths = request.get("compose_paths")
    paths = list(DEFAULT_COMPOSE_PATHS) if paths is None else paths
    # Its answer is read as a compose file: no larger than the loader accepts.
    found, why = find_compose(paths, request.get("timeout") or DEFAULT_TIMEOUT, max(MAX_EXPANDED_CHARS, 2 * max_bytes))
    return found or why


def _compose_required(stacks):
    """With ``compose_reader: compose``, a stack Compose did not read is not compared."""
    for stack in stacks.values():
        reader = stack.get("reader") or {}
        if stack["status"] == "ok" and reader.get("name") != "compose":
            stack.update(
                status="failed",
                reason="Compose must read this stack (drift_docker_compose_reader: compose), but %s."
                % (reader.get("note") or "it did not"),
                services={},
            )
    return stacks


def _collect_stacks(request, hmac_key):
    stacks = request.get("stacks") or []
    if not stacks:
        return {}
    max_bytes = request.get("max_file_bytes") or DEFAULT_MAX_FILE_BYTES
    try:
        # Imported here: the engine side works (and is tested) without it.
        from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks

        found = collect_stacks(stacks, request.get("project_dir"), hmac_key, max_bytes, _compose(request, max_bytes))
    except Exception as exc:  # one failing side must not hide the other
        reason = _failure(exc, "compose")
        return {name: failed_stack(reason) for name in _stack_names(request)}
    return _compose_required(found) if request.get("compose_reader") == "compose" else found


def _collect_engine(request, hmac_key):
    try:
        return collect_engine(
            request.get("docker_host") or DEFAULT_DOCKER_HOST,
            hmac_key,
            request.get("timeout") or DEFAULT_TIMEOUT,
        )
    except Exception as exc:  # collect_engine does not raise; belt and braces
        return empty_engine("failed", _failure(exc, "Docker engine"))


def _mounts_as_declared(engine, project_dir):
    """Bind sources inside the project directory shown as the compose side shows them
    ("<project>/…"), so that a container's mounts compare with its service's volumes."""
    if not project_dir:
        return engine
    root = os.path.normpath(_resolve(".", project_dir))
    for container in engine.get("containers") or []:
        container["mounts"] = sorted(project_relative(mount, root) for mount in container.get("mounts") or [])
    return engine


def collect_docker(request, hmac_key):
    """``{"stacks": {name: STACK}, "engine": ENGINE}`` for one docker request."""
    request = request if isinstance(request, dict) else {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        stacks = pool.submit(_collect_stacks, request, hmac_key)
        engine = pool.submit(_collect_engine, request, hmac_key)
        return {"stacks": stacks.result(), "engine": _mounts_as_declared(engine.result(), request.get("project_dir"))}


def collect_area(request, hmac_key, secrets=None):
    """The registry's entry: the docker area needs no secret."""
    return collect_docker(request, hmac_key)
