"""OS package databases read without their package manager: a real rpmdb.sqlite written by rpm
4.18 (tests/unit/fixtures/deps/rpm/record.sh; `rpm -qa` recorded beside it is the oracle), its
header blobs damaged on purpose, and the read-only proof (no journal, lock or -shm file made)."""

import random
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import deps_os

RPM = Path(__file__).resolve().parents[3] / "unit" / "fixtures" / "deps" / "rpm"


def rpm_root(tmp_path):
    database = tmp_path / "var" / "lib" / "rpm"
    database.mkdir(parents=True)
    shutil.copy(RPM / "rpmdb.sqlite", database / "rpmdb.sqlite")
    return database


def oracle():
    """What rpm -qa printed: sorted (name, arch, [epoch:]version-release)."""
    found = []
    for line in (RPM / "rpm-qa.txt").read_text().splitlines():
        name, epoch, version, release, arch = line.split(" ")
        found.append((name, arch, ("%s:" % epoch if epoch != "0" else "") + "%s-%s" % (version, release)))
    return sorted(found)


def blobs():
    connection = sqlite3.connect("file:%s?mode=ro&immutable=1" % (RPM / "rpmdb.sqlite"), uri=True)
    try:
        return [bytes(row[0]) for row in connection.execute("SELECT blob FROM Packages ORDER BY hnum")]
    finally:
        connection.close()


def test_a_real_rpm_database_reads_as_rpm_qa_prints_it(tmp_path):
    database = rpm_root(tmp_path)
    before = sorted(path.name for path in database.iterdir()), (database / "rpmdb.sqlite").read_bytes()
    facts = deps_os.collect_os(str(tmp_path))
    assert facts["status"] == "ok" and facts["manager"] == "rpm" and not facts["truncated"]
    expected = oracle()
    # a name installed for two architectures: the second one read is qualified with its arch
    assert sorted((key.split(":")[0], value) for key, value in facts["packages"].items()) == sorted(
        (name, value) for name, _, value in expected
    )
    assert {key.split(":")[1] for key in facts["packages"] if ":" in key} <= {arch for name, arch, _ in expected}
    assert sum(":" in key for key in facts["packages"]) == len(expected) - len({name for name, _, _ in expected})
    assert facts["packages"]["beta"] == "2:0.9-3.fc39" and facts["packages"]["gamma"] == "10.0.1~rc1-1"
    # read-only: no -shm, -journal or lock file appeared, the database is byte for byte the same
    assert (sorted(path.name for path in database.iterdir()), (database / "rpmdb.sqlite").read_bytes()) == before


def test_headers_decode_to_the_oracle_tags():
    headers = [deps_os.rpm_header(blob) for blob in blobs()]
    found = sorted(
        "%s %d %s %s %s" % (h["name"], h.get("epoch", 0), h["version"], h["release"], h["arch"]) for h in headers
    )
    assert found == (RPM / "rpm-qa.txt").read_text().splitlines()


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00\x00\x00\x01",
        struct.pack(">II", 10**6, 0),  # an index count past the limit
        struct.pack(">II", 1, 100) + struct.pack(">IIII", 1000, 6, 0, 1),  # data store shorter than said
        struct.pack(">II", 1, 3) + struct.pack(">IIII", 1000, 6, 0, 1) + b"abc",  # unterminated string
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1001, 6, 0, 1) + b"1.0\x00",  # no name
        b"\x00" * (deps_os.MAX_RPM_HEADER_BYTES + 1),
    ],
)
def test_malformed_headers_are_refused(blob):
    with pytest.raises(ValueError):
        deps_os.rpm_header(blob)


def test_damaged_real_headers_never_raise_anything_else():
    generator = random.Random(14)
    for blob in blobs():
        for _ in range(400):
            damaged = bytearray(blob)
            for _ in range(generator.randint(1, 8)):
                damaged[generator.randrange(len(damaged))] = generator.randrange(256)
            cut = bytes(damaged[: generator.randint(0, len(damaged))]) if generator.random() < 0.3 else bytes(damaged)
            try:
                header = deps_os.rpm_header(cut)
            except (ValueError, struct.error):
                continue
            assert isinstance(header["name"], str) and "\x00" not in header["name"]


def test_a_damaged_header_in_the_database_leaves_the_others(tmp_path):
    database = rpm_root(tmp_path)
    connection = sqlite3.connect(str(database / "rpmdb.sqlite"))
    connection.execute("UPDATE Packages SET blob = x'00000001' WHERE hnum = 1")
    connection.commit()
    connection.close()
    facts = deps_os.collect_os(str(tmp_path))
    assert facts["status"] == "ok" and len(facts["packages"]) == len(oracle()) - 1


def test_not_a_database_and_the_old_formats(tmp_path):
    database = tmp_path / "var" / "lib" / "rpm"
    database.mkdir(parents=True)
    (database / "rpmdb.sqlite").write_bytes(b"not sqlite at all" * 100)
    facts = deps_os.collect_os(str(tmp_path))
    assert facts["status"] == "unreadable" and facts["manager"] == "rpm" and "DatabaseError" in facts["reason"]
    (database / "rpmdb.sqlite").unlink()
    (database / "Packages").write_bytes(b"\x00" * 64)  # Berkeley DB: rpm before 4.16
    facts = deps_os.collect_os(str(tmp_path))
    assert facts["status"] == "unsupported" and "Packages" in facts["reason"]


def test_the_rpm_database_is_cut_at_the_limit(tmp_path, monkeypatch):
    rpm_root(tmp_path)
    monkeypatch.setattr(deps_os, "MAX_OS_PACKAGES", 2)
    facts = deps_os.collect_os(str(tmp_path))
    assert facts["truncated"] is True and len(facts["packages"]) == 2


def test_os_release(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('NAME="Rocky"\nPRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\n')
    assert deps_os.os_release(str(tmp_path)) == "Rocky Linux 9.4 (Blue Onyx)"
    assert deps_os.os_release(str(tmp_path / "none")) is None


@pytest.mark.skipif(shutil.which("rpmbuild") is None or shutil.which("rpm") is None, reason="rpm is not installed")
def test_a_database_rpm_writes_now_reads_as_rpm_qa_prints_it(tmp_path):
    """record.sh run afresh: rpm builds and installs the packages into a new database, and prints it."""
    shutil.copy(RPM / "record.sh", tmp_path / "record.sh")
    subprocess.run(["sh", "record.sh"], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    database = rpm_root(tmp_path / "root")
    shutil.copy(tmp_path / "rpmdb.sqlite", database / "rpmdb.sqlite")
    facts = deps_os.collect_os(str(tmp_path / "root"))
    printed = []
    for line in (tmp_path / "rpm-qa.txt").read_text().splitlines():
        name, epoch, version, release, _ = line.split(" ")
        printed.append((name, ("%s:" % epoch if epoch != "0" else "") + "%s-%s" % (version, release)))
    assert sorted((key.split(":")[0], value) for key, value in facts["packages"].items()) == sorted(printed)
