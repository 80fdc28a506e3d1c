"""Env files as Compose reads them; the corpus projects env_file_grammar and env_file_quirks check
the same against the real Compose (test_compose_differential.py)."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose_dotenv import (
    _EnvSyntax,
    parse_compose_env,
    parse_raw_env,
)
from tests.unit.plugins.module_utils.compose_helpers import collect_paths, write


def bindings(text):
    return [(entry["key"], entry["value"], entry["literal"]) for entry in parse_compose_env(text)]


GRAMMAR = [
    ("A=1\n", [("A", "1", False)]),
    ("A: 1\nB : 2\n", [("A", "1", False), ("B", "2", False)]),
    ("export A=1\nexportB=2\n", [("A", "1", False), ("exportB", "2", False)]),
    ("A=plain value # comment\n", [("A", "plain value", False)]),
    ("A=value#not-a-comment\n", [("A", "value#not-a-comment", False)]),
    ("A=a\\tb\n", [("A", "a\\tb", False)]),
    ('A="a\\tb\\n\\"c\\" \\$X \\q"\n', [("A", 'a\tb\n"c" $$X \\q', False)]),
    ("A='a\\'b \\\\ \\n $X'\n", [("A", "a'b \\\\ \\n $X", True)]),
    ('A="one\ntwo"\n', [("A", "one\ntwo", False)]),
    ("A='q' B=2\n", [("A", "q", True), ("B", "2", False)]),
    ("KEY\n", [("KEY", None, False)]),
    ("LAST", [("LAST", None, False)]),
    ("=2\n", [("", "2", False)]),
    ("# only a comment\n\n   \n", []),
    ("\ufeffA=1\n", [("A", "1", False)]),
    ("K.DOT=1\nK-DASH=2\nK_[0]=3\n", [("K.DOT", "1", False), ("K-DASH", "2", False), ("K_[0]", "3", False)]),
]


@pytest.mark.parametrize(("text", "expected"), GRAMMAR)
def test_grammar(text, expected):
    assert bindings(text) == expected


@pytest.mark.parametrize(
    ("text", "line"),
    [("OK=1\nK@Y=1\n", 2), ("BAD KEY=1\n", 1), ('A=1\nU="open\n', 2), ("S='open", 1)],
    ids=["character", "space", "unterminated-double", "unterminated-single"],
)
def test_statements_compose_refuses(text, line):
    with pytest.raises(_EnvSyntax) as caught:
        parse_compose_env(text)
    assert caught.value.line == line


def test_a_refused_env_file_fails_the_stack_without_quoting_it(tmp_path):
    compose = write(tmp_path / "compose.yml", "services:\n  web:\n    image: app:${TAG}\n")
    env = write(tmp_path / ".env", "TAG=1\nS3cr3t@Value=x\n")
    result = collect_paths(tmp_path, [compose], env_file=str(env))
    assert result["status"] == "failed"
    assert result["env_file"]["status"] == "malformed"
    assert "(line 2)" in result["env_file"]["reason"]
    assert "S3cr3t" not in repr(result)


def test_long_hostile_lines_are_read_in_one_pass():
    # Quadratic scanning would not finish on these (each is read once, whatever its length).
    text = 'A="' + "\\x" * 200000 + '"\n' + "B=" + " #" * 200000 + "\n" + "#" * 400000
    entries = parse_compose_env(text)
    assert [(entry["key"], len(entry["value"])) for entry in entries] == [("A", 400000), ("B", 1)]


def test_raw_format_takes_values_as_written():
    # What Compose v2.40 gave for `format: raw` (the corpus project service_env_files checks it too).
    text = '# c\n\nK=a b  \n  K2=x\n\tK3="q $X"\nK4=\nNOEQ\nK5=a=b # no comment\r\n'
    assert [(entry["key"], entry["value"], entry["literal"]) for entry in parse_raw_env(text)] == [
        ("K", "a b  ", True),
        ("K2", "x", True),
        ("K3", '"q $X"', True),
        ("K4", "", True),
        ("K5", "a=b # no comment", True),
    ]


@pytest.mark.parametrize(("text", "line"), [("A=1\n =v\n", 2), ("export E=1\n", 1), ("SP =x\n", 1)])
def test_raw_format_refuses_what_compose_refuses(text, line):
    with pytest.raises(_EnvSyntax) as caught:
        parse_raw_env(text)
    assert caught.value.line == line
