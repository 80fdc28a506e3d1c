"""A careless report directory: shared by two audits at once, read-only, or full.

Reports are written both files or neither, under names no other run takes, and `latest` switches
to a complete pair in one rename. A report that cannot be written ends the run with exit code 73
and a message, and leaves nothing behind. Read-only and full directories are real: small tmpfs
mounts made by the test (root ignores file modes).
"""

import contextlib
import json
import os
import socket
import subprocess
import threading

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import (
    LATEST,
    REPORT_JSON,
    REPORT_MARKDOWN,
    ReportWriteError,
    report_name,
    write_report,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.summary import EXIT_REPORT_NOT_WRITTEN


@contextlib.contextmanager
def tmpfs(path, size="64k"):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def read_only(path):
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


@contextlib.contextmanager
def bind(source, target):
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def document(marker, padding=0):
    return {"marker": marker, "padding": "x" * padding}


def markdown(marker):
    return "# report %s\n" % marker


def entries(directory):
    return sorted(os.listdir(directory))


def latest_pair(report_dir):
    """The pair `latest` names, read through one resolution of the link (as a careful reader does)."""
    fd = os.open(os.path.join(report_dir, LATEST), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with open(os.open(REPORT_MARKDOWN, os.O_RDONLY, dir_fd=fd), encoding="utf-8") as handle:
            text = handle.read()
        with open(os.open(REPORT_JSON, os.O_RDONLY, dir_fd=fd), encoding="utf-8") as handle:
            data = json.loads(handle.read())
    finally:
        os.close(fd)
    return text, data


def test_two_reports_in_the_same_second_are_both_kept(tmp_path):
    now = 1796608800.5
    first, second = report_name(now, "run-a"), report_name(now, "run-b")
    assert first == "20261207T020000.500000Z-run-a" and first != second
    assert report_name(now + 0.000001, "run-a") != first
    write_report(str(tmp_path), first, markdown("a"), document("a"))
    paths = write_report(str(tmp_path), second, markdown("b"), document("b"))
    assert entries(tmp_path) == [first, second, "latest", "latest.json", "latest.md"]
    for name, marker in ((first, "a"), (second, "b")):
        assert (tmp_path / name / REPORT_MARKDOWN).read_text() == markdown(marker)
        assert json.loads((tmp_path / name / REPORT_JSON).read_text())["marker"] == marker
    assert (tmp_path / "latest.md").read_text() == markdown("b")
    assert json.loads((tmp_path / "latest.json").read_text())["marker"] == "b"
    assert paths["markdown"] == str(tmp_path / second / REPORT_MARKDOWN)


def test_a_name_already_taken_is_not_overwritten(tmp_path):
    write_report(str(tmp_path), "same", markdown("a"), document("a"))
    with pytest.raises(ReportWriteError):
        write_report(str(tmp_path), "same", markdown("b"), document("b"))
    assert (tmp_path / "same" / REPORT_MARKDOWN).read_text() == markdown("a")
    assert latest_pair(tmp_path)[1]["marker"] == "a"
    assert [name for name in entries(tmp_path) if name.startswith(".tmp-")] == []


def test_latest_files_of_an_older_version_become_links_to_the_new_pair(tmp_path):
    (tmp_path / "latest.md").write_text("old")
    (tmp_path / "latest.json").write_text("{}")
    write_report(str(tmp_path), "new", markdown("new"), document("new"))
    assert os.readlink(tmp_path / "latest.md") == os.path.join(LATEST, REPORT_MARKDOWN)
    assert os.readlink(tmp_path / "latest.json") == os.path.join(LATEST, REPORT_JSON)
    assert (tmp_path / "latest.md").read_text() == markdown("new")


def test_a_latest_that_cannot_be_replaced_leaves_nothing_of_the_run(tmp_path):
    (tmp_path / "latest.md").mkdir()  # a careless user's directory where a link must go
    (tmp_path / "latest.md" / "notes").write_text("mine")
    with pytest.raises(ReportWriteError):
        write_report(str(tmp_path), "new", markdown("new"), document("new"))
    assert entries(tmp_path) == ["latest.md"]
    assert (tmp_path / "latest.md" / "notes").read_text() == "mine"


def test_latest_is_always_a_complete_pair_of_one_run(tmp_path):
    """Two writers switch `latest` back and forth while a reader checks every pair it sees."""
    write_report(str(tmp_path), "seed", markdown("seed"), document("seed"))
    stop = threading.Event()
    seen = []

    def writer(who):
        for number in range(60):
            marker = "%s-%d" % (who, number)
            write_report(str(tmp_path), marker, markdown(marker), document(marker, padding=20000))

    def reader():
        while not stop.is_set():
            text, data = latest_pair(tmp_path)
            seen.append((text, data["marker"]))
            assert os.path.exists(tmp_path / "latest.md") and os.path.exists(tmp_path / "latest.json")

    threads = [threading.Thread(target=writer, args=(who,)) for who in ("a", "b")]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    assert len({marker for _, marker in seen}) > 2
    assert all(text == markdown(marker) for text, marker in seen)
    assert len(entries(tmp_path)) == 1 + 120 + 3  # every report kept, no temporary left


def test_a_full_disk_leaves_neither_file_and_the_previous_latest(tmp_path):
    with tmpfs(tmp_path / "reports") as reports:
        write_report(str(reports), "first", markdown("first"), document("first"))
        with pytest.raises(ReportWriteError, match="No space left on device"):
            # the Markdown fits, the JSON does not
            write_report(str(reports), "second", markdown("second"), document("second", padding=200000))
        assert entries(reports) == ["first", "latest", "latest.json", "latest.md"]
        assert latest_pair(reports) == (markdown("first"), document("first"))


def test_a_read_only_directory_gives_a_clear_error_and_writes_nothing(tmp_path):
    with tmpfs(tmp_path / "reports") as reports:
        read_only(reports)
        with pytest.raises(ReportWriteError, match="Read-only file system"):
            write_report(str(reports / "sub"), "one", markdown("one"), document("one"))
        with pytest.raises(ReportWriteError, match="cannot write the report in %s" % reports):
            write_report(str(reports), "one", markdown("one"), document("one"))
        assert entries(reports) == []


def test_an_audit_into_a_read_only_report_dir_exits_73_without_a_report(audit, tmp_path):
    with tmpfs(tmp_path / "reports") as reports:
        read_only(reports)
        result = audit(cmdline="--tags env", extravars={"drift_report_dir": str(reports)})
        assert result.rc == EXIT_REPORT_NOT_WRITTEN == 73, result.stdout
        assert "envparity: NO REPORT: cannot create the run directory under %s" % reports in result.stdout
        assert "Traceback" not in result.stdout
        assert entries(reports) == []


def test_an_audit_whose_report_cannot_be_written_exits_73_and_leaves_nothing(audit, tmp_path):
    """The run directory can be created (its own mount); the report directory is read-only."""
    runs = tmp_path / "runs"
    runs.mkdir()
    with tmpfs(tmp_path / "reports") as reports:
        (reports / ".runs").mkdir()
        read_only(reports)
        with bind(runs, reports / ".runs"):
            result = audit(cmdline="--tags env", extravars={"drift_report_dir": str(reports)})
            assert result.rc == EXIT_REPORT_NOT_WRITTEN, result.stdout
            assert "envparity: NO REPORT: cannot write the report in %s: Read-only file system" % reports in (
                result.stdout
            )
            assert "exit code 73" in result.stdout
            assert entries(reports) == [".runs"]


def test_the_callback_fallback_report_cannot_be_written_either(audit, tmp_path):
    """Every host unreachable: the callback writes the report, and meets the read-only directory."""
    with socket.socket() as listener:  # a loopback port that was free: nothing listens there
        listener.bind(("127.0.0.1", 0))
        closed_port = listener.getsockname()[1]
    runs = tmp_path / "runs"
    runs.mkdir()
    with tmpfs(tmp_path / "reports") as reports:
        (reports / ".runs").mkdir()
        read_only(reports)
        with bind(runs, reports / ".runs"):
            result = audit(
                cmdline="--limit prod-vm --tags env",
                extravars={"drift_report_dir": str(reports), "ansible_port": closed_port},
            )
            assert result.rc == EXIT_REPORT_NOT_WRITTEN, result.stdout
            assert "envparity: NO REPORT: cannot write the report in %s" % reports in result.stdout
            assert "the report was written by the callback" not in result.stdout
            assert entries(reports) == [".runs"]
