"""Compose's variable interpolation, with secret substitutions tracked.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Interpolation follows Compose: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``, ``${VAR:+alt}``,
``${VAR+alt}``, nested operands, ``$$`` for ``$``; a ``$`` not followed by a
name or ``{`` stays as it is.  Each file is interpolated (values only, not
keys) before the files are merged.  An unset variable becomes "" (Compose
warns); a required one makes the stack "failed", naming the variable (never
a value or the error text); a malformed ``${...}`` makes the file
"malformed".  A bare ``KEY`` line in the env file leaves KEY unset.  Values
in the env file (unquoted and double-quoted ones) are themselves interpolated
from the lines above them, as Compose reads the file (bind_env_file); a value
built from a secret variable is secret too.

A string that received a secret variable's value (a variable describe_value
calls secret) is a _Tainted string: it carries that value only towards
describe_value; everywhere else its display, with ``***`` in the secret's
place, is shown (_displayed).
"""

import re

from ansible_collections.envparity.audit.plugins.module_utils.compose_load import _Malformed, _Override
from ansible_collections.envparity.audit.plugins.module_utils.redact import MASK, describe_value, looks_like_token

# ${A:-${B:-${C...}}}: deeper nesting is refused as malformed.
MAX_TEMPLATE_NESTING = 16

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_BRACED = re.compile(r"([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-?+])(.*))?\Z", re.DOTALL)


class _Required(Exception):
    """${VAR:?err} or ${VAR?err} with VAR unset (or empty)."""

    def __init__(self, name, empty):
        super().__init__(name)
        self.name = name
        self.empty = empty


class _BadTemplate(Exception):
    """A "${" without a valid name or closing brace."""


class _Tainted(str):
    """A string that received a secret variable's value.

    ``display`` is the same text with ``***`` where each secret went;
    ``secrets`` are the values substituted.
    """


def _tainted(real, display, secrets):
    if not secrets:
        return real
    text = _Tainted(real)
    text.display = display
    text.secrets = tuple(secrets)
    return text


class _Interpolator:
    """Compose's variable substitution from one env file's variables."""

    def __init__(self, variables, hmac_key):
        self.values = {}
        self.hmac_key = hmac_key
        # Display of each secret variable's value ("***", or a URL with its
        # password masked), and of each value built from one.
        self.shown = {}
        # Names bound by an including project: its own env files do not rebind them.
        self.outer = frozenset()
        for name, value in variables.items():
            self._bind(name, value, value, ())

    def _bind(self, name, value, display, secrets):
        self.values[name] = value
        self.shown.pop(name, None)
        if value:
            record = describe_value(name, value, self.hmac_key)
            if record["secret"]:
                shown = record["display"]
                self.shown[name] = shown if shown and value not in shown else MASK
            elif secrets:
                self.shown[name] = display

    def child(self, precedence=True):
        """An interpolator that starts from these variables: an included project's, where they
        take precedence over its own env files (as compose-go's include merges them), or (not
        precedence) a service's env files', which they only stand behind."""
        child = _Interpolator({}, self.hmac_key)
        child.values = dict(self.values)
        child.shown = dict(self.shown)
        child.outer = frozenset(self.values) if precedence else frozenset()
        return child

    def bind_env_file(self, entries):
        """Bind an env file's entries in order, as Compose reads the file: a value (unless
        single-quoted) is interpolated from the variables bound so far; a bare ``KEY`` leaves KEY
        unset.  Raises _Required and _BadTemplate."""
        for entry in entries:
            name, value = entry["key"], entry["value"]
            if name in self.outer:
                continue
            if value is None:
                self.values.pop(name, None)
                self.shown.pop(name, None)
            elif entry.get("literal"):
                self._bind(name, value, value, ())
            else:
                self._bind(name, *self.expand(value))

    def variable(self, name):
        """(value, display, secrets) of a variable that is set."""
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
                    piece = self.variable(name) if name in self.values else ("", "", ())
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
            return self.variable(name) if is_set else ("", "", ())
        present = non_empty if operator.startswith(":") else is_set
        kind = operator[-1]
        if kind == "-":
            return self.variable(name) if present else self.expand(operand, depth + 1)
        if kind == "?":
            if present:
                return self.variable(name)
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


def _displayed(node):
    """The tree as it may be shown: secret substitutions replaced by ***."""
    if isinstance(node, _Tainted):
        return node.display
    if isinstance(node, dict):
        return {_displayed(key): _displayed(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_displayed(value) for value in node]
    return node


def _required_reason(problem):
    name = problem.name if not looks_like_token(problem.name) else "<redacted>"
    if problem.empty:
        return "required variable %s is empty" % name
    return "required variable %s is not set" % name


def bind_env_file(interpolator, record, entries):
    """Bind an env file's entries (bind_env_file); the reason the file is not usable, or None.

    A malformed ``${...}`` makes the file's record "malformed"; a required variable is named."""
    try:
        interpolator.bind_env_file(entries)
    except _BadTemplate:
        record.update(
            status="malformed",
            reason='Invalid interpolation syntax (a "${" without a valid variable '
            "name or closing brace) in the env file.",
        )
        return "The env file %s is not usable (malformed)." % record["path"]
    except _Required as problem:
        return "The env file %s is not usable (%s)." % (record["path"], _required_reason(problem))
    return None
