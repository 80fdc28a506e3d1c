"""The keyed N-way comparison every area's diff shares: which columns have a key, and how a key
compares with the baseline (the first column).

Areas normalise their facts to {key: record} per column (env keys, compose services, deployed
files, schema objects, migration tables) and ask compare_key how one key stands; they only say
what their findings are called and how they read. Pure Python; no Ansible imports.
"""

import operator


def union_keys(mappings):
    """Every key of the columns' mappings, sorted: the identities to compare."""
    return sorted(set().union(*mappings))


def always_same(first, second):
    """For a comparison of presence only (the records are compared elsewhere)."""
    return True


def compare_key(records, labels, same=operator.eq):
    """How one key stands across the columns; labels[0] is the baseline.

    records: {label: record, or None where the key is absent}; same(record, baseline's record)
    says two present records agree. Returns (kind, the labels the finding is about):
    ("missing", the columns lacking it) when the baseline has it, ("extra", the columns having it)
    when the baseline lacks it, ("changed", the columns that differ from the baseline) when every
    column has it; None when nothing differs.
    """
    baseline = records.get(labels[0])
    if baseline is None:
        present = [label for label in labels if records.get(label) is not None]
        return ("extra", present) if present else None
    absent = [label for label in labels if records.get(label) is None]
    if absent:
        return "missing", absent
    differing = [label for label in labels if not same(records[label], baseline)]
    return ("changed", differing) if differing else None


def record_compared(context, subject, key, texts):
    """Keep the shown values one key was compared on, equal ones too ({label: text or None},
    already redacted), for the team policies of the rules file, in areas whose values policies do
    not read from the facts themselves; a no-op unless the audit asks (policies exist)."""
    sink = context.get("compared_values")
    if sink is not None:
        sink.setdefault((subject, key), dict(texts))


def value_outcome(values, labels, key=None):
    """How one value (None where it is unset) stands across the columns; labels[0] is the baseline.

    Returns (kind, every column whose value differs from the baseline's) or None when all agree;
    kind as compare_key gives it (missing when the baseline has it and a column lacks it, extra
    when the baseline lacks it, changed otherwise). key(value): what is compared (default: the
    value itself), e.g. a fingerprint for a secret.
    """
    compared = {label: values[label] if key is None else key(values[label]) for label in labels}
    differing = [label for label in labels if compared[label] != compared[labels[0]]]
    if not differing:
        return None
    presence = compare_key(values, labels, same=always_same)
    return (presence[0] if presence else "changed"), differing
