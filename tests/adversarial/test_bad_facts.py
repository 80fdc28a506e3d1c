"""A host that sends bad facts is that host's "could not collect"; the others are still reported.

Real run directories (run_dir.new_run / store_facts) and the real report writing
(run_report.write_run_report): bad blobs beside good facts, a real gzip bomb, peak memory measured.
"""

import base64
import gzip
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import zlib

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.collect import pack
from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import REPORT_TEMPLATE
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import MAX_FACTS_BYTES
from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import write_run_report

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = REPORT_TEMPLATE
REQUEST = {"env": {"project_dir": None, "files": [{"name": "app", "path": "a.env", "template": None}]}}


def env_facts(value):
    """Good facts of a host with one env file holding A=value."""
    record = {"secret": False, "display": value, "fp": "fp:" + value, "secret_fp": None}
    record.update({"length": len(value), "empty": False, "line": 1})
    env_file = {"path": "/a.env", "status": "ok", "reason": None, "mode": "0600", "owner": "x", "group": "x"}
    env_file.update({"size": 1, "keys": {"A": record}, "duplicates": {}, "errors": [], "template": None})
    return pack({"areas": {"env": {"status": "ok", "data": {"files": {"app": env_file}}}}})


def open_run(tmp_path):
    settings = {
        "environments": ["dev", "prod"],
        "production_environments": ["prod"],
        "groups": {"dev": ["d"], "prod": ["p1", "p2"]},
        "rules_files": [],
        "fail_on": "never",
        "report_dir": str(tmp_path / "reports"),
        "template": str(TEMPLATE),
        "inventory": "adversarial",
        "keep_run_dir": False,
    }
    _, path = run_dir.new_run(str(tmp_path / "runs"), settings)
    for host in ("d", "p1", "p2"):
        run_dir.store_request(path, host, REQUEST)
    run_dir.store_facts(path, "d", env_facts("1"))
    run_dir.store_facts(path, "p1", env_facts("2"))
    return path


def b64(data):
    return base64.b64encode(data).decode("ascii")


def gz(text):
    return b64(gzip.compress(text.encode("utf-8")))


def assert_good_hosts_reported(report):
    """p1's drift from d is in the report; p2 is never compared as if it were the same."""
    changed = [f for f in report["findings"] if f["kind"] == "changed" and f["key"] == "A"]
    assert [f["environments"] for f in changed] == [["prod/p1"]]
    unknown = [f for f in report["findings"] if f["kind"] == "unknown"]
    assert [(f["subject"], f["environments"]) for f in unknown] == [("app", ["prod/p2"])]
    return unknown[0]


HOSTILE_BLOBS = [
    ("not base64", "%%% not base64 %%%", "not base64 text"),
    ("not gzip", b64(b"hello, controller"), "not valid gzip data"),
    ("truncated gzip", b64(gzip.compress(b'{"areas": {}}' * 100)[:40]), "truncated gzip data"),
    ("not JSON", gz("{'areas': nope}"), "not JSON"),
    ("not UTF-8", b64(gzip.compress(b'{"areas": "\xff"}')), "not UTF-8"),
    ("a string", gz('"areas"'), "not an object with areas"),
    ("areas a list", gz('{"areas": ["env"]}'), "not an object with areas"),
    ("area a string", gz('{"areas": {"env": "ok"}}'), "area env: the result is not an object with a status"),
    ("deeply nested", gz('{"areas": {"env": {"status": "ok", "data": %s}}}' % ("[" * 5000 + "]" * 5000)), "nested"),
    ("empty", "", "truncated gzip data"),
]


@pytest.mark.parametrize(("blob", "reason"), [case[1:] for case in HOSTILE_BLOBS], ids=[c[0] for c in HOSTILE_BLOBS])
def test_a_hostile_blob_is_that_hosts_could_not_collect(tmp_path, blob, reason):
    path = open_run(tmp_path)
    assert reason in run_dir.store_facts(path, "p2", blob)
    written = write_run_report(path)
    report = json.loads(pathlib.Path(written["report"]["json"]).read_text())
    p2 = next(column for column in report["columns"] if column["host"] == "p2")
    assert p2["status"] == "failed"
    assert reason in p2["reason"]
    assert reason in assert_good_hosts_reported(report)["message"]
    assert "prod/p2" in pathlib.Path(written["report"]["markdown"]).read_text()


WRONG_SHAPES = [
    ("files a string", {"files": "app"}, "files is not an object"),
    ("record a list", {"files": {"app": ["ok"]}}, 'files["app"] is not a record with a status'),
    ("keys a list", {"files": {"app": {"status": "ok", "keys": ["A"]}}}, "keys is not an object of records"),
    ("key a string", {"files": {"app": {"status": "ok", "keys": {"A": "1"}}}}, "keys is not an object of records"),
    ("data a list", ["files"], "the env facts are not an object"),
]


@pytest.mark.parametrize(("data", "reason"), [case[1:] for case in WRONG_SHAPES], ids=[c[0] for c in WRONG_SHAPES])
def test_an_area_of_the_wrong_shape_is_could_not_collect(tmp_path, data, reason):
    """The envelope is fine, the area's data is not what its diff indexes (was: AttributeError, no report)."""
    path = open_run(tmp_path)
    assert run_dir.store_facts(path, "p2", pack({"areas": {"env": {"status": "ok", "data": data}}})) is None
    report = json.loads(pathlib.Path(write_run_report(path)["report"]["json"]).read_text())
    assert reason in assert_good_hosts_reported(report)["message"]


def test_bad_facts_on_disk_that_bypassed_store_facts_are_could_not_collect(tmp_path):
    path = open_run(tmp_path)
    run_dir.atomic_write(os.path.join(path, "facts", "p2.b64gz"), gz("[1, 2, 3]"))
    report = json.loads(pathlib.Path(write_run_report(path)["report"]["json"]).read_text())
    assert "the facts are not an object with areas" in assert_good_hosts_reported(report)["message"]


# In a process of its own, so that its peak memory is the report step's alone.
BOMB_RUN = textwrap.dedent(
    """
    import json, os, resource, sys
    from tests.adversarial.test_bad_facts import open_run
    from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
    from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import write_run_report
    tmp, bomb_file = sys.argv[1], sys.argv[2]
    with open(bomb_file) as handle:
        bomb = handle.read()
    path = open_run(__import__("pathlib").Path(tmp))
    stored = run_dir.store_facts(path, "p2", bomb)  # as the action plugin does
    run_dir.atomic_write(os.path.join(path, "facts", "p2.b64gz"), bomb)  # and past it, as if on disk
    written = write_run_report(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"stored": stored, "report": written["report"]["json"], "peak": peak}))
    """
)


def streamed_gzip(head, chunk, count, tail):
    """gzip of head + chunk * count + tail, compressed while streaming, base64 as a host sends it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(head)] + [compressor.compress(chunk) for _ in range(count)]
    return b64(b"".join(parts) + compressor.compress(tail) + compressor.flush())


BOMBS = {
    # 1 GiB of zeros: about 1 MB packed
    "zeros": (lambda: streamed_gzip(b"", bytes(1024 * 1024), 1024, b""), "inflate to more than"),
    # just under the inflated cap, "[],[],...": 85 KB packed, 3 GB once parsed
    "empty lists": (
        lambda: streamed_gzip(
            b'{"areas": {"env": {"status": "ok", "data": [',
            b"[]," * (1024 * 1024 // 3),
            (MAX_FACTS_BYTES - 1024) // (1024 * 1024),
            b"[]]}}}",
        ),
        "hold more than",
    ),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_a_bomb_is_stopped_with_bounded_memory(tmp_path, bomb):
    build, reason = BOMBS[bomb]
    blob_file = tmp_path / "bomb.b64gz"
    blob_file.write_text(build())
    assert blob_file.stat().st_size < 2 * 1024 * 1024
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "collections"), str(ROOT)]))
    run = subprocess.run(
        [sys.executable, "-c", BOMB_RUN, str(tmp_path), str(blob_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=300,
        check=True,
    )
    result = json.loads(run.stdout)
    assert reason in result["stored"]
    report = json.loads(pathlib.Path(result["report"]).read_text())
    assert reason in assert_good_hosts_reported(report)["message"]
    print("peak memory of the report step with the %s bomb: %.0f MiB" % (bomb, result["peak"] / 2**20))
    # The cap's bytes plus the interpreter and Jinja: nowhere near what the bomb holds.
    assert result["peak"] < MAX_FACTS_BYTES + 96 * 1024 * 1024, result["peak"]
