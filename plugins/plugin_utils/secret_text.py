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
