"""Parse .env text with the python-dotenv 1.x grammar, without interpolation.

Standard library only: this module runs on the audited hosts.

The grammar follows python-dotenv's parser statement by statement (comments,
``export``, unquoted values with inline comments, single and double quotes,
multi-line quoted values, ``KEY`` without ``=``).  ``${VAR}`` and ``$VAR`` stay
literal; nothing is read from the environment.

Line endings are normalised first, as python-dotenv reading a file does
(universal newlines: CRLF and a lone CR become LF, inside quoted values too),
so a multi-line value reads the same from a CRLF and an LF file.  Compose
normalises CRLF the same way.

One difference from python-dotenv, about line numbers only: an unparsable
statement is reported at the line of its first non-blank character
(python-dotenv also counts blank lines in front of it).

Parsing is linear on any input: every regex is anchored and its alternatives
never overlap (no catastrophic backtracking), multi-line quotes are found with
plain searches that never rescan the text, and statements only move forward.
Python 3.8 compatible (remote hosts may run an old interpreter).
"""

import re

# Anchored scanners; each consumes one token of python-dotenv's grammar.
_BLANK = re.compile(r"\s*")
_EXPORT = re.compile(r"export[^\S\r\n]+")
_UNQUOTED_KEY = re.compile(r"[^=#\s]+")
_INLINE_SPACE = re.compile(r"[^\S\r\n]*")
_EQUALS = re.compile(r"=[^\S\r\n]*")
_TO_LINE_END = re.compile(r"[^\r\n]*")
_COMMENT = re.compile(r"[^\S\r\n]*#[^\r\n]*")
_LINE_END = re.compile(r"[^\S\r\n]*(?:\n|\Z)")
_REST_OF_LINE = re.compile(r"[^\r\n]*\n?")
# An unquoted value ends at the first "#" that follows whitespace.
_INLINE_COMMENT = re.compile(r"\s#")

_DOUBLE_QUOTE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_DOUBLE_QUOTE_ESCAPE = re.compile(r"\\([\\'\"abfnrtv])")
_SINGLE_QUOTE_ESCAPE = re.compile(r"\\([\\'])")

# Fast path: one match for a whole one-line statement (with the blank lines
# before it).  Anything else (quoted keys, multi-line or unterminated quotes,
# errors) fails here and goes through _statement.  "export" is matched
# inside a lookahead so it is never given back, as in python-dotenv.
_FAST = re.compile(
    r"""
    (\s*)                                      # 1: blank lines, indentation
    (?=((?:export[^\S\r\n]+)?))\2
    (?:
        \#[^\r\n]*                             # a comment line
    |
        ([^=\#\s'][^=\#\s]*)                  # 3: key
        [^\S\r\n]*
        (?:
            (=[^\S\r\n]*)                      # 4: equals sign
            (?:
                "((?:[^"\\\r\n]|\\[^\r\n])*)"   # 5: double-quoted value
            |
                '((?:[^'\\\r\n]|\\[^\r\n])*)'   # 6: single-quoted value
            |
                ([^'"\s][^\r\n]*)              # 7: unquoted value
            )?
        )?
        (?:[^\S\r\n]*\#[^\r\n]*)?
    )
    [^\S\r\n]*(\n|\Z)                            # 8: line end
    """,
    re.VERBOSE,
)


class _QuoteFinder:
    """Finds closing quotes; the parser only moves forward, so once a search
    fails every later search fails too and the tail is never rescanned."""

    def __init__(self, text, quote, escapable):
        self._text = text
        self._quote = quote
        self._escapable = escapable
        self._dead_from = len(text) + 1

    def find(self, start):
        """Index of the closing quote at or after ``start``, or -1."""
        if start >= self._dead_from:
            return -1
        text = self._text
        pos = text.find(self._quote, start)
        while pos != -1 and self._escapable:
            # A quote is escaped by an odd run of backslashes; the run cannot
            # reach before ``start`` because the opening quote precedes it.
            run = pos
            while run > start and text[run - 1] == "\\":
                run -= 1
            if (pos - run) % 2 == 0:
                break
            pos = text.find(self._quote, pos + 1)
        if pos == -1:
            self._dead_from = start
        return pos


def _strip_unquoted(value):
    if "#" in value:
        comment = _INLINE_COMMENT.search(value)
        if comment:
            value = value[: comment.start()]
    return value.rstrip()


def _unquoted_value(text, pos):
    match = _TO_LINE_END.match(text, pos)
    return _strip_unquoted(match.group()), match.end()


def _statement(text, pos, finders):
    """Parse one statement at ``pos`` (not blank).

    Returns ``(ok, end, key, value)``; when not ok, ``end`` is where python-dotenv
    stops and skips the rest of the line.
    """
    double, single, single_key = finders
    export = _EXPORT.match(text, pos)
    if export:
        pos = export.end()
    char = text[pos : pos + 1]
    if char == "#":
        # A comment (possibly after "export "): no binding, never an error.
        return True, _LINE_END.match(text, _COMMENT.match(text, pos).end()).end(), None, None
    if char == "'":
        close = single_key.find(pos + 1)
        if close <= pos + 1:
            return False, pos, None, None
        key = text[pos + 1 : close]
        pos = close + 1
    else:
        match = _UNQUOTED_KEY.match(text, pos)
        if not match:
            return False, pos, None, None
        key = match.group()
        pos = match.end()
    pos = _INLINE_SPACE.match(text, pos).end()

    value = None
    if text.startswith("=", pos):
        equals = _EQUALS.match(text, pos)
        pos = equals.end()
        char = text[pos : pos + 1]
        if char == "#" and equals.end() - equals.start() > 1:
            value = ""  # "KEY= # note": the rest is a comment
        elif char in ('"', "'"):
            finder = double if char == '"' else single
            close = finder.find(pos + 1)
            if close == -1:
                return False, pos, None, None
            raw = text[pos + 1 : close]
            value = _decode_double(raw) if char == '"' else _decode_single(raw)
            pos = close + 1
        elif char in ("", "\n"):
            value = ""
        else:
            value, pos = _unquoted_value(text, pos)

    comment = _COMMENT.match(text, pos)
    if comment:
        pos = comment.end()
    end = _LINE_END.match(text, pos)
    if not end:
        return False, pos, None, None
    return True, end.end(), key, value


def _decode_double(raw):
    if "\\" not in raw:
        return raw
    return _DOUBLE_QUOTE_ESCAPE.sub(lambda m: _DOUBLE_QUOTE_ESCAPES[m.group(1)], raw)


def _decode_single(raw):
    if "\\" not in raw:
        return raw
    return _SINGLE_QUOTE_ESCAPE.sub(lambda m: m.group(1), raw)


def _fast_value(equals, double, single, unquoted):
    """Value of a statement matched by _FAST, from its groups."""
    if equals is None:
        return None
    if double is not None:
        return _decode_double(double)
    if single is not None:
        return _decode_single(single)
    if unquoted is None:
        return ""
    if unquoted[0] == "#" and len(equals) > 1:
        return ""  # "KEY= # note": the rest is a comment
    return _strip_unquoted(unquoted)


def _normalise_line_endings(text):
    """CRLF and a lone CR become LF, as Python's universal newlines read them."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_dotenv(text):
    """Parse .env text.

    Returns ``{"entries": [{"key", "value", "line"}], "errors": [line, ...]}``:
    every binding in file order (duplicates included, ``value`` None for a bare
    ``KEY``) and the 1-based start lines of unparsable statements.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    text = _normalise_line_endings(text)
    finders = (
        _QuoteFinder(text, '"', True),
        _QuoteFinder(text, "'", True),
        _QuoteFinder(text, "'", False),
    )
    entries = []
    errors = []
    pos = 0
    size = len(text)
    # ``line`` is the line number at offset ``line_pos``.
    line = 1
    line_pos = 0
    fast = _FAST.match
    while pos < size:
        if line_pos != pos:
            line += text.count("\n", line_pos, pos)
            line_pos = pos
        match = fast(text, pos)
        if match:
            blank, key, equals, double, single, unquoted, newline = match.group(1, 3, 4, 5, 6, 7, 8)
            if blank:
                line += blank.count("\n")
            if key is not None:
                value = _fast_value(equals, double, single, unquoted)
                entries.append({"key": key, "value": value, "line": line})
            pos = line_pos = match.end()
            if newline:
                line += 1
            continue
        start = _BLANK.match(text, pos).end()
        if start >= size:
            break
        line += text.count("\n", pos, start)
        line_pos = start
        ok, end, key, value = _statement(text, start, finders)
        if ok:
            if key is not None:
                entries.append({"key": key, "value": value, "line": line})
            pos = end
        else:
            errors.append(line)
            pos = _REST_OF_LINE.match(text, end).end()
    return {"entries": entries, "errors": errors}
