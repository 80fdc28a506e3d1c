"""One fact, one finding: findings of different checks about the same key of the same subject
(a policy and a change, e.g. docker services.worker.privileged: declared differently, and
privileged in production) become one finding that gives every reason.

The most severe finding leads (its kind, check, severity and values, where it has one for a
column, else another finding's value there); the others are kept, whole,
under `also`, so that nothing said is lost and each check stays findable. Findings are merged
only when they agree on being expected or not: a rule that marks one of them expected keeps it
apart. A team policy's finding (the rules file's `policies`) is never merged: it is the team's
own. Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SEVERITY_RANK, sort_key


def _lead_order(finding):
    return (-SEVERITY_RANK[finding["severity"]], finding["kind"] == "policy") + sort_key(finding)


def merge_group(group):
    """One finding for findings about the same fact; the lead is the most severe, then the change."""
    ordered = sorted(group, key=_lead_order)
    lead = dict(ordered[0])
    others = ordered[1:]
    if not others:
        return lead
    lead["also"] = [
        {field: other[field] for field in ("kind", "check", "severity", "message", "recommendation")}
        for other in others
    ]
    lead["environments"] = sorted(set(lead["environments"]).union(*(other["environments"] for other in others)))
    # A check made per column (a policy on each production host) holds its own column's value
    # only: each column keeps a value some finding gave it, the lead's first.
    lead["values"] = dict(lead["values"])
    for other in others:
        for label, value in other["values"].items():
            if lead["values"].get(label) is None and value is not None:
                lead["values"][label] = value
    lead["message"] = " ".join([lead["message"]] + [other["message"] for other in others])
    lead["recommendation"] = " ".join([lead["recommendation"]] + [other["recommendation"] for other in others])
    return lead


def one_finding_per_fact(findings):
    """The findings with those about one (area, subject, key, expected) merged, in input order."""
    groups = {}
    for finding in findings:
        if finding["kind"] == "unknown" or "policy" in finding:
            groups[id(finding)] = [finding]
            continue
        fact = (finding["area"], finding["subject"], finding["key"], finding["expected"])
        groups.setdefault(fact, []).append(finding)
    return [merge_group(group) for group in groups.values()]
