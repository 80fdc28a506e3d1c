"""The report's escaping functions, table-driven, and checked with a real CommonMark + GFM tables renderer."""

import html.parser
import random

import pytest
from markdown_it import MarkdownIt

from ansible_collections.envparity.audit.plugins.plugin_utils.markdown_text import (
    code,
    fenced_block,
    html_text,
    text,
    visible,
)

RENDERER = MarkdownIt("commonmark").enable("table")


class Rendered(html.parser.HTMLParser):
    """The tags and the visible text of rendered HTML."""

    def __init__(self, source):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.text = ""
        self.cells = []
        self._in_cell = False
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("td", "th"):
            self.cells.append("")
            self._in_cell = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        self.text += data
        if self._in_cell:
            self.cells[-1] += data


@pytest.mark.parametrize(
    "value, shown",
    [
        ("plain", "plain"),
        ("a\u202eb", "a\\u202eb"),
        ("KEY\u200b", "KEY\\u200b"),
        ("\ufeffBOM", "\\ufeffBOM"),
        ("line\nbreak\r\ttab", "line\\nbreak\\r\\ttab"),
        ("nb\u00a0sp", "nb\\u00a0sp"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("accents é ü 日本", "accents é ü 日本"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_visible_writes_invisible_characters_as_escapes(value, shown):
    assert visible(value) == shown


def test_visible_keeps_what_a_block_needs():
    assert visible("a\n\tb\u202e", keep="\n\t") == "a\n\tb\\u202e"


@pytest.mark.parametrize(
    "value, markdown",
    [
        ("plain", "`plain`"),
        ("a`b", "``a`b``"),
        ("``x```y", "```` ``x```y ````"),
        ("a``b", "```a``b```"),
        ("`start", "`` `start ``"),
        ("end`", "`` end` ``"),
        (" padded ", "`  padded  `"),
        ("   ", "`   `"),
        ("", "` `"),
        ("C:\\path\\n", "`C:\\path\\n`"),
        ("<script>", "`<script>`"),
        ("a|b", "`a|b`"),
    ],
)
def test_code_span_fences_and_pads(value, markdown):
    assert code(value) == markdown


@pytest.mark.parametrize(
    "value, markdown",
    [
        ("a|b", "`a\\|b`"),
        ("a\\|b", "`a\\\\|b`"),
    ],
)
def test_code_span_in_a_table_escapes_pipes(value, markdown):
    assert code(value, table=True) == markdown


@pytest.mark.parametrize(
    "value, markdown",
    [
        ("plain words", "plain words"),
        ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>"),
        ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
        ("![i](http://x)", "\\!\\[i\\](http://x)"),
        ("a\\b", "a\\\\b"),
        ("**b** _i_ ~~s~~ `c` $m$", "\\*\\*b\\*\\* \\_i\\_ \\~\\~s\\~\\~ \\`c\\` \\$m\\$"),
        ("&amp; #", "\\&amp; \\#"),
        ("p|q", "p\\|q"),
        ("snake_case_name", "snake_case_name"),
        ("double__under", "double\\_\\_under"),
        ("_lead trail_ a_ _b *_c_*", "\\_lead trail\\_ a\\_ \\_b \\*\\_c\\_\\*"),
        ("x\u202e", "x\\\\u202e"),
        (" edges ", "&#32;edges&#32;"),
    ],
)
def test_text_escapes_every_markup_character(value, markdown):
    assert text(value) == markdown


HOSTILE = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "![i](http://x)",
    "<project>",
    "a`b``c```d",
    "`",
    "``",
    " ` ",
    "a|b||c",
    "back\\slash\\\\double\\|pipe",
    "trailing\\",
    "bidi\u202eevil",
    "zero\u200bwidth",
    "multi\nline\r\n",
    "&lt;entity&gt; &#106;",
    "<https://autolink.example>",
    "**bold** _em_ ~~strike~~",
    "# heading",
    "snake_case __dunder__ _em_ a_*b*_c __init__.py",
    "  two spaces  ",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("escape", [text, lambda v: code(v, table=True)], ids=["text", "code"])
def test_a_hostile_value_renders_as_itself_in_a_table_cell(value, escape):
    source = "| a | b |\n|---|---|\n| %s | z |\n" % escape(value)
    rendered = Rendered(RENDERER.render(source))
    assert [tag for tag in rendered.tags if tag not in ("table", "thead", "tbody", "tr", "th", "td", "code")] == []
    assert rendered.cells == ["a", "b", visible(value), "z"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("escape", [text, code], ids=["text", "code"])
def test_a_hostile_value_renders_as_itself_inline(value, escape):
    rendered = Rendered(RENDERER.render("1. before %s after\n" % escape(value)))
    assert [tag for tag in rendered.tags if tag not in ("ol", "li", "code")] == []
    assert rendered.text.strip() == "before %s after" % visible(value)


@pytest.mark.parametrize(
    "body",
    ["-a\n+b", "-```\n+````", "```diff\n~~~\n</details>", "x\u202ey\n\tz"],
)
def test_a_fenced_block_is_never_closed_by_its_content(body):
    rendered = Rendered(RENDERER.render(fenced_block(body, "diff") + "\n\nafter\n"))
    assert rendered.tags == ["pre", "code", "p"]
    assert rendered.text == visible(body, keep="\n\t") + "\n\nafter\n"


def test_html_text_is_inert_inside_raw_html():
    assert html_text('<a href="x">&\u202e') == "&lt;a href=&quot;x&quot;&gt;&amp;\\u202e"
    source = "<details><summary><code>%s</code></summary>\n\n</details>\n" % html_text("<img src=x onerror=alert(1)>")
    rendered = Rendered(RENDERER.render(source))
    assert rendered.tags == ["details", "summary", "code"]
    assert rendered.text.strip() == "<img src=x onerror=alert(1)>"


def random_values(count, seed=20261207):
    """Short strings over an alphabet of markup characters, letters, spaces and invisibles."""
    generator = random.Random(seed)
    alphabet = "a1_ *`[]()<>!|\\&#;~$:/\n\u202e\u200b"
    return ["".join(generator.choice(alphabet) for _ in range(generator.randint(1, 10))) for _ in range(count)]


def test_random_markup_renders_as_itself_in_cells_and_lines():
    for value in random_values(400):
        for escape in (text, lambda v: code(v, table=True)):
            rendered = Rendered(RENDERER.render("| a | b |\n|---|---|\n| %s | z |\n" % escape(value)))
            assert set(rendered.tags) <= {"table", "thead", "tbody", "tr", "th", "td", "code"}, value
            assert rendered.cells == ["a", "b", visible(value), "z"], value
        for escape in (text, code):
            rendered = Rendered(RENDERER.render("1. x %s y\n" % escape(value)))
            assert set(rendered.tags) <= {"ol", "li", "code"}, value
            assert rendered.text.strip() == "x %s y" % visible(value), value
