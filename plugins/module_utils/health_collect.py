"""Collect the health area on a host: host facts, containers of the configured stacks, log files.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Three parts run concurrently and fail apart: the host (health_host: /proc, /etc, the standard
library), the containers (health_containers: Engine API GETs through the Docker area's client)
and the configured log files (health_logs: the tail only). Only counts, normalised figures and
log templates leave the host; the request and the result are described in docs/health-facts.md.
"""

import concurrent.futures
import os

from ansible_collections.envparity.audit.plugins.module_utils.docker_engine import DEFAULT_DOCKER_HOST
from ansible_collections.envparity.audit.plugins.module_utils.health_containers import (
    collect_stacks,
    failed_others,
    failed_stack,
)
from ansible_collections.envparity.audit.plugins.module_utils.health_host import collect_host
from ansible_collections.envparity.audit.plugins.module_utils.health_logs import failed_source, summarize_file

DEFAULT_THRESHOLDS = {
    "disk_percent": 85,
    "inode_percent": 85,
    "memory_percent": 90,
    "swap_percent": 1,
    "load_per_cpu": 1.0,
    "restarts": 1,
    "clock_sync": True,
    "error_rate_percent": 50,
    "error_rate_per_hour": 10,
}
# The request's settings when a field is missing: the health role's argument specs (a test holds them equal).
DEFAULTS = {
    "cron_paths": ["/etc/crontab", "/etc/cron.d"],
    "docker_host": DEFAULT_DOCKER_HOST,
    "timeout": 20,
    "concurrency": 8,
    "log_window": 3600,
    "log_max_lines": 1000,
    "log_max_bytes": 1048576,
    "thresholds": DEFAULT_THRESHOLDS,
    "expected_ports": [22],
    "port_loopback": False,
    "port_range": "1-65535",
    "known_projects": [],
}


def _failure(exc, part):
    """A reason safe to show: the exception's type, never its text (it may quote a value)."""
    return "%s in the health area's %s collector." % (type(exc).__name__, part)


def _resolve(path, project_dir):
    path = os.path.expanduser(path)
    if not os.path.isabs(path) and project_dir:
        path = os.path.join(os.path.expanduser(project_dir), path)
    return path


def _host(request):
    try:
        return collect_host(request)
    except Exception as exc:  # one failing part must not hide the others
        return {"status": "failed", "reason": _failure(exc, "host")}


def _stacks(request):
    try:
        return collect_stacks(request)
    except Exception as exc:
        reason = _failure(exc, "container")
        return {
            "stacks": {item["name"]: failed_stack("failed", reason, item.get("project")) for item in request["stacks"]},
            "others": failed_others("failed", reason) if request["stacks"] else None,
        }


def _log_files(request):
    found = {}
    for item in request["log_files"]:
        try:
            found[item["name"]] = summarize_file(item, request["log_max_bytes"], request["log_max_lines"])
        except Exception as exc:
            found[item["name"]] = failed_source("failed", _failure(exc, "log file"))
    return found


def settings(request):
    """What the controller's checks need to know of this host's thresholds and port policy."""
    thresholds = dict(DEFAULT_THRESHOLDS)
    thresholds.update(request.get("thresholds") or {})
    return {
        "thresholds": thresholds,
        "expected_ports": sorted(int(port) for port in request["expected_ports"]),
        "port_loopback": bool(request["port_loopback"]),
        "port_range": request["port_range"],
        "log_window": request["log_window"],
        "known_projects": [str(pattern) for pattern in request["known_projects"]],
    }


def collect_health(request):
    """``{"host": {"host": HOST}, "stacks": {name: STACK}, "other_containers": OTHERS or None,
    "log_files": {name: LOG}, "settings"}``."""
    request = dict(DEFAULTS, **{key: value for key, value in request.items() if value is not None})
    project_dir = request.get("project_dir")
    request["paths"] = [dict(item, path=_resolve(item["path"], project_dir)) for item in request.get("paths") or []]
    request["log_files"] = [
        dict(item, path=_resolve(item["path"], project_dir)) for item in request.get("log_files") or []
    ]
    request.setdefault("stacks", [])
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        host = pool.submit(_host, request)
        stacks = pool.submit(_stacks, request)
        logs = pool.submit(_log_files, request)
        containers = stacks.result()
        return {
            "host": {"host": host.result()},
            "stacks": containers["stacks"],
            "other_containers": containers["others"],
            "log_files": logs.result(),
            "settings": settings(request),
        }


def collect_area(request, hmac_key, secrets=None):
    """The registry's entry: the health area needs neither the key nor a secret (nothing of a
    value leaves the host: templates mask data rather than fingerprint it)."""
    return collect_health(request if isinstance(request, dict) else {})
