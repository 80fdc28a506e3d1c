"""Reading compose files on a host: the bounded, strings-only YAML loader and the files of a stack.

Standard library only, Python 3.8+: this module runs on the audited hosts.
PyYAML is imported lazily (make_loader raises ImportError without it).

Files are examined and read with env_collect's helpers (stat first, FIFOs
and devices never opened, size capped, UTF-8 only).  YAML is loaded with a
loader built from PyYAML's pure-Python parts and BaseLoader's semantics:

* every scalar is a string and tags never create Python objects
  (``!!python/...`` is just text); a plain (unquoted) value that Compose's YAML
  library (yaml.v3) reads as a number or a boolean is the text Compose
  renders from it (compose_scalar: ``1.10`` is ``1.1``, ``0755`` is ``493``,
  ``True`` is ``true``, ``1_000`` is ``1000``), which is what reaches the
  container; ``yes``, ``on``, ``NO`` and dates stay as written, as in Compose;
  mapping keys always stay as written;
* a plain (unquoted) empty value, ``~``, ``null``, ``Null`` and ``NULL`` are
  None, as in Compose's YAML 1.2 core schema, so ``KEY:`` in ``environment``
  means "no value" while ``KEY: ""`` is the empty string;
* merge keys (``<<: *anchor``) work; a key defined twice in one mapping is an
  error, as in Compose;
* Compose's ``!reset`` and ``!override`` tags become _RESET and _Override,
  which compose_merge honours.

Caps are enforced while the document is composed, before anything is built:
at most MAX_ALIASES aliases, MAX_DEPTH levels of nesting and MAX_NODES nodes,
counting every alias as the whole subtree it stands for (so a "billion laughs"
document is refused after a few thousand events), and MAX_EXPANDED_CHARS of
scalar text after expansion.  Such a file is "unsafe"; a YAML error makes it
"malformed" with the line number.  Reasons never quote the file's content.
"""

import math
import re
from decimal import Decimal

from ansible_collections.envparity.audit.plugins.module_utils.compose_dotenv import (
    _EnvSyntax,
    parse_compose_env,
    parse_raw_env,
)
from ansible_collections.envparity.audit.plugins.module_utils.env_collect import _load

DEFAULT_MAX_BYTES = 1048576
MAX_ALIASES = 100
MAX_DEPTH = 50
MAX_NODES = 100000
# Scalar text after alias expansion: at least this, or twice the file limit.
MAX_EXPANDED_CHARS = 4 * 1048576

PYYAML_MISSING = "PyYAML (python3-yaml) is needed on the host to read compose files"

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Plain scalars that may be a YAML 1.2 number or boolean (compose_scalar decides).
_TYPED_TAG = "tag:envparity,2026:typed"
_TYPED_FIRST = list("-+.0123456789tTfF")
_TYPED = re.compile(r"^(?:[-+.0-9].*|true|True|TRUE|false|False|FALSE)$")
_WORDS = {
    "true": "true",
    "True": "true",
    "TRUE": "true",
    "false": "false",
    "False": "false",
    "FALSE": "false",
    ".inf": "+Inf",
    ".Inf": "+Inf",
    ".INF": "+Inf",
    "+.inf": "+Inf",
    "+.Inf": "+Inf",
    "+.INF": "+Inf",
    "-.inf": "-Inf",
    "-.Inf": "-Inf",
    "-.INF": "-Inf",
    ".nan": "NaN",
    ".NaN": "NaN",
    ".NAN": "NaN",
}
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INT_BASES = (("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2))
_INT64 = 1 << 63
_UINT64 = 1 << 64


class _Unsafe(Exception):
    """A file refused by a cap; carries a reason sentence."""


class _Malformed(Exception):
    """Invalid YAML or an invalid compose structure; carries a reason sentence."""


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


# ---------------------------------------------------- numbers and booleans


def _go_int(text):
    """Go's strconv.ParseInt(text, 0, 64), then ParseUint: the integer, or None."""
    sign = text[:1] if text[:1] in "+-" else ""
    digits = text[len(sign) :]
    base = 10
    for prefix, prefix_base in _INT_BASES:
        if digits.startswith(prefix):
            digits, base = digits[2:], prefix_base
            break
    else:
        if len(digits) > 1 and digits.startswith("0"):
            base = 8
    # 64 digits hold any 64-bit integer in any base; longer text is never one (and int() of a long
    # decimal string is quadratic on Python before 3.11).
    if not digits or len(digits) > 64 or not digits.isascii() or not digits.isalnum():
        return None
    try:
        value = int(digits, base)
    except ValueError:
        return None
    value = -value if sign == "-" else value
    if -_INT64 <= value < _INT64 or (not sign and value < _UINT64):
        return value
    return None


def go_float_text(value):
    """A float as Go's fmt prints it (%v: shortest digits, an exponent below 1e-4 or from 1e+06)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign, written, exponent = Decimal(repr(value)).as_tuple()
    # Where the decimal point falls after the first digit written (repr gives the shortest digits).
    point = len(written) + exponent
    digits = "".join("%d" % digit for digit in written).rstrip("0")
    if not digits:
        digits, point = "0", 1
    minus = "-" if sign else ""
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%s%02d" % (minus, mantissa, "-" if power < 0 else "+", abs(power))
    if point <= 0:
        return "%s0.%s%s" % (minus, "0" * -point, digits)
    if point >= len(digits):
        return minus + digits + "0" * (point - len(digits))
    return "%s%s.%s" % (minus, digits[:point], digits[point:])


def compose_scalar(text):
    """The text Compose gives a plain YAML scalar: a number or a boolean as yaml.v3 reads it and
    Go prints it (``1.10`` is ``1.1``, ``0755`` is ``493``, ``0x1F`` is ``31``, ``True`` is
    ``true``); anything else as written."""
    if text in _WORDS:
        return _WORDS[text]
    if text[:1] == ".":
        try:
            return go_float_text(float(text))
        except ValueError:
            return text
    plain = text.replace("_", "")
    number = _go_int(plain)
    if number is not None:
        return "%d" % number
    if _YAML_FLOAT.match(plain):
        value = float(plain)
        # Go refuses a float out of range: the text stays a string.
        if not math.isinf(value):
            return go_float_text(value)
    return text


class _Documents(list):
    """The documents of a file holding more than one (``---``): merged in order, as compose-go
    merges them."""


# --------------------------------------------------------------------- YAML


def _line_of(mark):
    return None if mark is None else mark.line + 1


def make_loader(pure=False):
    """Return ``parse(text)`` for compose YAML; raises ImportError without PyYAML.

    ``parse`` returns the document (None when empty; _Documents when the
    file holds several non-empty ones) or raises _Unsafe or _Malformed.
    Events come from libyaml when PyYAML has it (about thirty times faster),
    else (or with ``pure``) from PyYAML's Python parser; the composer, with
    its caps (counted over all the documents of a file), is always the
    Python one below.
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

        def compose_document(self):
            # Anchors are per document.
            self._sizes = {}
            return Composer.compose_document(self)

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
    Resolver.add_implicit_resolver(_TYPED_TAG, _TYPED, _TYPED_FIRST)

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
                # A key stays as written ("0755:" is "0755"), as yaml.v3 decodes a key into a string.
                key = key_node.value if key_node.tag == _TYPED_TAG else self.construct_object(key_node, deep=deep)
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

    def construct_override(loader, node):
        return _Override(loader._plain(node))

    Constructor.add_constructor(_NULL_TAG, _construct_null)
    Constructor.add_constructor(_TYPED_TAG, _construct_typed)
    Constructor.add_constructor("!reset", _construct_reset)
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
            return _documents(loader)
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


def _documents(loader):
    """The document a loader reads, or _Documents when it holds several non-empty ones."""
    documents = []
    while loader.check_data():
        document = loader.get_data()
        if document is not None:
            documents.append(document)
    if len(documents) > 1:
        return _Documents(documents)
    return documents[0] if documents else None


def _construct_null(loader, node):
    return None


def _construct_reset(loader, node):
    return _RESET


def _construct_typed(loader, node):
    return compose_scalar(node.value)


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


# ------------------------------------------------------------------- files


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


def _read_env_file(path, max_bytes, raw=False):
    """(record, bindings): the file's bindings in order as Compose reads them (parse_compose_env,
    or parse_raw_env for ``format: raw``; see bind_env_file); a file Compose would refuse is
    "malformed", with the line."""
    loaded, text = _load(path, max_bytes)
    record = _file_record(path, loaded)
    if text is None:
        return record, []
    try:
        return record, (parse_raw_env if raw else parse_compose_env)(text)
    except _EnvSyntax as problem:
        record.update(status="malformed", reason="The env file is not valid for Compose (line %d)." % problem.line)
        return record, []
