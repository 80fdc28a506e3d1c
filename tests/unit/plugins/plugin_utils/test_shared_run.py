"""A shared run (drift_phase collect / report, for AWX job slicing): opened or joined by collect
jobs, even at the same moment; claimed once by a report job; hosts no slice delivered are could not
collect. Real processes for the race; real files throughout."""

import json
import multiprocessing
import os
import stat
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.collect import pack
from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import write_run_report
from tests.unit.plugins.plugin_utils.test_run_dir import ENV_REQUEST, settings

SLICE = {"areas": ["env"], "environments": ["dev", "prod"]}
FACTS = pack({"areas": {"env": {"status": "ok", "data": {"files": {}}}}})


def _open_in_process(base, queue):
    path, opened = run_dir.open_shared_run(base, "wf-42", SLICE)
    queue.put((path, opened, run_dir.read_key(path)))


def test_slices_opening_at_once_share_one_run_and_one_key(tmp_path):
    queue = multiprocessing.get_context("fork").Queue()
    processes = [
        multiprocessing.get_context("fork").Process(target=_open_in_process, args=(str(tmp_path), queue))
        for _ in range(6)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    results = [queue.get(timeout=5) for _ in processes]
    assert {path for path, _, _ in results} == {str(tmp_path / "wf-42")}
    assert sorted(opened for _, opened, _ in results) == [False] * 5 + [True]  # one opened it, five joined
    assert len({key for _, _, key in results}) == 1  # every slice fingerprints with the same key
    assert sorted(os.listdir(tmp_path)) == ["wf-42"]  # no half-built run left aside
    key = tmp_path / "wf-42" / "key"
    assert not key.is_symlink() and stat.S_IMODE(key.stat().st_mode) == 0o600  # shared storage, not /dev/shm
    assert stat.S_IMODE((tmp_path / "wf-42").stat().st_mode) == 0o700


@pytest.mark.parametrize("bad", ["", "../x", ".hidden", "a/b", "x" * 101, None, "a b"])
def test_a_run_id_must_name_a_directory(tmp_path, bad):
    with pytest.raises(run_dir.SharedRunError, match="is not a run id"):
        run_dir.open_shared_run(str(tmp_path), bad, SLICE)
    assert os.listdir(tmp_path) == []


def test_a_slice_with_other_areas_cannot_join(tmp_path):
    run_dir.open_shared_run(str(tmp_path), "r1", SLICE)
    with pytest.raises(run_dir.SharedRunError, match="every slice of a run must audit the same areas"):
        run_dir.open_shared_run(str(tmp_path), "r1", dict(SLICE, areas=["env", "git"]))


def test_a_single_command_run_cannot_be_joined_or_reported(tmp_path):
    run_id, _ = run_dir.new_run(str(tmp_path), SLICE)
    with pytest.raises(run_dir.SharedRunError, match="not a shared run"):
        run_dir.open_shared_run(str(tmp_path), run_id, SLICE)
    with pytest.raises(run_dir.SharedRunError, match="no shared run"):
        run_dir.claim_shared_run(str(tmp_path), run_id, SLICE)


def test_the_report_claims_the_run_once_and_then_no_slice_joins(tmp_path):
    run_dir.open_shared_run(str(tmp_path), "r1", SLICE)
    path = run_dir.claim_shared_run(str(tmp_path), "r1", {"areas": ["git"], "environments": ["dev", "prod"], "x": 1})
    merged = run_dir.load_settings(path)
    assert merged["areas"] == ["env"] and merged["x"] == 1 and merged["shared"] is True  # areas: as collected
    with pytest.raises(run_dir.SharedRunError, match="already being reported, or was reported"):
        run_dir.claim_shared_run(str(tmp_path), "r1", SLICE)
    with pytest.raises(run_dir.SharedRunError, match="already reported"):
        run_dir.open_shared_run(str(tmp_path), "r1", SLICE)


def test_a_report_for_a_run_no_slice_opened_says_so(tmp_path):
    with pytest.raises(run_dir.SharedRunError, match="no shared run nope under"):
        run_dir.claim_shared_run(str(tmp_path), "nope", SLICE)


def test_a_shared_key_outlives_the_hour_but_not_the_day(tmp_path):
    shared, _ = run_dir.open_shared_run(str(tmp_path), "slow", SLICE)
    _, single = run_dir.new_run(str(tmp_path))
    hours_ago = time.time() - run_dir.STALE_KEY_SECONDS - 60
    for path in (shared, single):
        os.utime(os.path.join(path, "key"), (hours_ago, hours_ago), follow_symlinks=False)
    run_dir.new_run(str(tmp_path))
    assert os.path.exists(os.path.join(shared, "key"))  # slices queued for hours still join
    assert not os.path.lexists(os.path.join(single, "key"))
    days_ago = time.time() - run_dir.SHARED_STALE_KEY_SECONDS - 60
    os.utime(os.path.join(shared, "key"), (days_ago, days_ago))
    run_dir.new_run(str(tmp_path))
    assert not os.path.exists(os.path.join(shared, "key"))
    with pytest.raises(run_dir.SharedRunError, match="has no key left"):
        run_dir.open_shared_run(str(tmp_path), "slow", SLICE)


def test_hosts_no_slice_delivered_are_could_not_collect(tmp_path):
    """Only the dev slice ran: prod is an unknown column with the reason, never left out or "same"."""
    base = tmp_path / "reports" / ".runs"
    path, _ = run_dir.open_shared_run(str(base), "r1", dict(settings(tmp_path, False), areas=["env"]))
    run_dir.store_request(path, "d", ENV_REQUEST)
    assert run_dir.store_facts(path, "d", FACTS) is None
    run_dir.claim_shared_run(str(base), "r1", dict(settings(tmp_path, False), areas=["env"]))
    written = write_run_report(path)
    assert written["not_collected"] == ["p"]
    report = json.loads((tmp_path / "reports" / "latest.json").read_text())
    assert [column["host"] for column in report["columns"]] == ["d", "p"]
    prod = [f for f in report["findings"] if f["kind"] == "unknown" and f["environments"] == ["prod"]]
    assert prod and all("no collect job of run r1 delivered" in json.dumps(f) for f in prod)
    assert report["summary"]["unknown"] >= 1
    assert not os.path.exists(path)  # reported: the run directory goes, as a single run's


def test_a_complete_shared_run_reports_nothing_missing(tmp_path):
    base = tmp_path / "reports" / ".runs"
    path, _ = run_dir.open_shared_run(str(base), "r2", dict(settings(tmp_path, False), areas=["env"]))
    for host in ("d", "p"):
        run_dir.store_request(path, host, ENV_REQUEST)
        run_dir.store_facts(path, host, FACTS)
    run_dir.claim_shared_run(str(base), "r2", dict(settings(tmp_path, False), areas=["env"]))
    written = write_run_report(path)
    assert written["not_collected"] == [] and written["summary"]["unknown"] == 0
