"""The run directory: private from the start, the key gone however the run ends, facts checked."""

import os
import pathlib
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.collect import pack
from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import REPORT_TEMPLATE
from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import write_run_report

ROOT = pathlib.Path(__file__).resolve().parents[4]
TEMPLATE = REPORT_TEMPLATE
ENV_REQUEST = {"env": {"project_dir": None, "files": [{"name": "app", "path": "a.env", "template": None}]}}


@pytest.fixture(autouse=True)
def no_key_left(tmp_path):
    """Keys of the runs a test opened go with it (they live outside tmp_path, in /dev/shm)."""
    yield
    for link in tmp_path.rglob("key"):
        if link.is_symlink():
            run_dir.discard_key(str(link.parent))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_run_is_private_from_the_start(tmp_path):
    old_umask = os.umask(0)  # a careless umask must not open the run directory
    try:
        run_id, path = run_dir.new_run(str(tmp_path / "runs"), {"a": 1})
    finally:
        os.umask(old_umask)
    assert os.path.basename(path) == run_id
    assert mode(path) == 0o700
    for sub in ("facts", "errors", "requests"):
        assert mode(os.path.join(path, sub)) == 0o700
    key_file = os.path.realpath(os.path.join(path, "key"))
    assert key_file.startswith("/dev/shm/" + run_dir.KEY_DIR_PREFIX)  # memory, never a disk
    assert mode(key_file) == 0o600
    assert mode(os.path.dirname(key_file)) == 0o700
    assert mode(os.path.join(path, "settings.json")) == 0o600
    key = run_dir.read_key(path)
    assert len(bytes.fromhex(key)) == 32
    assert key != run_dir.read_key(run_dir.new_run(str(tmp_path / "runs"))[1])


@pytest.mark.parametrize("key_homes", [run_dir.KEY_HOMES, ()], ids=["memory", "run directory"])
def test_discard_key_removes_it_and_can_be_called_twice(tmp_path, monkeypatch, key_homes):
    monkeypatch.setattr(run_dir, "KEY_HOMES", key_homes)
    _, path = run_dir.new_run(str(tmp_path))
    key_file = os.path.realpath(os.path.join(path, "key"))
    assert len(bytes.fromhex(run_dir.read_key(path))) == 32
    run_dir.discard_key(path)
    run_dir.discard_key(path)
    assert not os.path.lexists(os.path.join(path, "key"))
    assert not os.path.exists(os.path.dirname(key_file) if key_homes else key_file)
    assert os.path.exists(os.path.join(path, "settings.json"))


def test_discard_key_removes_only_what_new_run_made(tmp_path):
    _, path = run_dir.new_run(str(tmp_path))
    run_dir.discard_key(path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "key").write_text("not ours")
    os.symlink(elsewhere / "key", os.path.join(path, "key"))
    run_dir.discard_key(path)
    assert (elsewhere / "key").read_text() == "not ours"
    assert not os.path.lexists(os.path.join(path, "key"))


def test_keys_left_by_killed_runs_are_deleted_by_the_next_run(tmp_path):
    _, old = run_dir.new_run(str(tmp_path))
    _, recent = run_dir.new_run(str(tmp_path))
    hours_ago = time.time() - run_dir.STALE_KEY_SECONDS - 60
    os.utime(os.path.join(old, "key"), (hours_ago, hours_ago), follow_symlinks=False)
    (tmp_path / "not-a-run").write_text("")
    orphan = tempfile.mkdtemp(prefix=run_dir.KEY_DIR_PREFIX, dir=run_dir.KEY_HOMES[0])  # its run dir is elsewhere
    os.utime(orphan, (hours_ago, hours_ago))
    _, new = run_dir.new_run(str(tmp_path))
    assert not os.path.exists(orphan)
    assert not os.path.lexists(os.path.join(old, "key"))
    assert os.path.exists(os.path.join(old, "settings.json"))
    assert os.path.exists(os.path.join(recent, "key"))  # a run still going on keeps its key
    assert os.path.exists(os.path.join(new, "key"))


@pytest.fixture
def tiny_disk(tmp_path):
    """Mounts a real tmpfs with the given options; unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()

    def mounted(options):
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=False).returncode:
            pytest.skip("cannot mount a tmpfs here")
        return mount

    yield mounted
    subprocess.run(["umount", str(mount)], check=False)


def key_dirs():
    return {name for name in os.listdir("/dev/shm") if name.startswith(run_dir.KEY_DIR_PREFIX)}


@pytest.mark.parametrize(
    ("options", "filler_pages", "settings_bytes", "key_homes"),
    [
        ("size=16k", 0, 20000, run_dir.KEY_HOMES),  # the settings do not fit
        ("size=16k", 3, 10, ()),  # the key file does not fit (no memory file system: the key on disk)
        ("size=64k,nr_inodes=7", 0, 10, run_dir.KEY_HOMES),  # the key is in /dev/shm, its link does not fit
    ],
)
def test_a_full_disk_leaves_no_run_and_no_key(tiny_disk, monkeypatch, options, filler_pages, settings_bytes, key_homes):
    monkeypatch.setattr(run_dir, "KEY_HOMES", key_homes)
    disk = tiny_disk(options)
    (disk / "filler").write_bytes(b"x" * 4096 * filler_pages)
    before = key_dirs()
    with pytest.raises(OSError, match="No space left on device"):
        run_dir.new_run(str(disk / "runs"), {"pad": "x" * settings_bytes})
    assert os.listdir(disk / "runs") == []
    assert key_dirs() == before


def settings(tmp_path, keep):
    return {
        "environments": ["dev", "prod"],
        "production_environments": ["prod"],
        "groups": {"dev": ["d"], "prod": ["p"]},
        "rules_files": [],
        "fail_on": "never",
        "report_dir": str(tmp_path / "reports"),
        "template": str(TEMPLATE),
        "inventory": "test",
        "keep_run_dir": keep,
    }


@pytest.mark.parametrize("keep", [True, False])
def test_the_report_step_deletes_the_key_even_when_the_facts_are_kept(tmp_path, keep):
    _, path = run_dir.new_run(str(tmp_path / "runs"), settings(tmp_path, keep))
    facts = pack({"areas": {"env": {"status": "ok", "data": {"files": {}}}}})
    for host in ("d", "p"):
        run_dir.store_request(path, host, ENV_REQUEST)
        assert run_dir.store_facts(path, host, facts) is None
    write_run_report(path)
    assert (tmp_path / "reports" / "latest.json").exists()
    assert not os.path.exists(os.path.join(path, "key"))
    assert os.path.exists(os.path.join(path, "facts", "d.b64gz")) is keep


def test_unusable_facts_are_not_stored_but_recorded_as_an_error(tmp_path):
    _, path = run_dir.new_run(str(tmp_path))
    reason = run_dir.store_facts(path, "p", "bm90IGd6aXA=")
    assert reason == "its facts cannot be used: the facts are not valid gzip data"
    assert run_dir.load_facts(path, "p") is None
    assert run_dir.load_error(path, "p") == {"host": "p", "status": "failed", "task": "store facts", "reason": reason}


def test_unusable_facts_found_on_disk_fail_every_requested_area(tmp_path):
    _, path = run_dir.new_run(str(tmp_path))
    run_dir.store_request(path, "p", {"env": {}, "git": {}})
    run_dir.atomic_write(os.path.join(path, "facts", "p.b64gz"), pack(["not", "an", "object"]))
    reason = "its facts cannot be used: the facts are not an object with areas"
    assert run_dir.load_facts(path, "p") == {
        "areas": {"env": {"status": "failed", "reason": reason}, "git": {"status": "failed", "reason": reason}}
    }


@pytest.mark.parametrize(
    ("debug", "keep", "named"),
    [
        (False, False, []),
        (True, False, ["ANSIBLE_DEBUG"]),
        (False, True, ["ANSIBLE_KEEP_REMOTE_FILES"]),
        (True, True, ["ANSIBLE_DEBUG", "ANSIBLE_KEEP_REMOTE_FILES"]),
    ],
)
def test_unsafe_switches_are_named(debug, keep, named):
    assert [sentence.split()[0] for sentence in run_dir.unsafe_switches(debug, keep)] == named


# A process that opens a run, arms the key's deletion, says so, and waits (or exits) as told.
PROCESS = textwrap.dedent(
    """
    import os, signal, sys, time
    from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
    # A hangup kills the process, as under a terminal, even when the tests run under nohup.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if sys.argv[2] == "chained":
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
    _, path = run_dir.new_run(sys.argv[1], {"keep_run_dir": sys.argv[3] == "keep"})
    run_dir.close_run_on_exit(lambda: path)
    print(path, os.path.realpath(os.path.join(path, "key")), flush=True)
    if sys.argv[2] != "exit":
        time.sleep(30)
    """
)


@pytest.mark.parametrize("keep", ["keep", "no"])
@pytest.mark.parametrize(
    ("how", "signum", "returncode"),
    [
        ("exit", None, 0),
        ("wait", signal.SIGINT, -signal.SIGINT),  # KeyboardInterrupt: atexit runs, then the exit by SIGINT
        ("wait", signal.SIGTERM, -signal.SIGTERM),  # still killed by the signal, as before
        ("wait", signal.SIGHUP, -signal.SIGHUP),
        ("chained", signal.SIGTERM, 3),  # the handler that was there runs after the deletion
    ],
)
def test_the_run_is_closed_on_every_exit_path(tmp_path, how, signum, returncode, keep):
    """The key always goes; the run directory stays only with keep_run_dir, settings and all."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "collections"))
    process = subprocess.Popen(
        [sys.executable, "-c", PROCESS, str(tmp_path), how, keep],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    path, key_file = process.stdout.readline().split()
    key_dir = os.path.dirname(key_file)
    assert key_dir.startswith("/dev/shm/" + run_dir.KEY_DIR_PREFIX)
    if signum is not None:
        process.send_signal(signum)
    assert process.wait(timeout=20) == returncode
    assert not os.path.lexists(os.path.join(path, "key"))
    assert not os.path.exists(key_dir)
    assert os.path.exists(os.path.join(path, "settings.json")) is (keep == "keep")


def test_closing_a_run_already_removed_is_harmless(tmp_path):
    _, path = run_dir.new_run(str(tmp_path), {"keep_run_dir": False})
    run_dir.close_run(path)
    assert not os.path.exists(path)
    run_dir.close_run(path)
