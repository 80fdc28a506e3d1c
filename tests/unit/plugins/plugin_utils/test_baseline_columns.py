"""Baseline columns: the second, persistent fingerprint of every value (BaselineKey), the baseline
key file, facts stored with baseline fingerprints only and mapped back onto a later run's, and a
baseline column compared through the same diff as a live one (run to run, end to end without
Ansible: the real env collector, run directory, store and report)."""

import json
import os
import secrets
import sqlite3
import stat

import jsonschema
import pytest

from ansible_collections.envparity.audit.plugins.module_utils import redact
from ansible_collections.envparity.audit.plugins.module_utils.collect import collect_areas, host_facts, pack
from ansible_collections.envparity.audit.plugins.module_utils.redact import BaselineKey, fingerprint, fingerprint_bytes
from ansible_collections.envparity.audit.plugins.plugin_utils import baseline_facts, controller_side, history, run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_facts import BaselineError
from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import unpack
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import make_finding
from ansible_collections.envparity.audit.plugins.plugin_utils.one_finding import one_finding_per_fact
from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import write_run_report
from tests.unit.plugins.plugin_utils.test_report_model import SCHEMA, TEMPLATE

RUN = bytes.fromhex("11" * 32)
BASE = bytes.fromhex("22" * 32)


# --- host side: the second fingerprint -------------------------------------------------------


def test_a_baseline_key_fingerprints_as_the_run_key_and_pairs_each_value_with_its_baseline_twin():
    key = BaselineKey(RUN, BASE)
    assert fingerprint(key, "hunter2") == fingerprint(RUN, "hunter2")
    assert key.pairs == {fingerprint(RUN, "hunter2"): fingerprint(BASE, "hunter2")}
    chunks = [b"abc", b"def"]
    assert fingerprint_bytes(key, iter(chunks)) == fingerprint_bytes(RUN, b"abcdef")
    assert key.pairs[fingerprint_bytes(RUN, b"abcdef")] == fingerprint_bytes(BASE, b"abcdef")
    assert fingerprint(RUN, "x") not in key.pairs  # a plain key pairs nothing
    with pytest.raises(ValueError, match="baseline_key"):
        BaselineKey(RUN, b"")


def test_the_pairs_are_bounded_and_the_host_says_when_it_had_more(monkeypatch):
    monkeypatch.setattr(redact, "MAX_BASELINE_PAIRS", 2)
    key = BaselineKey(RUN, BASE)
    for value in ("a", "b", "c"):
        fingerprint(key, value)
    assert len(key.pairs) == 2 and key.truncated
    facts = host_facts({}, key)
    assert facts["baseline_fingerprints"]["truncated"] is True
    assert "baseline_fingerprints" not in host_facts({}, RUN)


def test_every_collector_pairs_through_the_key_it_is_given(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("API_TOKEN=s3cr3t-value-123\nLOG_LEVEL=INFO\n")
    request = {"files": [{"name": "app", "path": str(env_file), "template": None}], "project_dir": None}
    key = BaselineKey(RUN, BASE)
    collected = collect_areas({"env": request}, key)
    record = collected["env"]["data"]["files"]["app"]["keys"]["API_TOKEN"]
    assert key.pairs[record["fp"]] == fingerprint(BASE, "s3cr3t-value-123")


class _NoMerge:
    @staticmethod
    def merge(data, results):
        data.update(results)


def test_the_pairs_made_on_the_controller_join_the_hosts():
    host_key, here_key = BaselineKey(RUN, BASE), BaselineKey(RUN, BASE)
    on_host, here = fingerprint(host_key, "host value"), fingerprint(here_key, "probed from the controller")
    blob = pack(host_facts({"endpoints": {"status": "ok", "data": {"a": on_host}}}, host_key))
    merged = unpack(controller_side.merged_blob(blob, {"endpoints": (_NoMerge, {"b": here})}, here_key))
    assert merged["areas"]["endpoints"]["data"] == {"a": on_host, "b": here}
    assert merged["baseline_fingerprints"]["pairs"] == {**host_key.pairs, **here_key.pairs}


# --- the baseline key file ----------------------------------------------------------------------


def test_the_key_is_made_0600_once_and_kept(tmp_path):
    path = str(tmp_path / "store" / "history.sqlite.key")
    first = baseline_facts.read_key(path, create=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(first) == 64
    assert baseline_facts.read_key(path, create=True) == first == baseline_facts.read_key(path)
    assert baseline_facts.key_id(first) != baseline_facts.key_id("00" * 32)
    assert first not in baseline_facts.key_id(first)


def test_a_missing_shared_or_malformed_key_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "k"
    with pytest.raises(BaselineError, match="does not exist: baselines recorded with another key"):
        baseline_facts.read_key(str(path))
    path.write_text("ab" * 32)
    path.chmod(0o644)
    with pytest.raises(BaselineError, match="readable by others .* chmod 600"):
        baseline_facts.read_key(str(path))
    path.chmod(0o600)
    path.write_text("not hex")
    with pytest.raises(BaselineError, match="is not 64 hex digits"):
        baseline_facts.read_key(str(path))


def test_the_key_lives_beside_the_store_unless_set():
    assert baseline_facts.key_path("/r/history.sqlite") == "/r/history.sqlite.key"
    assert baseline_facts.key_path("/r/history.sqlite", "/keys/k") == "/keys/k"


# --- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("prod@release-2026-11-20", ("prod", "release-2026-11-20")), (" prod @ r1 ", ("prod", "r1"))],
)
def test_a_column_is_environment_at_baseline(spec, parsed):
    assert baseline_facts.parse_column(spec) == parsed


@pytest.mark.parametrize("spec", ["prod", "@r1", "prod@", "", None])
def test_a_column_without_both_parts_is_refused(spec):
    with pytest.raises(BaselineError, match="is not ENVIRONMENT@BASELINE"):
        baseline_facts.parse_column(spec)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"baseline_columns": ["stage@r1"]}, "names stage, which is not in drift_environments"),
        ({"baseline_columns": ["prod@r1", "prod@r1"]}, "names a column twice"),
        ({"baseline_columns": ["prod@r1"], "history": False}, "needs the history store"),
    ],
)
def test_column_settings_that_cannot_work_are_refused(changes, message):
    with pytest.raises(BaselineError, match=message):
        baseline_facts.check_settings(dict({"environments": ["dev", "prod"], "history": True}, **changes))


def test_rekey_replaces_fingerprints_in_keys_values_and_redacted_names():
    fp = fingerprint(RUN, "v")
    facts = {"<redacted:%s>" % fp: {"fp": fp, "list": [fp, "plain", 3]}, "hmac-sha256:short": "kept"}
    out = baseline_facts.rekey(facts, lambda found: "hmac-sha256:" + "f" * 24 if found == fp else found)
    new = "hmac-sha256:" + "f" * 24
    assert out == {"<redacted:%s>" % new: {"fp": new, "list": [new, "plain", 3]}, "hmac-sha256:short": "kept"}


def test_stored_facts_hold_baseline_fingerprints_only_and_map_back_onto_a_later_run():
    key = BaselineKey(RUN, BASE)
    kept, rotated = fingerprint(key, "kept-secret"), fingerprint(key, "old-secret")
    unpaired = fingerprint(RUN, "made without the baseline key")
    facts = {"areas": {"env": {"status": "ok", "data": {"a": kept, "b": rotated, "c": unpaired}}}}
    text = baseline_facts.stored_facts(facts, key.pairs)
    assert kept not in text and rotated not in text and unpaired not in text
    assert fingerprint(BASE, "kept-secret") in text
    # a later run: another run key, the same baseline key; "old-secret" is gone, "new-secret" came
    later = BaselineKey(bytes.fromhex("33" * 32), BASE)
    now_kept = fingerprint(later, "kept-secret")
    now_new = fingerprint(later, "new-secret")
    mapped = baseline_facts.live_facts(text, baseline_facts.reverse_pairs([later.pairs]))
    data = mapped["areas"]["env"]["data"]
    assert data["a"] == now_kept
    assert data["b"] not in (now_kept, now_new) and baseline_facts.FINGERPRINT.fullmatch(data["b"])
    assert fingerprint(BASE, "old-secret") not in json.dumps(mapped)


def test_a_mapped_baseline_never_shares_a_secret_with_a_live_column():
    later = BaselineKey(RUN, BASE)
    fp = fingerprint(later, "shared")
    text = json.dumps({"areas": {"env": {"fp": later.pairs[fp], "secret_fp": later.pairs[fp]}}})
    record = baseline_facts.live_facts(text, baseline_facts.reverse_pairs([later.pairs]))["areas"]["env"]
    assert record["fp"] == fp and record["secret_fp"] != fp


def test_hostile_pairs_are_dropped():
    good = ("hmac-sha256:" + "a" * 24, "hmac-sha256:" + "b" * 24)
    facts = {"baseline_fingerprints": {"pairs": {good[0]: good[1], "x": good[1], good[1]: 7}, "truncated": 0}}
    assert baseline_facts.host_pairs(facts) == ({good[0]: good[1]}, False)
    assert baseline_facts.host_pairs({"baseline_fingerprints": ["x"]}) == ({}, False)
    assert baseline_facts.host_pairs(None) == ({}, False)


def test_stored_facts_are_bounded(monkeypatch):
    monkeypatch.setattr(baseline_facts, "MAX_STORED_BYTES", 50)
    with pytest.raises(BaselineError, match="more than 50 bytes"):
        baseline_facts.stored_facts({"areas": {"env": {"status": "ok", "data": {"x": "y" * 60}}}}, {})


def rows(name):
    return [
        {"host": "p1", "environment": "prod", "label": "prod/p1", "generated_at": "2026-11-20T08:00:00Z"},
        {"host": "p2", "environment": "prod", "label": "prod/p2", "generated_at": "2026-11-20T08:00:00Z"},
        {"host": "d", "environment": "dev", "label": "dev", "generated_at": "2026-11-20T08:00:00Z"},
    ]


def test_extra_columns_follow_the_live_labels_and_keep_a_host_that_is_gone():
    columns = baseline_facts.extra_columns([("prod", "r1")], rows, {"p1": "prod"}.get)
    assert [(c["label"], c["environment"], c["of"], c["host"], c["live"]) for c in columns] == [
        ("prod@r1", "prod@r1", "prod", "p1@r1", "prod"),
        ("prod/p2@r1", "prod@r1", "prod", "p2@r1", None),
    ]
    with pytest.raises(BaselineError, match="holds no facts of environment stage"):
        baseline_facts.extra_columns([("stage", "r1")], rows, {}.get)


def test_since_baseline_lists_the_findings_whose_live_value_moved():
    columns = baseline_facts.extra_columns([("prod", "r1")], lambda name: rows(name)[:1], {"p1": "prod"}.get)
    findings = [
        {"id": "a", "values": {"dev": "1", "prod": "2", "prod@r1": "1"}},
        {"id": "b", "values": {"dev": "1", "prod": "2", "prod@r1": "2"}},
        {"id": "c", "values": {"dev": "1", "prod": "5", "prod@r1": "2"}, "measured": True},
    ]
    (column,) = baseline_facts.since_baseline(findings, columns)
    assert column["changed"] == ["a"] and column["live"] == "prod" and column["generated_at"] == "2026-11-20T08:00:00Z"


def test_a_merged_finding_keeps_the_value_each_column_was_given():
    def policy(label, severity):
        return make_finding(
            area="docker",
            subject="app",
            key="services.worker.privileged",
            kind="policy",
            check="docker.privileged",
            severity=severity,
            values={"dev": None, "prod": None, "prod@r1": None, label: "privileged"},
            environments=[label],
            message="m",
            recommendation="r",
        )

    (merged,) = one_finding_per_fact([policy("prod", "high"), policy("prod@r1", "medium")])
    assert merged["values"] == {"dev": None, "prod": "privileged", "prod@r1": "privileged"}
    assert merged["environments"] == ["prod", "prod@r1"]


# --- the store ----------------------------------------------------------------------------------


def run_record(run_id, at):
    return {
        "run_id": run_id,
        "scope": "s",
        "generated_at": "2026-11-20T08:00:00Z",
        "recorded_at": at,
        "areas": ["env"],
        "unexpected": {},
    }


FACT_ROW = {"host": "p", "environment": "prod", "label": "prod", "key_id": "k1", "request": "{}", "facts": "{}"}


def test_a_store_of_version_1_migrates_and_keeps_its_runs_readable(tmp_path):
    path = str(tmp_path / "h.sqlite")
    connection = sqlite3.connect(path, isolation_level=None)
    for statement in history.MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute("PRAGMA application_id = %d" % history.APPLICATION_ID)
    connection.execute("PRAGMA user_version = 1")
    connection.execute(
        "INSERT INTO runs (run_id, scope, generated_at, recorded_at, baseline, unexpected) "
        "VALUES ('old', 's', '2026-11-01T00:00:00Z', 1, 'r0', '{}')"
    )
    connection.execute("INSERT INTO run_areas VALUES ('s', 'env', 1)")
    connection.close()
    assert history.read_history(path, "s", ["env"], 5, 1)["run_id"] == "old"  # read before migrating
    assert history.read_baseline_facts(path, "r0", 1) == []  # saved without facts
    history.record_run(path, run_record("new", 2), [], 1, 365, baseline_name="r1", baseline_facts=[FACT_ROW])
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == history.STORE_VERSION == 2
    (row,) = history.read_baseline_facts(path, "r1", 1)
    assert {k: row[k] for k in FACT_ROW} == FACT_ROW and row["generated_at"] == "2026-11-20T08:00:00Z"


def test_a_baseline_saved_again_moves_with_its_facts_and_an_unknown_one_is_an_error(tmp_path):
    path = str(tmp_path / "h.sqlite")
    history.record_run(path, run_record("a", 1), [], 1, 365, baseline_name="r1", baseline_facts=[FACT_ROW])
    history.record_run(
        path, run_record("b", 2), [], 1, 365, baseline_name="r1", baseline_facts=[dict(FACT_ROW, facts='{"x":1}')]
    )
    assert [row["facts"] for row in history.read_baseline_facts(path, "r1", 1)] == ['{"x":1}']
    with pytest.raises(history.HistoryError, match="no baseline 'r2'"):
        history.read_baseline_facts(path, "r2", 1)
    with pytest.raises(history.HistoryError, match="does not exist yet"):
        history.read_baseline_facts(str(tmp_path / "none.sqlite"), "r1", 1)


# --- end to end: a baseline saved, a value changed on prod, the column shows exactly that --------


def settings(tmp_path, **changes):
    base = {
        "environments": ["dev", "prod"],
        "production_environments": ["prod"],
        "groups": {"dev": ["d"], "prod": ["p"]},
        "rules_files": [],
        "fail_on": "never",
        "fail_on_new": "never",
        "report_dir": str(tmp_path / "reports"),
        "template": str(TEMPLATE),
        "inventory": "test",
        "keep_run_dir": False,
        "history": True,
        "history_file": str(tmp_path / "reports" / "history.sqlite"),
        "history_retention_days": 365,
        "history_busy_timeout": 1,
        "history_trend_runs": 5,
        "baseline_save": None,
        "baseline_columns": [],
        "baseline_key_file": None,
    }
    base.update(changes)
    return base


def audit_run(tmp_path, files, **changes):
    """One run as the playbook makes it: each host collects its env file with the run key paired
    with the baseline key, the facts land in the run directory, the report step writes it all."""
    config = settings(tmp_path, **changes)
    key = baseline_facts.read_key(config["history_file"] + ".key", create=bool(config["baseline_save"]))
    _, path = run_dir.new_run(str(tmp_path / "runs"), config)
    for host, text in files.items():
        env_file = tmp_path / ("%s.env" % host)
        env_file.write_text(text)
        request = {"env": {"files": [{"name": "app", "path": str(env_file), "template": None}], "project_dir": None}}
        run_dir.store_request(path, host, request)
        run_key = BaselineKey(bytes.fromhex(run_dir.read_key(path)), bytes.fromhex(key))
        assert run_dir.store_facts(path, host, pack(host_facts(collect_areas(request, run_key), run_key))) is None
    write_run_report(path)
    with open(tmp_path / "reports" / "latest.json", encoding="utf-8") as handle:
        document = json.load(handle)
    jsonschema.validate(document, SCHEMA)
    markdown = (tmp_path / "reports" / "latest.md").read_text()
    return document, markdown


SECRET = "Pr0d-" + secrets.token_hex(6)
DEV = "API_TOKEN=dev-token-value\nLOG_LEVEL=INFO\nWORKERS=4\nDB_PASSWORD=devpw\n"
PROD = "API_TOKEN=%s\nLOG_LEVEL=WARNING\nWORKERS=4\nDB_PASSWORD=prodpw1\n" % SECRET


def test_prod_against_its_baseline_shows_exactly_what_changed_there(tmp_path):
    document, _ = audit_run(tmp_path, {"d": DEV, "p": PROD}, baseline_save="release-2026-11-20")
    assert not document["errors"]
    # on prod: WORKERS changes, DB_PASSWORD is rotated; the token stays
    changed_prod = PROD.replace("WORKERS=4", "WORKERS=8").replace("prodpw1", "prodpw2")
    document, markdown = audit_run(
        tmp_path, {"d": DEV, "p": changed_prod}, baseline_columns=["prod@release-2026-11-20"]
    )
    assert not document["errors"]
    assert [(c["label"], c["production"]) for c in document["columns"]] == [
        ("dev", False),
        ("prod", True),
        ("prod@release-2026-11-20", True),  # a baseline of production: the same policies hold it
    ]
    by_id = {f["id"]: f for f in document["findings"]}
    (column,) = document["baseline_columns"]
    assert sorted(by_id[i]["key"] for i in column["changed"]) == ["DB_PASSWORD", "WORKERS"]
    assert column["live"] == "prod" and column["baseline"] == "release-2026-11-20"
    # the unchanged secret is the same secret in both prod columns (same letter), never its value
    token = next(f for f in document["findings"] if f["key"] == "API_TOKEN")
    assert token["values"]["prod"] == token["values"]["prod@release-2026-11-20"] != token["values"]["dev"]
    # prod then and prod now share their token by nature: that is no reuse of a secret
    assert "same secret in prod and prod@release" not in token["message"]
    # WORKERS agrees with dev in the baseline: the finding is about prod alone
    workers = by_id[next(i for i in column["changed"] if by_id[i]["key"] == "WORKERS")]
    assert workers["environments"] == ["prod"] and not workers["expected"]
    assert "## Since the baseline: prod@release-2026-11-20" in markdown
    assert "then `4`, now `8`" in markdown
    # the history sees a run with the column like one without: nothing changed but these two
    assert {f["key"]: f["state"] for f in document["findings"] if f["key"] in ("LOG_LEVEL", "API_TOKEN")} == {
        "LOG_LEVEL": "persisting",
        "API_TOKEN": "persisting",
    }
    # no secret in the report, the store or anything the runs left
    for secret in (SECRET, "prodpw1", "prodpw2", "devpw", "dev-token-value"):
        for root, _, names in os.walk(tmp_path / "reports"):
            for name in names:
                assert secret.encode() not in (tmp_path / root / name).read_bytes(), name
    key = (tmp_path / "reports" / "history.sqlite.key").read_text().strip()
    assert key.encode() not in (tmp_path / "reports" / "history.sqlite").read_bytes()
    assert key not in markdown and key not in json.dumps(document)


def test_a_difference_only_in_the_baseline_column_is_how_it_was_never_drift(tmp_path):
    audit_run(tmp_path, {"d": DEV, "p": PROD.replace("WORKERS=4", "WORKERS=2")}, baseline_save="r1")
    metrics_file = tmp_path / "metrics" / "envparity.prom"
    metrics_file.parent.mkdir()
    document, _ = audit_run(
        tmp_path, {"d": DEV, "p": PROD}, baseline_columns=["prod@r1"], fail_on="low", metrics_file=str(metrics_file)
    )
    # a baseline column is no collection: no series for it
    assert 'host="p"' in metrics_file.read_text() and "p@r1" not in metrics_file.read_text()
    workers = next(f for f in document["findings"] if f["key"] == "WORKERS")
    assert workers["expected"] and workers["environments"] == ["prod@r1"]
    assert "how it was then" in workers["reason"]
    assert workers["id"] in document["baseline_columns"][0]["changed"]


def test_a_replaced_key_or_a_baseline_without_facts_is_an_error_in_the_report(tmp_path):
    audit_run(tmp_path, {"d": DEV, "p": PROD}, baseline_save="r1")
    document, _ = audit_run(tmp_path, {"d": DEV, "p": PROD}, baseline_columns=["prod@r2"])
    assert [e["message"] for e in document["errors"]] == [
        "baseline columns not shown: no baseline 'r2' in %s" % (tmp_path / "reports" / "history.sqlite")
    ]
    assert [c["label"] for c in document["columns"]] == ["dev", "prod"] and "baseline_columns" not in document
    key_file = tmp_path / "reports" / "history.sqlite.key"
    key_file.write_text("cd" * 32)
    document, _ = audit_run(tmp_path, {"d": DEV, "p": PROD}, baseline_columns=["prod@r1"])
    assert (
        "was recorded with another baseline key (the key was replaced): record it again"
        in (document["errors"][0]["message"])
    )


def test_a_baseline_of_a_host_that_is_gone_keeps_its_column_and_says_so(tmp_path):
    audit_run(tmp_path, {"d": DEV, "p": PROD}, baseline_save="r1")
    document, markdown = audit_run(
        tmp_path,
        {"d": DEV, "p2": PROD},
        groups={"dev": ["d"], "prod": ["p2"]},
        baseline_columns=["prod@r1"],
    )
    assert [c["label"] for c in document["columns"]] == ["dev", "prod", "prod@r1"]
    (column,) = document["baseline_columns"]
    assert column["live"] is None and column["host"] == "p" and column["changed"] == []
    assert "prod@r1 (saved %s) has no live column in this run" % column["generated_at"] in markdown
