"""Finding identity: from area, subject, key and check only; stable under reordering, host
addition and value change; through the real env diff rules."""

import random

from ansible_collections.envparity.audit.plugins.plugin_utils import env_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import finding_id, with_ids
from tests.unit.plugins.plugin_utils.test_env_diff import env_file, plain, secret
from tests.unit.plugins.plugin_utils.test_timeline import finding as timeline_finding


def finding(**changes):
    """An env.value_changed finding about DEBUG, with the fields given changed."""
    return dict(timeline_finding("DEBUG", severity="low"), **changes)


def test_the_id_depends_on_area_subject_key_and_check_only():
    base = finding_id(finding())
    assert len(base) == 16 and int(base, 16) >= 0
    same = [
        finding(values={"dev": "1", "prod": "2"}),
        finding(severity="high", kind="policy"),
        finding(expected=True, reason="r"),
        finding(environments=["prod/web1", "prod/web2"], message="other", recommendation="other"),
    ]
    assert {finding_id(f) for f in same} == {base}
    for field, value in (("area", "git"), ("subject", "worker"), ("key", "DEBUGX"), ("check", "env.key_missing")):
        assert finding_id(finding(**{field: value})) != base, field


def test_fields_cannot_run_into_each_other():
    # "a/b" + "c" is not "a" + "b/c": the separator is a NUL, which no name holds
    assert finding_id(finding(subject="app", key="x.y")) != finding_id(finding(subject="app.x", key="y"))
    assert finding_id(finding(subject="ab", key="c")) != finding_id(finding(subject="a", key="bc"))


def cells_of(hosts, debug_of):
    return {
        label: {
            "files": {
                "app": env_file(
                    {
                        "DEBUG": plain(debug_of(label)),
                        "API_TOKEN": secret("t-%s" % label),
                        "ONLY_DEV": plain("1"),
                    }
                    if label == "dev"
                    else {"DEBUG": plain(debug_of(label)), "API_TOKEN": secret("t-%s" % label)}
                )
            }
        }
        for label in hosts
    }


def ids(labels, debug_of, order=None):
    findings = env_diff.diff(labels, cells_of(labels, debug_of), {"baseline": "dev", "production": set(labels[1:])})
    if order is not None:
        order.shuffle(findings)
    with_ids(findings)
    return {(f["key"], f["check"]): f["id"] for f in findings}


def test_ids_are_stable_across_reordering_host_addition_and_value_change():
    before = ids(["dev", "prod"], lambda label: "true" if label == "dev" else "false")
    assert len(set(before.values())) == len(before) >= 3
    shuffled = ids(["dev", "prod"], lambda label: "true" if label == "dev" else "false", order=random.Random(7))
    assert shuffled == before
    grown = ids(["dev", "prod/web1", "prod/web2"], lambda label: "true" if label == "dev" else "false")
    assert {k: grown[k] for k in before} == before
    other_values = ids(["dev", "prod"], lambda label: "yes" if label == "dev" else "no")
    assert {k: other_values[k] for k in before} == before


def test_the_same_identity_twice_in_a_run_is_told_apart_in_order():
    twins = [finding(), finding(values={"dev": "x"}), finding(key="OTHER")]
    with_ids(twins)
    base = finding_id(twins[0])
    assert [f["id"] for f in twins] == [base, base + "-2", finding_id(twins[2])]
