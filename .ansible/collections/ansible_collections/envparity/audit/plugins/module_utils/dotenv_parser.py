"""Parse .env text with the python-dotenv 1.x grammar, without interpolation.

Standard library only: this module runs on the audited hosts.

The grammar follows python-dotenv's parser statement by statement (comments,
``export``, unquoted values with inline comments, single and double quotes,
multi-line quoted values, ``KEY`` without ``=``).  ``${VAR}`` and ``$VAR`` stay
literal; nothing is read from the environment.

Differences from python-dotenv, both about line numbers only:

* an unparsable statement is reported at the line of its first non-blank
  character (python-dotenv also counts blank lines in front of it);
* line numbers stay correct after an unparsable line in a CRLF file
  (python-dotenv drifts by one there).

Every step is a bounded scan or an anchored regex without nested quantifiers,
and searches for closing quotes never rescan text, so parsing is linear.
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
_LINE_END = re.compile(r"[^\S\r\n]*(?:\r\n|\n|\r|\Z)")
_REST_OF_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)?")
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


class _LineCounter:
    """Maps increasing offsets to 1-based line numbers (CRLF, LF, CR)."""

    def __init__(self, text):
        self._text = text
        self._offset = 0
        self._line = 1

    def line_at(self, offset):
        text, start = self._text, self._offset
        # Offsets are statement starts, never inside a CRLF pair, so counting
        # each segment on its own is exact.
        self._line += (
            text.count("\n", start, offset)
            + text.count("\r", start, offset)
            - text.count("\r\n", start, offset)
        )
        self._offset = offset
        return self._line


def _unquoted_value(text, pos):
    match = _TO_LINE_END.match(text, pos)
    value = match.group()
    comment = _INLINE_COMMENT.search(value)
    if comment:
        value = value[: comment.start()]
    return value.rstrip(), match.end()


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
            if char == '"':
                value = _DOUBLE_QUOTE_ESCAPE.sub(lambda m: _DOUBLE_QUOTE_ESCAPES[m.group(1)], raw)
            else:
                value = _SINGLE_QUOTE_ESCAPE.sub(lambda m: m.group(1), raw)
            pos = close + 1
        elif char in ("", "\r", "\n"):
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


def parse_dotenv(text):
    """Parse .env text.

    Returns ``{"entries": [{"key", "value", "line"}], "errors": [line, ...]}``:
    every binding in file order (duplicates included, ``value`` None for a bare
    ``KEY``) and the 1-based start lines of unparsable statements.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    finders = (
        _QuoteFinder(text, '"', True),
        _QuoteFinder(text, "'", True),
        _QuoteFinder(text, "'", False),
    )
    lines = _LineCounter(text)
    entries = []
    errors = []
    pos = 0
    size = len(text)
    while True:
        pos = _BLANK.match(text, pos).end()
        if pos >= size:
            break
        line = lines.line_at(pos)
        ok, end, key, value = _statement(text, pos, finders)
        if ok:
            if key is not None:
                entries.append({"key": key, "value": value, "line": line})
            pos = end
        else:
            errors.append(line)
            pos = _REST_OF_LINE.match(text, end).end()
    return {"entries": entries, "errors": errors}
