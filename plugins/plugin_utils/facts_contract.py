"""What a host's facts must look like before the controller uses them.

Everything in the facts comes from the audited host and is hostile input: the packed blob may be
no base64, no gzip, a gzip bomb, no JSON, JSON nested beyond reason, or of the wrong shape. Each
check returns a reason (a sentence safe to show: it names structure, never a value) or None.
Pure Python; no Ansible imports.
"""

import base64
import binascii
import json
import zlib

from ansible_collections.envparity.audit.plugins.plugin_utils.health_contract import health_problem

# Inflated size allowed per host: 4 times the facts of an 8,000-table catalog (about 15 MB of
# JSON, from the 3.7 MB measured at 2,000); a gzip bomb stops here, not in the controller's memory.
MAX_FACTS_BYTES = 64 * 1024 * 1024
# JSON values allowed per host, counted before parsing as commas and opening brackets (an upper
# bound: those inside strings count too). Parsed, each value costs up to about 70 bytes, so 64 MiB
# of "[]," took 3 GB and a minute; the lab's facts hold one value per 18 to 30 bytes (so about
# 500,000 for an 8,000-table catalog).
MAX_FACTS_VALUES = 2_000_000
# Packed size allowed per host (base64 of gzip): facts compress about 25 times.
MAX_BLOB_BYTES = MAX_FACTS_BYTES // 4
# The deepest nesting a collector produces is about 10 levels.
MAX_DEPTH = 64
_CHUNK = 1024 * 1024

# Per area: the sections its diff reads, each {subject name: record with a string status}.
SECTIONS = {
    "docker": ("stacks",),
    "endpoints": ("endpoints", "prometheus"),
    "env": ("files",),
    "git": ("repos", "deploy_dirs"),
    "postgres": ("databases",),
    "health": ("host", "stacks", "log_files"),
    "deps": ("python", "node", "containers"),
}


class FactsError(ValueError):
    """The facts a host sent cannot be used; str() is the reason."""


def inflate(packed, max_bytes=MAX_FACTS_BYTES):
    """gzip bytes -> bytearray, streamed: never holds more than max_bytes inflated."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    inflated = bytearray()  # grown in place: no list of parts joined at twice the size
    pending = packed
    try:
        while not inflater.eof:
            part = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            if not part and not pending:
                break  # input used up before the end of the gzip stream
            inflated += part
            if len(inflated) > max_bytes:
                raise FactsError("the facts inflate to more than %d bytes (a compression bomb?)" % max_bytes)
    except zlib.error:
        raise FactsError("the facts are not valid gzip data") from None
    if not inflater.eof:
        raise FactsError("the facts are truncated gzip data")
    return inflated


def unpack(blob, max_bytes=MAX_FACTS_BYTES):
    """The packed text a host sent (base64 of gzip of JSON) -> a dict, or FactsError."""
    if len(blob) > MAX_BLOB_BYTES:
        raise FactsError("the packed facts are larger than %d bytes" % MAX_BLOB_BYTES)
    try:
        packed = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise FactsError("the facts are not base64 text") from None
    inflated = inflate(packed, max_bytes)
    if sum(inflated.count(token) for token in (b",", b"[", b"{")) > MAX_FACTS_VALUES:
        raise FactsError("the facts hold more than %d values" % MAX_FACTS_VALUES)
    try:
        text = inflated.decode("utf-8")
    except UnicodeDecodeError:
        raise FactsError("the facts are not UTF-8 text") from None
    del inflated  # the text alone is parsed: peak memory is one copy, not two
    try:
        facts = json.loads(text)
    except RecursionError:
        raise FactsError("the facts are nested deeper than %d levels" % MAX_DEPTH) from None
    except ValueError:
        raise FactsError("the facts are not JSON") from None
    reason = host_problem(facts)
    if reason:
        raise FactsError(reason)
    return facts


def depth_problem(value, limit=MAX_DEPTH):
    """A reason when containers nest deeper than limit (iterative: a hostile depth cannot recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return "the facts are nested deeper than %d levels" % limit
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return None


def _area_result_problem(area, result):
    if not isinstance(result, dict) or not isinstance(result.get("status"), str):
        return "area %s: the result is not an object with a status" % area
    if result["status"] != "ok" and not isinstance(result.get("reason"), (str, type(None))):
        return "area %s: the reason is not text" % area
    return None


def host_problem(facts):
    """The envelope every host sends: {"areas": {area: {status, data | reason}}}, bounded depth."""
    if not isinstance(facts, dict) or not isinstance(facts.get("areas"), dict):
        return "the facts are not an object with areas"
    for area, result in facts["areas"].items():
        reason = _area_result_problem(area, result)
        if reason:
            return reason
    return depth_problem(facts)


def _records_problem(section, records):
    if records is None:
        return None
    if not isinstance(records, dict):
        return "%s is not an object" % section
    for name, record in records.items():
        if not isinstance(record, dict) or not isinstance(record.get("status"), str):
            return "%s[%s] is not a record with a status" % (section, json.dumps(name)[:80])
    return None


def _env_problem(data):
    for name, record in (data.get("files") or {}).items():
        if record["status"] != "ok":
            continue
        keys = record.get("keys")
        if not isinstance(keys, dict) or not all(isinstance(key, dict) for key in keys.values()):
            return "files[%s].keys is not an object of records" % json.dumps(name)[:80]
        if not isinstance(record.get("duplicates") or {}, dict):
            return "files[%s].duplicates is not an object" % json.dumps(name)[:80]
    return None


def _docker_problem(data):
    engine = data.get("engine")
    if engine is None:
        return None
    if not isinstance(engine, dict) or not isinstance(engine.get("status"), str):
        return "engine is not a record with a status"
    containers = engine.get("containers") or []
    if not isinstance(containers, list) or not all(isinstance(item, dict) for item in containers):
        return "engine.containers is not a list of objects"
    return None


# Per area: what its diff indexes beyond the sections, for a record that says "ok".
AREA_CHECKS = {
    "docker": _docker_problem,
    "env": _env_problem,
    "health": health_problem,
}


def area_problem(area, data):
    """A reason when one area's data does not have the structure its diff relies on, else None."""
    if not isinstance(data, dict):
        return "the %s facts are not an object" % area
    for section in SECTIONS.get(area, ()):
        reason = _records_problem(section, data.get(section))
        if reason:
            return "the %s facts do not validate: %s" % (area, reason)
    check = AREA_CHECKS.get(area)
    reason = check(data) if check else None
    return "the %s facts do not validate: %s" % (area, reason) if reason else None
