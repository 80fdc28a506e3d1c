"""Read the installed distributions of a Python environment from its metadata files, bounded.

Standard library only, Python 3.8+, and self-contained (no import from the collection): the deps
collector runs it on the audited host for each configured virtualenv or interpreter, and sends
this very file to the Python inside a container (``python3 -I -S -B -`` on stdin, one docker
exec, with deps_os, deps_node and deps_container, whose ``main()`` prints the same facts as
JSON). Nothing is imported from the environment read and no ``.pth`` file is processed: the
``*.dist-info`` / ``*.egg-info`` / ``*.egg-link`` entries of each site directory are read as
files (the data ``pip inspect`` prints, without pip).

Bounds: at most ``max_dists`` distributions per environment, the headers of METADATA / PKG-INFO
up to ``MAX_HEADER_BYTES``, small files (INSTALLER, direct_url.json) up to ``MAX_SMALL_BYTES``,
names and versions up to ``MAX_TEXT`` characters, ``MAX_REQUIRES`` requirements per distribution.
Invalid UTF-8 is replaced, never fatal; a symlink loop or an unreadable entry is listed as broken.
Credentials in URLs (direct_url.json, ``name @ url`` requirements) are masked here, before the
facts leave: ``scheme://user:***@host``.
"""

import contextlib
import glob
import json
import os
import re
import sys

MAX_HEADER_BYTES = 65536
MAX_SMALL_BYTES = 16384
MAX_TEXT = 200
MAX_REQUIRES = 200
MAX_REQUIRE_TEXT = 400
MAX_BROKEN = 50
MAX_SITE_ENTRIES = 100000
DEFAULT_MAX_DISTS = 5000
MASK = "***"
_CANONICAL = re.compile(r"[-_.]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*)(?::(?P<password>[^/@\s]*))?@")
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def canonical_name(name):
    """PEP 503 normalised name: runs of -_. become one -, lower case."""
    return _CANONICAL.sub("-", name).lower()


def clean(text, limit=MAX_TEXT):
    """One line of text from a host file: control characters removed, length capped."""
    text = _CONTROL.sub("", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mask_url(text):
    """The URL's password (or a user name standing alone before @, e.g. a token) replaced by ***."""

    def replace(match):
        user, password = match.group("user"), match.group("password")
        if password is not None:
            return "%s%s:%s@" % (match.group("scheme"), user, MASK)
        if user and user != "git":
            return "%s%s@" % (match.group("scheme"), MASK)
        return match.group(0)

    return _USERINFO.sub(replace, text)


def read_bounded(path, limit):
    """(bytes, truncated) of at most limit bytes of a regular file."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return data[:limit], len(data) > limit


def read_text(path, limit=MAX_SMALL_BYTES):
    data, _ = read_bounded(path, limit)
    return data.decode("utf-8", "replace")


def parse_headers(text):
    """{lower-case header: [values]} of an RFC 822 style METADATA, up to the first blank line."""
    headers = {}
    name = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[:1] in (" ", "\t") and name:
            headers[name][-1] += " " + line.strip()
            continue
        key, colon, value = line.partition(":")
        if not colon:
            continue
        name = key.strip().lower()
        headers.setdefault(name, []).append(value.strip())
    return headers


def _direct_url(path):
    """{kind, url} from direct_url.json (PEP 610): editable, vcs, archive or directory; or None."""
    try:
        data = json.loads(read_text(path))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    if isinstance(data.get("vcs_info"), dict):
        kind = "vcs"
    elif isinstance(data.get("dir_info"), dict):
        kind = "editable" if data["dir_info"].get("editable") is True else "directory"
    elif isinstance(data.get("archive_info"), dict):
        kind = "archive"
    else:
        kind = "url"
    return {"kind": kind, "url": clean(mask_url(data["url"]), MAX_REQUIRE_TEXT)}


def _requires(headers, requires_txt=None):
    requires = [clean(mask_url(value), MAX_REQUIRE_TEXT) for value in headers.get("requires-dist", [])]
    if requires_txt:
        requires.extend(_egg_requires(requires_txt))
    return requires[:MAX_REQUIRES]


def _egg_requires(text):
    """requires.txt of an egg-info: plain lines, then [extra] or [:marker] sections."""
    found = []
    marker = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            extra, _, cond = section.partition(":")
            parts = []
            if extra:
                parts.append('extra == "%s"' % extra)
            if cond:
                parts.append("(%s)" % cond)
            marker = " and ".join(parts) or None
            continue
        found.append(clean(mask_url(line + ("; " + marker if marker else "")), MAX_REQUIRE_TEXT))
    return found


def read_dist(entry_path, entry_name):
    """One distribution record from a .dist-info / .egg-info entry; raises OSError or ValueError."""
    if entry_name.endswith(".dist-info"):
        metadata = os.path.join(entry_path, "METADATA")
    elif os.path.isdir(entry_path):
        metadata = os.path.join(entry_path, "PKG-INFO")
    else:
        metadata = entry_path  # a single-file .egg-info is PKG-INFO itself
    data, _ = read_bounded(metadata, MAX_HEADER_BYTES)
    headers = parse_headers(data.decode("utf-8", "replace"))
    name = clean((headers.get("name") or [""])[0])
    version = clean((headers.get("version") or [""])[0])
    if not name or not version:
        raise ValueError("no Name or Version")
    record = {"name": name, "version": version, "installer": None, "requested": False, "direct": None}
    if entry_name.endswith(".dist-info"):
        with contextlib.suppress(OSError):
            record["installer"] = clean(read_text(os.path.join(entry_path, "INSTALLER")).strip()) or None
        record["requested"] = os.path.isfile(os.path.join(entry_path, "REQUESTED"))
        record["direct"] = _direct_url(os.path.join(entry_path, "direct_url.json"))
        record["requires"] = _requires(headers)
    else:
        requires_txt = None
        if os.path.isdir(entry_path):
            with contextlib.suppress(OSError):
                requires_txt = read_text(os.path.join(entry_path, "requires.txt"), MAX_HEADER_BYTES)
        record["requires"] = _requires(headers, requires_txt)
        record["installer"] = "egg-info"
    return record


def _egg_link(path, entry_name):
    """A legacy editable install (setup.py develop): name from the file, no version known."""
    target = read_text(path).splitlines()
    return {
        "name": clean(entry_name[: -len(".egg-link")]),
        "version": "",
        "installer": "egg-link",
        "requested": True,
        "direct": {"kind": "editable", "url": clean(mask_url(target[0] if target else ""), MAX_REQUIRE_TEXT)},
        "requires": [],
    }


def read_site_dirs(site_dirs, max_dists=DEFAULT_MAX_DISTS):
    """{"dists": {canonical name: record}, "broken": [...], "truncated": bool, "count": n}.

    The first site directory that holds a name wins (as on sys.path); a second copy of a name is
    listed under "shadowed"."""
    dists, broken, shadowed = {}, [], []
    truncated = False
    count = 0
    for site in site_dirs:
        try:
            names = sorted(os.listdir(site))[:MAX_SITE_ENTRIES]
        except OSError:
            continue
        for entry_name in names:
            is_meta = entry_name.endswith(_METADATA_SUFFIXES)
            if not is_meta and not entry_name.endswith(".egg-link"):
                continue
            if count >= max_dists:
                truncated = True
                break
            count += 1
            path = os.path.join(site, entry_name)
            try:
                record = read_dist(path, entry_name) if is_meta else _egg_link(path, entry_name)
            except (OSError, ValueError, UnicodeError):
                if len(broken) < MAX_BROKEN:
                    broken.append(clean(entry_name))
                continue
            key = canonical_name(record["name"])
            if key in dists:
                shadowed.append(key)
                continue
            dists[key] = record
        if truncated:
            break
    return {
        "dists": dists,
        "broken": broken,
        "shadowed": sorted(set(shadowed))[:MAX_BROKEN],
        "truncated": truncated,
        "count": count,
    }


def _venv_config(prefix):
    """pyvenv.cfg as {key: value}, or None when prefix is not a virtualenv."""
    path = os.path.join(prefix, "pyvenv.cfg")
    try:
        text = read_text(path)
    except OSError:
        return None
    config = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            config[key.strip().lower()] = clean(value)
    return config


def _version_from_dirs(dirs):
    for path in dirs:
        match = re.search(r"python(\d+\.\d+)", path)
        if match:
            return match.group(1)
    return None


def site_dirs_of(prefix, system=False):
    """The site directories under an installation prefix (a venv's, or /usr for a system Python)."""
    patterns = [
        "lib/python*/site-packages",
        "lib64/python*/site-packages",
        "Lib/site-packages",
    ]
    if system:
        patterns += ["local/lib/python3*/dist-packages", "lib/python3/dist-packages", "lib/python3*/dist-packages"]
    found, seen = [], set()
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(glob.escape(prefix), pattern))):
            real = os.path.realpath(path)
            if os.path.isdir(real) and real not in seen:
                seen.add(real)
                found.append(path)
    return found


def locate(path):
    """(kind, prefix, site dirs, python version) for a configured path, or (None, ...) when it is
    no environment: a virtualenv dir, an interpreter file (its prefix), or a site directory."""
    # An interpreter (bin/python3) stands for its prefix, the bin directory's parent; never run.
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(path))) if os.path.isfile(path) else path
    config = _venv_config(prefix)
    if config is not None:
        dirs = site_dirs_of(prefix)
        version = config.get("version_info") or config.get("version") or _version_from_dirs(dirs)
        return "venv", prefix, dirs, version
    if os.path.isdir(prefix) and any(name.endswith(_METADATA_SUFFIXES) for name in _listing(prefix)):
        return "site", prefix, [prefix], _version_from_dirs([os.path.abspath(prefix)])
    dirs = site_dirs_of(prefix, system=True)
    if dirs:
        return "system", prefix, dirs, _version_from_dirs(dirs)
    return None, prefix, [], None


def _listing(path):
    try:
        return os.listdir(path)[:MAX_SITE_ENTRIES]
    except OSError:
        return []


def read_environment(path, max_dists=DEFAULT_MAX_DISTS):
    """The facts of one Python environment: status ok / not_an_environment / missing."""
    if not os.path.exists(path):
        return {"status": "missing", "reason": "The path does not exist."}
    kind, _, dirs, version = locate(path)
    if kind is None:
        return {
            "status": "not_an_environment",
            "reason": "The path is neither a virtualenv (no pyvenv.cfg), an interpreter, nor a site directory.",
        }
    result = read_site_dirs(dirs, max_dists)
    result.update(status="ok", kind=kind, python=clean(version) if version else None, site_dirs=len(dirs))
    return result


def running_environment(max_dists):
    """Inside a container: the environment of this interpreter (-S: site was not run, so its
    directories are computed, not imported; a venv interpreter's pyvenv.cfg is honoured)."""
    import site
    import sysconfig

    dirs = []
    prefix = os.path.dirname(os.path.dirname(sys.executable or ""))
    if prefix and _venv_config(prefix) is not None:
        dirs += site_dirs_of(prefix)
    candidates = [sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")]
    with contextlib.suppress(AttributeError):
        candidates += site.getsitepackages()
    for path in candidates:
        if path and os.path.isdir(path) and path not in dirs:
            dirs.append(path)
    result = read_site_dirs(dirs, max_dists)
    result.update(
        site_paths=[os.path.realpath(path) for path in dirs] + dirs,
        status="ok",
        kind="container",
        python="%d.%d.%d" % sys.version_info[:3],
        site_dirs=len(dirs),
    )
    return result
