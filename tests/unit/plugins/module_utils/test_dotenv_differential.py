"""Differential test: our parser against python-dotenv on a corpus of tricky files."""

import io
import logging
import pathlib
import random

import pytest
from dotenv import dotenv_values

from ansible_collections.envparity.audit.plugins.module_utils.dotenv_parser import parse_dotenv

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "dotenv"
CORPUS = sorted(path.name for path in FIXTURES.glob("*.env"))

# Deliberate differences, about error line numbers only: {file: (python-dotenv, ours)}.
# - python-dotenv reports a bad statement at the first blank line before it
#   (its statement starts where the previous one ended); we report the line
#   that actually holds it.
# - in a CRLF file, python-dotenv's recovery after a bad line stops between
#   CR and LF and counts that LF as one more line, so later lines drift by one.
LINE_NUMBER_QUIRKS = {
    "malformed_blank_before_error.env": ([2, 5], [3, 6]),
    "crlf_with_errors.env": ([2, 5], [2, 4]),
}


def reference(text, caplog):
    """python-dotenv's values and the lines it warns about."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dotenv.main"):
        values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    warned = [record.args[0] for record in caplog.records if record.name == "dotenv.main"]
    return dict(values), warned


def last_wins(result):
    values = {}
    for entry in result["entries"]:
        values[entry["key"]] = entry["value"]
    return values


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 15


@pytest.mark.parametrize("name", CORPUS)
def test_same_values_and_error_lines_as_python_dotenv(name, caplog):
    text = (FIXTURES / name).read_bytes().decode("utf-8")
    expected_values, dotenv_errors = reference(text, caplog)
    result = parse_dotenv(text)
    assert last_wins(result) == expected_values
    if name in LINE_NUMBER_QUIRKS:
        quirk_dotenv, quirk_ours = LINE_NUMBER_QUIRKS[name]
        assert dotenv_errors == quirk_dotenv, "python-dotenv changed: review LINE_NUMBER_QUIRKS"
        assert result["errors"] == quirk_ours
    else:
        assert result["errors"] == dotenv_errors


def test_corpus_exercises_errors_and_values():
    # Guards the corpus itself: it must contain both bad lines and values.
    all_errors = sum(len(parse_dotenv((FIXTURES / name).read_text(encoding="utf-8"))["errors"]) for name in CORPUS)
    all_keys = sum(len(parse_dotenv((FIXTURES / name).read_text(encoding="utf-8"))["entries"]) for name in CORPUS)
    assert all_errors >= 10
    assert all_keys >= 100


# Random statements built from the grammar's building blocks.
PIECES = list("Ab==  \t#'\"\\\n\n$é") + ["KEY", " #", "\r\n", "{x}", "export "]


@pytest.mark.parametrize("seed", range(5))
def test_random_inputs_agree_with_python_dotenv(seed, caplog):
    rng = random.Random(seed)
    for _ in range(400):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
        expected_values, dotenv_errors = reference(text, caplog)
        result = parse_dotenv(text)
        assert last_wins(result) == expected_values, repr(text)
        # Line numbers may differ (see LINE_NUMBER_QUIRKS), the count may not.
        assert len(result["errors"]) == len(dotenv_errors), repr(text)
