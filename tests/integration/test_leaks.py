"""Canary secrets never appear in any output: reports, stdout, runner artifacts, temp dirs.

Fresh canaries are planted per run (labctl replant) in dev and prod env files (including a
malformed line), and one more is put in the environment of the runner. Control markers that
must appear are counted in the same places, so a grep that finds nothing is proven to work.
"""

import json
import os
import pathlib
import secrets
import threading

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import unpack
from tests.readable import readable

ENV_CANARY = "CANARYENV" + secrets.token_hex(12)
CONTROL_MARKERS = ("OPENAI_API_KEY", "SESSION_SECRET")
# runc, the Docker engine's runtime, writes the spec of each process it starts in a container (the
# container's environment included) to /tmp/runc-process*, and removes it once the process runs:
# the lab containers' healthchecks and any `docker exec` leave one there for an instant. It is the
# engine's file, on the host that holds those values already, not something the audit wrote.
RUNC_PROCESS_SPEC = "runc-process"


def scanned_files(*roots):
    for place in roots:
        root = pathlib.Path(place)
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in root.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    yield path


class KeyWatcher(threading.Thread):
    """Reads the per-run key while the run lasts: it is deleted when the report step starts,
    even with drift_keep_run_dir, so afterwards there is nothing left to read it from."""

    def __init__(self, report_dir):
        super().__init__(daemon=True)
        self.report_dir = report_dir
        self.key = None
        self.done = threading.Event()

    def run(self):
        while self.key is None and not self.done.is_set():
            for link in self.report_dir.glob(".runs/*/key"):
                try:
                    self.key = link.read_text().strip() or None
                except OSError:
                    continue
            self.done.wait(0.005)


def scan(texts_by_place, needles):
    hits = {}
    for place, text in texts_by_place.items():
        for needle in needles:
            if needle in text:
                hits.setdefault(needle, []).append(place)
    return hits


@pytest.mark.parametrize("verbosity", [0, 4])
def test_no_canary_in_any_output(audit, canaries, monkeypatch, tmp_path, verbosity):
    # The runner's own environment carries a canary too; ${APP_HOME}-style references in the env
    # files must stay literal and never pull it in.
    monkeypatch.setenv("ENVPARITY_TEST_CANARY", ENV_CANARY)
    monkeypatch.setenv("APP_HOME", ENV_CANARY)
    tmp_before = set(pathlib.Path("/tmp").iterdir())
    watcher = KeyWatcher(tmp_path / "reports")
    watcher.start()
    result = audit(extravars={"drift_keep_run_dir": True}, verbosity=verbosity)
    watcher.done.set()
    watcher.join()
    assert result.rc == 0, result.stdout
    needles = list(canaries.values()) + [ENV_CANARY]
    assert len(canaries) >= 5

    places = {"stdout": result.stdout}
    new_tmp = [
        path
        for path in pathlib.Path("/tmp").iterdir()
        if path not in tmp_before and not path.name.startswith(RUNC_PROCESS_SPEC)
    ]
    ansible_tmp = [pathlib.Path(os.path.expanduser("~/.ansible/tmp")), pathlib.Path("/home/deploy/.ansible/tmp")]
    for path in scanned_files(result.report_dir, result.private_dir, *new_tmp, *ansible_tmp):
        if path.name == "command" and path.parent.parent.name == "artifacts":
            # ansible-runner itself records the environment it was given here (mode 0600, README
            # "Secrets"); that is the caller's environment, not something the audit wrote.
            assert path.stat().st_mode & 0o077 == 0
            continue
        try:
            if path.suffix == ".b64gz":  # packed facts: scan what they hold, not their compressed bytes
                places[str(path)] = json.dumps(readable(unpack(path.read_text())))
            else:
                places[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            continue  # removed since it was listed (another process's temporary file): not left behind

    # the history store (reports/history.sqlite) is among the files scanned
    assert str(result.report_dir / "history.sqlite") in places
    assert scan(places, needles) == {}, "canary leaked"
    # The per-run fingerprint key was seen while the run lasted, and is nowhere now: not kept with
    # the facts of the kept run directory, not in stdout, runner events or temporary files.
    key = watcher.key
    assert key is not None and len(key) == 64, "the run key was never seen"
    assert list(result.report_dir.glob(".runs/*/key")) == []
    assert scan(places, [key]) == {}

    # Control: the grep sees what it must see, in the same places.
    controls = scan(places, CONTROL_MARKERS)
    assert any(place.endswith("/report.md") for place in controls["OPENAI_API_KEY"])
    assert any(place.endswith(".b64gz") for place in controls["SESSION_SECRET"])
    # ... and inside the postgres tables' encoded parts (a constraint name only they hold)
    assert any(place.endswith(".b64gz") for place in scan(places, ["alembic_version_pkc"])["alembic_version_pkc"])
    job_events = [place for place in places if "job_events" in place]
    assert len(job_events) > 10
    run_dirs = [place for place in places if "/.runs/" in place]
    assert any(place.endswith(".b64gz") for place in run_dirs), "the kept run directory was scanned"
    if verbosity:
        assert "ESTABLISH SSH CONNECTION" in result.stdout
