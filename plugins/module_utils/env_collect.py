"""Collect .env files on a host, read-only, with every value redacted.

Standard library only: this module runs on the audited hosts.  A file is
examined with stat before anything else; only regular files within the size
limit are opened, and only for reading.  Reasons are fixed sentences: file
content never appears in them.

A symlink (the file, or a directory on its path) that leads outside the
project directory is refused unless the file's entry allows it: the audit
may run as root, and such a link would show another file's lines (say
/etc/shadow) as keys.  Without a project directory, or for a path
configured outside it, the directory the path names stands in for it.
"""

import codecs
import errno
import grp
import os
import pwd
import stat

from ansible_collections.envparity.audit.plugins.module_utils.dotenv_parser import parse_dotenv
from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    describe_value,
    fingerprint,
    length_class,
    looks_like_token,
)

DEFAULT_MAX_BYTES = 1048576
# The request's limits when a field is missing; the same as the env role's argument specs (a test holds them equal).
DEFAULTS = {"max_bytes": DEFAULT_MAX_BYTES}

_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class _Unusable(Exception):
    """A file that cannot be used; carries a status and a reason sentence."""

    def __init__(self, status, reason, info=None):
        super().__init__(status)
        self.status = status
        self.reason = reason
        self.info = info


def _resolve(path, project_dir):
    """Absolute path; relative paths are taken from project_dir, "~" expanded.

    No normalisation: "current/../shared" must follow the symlink like the
    application does.
    """
    path = os.path.expanduser(path)
    if not os.path.isabs(path) and project_dir:
        path = os.path.join(os.path.expanduser(project_dir), path)
    if not os.path.isabs(path):
        path = os.path.join(os.getcwd(), path)
    return path


_OUTSIDE_REASONS = {
    "project": "The path leads through a symlink outside the project directory; the file was not read "
    "(allow_outside_project: true on its entry audits it).",
    "directory": "The path leads through a symlink outside the directory it names; the file was not read "
    "(allow_outside_project: true on its entry audits it).",
}


def _inside(path, directory):
    return os.path.commonpath([path, directory]) == directory


def _confinement(path, project_dir):
    """(real directory the file must stay in, which one it is: "project" or "directory")."""
    if project_dir:
        project = _resolve(project_dir, None)
        if _inside(os.path.normpath(path), os.path.normpath(project)):
            return os.path.realpath(project), "project"
    return os.path.realpath(os.path.dirname(path)), "directory"


def _opened_path(fd):
    """The real path of an open file, where the system tells it (Linux /proc), else None."""
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        return None


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except (KeyError, OverflowError):
        return str(ident)


def _stat_info(st):
    return {
        "mode": format(stat.S_IMODE(st.st_mode), "04o"),
        "owner": _name(pwd.getpwuid, st.st_uid),
        "group": _name(grp.getgrgid, st.st_gid),
        "size": st.st_size,
    }


def _os_error(exc, action, info=None):
    """Map an OSError to _Unusable; the reason quotes strerror, never the path."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return _Unusable("missing", "The file does not exist.", info)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return _Unusable("unreadable", "Permission denied when %s the file." % action, info)
    detail = os.strerror(exc.errno) if exc.errno else "unknown error"
    return _Unusable("unreadable", "%s the file failed: %s." % (action.capitalize(), detail), info)


def _check_regular(st, max_bytes, info):
    for test, label in _NOT_REGULAR:
        if test(st.st_mode):
            raise _Unusable("not_regular", "The path is %s, not a regular file." % label, info)
    if not stat.S_ISREG(st.st_mode):
        raise _Unusable("not_regular", "The path is not a regular file.", info)
    if st.st_size > max_bytes:
        raise _Unusable("too_large", "The file is %d bytes, above the %d-byte limit." % (st.st_size, max_bytes), info)


def _read_bytes(path, max_bytes, confinement=None):
    """Return (bytes, stat info) of a regular file, or raise _Unusable.

    With a confinement (see _confinement), a file found outside it is refused
    before it is examined, and again once opened: a directory swapped for a
    symlink in between is caught there.
    """
    if confinement and not _inside(os.path.realpath(path), confinement[0]):
        raise _Unusable("outside_project", _OUTSIDE_REASONS[confinement[1]])
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_error(exc, "examining") from None
    info = _stat_info(st)
    # Decide on the stat alone: a FIFO or a device is never opened.
    _check_regular(st, max_bytes, info)
    # O_NONBLOCK: should the path be swapped for a FIFO after the stat, the
    # open returns at once instead of waiting for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _os_error(exc, "opening", info) from None
    try:
        opened = _opened_path(fd) if confinement else None
        if opened is not None and not _inside(opened, confinement[0]):
            raise _Unusable("outside_project", _OUTSIDE_REASONS[confinement[1]])
        st = os.fstat(fd)
        info = _stat_info(st)
        _check_regular(st, max_bytes, info)
        chunks = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise _os_error(exc, "reading", info) from None
    finally:
        os.close(fd)
    if total > max_bytes:
        # The file grew after the stat.
        raise _Unusable("too_large", "The file is larger than the %d-byte limit." % max_bytes, info)
    return b"".join(chunks), info


def _decode(data, info):
    if b"\x00" in data:
        raise _Unusable("undecodable", "The file contains NUL bytes: it is binary or not UTF-8.", info)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # The exception text quotes the offending byte: not passed on.
        raise _Unusable("undecodable", "The file is not valid UTF-8 text.", info) from None


def _load(path, max_bytes, confinement=None):
    """Return (result skeleton, text or None)."""
    result = {"path": path, "status": "ok", "reason": None, "mode": None, "owner": None, "group": None, "size": None}
    try:
        data, info = _read_bytes(path, max_bytes, confinement)
        result.update(info)
        return result, _decode(data, info)
    except _Unusable as problem:
        result.update(problem.info or {})
        result["status"] = problem.status
        result["reason"] = problem.reason
        return result, None


def _safe_key(key, hmac_key):
    """A key name that is itself a token (a pasted secret line) is replaced."""
    if looks_like_token(key):
        return "<redacted:%s>" % fingerprint(hmac_key, key)
    return key


def _assignments(text):
    """(entries that assign a value, sorted numbers of the lines that assign nothing).

    A statement without "=" is a bare name to python-dotenv, which sets nothing for it; such a
    line is often a value pasted alone or "DB_PASSWORD:pw", so like an unparsable line it is
    reported by number only, never as a key.
    """
    parsed = parse_dotenv(text)
    entries = [entry for entry in parsed["entries"] if entry["value"] is not None]
    bare = [entry["line"] for entry in parsed["entries"] if entry["value"] is None]
    return entries, sorted(parsed["errors"] + bare)


def _collect_one(path, max_bytes, hmac_key, confinement):
    result, text = _load(path, max_bytes, confinement)
    if result["size"] is not None:
        # A one-line file's size gives its secret's length away: a class only, as for values.
        result["size"] = length_class(result["size"])
    keys = {}
    lines = {}
    errors = []
    if text is not None:
        entries, errors = _assignments(text)
        for entry in entries:
            key = _safe_key(entry["key"], hmac_key)
            lines.setdefault(key, []).append(entry["line"])
            # The last occurrence wins, as for python-dotenv and shells.
            keys[key] = dict(describe_value(entry["key"], entry["value"], hmac_key), line=entry["line"])
    result["keys"] = keys
    result["duplicates"] = {key: found for key, found in lines.items() if len(found) > 1}
    result["errors"] = errors
    return result


def _collect_template(path, max_bytes, hmac_key, confinement):
    result, text = _load(path, max_bytes, confinement)
    names = set()
    if text is not None:
        names = {_safe_key(entry["key"], hmac_key) for entry in _assignments(text)[0]}
    return {"path": result["path"], "status": result["status"], "reason": result["reason"], "keys": sorted(names)}


def _allows_outside(item):
    value = item.get("allow_outside_project")
    return value is True or str(value).strip().lower() in ("true", "yes", "on", "1")


def _confinement_of(path, project_dir, item):
    return None if _allows_outside(item) else _confinement(path, project_dir)


def collect_env_files(files, project_dir, hmac_key, max_bytes=DEFAULT_MAX_BYTES):
    """Collect .env files, each item being ``{"name", "path", "template",
    "allow_outside_project"}`` (the last two optional).

    Returns ``{"files": {name: {...}}}``: path, status (ok, missing,
    unreadable, not_regular, too_large, undecodable, outside_project), reason, mode, owner,
    group, size (a length class, see redact.length_class), keys (describe_value
    of the last occurrence plus its line;
    a key name that looks like a token is replaced by its keyed fingerprint),
    duplicates, the numbers of lines that cannot be parsed or have no "="
    and the template's sorted key names.
    """
    collected = {}
    for item in files:
        path = _resolve(item["path"], project_dir)
        result = _collect_one(path, max_bytes, hmac_key, _confinement_of(path, project_dir, item))
        template = item.get("template")
        result["template"] = None
        if template:
            template_path = _resolve(template, project_dir)
            confinement = _confinement_of(template_path, project_dir, item)
            result["template"] = _collect_template(template_path, max_bytes, hmac_key, confinement)
        collected[item["name"]] = result
    return {"files": collected}


def collect_area(request, hmac_key, secrets=None):
    """The registry's entry: the env area's request (see the env request builder) to its facts."""
    return collect_env_files(
        request.get("files") or [], request.get("project_dir"), hmac_key, request.get("max_bytes") or DEFAULT_MAX_BYTES
    )
