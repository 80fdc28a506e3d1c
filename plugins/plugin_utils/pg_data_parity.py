"""Data parity of one database across environments (the databases whose entry has data_parity):
row counts, reference tables compared by primary key, sequences behind their data, invalid
indexes, tables never analyzed or vacuumed in production, and what could not be read.

Dev and prod are expected to differ in size: a row count is a finding only when a table is empty
on one side and not on the other, or when one side has RATIO times the rows of the other. Row
values never reach the controller: reference rows are compared by their salted hashes per column,
and a finding names keys and columns, never values. Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import by_value, join_names

RATIO = 100
SHOWN_KEYS = 10
SKIP_TEXT = {
    "no_select_privilege": "no SELECT privilege",
    "budget": "the time budget ran out",
    "failed": "timed out or failed",
    "row_cap": "more rows than the row cap",
    "not_found": "no such table with a primary key",
}


def _data(db):
    """{label: DATA} of the readable columns that read data."""
    return {label: db.records[label].get("data") for label in db.ok if db.records[label].get("data")}


def row_count(table):
    """(rows, how) of a table's data record: exact when counted, else the estimate; None unknown."""
    if table.get("exact") is not None:
        return table["exact"], "exact"
    if table.get("estimate") is not None and table["estimate"] >= 0:
        return table["estimate"], "estimate"
    if table.get("live") is not None:
        return table["live"], "estimate"
    return None, None


def _count_text(count):
    rows, how = count
    return "%s rows (%s)" % (format(rows, ","), how)


def row_count_findings(db, data, labels):
    baseline = labels[0]
    tables = {label: data[label].get("tables") or {} for label in labels}
    common = set.intersection(*(set(tables[label]) for label in labels))
    findings = []
    for name in sorted(common):
        counts = {label: row_count(tables[label][name]) for label in labels}
        if any(count[0] is None for count in counts.values()):
            continue
        base = counts[baseline][0]
        emptied, grown = [], []
        for label in labels[1:]:
            rows = counts[label][0]
            if (base == 0) != (rows == 0):
                emptied.append(label)
            elif base and rows and max(base, rows) >= RATIO * min(base, rows):
                grown.append(label)
        if not emptied and not grown:
            continue
        values = {label: _count_text(counts[label]) for label in labels}
        differing = emptied + grown
        findings.append(
            db.finding(
                "data.%s.rows" % name,
                "changed",
                "postgres.data_row_count",
                "medium" if emptied else "low",
                values,
                differing,
                "Table %s %s: %s."
                % (
                    name,
                    "is empty on one side only" if emptied else "differs %dx or more in rows" % RATIO,
                    by_value((label, values[label]) for label in labels),
                ),
                "Check that %s on %s holds what it should (a seed or a data migration not run, a purge, a restore "
                "from the wrong backup), or record the difference as expected." % (name, join_names(differing)),
            )
        )
    return findings


def _keys_text(keys, shown):
    if not shown:
        return "%d %s (the key column looks secret)" % (len(keys), "key" if len(keys) == 1 else "keys")
    listed = ", ".join(keys[:SHOWN_KEYS])
    more = " and %d more" % (len(keys) - SHOWN_KEYS) if len(keys) > SHOWN_KEYS else ""
    return "%s %s%s" % ("key" if len(keys) == 1 else "keys", listed, more)


def _row_changes(base, other):
    """Phrases for what `other` (a reference record) lacks, adds and changes against `base`."""
    columns = [name for name in base["columns"] if name in other["columns"]]
    base_at = {name: base["columns"].index(name) for name in columns}
    other_at = {name: other["columns"].index(name) for name in columns}
    shown = base.get("key_shown", True) and other.get("key_shown", True)
    lacking = sorted(set(base["rows"]) - set(other["rows"]), key=_natural)
    adding = sorted(set(other["rows"]) - set(base["rows"]), key=_natural)
    changed = {}
    for key in sorted(set(base["rows"]) & set(other["rows"]), key=_natural):
        names = [name for name in columns if base["rows"][key][base_at[name]] != other["rows"][key][other_at[name]]]
        if names:
            changed[key] = names
    phrases = []
    if lacking:
        phrases.append("lacks %s" % _keys_text(lacking, shown))
    if adding:
        phrases.append("adds %s" % _keys_text(adding, shown))
    if changed:
        keys = list(changed)
        columns_changed = sorted({name for names in changed.values() for name in names})
        phrases.append("changes %s (columns %s)" % (_keys_text(keys, shown), ", ".join(columns_changed)))
    return phrases, bool(lacking)


def _natural(key):
    return (0, int(key), key) if key.lstrip("-").isdigit() else (1, 0, key)


def reference_findings(db, data, labels):
    baseline = labels[0]
    references = {label: data[label].get("reference") or {} for label in labels}
    common = set.intersection(*(set(references[label]) for label in labels))
    findings = []
    for name in sorted(common):
        base = references[baseline][name]
        phrases, lacking, differing = [], False, []
        for label in labels[1:]:
            changes, lacks = _row_changes(base, references[label][name])
            if changes:
                differing.append(label)
                phrases.append("%s %s" % (label, "; ".join(changes)))
                lacking = lacking or lacks
        if not differing:
            continue
        values = {label: "%d rows" % len(references[label][name]["rows"]) for label in labels}
        findings.append(
            db.finding(
                "data.%s" % name,
                "changed",
                "postgres.data_reference_rows",
                "high" if lacking else "medium",
                values,
                differing,
                "Reference table %s differs from %s, compared by primary key: %s."
                % (name, baseline, ". ".join(phrases)),
                "Align the rows of %s on %s with %s through a data migration (or a seed), or record the difference "
                "as expected: the code reads these rows as constants." % (name, join_names(differing), baseline),
            )
        )
    return findings


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def sequence_findings(db, data):
    findings = []
    for label in sorted(data, key=db.ok.index):
        for name, sequence in sorted((data[label].get("sequences") or {}).items()):
            last, top = _int(sequence.get("last_value")), _int(sequence.get("max"))
            start = _int(sequence.get("start"))
            # Never used (no last value, but readable): its next value is its start.
            unused = last is None and sequence.get("readable") and start is not None
            if top is None or (sequence.get("increment") or 1) < 0:
                continue
            if not (unused and start <= top) and (last is None or last >= top):
                continue
            column = sequence.get("column") or "?"
            table, _, column_name = column.rpartition(".")
            state = "last value %s" % last if last is not None else "never used, next value %s" % start
            findings.append(
                db.finding(
                    "data.%s" % name,
                    "policy",
                    "postgres.data_sequence_behind",
                    "high",
                    {label: "%s, max(%s) %s" % (state, column_name, top)},
                    [label],
                    "Sequence %s is behind its data on %s (%s) while max(%s) is %s: the next insert that takes "
                    "a value from it fails with a duplicate key (or reuses an id)." % (name, label, state, column, top),
                    "On %s: SELECT setval('%s', (SELECT max(%s) FROM %s)); (a restore or a bulk load with explicit "
                    "ids leaves the sequence where it was)." % (label, name, column_name, table),
                )
            )
    return findings


def invalid_index_findings(db, data):
    findings = []
    for label in sorted(data, key=db.ok.index):
        for name in data[label].get("invalid_indexes") or []:
            index = name.rpartition(".")[2]
            findings.append(
                db.finding(
                    "data.%s" % name,
                    "policy",
                    "postgres.data_invalid_index",
                    "high" if db.production([label]) else "medium",
                    {label: "invalid"},
                    [label],
                    "Index %s is invalid on %s (a failed CREATE INDEX CONCURRENTLY): it is maintained on every write "
                    "but no query uses it, and a unique one does not enforce uniqueness." % (name, label),
                    "On %s: REINDEX INDEX CONCURRENTLY %s (or drop it and create it again)." % (label, index),
                )
            )
    return findings


def statistics_findings(db, data):
    findings = []
    for label in db.production(sorted(data, key=db.ok.index)):
        tables = data[label].get("tables") or {}
        never = sorted(
            name for name, table in tables.items() if table.get("never_analyzed") and table.get("never_vacuumed")
        )
        if not never:
            continue
        findings.append(
            db.finding(
                "data.@never_analyzed",
                "policy",
                "postgres.data_never_analyzed",
                "low",
                {label: "%d tables" % len(never)},
                [label],
                "%s on %s %s never been analyzed nor vacuumed: the planner guesses their sizes."
                % (join_names(never), label, "has" if len(never) == 1 else "have"),
                "Check autovacuum on %s (it skips tables below its thresholds), or run ANALYZE after loading data."
                % label,
            )
        )
    return findings


def skipped_findings(db, data):
    findings = []
    for label in sorted(data, key=db.ok.index):
        skipped = data[label].get("skipped") or []
        if not skipped:
            continue
        parts = ["%s (%s)" % (item["what"], SKIP_TEXT.get(item["reason"], item["reason"])) for item in skipped]
        findings.append(
            db.finding(
                "data.@skipped",
                "unknown",
                "postgres.data_skipped",
                "info",
                {label: "%d skipped" % len(skipped)},
                [label],
                "Data parity skipped on %s: %s." % (label, "; ".join(parts)),
                "Raise drift_postgres_data_table_timeout_ms, drift_postgres_data_budget_ms or "
                "drift_postgres_data_row_cap, or grant the audit role SELECT, to compare them too.",
            )
        )
    return findings


def data_findings(db):
    """Every data parity finding of one database (nothing unless data parity was read)."""
    data = _data(db)
    if not data:
        return []
    labels = [label for label in db.ok if label in data]
    findings = []
    if len(labels) >= 2:
        findings += row_count_findings(db, data, labels)
        findings += reference_findings(db, data, labels)
    findings += sequence_findings(db, data)
    findings += invalid_index_findings(db, data)
    findings += statistics_findings(db, data)
    findings += skipped_findings(db, data)
    return findings
