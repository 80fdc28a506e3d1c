"""Compose's configuration hash of a service, computed without Compose.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Compose v2 labels each container it creates with ``com.docker.compose.config-hash``: the SHA-256
of the service's model (compose-go's ServiceConfig) marshalled to JSON by Go's encoding/json,
with build, pull_policy, scale, deploy.replicas, depends_on and profiles cleared first (``up``
hashes the model after reading the service's env files into its environment, dropping the list;
``config --hash`` before, keeping the list: the caller gives the model it wants hashed); a
container whose label differs from the hash of its declared service is one that
``docker compose up -d`` would recreate.  This module renders a merged service (compose_merge's
real values: interpolated, ``$$`` already read as ``$``) into that model, as Go writes it: keys
in the struct's field order, maps sorted by key, empty fields left out, numbers where the model
holds numbers, ``<``, ``>`` and ``&`` escaped.

Only the attributes and forms listed in _RENDER are modelled (each one checked against
``docker-compose config --hash`` by tests/unit/plugins/module_utils/test_compose_hash.py); a
service using anything else has no hash here (None), and is then not checked for staleness,
rather than given a hash Compose would not give.
"""

import hashlib
import posixpath

from ansible_collections.envparity.audit.plugins.module_utils.compose_values import (
    command_words,
    cpus_text,
    duration_text,
    flag_text,
    memory_text,
)
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import _host_path, _text


class Unsupported(Exception):
    """The service uses an attribute or a form this module does not model."""


def _dict(value):
    if not isinstance(value, dict):
        raise Unsupported()
    return value


def _list(value):
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise Unsupported()
    return value


def _string(value):
    text = _text(value)
    if not isinstance(text, str) or isinstance(value, (dict, list)):
        raise Unsupported()
    return text


def _flag(value):
    """True, or None for false (Go leaves a false bool out)."""
    text = flag_text(_string(value))
    if text not in ("true", None):
        raise Unsupported()
    return True if text else None


def _integer(value):
    text = _string(value)
    if not text.isdigit():
        raise Unsupported()
    return int(text)


def _number(text):
    """A float32 as the model holds it: a JSON number."""
    shown = cpus_text(_string(text))
    try:
        float(shown)
    except ValueError:
        raise Unsupported() from None
    return _Raw(shown)


class _Raw(str):
    """A JSON number written as is."""


def _memory(value):
    text = memory_text(_string(value))
    if not text.isdigit():
        raise Unsupported()
    return text


def _duration(value):
    text = duration_text(_string(value))
    if text == _string(value) and not text.endswith("s"):
        raise Unsupported()
    return text


def _words(value):
    if value is None:
        return None
    words = command_words(value)
    if isinstance(words, str):
        raise Unsupported()
    return [_string(word) for word in _list(words)]


def _strings(value):
    return [_string(item) for item in _list(value)]


def _mapping(value, empty=""):
    """environment / labels: a mapping or a list of KEY=value; None values kept as None."""
    found = {}
    if isinstance(value, list):
        for item in value:
            key, sep, rest = _string(item).partition("=")
            found[key] = rest if sep else None
    else:
        for key, item in _dict(value).items():
            found[_string(key)] = None if item is None else _string(item)
    if empty is not None:
        found = {key: empty if item is None else item for key, item in found.items()}
    return found


def _environment(value, variables):
    found = _mapping(value, empty=None)
    # A key without a value takes the interpolation environment's, as compose-go resolves it.
    return {key: variables.get(key) if item is None and key in variables else item for key, item in found.items()}


def _env_files(value, base_dir):
    paths = []
    for item in _list(value):
        plain = not isinstance(item, dict) or (
            not set(item) - {"path", "required"} and flag_text(_text(item.get("required", "true"))) == "true"
        )
        if not plain:
            raise Unsupported()
        path = item.get("path") if isinstance(item, dict) else item
        paths.append(_host_path(_string(path), base_dir))
    return paths


_HEALTH_FIELDS = (
    ("test", None),
    ("timeout", _duration),
    ("interval", _duration),
    ("retries", _integer),
    ("start_period", _duration),
    ("start_interval", _duration),
    ("disable", _flag),
)


def _healthcheck(value):
    value = _dict(value)
    if set(value) - {name for name, _ in _HEALTH_FIELDS}:
        raise Unsupported()
    model = {}
    for name, convert in _HEALTH_FIELDS:
        if value.get(name) is None:
            continue
        if name == "test":
            test = value[name]
            model[name] = ["CMD-SHELL", _string(test)] if isinstance(test, str) else _strings(test)
        else:
            model[name] = convert(value[name])
    return {key: item for key, item in model.items() if item is not None}


def _logging(value):
    value = _dict(value)
    if set(value) - {"driver", "options"}:
        raise Unsupported()
    model = {}
    if value.get("driver") is not None:
        model["driver"] = _string(value["driver"])
    if value.get("options"):
        model["options"] = _mapping(value["options"])
    return model


def _networks(value):
    if isinstance(value, list):
        return {_string(name): None for name in value}
    model = {}
    for name, entry in _dict(value).items():
        if entry is None:
            model[_string(name)] = None
            continue
        settings = _dict(entry)
        if set(settings) - {"aliases", "ipv4_address", "ipv6_address"}:
            raise Unsupported()
        shaped = {"aliases": _strings(settings["aliases"])} if settings.get("aliases") else {}
        for key in ("ipv4_address", "ipv6_address"):
            if settings.get(key) is not None:
                shaped[key] = _string(settings[key])
        model[_string(name)] = shaped or None
    return model


def _network_mode(value):
    """A network mode; "service:<name>" is not modelled: `up` hashes the container it resolves it
    to, which the compose files do not say."""
    text = _string(value)
    if text.startswith("service:"):
        raise Unsupported()
    return text


def _port_numbers(text):
    first, sep, last = text.partition("-")
    if not first.isdigit() or (sep and not last.isdigit()):
        raise Unsupported()
    return list(range(int(first), int(last if sep else first) + 1))


def _host_ip(text):
    """The address of a short port: "[::1]" is written "::1"."""
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1]
    return text


def _short_port(text):
    spec, _, protocol = text.partition("/")
    host_ip = ""
    if spec.startswith("["):
        close = spec.find("]:")
        if close == -1:
            raise Unsupported()
        host_ip, spec = spec[1:close], spec[close + 2 :]
    parts = spec.split(":")
    if len(parts) > 3 or (host_ip and len(parts) != 2):
        raise Unsupported()
    target = parts[-1]
    published = parts[-2] if len(parts) >= 2 else ""
    host_ip = host_ip or (_host_ip(parts[0]) if len(parts) == 3 else "")
    protocol = (protocol or "tcp").lower()
    targets = _port_numbers(target)
    hosts = _port_numbers(published) if published else None
    if hosts is not None and len(targets) == 1 and len(hosts) > 1:
        # A host range for one target: the engine picks one of them.
        return [_port_entry(host_ip, targets[0], published, protocol)]
    if hosts is not None and len(hosts) != len(targets):
        raise Unsupported()
    return [
        _port_entry(host_ip, port, "%d" % hosts[index] if hosts else "", protocol) for index, port in enumerate(targets)
    ]


def _port_entry(host_ip, target, published, protocol, mode="ingress"):
    entry = {"mode": mode}
    if host_ip:
        entry["host_ip"] = host_ip
    entry["target"] = _Raw("%d" % target)
    if published:
        entry["published"] = published
    entry["protocol"] = protocol
    return entry


def _ports(value):
    entries = []
    for item in _list(value):
        if isinstance(item, dict):
            if set(item) - {"target", "published", "host_ip", "protocol", "mode"}:
                raise Unsupported()
            published = _text(item.get("published")) or ""
            if published:
                _port_numbers(published)
            entries.append(
                _port_entry(
                    _text(item.get("host_ip")) or "",
                    _integer(item.get("target")),
                    published,
                    _text(item.get("protocol")) or "tcp",
                    _text(item.get("mode")) or "ingress",
                )
            )
        else:
            entries += _short_port(_string(item))
    return entries


def _clean_target(target):
    if not target.startswith("/"):
        raise Unsupported()
    return "/" + posixpath.normpath(target).lstrip("/")


_BIND_MODES = frozenset(("z", "Z"))


def _source(text, base_dir, long_syntax):
    """A bind source: a relative one resolved (and cleaned) from base_dir; an absolute one as
    written in the short syntax, cleaned in the long one."""
    if text.startswith("/"):
        return posixpath.normpath(text) if long_syntax else text
    return _host_path(text, base_dir)


def _long_volume(item, base_dir):
    kind = _text(item.get("type")) or "volume"
    allowed = {"type", "source", "target", "read_only", {"volume": "volume", "tmpfs": "tmpfs"}.get(kind, "type")}
    if set(item) - allowed or kind not in ("bind", "volume", "tmpfs"):
        raise Unsupported()
    source = _text(item.get("source")) or ""
    model = {"type": kind}
    if source and kind != "tmpfs":
        model["source"] = _source(source, base_dir, True) if kind == "bind" else source
    model["target"] = _clean_target(_string(item.get("target")))
    if _flag(item.get("read_only") or "false"):
        model["read_only"] = True
    options = item.get(kind) if kind in ("volume", "tmpfs") else None
    if options is not None:
        options = _dict(options)
        if kind == "volume" and set(options) <= {"nocopy"}:
            model["volume"] = {"nocopy": True} if _flag(options.get("nocopy") or "false") else {}
        elif kind == "tmpfs" and set(options) <= {"size"}:
            model["tmpfs"] = {"size": _memory(options["size"])} if options.get("size") is not None else {}
        else:
            raise Unsupported()
    return model


def _volume(item, base_dir):
    if isinstance(item, dict):
        return _long_volume(item, base_dir)
    parts = _string(item).split(":")
    if len(parts) > 3:
        raise Unsupported()
    modes = parts[2].split(",") if len(parts) == 3 else []
    if len(parts) == 2 and parts[1] in ("ro", "rw"):
        parts, modes = parts[:1], [parts[1]]
    if set(modes) - {"ro", "rw", "nocopy"} - _BIND_MODES or len(modes) != len(set(modes)):
        raise Unsupported()
    if len(parts) == 1:
        model = {"type": "volume", "target": _clean_target(parts[0])}
    elif parts[0].startswith((".", "/", "~")):
        model = {"type": "bind", "source": _source(parts[0], base_dir, False), "target": _clean_target(parts[1])}
    else:
        model = {"type": "volume", "source": parts[0], "target": _clean_target(parts[1])}
    if "ro" in modes:
        model["read_only"] = True
    if model["type"] == "bind":
        if "nocopy" in modes:
            raise Unsupported()
        selinux = [mode for mode in modes if mode in _BIND_MODES]
        model["bind"] = dict({"selinux": selinux[0]} if selinux else {}, create_host_path=True)
    else:
        if set(modes) & _BIND_MODES:
            raise Unsupported()
        model["volume"] = {"nocopy": True} if "nocopy" in modes else {}
    return model


def _resources(value):
    value = _dict(value)
    if set(value) - {"limits", "reservations"}:
        raise Unsupported()
    model = {}
    for group in ("limits", "reservations"):
        entry = _dict(value.get(group) or {})
        if set(entry) - {"cpus", "memory"}:
            raise Unsupported()
        shaped = {}
        if entry.get("cpus") is not None:
            shaped["cpus"] = _number(entry["cpus"])
        if entry.get("memory") is not None:
            shaped["memory"] = _memory(entry["memory"])
        if shaped:
            model[group] = shaped
    return model


def _deploy(value):
    value = _dict(value)
    if set(value) - {"resources", "replicas"}:
        raise Unsupported()
    # replicas is cleared before hashing; placement is always there (an empty struct).
    return {"resources": _resources(value.get("resources") or {}), "placement": {}}


# The modelled attributes in ServiceConfig's field order (the order Go writes them), each with
# how its value is written; None: cleared before hashing.
_RENDER = (
    ("profiles", None),
    ("build", None),
    ("cap_add", lambda value, ctx: _strings(value)),
    ("cap_drop", lambda value, ctx: _strings(value)),
    ("cpus", lambda value, ctx: _number(value)),
    ("command", lambda value, ctx: _words(value)),
    ("container_name", lambda value, ctx: _string(value)),
    ("depends_on", None),
    ("deploy", lambda value, ctx: _deploy(value)),
    ("entrypoint", lambda value, ctx: _words(value)),
    ("environment", lambda value, ctx: _environment(value, ctx["variables"])),
    ("env_file", lambda value, ctx: _env_files(value, ctx["base_dir"])),
    ("hostname", lambda value, ctx: _string(value)),
    ("healthcheck", lambda value, ctx: _healthcheck(value)),
    ("image", lambda value, ctx: _string(value)),
    ("init", lambda value, ctx: _flag(value)),
    ("labels", lambda value, ctx: _mapping(value)),
    ("logging", lambda value, ctx: _logging(value)),
    ("mem_limit", lambda value, ctx: _memory(value)),
    ("mem_reservation", lambda value, ctx: _memory(value)),
    ("network_mode", lambda value, ctx: _network_mode(value)),
    ("networks", lambda value, ctx: _networks(value)),
    ("ports", lambda value, ctx: _ports(value)),
    ("privileged", lambda value, ctx: _flag(value)),
    ("pull_policy", None),
    ("read_only", lambda value, ctx: _flag(value)),
    ("restart", lambda value, ctx: _string(value)),
    ("scale", None),
    ("stdin_open", lambda value, ctx: _flag(value)),
    ("stop_grace_period", lambda value, ctx: _duration(value)),
    ("stop_signal", lambda value, ctx: _string(value)),
    ("tty", lambda value, ctx: _flag(value)),
    ("user", lambda value, ctx: _string(value)),
    ("volumes", lambda value, ctx: [_volume(item, ctx["base_dir"]) for item in _list(value)]),
    ("working_dir", lambda value, ctx: _string(value)),
)
_KNOWN = frozenset(name for name, _ in _RENDER)


def service_model(service, base_dir, variables):
    """The service as compose-go's model holds it for hashing (an ordered dict), or None when it
    uses an attribute or a form not modelled here. variables: the interpolation environment."""
    if not isinstance(service, dict) or set(service) - _KNOWN:
        return None
    context = {"base_dir": base_dir, "variables": variables}
    model = {}
    try:
        for name, render in _RENDER:
            if render is None or service.get(name) is None:
                continue
            value = render(service[name], context)
            if value is not None and value != {} or name == "deploy":
                model[name] = value
    except (Unsupported, ValueError):
        return None
    # Always written: a missing command or entrypoint is null; no networks is the default one.
    model.setdefault("command", None)
    model.setdefault("entrypoint", None)
    if "networks" not in model and "network_mode" not in model:
        model["networks"] = {"default": None}
    return {name: model[name] for name, _ in _RENDER if name in model}


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_string(text):
    """A string as Go's encoding/json writes it (HTML characters and U+2028/9 escaped, an invalid
    code point as U+FFFD)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or char in "<>&" or code in (0x2028, 0x2029):
            out.append("\\u%04x" % code)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def go_json(value):
    """JSON as Go's encoding/json writes it: compact, in the given key order."""
    if isinstance(value, _Raw):
        return "%s" % (value,)
    if isinstance(value, dict):
        return "{%s}" % ",".join("%s:%s" % (_go_string(key), go_json(item)) for key, item in value.items())
    if isinstance(value, list):
        return "[%s]" % ",".join(go_json(item) for item in value)
    if value is True:
        return "true"
    if isinstance(value, int):
        return "%d" % value
    if value is None:
        return "null"
    return _go_string("%s" % (value,))


# What compose-go clears in a service before hashing it (deploy.replicas too).
_CLEARED = ("build", "pull_policy", "scale", "depends_on", "profiles")


def _refers_to_services(service):
    """Whether `up` would hash another model than this one: it resolves ``service:<name>``
    (network, ipc and pid modes) and ``volumes_from`` a service into a container id first."""
    modes = [service.get(key) for key in ("network_mode", "ipc", "pid")]
    if any(isinstance(mode, str) and mode.startswith("service:") for mode in modes):
        return True
    sources = service.get("volumes_from") or []
    return any(isinstance(item, str) and not item.startswith("container:") for item in sources)


def resolved_hash(service):
    """The hash ``up`` writes for a service, from Compose's own resolved model of it: ``config
    --format json`` (its env files read into its environment), keys in Compose's order, numbers
    as the _Raw texts Go wrote and ``$$`` read back as ``$``; None when `up` hashes another model."""
    if _refers_to_services(service):
        return None
    model = {key: value for key, value in service.items() if key not in _CLEARED}
    if isinstance(model.get("deploy"), dict):
        model["deploy"] = {key: value for key, value in model["deploy"].items() if key != "replicas"}
    return hashlib.sha256(go_json(model).encode("utf-8", "surrogatepass")).hexdigest()


def config_hash(service, base_dir, variables):
    """Compose's config hash of a merged service (hex SHA-256), or None when not modelled."""
    model = service_model(service, base_dir, variables)
    if model is None:
        return None
    # Maps are written sorted by key, as Go writes a map; the model's own keys keep their order.
    return hashlib.sha256(go_json(_sorted_maps(model)).encode("utf-8", "surrogatepass")).hexdigest()


_MAPS = ("environment", "labels", "networks")


def _sorted_maps(model):
    shaped = dict(model)
    for name in _MAPS:
        if isinstance(shaped.get(name), dict):
            shaped[name] = dict(sorted(shaped[name].items()))
    if "logging" in shaped and "options" in shaped["logging"]:
        shaped["logging"] = dict(shaped["logging"], options=dict(sorted(shaped["logging"]["options"].items())))
    return shaped
