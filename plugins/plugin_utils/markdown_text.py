"""Escaping for the Markdown report: every value from a host or an inventory is text, never markup.

Each function fits one place in the report: inline text, a code span, a fenced block, raw HTML.
Code spans in a table cell also need their pipes escaped (`table=True`). Invisible and bidi
characters are shown as escapes first, so two keys that look identical read differently.
Pure Python; no Ansible imports.
"""

import html
import re

# Characters that start or end an inline construct (escape, code, emphasis, link, image, raw HTML,
# entity, strikethrough, math) or close a heading; each is shown as itself when backslash-escaped.
_TEXT_ESCAPES = str.maketrans({char: "\\" + char for char in "\\`*[]<>&|~#$!"})
# An underscore between two letters or digits can neither open nor close emphasis: snake_case stays
# readable in the Markdown source; any other underscore is escaped.
_LOOSE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
_EDGE_SPACES = re.compile(r"^ +| +$")
_BACKTICK_RUNS = re.compile(r"`+")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char):
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return "\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code


def visible(text, keep=""):
    """The text with invisible, control and bidi characters written as escapes (e.g. '\\u202e').

    Python's "printable" is exactly that set: every character but Unicode's Other (controls,
    format such as zero-width and bidi, surrogates, private use, unassigned) and Separator
    categories, except the ASCII space."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape_char(c) for c in text)


def text(value):
    """Inline Markdown text that renders as exactly the value (made visible); no markup survives.

    Backslash escapes work in table cells too (GFM: an escaped pipe does not split the cell)."""
    escaped = visible(value).translate(_TEXT_ESCAPES)
    if "_" in escaped:
        escaped = _LOOSE_UNDERSCORE.sub(r"\\_", escaped)
    if escaped[:1] != " " and escaped[-1:] != " ":
        return escaped
    # a table cell, a heading or a line would drop spaces at the edges: keep them as references
    return _EDGE_SPACES.sub(lambda match: "&#32;" * len(match.group()), escaped)


def _longest_backtick_run(content):
    if "`" not in content:
        return 0
    return max(len(run) for run in _BACKTICK_RUNS.findall(content))


def code(value, table=False):
    """A code span showing the value as it is (backslashes literal), made visible.

    The fence is one backtick longer than any run inside; content that starts or ends with a
    backtick or a space is padded with one space each side, which CommonMark strips again."""
    content = visible(value)
    if table:
        # GFM splits cells before inline parsing, even inside code spans; '\\|' is kept as '|'.
        content = content.replace("|", "\\|")
    if not content:
        return "` `"
    fence = "`" * (_longest_backtick_run(content) + 1)
    if content.strip(" ") and (content[0] in "` " or content[-1] in "` "):
        content = " %s " % content
    return "%s%s%s" % (fence, content, fence)


def fenced_block(body, info=""):
    """A fenced code block whose fence is longer than any backtick run inside (at least three).

    Line breaks and tabs stay; other invisible characters are made visible."""
    content = visible(body, keep="\n\t")
    fence = "`" * max(3, _longest_backtick_run(content) + 1)
    return "%s%s\n%s\n%s" % (fence, info, content, fence)


def html_text(value):
    """Text inside raw HTML (e.g. <summary>), where Markdown is not parsed: HTML-escaped, made visible."""
    return html.escape(visible(value), quote=True)
