"""Canonical forms of ports and volumes, as Compose declares them and as the engine reports them.

Standard library only, Python 3.8+: this module runs on the audited hosts.

A port is "[ip:]published:target/proto" ("target/proto" when not published);
every address (0.0.0.0, ::) is written without one and an IPv6 address in
brackets.  A volume is "source:target[:ro]": a named volume by name, a bind
by its host path, an anonymous volume or a tmpfs as ":target".
"""

import json
import os
import posixpath

_TRUE = frozenset({"true", "yes", "on"})
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})
_VOLUME_MODES = frozenset(
    {
        "ro",
        "rw",
        "z",
        "Z",
        "nocopy",
        "copy",
        "cached",
        "delegated",
        "consistent",
        "shared",
        "slave",
        "private",
        "rshared",
        "rslave",
        "rprivate",
    }
)


# How a bind source inside drift_project_dir is written (see project_relative).
PROJECT_MARKER = "<project>"


def _text(value):
    """A scalar as written; a structure (invalid where a scalar belongs) as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=repr)
    return "%s" % (value,)


def _truthy(value):
    return isinstance(value, str) and value.lower() in _TRUE


def _host_ip(ip):
    if ip in _ANY_ADDRESS:
        return ""
    if ":" in ip and not ip.startswith("["):
        return "[%s]" % ip
    return ip


def canonical_port(item):
    """ "[ip:]published:target/proto", or "target/proto" when not published; None if unparsable."""
    if isinstance(item, dict):
        target = _text(item.get("target"))
        published = _text(item.get("published")) or ""
        ip = _text(item.get("host_ip")) or ""
        protocol = _text(item.get("protocol")) or "tcp"
    elif isinstance(item, str):
        spec, _, protocol = item.partition("/")
        protocol = protocol or "tcp"
        ip = published = ""
        if spec.startswith("["):
            close = spec.find("]")
            if close == -1 or spec[close + 1 : close + 2] != ":":
                return None
            ip = spec[: close + 1]
            parts = spec[close + 2 :].split(":")
            if len(parts) != 2:
                return None
            published, target = parts
        else:
            parts = spec.rsplit(":", 2)
            target = parts[-1]
            if len(parts) >= 2:
                published = parts[-2]
            if len(parts) == 3:
                ip = parts[0]
    else:
        return None
    if not target:
        return None
    ip = _host_ip(ip)
    protocol = protocol.lower()
    if ip:
        return "%s:%s:%s/%s" % (ip, published, target, protocol)
    if published:
        return "%s:%s/%s" % (published, target, protocol)
    return "%s/%s" % (target, protocol)


def _is_path(source):
    return source.startswith((".", "/", "~"))


def _host_path(source, base_dir):
    path = os.path.expanduser(source)
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return posixpath.normpath(path) if path.startswith("/") else os.path.normpath(path)


def _parse_volume(item, base_dir):
    """(source or "", target, read_only) of a volume entry; None if unparsable.

    A relative bind source is resolved against base_dir (when given).
    """
    if isinstance(item, dict):
        kind = _text(item.get("type")) or "volume"
        target = _text(item.get("target")) or ""
        source = _text(item.get("source")) or ""
        read_only = _truthy(_text(item.get("read_only")))
        if kind == "tmpfs":
            source = ""
        is_bind = kind == "bind"
    elif isinstance(item, str):
        parts = item.split(":")
        mode = ""
        if len(parts) == 1:
            source, target = "", parts[0]
        elif len(parts) == 2 and parts[1].split(",")[0] in _VOLUME_MODES:
            # "/data:ro": an anonymous volume with a mode.
            source, target, mode = "", parts[0], parts[1]
        else:
            source, target = parts[0], parts[1]
            mode = ":".join(parts[2:])
        read_only = "ro" in mode.split(",")
        is_bind = bool(source) and _is_path(source)
    else:
        return None
    if not target:
        return None
    if is_bind and source and base_dir is not None:
        source = _host_path(source, base_dir)
    return source, target, read_only


def project_relative(volume, project_root):
    """A bind source inside the project directory is shown relative to it ("<project>/site:/www"),
    so that the same layout deployed in two places does not read as drift."""
    if not project_root or not volume.startswith(project_root.rstrip("/") + "/"):
        return volume
    return PROJECT_MARKER + volume[len(project_root.rstrip("/")) :]


def canonical_volume(item, base_dir=None):
    parsed = _parse_volume(item, base_dir)
    if parsed is None:
        return _text(item)
    source, target, read_only = parsed
    return "%s:%s%s" % (source, target, ":ro" if read_only else "")
