"""Grammar of the .env parser, construct by construct."""

import random
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.dotenv_parser import parse_dotenv


def entries(text):
    return [(e["key"], e["value"], e["line"]) for e in parse_dotenv(text)["entries"]]


def errors(text):
    return parse_dotenv(text)["errors"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # blank lines and comments
        ("", []),
        ("\n\n  \n\t\n", []),
        ("# comment\n", []),
        ("   # indented comment\n", []),
        ("# A=1\nB=2\n", [("B", "2", 2)]),
        # unquoted values
        ("A=1", [("A", "1", 1)]),
        ("A=hello world\n", [("A", "hello world", 1)]),
        ("A=  padded  \n", [("A", "padded", 1)]),
        ("A=1 # comment\n", [("A", "1", 1)]),
        ("A=1\t# tab then comment\n", [("A", "1", 1)]),
        ("A=1#not-a-comment\n", [("A", "1#not-a-comment", 1)]),
        ("A=#value\n", [("A", "#value", 1)]),
        ("A= # only a comment\n", [("A", "", 1)]),
        ("A=a # b # c\n", [("A", "a", 1)]),
        ("A=b=c\n", [("A", "b=c", 1)]),
        ("A=x'y\"z\n", [("A", "x'y\"z", 1)]),
        # empty values and bare keys
        ("A=\n", [("A", "", 1)]),
        ("A=", [("A", "", 1)]),
        ("A=   \n", [("A", "", 1)]),
        ("A\n", [("A", None, 1)]),
        ("A # comment\n", [("A", None, 1)]),
        ("A#B=1\n", [("A", None, 1)]),
        # spacing around the key and the equals sign
        ("  A  =  1  \n", [("A", "1", 1)]),
        ("\tA\t=\t1\t\n", [("A", "1", 1)]),
        # export
        ("export A=1\n", [("A", "1", 1)]),
        ("export\tA=1\n", [("A", "1", 1)]),
        ("export A\n", [("A", None, 1)]),
        ("export\n", [("export", None, 1)]),
        ("export=1\n", [("export", "1", 1)]),
        ("exportA=1\n", [("exportA", "1", 1)]),
        ("export # comment\n", []),
        # double quotes and their escapes
        ('A="x y"\n', [("A", "x y", 1)]),
        ('A=""\n', [("A", "", 1)]),
        ('A="  x  "\n', [("A", "  x  ", 1)]),
        ('A="a # b"\n', [("A", "a # b", 1)]),
        ('A="x" # comment\n', [("A", "x", 1)]),
        ('A="x"# comment\n', [("A", "x", 1)]),
        (r'A="a\nb\tc"', [("A", "a\nb\tc", 1)]),
        (r'A="say \"hi\""', [("A", 'say "hi"', 1)]),
        (r'A="a\\b"', [("A", "a\\b", 1)]),
        (r'A="\\n"', [("A", "\\n", 1)]),
        (r'A="\a\b\f\r\v"', [("A", "\a\b\f\r\v", 1)]),
        (r'A="it\'s"', [("A", "it's", 1)]),
        (r'A="\x41\u0041\d"', [("A", r"\x41\u0041\d", 1)]),
        # single quotes: literal except \' and \\
        ("A='x y'\n", [("A", "x y", 1)]),
        ("A=''\n", [("A", "", 1)]),
        (r"A='a\nb'", [("A", r"a\nb", 1)]),
        (r"A='it\'s'", [("A", "it's", 1)]),
        (r"A='a\\b'", [("A", "a\\b", 1)]),
        ("A='a # b' # c\n", [("A", "a # b", 1)]),
        # quoted keys
        ("'my key'=1\n", [("my key", "1", 1)]),
        ("'a=b'=c\n", [("a=b", "c", 1)]),
        ('"k"=1\n', [('"k"', "1", 1)]),
        # multi-line values keep the line where they start
        ('A="line1\nline2"\nB=2\n', [("A", "line1\nline2", 1), ("B", "2", 3)]),
        ("A='line1\nline2\nline3'\nB=2\n", [("A", "line1\nline2\nline3", 1), ("B", "2", 4)]),
        ('\n\nA="x\n\ny"\n\nB=1\n', [("A", "x\n\ny", 3), ("B", "1", 7)]),
        ("'multi\nline'=v\nB=1\n", [("multi\nline", "v", 1), ("B", "1", 3)]),
        # interpolation syntax is kept literally
        ("A=${HOME}\n", [("A", "${HOME}", 1)]),
        ("A=$HOME/x\n", [("A", "$HOME/x", 1)]),
        ('A="${HOME:-/root}"\n', [("A", "${HOME:-/root}", 1)]),
        ("A='${HOME}'\n", [("A", "${HOME}", 1)]),
        # unicode and odd whitespace
        ("CLÉ=välue 🚀\n", [("CLÉ", "välue 🚀", 1)]),
        ("A=a\u00a0b\n", [("A", "a\u00a0b", 1)]),
        ("A=a\u2028b\nB=2\n", [("A", "a\u2028b", 1), ("B", "2", 2)]),
        # a UTF-8 BOM is ignored
        ("\ufeffA=1\n", [("A", "1", 1)]),
    ],
)
def test_grammar(text, expected):
    assert entries(text) == expected
    assert errors(text) == []


@pytest.mark.parametrize(
    ("text", "expected_errors", "expected_entries"),
    [
        ("=1\n", [1], []),
        ("two words\n", [1], []),
        ("A=1\nB C=2\nD=3\n", [2], [("A", "1", 1), ("D", "3", 3)]),
        ("A='x' y\n", [1], []),
        ('A="x"y\n', [1], []),
        ("''=1\n", [1], []),
        ("export =1\n", [1], []),
        ("export \n", [1], []),
        # an unterminated quote spoils its own line only
        ('A="open\nB=2\n', [1], [("B", "2", 2)]),
        ("A='open\nB=2\n", [1], [("B", "2", 2)]),
        ("'open\nB=2\n", [1], [("B", "2", 2)]),
        # junk after a multi-line value: reported at the start line
        ('A="x\ny" junk\nB=2\n', [1], [("B", "2", 3)]),
        # blank lines before a bad statement do not shift its line
        ("A=1\n\n\nbad line\nB=2\n", [4], [("A", "1", 1), ("B", "2", 5)]),
        ("  \n  bad line\n", [2], []),
        # several errors, good lines in between
        ("a b\nA=1\nc d\ne f\nB=2\n", [1, 3, 4], [("A", "1", 2), ("B", "2", 5)]),
    ],
)
def test_errors(text, expected_errors, expected_entries):
    result = parse_dotenv(text)
    assert result["errors"] == expected_errors
    assert entries(text) == expected_entries


def test_errors_never_carry_content():
    result = parse_dotenv("s3cr3t-canary junk\n")
    assert result == {"entries": [], "errors": [1]}


def test_duplicates_are_all_kept_in_file_order():
    text = "A=1\nB=x\nA=2\nexport A=3\n"
    assert entries(text) == [("A", "1", 1), ("B", "x", 2), ("A", "2", 3), ("A", "3", 4)]


@pytest.mark.parametrize(
    ("text", "expected_entries", "expected_errors"),
    [
        ("A=1\r\nB=2\r\n", [("A", "1", 1), ("B", "2", 2)], []),
        ("A=1\r\n\r\nB=2\r\n", [("A", "1", 1), ("B", "2", 3)], []),
        ("A=1 # c\r\nB='x'\r\n", [("A", "1", 1), ("B", "x", 2)], []),
        # line endings inside quoted values are normalised, as python-dotenv reading a file does
        ('A="x\r\ny"\r\nB=2\r\n', [("A", "x\ny", 1), ("B", "2", 3)], []),
        ("A='x\r\ny'\r\nB=2\r\n", [("A", "x\ny", 1), ("B", "2", 3)], []),
        ('A="x\ry\r\r"\rB=2\r', [("A", "x\ny\n\n", 1), ("B", "2", 5)], []),
        # an escaped \r is a value's own character, not a line ending
        ('A="x\\r\\ny"\r\n', [("A", "x\r\ny", 1)], []),
        ("A=1\r\nbad line\r\nB=2\r\nworse line\r\nC=3\r\n", [("A", "1", 1), ("B", "2", 3), ("C", "3", 5)], [2, 4]),
        # old Mac line endings
        ("A=1\rbad line\rB=2\r", [("A", "1", 1), ("B", "2", 3)], [2]),
    ],
)
def test_line_endings(text, expected_entries, expected_errors):
    assert entries(text) == expected_entries
    assert errors(text) == expected_errors


@pytest.mark.parametrize(
    "text",
    ["A=${CANARY_VAR}\n", "A=$CANARY_VAR\n", 'A="${CANARY_VAR}"\n', "A='${CANARY_VAR}'\n", "A=${CANARY_VAR:-x}\n"],
)
def test_variables_are_never_interpolated(monkeypatch, text):
    monkeypatch.setenv("CANARY_VAR", "from-the-environment")
    value = parse_dotenv(text)["entries"][0]["value"]
    assert "CANARY_VAR" in value
    assert "from-the-environment" not in value


MIB = 1 << 20


def _random_garbage(size):
    rng = random.Random(20240601)
    alphabet = "abcXYZ019 =#'\"\\$\t\n\r{}-_.:/@é\u2028\x00"
    return "".join(rng.choice(alphabet) for _ in range(size))


# Inputs that would be quadratic for a naive parser (rescanning for a closing
# quote from every line) or catastrophic for a backtracking regex.
ADVERSARIAL = {
    "garbage": _random_garbage(MIB),
    "double_quote_lines": 'A="x\n' * (MIB // 5),
    "single_quote_lines": "A='x\n" * (MIB // 5),
    "quoted_key_lines": "'k\n" * (MIB // 3),
    "unterminated_quote_then_lines": 'A="open\n' + "B=1\n" * (MIB // 4),
    "escaped_quote_lines": 'A="\\"\n' * (MIB // 6),
    "backslash_run": 'A="' + "\\" * MIB,
    "escaped_quotes": 'A="' + '\\"' * (MIB // 2),
    "spaces_without_comment": "A=x" + " " * MIB + "y",
    "space_hash_pairs": "A=x" + " #" * (MIB // 2),
    "long_key": "K" * MIB,
    "errors_every_line": "a b\n" * (MIB // 4),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_linear_time_on_hostile_input(name):
    text = ADVERSARIAL[name]
    start = time.perf_counter()
    parse_dotenv(text)
    elapsed = time.perf_counter() - start
    # Linear parsing takes well under a second on 1 MiB; a quadratic one takes minutes. The
    # bound tells those apart with room for a loaded machine (this is no speed measurement).
    assert elapsed < 15.0, "%s took %.2fs" % (name, elapsed)


def test_garbage_yields_line_numbers_only():
    result = parse_dotenv(ADVERSARIAL["garbage"])
    assert all(isinstance(line, int) and line >= 1 for line in result["errors"])
    assert result["errors"] == sorted(result["errors"])
