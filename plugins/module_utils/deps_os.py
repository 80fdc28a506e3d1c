"""Read the OS package database under a root directory, bounded: dpkg, apk or rpm.

Standard library only, Python 3.8+. Runs on the audited host (the host's own root, or
``drift_deps_os_root``), and is sent, with deps_python and deps_node, into the Python of a
container (deps_container), so it imports nothing from the collection but deps_python's helpers
(``clean``, ``read_bounded``: defined before it in the script sent).

- dpkg: ``var/lib/dpkg/status`` (the "install ok installed" stanzas), architecture-qualified when
  a name is installed for several architectures;
- apk: ``lib/apk/db/installed`` (``P:`` / ``V:`` lines);
- rpm: ``rpmdb.sqlite`` (rpm 4.16 and later; table Packages, one header blob per package), read
  with sqlite3 opened read-only and immutable (no lock, no journal, no -shm file written), and
  each header's NAME, EPOCH, VERSION, RELEASE and ARCH tags decoded here: rpm itself never runs.
  Older Berkeley DB (``Packages``) and SUSE's ndb (``Packages.db``) are reported as unsupported.
"""

import os
import struct

from ansible_collections.envparity.audit.plugins.module_utils.deps_python import clean, read_bounded

MAX_OS_PACKAGES = 20000
MAX_OS_STATUS_BYTES = 64 * 1024 * 1024
MAX_RPM_HEADER_BYTES = 16 * 1024 * 1024
MAX_RPM_INDEX = 100000
RPM_SQLITE = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
RPM_UNSUPPORTED = ("var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db", "var/lib/rpm/Packages.db")
# rpm header tags (rpmtag.h) and types: NAME, VERSION, RELEASE, EPOCH, ARCH.
# The directories of the databases above: a container whose filesystem changed one of them is read
# again rather than taking the facts of another container of its image.
OS_DIRS = ("var/lib/dpkg", "lib/apk/db", "var/lib/rpm", "usr/lib/sysimage/rpm")
RPM_TAGS = {1000: "name", 1001: "version", 1002: "release", 1003: "epoch", 1022: "arch"}
RPM_STRING, RPM_INT32, RPM_I18NSTRING = 6, 4, 9


def _dpkg(path, limit):
    """{name: version} of the installed packages of a dpkg status file (architecture-qualified
    when several architectures are installed), and whether the limit cut it."""
    packages, truncated = {}, False
    fields = {}
    with open(path, "rb") as handle:
        read = 0
        for raw in handle:
            read += len(raw)
            if read > MAX_OS_STATUS_BYTES:
                return packages, True
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.strip():
                if line[:1] not in (" ", "\t"):
                    key, _, value = line.partition(":")
                    if key in ("Package", "Status", "Version", "Architecture"):
                        fields[key] = value.strip()
                continue
            truncated = _add_dpkg(packages, fields, limit) or truncated
            fields = {}
        truncated = _add_dpkg(packages, fields, limit) or truncated
    return packages, truncated


def _add_dpkg(packages, fields, limit):
    if not fields.get("Package") or not fields.get("Status", "").endswith(" installed"):
        return False
    if len(packages) >= limit:
        return True
    name = clean(fields["Package"])
    arch = fields.get("Architecture") or ""
    if name in packages:
        name = "%s:%s" % (name, clean(arch))
    packages[name] = clean(fields.get("Version") or "")
    return False


def _apk(path, limit):
    packages, truncated, name = {}, False, None
    data, cut = read_bounded(path, MAX_OS_STATUS_BYTES)
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("P:"):
            name = clean(line[2:])
        elif line.startswith("V:") and name:
            if len(packages) >= limit:
                truncated = True
                break
            packages[name] = clean(line[2:])
            name = None
    return packages, truncated or cut


def rpm_header(blob):
    """{name, version, release, epoch, arch} of one rpm header blob as rpmdb.sqlite stores it
    (no lead magic: index count, data length, the index entries, the data store); ValueError when
    it is malformed. Only the five tags are decoded; every offset is checked against the store."""
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < 8 or len(blob) > MAX_RPM_HEADER_BYTES:
        raise ValueError("header size")
    count, length = struct.unpack(">II", blob[:8])
    start = 8 + 16 * count
    if count > MAX_RPM_INDEX or start + length > len(blob):
        raise ValueError("header bounds")
    store = blob[start : start + length]
    found = {}
    for index in range(count):
        tag, kind, offset, items = struct.unpack(">IIII", blob[8 + 16 * index : 24 + 16 * index])
        field = RPM_TAGS.get(tag)
        if field is None or field in found or offset >= length:
            continue
        if kind in (RPM_STRING, RPM_I18NSTRING):
            end = store.find(b"\0", offset)
            if end < 0:
                raise ValueError("unterminated string")
            found[field] = clean(store[offset:end].decode("utf-8", "replace"))
        elif kind == RPM_INT32 and items >= 1 and offset + 4 <= length:
            found[field] = struct.unpack(">I", store[offset : offset + 4])[0]
    if not found.get("name") or not found.get("version"):
        raise ValueError("no name or version")
    return found


def rpm_version(header):
    """[epoch:]version-release, as rpm -q prints it with %{EPOCH} when one is set."""
    text = "%s-%s" % (header["version"], header.get("release") or "")
    return ("%d:%s" % (header["epoch"], text)) if header.get("epoch") else text


def _rpm(path, limit):
    """{name: version} (architecture-qualified when a name is installed for several
    architectures) from an rpmdb.sqlite, opened read-only and immutable."""
    import sqlite3
    from urllib.parse import quote

    if os.path.getsize(path) > MAX_OS_STATUS_BYTES * 4:
        return {}, True
    uri = "file:%s?mode=ro&immutable=1" % quote(os.path.abspath(path))
    connection = sqlite3.connect(uri, uri=True, timeout=1)
    packages, truncated = {}, False
    try:
        rows = connection.execute("SELECT blob FROM Packages ORDER BY hnum LIMIT ?", (limit + 1,))
        for (blob,) in rows:
            if len(packages) >= limit:
                truncated = True
                break
            try:
                header = rpm_header(blob)
            except (ValueError, struct.error):
                continue  # a malformed header is skipped; the others are read
            name = header["name"]
            if name in packages:
                name = "%s:%s" % (name, header.get("arch") or "")
            packages[name] = rpm_version(header)
    finally:
        connection.close()
    return packages, truncated


OS_DATABASES = (
    ("dpkg", ("var/lib/dpkg/status",), _dpkg),
    ("apk", ("lib/apk/db/installed",), _apk),
    ("rpm", RPM_SQLITE, _rpm),
)


def collect_os(root):
    """The OS packages under root: {status, manager, packages, truncated} or a status record."""
    for manager, relatives, reader in OS_DATABASES:
        for relative in relatives:
            path = os.path.join(root, relative)
            if not os.path.isfile(path):
                continue
            try:
                packages, truncated = reader(path, MAX_OS_PACKAGES)
            except ImportError:
                return {
                    "status": "unsupported",
                    "manager": manager,
                    "reason": "This Python has no sqlite3 module to read %s." % relative,
                }
            except Exception as exc:  # OSError, sqlite3.Error: the database is said unreadable
                return {
                    "status": "unreadable",
                    "manager": manager,
                    "reason": "%s cannot be read (%s)."
                    % (relative, getattr(exc, "strerror", None) or type(exc).__name__),
                }
            return {"status": "ok", "reason": None, "manager": manager, "packages": packages, "truncated": truncated}
    for relative in RPM_UNSUPPORTED:
        if os.path.exists(os.path.join(root, relative)):
            return {
                "status": "unsupported",
                "manager": "rpm",
                "reason": "The rpm database (%s) is not SQLite (rpm before 4.16, or ndb): not read." % relative,
            }
    return {"status": "none", "manager": None, "reason": "No dpkg, apk or rpm database under %s." % clean(root)}


def os_release(root):
    """PRETTY_NAME (or NAME) of the os-release file under root, or None."""
    for relative in ("etc/os-release", "usr/lib/os-release"):
        try:
            data, _ = read_bounded(os.path.join(root, relative), 65536)
        except OSError:
            continue
        values = {}
        for line in data.decode("utf-8", "replace").splitlines():
            key, equals, value = line.partition("=")
            if equals:
                values[key.strip()] = value.strip().strip("\"'")
        return clean(values.get("PRETTY_NAME") or values.get("NAME") or "") or None
    return None
