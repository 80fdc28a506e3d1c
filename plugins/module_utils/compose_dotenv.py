"""Env files as Docker Compose reads them (compose-go's dotenv grammar), for the compose reader.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Compose reads a stack's env file, an included project's and a service's ``env_file`` with its own
grammar, which differs from python-dotenv's (the env area's parser) in a few places:

* ``KEY: value`` binds as ``KEY=value`` does; a line with a key alone (``KEY``) takes the
  variable from the environment Compose looks variables up in (nothing, in a clean environment);
* an unquoted value runs to the end of the line, cut at the first `` #`` (a space, then ``#``),
  trailing blanks removed; it is interpolated;
* in double quotes, ``\\n``, ``\\r``, ``\\t``, ``\\a``, ``\\b``, ``\\f``, ``\\v``, ``\\\\`` and ``\\"``
  are escapes, ``\\$`` is a literal ``$`` (not interpolated), any other backslash stays; the value is
  interpolated and may span lines;
* in single quotes only ``\\'`` is an escape; the value is taken literally (no interpolation);
* text after a closing quote is read as the next statement.

A service's ``env_file`` entry with ``format: raw`` is read by parse_raw_env instead: one
``KEY=VALUE`` a line (leading blanks, blank lines and ``#`` comments skipped), the value exactly as
written, never interpolated.

parse_compose_env gives the bindings in order as ``{"key", "value", "literal"}``: ``value`` None
for a key alone, else the text to interpolate (``literal``: to take as it is).  A statement
Compose refuses raises _EnvSyntax with its line.  The scan is linear: every position is looked at
a bounded number of times.
"""

import re

_BLANKS = frozenset("\t\v\f\r \x85\xa0")
_KEY_PUNCTUATION = frozenset("_.-[]")
_DOUBLE_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    # A literal "$": "$$" is how interpolation writes it.
    "$": "$$",
}
_DOUBLE_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_EXPORT = re.compile(r"export[\t\v\f\r \x85\xa0]+")


class _EnvSyntax(Exception):
    """A statement Compose refuses; carries its 1-based line."""

    def __init__(self, line):
        super().__init__(line)
        self.line = line


def _line_at(text, pos):
    return text.count("\n", 0, pos) + 1


def _skip_blanks(text, pos):
    while pos < len(text) and text[pos] in _BLANKS:
        pos += 1
    return pos


def _key(text, pos):
    """(key, separator or "", position after it) of the statement at pos."""
    start = pos
    while pos < len(text):
        char = text[pos]
        if char in "=:\n":
            return text[start:pos].rstrip(), char, pos + 1
        if not (char in _BLANKS or char in _KEY_PUNCTUATION or char.isalnum()):
            raise _EnvSyntax(_line_at(text, pos))
        pos += 1
    return text[start:pos].rstrip(), "", pos


def _quoted(text, pos, quote):
    """(raw value with its escaped quotes resolved, position after the closing quote)."""
    chars = []
    escaped = False
    for index in range(pos + 1, len(text)):
        char = text[index]
        if char != quote:
            if not escaped and char == "\\":
                escaped = True
                continue
            if escaped:
                escaped = False
                chars.append("\\")
            chars.append(char)
            continue
        if escaped:
            escaped = False
            chars.append(char)
            continue
        return "".join(chars), index + 1
    raise _EnvSyntax(_line_at(text, pos))


def _unescape_double(raw):
    return _DOUBLE_ESCAPE.sub(lambda match: _DOUBLE_ESCAPES.get(match.group(1), match.group(0)), raw)


def parse_compose_env(text):
    """[{"key", "value", "literal"}] of an env file's text, as Compose reads it; raises _EnvSyntax."""
    if text.startswith("\ufeff"):
        text = text[1:]
    entries = []
    pos = 0
    size = len(text)
    while True:
        while pos < size and text[pos].isspace():
            pos += 1
        if pos >= size:
            return entries
        if text[pos] == "#":
            end = text.find("\n", pos)
            pos = size if end == -1 else end
            continue
        export = _EXPORT.match(text, pos)
        if export:
            pos = export.end()
        key, separator, pos = _key(text, pos)
        if " " in key:
            raise _EnvSyntax(_line_at(text, pos - 1))
        if separator in ("\n", ""):
            entries.append({"key": key, "value": None, "literal": False})
            continue
        pos = _skip_blanks(text, pos)
        quote = text[pos : pos + 1]
        if quote in ("'", '"'):
            raw, pos = _quoted(text, pos, quote)
            literal = quote == "'"
            value = raw if literal else _unescape_double(raw)
        else:
            end = text.find("\n", pos)
            end = size if end == -1 else end
            value = text[pos:end].split(" #", 1)[0].rstrip()
            literal = False
            pos = end
        entries.append({"key": key, "value": value, "literal": literal})


def parse_raw_env(text):
    """[{"key", "value", "literal"}] of an env file in Compose's ``raw`` format; raises _EnvSyntax
    for a key that is empty or holds a blank."""
    if text.startswith("\ufeff"):
        text = text[1:]
    entries = []
    for number, written in enumerate(text.split("\n"), 1):
        statement = (written[:-1] if written.endswith("\r") else written).lstrip()
        if not statement or statement.startswith("#"):
            continue
        key, separator, value = statement.partition("=")
        if not separator:
            continue
        if not key or any(char.isspace() for char in key):
            raise _EnvSyntax(number)
        entries.append({"key": key, "value": value, "literal": True})
    return entries
