"""Merging compose files as Compose merges them: override files, extends and include.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Each loaded, interpolated document is first prepared: the list forms of
mapping attributes (``environment: [A=1]``) become mappings, single strings
of list attributes become lists.  Documents are then merged in order with
the rules of the Compose specification's "Merge" chapter (mappings merge,
sequences append, scalars are replaced; commands are replaced; ports and
volumes are unique resources; ``!reset`` removes and ``!override``
replaces).  Per file, before the files are merged, ``extends`` is applied
(_resolve_extends) and the services of top-level ``include`` entries are
added (_Includes), as docs/docker-facts.md describes.
"""

import json
import os

from ansible_collections.envparity.audit.plugins.module_utils.compose_interpolate import (
    _interpolate,
    _Required,
    _required_reason,
    _safe_path,
    _Tainted,
    _tainted,
    bind_env_file,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_load import (
    _RESET,
    _Documents,
    _Malformed,
    _Override,
    _read_compose,
    _read_env_file,
)
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import (
    _host_path,
    _parse_volume,
    _text,
    canonical_port,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import MASK

# Build contexts Compose does not resolve as paths (compose-go's remote contexts).
_REMOTE_CONTEXTS = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")
# Files included by included files, and so on: deeper than this is refused as a likely loop.
MAX_INCLUDE_DEPTH = 10

# Service attributes replaced, not merged (Compose spec, merge: "shell commands").
_REPLACED = frozenset({"command", "entrypoint"})
# Written as a list of "KEY=VAL" or as a mapping; merged as mappings.
_MAPPING_OR_LIST = ("environment", "labels", "annotations", "sysctls")
# A single string stands for a one-item list.
_STRING_OR_LIST = ("dns", "dns_search", "dns_opt", "tmpfs", "env_file", "cap_add", "cap_drop", "profiles")


# ------------------------------------------------------------ preparation


def _split(text, separators):
    """Split "KEY=VAL" at the first separator; the value keeps its taint."""
    cut = -1
    for separator in separators:
        found = text.find(separator)
        if found != -1 and (cut == -1 or found < cut):
            cut = found
    if cut == -1:
        return text, None
    key, value = text[:cut], text[cut + 1 :]
    if isinstance(text, _Tainted):
        display = text.display
        shown_key, shown_value = display, MASK
        for separator in separators:
            if separator in display:
                shown_key, _, shown_value = display.partition(separator)
                break
        key = shown_key if shown_key else key
        value = _tainted(value, shown_value, text.secrets)
    return key, value


class _ListForm(dict):
    """A mapping written as a list ("- KEY=VAL"): compose-go keeps the list until the end, so a
    later ``KEY: !reset`` finds no key to remove there (Compose v2.40 keeps the entry)."""


def _as_mapping(value, separators="=", bare=None):
    """A mapping, or a list of "KEY=VAL" / "KEY" converted to one (a _ListForm)."""
    if isinstance(value, list):
        mapping = _ListForm()
        for item in value:
            if isinstance(item, str):
                key, found = _split(item, separators)
                mapping[key] = bare if found is None else found
            elif item is not None:
                mapping[_text(item)] = bare
        return mapping
    return value


def _as_list(value):
    if isinstance(value, str):
        return [value]
    return value


def _prepare_build(build):
    if isinstance(build, str):
        return {"context": build}
    if isinstance(build, dict):
        build = dict(build)
        if "args" in build:
            build["args"] = _wrapped(build["args"], _as_mapping)
        if "labels" in build:
            build["labels"] = _wrapped(build["labels"], lambda value: _as_mapping(value, bare=""))
    return build


def _wrapped(value, function):
    """Apply function under an !override wrapper too."""
    if isinstance(value, _Override):
        return _Override(function(value.value))
    return function(value)


def _prepare_env_files(value):
    """env_file entries as {"path", "required", "format"} (a string is a required file)."""
    value = _as_list(value)
    if isinstance(value, list):
        return [
            {"path": item.get("path"), "required": item.get("required", "true"), "format": item.get("format")}
            if isinstance(item, dict)
            else {"path": item, "required": "true"}
            for item in value
            if item is not None
        ]
    return value


def _prepare_service(name, service):
    """One service of one file with its list forms turned into mappings, ready to merge."""
    if service is None:
        return {}
    if service is _RESET:
        return service
    if isinstance(service, _Override):
        return _Override(_prepare_service(name, service.value))
    if not isinstance(service, dict):
        raise _Malformed("The service %s is not a mapping." % _safe_path((name,)))
    prepared = dict(service)
    for key in _MAPPING_OR_LIST:
        if key in prepared:
            # A label written "key" has the value ""; an environment "KEY" has none.
            bare = None if key == "environment" else ""
            prepared[key] = _wrapped(prepared[key], lambda value, bare=bare: _as_mapping(value, bare=bare))
    if "extra_hosts" in prepared:
        prepared["extra_hosts"] = _wrapped(prepared["extra_hosts"], lambda value: _as_mapping(value, "=:"))
    if "depends_on" in prepared:
        prepared["depends_on"] = _wrapped(
            prepared["depends_on"], lambda value: _list_to_mapping(value, {"condition": "service_started"})
        )
    if "networks" in prepared:
        prepared["networks"] = _wrapped(prepared["networks"], lambda value: _list_to_mapping(value, None))
    for key in _STRING_OR_LIST:
        if key in prepared:
            prepared[key] = _wrapped(prepared[key], _prepare_env_files if key == "env_file" else _as_list)
    if "build" in prepared:
        prepared["build"] = _wrapped(prepared["build"], _prepare_build)
    deploy = prepared.get("deploy")
    if isinstance(deploy, dict) and "labels" in deploy:
        prepared["deploy"] = dict(deploy, labels=_as_mapping(deploy["labels"], bare=""))
    return prepared


def _list_to_mapping(value, default):
    if isinstance(value, list):
        return _ListForm((_text(item), default) for item in value if item is not None)
    return value


def _prepare_document(document):
    """Check a document's shape and prepare its services."""
    if document is None:
        raise _Malformed("The file is empty.")
    if not isinstance(document, dict):
        raise _Malformed("The top level of the file is not a mapping.")
    prepared = dict(document)
    services = prepared.get("services")
    if isinstance(services, _Override):
        services = services.value
    if services is None:
        prepared["services"] = {}
    elif not isinstance(services, dict):
        raise _Malformed("The services entry is not a mapping.")
    else:
        prepared["services"] = {name: _prepare_service(name, service) for name, service in services.items()}
    return prepared


# ------------------------------------------------------------------- merging


def _item_key(item):
    if isinstance(item, str):
        return "s:" + item
    return "j:" + json.dumps(item, sort_keys=True, default=repr)


def _port_merge_key(item):
    canonical = canonical_port(item)
    return canonical if canonical is not None else _item_key(item)


def _volume_merge_key(item):
    parsed = _parse_volume(item, None)
    if parsed is None or not parsed[1]:
        return _item_key(item)
    return "t:" + (parsed[1].rstrip("/") or "/")


def _merge_unique(old, new, key):
    """Append new items to old; an item with the key of an earlier one replaces it."""
    merged = {}
    for item in list(old) + list(new):
        if item is _RESET:
            continue
        merged[key(item)] = _unwrap(item)
    return list(merged.values())


def _merge_mapping(old, new, replaced=()):
    result = _ListForm(old) if isinstance(old, _ListForm) else dict(old)
    for key, value in new.items():
        if value is _RESET:
            if not isinstance(old, _ListForm):
                result.pop(key, None)
        elif key in result and key not in replaced:
            result[key] = _merge_value(result[key], value)
        else:
            result[key] = _unwrap(value)
    return result


def _merge_value(old, new):
    """Compose's generic rules: mappings merge, sequences append, scalars are replaced."""
    if isinstance(new, _Override):
        return _unwrap(new.value)
    if isinstance(old, dict) and isinstance(new, dict):
        return _merge_mapping(old, new)
    if isinstance(old, list) and isinstance(new, list):
        return _merge_unique(old, new, _item_key)
    if new is None and isinstance(old, dict):
        # "networks: [front]" over "front: {aliases: ...}": nothing to change.
        return old
    return _unwrap(new)


def _merge_logging(old, new):
    # Another driver: the earlier driver's options do not apply to it.
    if new.get("driver") is not None and old.get("driver") is not None and new.get("driver") != old.get("driver"):
        return _unwrap(new)
    return _merge_mapping(old, new)


def _merge_service(old, new):
    result = dict(old)
    for key, value in new.items():
        if value is _RESET:
            result.pop(key, None)
            continue
        if isinstance(value, _Override) or key not in result or key in _REPLACED:
            result[key] = _unwrap(value)
            continue
        current = result[key]
        if key == "ports" and isinstance(current, list) and isinstance(value, list):
            result[key] = _merge_unique(current, value, _port_merge_key)
        elif key == "volumes" and isinstance(current, list) and isinstance(value, list):
            result[key] = _merge_unique(current, value, _volume_merge_key)
        elif key == "healthcheck" and isinstance(current, dict) and isinstance(value, dict):
            result[key] = _merge_mapping(current, value, replaced=("test",))
        elif key == "logging" and isinstance(current, dict) and isinstance(value, dict):
            result[key] = _merge_logging(current, value)
        else:
            result[key] = _merge_value(current, value)
    return result


def _unwrap(node):
    """Drop !reset entries and !override wrappers left after merging."""
    if isinstance(node, _Override):
        return _unwrap(node.value)
    if isinstance(node, dict):
        unwrapped = ((key, _unwrap(value)) for key, value in node.items() if value is not _RESET)
        return _ListForm(unwrapped) if isinstance(node, _ListForm) else dict(unwrapped)
    if isinstance(node, list):
        return [_unwrap(value) for value in node if value is not _RESET]
    return node


def merge_documents(documents):
    """Merge loaded (and interpolated) compose documents in order, as Compose
    merges ``-f a.yml -f b.yml``; raises _Malformed for a bad structure."""
    return _merge_prepared([_prepare_document(document) for document in documents])


def _merge_prepared(documents):
    merged = {}
    for document in documents:
        for key, value in document.items():
            if value is _RESET:
                merged.pop(key, None)
            elif key == "services" and isinstance(merged.get(key), dict) and isinstance(value, dict):
                services = dict(merged[key])
                for name, service in value.items():
                    if service is _RESET:
                        services.pop(name, None)
                    elif name in services and not isinstance(service, _Override):
                        services[name] = _merge_service(services[name], service)
                    else:
                        services[name] = _unwrap(service)
                merged[key] = services
            elif key in merged:
                merged[key] = _merge_value(merged[key], value)
            else:
                merged[key] = _unwrap(value)
    return _unwrap(merged)


# ------------------------------------------------------------------- extends


# Keys that tie a service to another one: such a service is not resolved as the base of extends
# (the Compose specification restricts it; what Compose then does varies between versions).
_DEPENDENCY_KEYS = ("depends_on", "links", "volumes_from")
_MODE_KEYS = ("network_mode", "ipc", "pid", "cgroup")


def _extends_reference(value):
    """(service name, file or None) of an extends entry; (None, None) when it names neither."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and isinstance(value.get("service"), str):
        return value["service"], value.get("file")
    return None, None


def _depends_on_another(service):
    if any(key in service for key in _DEPENDENCY_KEYS):
        return True
    return any(str(service.get(key, "")).startswith(("service:", "container:")) for key in _MODE_KEYS)


def _body(service):
    return service.value if isinstance(service, _Override) else service


def _add_file_record(records, record):
    """The stack's files gain a record, unless one of that path is there already."""
    if not any(item["path"] == record["path"] for item in records):
        records.append(record)


def _prepared(record, document, interpolator):
    """(the document interpolated and prepared, None), or (None, why not): "malformed" (the
    file's record then says so too) or the reason a required variable gives."""
    try:
        if isinstance(document, _Documents):
            # Several documents in one file: each is read as a file of its own, merged in order.
            return _merge_prepared([_prepare_document(_interpolate(item, interpolator)) for item in document]), None
        return _prepare_document(_interpolate(document, interpolator)), None
    except _Malformed as problem:
        record.update(status="malformed", reason="%s" % problem)
        return None, "malformed"
    except _Required as problem:
        return None, _required_reason(problem)


class _ExtendedFiles:
    """The compose files that extends entries name (``extends: {file: …}``), each read once, with
    the stack's bounds and YAML loader, interpolated from the stack's env file and prepared like
    the stack's own files; their records are added to the stack's files."""

    def __init__(self, interpolator, max_bytes, parse, records):
        self.interpolator = interpolator
        self.max_bytes = max_bytes
        self.parse = parse
        self.records = records
        self.services = {}

    def of(self, path):
        """The prepared services of the file at path; raises _NotResolved when it is not usable."""
        if path not in self.services:
            record, document = _read_compose(path, self.max_bytes, self.parse)
            _add_file_record(self.records, record)
            services = None
            if record["status"] == "ok":
                ready, why = _prepared(record, document, self.interpolator)
                if ready is not None:
                    services = ready["services"]
                elif record["status"] == "ok":  # a required variable
                    record.update(reason=why)
            self.services[path] = (services, record)
        services, record = self.services[path]
        if services is None:
            if record["status"] != "ok":
                raise _NotResolved("a service of %s (the file is %s)" % (path, record["status"]))
            raise _NotResolved("a service of %s (the file is not usable: %s)" % (path, record["reason"]))
        return services


def _resolve_extends(document, path, extended_files):
    """The document with every service's extends applied, and the problems of those it does not
    resolve (a missing or looping base, a base tied to other services, a file in another
    directory, a file that cannot be read).

    The service is merged over its base with the rules of merging compose files, within the file
    that declares it (before the files are merged), as Compose does.  A base in another file is
    read from that file (extends there are followed in turn); the relative paths of a base in
    another directory are resolved from that directory, as Compose resolves them.
    """
    services = document["services"]
    problems = []
    resolved = {}

    def services_of(file_path):
        return services if file_path == path else extended_files.of(file_path)

    def resolve(file_path, name, chain):
        key = (file_path, name)
        if key in resolved:
            return resolved[key]
        body = _body(services_of(file_path)[name])
        if not isinstance(body, dict) or "extends" not in body:
            resolved[key] = body
            return body
        base_name, base_file = _extends_reference(body["extends"])
        base_path = file_path
        if base_file is not None:
            if not isinstance(base_file, str) or not base_file:
                raise _NotResolved("a file it does not name")
            base_path = os.path.normpath(os.path.join(os.path.dirname(file_path), base_file))
        if base_name is None or base_name not in services_of(base_path):
            raise _NotResolved("a service that is not in %s" % ("the same file" if base_path == path else base_path))
        if (base_path, base_name) in chain or (base_path, base_name) == key:
            raise _NotResolved("itself through a loop of extends")
        base = resolve(base_path, base_name, chain + (key,))
        if os.path.dirname(base_path) != os.path.dirname(file_path):
            # Relative paths of a base in another directory are its file's (Compose rebases them).
            base = _rebased_service(base, os.path.dirname(base_path))
        if _depends_on_another(base):
            raise _NotResolved("%s, which depends on other services" % _safe_path((base_name,)))
        own = {item: value for item, value in body.items() if item != "extends"}
        result = _merge_service({item: value for item, value in base.items() if item != "extends"}, own)
        resolved[key] = result
        return result

    extended = dict(services)
    for name in sorted(services):
        body = _body(services[name])
        if isinstance(body, dict) and "extends" in body:
            try:
                result = resolve(path, name, ())
            except _NotResolved as why:
                problems.append(
                    "The service %s in %s extends %s, which envparity does not resolve: the stack's declared "
                    "state is not compared." % (_safe_path((name,)), path, why)
                )
                continue
            extended[name] = _Override(result) if isinstance(services[name], _Override) else result
    return dict(document, services=extended), problems


class _NotResolved(Exception):
    """Why an extends entry is not resolved."""


# ------------------------------------------------------------------- include


def _rebased_volume(item, directory):
    """A volume entry with a relative bind source made absolute from directory (an included
    project's own directory, as Compose resolves it)."""
    if isinstance(item, str):
        source, separator, rest = item.partition(":")
        if separator and source.startswith("."):
            return _host_path(source, directory) + ":" + rest
        return item
    if isinstance(item, dict) and _text(item.get("type")) == "bind":
        # The long syntax's source is a path even without "./".
        return dict(item, source=_rebased_path(item.get("source"), directory))
    return item


def _rebased_path(path, directory):
    if isinstance(path, str) and path and not path.startswith(("/", "~")):
        return _host_path(path, directory)
    return path


def _rebased_service(service, directory):
    """An included service with its relative paths (bind sources, env files, build context)
    made absolute from directory, the included project's own, as Compose resolves them."""
    if not isinstance(service, dict):
        return service
    rebased = dict(service)
    if isinstance(service.get("volumes"), list):
        rebased["volumes"] = [_rebased_volume(item, directory) for item in service["volumes"]]
    if isinstance(service.get("env_file"), list):
        rebased["env_file"] = [
            dict(item, path=_rebased_path(item.get("path"), directory)) if isinstance(item, dict) else item
            for item in service["env_file"]
        ]
    build = service.get("build")
    if isinstance(build, dict) and not _text(build.get("context") or "").startswith(_REMOTE_CONTEXTS):
        rebased["build"] = dict(build, context=_rebased_path(_text(build.get("context")) or ".", directory))
    return rebased


def _include_entry(entry, directory):
    """([compose file paths], project directory, [env file paths] or None) of an include entry,
    relative paths resolved from the including file's directory; None when it is not one."""
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict):
        return None
    paths = entry.get("path")
    paths = [paths] if isinstance(paths, str) else paths
    if not isinstance(paths, list) or not paths or not all(isinstance(path, str) and path for path in paths):
        return None
    paths = [os.path.normpath(os.path.join(directory, path)) for path in paths]
    project_directory = entry.get("project_directory")
    if project_directory is not None and not isinstance(project_directory, str):
        return None
    project_directory = os.path.normpath(os.path.join(directory, project_directory or os.path.dirname(paths[0])))
    env_files = entry.get("env_file")
    env_files = [env_files] if isinstance(env_files, str) else env_files
    if env_files is not None:
        if not isinstance(env_files, list) or not all(isinstance(path, str) and path for path in env_files):
            return None
        env_files = [os.path.normpath(os.path.join(directory, path)) for path in env_files]
    return paths, project_directory, env_files


class _Includes:
    """The compose files top-level include entries bring in, as Compose loads them: each entry a
    project of its own (its files merged in order, interpolated from its own env file, by default
    the .env of its project directory, under the including project's variables, which take
    precedence; relative paths resolved from that directory), whose services join the including
    file's; a service defined on both sides is an error in Compose."""

    def __init__(self, max_bytes, parse, records):
        self.max_bytes = max_bytes
        self.parse = parse
        self.records = records
        self.interpolators = []  # every included project's, for the secrets they echo
        # Service name -> the interpolator of the included project that defines it, which reads
        # its env_file entries (their variables come from that project, as in Compose).
        self.projects = {}

    def _interpolator(self, project_directory, env_files, including):
        """The included project's interpolator: its env files bound over the including project's
        variables, which take precedence; raises _NotResolved."""
        interpolator = including.child()
        default = env_files is None
        for path in [os.path.join(project_directory, ".env")] if default else env_files:
            record, entries = _read_env_file(path, self.max_bytes)
            if record["status"] == "missing" and default:
                continue
            if record["status"] != "ok":
                raise _NotResolved("with the env file %s, which is %s" % (path, record["status"]))
            problem = bind_env_file(interpolator, record, entries)
            if problem:
                raise _NotResolved("with the env file %s, which is not usable" % path)
        return interpolator

    def _project(self, paths, project_directory, env_files, chain, including):
        """(services of one include entry, problems); raises _NotResolved."""
        interpolator = self._interpolator(project_directory, env_files, including)
        self.interpolators.append(interpolator)
        extended_files = _ExtendedFiles(interpolator, self.max_bytes, self.parse, self.records)
        prepared, problems = [], []
        for path in paths:
            if path in chain:
                raise _NotResolved("%s, which includes the including file again (a loop of include)" % path)
            record, document = _read_compose(path, self.max_bytes, self.parse)
            _add_file_record(self.records, record)
            if record["status"] != "ok":
                raise _NotResolved("%s, which is %s" % (path, record["status"]))
            ready, why = _prepared(record, document, interpolator)
            if ready is None:
                raise _NotResolved("%s, %s %s" % (path, "which is" if why == "malformed" else "in which", why))
            ready, unresolved = _resolve_extends(ready, path, extended_files)
            ready, nested = self.apply(ready, path, chain + (path,), interpolator)
            problems += unresolved + nested
            prepared.append(ready)
        services = _merge_prepared(prepared).get("services") or {}
        for name in services:
            self.projects.setdefault(name, interpolator)
        return {name: _rebased_service(service, project_directory) for name, service in services.items()}, problems

    def apply(self, document, path, chain, interpolator):
        """(the document with the services its include entries bring in, problems); interpolator
        is the including project's."""
        entries = document.get("include")
        if entries is None:
            return document, []
        ready = {key: value for key, value in document.items() if key != "include"}
        if not isinstance(entries, list):
            return ready, ["The include entry of %s is not a list: the stack's declared state is not compared." % path]
        if len(chain) > MAX_INCLUDE_DEPTH:
            return ready, [
                "The compose file %s includes files nested over %d levels deep, which envparity does not "
                "resolve: the stack's declared state is not compared." % (path, MAX_INCLUDE_DEPTH)
            ]
        services = dict(ready.get("services") or {})
        problems = []
        for entry in entries:
            parsed = _include_entry(entry, os.path.dirname(path))
            if parsed is None:
                problems.append(
                    "An include entry of %s is not a path or a mapping with a path: the stack's declared state "
                    "is not compared." % path
                )
                continue
            try:
                included, nested = self._project(*parsed, chain, interpolator)
            except _NotResolved as why:
                problems.append(
                    "The compose file %s includes %s: the stack's declared state is not compared." % (path, why)
                )
                continue
            problems += nested
            for name in sorted(set(included) & set(services)):
                problems.append(
                    "The service %s of %s is also defined by the files it includes (%s), which Compose refuses: "
                    "the stack's declared state is not compared." % (_safe_path((name,)), path, ", ".join(parsed[0]))
                )
            services.update(included)
        ready["services"] = services
        return ready, problems
