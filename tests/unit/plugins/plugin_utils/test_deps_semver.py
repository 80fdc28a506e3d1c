"""npm semver ranges, differentially against npm's own semver package (node-semver 7): the
examples of its README, and thousands of generated ranges × versions. The oracle's answers are
recorded (tests/unit/fixtures/deps/semver/corpus.json, by oracle.js); when node and npm's semver
are installed the corpus is asked again, live."""

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import deps_semver

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "deps" / "semver"
SEMVER_PACKAGE = Path("/usr/lib/node_modules/npm/node_modules/semver")

# From node-semver's README (Ranges, Advanced Range Syntax) and its test fixtures' shapes.
README = [
    ("1.2.7 || >=1.2.9 <2.0.0", ["1.2.7", "1.2.9", "1.4.6", "1.2.8", "2.0.0"]),
    (">1.2.3-alpha.3", ["1.2.3-alpha.7", "3.4.5-alpha.9", "3.4.5", "1.2.3-alpha.3"]),
    ("1.2.3 - 2.3.4", ["1.2.3", "2.3.4", "2.3.5", "1.2.2"]),
    ("1.2 - 2.3.4", ["1.2.0", "1.1.9", "2.3.4"]),
    ("1.2.3 - 2.3", ["2.3.9", "2.4.0", "2.4.0-0"]),
    ("1.2.3 - 2", ["2.9.9", "3.0.0"]),
    ("*", ["0.0.0", "1.0.0-rc.1", "99.0.0"]),
    ("1.x", ["1.0.0", "1.99.1", "2.0.0", "1.0.0-beta"]),
    ("1.2.x", ["1.2.0", "1.3.0"]),
    ("", ["1.0.0"]),
    ("1", ["1.4.0", "2.0.0"]),
    ("1.2", ["1.2.9", "1.3.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9", "1.3.0"]),
    ("~1.2", ["1.2.0", "1.3.0"]),
    ("~1", ["1.9.9", "2.0.0"]),
    ("~0.2.3", ["0.2.9", "0.3.0"]),
    ("~0.2", ["0.2.0", "0.3.0"]),
    ("~0", ["0.9.0", "1.0.0"]),
    ("~1.2.3-beta.2", ["1.2.3-beta.4", "1.2.4-beta.2", "1.2.3"]),
    ("^1.2.3", ["1.2.3", "1.9.9", "2.0.0", "2.0.0-0"]),
    ("^0.2.3", ["0.2.9", "0.3.0"]),
    ("^0.0.3", ["0.0.3", "0.0.4"]),
    ("^1.2.3-beta.2", ["1.2.3-beta.4", "1.2.4-beta.2", "1.3.0"]),
    ("^0.0.3-beta", ["0.0.3-pr.2", "0.0.4"]),
    ("^1.2.x", ["1.2.0", "2.0.0"]),
    ("^0.0.x", ["0.0.9", "0.1.0"]),
    ("^0.0", ["0.0.9", "0.1.0"]),
    ("^1.x", ["1.0.0", "2.0.0"]),
    ("^0.x", ["0.9.9", "1.0.0"]),
    (">= 1.2.3 < 2", ["1.5.0", "2.0.0"]),
    ("~> 1.2", ["1.2.5", "1.3.0"]),
    (">1.2", ["1.2.9", "1.3.0", "1.3.0-0"]),
    ("<=1.2", ["1.2.9", "1.3.0-0", "1.3.0"]),
    ("<1", ["0.9.9", "1.0.0-0"]),
    ("v1.2.3", ["1.2.3", "v1.2.3"]),
    ("=1.2.3", ["1.2.3"]),
    (">*", ["1.0.0"]),
    ("<=*", ["1.0.0"]),
    ("latest", ["1.0.0"]),
    ("file:../lib", ["1.0.0"]),
    ("git+https://github.com/a/b.git#v1", ["1.0.0"]),
    ("npm:other@^1.0.0", ["1.0.0"]),
    ("1.2.3", ["1.2.3+build.5", "not-a-version", "01.2.3"]),
]


def generated(count=4000, seed=14):
    """[(range, version)]: ranges from the grammar (operators, partials, x, pre-releases, hyphens,
    unions) against versions near their bounds."""
    rng = random.Random(seed)

    def part():
        return rng.choice(["0", "1", "1", "2", "2", "3", "10", "x", "*", "X"])

    def pre():
        return rng.choice(["", "", "", "-0", "-alpha", "-alpha.1", "-beta.2", "-rc.1", "-1"])

    def partial():
        size = rng.choice([1, 2, 3, 3, 3])
        text = ".".join(part() for _ in range(size))
        return text + (pre() if size == 3 and "x" not in text.lower() and "*" not in text else "")

    def comparator():
        return rng.choice(["", "^", "~", "~>", ">", ">=", "<", "<=", "=", "v", ">= "]) + partial()

    def comparator_set():
        if rng.random() < 0.15:
            return "%s - %s" % (partial(), partial())
        return " ".join(comparator() for _ in range(rng.choice([1, 1, 1, 2, 2, 3])))

    def version():
        return "%d.%d.%d%s" % (
            rng.choice([0, 1, 1, 2, 2, 3, 10]),
            rng.choice([0, 1, 2, 3]),
            rng.choice([0, 1, 2]),
            pre(),
        )

    pairs = []
    for _ in range(count):
        text = " || ".join(comparator_set() for _ in range(rng.choice([1, 1, 1, 2])))
        pairs.append((text, version()))
    return pairs


def corpus():
    return [(text, version) for text, versions in README for version in versions] + generated()


def agree(pairs, answers):
    wrong = []
    for (text, version), (satisfied, valid) in zip(pairs, answers, strict=True):
        mine = deps_semver.satisfies(version, text)
        # nothing is said of a version that is not semver, nor of a range npm refuses
        expected = satisfied if valid and deps_semver.parse_version(version) is not None else None
        if mine != expected:
            wrong.append((text, version, mine, satisfied, valid))
    return wrong


def test_the_recorded_oracle_agrees():
    recorded = json.loads((HERE / "corpus.json").read_text())
    pairs = [tuple(pair) for pair in recorded["pairs"]]
    assert pairs == corpus()  # the corpus is what this file generates
    assert len(pairs) > 4000 and sum(answer[0] for answer in recorded["answers"]) > 400
    assert agree(pairs, recorded["answers"]) == []


@pytest.mark.skipif(
    shutil.which("node") is None or not SEMVER_PACKAGE.is_dir(), reason="node and npm's semver not installed"
)
def test_npm_semver_agrees_live():
    pairs = corpus()
    result = subprocess.run(
        ["node", str(HERE / "oracle.js")],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert agree(pairs, json.loads(result.stdout)["answers"]) == []


@pytest.mark.parametrize(
    ("version", "text", "expected"),
    [
        ("1.5.0", "^1.2.3", True),
        ("2.0.0", "^1.2.3", False),
        ("1.0.0", "latest", None),
        ("1.0.0", "x" * 2000, None),
        ("1.0", "^1.0.0", None),
    ],
)
def test_satisfies(version, text, expected):
    assert deps_semver.satisfies(version, text) is expected
