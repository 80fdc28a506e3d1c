"""Data parity of one database (opt-in: its drift_postgres entry has data_parity: true): the psql
script part (pg_data_sql) and the shaping of what it printed into the DATA facts of
docs/postgres-facts.md.

Standard library only, Python 3.8+: this module runs on the audited hosts.  No value of a row
ever leaves the host: rows travel as salted hashes per column, keyed by their primary key (a key
whose column name looks secret travels as a keyed fingerprint instead).
"""

import hashlib
import hmac
import json
import re

from ansible_collections.envparity.audit.plugins.module_utils.pg_data_sql import GENERATOR, STATS_QUERY
from ansible_collections.envparity.audit.plugins.module_utils.pg_psql import DEFAULTS
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint, is_secret_name

# A reference table named in the request: schema.table of plain characters (it travels in a psql
# variable, so nothing that could end the quoted value).
REFERENCE_NAME = re.compile(r"^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$")
SKIP_REASONS = {
    "no_select_privilege": "no SELECT privilege",
    "budget": "the time budget of the database ran out",
    "failed": "timed out or failed (per-table timeout)",
    "row_cap": "more rows than the row cap",
    "not_found": "no such table with a primary key",
}


def salt(hmac_key):
    """The per-run salt of the row hashes: the same on every host of a run, unknown without the key."""
    return hmac.new(hmac_key, b"envparity postgres data parity", hashlib.sha256).hexdigest()[:32]


def _int(request, name):
    value = request.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return DEFAULTS[name]
    return value


def references(db):
    """The configured reference tables of a database entry that are well formed, sorted."""
    names = db.get("reference_tables") or []
    return sorted({name for name in names if isinstance(name, str) and REFERENCE_NAME.match(name)})


def script_lines(request, db, hmac_key, marker):
    """The psql lines of the data part (after the catalog, in the same transaction)."""
    return [
        "\\echo %sdata" % marker,
        "\\set envparity_data_salt '%s'" % salt(hmac_key),
        "\\set envparity_data_max_bytes %d" % (_int(request, "data_exact_count_max_mb") * 1024 * 1024),
        "\\set envparity_data_row_cap %d" % _int(request, "data_row_cap"),
        "\\set envparity_data_timeout_ms %d" % _int(request, "data_table_timeout_ms"),
        "\\set envparity_data_budget_ms %d" % _int(request, "data_budget_ms"),
        "\\set envparity_data_references '%s'" % json.dumps(references(db)),
        STATS_QUERY,
        "\\set ON_ERROR_STOP 0",
        GENERATOR,
        "\\set ON_ERROR_STOP 1",
    ]


def _records(text):
    for raw in (text or "").split("\n"):
        line = raw.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def _reference(record, cap, hmac_key):
    """(reference record, skip reason or None) from a reference read."""
    rows = record.get("rows")
    if rows is None:
        return None, "budget"
    if len(rows) > cap:
        return None, "row_cap"
    key = list(record.get("key") or [])
    secret_key = any(is_secret_name(name) for name in key)
    shaped = {}
    for row_key, hashes in rows:
        shown = fingerprint(hmac_key, row_key)[:28] if secret_key else row_key
        shaped[shown] = list(hashes)
    return {
        "configured": bool(record.get("configured")),
        "key": key,
        "key_shown": not secret_key,
        "columns": list(record.get("columns") or []),
        "rows": shaped,
    }, None


def shape_data(text, request, db, hmac_key):
    """The DATA record from the data part's output (None when the part printed nothing)."""
    records = list(_records(text))
    if not records:
        return None
    cap = _int(request, "data_row_cap")
    tables, invalid, sequences, reference, skipped = {}, [], {}, {}, []
    planned, done = set(), set()
    for record in records:
        kind = record.get("kind")
        if kind == "stats":
            for name, (estimate, live, never_analyzed, never_vacuumed) in (record.get("tables") or {}).items():
                tables[name] = {
                    "estimate": estimate,
                    "live": live,
                    "exact": None,
                    "never_analyzed": bool(never_analyzed),
                    "never_vacuumed": bool(never_vacuumed),
                }
            invalid = list(record.get("invalid_indexes") or [])
            continue
        if kind == "planned":
            planned.add((record.get("read"), record.get("what")))
            continue
        what = record.get("table") or record.get("sequence")
        done.add((kind, what))
        if record.get("skipped"):
            skipped.append({"what": what, "reason": record["skipped"]})
        elif kind == "count":
            if record.get("rows") is None:
                skipped.append({"what": what, "reason": "budget"})
            elif what in tables:
                tables[what]["exact"] = record["rows"]
        elif kind == "sequence":
            sequences[what] = {
                "column": record.get("column"),
                "increment": record.get("increment"),
                # None: never used (its next value is start) when readable, else unknown
                "last_value": record.get("last_value"),
                "start": record.get("start"),
                "readable": bool(record.get("readable")),
                "max": record.get("max"),
            }
        elif kind == "reference":
            shaped, reason = _reference(record, cap, hmac_key)
            if shaped is None:
                skipped.append({"what": what, "reason": reason})
            else:
                reference[what] = shaped
    skipped += [{"what": what, "reason": "failed"} for kind, what in sorted(planned - done)]
    read = {what for kind, what in planned if kind == "reference"}
    skipped += [{"what": name, "reason": "not_found"} for name in references(db) if name not in read]
    return {
        "tables": tables,
        "invalid_indexes": invalid,
        "sequences": sequences,
        "reference": reference,
        "skipped": sorted(skipped, key=lambda item: (item["what"] or "", item["reason"])),
    }
