"""Data parity compared across environments (plugins/plugin_utils/pg_data_parity.py), on facts
built in the contract's shape."""

import pytest

from tests.pg_facts import checks, database, facts, pair, run, run_n, well_formed


def table(exact=None, estimate=100, live=100, never=False):
    return {"estimate": estimate, "live": live, "exact": exact, "never_analyzed": never, "never_vacuumed": never}


def reference(rows, columns=("name", "price"), key_shown=True):
    return {"configured": False, "key": ["id"], "key_shown": key_shown, "columns": list(columns), "rows": rows}


def data(tables=None, reference_tables=None, sequences=None, invalid=None, skipped=None):
    record = {
        "tables": tables or {},
        "invalid_indexes": invalid or [],
        "sequences": sequences or {},
        "reference": reference_tables or {},
        "skipped": skipped or [],
    }

    def mutate(db):
        db["data"] = record

    return mutate


def only_data(findings):
    return [f for f in findings if f["key"].startswith("data.")]


@pytest.mark.parametrize(
    "dev, prod, expected",
    [
        (table(exact=10), table(exact=0), "medium"),  # empty in prod
        (table(exact=0), table(exact=5), "medium"),  # empty in dev
        (table(estimate=1000), table(estimate=100000), "low"),  # 100x
        (table(estimate=1000), table(estimate=90000), None),  # 90x: expected growth
        (table(exact=3), table(exact=5), None),
        (table(estimate=-1, live=None), table(exact=0), None),  # unknown: not compared
    ],
)
def test_row_counts_within_a_tolerance(dev, prod, expected):
    findings = only_data(pair(data({"public.users": dev}), data({"public.users": prod})))
    if expected is None:
        assert findings == []
        return
    assert checks(findings) == [("data.public.users.rows", "changed", "postgres.data_row_count")]
    assert findings[0]["severity"] == expected
    well_formed(findings[0])


def test_the_count_says_whether_it_is_exact_or_an_estimate():
    findings = only_data(pair(data({"public.users": table(exact=12)}), data({"public.users": table(estimate=0)})))
    assert findings[0]["values"] == {"dev": "12 rows (exact)", "prod": "0 rows (estimate)"}


ROWS = {"1": ["aa", "bb"], "2": ["cc", "dd"], "3": ["ee", "ff"]}


def test_reference_rows_missing_added_and_changed_by_key_and_column():
    prod = {"1": ["aa", "bb"], "2": ["cc", "XX"], "4": ["gg", "hh"]}
    findings = only_data(
        pair(
            data(reference_tables={"public.plans": reference(ROWS)}),
            data(reference_tables={"public.plans": reference(prod)}),
        )
    )
    assert checks(findings) == [("data.public.plans", "changed", "postgres.data_reference_rows")]
    assert findings[0]["severity"] == "high"
    assert "prod lacks key 3; adds key 4; changes key 2 (columns price)" in findings[0]["message"]
    assert findings[0]["values"] == {"dev": "3 rows", "prod": "3 rows"}


def test_reference_rows_only_added_are_medium_and_only_common_columns_compare():
    prod = {key: value + ["zz"] for key, value in ROWS.items()} | {"4": ["gg", "hh", "zz"]}
    findings = only_data(
        pair(
            data(reference_tables={"public.plans": reference(ROWS)}),
            data(reference_tables={"public.plans": reference(prod, columns=("name", "price", "note"))}),
        )
    )
    assert findings[0]["severity"] == "medium"
    assert "prod adds key 4." in findings[0]["message"]


def test_secret_keys_are_counted_not_named():
    findings = only_data(
        pair(
            data(reference_tables={"public.api_keys": reference({"fp1": ["a"], "fp2": ["b"]}, ("label",), False)}),
            data(reference_tables={"public.api_keys": reference({"fp1": ["a"]}, ("label",), False)}),
        )
    )
    assert "prod lacks 1 key (the key column looks secret)" in findings[0]["message"]
    assert "fp2" not in findings[0]["message"]


def test_identical_reference_rows_and_tables_read_on_one_side_only_are_no_finding():
    same = data(reference_tables={"public.plans": reference(ROWS)})
    assert only_data(pair(same, same)) == []
    assert only_data(pair(same, data())) == []


SEQUENCE = {"column": "public.notes.id", "increment": 1, "last_value": "1", "max": "50"}


def test_a_sequence_behind_its_data_is_high_on_that_side_only():
    findings = only_data(pair(data(), data(sequences={"public.notes_id_seq": SEQUENCE})))
    assert checks(findings) == [("data.public.notes_id_seq", "policy", "postgres.data_sequence_behind")]
    assert findings[0]["environments"] == ["prod"] and findings[0]["severity"] == "high"
    assert "SELECT setval('public.notes_id_seq', (SELECT max(id) FROM public.notes))" in findings[0]["recommendation"]


def test_a_sequence_never_used_under_a_loaded_column_is_behind_too():
    sequence = dict(SEQUENCE, last_value=None, start="1", readable=True)
    findings = only_data(pair(data(), data(sequences={"public.notes_id_seq": sequence})))
    assert "never used, next value 1" in findings[0]["message"]


@pytest.mark.parametrize(
    "change",
    [
        {"last_value": "50"},
        {"last_value": None},  # and not readable: unknown
        {"last_value": None, "readable": True, "start": "1000"},  # starts past the data
        {"max": None},
        {"increment": -1},
        {"last_value": "60"},
    ],
)
def test_sequences_that_are_not_behind(change):
    sequence = dict(SEQUENCE, **change)
    assert only_data(pair(data(), data(sequences={"public.s": sequence}))) == []


def test_invalid_indexes_never_analyzed_tables_and_skips():
    findings = only_data(
        pair(
            data(tables={"public.t": table(never=True)}, invalid=["public.t.t_idx"]),
            data(
                tables={"public.t": table(never=True)},
                invalid=["public.t.t_idx"],
                skipped=[{"what": "public.big", "reason": "budget"}],
            ),
        )
    )
    assert checks(findings) == [
        ("data.@never_analyzed", "policy", "postgres.data_never_analyzed"),  # production only
        ("data.@skipped", "unknown", "postgres.data_skipped"),
        ("data.public.t.t_idx", "policy", "postgres.data_invalid_index"),
        ("data.public.t.t_idx", "policy", "postgres.data_invalid_index"),
    ]
    severities = {tuple(f["environments"]): f["severity"] for f in findings if f["check"].endswith("invalid_index")}
    assert severities == {("dev",): "medium", ("prod",): "high"}
    skipped = [f for f in findings if f["check"] == "postgres.data_skipped"][0]
    assert "public.big (the time budget ran out)" in skipped["message"]


def test_without_data_parity_nothing_is_said():
    assert only_data(run(facts(app=database()), facts(app=database()))) == []


def test_three_columns_one_differing():
    cells = {label: facts(app=database()) for label in ("dev", "prod/web1", "prod/web2")}
    for label, rows in (("dev", 5), ("prod/web1", 5), ("prod/web2", 0)):
        data({"public.users": table(exact=rows)})(cells[label]["databases"]["app"])
    findings = only_data(run_n(cells))
    assert [(f["key"], f["environments"]) for f in findings] == [("data.public.users.rows", ["prod/web2"])]
