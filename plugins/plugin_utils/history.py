"""The history store: one SQLite file (stdlib sqlite3) with a row per run and per finding state.

What is kept of a finding is its identity (id, area, subject, key, check), kind, severity,
expected, state, first-seen date and a digest of its values: never a value, so never a secret.
A named baseline also keeps its hosts' facts (baseline_facts.py): values as the report shows
them, every secret as a fingerprint under the baseline key, which is never stored here.
The store has its own schema version (PRAGMA user_version) and application id, and migrates
itself forward; a store of a newer version is refused, never downgraded, and a file that is not
ours is never written. A run is recorded in one transaction (BEGIN IMMEDIATE … COMMIT): a run
killed while writing leaves the store as it was. Two audits at once queue on SQLite's lock for
a bounded time and then fail with a clear message.
Pure Python; no Ansible imports.
"""

import json
import os
import sqlite3

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SEVERITIES
from ansible_collections.envparity.audit.plugins.plugin_utils.timeline import ROW_FIELDS

APPLICATION_ID = 0x45505831  # "EPX1": marks the file as an envparity history store
DAY = 86400

# Each entry takes the store from version N to N + 1; entry 0 creates it. Never edit an entry
# that has shipped: add one.
MIGRATIONS = (
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL UNIQUE,
            scope TEXT NOT NULL,
            generated_at TEXT NOT NULL,
            recorded_at REAL NOT NULL,
            baseline TEXT UNIQUE,
            unexpected TEXT NOT NULL
        )""",
        "CREATE INDEX runs_by_scope ON runs (scope, id)",
        "CREATE INDEX runs_by_time ON runs (recorded_at)",
        """CREATE TABLE run_areas (
            scope TEXT NOT NULL,
            area TEXT NOT NULL,
            run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            PRIMARY KEY (scope, area, run)
        ) WITHOUT ROWID""",
        "CREATE INDEX run_areas_by_run ON run_areas (run)",
        """CREATE TABLE states (
            run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            area TEXT NOT NULL,
            subject TEXT NOT NULL,
            key TEXT NOT NULL,
            "check" TEXT NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            expected INTEGER NOT NULL,
            state TEXT NOT NULL,
            digest TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            PRIMARY KEY (run, area, id)
        ) WITHOUT ROWID""",
    ),
    # Baseline columns: a baseline's facts per host, every secret as a fingerprint under the
    # baseline key (plugin_utils/baseline_facts.py), which is never stored here.
    (
        """CREATE TABLE baseline_facts (
            run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            host TEXT NOT NULL,
            environment TEXT NOT NULL,
            label TEXT NOT NULL,
            key_id TEXT NOT NULL,
            request TEXT NOT NULL,
            facts TEXT NOT NULL,
            PRIMARY KEY (run, position)
        ) WITHOUT ROWID""",
    ),
)
STORE_VERSION = len(MIGRATIONS)
RUN_FIELDS = ("id", "run_id", "generated_at", "recorded_at")
BASELINE_FIELDS = ("host", "environment", "label", "key_id", "request", "facts")


class HistoryError(Exception):
    """The store cannot be read or written; the message says why and what was left as it was."""


def _connect(path, busy_seconds, create):
    """A connection in autocommit mode (transactions are explicit). Without `create`, an existing
    file only (mode=rw, not ro: a journal left by a killed run must be rolled back to read)."""
    try:
        if create:
            connection = sqlite3.connect(path, timeout=busy_seconds, isolation_level=None)
        else:
            connection = sqlite3.connect(
                "file:%s?mode=rw" % path.replace("%", "%25").replace("?", "%3f").replace("#", "%23"),
                uri=True,
                timeout=busy_seconds,
                isolation_level=None,
            )
        connection.execute("PRAGMA foreign_keys = ON")
        return connection
    except sqlite3.Error as exc:
        raise HistoryError("cannot open the history store %s: %s" % (path, exc)) from None


def _version(connection, path):
    """The store's schema version (0: an empty file, to be created); refuses what is not ours."""
    application = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if application == 0 and version == 0:
        if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise HistoryError("%s is an SQLite database of another program, not an envparity history store" % path)
        return 0
    if application != APPLICATION_ID:
        raise HistoryError("%s is an SQLite database of another program, not an envparity history store" % path)
    if version > STORE_VERSION:
        raise HistoryError(
            "the history store %s has schema version %d, newer than this envparity knows (%d): it is left "
            "as it is; upgrade envparity or set drift_history_file to another file" % (path, version, STORE_VERSION)
        )
    return version


def _failure(path, exc, busy_seconds):
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return HistoryError(
            "the history store %s stayed locked by another audit for %s s (drift_history_busy_timeout); "
            "this run was not recorded" % (path, busy_seconds)
        )
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return HistoryError("%s is not an SQLite database (a corrupt or foreign file); it is left as it is" % path)
    return HistoryError("the history store %s cannot be used: %s" % (path, exc))


def _states(connection, run, area):
    rows = connection.execute(
        'SELECT id, area, subject, key, "check", kind, severity, expected, digest, first_seen, state '
        "FROM states WHERE run = ? AND area = ?",
        (run, area),
    )
    found = {}
    for row in rows:
        record = dict(zip(ROW_FIELDS + ("state",), row, strict=True))
        record["expected"] = bool(record["expected"])
        found[record["id"]] = record
    return found


def _run(connection, where, arguments):
    row = connection.execute("SELECT %s FROM runs WHERE %s" % (", ".join(RUN_FIELDS), where), arguments).fetchone()
    return None if row is None else dict(zip(RUN_FIELDS, row, strict=True))


def _trend(connection, scope, count):
    rows = connection.execute(
        "SELECT generated_at, unexpected FROM runs WHERE scope = ? ORDER BY id DESC LIMIT ?", (scope, count)
    ).fetchall()
    return [{"generated_at": stamp, "unexpected": json.loads(counts)} for stamp, counts in reversed(rows)]


def read_history(path, scope, areas, trend_runs, busy_seconds, baseline=None):
    """The earlier run to compare with, in timeline's shape, or None for a store that does not exist yet.

    Without a baseline: per area, the latest run of this scope (inventory and environments) that
    audited it, so that an audit of one area (--tags) leaves the others' history alone. With one:
    the run saved under that name, for every area it audited. Raises HistoryError."""
    if not os.path.exists(path):
        if baseline is not None:
            raise HistoryError("no baseline %r: the history store %s does not exist yet" % (baseline, path))
        return None
    connection = _connect(path, busy_seconds, create=False)
    try:
        if _version(connection, path) == 0:
            return None  # an empty store: nothing to compare with yet
        states, latest = {}, None
        if baseline is not None:
            latest = _run(connection, "baseline = ?", (baseline,))
            if latest is None:
                names = [row[0] for row in connection.execute("SELECT baseline FROM runs WHERE baseline IS NOT NULL")]
                raise HistoryError(
                    "no baseline %r in %s (saved baselines: %s)" % (baseline, path, ", ".join(sorted(names)) or "none")
                )
            runs = {
                area: latest["id"]
                for (area,) in connection.execute("SELECT area FROM run_areas WHERE run = ?", (latest["id"],))
            }
        else:
            runs = {}
            for area in areas:
                row = connection.execute(
                    "SELECT max(run) FROM run_areas WHERE scope = ? AND area = ?", (scope, area)
                ).fetchone()
                if row[0] is not None:
                    runs[area] = row[0]
            if runs:
                latest = _run(connection, "id = ?", (max(runs.values()),))
        for area, run in runs.items():
            states.update(_states(connection, run, area))
        return {
            "areas": sorted(runs),
            "generated_at": latest and latest["generated_at"],
            "recorded_at": latest and latest["recorded_at"],
            "run_id": latest and latest["run_id"],
            "states": states,
            "trend": _trend(connection, scope, trend_runs),
        }
    except sqlite3.Error as exc:
        raise _failure(path, exc, busy_seconds) from None
    finally:
        connection.close()


def _migrate(connection, version):
    for steps in MIGRATIONS[version:]:
        for statement in steps:
            connection.execute(statement)
    if version == 0:
        connection.execute("PRAGMA application_id = %d" % APPLICATION_ID)
    connection.execute("PRAGMA user_version = %d" % STORE_VERSION)


def read_baseline_facts(path, name, busy_seconds):
    """The stored hosts of baseline `name`: [{host, environment, label, key_id, request, facts
    (JSON text), generated_at}]; empty for a baseline saved without facts. Raises HistoryError."""
    if not os.path.exists(path):
        raise HistoryError("no baseline %r: the history store %s does not exist yet" % (name, path))
    connection = _connect(path, busy_seconds, create=False)
    try:
        version = _version(connection, path)
        run = _run(connection, "baseline = ?", (name,)) if version else None
        if run is None:
            raise HistoryError("no baseline %r in %s" % (name, path))
        if version < 2:
            return []
        rows = connection.execute(
            "SELECT %s FROM baseline_facts WHERE run = ? ORDER BY position" % ", ".join(BASELINE_FIELDS), (run["id"],)
        )
        return [dict(zip(BASELINE_FIELDS, row, strict=True), generated_at=run["generated_at"]) for row in rows]
    except sqlite3.Error as exc:
        raise _failure(path, exc, busy_seconds) from None
    finally:
        connection.close()


def record_run(path, run, rows, busy_seconds, retention_days, baseline_name=None, baseline_facts=()):
    """Record one run and its finding states, in one transaction, then drop runs older than the
    retention (named baselines are kept). `run`: run_id, scope, generated_at, recorded_at, areas,
    unexpected ({severity: count}); `baseline_facts`: with a baseline name, its hosts' facts
    ([{host, environment, label, key_id, request, facts}], texts). Returns {"deleted": runs
    dropped, "baseline_moved": bool}. Raises HistoryError; the store is then as it was."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise HistoryError("cannot create %s for the history store: %s" % (directory, exc.strerror)) from None
    connection = _connect(path, busy_seconds, create=True)
    try:
        connection.execute("BEGIN IMMEDIATE")  # the write lock, waited for at most busy_seconds
        try:
            version = _version(connection, path)
            if version < STORE_VERSION:
                _migrate(connection, version)
            moved = False
            if baseline_name is not None:
                moved = (
                    connection.execute("UPDATE runs SET baseline = NULL WHERE baseline = ?", (baseline_name,)).rowcount
                    > 0
                )
            counts = {severity: int(run["unexpected"].get(severity, 0)) for severity in SEVERITIES}
            cursor = connection.execute(
                "INSERT INTO runs (run_id, scope, generated_at, recorded_at, baseline, unexpected) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run["run_id"],
                    run["scope"],
                    run["generated_at"],
                    run["recorded_at"],
                    baseline_name,
                    json.dumps(counts),
                ),
            )
            number = cursor.lastrowid
            connection.executemany(
                "INSERT INTO run_areas (scope, area, run) VALUES (?, ?, ?)",
                [(run["scope"], area, number) for area in sorted(set(run["areas"]))],
            )
            connection.executemany(
                'INSERT OR REPLACE INTO states (run, id, area, subject, key, "check", kind, severity, expected, state, '
                "digest, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        number,
                        row["id"],
                        row["area"],
                        row["subject"],
                        row["key"],
                        row["check"],
                        row["kind"],
                        row["severity"],
                        int(bool(row["expected"])),
                        row["state"],
                        row["digest"],
                        row["first_seen"],
                    )
                    for row in rows
                ],
            )
            connection.executemany(
                "INSERT INTO baseline_facts (run, position, host, environment, label, key_id, request, facts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(number, index, *(row[name] for name in BASELINE_FIELDS)) for index, row in enumerate(baseline_facts)],
            )
            # Retention by the time recorded, never the run just written nor a named baseline.
            deleted = connection.execute(
                "DELETE FROM runs WHERE recorded_at < ? AND baseline IS NULL AND id != ?",
                (run["recorded_at"] - retention_days * DAY, number),
            ).rowcount
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise _failure(path, exc, busy_seconds) from None
    finally:
        connection.close()
    return {"deleted": deleted, "baseline_moved": moved}
