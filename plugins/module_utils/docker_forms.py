"""Canonical forms of ports and volumes, one for what Compose declares and what the engine reports.

Standard library only, Python 3.8+: this module runs on the audited hosts.

The compose side (canonical_port, canonical_volume: entries of a service's
``ports`` and ``volumes``) and the engine side (docker_engine: HostConfig.
PortBindings and Mounts of an inspected container) both write through
port_text, port_list, volume_text and volume_name, so that a container
started from a declaration reads the same as the declaration:

* a port is "[ip:]published:target/proto" ("target/proto" when not
  published); every address (0.0.0.0, ::) is written without one, an IPv6
  address in brackets, the protocol in lower case (tcp by default);
* a list of ports is a sorted set in which consecutive mappings make one
  range: Compose expands "8000-8001:80-81" into a binding per port and the
  engine reports them one by one, so both read "8000-8001:80-81/tcp"; a host
  range for a single target ("8000-8010:80", the engine picks one) stays;
* a volume is "source:target[:ro]": a named volume by name, a bind by its
  host path, an anonymous volume or a tmpfs as ":target"; the target is
  cleaned as the engine cleans it ("/data/" is "/data");
* a named volume is named as in the compose file: the engine's name
  without the "<project>_" prefix Compose gives it (a volume whose top-level
  entry sets ``name:`` is that name, prefix removed likewise);
* capabilities are a sorted set of upper-case names without the "CAP_"
  prefix (the engine keeps cap_add and cap_drop as Compose passes them);
* a command, an entrypoint or a healthcheck test is compared by the
  fingerprint of its words (words_fingerprint), never by its text;
* a healthcheck duration is Go's text of it ("1m30s"), from the compose
  file's text or the engine's nanoseconds alike.
"""

import json
import os
import posixpath
import re

from ansible_collections.envparity.audit.plugins.module_utils.compose_values import duration_text
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint

# A port or a range of ports as the engine and Compose write them.
_PORTS = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?\Z")
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
    return port_text(ip, published, target, protocol)


def port_text(ip, published, target, protocol):
    """The canonical text of one port mapping (a published "" or None: not published)."""
    ip = _host_ip(ip or "")
    protocol = (protocol or "tcp").lower()
    if ip:
        return "%s:%s:%s/%s" % (ip, published or "", target, protocol)
    if published:
        return "%s:%s/%s" % (published, target, protocol)
    return "%s/%s" % (target, protocol)


def _port_parts(text):
    """(ip, published, target, protocol) of a canonical port text; None for any other text."""
    spec, _, protocol = text.rpartition("/")
    if not spec or not protocol:
        return None
    ip = ""
    if spec.startswith("["):
        close = spec.find("]")
        if close == -1 or spec[close + 1 : close + 2] != ":":
            return None
        ip, spec = spec[: close + 1], spec[close + 2 :]
        parts = spec.split(":")
        if len(parts) != 2:
            return None
        return (ip,) + tuple(parts) + (protocol,)
    parts = spec.split(":")
    if len(parts) > 3:
        return None
    parts = [""] * (3 - len(parts)) + parts
    return parts[0], parts[1], parts[2], protocol


def _span(text):
    """(first, last) of "80" or "8000-8010"; None for anything else."""
    match = _PORTS.match(text)
    if not match:
        return None
    first = int(match.group(1))
    last = int(match.group(2) or first)
    return (first, last) if first <= last else None


def _range_text(first, last):
    return "%d" % first if first == last else "%d-%d" % (first, last)


def _joined_spans(spans):
    """Overlapping or adjacent (first, last) spans joined, in order."""
    joined = []
    for first, last in sorted(spans):
        if joined and first <= joined[-1][1] + 1:
            joined[-1] = (joined[-1][0], max(joined[-1][1], last))
        else:
            joined.append((first, last))
    return joined


def port_list(texts):
    """Canonical port texts as a sorted set, consecutive mappings joined into one range.

    Mappings join when they share the address and protocol and map each port
    at the same distance (8080:80 and 8081:81), or are all unpublished; any
    other text (a host range for one target, a text that is not a port) is
    kept as it is.
    """
    kept = set()
    runs = {}  # (ip, protocol, published - target or None) -> [(first target, last target)]
    for text in texts:
        parts = _port_parts(text)
        if parts is None:
            kept.add(text)
            continue
        ip, published, target, protocol = parts
        targets = _span(target)
        hosts = _span(published) if published else None
        if targets is None or (published and hosts is None):
            kept.add(text)
        elif hosts is None:
            runs.setdefault((ip, protocol, None), []).append(targets)
        elif hosts[1] - hosts[0] == targets[1] - targets[0]:
            runs.setdefault((ip, protocol, hosts[0] - targets[0]), []).append(targets)
        else:
            kept.add(text)
    for (ip, protocol, offset), spans in runs.items():
        for first, last in _joined_spans(spans):
            published = None if offset is None else _range_text(first + offset, last + offset)
            kept.add(port_text(ip, published, _range_text(first, last), protocol))
    return sorted(kept)


def _is_path(source):
    return source.startswith((".", "/", "~"))


def _host_path(source, base_dir):
    path = os.path.expanduser(source)
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return posixpath.normpath(path) if path.startswith("/") else os.path.normpath(path)


def _parse_volume(item, base_dir):
    """(source or "", target, read_only, named) of a volume entry; None if unparsable.

    A relative bind source is resolved against base_dir (when given); named
    says the source is a named volume.
    """
    if isinstance(item, dict):
        kind = _text(item.get("type")) or "volume"
        target = _text(item.get("target")) or ""
        source = _text(item.get("source")) or ""
        read_only = _truthy(_text(item.get("read_only")))
        if kind == "tmpfs":
            source = ""
        is_bind = kind == "bind"
        named = kind == "volume" and bool(source)
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
        named = bool(source) and not is_bind
    else:
        return None
    if not target:
        return None
    if is_bind and source and base_dir is not None:
        source = _host_path(source, base_dir)
    return source, target, read_only, named


def project_relative(volume, project_root):
    """A bind source inside the project directory is shown relative to it ("<project>/site:/www"),
    so that the same layout deployed in two places does not read as drift."""
    if not project_root or not volume.startswith(project_root.rstrip("/") + "/"):
        return volume
    return PROJECT_MARKER + volume[len(project_root.rstrip("/")) :]


def volume_text(source, target, read_only):
    """The canonical text of one mount ("" source: anonymous or tmpfs)."""
    if target.startswith("/"):
        # The engine cleans the path it mounts on: "/data/" and "//data" are "/data".
        target = "/" + posixpath.normpath(target).lstrip("/")
    return "%s:%s%s" % (source, target, ":ro" if read_only else "")


def volume_name(name, project):
    """A named volume's name without the "<project>_" prefix Compose gives the volumes it creates."""
    prefix = "%s_" % project if project else None
    if prefix and name.startswith(prefix) and len(name) > len(prefix):
        return name[len(prefix) :]
    return name


def volume_names(volumes, project):
    """{key: canonical name} of the top-level volumes entries that set their own ``name:``."""
    names = {}
    if isinstance(volumes, dict):
        for key, entry in volumes.items():
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(key, str) and isinstance(name, str) and name:
                names[key] = volume_name(name, project)
    return names


def canonical_volume(item, base_dir=None, names=None):
    """The canonical text of a compose volume entry; ``names`` as volume_names gives them."""
    parsed = _parse_volume(item, base_dir)
    if parsed is None:
        return _text(item)
    source, target, read_only, named = parsed
    if named and names:
        source = names.get(source, source)
    return volume_text(source, target, read_only)


def capabilities(values):
    """cap_add or cap_drop as a sorted set: upper case, without the "CAP_" prefix."""
    found = set()
    for value in values or []:
        text = _text(value)
        if text:
            text = text.strip().upper()
            found.add(text[4:] if text.startswith("CAP_") and len(text) > 4 else text)
    return sorted(found)


def words_fingerprint(hmac_key, words):
    """The fingerprint of a command, an entrypoint or a healthcheck test (a list of words); None
    when not set."""
    if words is None:
        return None
    if not isinstance(words, list):
        words = [words]
    return fingerprint(hmac_key, json.dumps([_text(word) for word in words]))


def nanoseconds_text(value):
    """A duration the engine gives in nanoseconds, as Go prints it (0 or none: None, not set)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return duration_text("%dns" % value)
