"""What the health area's facts must look like before its diff reads them (facts_contract runs
this for the area): every field the diff indexes, with its type. A host's facts are hostile input;
a shape the diff does not expect makes that host's area "could not collect", never a traceback.
Pure Python; no Ansible imports.
"""

import json

NUMBER = "number"
# A threshold: a number, or true/false (clock_sync)
SETTING = "setting"
TEXT = "text"
OPTIONAL = "optional"


class _Shape(ValueError):
    pass


def _check(value, spec, where):
    if isinstance(spec, tuple) and spec[0] == OPTIONAL:
        if value is not None:
            _check(value, spec[1], where)
        return
    if spec == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Shape("%s is not a number" % where)
    elif spec == SETTING:
        if not isinstance(value, (int, float)):
            raise _Shape("%s is not a number or true/false" % where)
    elif spec == TEXT:
        if not isinstance(value, str):
            raise _Shape("%s is not text" % where)
    elif spec is bool:
        if not isinstance(value, bool):
            raise _Shape("%s is not true or false" % where)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise _Shape("%s is not a list" % where)
        for index, item in enumerate(value):
            _check(item, spec[0], "%s[%d]" % (where, index))
    elif isinstance(spec, dict) and "*" in spec:
        if not isinstance(value, dict):
            raise _Shape("%s is not an object" % where)
        for key, item in value.items():
            _check(item, spec["*"], "%s[%s]" % (where, json.dumps(key)[:80]))
    elif isinstance(spec, dict):
        if not isinstance(value, dict):
            raise _Shape("%s is not an object" % where)
        for key, sub in spec.items():
            if key not in value and not (isinstance(sub, tuple) and sub[0] == OPTIONAL):
                raise _Shape("%s has no %s" % (where, key))
            _check(value.get(key), sub, "%s.%s" % (where, key))


def _optional(spec):
    return (OPTIONAL, spec)


FILESYSTEM = {
    "status": TEXT,
    "mount": _optional(TEXT),
    "used_percent": _optional(NUMBER),
    "inodes_used_percent": _optional(NUMBER),
}
HOST = {
    "load": _optional([NUMBER]),
    "cpus": _optional(NUMBER),
    "cpus_usable": _optional(NUMBER),
    "memory_total": _optional(NUMBER),
    "memory_available": _optional(NUMBER),
    "swap_total": _optional(NUMBER),
    "swap_free": _optional(NUMBER),
    "clock_synchronised": _optional(bool),
    "filesystems": {"*": _optional(FILESYSTEM)},
    "sockets": _optional([{"protocol": TEXT, "address": TEXT, "port": NUMBER, "process": _optional(TEXT)}]),
    "failed_units": _optional([TEXT]),
    "timers": _optional([TEXT]),
    "cron": {"entries": [TEXT], "unreadable": [TEXT]},
}
LOG = {
    "lines": NUMBER,
    "levels": {"error": NUMBER},
    "templates": {"*": {"template": TEXT, "count": NUMBER}},
    "span_seconds": _optional(NUMBER),
}
SERVICE = {
    "state": _optional(TEXT),
    "exit_code": _optional(NUMBER),
    "finished_at": _optional(NUMBER),
    "restart_count": NUMBER,
    "oom_killed": bool,
    "memory_limit": _optional(NUMBER),
    "memory_percent": _optional(NUMBER),
    "memory_used": _optional(NUMBER),
}
SETTINGS = {
    "thresholds": {"*": _optional(SETTING)},
    "expected_ports": [NUMBER],
    "port_loopback": bool,
    "port_range": TEXT,
    "known_projects": _optional([TEXT]),
}
OTHER_CONTAINERS = {
    "running": [{"name": TEXT, "project": _optional(TEXT), "service": _optional(TEXT), "image": _optional(TEXT)}],
}


def _when_ok(record, spec, where):
    if isinstance(record, dict) and record.get("status") == "ok":
        _check(record, spec, where)


def health_problem(data):
    """A reason when the health facts (already known to hold records with a status) are not of the
    shape health_diff reads, else None."""
    try:
        _check(data.get("settings"), SETTINGS, "settings")
        for name, record in (data.get("host") or {}).items():
            _when_ok(record, HOST, "host[%s]" % json.dumps(name)[:80])
        for name, stack in (data.get("stacks") or {}).items():
            where = "stacks[%s]" % json.dumps(name)[:80]
            if stack.get("status") != "ok":
                continue
            _check(
                stack,
                {"services": {"*": {"status": TEXT}}, "logs": {"*": {"status": TEXT}}, "published": [TEXT]},
                where,
            )
            for svc, record in stack["services"].items():
                _when_ok(record, SERVICE, "%s.services[%s]" % (where, json.dumps(svc)[:80]))
            for svc, record in stack["logs"].items():
                _when_ok(record, LOG, "%s.logs[%s]" % (where, json.dumps(svc)[:80]))
        _when_ok(data.get("other_containers"), OTHER_CONTAINERS, "other_containers")
        for name, record in (data.get("log_files") or {}).items():
            _when_ok(record, LOG, "log_files[%s]" % json.dumps(name)[:80])
    except _Shape as problem:
        return str(problem)
    return None
