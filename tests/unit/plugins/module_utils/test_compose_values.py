"""Compose's forms of scalar attributes: each expected value is what `docker compose config`
(Compose v2.40.3) printed for the written one; the corpus projects command_lines and
durations_and_sizes check the same against the binary itself (test_compose_differential.py)."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose_values import (
    command_words,
    cpus_text,
    duration_text,
    flag_text,
    memory_text,
)

COMMANDS = [
    ("echo a && echo b", ["echo", "a"]),
    ("echo a; echo b", ["echo", "a"]),
    ("a|b", ["a"]),
    ("a 2>&1", ["a"]),
    ("echo `date` x", ["echo", "`date`", "x"]),
    ("echo `a b` c", ["echo", "`a b`", "c"]),
    ('echo "a\\"b" \'c\\d\' e\\ f', ["echo", 'a"b', "c\\d", "e f"]),
    ('echo a\\\\b "x\\\\y" "x\\ny"', ["echo", "a\\b", "x\\y", "xny"]),
    ("echo \"\" '' x", ["echo", "", "", "x"]),
    ("  lead  trail  ", ["lead", "trail"]),
    ("echo # comment", ["echo", "#", "comment"]),
    ("echo $(date)", ["echo", "$(date)"]),
    ("a\\\n  b", ["a\n", "b"]),
    ("a\tb\nc", ["a", "b", "c"]),
    ("echo \"a\"b'c'd", ["echo", "abcd"]),
    ("", []),
]

# Compose refuses these ("invalid command line string"): they stay as written.
INVALID_COMMANDS = ["echo (x)", "echo )", "echo a)", "echo 'unterminated", 'echo "open', "trailing\\"]


@pytest.mark.parametrize(("written", "words"), COMMANDS)
def test_command_words(written, words):
    assert command_words(written) == words


@pytest.mark.parametrize("written", INVALID_COMMANDS)
def test_invalid_command_lines_stay_as_written(written):
    assert command_words(written) == written


def test_command_lists_are_kept():
    assert command_words(["sh", "-c", "a && b"]) == ["sh", "-c", "a && b"]
    assert command_words(None) is None


DURATIONS = [
    ("90s", "1m30s"),
    ("1h", "1h0m0s"),
    ("1.5m", "1m30s"),
    ("500ms", "500ms"),
    ("1h30m", "1h30m0s"),
    ("2h0m5s", "2h0m5s"),
    ("0s", "0s"),
    ("0", "0s"),
    ("100us", "100\u00b5s"),
    ("1m0.5s", "1m0.5s"),
    ("1.5s", "1.5s"),
    ("1500ms", "1.5s"),
    ("10ns", "10ns"),
    ("-5s", "-5s"),
    ("soon", "soon"),
    ("5", "5"),
    ("", ""),
]


@pytest.mark.parametrize(("written", "printed"), DURATIONS)
def test_durations(written, printed):
    assert duration_text(written) == printed


SIZES = [
    ("512m", "536870912"),
    ("512M", "536870912"),
    ("256mb", "268435456"),
    ("1.5g", "1610612736"),
    ("1024k", "1048576"),
    ("100kb", "102400"),
    ("2 m", "2097152"),
    ("10B", "10"),
    ("100", "100"),
    ("2GiB", "2147483648"),
    ("lots", "lots"),
    ("1.2.3m", "1.2.3m"),
]


@pytest.mark.parametrize(("written", "printed"), SIZES)
def test_memory(written, printed):
    assert memory_text(written) == printed


CPUS = [("0.50", "0.5"), ("0.1", "0.1"), ("0.33", "0.33"), ("1.123456789", "1.1234568"), ("2", "2"), ("x", "x")]


@pytest.mark.parametrize(("written", "printed"), CPUS)
def test_cpus(written, printed):
    assert cpus_text(written) == printed


FLAGS = [
    ("true", "true"),
    ("TRUE", "true"),
    ("yes", "true"),
    ("Yes", "true"),
    ("y", "true"),
    ("on", "true"),
    ("false", None),
    ("False", None),
    ("NO", None),
    ("off", None),
    ("n", None),
    # Compose refuses these ("invalid boolean"): as written.
    ("1", "1"),
    ("0", "0"),
    ("t", "t"),
]


@pytest.mark.parametrize(("written", "kept"), FLAGS)
def test_flags(written, kept):
    assert flag_text(written) == kept


def test_unset_values_stay_unset():
    assert [function(None) for function in (duration_text, memory_text, cpus_text, flag_text)] == [None] * 4
