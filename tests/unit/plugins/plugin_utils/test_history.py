"""The SQLite history store: round trip, per-area previous runs, scopes, baselines, retention,
foreign / corrupt / newer files left as they were, a lock held by another audit, a run killed
while writing (SIGKILL), concurrent writers, and no value ever stored."""

import hashlib
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import history, timeline
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import make_finding, with_ids

DAY = 86400
T0 = 1767225600  # 2026-01-01T00:00:00Z
SCOPE = '{"environments": ["dev", "prod"], "inventory": ["lab"]}'
CANARY = "canary-Zq8vNw3kLr5t"


def finding(key, area="env", value="x"):
    return make_finding(
        area=area,
        subject="app",
        key=key,
        kind="changed",
        check="%s.value_changed" % area,
        severity="high",
        values={"dev": CANARY, "prod": value},
        environments=["prod"],
        message="%s differs: %s" % (key, CANARY),
        recommendation="r",
    )


def rows_of(findings, when):
    with_ids(findings)
    timeline.compare_with(findings, ["env", "git"], None, time.strftime(timeline.STAMP, time.gmtime(when)), when)
    return [timeline.state_row(f) for f in findings]


def record(path, number, when, findings, areas=("env",), scope=SCOPE, baseline=None, retention=365, busy=2):
    run = {
        "run_id": "run-%d" % number,
        "scope": scope,
        "generated_at": time.strftime(timeline.STAMP, time.gmtime(when)),
        "recorded_at": when,
        "areas": list(areas),
        "unexpected": {"high": len(findings)},
    }
    return history.record_run(str(path), run, rows_of(findings, when), busy, retention, baseline_name=baseline)


def read(path, areas=("env",), scope=SCOPE, baseline=None):
    return history.read_history(str(path), scope, list(areas), 10, 2, baseline=baseline)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_store_yet_is_no_earlier_run(tmp_path):
    assert read(tmp_path / "h.sqlite") is None
    assert not (tmp_path / "h.sqlite").exists()


def test_a_run_recorded_is_read_back_with_its_states_and_trend(tmp_path):
    path = tmp_path / "reports" / "h.sqlite"
    record(path, 1, T0, [finding("DEBUG"), finding("LOG_LEVEL")])
    earlier = read(path)
    assert earlier["run_id"] == "run-1" and earlier["areas"] == ["env"]
    assert sorted(row["key"] for row in earlier["states"].values()) == ["DEBUG", "LOG_LEVEL"]
    row = next(iter(earlier["states"].values()))
    assert row["first_seen"] == "2026-01-01T00:00:00Z" and row["state"] == "new" and row["expected"] is False
    assert earlier["trend"] == [
        {
            "generated_at": "2026-01-01T00:00:00Z",
            "unexpected": {"critical": 0, "high": 2, "medium": 0, "low": 0, "info": 0},
        }
    ]
    connection = sqlite3.connect(str(path))
    assert connection.execute("PRAGMA user_version").fetchone()[0] == history.STORE_VERSION
    assert connection.execute("PRAGMA application_id").fetchone()[0] == history.APPLICATION_ID


def test_each_area_compares_with_the_last_run_that_audited_it_in_the_same_scope(tmp_path):
    path = tmp_path / "h.sqlite"
    record(path, 1, T0, [finding("DEBUG"), finding("main", area="git")], areas=("env", "git"))
    record(path, 2, T0 + DAY, [finding("LOG_LEVEL")], areas=("env",))  # --tags env
    record(path, 3, T0 + 2 * DAY, [finding("OTHER")], scope="another inventory")
    earlier = read(path, areas=("env", "git"))
    assert sorted(row["key"] for row in earlier["states"].values()) == ["LOG_LEVEL", "main"]
    assert earlier["run_id"] == "run-2"
    assert [point["generated_at"][:10] for point in earlier["trend"]] == ["2026-01-01", "2026-01-02"]


def test_a_baseline_is_a_named_run_kept_whatever_the_retention(tmp_path):
    path = tmp_path / "h.sqlite"
    record(path, 1, T0, [finding("DEBUG")], baseline="release")
    record(path, 2, T0 + 10 * DAY, [finding("LOG_LEVEL")])
    record(path, 3, T0 + 400 * DAY, [finding("X")], retention=30)  # drops run 2, keeps the baseline
    assert [row["key"] for row in read(path, baseline="release")["states"].values()] == ["DEBUG"]
    runs = sqlite3.connect(str(path)).execute("SELECT run_id FROM runs ORDER BY id").fetchall()
    assert runs == [("run-1",), ("run-3",)]
    assert sqlite3.connect(str(path)).execute("SELECT count(*) FROM states").fetchone()[0] == 2
    moved = record(path, 4, T0 + 401 * DAY, [finding("Y")], baseline="release")
    assert moved["baseline_moved"] is True
    assert [row["key"] for row in read(path, baseline="release")["states"].values()] == ["Y"]
    with pytest.raises(history.HistoryError, match=r"no baseline 'nope' .*saved baselines: release"):
        read(path, baseline="nope")


def test_no_value_and_no_message_is_ever_stored(tmp_path):
    path = tmp_path / "h.sqlite"
    record(path, 1, T0, [finding("DEBUG", value=CANARY + "-prod")])
    raw = path.read_bytes()
    assert CANARY.encode() not in raw
    assert b"differs" not in raw


def foreign(path):
    connection = sqlite3.connect(str(path))
    connection.execute("CREATE TABLE accounts (name TEXT)")
    connection.commit()
    connection.close()


def newer(path):
    record(path, 1, T0, [finding("DEBUG")])
    connection = sqlite3.connect(str(path))
    connection.execute("PRAGMA user_version = %d" % (history.STORE_VERSION + 1))
    connection.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (foreign, "of another program"),
        (lambda path: path.write_bytes(b"this is not a database at all" * 100), "not an SQLite database"),
        (newer, "newer than this envparity knows"),
    ],
    ids=["foreign", "corrupt", "newer"],
)
def test_a_store_that_is_not_ours_or_newer_is_refused_and_left_as_it_was(tmp_path, make, message):
    path = tmp_path / "h.sqlite"
    make(path)
    before = digest(path)
    with pytest.raises(history.HistoryError, match=message):
        read(path)
    with pytest.raises(history.HistoryError, match=message):
        record(path, 9, T0 + DAY, [finding("DEBUG")])
    assert digest(path) == before
    assert not os.path.exists(str(path) + "-journal")


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"")
    assert read(path) is None
    record(path, 1, T0, [finding("DEBUG")])
    assert read(path)["run_id"] == "run-1"


def test_a_lock_held_by_another_audit_is_waited_for_then_a_clear_error(tmp_path):
    path = tmp_path / "h.sqlite"
    record(path, 1, T0, [finding("DEBUG")])
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(history.HistoryError, match=r"stayed locked by another audit for 0\.2 s"):
            record(path, 2, T0 + DAY, [finding("DEBUG")], busy=0.2)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert read(path)["run_id"] == "run-1"


def _writer(path, first, count):
    for number in range(first, first + count):
        record(path, number, T0 + number, [finding("K%d" % number)], busy=30)


def test_two_audits_writing_at_once_both_land_and_the_store_stays_sound(tmp_path):
    path = tmp_path / "h.sqlite"
    record(path, 0, T0, [finding("DEBUG")])
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(path, first, 15)) for first in (1, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    connection = sqlite3.connect(str(path))
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert connection.execute("SELECT count(*) FROM runs").fetchone()[0] == 31
    assert connection.execute("SELECT count(*) FROM states").fetchone()[0] == 31


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from tests.unit.plugins.plugin_utils import test_history as t
    from ansible_collections.envparity.audit.plugins.plugin_utils import history

    def rows():
        for number in range(5000):
            if number == 2500:  # mid-transaction: half the states written, nothing committed
                os.kill(os.getpid(), signal.SIGKILL)
            yield dict(id="%016x" % number, area="env", subject="app", key="K%d" % number, check="c",
                       kind="changed", severity="high", expected=False, state="new", digest="d",
                       first_seen="2026-01-02T00:00:00Z")

    run = dict(run_id="killed", scope=t.SCOPE, generated_at="2026-01-02T00:00:00Z",
               recorded_at=t.T0 + t.DAY, areas=["env"], unexpected={})
    history.record_run(sys.argv[1], run, rows(), 5, 365)
    """
)


def test_a_run_killed_while_writing_leaves_the_store_as_it_was(tmp_path):
    path = tmp_path / "h.sqlite"
    record(path, 1, T0, [finding("DEBUG")])
    before = read(path)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join((root, os.path.join(root, "collections"))))
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=root, env=environment, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert os.path.exists(str(path) + "-journal")  # the hot journal the kill left
    assert read(path) == before  # rolled back on the next open
    connection = sqlite3.connect(str(path))
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert connection.execute("SELECT run_id FROM runs").fetchall() == [("run-1",)]
    record(path, 2, T0 + 2 * DAY, [finding("DEBUG")])
    assert read(path)["run_id"] == "run-2"
