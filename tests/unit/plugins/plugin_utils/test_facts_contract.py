"""The facts contract: bounded unpacking of a host's blob and the structure each area's diff needs."""

import base64
import gzip
import json

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.collect import pack
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import (
    MAX_DEPTH,
    FactsError,
    area_problem,
    depth_problem,
    host_problem,
    inflate,
    unpack,
)

GOOD = {"areas": {"env": {"status": "ok", "data": {"files": {}}}, "git": {"status": "failed", "reason": "x"}}}


def b64(data):
    return base64.b64encode(data).decode("ascii")


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_good_facts_round_trip():
    assert unpack(pack(GOOD)) == GOOD


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        ("not base64 at all!", "not base64"),
        (b64(b"plain text, not gzip"), "not valid gzip"),
        (b64(gzip.compress(b'{"areas": {}}')[:-12]), "truncated gzip"),
        (b64(gzip.compress(b"\xff\xfe not utf-8")), "not UTF-8"),
        (b64(gzip.compress(b"{not json")), "not JSON"),
        (b64(gzip.compress(b"")), "not JSON"),
        (b64(gzip.compress(b'"a string"')), "not an object with areas"),
        (b64(gzip.compress(b"[1, 2]")), "not an object with areas"),
        (b64(gzip.compress(b'{"areas": []}')), "not an object with areas"),
        (b64(gzip.compress(b'{"areas": {"env": "ok"}}')), "area env: the result is not an object with a status"),
        (b64(gzip.compress(b'{"areas": {"env": {"status": 1}}}')), "not an object with a status"),
        (b64(gzip.compress(b'{"areas": {"env": {"status": "failed", "reason": []}}}')), "the reason is not text"),
        (b64(gzip.compress(b"[" * 100000 + b"]" * 100000)), "nested deeper"),
        (pack({"areas": {"env": {"status": "ok", "data": nested(MAX_DEPTH)}}}), "nested deeper than 64"),
    ],
)
def test_unusable_blobs_are_explained(blob, reason):
    with pytest.raises(FactsError, match=reason):
        unpack(blob)


@pytest.mark.parametrize("item", ["[]", "{}", '"ab"', "1000"])
def test_many_small_values_are_refused_before_parsing(monkeypatch, item):
    """64 MiB of "[]," would parse into 3 GB of lists; the count bounds it before json.loads runs."""
    from ansible_collections.envparity.audit.plugins.plugin_utils import facts_contract

    monkeypatch.setattr(facts_contract, "MAX_FACTS_VALUES", 1000)
    monkeypatch.setattr(facts_contract.json, "loads", None)  # never reached
    data = "[" + ",".join([item] * 1001) + "]"
    with pytest.raises(FactsError, match="the facts hold more than 1000 values"):
        unpack(b64(gzip.compress(('{"areas": {"env": {"status": "ok", "data": %s}}}' % data).encode())))


def test_depth_at_the_limit_is_accepted():
    assert depth_problem(nested(MAX_DEPTH)) is None
    assert depth_problem(nested(MAX_DEPTH + 1)) == "the facts are nested deeper than 64 levels"


def test_inflate_stops_at_the_cap_without_inflating_the_rest():
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024), compresslevel=9)
    assert len(inflate(bomb, max_bytes=8 * 1024 * 1024)) == 8 * 1024 * 1024
    with pytest.raises(FactsError, match="inflate to more than 1048576 bytes"):
        inflate(bomb, max_bytes=1024 * 1024)


def test_oversized_packed_text_is_refused_before_decoding(monkeypatch):
    from ansible_collections.envparity.audit.plugins.plugin_utils import facts_contract

    monkeypatch.setattr(facts_contract, "MAX_BLOB_BYTES", 10)
    with pytest.raises(FactsError, match="packed facts are larger than 10 bytes"):
        unpack(pack(GOOD))


def test_host_envelope_accepts_good_facts():
    assert host_problem(GOOD) is None
    assert host_problem(json.loads(json.dumps(GOOD))) is None


ENV_OK = {"status": "ok", "keys": {"A": {"fp": "x"}}, "duplicates": {}}
ENGINE = {"status": "ok", "containers": [{"name": "c"}]}


@pytest.mark.parametrize(
    ("area", "data", "problem"),
    [
        ("env", {"files": {"app": ENV_OK}}, None),
        ("env", {"files": {"app": {"status": "missing", "reason": "gone"}}}, None),
        ("env", {"files": None}, None),
        ("env", {}, None),
        ("env", "files", "the env facts are not an object"),
        ("env", None, "the env facts are not an object"),
        ("env", {"files": ["app"]}, "files is not an object"),
        ("env", {"files": {"app": "ok"}}, 'files["app"] is not a record with a status'),
        ("env", {"files": {"app": {"keys": {}}}}, 'files["app"] is not a record with a status'),
        ("env", {"files": {"app": {**ENV_OK, "keys": ["A"]}}}, 'files["app"].keys is not an object of records'),
        ("env", {"files": {"app": {**ENV_OK, "keys": {"A": "v"}}}}, "keys is not an object of records"),
        ("env", {"files": {"app": {**ENV_OK, "duplicates": "A"}}}, "duplicates is not an object"),
        ("git", {"repos": {"app": {"status": "ok"}}, "deploy_dirs": {}}, None),
        ("git", {"repos": {}, "deploy_dirs": {"site": 3}}, 'deploy_dirs["site"] is not a record'),
        ("git", {"repos": "app"}, "repos is not an object"),
        ("docker", {"stacks": {"app": {"status": "ok"}}, "engine": ENGINE}, None),
        ("docker", {"stacks": {}, "engine": None}, None),
        ("docker", {"stacks": {}, "engine": "up"}, "engine is not a record with a status"),
        ("docker", {"stacks": {}, "engine": {**ENGINE, "containers": "c"}}, "containers is not a list of objects"),
        ("docker", {"stacks": {}, "engine": {**ENGINE, "containers": [1]}}, "containers is not a list of objects"),
        ("postgres", {"databases": {"app": {"status": "ok"}}}, None),
        ("postgres", {"databases": {"app": None}}, 'databases["app"] is not a record with a status'),
        ("postgres", [], "the postgres facts are not an object"),
    ],
)
def test_area_contracts(area, data, problem):
    reason = area_problem(area, data)
    if problem is None:
        assert reason is None
    else:
        assert problem in reason
        assert reason.startswith("the %s facts" % area)


def test_reasons_name_structure_not_values():
    secret = "s3cr3t-value-" + "x" * 20
    reason = area_problem("env", {"files": {"app": {**ENV_OK, "keys": {"A": secret}}}})
    assert secret not in reason
    with pytest.raises(FactsError) as caught:
        unpack(b64(gzip.compress(json.dumps({"areas": {"env": secret}}).encode())))
    assert secret not in str(caught.value)
