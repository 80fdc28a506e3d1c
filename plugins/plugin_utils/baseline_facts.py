"""Baseline columns: an environment compared with a stored baseline of itself, as an extra column.

A baseline's facts are kept in the history store so that a later audit can show "prod" and
"prod@release-2026-11-20" side by side, through the same diff engine as any live column. Secret
values leave the hosts only as keyed fingerprints, and the run's key is deleted after each run, so
a stored run fingerprint could never match a new one. A run that records or compares a baseline
therefore also sends the hosts a persistent baseline key (a 0600 file beside the store, never
logged, never in the report or the store): every fingerprint a host makes is paired with the same
value's fingerprint under that key (module_utils/redact.py, BaselineKey). A baseline is stored with
baseline fingerprints only; a comparison maps them back onto this run's fingerprints through this
run's pairs, so the report shows run fingerprints only, as always. A stored fingerprint with no
pair in this run (the value is gone) becomes one that matches nothing, keyed with a random salt
that is never kept. See docs/history.md for the security reasoning.
Pure Python; no Ansible imports.
"""

import hashlib
import hmac
import json
import os
import re
import secrets
import stat

BASELINE_SEPARATOR = "@"
# A run's fingerprint as redact.fingerprint writes it (also inside "<redacted:…>" keys).
FINGERPRINT = re.compile(r"hmac-sha256:[0-9a-f]{24}")
FINGERPRINT_PREFIX = "hmac-sha256:"
# One host's stored baseline facts at most (JSON text): the facts bound itself is 64 MiB
# (facts_contract); a baseline is a record to keep, so a quarter of it.
MAX_STORED_BYTES = 16 * 1024 * 1024
KEY_BYTES = 32


class BaselineError(ValueError):
    """A baseline column cannot be built or recorded; the message says why."""


def parse_column(spec):
    """ "prod@release-2026-11-20" -> ("prod", "release-2026-11-20"); BaselineError otherwise."""
    environment, separator, name = (spec or "").partition(BASELINE_SEPARATOR)
    if not separator or not environment.strip() or not name.strip():
        raise BaselineError(
            "drift_baseline_columns entry %r is not ENVIRONMENT@BASELINE (e.g. prod@release-2026-11-20)"
            % (spec or "")[:120]
        )
    return environment.strip(), name.strip()


def check_settings(settings):
    """The baseline column settings, refused before any host is contacted (BaselineError)."""
    specs = settings.get("baseline_columns") or []
    if specs and not settings.get("history", True):
        raise BaselineError("drift_baseline_columns needs the history store (drift_history: true)")
    for spec in specs:
        environment, _ = parse_column(spec)
        if environment not in settings["environments"]:
            raise BaselineError(
                "drift_baseline_columns entry %r names %s, which is not in drift_environments" % (spec, environment)
            )
    if len(set(specs)) != len(specs):
        raise BaselineError("drift_baseline_columns names a column twice")


def key_path(history_file, configured=None):
    """Where the baseline key lives: drift_baseline_key_file, else beside the store."""
    return configured or history_file + ".key"


def read_key(path, create=False):
    """The baseline key (hex), created 0600 when `create` and the file does not exist yet.

    A key readable by others is refused: whoever holds it and the store can test guesses of the
    stored secrets' fingerprints."""
    if create:
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # kept as it is: another audit made it, or an earlier one
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="ascii") as handle:
            text = handle.read(4 * KEY_BYTES).strip()
    except FileNotFoundError:
        raise BaselineError(
            "the baseline key %s does not exist: baselines recorded with another key (or none) cannot be compared; "
            "record the baseline again (drift_baseline_save)" % path
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError("cannot read the baseline key %s: %s" % (path, getattr(exc, "strerror", exc))) from None
    if stat.S_IMODE(mode) & 0o077:
        raise BaselineError("the baseline key %s is readable by others (mode %o): chmod 600 it" % (path, mode & 0o777))
    if not re.fullmatch(r"[0-9a-f]{%d}" % (2 * KEY_BYTES), text):
        raise BaselineError("the baseline key %s is not %d hex digits" % (path, 2 * KEY_BYTES))
    return text


def run_key_of(settings, create=False):
    """The baseline key of a run's settings (read_key of drift_baseline_key_file or beside the store)."""
    return read_key(key_path(settings["history_file"], settings.get("baseline_key_file")), create)


def key_id(key_hex):
    """Which key a baseline was recorded with (a keyed digest of a constant: it reveals no key)."""
    return hmac.new(bytes.fromhex(key_hex), b"envparity baseline key id", hashlib.sha256).hexdigest()[:16]


# The field of a value record (redact.describe_value) that areas compare to find one secret reused
# in several columns.
REUSE_FIELD = "secret_fp"


def rekey(value, replace, reuse=None):
    """`value` with every fingerprint in its strings (dict keys too) replaced by replace(fp), or
    by reuse(fp) in the REUSE_FIELD of a record when reuse is given."""
    if isinstance(value, dict):
        return {
            rekey(key, replace): rekey(item, reuse if reuse is not None and key == REUSE_FIELD else replace, reuse)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [rekey(item, replace, reuse) for item in value]
    if isinstance(value, str) and FINGERPRINT_PREFIX in value:
        return FINGERPRINT.sub(lambda match: replace(match.group()), value)
    return value


def host_pairs(facts):
    """A host's {run fp: baseline fp} from its facts, checked (hostile input), and whether the host
    had more than it could pair. ({}, False) for facts without pairs."""
    record = (facts or {}).get("baseline_fingerprints")
    if not isinstance(record, dict) or not isinstance(record.get("pairs"), dict):
        return {}, False
    pairs = {
        run: base
        for run, base in record["pairs"].items()
        if isinstance(base, str) and FINGERPRINT.fullmatch(run) and FINGERPRINT.fullmatch(base)
    }
    return pairs, bool(record.get("truncated"))


def _unmatched(salt):
    """A fingerprint that matches nothing else of the run, the same for the same input."""
    return lambda fp: FINGERPRINT_PREFIX + hmac.new(salt, fp.encode("ascii"), hashlib.sha256).hexdigest()[:24]


def stored_facts(facts, pairs):
    """A host's facts as a baseline keeps them: the areas only, every run fingerprint replaced by
    its baseline twin (one without a twin, by a random one that matches nothing). JSON text."""
    unpaired = _unmatched(secrets.token_bytes(KEY_BYTES))
    areas = rekey(facts.get("areas") or {}, lambda fp: pairs.get(fp) or unpaired(fp))
    text = json.dumps({"areas": areas}, sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_STORED_BYTES:
        raise BaselineError("its facts take more than %d bytes" % MAX_STORED_BYTES)
    return text


def live_facts(text, run_of):
    """A stored baseline's facts with this run's fingerprints: run_of is {baseline fp: run fp} of
    this run's hosts; a value this run did not see gets a fingerprint that matches nothing,
    keyed with a salt that lives only as long as this call. The fingerprints that find a secret
    reused across columns match nothing either: prod then and prod now hold the same secret by
    nature, which is no reuse (reuse is a finding about the live environments)."""
    unmatched = _unmatched(secrets.token_bytes(KEY_BYTES))
    return rekey(json.loads(text), lambda fp: run_of.get(fp) or unmatched(fp), unmatched)


def reverse_pairs(all_pairs):
    """{baseline fp: run fp} from the hosts' {run fp: baseline fp} (one key pair per run, so the
    hosts' pairs agree)."""
    reverse = {}
    for pairs in all_pairs:
        for run, base in pairs.items():
            reverse[base] = run
    return reverse


def baseline_label(live_label, name):
    return "%s%s%s" % (live_label, BASELINE_SEPARATOR, name)


def extra_columns(specs, rows_of, live_label_of):
    """The baseline columns, in the order of `specs` ([(environment, name)]): rows_of(name) gives
    the stored hosts of that baseline ([{label, environment, host, ...}]), live_label_of(host) the
    host's live column label in this run (None: the host is not audited now, or no longer exists).
    Each column is {label, environment, of, host, live, baseline, row}; its host is "host@name"
    (never a live host), its environment "environment@name" (its own column group), `of` the
    live environment it is a baseline of."""
    columns = []
    for environment, name in specs:
        rows = [row for row in rows_of(name) if row["environment"] == environment]
        if not rows:
            raise BaselineError("baseline %r holds no facts of environment %s" % (name, environment))
        for row in rows:
            live = live_label_of(row["host"])
            columns.append(
                {
                    "label": baseline_label(live or row["label"], name),
                    "environment": baseline_label(environment, name),
                    "of": environment,
                    "host": baseline_label(row["host"], name),
                    "live": live,
                    "baseline": name,
                    "row": row,
                }
            )
    return columns


def since_baseline(findings, columns):
    """Per baseline column: the findings whose value in the live column differs from the
    baseline's (what changed there since the baseline). Measured findings (times, loads held to a
    tolerance) are left out: their values move from run to run."""
    result = []
    for column in columns:
        live = column["live"]
        changed = []
        if live is not None:
            for finding in findings:
                values = finding["values"]
                if finding.get("measured") or values.get(live) == values.get(column["label"]):
                    continue
                changed.append(finding["id"])
        result.append(
            {
                "label": column["label"],
                "live": live,
                "baseline": column["baseline"],
                "host": column["row"]["host"],
                "generated_at": column["row"]["generated_at"],
                "changed": changed,
            }
        )
    return result
