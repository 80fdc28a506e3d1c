"""Differential test: our parser against python-dotenv on a corpus of tricky files.

python-dotenv reads a real file, as an application's load_dotenv() does: its
universal newlines turn CRLF and a lone CR into LF, inside quoted values too.
Every corpus file is also tried with CRLF and with CR line endings.
"""

import logging
import pathlib
import random

import pytest
from dotenv import dotenv_values

from ansible_collections.envparity.audit.plugins.module_utils.dotenv_parser import parse_dotenv

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "dotenv"
CORPUS = sorted(path.name for path in FIXTURES.glob("*.env"))
LINE_ENDINGS = {"as_is": None, "crlf": "\r\n", "cr": "\r"}

# Deliberate difference, about error line numbers only: {file: (python-dotenv, ours)}.
# python-dotenv reports a bad statement at the first blank line before it (its statement
# starts where the previous one ended); we report the line that actually holds it.
LINE_NUMBER_QUIRKS = {
    "malformed_blank_before_error.env": ([2, 5], [3, 6]),
}


def with_line_endings(data, ending):
    """The file's bytes with every line ending (CRLF, CR or LF) replaced by ``ending``."""
    if ending is None:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", ending.encode())


def reference(path, caplog):
    """python-dotenv's values and the lines it warns about, reading the file at path."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dotenv.main"):
        values = dotenv_values(dotenv_path=path, interpolate=False, encoding="utf-8-sig")
    warned = [record.args[0] for record in caplog.records if record.name == "dotenv.main"]
    return dict(values), warned


def last_wins(result):
    values = {}
    for entry in result["entries"]:
        values[entry["key"]] = entry["value"]
    return values


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 15


@pytest.mark.parametrize("ending", sorted(LINE_ENDINGS))
@pytest.mark.parametrize("name", CORPUS)
def test_same_values_and_error_lines_as_python_dotenv(name, ending, tmp_path, caplog):
    path = tmp_path / name
    path.write_bytes(with_line_endings((FIXTURES / name).read_bytes(), LINE_ENDINGS[ending]))
    expected_values, dotenv_errors = reference(path, caplog)
    result = parse_dotenv(path.read_bytes().decode("utf-8"))
    assert last_wins(result) == expected_values
    if name in LINE_NUMBER_QUIRKS:
        quirk_dotenv, quirk_ours = LINE_NUMBER_QUIRKS[name]
        assert dotenv_errors == quirk_dotenv, "python-dotenv changed: review LINE_NUMBER_QUIRKS"
        assert result["errors"] == quirk_ours
    else:
        assert result["errors"] == dotenv_errors


def test_multi_line_values_read_the_same_in_crlf_cr_and_lf_files(tmp_path, caplog):
    # Guards the corpus: the parametrised test above must meet quoted multi-line values in
    # files whose line endings differ, and python-dotenv must read them alike.
    data = (FIXTURES / "multiline.env").read_bytes()
    values = {}
    for ending, chars in LINE_ENDINGS.items():
        path = tmp_path / ending
        path.write_bytes(with_line_endings(data, chars))
        values[ending] = last_wins(parse_dotenv(path.read_bytes().decode("utf-8")))
        assert values[ending] == reference(path, caplog)[0]
    assert "\n" in values["as_is"]["CERT"]
    assert values["crlf"] == values["cr"] == values["as_is"]


def test_corpus_exercises_errors_and_values():
    # Guards the corpus itself: it must contain both bad lines and values.
    all_errors = sum(len(parse_dotenv((FIXTURES / name).read_text(encoding="utf-8"))["errors"]) for name in CORPUS)
    all_keys = sum(len(parse_dotenv((FIXTURES / name).read_text(encoding="utf-8"))["entries"]) for name in CORPUS)
    assert all_errors >= 10
    assert all_keys >= 100


# Random statements built from the grammar's building blocks.
PIECES = list("Ab==  \t#'\"\\\n\n\r$é") + ["KEY", " #", "\r\n", "{x}", "export "]


@pytest.mark.parametrize("seed", range(5))
def test_random_inputs_agree_with_python_dotenv(seed, tmp_path, caplog):
    rng = random.Random(seed)
    path = tmp_path / "random.env"
    for _ in range(400):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
        path.write_bytes(text.encode("utf-8"))
        expected_values, dotenv_errors = reference(path, caplog)
        result = parse_dotenv(text)
        assert last_wins(result) == expected_values, repr(text)
        # Line numbers may differ (see LINE_NUMBER_QUIRKS), the count may not.
        assert len(result["errors"]) == len(dotenv_errors), repr(text)
