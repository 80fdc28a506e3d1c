"""Read Docker Compose stacks on a host, read-only, with every secret fingerprinted.

Standard library only, Python 3.8+: this module runs on the audited hosts.
PyYAML is imported lazily: without it every stack is "failed" with a reason
saying so, and the rest of the docker area (the engine) still reports.

A stack is a list of compose files merged in order, with variables taken
from the stack's env file (never from the process environment).  The result
is the STACK of docs/docker-facts.md.

Reading.  Files are examined and read with env_collect's helpers (stat
first, FIFOs and devices never opened, size capped, UTF-8 only).  YAML is
loaded with a loader built from PyYAML's pure-Python parts and BaseLoader's
semantics:

* every scalar stays the string it was written as (``NO``, ``on``, ``0755``,
  ``1.10``, ``true``): nothing is converted to a boolean or a number, and tags
  never create Python objects (``!!python/...`` is just text);
* a plain (unquoted) empty value, ``~``, ``null``, ``Null`` and ``NULL`` are
  None, as in Compose's YAML 1.2 core schema, so ``KEY:`` in ``environment``
  means "no value" while ``KEY: ""`` is the empty string;
* merge keys (``<<: *anchor``) work; a key defined twice in one mapping is an
  error, as in Compose;
* Compose's ``!reset`` and ``!override`` tags are honoured when merging.

Caps are enforced while the document is composed, before anything is built:
at most MAX_ALIASES aliases, MAX_DEPTH levels of nesting and MAX_NODES nodes,
counting every alias as the whole subtree it stands for (so a "billion laughs"
document is refused after a few thousand events), and MAX_EXPANDED_CHARS of
scalar text after expansion.  Such a file is "unsafe"; a YAML error makes it
"malformed" with the line number.  Reasons never quote the file's content.

Interpolation follows Compose: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``, ``${VAR:+alt}``,
``${VAR+alt}``, nested operands, ``$$`` for ``$``; a ``$`` not followed by a
name or ``{`` stays as it is.  Each file is interpolated (values only, not
keys) before the files are merged.  An unset variable becomes "" (Compose
warns); a required one makes the stack "failed", naming the variable (never
a value or the error text); a malformed ``${...}`` makes the file
"malformed".  A bare ``KEY`` line in the env file leaves KEY unset.  Values
in the env file are used as parse_dotenv returns them (Compose would also
interpolate unquoted and double-quoted values inside the env file itself).

Secrets.  ``environment`` values become describe_value records.  A string
that received a secret variable's value (a variable describe_value calls
secret) carries that value only into describe_value; everywhere else it is
shown with ``***`` in its place.  An environment value built from a secret
variable is secret whatever its key.  Commands, entrypoints and health
checks go through redact_text (and the word after a secret-named option such
as ``--password`` is masked); label and logging option values that look
secret become ``<redacted:FINGERPRINT>``; long secret values found in
``environment`` are masked wherever else they are repeated.
"""

import json
import os
import posixpath
import re

from ansible_collections.envparity.audit.plugins.module_utils.dotenv_parser import parse_dotenv
from ansible_collections.envparity.audit.plugins.module_utils.env_collect import _load, _resolve, _safe_key
from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    MASK,
    describe_value,
    is_secret_name,
    looks_like_token,
    redact_text,
)

DEFAULT_MAX_BYTES = 1048576
MAX_ALIASES = 100
MAX_DEPTH = 50
MAX_NODES = 100000
# Scalar text after alias expansion: at least this, or twice the file limit.
MAX_EXPANDED_CHARS = 4 * 1048576
# ${A:-${B:-${C...}}}: deeper nesting is refused as malformed.
MAX_TEMPLATE_NESTING = 16
# Files included by included files, and so on: deeper than this is refused as a likely loop.
MAX_INCLUDE_DEPTH = 10
# Secret values at least this long (or token-shaped) are masked wherever repeated.
MIN_ECHO_LENGTH = 12

PYYAML_MISSING = "PyYAML (python3-yaml) is needed on the host to read compose files"

_NULLS = ("", "~", "null", "Null", "NULL")
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TRUE = frozenset({"true", "yes", "on"})
_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_BRACED = re.compile(r"([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-?+])(.*))?\Z", re.DOTALL)
_PROJECT_CHARS = re.compile(r"[^a-z0-9_-]+")
_OPTION = re.compile(r"-{1,2}([A-Za-z][A-Za-z0-9_.-]*)\Z")
_WORDS = re.compile(r"(\s+)")
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

# Service attributes replaced, not merged (Compose spec, merge: "shell commands").
_REPLACED = frozenset({"command", "entrypoint"})
# Written as a list of "KEY=VAL" or as a mapping; merged as mappings.
_MAPPING_OR_LIST = ("environment", "labels", "annotations", "sysctls")
# A single string stands for a one-item list.
_STRING_OR_LIST = ("dns", "dns_search", "dns_opt", "tmpfs", "env_file", "cap_add", "cap_drop", "profiles")


class _Unsafe(Exception):
    """A file refused by a cap; carries a reason sentence."""


class _Malformed(Exception):
    """Invalid YAML or an invalid compose structure; carries a reason sentence."""


class _Required(Exception):
    """${VAR:?err} or ${VAR?err} with VAR unset (or empty)."""

    def __init__(self, name, empty):
        super().__init__(name)
        self.name = name
        self.empty = empty


class _BadTemplate(Exception):
    """A "${" without a valid name or closing brace."""


class _Reset:
    """The value of a ``!reset`` tag: the attribute is removed when merging."""

    def __repr__(self):
        return "!reset"


_RESET = _Reset()


class _Override:
    """The value of an ``!override`` tag: it replaces instead of merging."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return "!override %r" % (self.value,)


class _Tainted(str):
    """A string that received a secret variable's value.

    ``display`` is the same text with ``***`` where each secret went;
    ``secrets`` are the values substituted.
    """


# How a bind source inside drift_project_dir is written (see project_relative).
PROJECT_MARKER = "<project>"


def _tainted(real, display, secrets):
    if not secrets:
        return real
    text = _Tainted(real)
    text.display = display
    text.secrets = tuple(secrets)
    return text


# --------------------------------------------------------------------- YAML


def _line_of(mark):
    return None if mark is None else mark.line + 1


def make_loader(pure=False):
    """Return ``parse(text)`` for compose YAML; raises ImportError without PyYAML.

    ``parse`` returns the document (None when empty) or raises _Unsafe or
    _Malformed.  Events come from libyaml when PyYAML has it (about thirty
    times faster), else (or with ``pure``) from PyYAML's Python parser; the
    composer, with its caps, is always the Python one below.
    """
    import yaml
    from yaml.composer import Composer
    from yaml.constructor import BaseConstructor
    from yaml.events import AliasEvent, ScalarEvent
    from yaml.nodes import MappingNode, SequenceNode
    from yaml.parser import Parser
    from yaml.reader import Reader, ReaderError
    from yaml.resolver import BaseResolver
    from yaml.scanner import Scanner

    class GuardedComposer(Composer):
        """Counts nodes as if every alias were expanded, while composing."""

        def __init__(self, max_chars):
            Composer.__init__(self)
            self._max_chars = max_chars
            self._aliases = 0
            self._nodes = 0
            self._chars = 0
            self._depth = 0
            self._deepest = 0
            # anchor -> (expanded nodes, expanded characters, height)
            self._sizes = {}

        def _grow(self, nodes, chars):
            self._nodes += nodes
            self._chars += chars
            if self._nodes > MAX_NODES:
                raise _Unsafe("The file expands to more than %d YAML nodes (a YAML bomb?)." % MAX_NODES)
            if self._chars > self._max_chars:
                raise _Unsafe("The file expands to more than %d characters of text (a YAML bomb?)." % self._max_chars)

        def _reach(self, depth):
            if depth > MAX_DEPTH:
                raise _Unsafe("The file nests deeper than %d levels." % MAX_DEPTH)
            self._deepest = max(self._deepest, depth)

        def compose_node(self, parent, index):
            if self.check_event(AliasEvent):
                anchor = self.peek_event().anchor
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise _Unsafe("The file uses more than %d YAML aliases." % MAX_ALIASES)
                size = self._sizes.get(anchor)
                if size is None and anchor in self.anchors:
                    raise _Unsafe("The file has a YAML alias inside its own anchor (a recursive structure).")
                if size is not None:
                    self._grow(size[0], size[1])
                    self._reach(self._depth + size[2])
                # An undefined alias raises ComposerError here.
                return Composer.compose_node(self, parent, index)
            event = self.peek_event()
            self._depth += 1
            outer_deepest = self._deepest
            self._deepest = 0
            self._reach(self._depth)
            nodes, chars = self._nodes, self._chars
            self._grow(1, len(event.value) if isinstance(event, ScalarEvent) else 0)
            node = Composer.compose_node(self, parent, index)
            if event.anchor is not None:
                self._sizes[event.anchor] = (self._nodes - nodes, self._chars - chars, self._deepest - self._depth + 1)
            self._deepest = max(outer_deepest, self._deepest)
            self._depth -= 1
            return node

    class Resolver(BaseResolver):
        """BaseResolver (everything is a string) plus nulls and merge keys."""

    Resolver.add_implicit_resolver(_NULL_TAG, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
    Resolver.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])

    class Constructor(BaseConstructor):
        """BaseConstructor: strings, lists and dicts only, whatever the tags say."""

        def _plain(self, node):
            if isinstance(node, MappingNode):
                return self.construct_mapping(node)
            if isinstance(node, SequenceNode):
                return self.construct_sequence(node)
            return node.value

        def construct_mapping(self, node, deep=False):
            if not isinstance(node, MappingNode):
                raise _Malformed(
                    "The file is not valid YAML (line %s): a merge key needs a mapping." % _line_of(node.start_mark)
                )
            merged = {}
            own = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                    # The first mapping listed wins, so apply them last to first.
                    for source in reversed(sources):
                        merged.update(self.construct_mapping(source))
                    continue
                key = self.construct_object(key_node, deep=deep)
                if key is None:
                    key = "null"
                if not isinstance(key, str):
                    raise _Malformed(
                        "The file is not valid YAML (line %s): a mapping key is not a scalar."
                        % _line_of(key_node.start_mark)
                    )
                if key in own:
                    raise _Malformed(
                        "The file is not valid YAML (line %s): a key is defined twice in one mapping."
                        % _line_of(key_node.start_mark)
                    )
                own[key] = self.construct_object(value_node, deep=deep)
            merged.update(own)
            return merged

    def construct_null(loader, node):
        return None

    def construct_reset(loader, node):
        return _RESET

    def construct_override(loader, node):
        return _Override(loader._plain(node))

    Constructor.add_constructor(_NULL_TAG, construct_null)
    Constructor.add_constructor("!reset", construct_reset)
    Constructor.add_constructor("!override", construct_override)

    c_parser = None
    if not pure:
        try:
            from yaml.cyaml import CParser as c_parser
        except ImportError:
            c_parser = None

    if c_parser is not None:

        class Loader(GuardedComposer, c_parser, Constructor, Resolver):
            # GuardedComposer comes first: the C parser's own composer
            # (get_single_node) must not be used.
            byte_offsets = True

            def __init__(self, text, max_chars):
                c_parser.__init__(self, text)
                GuardedComposer.__init__(self, max_chars)
                Constructor.__init__(self)
                Resolver.__init__(self)

    else:

        class Loader(Reader, Scanner, Parser, GuardedComposer, Constructor, Resolver):
            byte_offsets = False

            def __init__(self, text, max_chars):
                Reader.__init__(self, text)
                Scanner.__init__(self)
                Parser.__init__(self)
                GuardedComposer.__init__(self, max_chars)
                Constructor.__init__(self)
                Resolver.__init__(self)

    def parse(text, max_chars=MAX_EXPANDED_CHARS):
        try:
            loader = Loader(text, max_chars)
        except ReaderError as exc:
            raise _Malformed(_reader_reason(text, exc, Loader.byte_offsets)) from None
        try:
            return loader.get_single_data()
        except ReaderError as exc:
            raise _Malformed(_reader_reason(text, exc, Loader.byte_offsets)) from None
        except yaml.MarkedYAMLError as exc:
            # The exception's text may quote the file: only the line is used.
            line = _line_of(exc.problem_mark) or _line_of(exc.context_mark)
            raise _Malformed("The file is not valid YAML (line %s)." % line) from None
        except yaml.YAMLError:
            raise _Malformed("The file is not valid YAML.") from None
        except RecursionError:
            raise _Unsafe("The file nests too deeply to be read.") from None
        finally:
            loader.dispose()

    return parse


def _reader_reason(text, exc, byte_offsets):
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        if byte_offsets:
            # libyaml counts bytes of the UTF-8 text.
            line = text.encode("utf-8", "surrogatepass")[:position].count(b"\n") + 1
        else:
            line = text.count("\n", 0, position) + 1
        return "The file contains a character YAML does not allow (line %d)." % line
    return "The file contains a character YAML does not allow."


# ------------------------------------------------------------ interpolation


class _Interpolator:
    """Compose's variable substitution from one env file's variables."""

    def __init__(self, variables, hmac_key):
        self.values = variables
        self.hmac_key = hmac_key
        # Display of each secret variable's value ("***", or a URL with its
        # password masked).
        self.shown = {}
        for name, value in variables.items():
            if value:
                record = describe_value(name, value, hmac_key)
                if record["secret"]:
                    display = record["display"]
                    self.shown[name] = display if display and value not in display else MASK

    def _value(self, name):
        value = self.values[name]
        if name in self.shown:
            return value, self.shown[name], (value,)
        return value, value, ()

    def expand(self, text, depth=0):
        """(value, display, secrets used) of a string; raises _Required, _BadTemplate."""
        if "$" not in text:
            return text, text, ()
        if depth > MAX_TEMPLATE_NESTING:
            raise _BadTemplate()
        real = []
        shown = []
        secrets = []
        pos = 0
        size = len(text)
        while pos < size:
            dollar = text.find("$", pos)
            if dollar == -1:
                real.append(text[pos:])
                shown.append(text[pos:])
                break
            real.append(text[pos:dollar])
            shown.append(text[pos:dollar])
            after = text[dollar + 1 : dollar + 2]
            if after == "$":
                piece = ("$", "$", ())
                pos = dollar + 2
            elif after == "{":
                close = _closing_brace(text, dollar + 2)
                if close == -1:
                    raise _BadTemplate()
                piece = self._braced(text[dollar + 2 : close], depth)
                pos = close + 1
            else:
                match = _NAME.match(text, dollar + 1)
                if match:
                    name = match.group()
                    piece = self._value(name) if name in self.values else ("", "", ())
                    pos = match.end()
                else:
                    # Not a variable: the "$" stays as written.
                    piece = ("$", "$", ())
                    pos = dollar + 1
            real.append(piece[0])
            shown.append(piece[1])
            secrets.extend(piece[2])
        return "".join(real), "".join(shown), tuple(secrets)

    def _braced(self, inner, depth):
        match = _BRACED.match(inner)
        if not match:
            raise _BadTemplate()
        name, operator, operand = match.groups()
        is_set = name in self.values
        non_empty = is_set and self.values[name] != ""
        if operator is None:
            return self._value(name) if is_set else ("", "", ())
        present = non_empty if operator.startswith(":") else is_set
        kind = operator[-1]
        if kind == "-":
            return self._value(name) if present else self.expand(operand, depth + 1)
        if kind == "?":
            if present:
                return self._value(name)
            raise _Required(name, empty=is_set)
        return self.expand(operand, depth + 1) if present else ("", "", ())


def interpolate(text, variables, hmac_key=b"interpolate"):
    """Compose's interpolation of one string from ``variables`` (a dict).

    Raises _Required for ${VAR:?err} / ${VAR?err} and _BadTemplate for a
    malformed ``${...}``.
    """
    return _Interpolator(variables, hmac_key).expand(text)[0]


def _closing_brace(text, start):
    """Index of the "}" closing a "${" whose content starts at ``start``, or -1."""
    depth = 1
    pos = start
    size = len(text)
    while pos < size:
        char = text[pos]
        if char == "$" and text[pos + 1 : pos + 2] in ("$", "{"):
            if text[pos + 1] == "{":
                depth += 1
            pos += 2
            continue
        if char == "}":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    return -1


def _safe_path(path):
    parts = []
    for part in path:
        text = "%s" % (part,)
        parts.append("<redacted>" if looks_like_token(text) else text)
    return ".".join(parts)[:200]


def _interpolate(node, interpolator, path=()):
    """Interpolate every string value (never a key) of a loaded document."""
    if isinstance(node, str):
        try:
            return _tainted(*interpolator.expand(node))
        except _BadTemplate:
            raise _Malformed(
                'Invalid interpolation syntax (a "${" without a valid variable name or closing '
                "brace) in %s." % _safe_path(path)
            ) from None
    if isinstance(node, dict):
        return {key: _interpolate(value, interpolator, path + (key,)) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, interpolator, path + (index,)) for index, value in enumerate(node)]
    if isinstance(node, _Override):
        return _Override(_interpolate(node.value, interpolator, path))
    return node


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


def _as_mapping(value, separators="=", bare=None):
    """A mapping, or a list of "KEY=VAL" / "KEY" converted to one."""
    if isinstance(value, list):
        mapping = {}
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
    value = _as_list(value)
    if isinstance(value, list):
        return [item.get("path") if isinstance(item, dict) else item for item in value]
    return value


def _prepare_service(name, service):
    """One service of one file with its list forms turned into mappings, ready to merge."""
    if service is None:
        return {}
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
        return {_text(item): default for item in value if item is not None}
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
    result = dict(old)
    for key, value in new.items():
        if value is _RESET:
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
        return {key: _unwrap(value) for key, value in node.items() if value is not _RESET}
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


# ------------------------------------------------------------ normalisation


def _text(value):
    """A scalar as written; a structure (invalid where a scalar belongs) as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=repr)
    return "%s" % (value,)


def _displayed(node):
    """The tree as it may be shown: secret substitutions replaced by ***."""
    if isinstance(node, _Tainted):
        return node.display
    if isinstance(node, dict):
        return {_displayed(key): _displayed(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_displayed(value) for value in node]
    return node


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


def parse_image(value):
    ref = _text(value)
    if ref is None:
        return None
    name, _, digest = ref.partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        # "localhost:5000/app" has no tag: that colon comes before a slash.
        name, tag = name[:colon], name[colon + 1 :]
    return {"ref": ref, "repository": name, "tag": tag or None, "digest": digest or None}


def _build(value):
    if value is None:
        return None
    if not isinstance(value, dict):
        return {"context": _text(value), "dockerfile": None, "target": None}
    return {
        "context": _text(value.get("context")),
        "dockerfile": _text(value.get("dockerfile")),
        "target": _text(value.get("target")),
    }


def _dict(value):
    return value if isinstance(value, dict) else {}


def _first(*values):
    for value in values:
        if value is not None:
            return _text(value)
    return None


def _resources(service):
    resources = _dict(_dict(service.get("deploy")).get("resources"))
    limits = _dict(resources.get("limits"))
    reservations = _dict(resources.get("reservations"))
    return (
        {
            "memory": _first(limits.get("memory"), service.get("mem_limit")),
            "cpus": _first(limits.get("cpus"), service.get("cpus")),
        },
        {
            "memory": _first(reservations.get("memory"), service.get("mem_reservation")),
            "cpus": _first(reservations.get("cpus")),
        },
    )


def _names(value):
    if isinstance(value, dict):
        return sorted({_text(key) for key in value})
    if isinstance(value, list):
        return sorted({_text(item) for item in value if item is not None})
    if value is None:
        return []
    return [_text(value)]


class _Redactor:
    """Everything that leaves this module outside describe_value goes through here."""

    def __init__(self, hmac_key, echoes):
        self.hmac_key = hmac_key
        # Longest first, so that a secret containing another is masked whole.
        self.echoes = sorted(set(echoes), key=len, reverse=True)

    def mask(self, text):
        if text is None:
            return None
        for secret in self.echoes:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def free_text(self, value):
        """A command, an entrypoint or a health check test: str or list of str."""
        if value is None:
            return None
        if isinstance(value, list):
            return self._words([_text(item) or "" for item in value])
        pieces = _WORDS.split(_text(value))
        pieces[0::2] = self._words(pieces[0::2])
        return self.mask("".join(pieces))

    def _words(self, words):
        shown = []
        hide_next = False
        for word in words:
            if hide_next and word and not word.startswith("-"):
                shown.append(MASK)
                hide_next = False
                continue
            shown.append(self.mask(redact_text(word)))
            option = _OPTION.match(word)
            hide_next = bool(option and is_secret_name(option.group(1)))
        return shown

    def opaque(self, key, value):
        """A label or logging option value (real, not displayed): shown unless secret.

        A secret value is shown as its fingerprint, so that a change still shows.
        """
        text = _text(value)
        if text is None:
            return None
        record = describe_value(key, "%s" % (text,), self.hmac_key)
        if record["secret"] or isinstance(value, _Tainted):
            return "<redacted:%s>" % record["fp"]
        return self.mask(text)

    def key(self, key):
        return _safe_key(_text(key), self.hmac_key)


def _environment(environment, hmac_key):
    """{KEY: describe_value record}, from real values; secret substitutions make a value secret."""
    described = {}
    for key, value in _dict(environment).items():
        text = None if value is None else "%s" % (_text(value),)
        record = describe_value(key, text, hmac_key)
        if isinstance(value, _Tainted):
            if not record["secret"]:
                record = describe_value("SECRET", text, hmac_key)
            display = record["display"]
            if display and any(secret in display for secret in value.secrets):
                record["display"] = None
        described[_safe_key(_text(key), hmac_key)] = record
    return dict(sorted(described.items()))


def _echoes(services, interpolators):
    """Long or token-shaped secret values, to be masked wherever they are repeated."""
    found = []
    candidates = [
        (name, value)
        for interpolator in interpolators
        for name, value in interpolator.values.items()
        if name in interpolator.shown
    ]
    for service in services.values():
        for key, value in _dict(_dict(service).get("environment")).items():
            if isinstance(value, str) and not isinstance(value, _Tainted):
                candidates.append((key, value))
    for key, value in candidates:
        if value and (len(value) >= MIN_ECHO_LENGTH or looks_like_token(value)):
            record = describe_value(key, value, interpolators[0].hmac_key)
            if record["secret"]:
                found.append(value)
    return found


def _healthcheck(value, redactor):
    if value is None:
        return None
    value = _dict(value)
    return {
        "test": redactor.free_text(value.get("test")),
        "interval": redactor.mask(_text(value.get("interval"))),
        "timeout": redactor.mask(_text(value.get("timeout"))),
        "retries": redactor.mask(_text(value.get("retries"))),
        "start_period": redactor.mask(_text(value.get("start_period"))),
        "disable": redactor.mask(_text(value.get("disable"))),
    }


def _logging(value, redactor):
    if value is None:
        return None
    value = _dict(value)
    options = {}
    for key, option in _dict(value.get("options")).items():
        options[redactor.key(key)] = redactor.opaque(key, option)
    driver = redactor.mask(_text(_displayed(value.get("driver"))))
    return {"driver": driver, "options": dict(sorted(options.items()))}


def _service(real, base_dir, hmac_key, redactor, project_root=None):
    """One merged service in the SERVICE shape of docs/docker-facts.md."""
    environment = _environment(real.get("environment"), hmac_key)
    service = _displayed(real)

    def masked(value):
        return redactor.mask(_text(value))

    def masked_list(values):
        return [masked(value) for value in values]

    image = parse_image(service.get("image"))
    if image is not None:
        image = {key: masked(value) for key, value in image.items()}
    build = _build(service.get("build"))
    if build is not None:
        build = {key: masked(value) for key, value in build.items()}
    ports = {canonical_port(item) or _text(item) for item in service.get("ports") or [] if item is not None}
    volumes = {
        project_relative(canonical_volume(item, base_dir), project_root)
        for item in service.get("volumes") or []
        if item is not None
    }
    env_files = []
    for item in _as_list(service.get("env_file")) or []:
        text = masked(item)
        if text is not None and text not in env_files:
            env_files.append(text)
    labels = {
        redactor.key(key): redactor.opaque(key, "" if value is None else value)
        for key, value in _dict(real.get("labels")).items()
    }
    limits, reservations = _resources(service)
    return {
        "image": image,
        "build": build,
        "command": redactor.free_text(service.get("command")),
        "entrypoint": redactor.free_text(service.get("entrypoint")),
        "ports": masked_list(sorted(ports)),
        "environment": environment,
        "env_file": env_files,
        "volumes": masked_list(sorted(volumes)),
        "networks": masked_list(_names(service.get("networks"))),
        "depends_on": masked_list(_names(service.get("depends_on"))),
        "healthcheck": _healthcheck(service.get("healthcheck"), redactor),
        "restart": masked(service.get("restart")),
        "limits": {key: masked(value) for key, value in limits.items()},
        "reservations": {key: masked(value) for key, value in reservations.items()},
        "logging": _logging(real.get("logging"), redactor),
        "labels": dict(sorted(labels.items())),
        "user": masked(service.get("user")),
        "privileged": masked(service.get("privileged")),
        "read_only": masked(service.get("read_only")),
        "cap_add": masked_list(_names(_as_list(service.get("cap_add")))),
        "profiles": masked_list(_names(_as_list(service.get("profiles")))),
    }


# ------------------------------------------------------------------- stacks


def normalize_project_name(name):
    """Compose's rule: lower-case, only [a-z0-9_-], no leading "_" or "-"."""
    if not isinstance(name, str):
        return None
    return _PROJECT_CHARS.sub("", name.lower()).lstrip("_-") or None


def _file_record(path, loaded):
    return {"path": path, "status": loaded["status"], "reason": loaded["reason"]}


def _read_compose(path, max_bytes, parse):
    """(file record, loaded document or None)."""
    loaded, text = _load(path, max_bytes)
    record = _file_record(path, loaded)
    if text is None or parse is None:
        return record, None
    try:
        return record, parse(text, max(MAX_EXPANDED_CHARS, 2 * max_bytes))
    except _Unsafe as problem:
        record.update(status="unsafe", reason="%s" % problem)
    except _Malformed as problem:
        record.update(status="malformed", reason="%s" % problem)
    return record, None


def _read_env_file(path, max_bytes):
    """(record, {name: value}); a bare "KEY" leaves KEY unset; the last binding wins."""
    loaded, text = _load(path, max_bytes)
    variables = {}
    if text is not None:
        for entry in parse_dotenv(text)["entries"]:
            if entry["value"] is None:
                variables.pop(entry["key"], None)
            else:
                variables[entry["key"]] = entry["value"]
    return _file_record(path, loaded), variables


def _required_reason(problem):
    name = problem.name if not looks_like_token(problem.name) else "<redacted>"
    if problem.empty:
        return "required variable %s is empty" % name
    return "required variable %s is not set" % name


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
    that declares it (before the files are merged), as Compose does.  A base in another file of
    the same directory is read from that file (extends there are followed in turn); a file in
    another directory is not, because Compose rebases the relative paths of its services, which
    envparity does not.
    """
    services = document["services"]
    problems = []
    resolved = {}
    directory = os.path.dirname(path)

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
            if os.path.dirname(base_path) != directory:
                raise _NotResolved(
                    "a service of %s, in another directory (its relative paths would be rebased)" % base_path
                )
        if base_name is None or base_name not in services_of(base_path):
            raise _NotResolved("a service that is not in %s" % ("the same file" if base_path == path else base_path))
        if (base_path, base_name) in chain or (base_path, base_name) == key:
            raise _NotResolved("itself through a loop of extends")
        base = resolve(base_path, base_name, chain + (key,))
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


def _rebased_volume(item, directory):
    """A volume entry with a relative bind source made absolute from directory (an included
    project's own directory, as Compose resolves it)."""
    if isinstance(item, str):
        source, separator, rest = item.partition(":")
        if separator and source.startswith("."):
            return _host_path(source, directory) + ":" + rest
        return item
    if isinstance(item, dict) and _text(item.get("type")) == "bind":
        source = item.get("source")
        if isinstance(source, str) and source.startswith("."):
            return dict(item, source=_host_path(source, directory))
    return item


def _rebased_service(service, directory):
    volumes = service.get("volumes") if isinstance(service, dict) else None
    if not isinstance(volumes, list):
        return service
    return dict(service, volumes=[_rebased_volume(item, directory) for item in volumes])


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
    the .env of its project directory, relative bind sources resolved from that directory), whose
    services join the including file's; a service defined on both sides is an error in Compose."""

    def __init__(self, hmac_key, max_bytes, parse, records):
        self.hmac_key = hmac_key
        self.max_bytes = max_bytes
        self.parse = parse
        self.records = records
        self.interpolators = []  # every included project's, for the secrets they echo

    def _variables(self, project_directory, env_files):
        """{name: value} of an included project's env files; raises _NotResolved."""
        variables = {}
        default = env_files is None
        for path in [os.path.join(project_directory, ".env")] if default else env_files:
            record, values = _read_env_file(path, self.max_bytes)
            if record["status"] == "missing" and default:
                continue
            if record["status"] != "ok":
                raise _NotResolved("with the env file %s, which is %s" % (path, record["status"]))
            variables.update(values)
        return variables

    def _project(self, paths, project_directory, env_files, chain):
        """(services of one include entry, problems); raises _NotResolved."""
        interpolator = _Interpolator(self._variables(project_directory, env_files), self.hmac_key)
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
            ready, nested = self.apply(ready, path, chain + (path,))
            problems += unresolved + nested
            prepared.append(ready)
        services = _merge_prepared(prepared).get("services") or {}
        return {name: _rebased_service(service, project_directory) for name, service in services.items()}, problems

    def apply(self, document, path, chain):
        """(the document with the services its include entries bring in, problems)."""
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
                included, nested = self._project(*parsed, chain)
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


def _services(merged, interpolators, base_dir, hmac_key, project_root):
    """Every merged service in the SERVICE shape, secrets fingerprinted and echoes masked."""
    redactor = _Redactor(hmac_key, _echoes(merged.get("services") or {}, interpolators))
    return {
        redactor.key(name): _service(_dict(real), base_dir, hmac_key, redactor, project_root)
        for name, real in sorted(_dict(merged.get("services")).items())
    }


def _prepare_files(files, documents, interpolator, extended_files, includes):
    """(prepared documents, problems): each file interpolated, checked, its extends applied and
    what it includes added."""
    prepared, problems = [], []
    # The stack's own files (one document each); extended_files appends the files extends name.
    for index, document in enumerate(documents):
        record = files[index]
        ready, why = _prepared(record, document, interpolator)
        if ready is None:
            malformed = "The compose file %s is not usable (malformed)." % record["path"]
            problems.append(malformed if why == "malformed" else why)
            continue
        ready, unresolved = _resolve_extends(ready, record["path"], extended_files)
        ready, included = includes.apply(ready, record["path"], (record["path"],))
        problems += unresolved + included
        prepared.append(ready)
    return prepared, problems


def _collect_stack(item, project_dir, hmac_key, max_bytes, parse):
    files_asked = item.get("files") or []
    if isinstance(files_asked, str):
        files_asked = [files_asked]
    paths = [_resolve(path, project_dir) for path in files_asked]
    files = []
    documents = []
    problems = []
    for path in paths:
        record, document = _read_compose(path, max_bytes, parse)
        files.append(record)
        documents.append(document)
        if record["status"] != "ok":
            problems.append("The compose file %s is not usable (%s)." % (path, record["status"]))
    env_record = None
    variables = {}
    if item.get("env_file"):
        env_record, variables = _read_env_file(_resolve(item["env_file"], project_dir), max_bytes)
        if env_record["status"] != "ok":
            problems.append("The env file %s is not usable (%s)." % (env_record["path"], env_record["status"]))
    if not paths:
        problems.append("No compose files are configured for this stack.")
    if parse is None:
        problems.insert(0, PYYAML_MISSING)

    merged = None
    interpolator = _Interpolator(variables, hmac_key)
    extended_files = _ExtendedFiles(interpolator, max_bytes, parse, files)
    includes = _Includes(hmac_key, max_bytes, parse, files)
    if not problems:
        prepared, problems = _prepare_files(files, documents, interpolator, extended_files, includes)
        if not problems:
            merged = _merge_prepared(prepared)

    base_dir = os.path.dirname(paths[0]) if paths else None
    root = os.path.normpath(_resolve(".", project_dir)) if project_dir else None
    services = {}
    if merged is not None:
        services = _services(merged, [interpolator, *includes.interpolators], base_dir, hmac_key, root)
    name = None
    if merged is not None:
        shown = _displayed(merged.get("name"))
        name = shown if isinstance(shown, str) and MASK not in shown else None
    project = None
    for candidate in (item.get("project"), name, os.path.basename(posixpath.normpath(base_dir)) if base_dir else None):
        project = normalize_project_name(candidate)
        if project:
            break
    return {
        "project": project,
        "status": "failed" if problems else "ok",
        "reason": problems[0] if problems else None,
        "files": files,
        "env_file": env_record,
        "services": services,
    }


def collect_stacks(stacks, project_dir, hmac_key, max_bytes=DEFAULT_MAX_BYTES):
    """Collect compose stacks, each item ``{"name", "files", "env_file", "project"}``.

    Returns ``{name: STACK}`` as described in docs/docker-facts.md.
    """
    try:
        parse = make_loader()
    except ImportError:
        parse = None
    return {item["name"]: _collect_stack(item, project_dir, hmac_key, max_bytes, parse) for item in stacks}
