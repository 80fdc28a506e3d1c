"""How a describe_value record (see module_utils/redact.py) is shown in a report cell.

Shared by every area's diff rules. Pure Python; no Ansible imports.
"""


def secret_letters(records):
    """Name distinct secret values A, B, … in column order so a row shows which are equal."""
    letters = {}
    for record in records:
        if record and record.get("secret") and not record.get("empty") and record.get("fp") not in letters:
            letters[record.get("fp")] = chr(ord("A") + len(letters) % 26)
    return letters


def record_text(record, letters):
    """A record as shown: in clear only when not secret, never its fingerprint."""
    if record is None:
        return None
    if not record.get("secret"):
        return record.get("display") if record.get("display") is not None else ""
    if record.get("empty"):
        return "‹empty secret›"
    label = "‹secret %s, %s chars›" % (letters.get(record.get("fp"), "?"), record.get("length_class") or "?")
    return "%s %s" % (record["display"], label) if record.get("display") else label


def record_cells(records, labels):
    """{label: the record as shown} for one row of records, distinct secrets lettered in column order."""
    letters = secret_letters(records[label] for label in labels)
    return {label: record_text(records[label], letters) for label in labels}


def record_identity(record):
    """What two records are compared by: the value's fingerprint and whether it is secret; None when
    absent."""
    return None if record is None else (record.get("fp"), bool(record.get("secret")))


def any_secret(records):
    return any(record and record.get("secret") for record in records)


def reused_secret(records, production):
    """The columns that hold the same non-empty secret in a production and a non-production column
    (the first such group in column order), or None. records: {label: record or None}."""
    shared = {}
    for label, record in records.items():
        if record and record.get("secret") and not record.get("empty") and record.get("secret_fp"):
            shared.setdefault(record["secret_fp"], []).append(label)
    for labels in shared.values():
        if set(labels) & production and set(labels) - production:
            return labels
    return None


def change_rating(records, otherwise="low"):
    """(severity, note) of a row whose value differs: a secret is info (each environment may need
    its own) and its message notes that only fingerprints were compared; otherwise `otherwise`
    and no note."""
    return ("info", " (compared by fingerprint only)") if any_secret(records) else (otherwise, "")
