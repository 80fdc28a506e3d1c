"""Baseline columns in a run: read the stored baselines into columns for build_audit, and the
rows that record this run's facts as a baseline. Glue between the run directory, the history
store and baseline_facts (the pure part). Pure Python; no Ansible imports.
"""

import json

from ansible_collections.envparity.audit.plugins.plugin_utils import baseline_facts, history, run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_facts import BaselineError

NO_BASELINE = {"columns": [], "facts": {}, "requests": {}}


def needs_key(settings):
    """Whether the run sends the baseline key to the hosts: it records or compares a baseline's facts."""
    return bool(settings.get("history") and (settings.get("baseline_save") or settings.get("baseline_columns")))


def live_facts_and_pairs(run_directory, hosts):
    """({host: facts}, [each host's {run fp: baseline fp}], hosts that had more than they could pair)."""
    facts, pairs, truncated = {}, [], []
    for host in hosts:
        found = run_dir.load_facts(run_directory, host)
        if found is None:
            continue
        facts[host] = found
        host_pairs, cut = baseline_facts.host_pairs(found)
        pairs.append(host_pairs)
        if cut:
            truncated.append(host)
    return facts, pairs, truncated


def _rows_reader(settings, key_id):
    def rows_of(name):
        try:
            rows = history.read_baseline_facts(settings["history_file"], name, settings["history_busy_timeout"])
        except history.HistoryError as exc:
            raise BaselineError(str(exc)) from None
        if not rows:
            raise BaselineError("baseline %r was saved without facts (before baseline columns existed)" % name)
        if any(row["key_id"] != key_id for row in rows):
            raise BaselineError(
                "baseline %r was recorded with another baseline key (the key was replaced): record it again" % name
            )
        return rows

    return rows_of


def baseline_columns(settings, run_directory, live_columns, requests):
    """(the `baseline` argument of build_audit, [{label, live, baseline, host, generated_at}] of
    the columns, errors for the report). Nothing is raised: a baseline that cannot be shown is an
    error in the report, and the audit goes on without its column."""
    specs = settings.get("baseline_columns") or []
    if not specs:
        return NO_BASELINE, [], []
    try:
        key = baseline_facts.run_key_of(settings)
        parsed = [baseline_facts.parse_column(spec) for spec in specs]
        live_label = {column["host"]: column["label"] for column in live_columns}
        rows_of = _rows_reader(settings, baseline_facts.key_id(key))
        columns = baseline_facts.extra_columns(parsed, rows_of, live_label.get)
    except BaselineError as exc:
        return NO_BASELINE, [], ["baseline columns not shown: %s" % exc]
    _, pairs, truncated = live_facts_and_pairs(run_directory, list(live_label))
    run_of = baseline_facts.reverse_pairs(pairs)
    # Only the areas this run audits: a baseline of every area does not widen an audit of --tags env.
    audited = {area for request in requests.values() for area, value in (request or {}).items() if value is not None}
    built = {"columns": columns, "facts": {}, "requests": {}}
    for column in columns:
        stored = baseline_facts.live_facts(column["row"]["facts"], run_of)
        request = json.loads(column["row"]["request"]) or {}
        built["requests"][column["host"]] = {area: value for area, value in request.items() if area in audited}
        built["facts"][column["host"]] = {
            "areas": {area: value for area, value in stored["areas"].items() if area in audited}
        }
    errors = [
        "%s fingerprinted more values than it could pair with the baseline key: some equal secrets may show as changed"
        % host
        for host in truncated
    ]
    return built, columns, errors


def baseline_rows(settings, run_directory, columns, states, requests):
    """The rows that record this run's facts under drift_baseline_save: every live host whose facts
    were collected, every fingerprint replaced by its baseline twin. ([rows], errors)."""
    if not settings.get("baseline_save"):
        return [], []
    try:
        key = baseline_facts.run_key_of(settings)
    except BaselineError as exc:
        return [], ["baseline facts not recorded: %s" % exc]
    key_id = baseline_facts.key_id(key)
    rows, errors = [], []
    for column in columns:
        host = column["host"]
        if states[host]["status"] != "ok":
            errors.append("baseline facts of %s not recorded: %s" % (column["label"], states[host]["reason"]))
            continue
        facts, pairs, _ = live_facts_and_pairs(run_directory, [host])
        try:
            text = baseline_facts.stored_facts(facts[host], pairs[0])
        except BaselineError as exc:
            errors.append("baseline facts of %s not recorded: %s" % (column["label"], exc))
            continue
        rows.append(
            {
                "host": host,
                "environment": column["environment"],
                "label": column["label"],
                "key_id": key_id,
                "request": json.dumps(requests.get(host), sort_keys=True),
                "facts": text,
            }
        )
    return rows, errors
