"""Containers of the configured stacks: one stats sample, state and the last window of logs each.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Spoken through the Docker area's Engine API client (docker_engine.Session): GET requests only,
never a create, start, stop, kill or exec. The container list is read once; then each container
of a configured stack (com.docker.compose.project label) is read in a worker thread, at most
``concurrency`` at a time, each on its own connection bounded by CALL_TIMEOUT seconds and by what
is left of the area's ``timeout``: GET /containers/{id}/json, GET
/containers/{id}/stats?stream=false&one-shot=true (running containers), and in the log job GET
/containers/{id}/json again (when its current run started and ended) and GET
/containers/{id}/logs?since=...&tail=... (that run's part of the last window, at most max_lines
lines and max_bytes). A container removed meanwhile (404) is left out; one that does not answer in
time says so. The running containers of no configured stack are listed from the same container
list (other_containers), for the controller's orphan check.

Figures are normalised so that unequal machines compare: memory in use as a share of the
container's limit (None without a limit), CPU as the average share of one CPU since the start.
Log lines are reduced to counts and error templates here (health_logs), never sent raw.
"""

import calendar
import concurrent.futures
import re
import time
import urllib.parse

from ansible_collections.envparity.audit.plugins.module_utils.docker_engine import (
    COMPOSE_PROJECT_LABEL,
    COMPOSE_SERVICE_LABEL,
    MAX_INSPECT_BYTES,
    MAX_LIST_BYTES,
    EngineError,
    Gone,
    Session,
    negotiate,
    socket_path,
)
from ansible_collections.envparity.audit.plugins.module_utils.health_logs import failed_source, summarize_lines
from ansible_collections.envparity.audit.plugins.module_utils.redact import redact_text

# Seconds one container's state calls (inspection, stats), or its log call, may take at most (the
# area's deadline may leave less).
CALL_TIMEOUT = 5
# State calls in flight at once: they wait on the engine, not on this host.
STATE_CONCURRENCY = 64
MAX_STATS_BYTES = 1024 * 1024
# Health probe results kept per container, and the characters kept of each probe's output.
HEALTH_LOG_RESULTS = 3
HEALTH_OUTPUT_CHARS = 200
MAX_CONTAINERS_PER_STACK = 500
# Running containers of no configured stack that are listed (orphans, judged by the controller).
MAX_OTHER_CONTAINERS = 200
MAX_NAME_CHARS = 200
_RFC3339 = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})")
_ID = re.compile(r"^[0-9A-Za-z_.-]+$")


def _dict(value):
    return value if isinstance(value, dict) else {}


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_time(text):
    """Seconds since the epoch of an RFC 3339 UTC time from the engine, or None."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if not match or text.startswith("0001-"):
        return None
    return calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))


def demux(data):
    """The lines of a log answer: the engine's multiplexed frames (8-byte headers) unwrapped, or
    the bytes as they are for a TTY container."""
    if len(data) < 8 or data[0] not in (0, 1, 2) or data[1:4] != b"\x00\x00\x00":
        return data.split(b"\n")
    payload = bytearray()
    index = 0
    while index + 8 <= len(data):
        size = int.from_bytes(data[index + 4 : index + 8], "big")
        payload += data[index + 8 : index + 8 + size]
        index += 8 + size
    return bytes(payload).split(b"\n")


def memory_used(stats):
    """Bytes in use as `docker stats` counts them: usage less the inactive page cache."""
    memory = _dict(stats.get("memory_stats"))
    usage = _int(memory.get("usage"))
    if usage is None:
        return None
    detail = _dict(memory.get("stats"))
    for field in ("total_inactive_file", "inactive_file"):  # cgroup v1, v2
        inactive = _int(detail.get(field))
        if inactive is not None and inactive < usage:
            return usage - inactive
    return usage


def cpu_share_since_start(stats, started, now):
    """Average share of one CPU since the container started (0.5 = half a CPU), or None."""
    usage = _int(_dict(_dict(stats.get("cpu_stats")).get("cpu_usage")).get("total_usage"))
    if usage is None or started is None or now <= started:
        return None
    return round(usage / 1e9 / (now - started), 3)


def health_log(state):
    """The last probe results: [{exit_code, output}] with the output redacted and cut."""
    results = []
    log = _dict(state.get("Health")).get("Log")
    for item in (log if isinstance(log, list) else [])[-HEALTH_LOG_RESULTS:]:
        probe = _dict(item)
        output = probe.get("Output") if isinstance(probe.get("Output"), str) else ""
        results.append(
            {
                "exit_code": _int(probe.get("ExitCode")),
                "output": redact_text(" ".join(output.split()))[:HEALTH_OUTPUT_CHARS],
            }
        )
    return results


def container_record(inspect, stats, now):
    """One container's facts from its inspection and stats sample (either may be empty)."""
    state = _dict(inspect.get("State"))
    host_config = _dict(inspect.get("HostConfig"))
    limit = _int(host_config.get("Memory")) or None
    used = memory_used(stats) if stats else None
    started = parse_time(state.get("StartedAt"))
    return {
        "status": "ok",
        "reason": None,
        "state": state.get("Status") if isinstance(state.get("Status"), str) else None,
        "health": _dict(state.get("Health")).get("Status")
        if isinstance(_dict(state.get("Health")).get("Status"), str)
        else None,
        "restart_count": _int(inspect.get("RestartCount")) or 0,
        "oom_killed": state.get("OOMKilled") is True,
        "exit_code": _int(state.get("ExitCode")),
        "started_at": started,
        "finished_at": parse_time(state.get("FinishedAt")),
        "memory_limit": limit,
        "memory_used": used,
        "memory_percent": round(100.0 * used / limit, 1) if used is not None and limit else None,
        "cpu_share": cpu_share_since_start(stats, started, now) if stats else None,
        "pids": _int(_dict(stats.get("pids_stats")).get("current")) if stats else None,
        "health_log": health_log(state),
    }


def _session(path, request, deadline):
    """A connection of its own for one container's calls, bounded by CALL_TIMEOUT and the area's deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise EngineError("failed", "The area's time ran out before this container was read.")
    session = Session(path, min(CALL_TIMEOUT, left))
    session.prefix = request["api_prefix"]
    return session


def read_state(path, ident, request, deadline):
    """One container's record from its inspection and one stats sample; raises Gone when it was
    removed meanwhile. dockerd samples stats once a second: a one-shot answer waits for the next
    sample (up to 1 s), which is why these calls run in a pool of their own, all at once."""
    session = _session(path, request, deadline)
    try:
        inspect = _dict(session.get_json("/containers/%s/json" % ident, "GET /containers/{id}/json", MAX_INSPECT_BYTES))
        now = time.time()
        stats = {}
        if _dict(inspect.get("State")).get("Running") is True:
            try:
                stats = _dict(
                    session.get_json(
                        "/containers/%s/stats?stream=false&one-shot=true" % ident,
                        "GET /containers/{id}/stats",
                        MAX_STATS_BYTES,
                    )
                )
            except Gone:
                stats = {}  # stopped meanwhile: its state says so
        return container_record(inspect, stats, now)
    finally:
        session.close()


def run_window(state, now, window):
    """(since, seconds) of the container's current run inside the last `window` seconds: the logs
    read start at its start (a previous run's lines are not this run's rate) and end when it
    stopped; seconds is None when it did not run inside the window."""
    since = now - window
    started = parse_time(state.get("StartedAt"))
    if started is not None and started > since:
        since = started
    until = now
    finished = parse_time(state.get("FinishedAt")) if state.get("Running") is not True else None
    if finished is not None and finished < until:
        until = finished
    return int(since), (int(until - since) if until - since >= 1 else None)


def read_logs(path, ident, request, deadline):
    """The counts and error templates of one container's last window of logs, and the seconds
    they cover (its inspection says when its current run started, and ended)."""
    session = _session(path, request, deadline)
    try:
        inspect = _dict(session.get_json("/containers/%s/json" % ident, "GET /containers/{id}/json", MAX_INSPECT_BYTES))
        now = time.time()
        since, span = run_window(_dict(inspect.get("State")), now, request["log_window"])
        if span is None:
            return summarize_lines([], truncated=False, span_seconds=None)
        query = urllib.parse.urlencode(
            {"stdout": 1, "stderr": 1, "timestamps": 0, "since": since, "tail": request["log_max_lines"]}
        )
        data = session.get_bytes(
            "/containers/%s/logs?%s" % (ident, query), "GET /containers/{id}/logs", request["log_max_bytes"], cut=True
        )
    finally:
        session.close()
    lines = demux(data)
    if lines and lines[-1] == b"":
        lines.pop()
    return summarize_lines(
        lines[-request["log_max_lines"] :],
        truncated=len(data) >= request["log_max_bytes"] or len(lines) >= request["log_max_lines"],
        span_seconds=span,
    )


def _service_key(summary, taken):
    labels = _dict(summary.get("Labels"))
    names = [name for name in summary.get("Names") or [] if isinstance(name, str)]
    name = (min(names, key=len) if names else "?").lstrip("/")
    service = labels.get(COMPOSE_SERVICE_LABEL) if isinstance(labels.get(COMPOSE_SERVICE_LABEL), str) else name
    return service if service not in taken else "%s/%s" % (service, name)


def _stack_members(summaries, project):
    members = []
    for item in summaries:
        summary = _dict(item)
        labels = _dict(summary.get("Labels"))
        ident = summary.get("Id")
        if labels.get(COMPOSE_PROJECT_LABEL) == project and isinstance(ident, str) and _ID.match(ident):
            members.append(summary)
    members.sort(key=lambda item: sorted(item.get("Names") or [""])[0] if isinstance(item.get("Names"), list) else "")
    return members[:MAX_CONTAINERS_PER_STACK]


def failed_stack(status, reason, project=None):
    return {"status": status, "reason": reason, "project": project, "services": {}, "logs": {}, "published": []}


def failed_others(status, reason):
    return {"status": status, "reason": reason, "running": [], "truncated": False}


def _label(labels, name):
    value = labels.get(name)
    return value[:MAX_NAME_CHARS] if isinstance(value, str) else None


def other_containers(summaries, projects):
    """The running containers of no configured stack's project, from the container list:
    {status, running: [{name, project, service, image}] (project and service None without compose
    labels), truncated}; the controller decides which are orphans."""
    found = []
    for item in summaries:
        summary = _dict(item)
        labels = _dict(summary.get("Labels"))
        if summary.get("State") != "running" or labels.get(COMPOSE_PROJECT_LABEL) in projects:
            continue
        names = [name for name in summary.get("Names") or [] if isinstance(name, str)]
        image = summary.get("Image")
        found.append(
            {
                "name": (min(names, key=len) if names else "?").lstrip("/")[:MAX_NAME_CHARS],
                "project": _label(labels, COMPOSE_PROJECT_LABEL),
                "service": _label(labels, COMPOSE_SERVICE_LABEL),
                "image": image[:MAX_NAME_CHARS] if isinstance(image, str) else None,
            }
        )
    found.sort(key=lambda item: item["name"])
    return dict(
        failed_others("ok", None), running=found[:MAX_OTHER_CONTAINERS], truncated=len(found) > MAX_OTHER_CONTAINERS
    )


def _published(summary):
    """Host ports a container publishes (from the list's Ports), as "port/proto"."""
    ports = set()
    for item in summary.get("Ports") or []:
        port = _dict(item)
        public = _int(port.get("PublicPort"))
        if public:
            ports.add("%d/%s" % (public, port.get("Type") if port.get("Type") in ("tcp", "udp", "sctp") else "tcp"))
    return ports


def _failure_of(future):
    """(None, the exception's status record) of a finished job, or (its result, None)."""
    try:
        return future.result(), None
    except Gone:
        return None, {"status": "gone"}
    except EngineError as problem:
        return None, {"status": problem.status, "reason": problem.reason}
    except Exception as exc:  # one odd answer must not hide the other containers
        return None, {"status": "failed", "reason": "%s while reading this container." % type(exc).__name__}


def _gather(record, key, state, log):
    value, problem = _failure_of(state)
    if problem is not None and problem["status"] == "gone":
        del record["services"][key]  # removed since the list was taken: not there any more
        return
    record["services"][key] = value if problem is None else problem
    if log is not None:
        summary, log_problem = _failure_of(log)
        if log_problem is None:
            record["logs"][key] = summary
        elif log_problem["status"] != "gone":
            record["logs"][key] = failed_source(log_problem["status"], log_problem["reason"])


def collect_stacks(request):
    """{"stacks": {stack name: {status, project, services: {service: record}, logs: {service:
    summary}, published: ["8080/tcp"]}}, "others": the running containers of no configured stack
    (other_containers)} for the configured stacks, or None for others when no stack is configured;
    an engine that cannot be read gives every stack, and others, its status and reason."""
    stacks = request.get("stacks") or []
    if not stacks:
        return {"stacks": {}, "others": None}
    deadline = time.monotonic() + request["timeout"]
    try:
        path = socket_path(request["docker_host"])
        session = Session(path, request["timeout"])
        try:
            negotiate(session)
            request = dict(request, api_prefix=session.prefix)
            summaries = session.get_json("/containers/json?all=1", "GET /containers/json", MAX_LIST_BYTES)
        finally:
            session.close()
        if not isinstance(summaries, list):
            raise EngineError("failed", "The Docker engine answered GET /containers/json in an unexpected shape.")
    except EngineError as problem:
        return {
            "stacks": {
                item["name"]: failed_stack(problem.status, problem.reason, item.get("project")) for item in stacks
            },
            "others": failed_others(problem.status, problem.reason),
        }
    result = {}
    members = []
    for item in stacks:
        record = failed_stack("ok", None, item["project"])
        for summary in _stack_members(summaries, item["project"]):
            key = _service_key(summary, record["services"])
            record["services"][key] = None
            record["published"] = sorted(set(record["published"]) | _published(summary))
            members.append((item["name"], key, summary["Id"]))
        result[item["name"]] = record
    # Two pools at once: the state calls mostly wait for the engine's next stats sample (all of them
    # together, STATE_CONCURRENCY at most); the log windows are read and reduced `concurrency` at a
    # time (the work is the host's CPU, and each holds up to log_max_bytes).
    states = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(STATE_CONCURRENCY, len(members))))
    logs = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, request["concurrency"]))
    with states, logs:  # (not a parenthesised pair: the host side runs on Python 3.8)
        jobs = [
            (
                stack,
                key,
                states.submit(read_state, path, ident, request, deadline),
                logs.submit(read_logs, path, ident, request, deadline) if request["log_max_lines"] > 0 else None,
            )
            for stack, key, ident in members
        ]
        for stack, key, state, log in jobs:
            _gather(result[stack], key, state, log)
    for record in result.values():
        record["services"] = dict(sorted(record["services"].items()))
        record["logs"] = dict(sorted(record["logs"].items()))
    return {"stacks": result, "others": other_containers(summaries, {item["project"] for item in stacks})}
