"""Reading compose files: YAML scalars as Compose reads them, caps against hostile documents, file statuses."""

import hashlib
import json
import os
import sys
import threading
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import compose_load
from ansible_collections.envparity.audit.plugins.module_utils.compose import (
    collect_stacks,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint
from tests.unit.plugins.module_utils.compose_helpers import (
    KEY,
    as_yaml,
    canary,
    collect_paths,
    displays,
    service,
    stack,
    web,
    write,
)


@pytest.fixture(params=["libyaml", "python"])
def parse(request):
    """Both event sources: hosts without libyaml use PyYAML's Python parser."""
    if request.param == "libyaml":
        pytest.importorskip("yaml.cyaml")
    return compose_load.make_loader(pure=request.param == "python")


# ------------------------------------------------------------ YAML: scalars as Compose reads them, safety

SCALARS = [
    # YAML 1.1 words are strings in Compose's YAML 1.2 (yaml.v3): kept as written.
    ("NO", "NO"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("yes", "yes"),
    # YAML 1.2 booleans and numbers: the text Compose prints from them.
    ("true", "true"),
    ("False", "false"),
    ("TRUE", "true"),
    ("0755", "493"),
    ("1.10", "1.1"),
    ("1e3", "1000"),
    ("0x1F", "31"),
    ("1_000", "1000"),
    ("!!int 12", "12"),
    # Not numbers: as written.
    ("12:30", "12:30"),
    ("2001-01-01", "2001-01-01"),
    ("1.2.3", "1.2.3"),
    ("0o", "0o"),
    ("-1-", "-1-"),
    # Quoted: always as written.
    ("'0755'", "0755"),
    ('"1.10"', "1.10"),
    ("'True'", "True"),
    ("'null'", "null"),
    ("''", ""),
    ("'~'", "~"),
    # Nulls: an empty plain value, ~ and null (any case Compose's YAML 1.2 core schema allows).
    ("", None),
    ("~", None),
    ("null", None),
    ("Null", None),
    ("NULL", None),
]


@pytest.mark.parametrize(("written", "expected"), SCALARS)
def test_scalars_as_compose_reads_them(parse, written, expected):
    assert parse("v: %s\n" % written) == {"v": expected}


# Go's rendering of yaml.v3 numbers, as `docker compose config` printed each (Compose v2.40.3).
GO_NUMBERS = [
    ("1e6", "1e+06"),
    ("1234567.0", "1.234567e+06"),
    ("123456.0", "123456"),
    ("1e21", "1e+21"),
    ("1e-5", "1e-05"),
    ("0.0001", "0.0001"),
    ("0.000001", "1e-06"),
    ("3e-7", "3e-07"),
    ("100000000000000000000000", "1e+23"),
    ("-0", "0"),
    ("0b101", "5"),
    ("0o17", "15"),
    ("08", "8"),
    ("007", "7"),
    (".5", "0.5"),
    ("+.5", "0.5"),
    ("-0x1F", "-31"),
    ("0x_1F", "31"),
    ("1__0", "10"),
    ("1_000.5", "1000.5"),
    ("123456789012.5", "1.234567890125e+11"),
    ("12345678901234567890123", "1.2345678901234568e+22"),
    ("9223372036854775807", "9223372036854775807"),
    ("9223372036854775808", "9223372036854775808"),
    ("18446744073709551616", "1.8446744073709552e+19"),
    ("-9223372036854775809", "-9.223372036854776e+18"),
    ("1e400", "1e400"),
    ("1.", "1"),
    ("1.0", "1"),
    ("100.0", "100"),
    ("-0.50", "-0.5"),
    ("+12", "12"),
    ("1.5E+3", "1500"),
    (".inf", "+Inf"),
    ("-.Inf", "-Inf"),
    (".NaN", "NaN"),
]


@pytest.mark.parametrize(("written", "expected"), GO_NUMBERS)
def test_numbers_as_compose_prints_them(written, expected):
    assert compose_load.compose_scalar(written) == expected


def test_long_numbers_are_not_integers():
    # Beyond 64 bits: a float when Go reads one, else the text (never a slow int() of it).
    assert compose_load.compose_scalar("9" * 400) == "9" * 400
    assert compose_load.compose_scalar("1" + "0" * 30) == "1e+30"
    assert compose_load.compose_scalar("0x" + "f" * 17) == "0x" + "f" * 17


def test_keys_stay_as_written(parse):
    assert parse("labels:\n  1.10: a\n  true: b\n") == {"labels": {"1.10": "a", "true": "b"}}


def test_scalars_as_compose_reads_them_reach_the_facts(tmp_path):
    result = service(
        tmp_path,
        "services:\n  web:\n    privileged: True\n    read_only: NO\n    user: '0755'\n"
        "    image: app:1.10\n    environment:\n      DEBUG: off\n      RATIO: 1.10\n      MODE: 0755\n"
        "    labels:\n      weight: 1_000\n",
    )
    # "NO" is a string for YAML 1.2, a false flag for Compose (which omits it).
    assert (result["privileged"], result["read_only"], result["user"]) == ("true", None, "0755")
    assert result["image"]["tag"] == "1.10"
    assert displays(result["environment"]) == {"DEBUG": "off", "RATIO": "1.1", "MODE": "493"}
    assert result["labels"] == {"weight": "1000"}


def test_several_documents_are_merged_in_order(parse, tmp_path):
    text = "services:\n  web:\n    image: a:1\n---\n---\nservices:\n  web:\n    image: a:2\n  db:\n    image: pg\n"
    assert parse(text) == [
        {"services": {"web": {"image": "a:1"}}},
        {"services": {"web": {"image": "a:2"}, "db": {"image": "pg"}}},
    ]
    result = stack(tmp_path, text)
    assert result["status"] == "ok", result["reason"]
    assert {name: item["image"]["ref"] for name, item in result["services"].items()} == {"web": "a:2", "db": "pg"}


def test_anchors_are_per_document(parse):
    with pytest.raises(compose_load._Malformed):
        parse("a: &x [1]\n---\nb: *x\n")


def test_python_tags_build_nothing(parse, tmp_path):
    marker = tmp_path / "ran"
    document = parse("v: !!python/object/apply:os.system ['touch %s']\nw: !!python/name:os.system\n" % marker)
    # The tag is ignored: a sequence stays a list of strings, "!!python/name:os.system" tags an empty value.
    assert document == {"v": ["touch %s" % marker], "w": ""}
    assert not marker.exists()


def test_merge_keys(parse):
    document = parse(
        "x-a: &a {one: '1', two: '2'}\nx-b: &b {two: b, three: b}\nv:\n  <<: [*a, *b]\n  three: own\nw:\n  <<: *b\n"
    )
    # Earlier merged mappings win over later ones; the mapping's own keys win over all.
    assert document["v"] == {"one": "1", "two": "2", "three": "own"}
    assert document["w"] == {"two": "b", "three": "b"}


def test_environment_key_without_value_is_none(tmp_path):
    result = service(tmp_path, "services:\n  web:\n    environment:\n      - BARE\n      - SET=1\n      - EMPTY=\n")
    env = result["environment"]
    assert (env["BARE"]["display"], env["BARE"]["empty"]) == (None, True)
    assert env["SET"]["display"] == "1"
    assert (env["EMPTY"]["display"], env["EMPTY"]["empty"]) == ("", True)


def billion_laughs(levels=9, width=9):
    lines = ["a0: &a0 [%s]" % ", ".join(['"lol"'] * width)]
    for level in range(1, levels):
        lines.append("a%d: &a%d [%s]" % (level, level, ", ".join(["*a%d" % (level - 1)] * width)))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (billion_laughs(), "YAML nodes"),
        ("x: &x " + "y" * 400000 + "\nv: [" + ", ".join(["*x"] * 30) + "]\n", "characters"),
        ("x: &x v\nv: [" + ", ".join(["*x"] * (compose_load.MAX_ALIASES + 1)) + "]\n", "aliases"),
        ("v: " + "[" * 60 + "]" * 60 + "\n", "deeper"),
        ("".join("  " * level + "k:\n" for level in range(60)), "deeper"),
        # An alias that stands for a deep subtree counts that subtree's depth.
        ("x: &x " + "[" * 30 + "]" * 30 + "\nv: " + "[" * 30 + "*x" + "]" * 30 + "\n", "deeper"),
        ("a: &a [*a]\n", "recursive"),
    ],
    ids=[
        "billion-laughs",
        "long-scalar-aliased",
        "too-many-aliases",
        "deep-flow",
        "deep-block",
        "deep-alias",
        "recursive",
    ],
)
def test_unsafe_documents_are_refused_quickly(parse, document, fragment):
    started = time.monotonic()
    with pytest.raises(compose_load._Unsafe) as caught:
        parse(document)
    assert time.monotonic() - started < 1.0
    assert fragment in str(caught.value)


def test_too_many_nodes_is_unsafe(parse, monkeypatch):
    # The cap is lowered to keep the test fast; the check is the same at 100,000.
    monkeypatch.setattr(compose_load, "MAX_NODES", 1000)
    parse("[" + "a," * 998 + "]")
    with pytest.raises(compose_load._Unsafe) as caught:
        parse("[" + "a," * 1000 + "]")
    assert "more than 1000 YAML nodes" in str(caught.value)


def test_hundred_aliases_are_fine(parse):
    document = parse("x: &x v\nv: [" + ", ".join(["*x"] * compose_load.MAX_ALIASES) + "]\n")
    assert len(document["v"]) == compose_load.MAX_ALIASES


def test_runaway_nesting_is_refused_quickly(parse):
    # A megabyte of "[": libyaml gives up on its own (malformed), the Python parser meets
    # our cap (unsafe).  PyYAML's Python scanner looks up to 1024 characters ahead for a
    # possible key at every level, about 0.5 s here whatever the length of the file.
    started = time.monotonic()
    with pytest.raises((compose_load._Unsafe, compose_load._Malformed)):
        parse("[" * 1000000)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("document", "line"),
    [
        ("services:\n  web:\n    image: [oops\n    x: 1\n", 4),
        ("services:\n  web:\n    image: 'unterminated\n", 4),
        ("a: 1\nb: 2\na: 3\n", 3),
        ("a: *nowhere\n", 1),
        ("a: 1\n---\nb: 2\nb: 3\n", 4),
        ("a: &x 1\nb: &x 2\n", 2),
        ("a:\n\tb: 1\n", 2),
        ("é: 1\nb: \x07\n", 2),
        ("? [a]\n: 1\n", 1),
    ],
    ids=[
        "flow",
        "quote",
        "duplicate-key",
        "undefined-alias",
        "second-document",
        "duplicate-anchor",
        "tab",
        "control",
        "list-key",
    ],
)
def test_malformed_yaml_reports_the_line(parse, document, line):
    with pytest.raises(compose_load._Malformed) as caught:
        parse(document)
    assert "(line %d)" % line in str(caught.value)


# ------------------------------------------------------------ file statuses


def run_with_timeout(function, seconds=5):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("value", function()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    return outcome["value"]


def test_missing_file(tmp_path):
    good = write(tmp_path / "a.yml", as_yaml(web({"image": "x"})))
    result = collect_paths(tmp_path, [good, tmp_path / "b.yml"])
    assert result["status"] == "failed"
    assert [record["status"] for record in result["files"]] == ["ok", "missing"]
    assert result["files"][1] == {
        "path": str(tmp_path / "b.yml"),
        "status": "missing",
        "reason": "The file does not exist.",
    }
    assert str(tmp_path / "b.yml") in result["reason"]
    assert result["services"] == {}


def test_fifo_returns_promptly(tmp_path):
    fifo = tmp_path / "compose.yml"
    os.mkfifo(fifo)
    result = run_with_timeout(lambda: collect_paths(tmp_path, [fifo]))
    assert result["files"][0]["status"] == "not_regular"
    assert "FIFO" in result["files"][0]["reason"]
    assert result["status"] == "failed"


def test_too_large(tmp_path):
    path = write(tmp_path / "compose.yml", "services: {}\n" + "#" * 200 + "\n")
    result = collect_paths(tmp_path, [path], max_bytes=100)
    assert result["files"][0]["status"] == "too_large"
    assert result["status"] == "failed"


@pytest.mark.parametrize(
    "data", [b"\x00\x01\x02services", b"services:\n  web: {image: \xff\xfe}\n"], ids=["binary", "latin1"]
)
def test_undecodable(tmp_path, data):
    result = collect_paths(tmp_path, [write(tmp_path / "compose.yml", data)])
    assert result["files"][0]["status"] == "undecodable"


def test_malformed_file_reason_has_the_line_never_the_content(tmp_path):
    secret = canary()
    path = write(tmp_path / "compose.yml", "services:\n  web:\n    image: [%s\n    x: 1\n" % secret)
    result = collect_paths(tmp_path, [path])
    assert result["files"][0]["status"] == "malformed"
    assert result["files"][0]["reason"] == "The file is not valid YAML (line 4)."
    assert secret not in json.dumps(result)


def test_bomb_file_is_unsafe_within_a_second(tmp_path):
    path = write(tmp_path / "compose.yml", billion_laughs())
    started = time.monotonic()
    result = collect_paths(tmp_path, [path])
    assert time.monotonic() - started < 1.0
    assert result["files"][0]["status"] == "unsafe"
    assert "bomb" in result["files"][0]["reason"]
    assert result["status"] == "failed"


def test_deeply_nested_file_is_unsafe(tmp_path):
    path = write(tmp_path / "compose.yml", "services: " + "{a: " * 80 + "x" + "}" * 80 + "\n")
    result = collect_paths(tmp_path, [path])
    assert result["files"][0]["status"] == "unsafe"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("", "The file is empty."),
        ("# only a comment\n", "The file is empty."),
        ("- a\n- b\n", "The top level of the file is not a mapping."),
        ("services: [web]\n", "The services entry is not a mapping."),
        ("services:\n  web: [a]\n", "The service web is not a mapping."),
    ],
)
def test_compose_structure_errors(tmp_path, document, reason):
    result = collect_paths(tmp_path, [write(tmp_path / "compose.yml", document)])
    assert result["files"][0] == {"path": str(tmp_path / "compose.yml"), "status": "malformed", "reason": reason}
    assert result["status"] == "failed"


def test_env_file_problems_fail_the_stack(tmp_path):
    path = write(tmp_path / "compose.yml", as_yaml(web({"image": "x:${TAG:-1}"})))
    result = collect_paths(tmp_path, [path], env_file="missing.env")
    assert result["env_file"] == {
        "path": str(tmp_path / "missing.env"),
        "status": "missing",
        "reason": "The file does not exist.",
    }
    assert result["status"] == "failed"
    assert "env file" in result["reason"]
    assert result["files"][0]["status"] == "ok"


def test_no_files(tmp_path):
    result = collect_paths(tmp_path, [])
    assert result["status"] == "failed"
    assert result["files"] == []


def test_pyyaml_missing(tmp_path, monkeypatch):
    # A host without python3-yaml: the import fails, every stack says why.
    monkeypatch.setitem(sys.modules, "yaml", None)
    path = write(tmp_path / "compose.yml", as_yaml(web({"image": "x"})))
    item = {"name": "s", "files": [str(path)], "env_file": None, "project": None}
    result = collect_stacks([item, dict(item, name="t", files=[str(tmp_path / "gone.yml")])], str(tmp_path), KEY)
    for name in ("s", "t"):
        assert result[name]["status"] == "failed"
        assert result[name]["reason"] == "PyYAML (python3-yaml) is needed on the host to read compose files"
        assert result[name]["services"] == {}
    assert result["s"]["files"][0]["status"] == "ok"
    assert result["t"]["files"][0]["status"] == "missing"


def test_ok_stack_shape(tmp_path):
    result = stack(tmp_path, web({"image": "x"}), env="A=1\n")
    assert result["status"] == "ok"
    assert result["reason"] is None
    assert result["files"] == [
        {"path": str(tmp_path / "proj" / "docker" / "compose0.yml"), "status": "ok", "reason": None}
    ]
    assert result["env_file"] == {"path": str(tmp_path / "proj" / ".env"), "status": "ok", "reason": None}
    assert result["services"]["web"] == {
        "image": {"ref": "x", "repository": "x", "tag": None, "digest": None},
        "build": None,
        "command": None,
        "entrypoint": None,
        "ports": [],
        "environment": {},
        "env_file": [],
        "volumes": [],
        "networks": ["default"],
        "depends_on": [],
        "healthcheck": None,
        "restart": None,
        "limits": {"memory": None, "cpus": None},
        "reservations": {"memory": None, "cpus": None},
        "logging": None,
        "labels": {},
        "user": None,
        "privileged": None,
        "read_only": None,
        "cap_add": [],
        "cap_drop": [],
        "network_mode": None,
        "profiles": [],
        "replicas": None,
        "fingerprints": {"command": None, "entrypoint": None, "healthcheck": None, "labels": {}},
        # What `docker compose config --hash web` prints for this service, as its fingerprint.
        "config_hash": fingerprint(
            KEY,
            hashlib.sha256(b'{"command":null,"entrypoint":null,"image":"x","networks":{"default":null}}').hexdigest(),
        ),
    }


# ------------------------------------------------------------ normalisation tables
