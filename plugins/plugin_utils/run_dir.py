"""The run directory: where one audit's facts land on the controller.

Layout: <run_dir>/key (per-run HMAC key, 0600, a link to it in /dev/shm where there is one; deleted
when the report step starts or the run ends in any other way, see close_run), settings.json (what
the report needs: environments, groups, rules, gate, paths), requests/<host>.json (what each host
was asked to collect, written before collection so that an unreachable host is still known),
facts/<host>.b64gz (packed facts), errors/<host>.json (why a host could not be collected). Facts
are checked against facts_contract before they are stored and again when they are read.

A shared run (drift_phase collect/report, for AWX job slicing) is named by its run id instead of
a fresh one: collect jobs, each on a subset of the hosts, open it or join it, and one report job
claims it (the file `reported`, created exclusively) and diffs what it holds. Its key is a file of
the run directory (0600) rather than a link to /dev/shm, because the jobs may run on different
machines that share only the run store; it is deleted when the report step starts, as any key.
Pure Python; no Ansible imports.
"""

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import time

from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import MAX_BLOB_BYTES, FactsError, unpack

KEY_FILE = "key"


def atomic_write(path, data, mode=0o644):
    """Write bytes or text so that readers never see a partial file."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# Ansible's own debug switches that put the run key and the database passwords where they stay:
# the terminal (module arguments printed in clear) and files left on the hosts.
UNSAFE_SWITCHES = (
    ("ANSIBLE_DEBUG", "prints every module's arguments in clear, no_log or not"),
    ("ANSIBLE_KEEP_REMOTE_FILES", "leaves the module with its arguments in files on the hosts"),
)


def unsafe_switches(debug, keep_remote_files):
    """The sentences naming each unsafe debug switch that is on."""
    on = {"ANSIBLE_DEBUG": debug, "ANSIBLE_KEEP_REMOTE_FILES": keep_remote_files}
    return ["%s %s" % (name, effect) for name, effect in UNSAFE_SWITCHES if on[name]]


# Memory-backed file systems tried in order for the key, so that it never reaches a disk (whose
# blocks keep an unlinked file's bytes); the run directory holds a symbolic link to it. Without
# one (no /dev/shm), the key is a file of the run directory.
KEY_HOMES = ("/dev/shm",)
KEY_DIR_PREFIX = "envparity-key-"
# An audit takes minutes: a key older than this was left by a run killed beyond the reach of any
# handler (SIGKILL, a power cut), and the next run deletes it.
STALE_KEY_SECONDS = 3600
# A shared run's slices may wait in a queue for hours: its key lasts a day (it goes with the report).
SHARED_STALE_KEY_SECONDS = 86400
SHARED_MARK = "shared"
REPORTED_MARK = "reported"
# A run id names a directory: letters, digits, '.', '_' and '-' (AWX's workflow job id, a date…).
RUN_ID_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


def _is_stale(path, now, limit=None):
    """True for a path older than `limit` seconds (default STALE_KEY_SECONDS), by its own time,
    links included."""
    try:
        return now - os.lstat(path).st_mtime > (limit or STALE_KEY_SECONDS)
    except OSError:
        return False


def _entries(directory):
    try:
        return [os.path.join(directory, name) for name in os.listdir(directory)]
    except OSError:
        return []


def discard_stale_keys(base_dir, now=None):
    """Delete the keys older than STALE_KEY_SECONDS: of earlier runs under base_dir, and every key
    directory in the memory file systems that this user may delete (whatever report directory its
    run had)."""
    now = time.time() if now is None else now
    for home in KEY_HOMES:
        for key_dir in _entries(home):
            if os.path.basename(key_dir).startswith(KEY_DIR_PREFIX) and _is_stale(key_dir, now):
                shutil.rmtree(key_dir, ignore_errors=True)
    for run_path in _entries(base_dir):
        limit = SHARED_STALE_KEY_SECONDS if os.path.exists(os.path.join(run_path, SHARED_MARK)) else None
        if _is_stale(os.path.join(run_path, KEY_FILE), now, limit):
            discard_key(run_path)


def _key_home():
    for home in KEY_HOMES:
        if os.path.isdir(home) and os.access(home, os.W_OK | os.X_OK):
            return home
    return None


def _write_key(run_path, shared=False):
    key = secrets.token_hex(32)
    home = None if shared else _key_home()
    if home is None:
        atomic_write(os.path.join(run_path, KEY_FILE), key, mode=0o600)
        return
    key_dir = tempfile.mkdtemp(prefix=KEY_DIR_PREFIX, dir=home)  # 0700
    try:
        atomic_write(os.path.join(key_dir, KEY_FILE), key, mode=0o600)
        os.symlink(os.path.join(key_dir, KEY_FILE), os.path.join(run_path, KEY_FILE))
    except BaseException:
        shutil.rmtree(key_dir, ignore_errors=True)
        raise


def new_run(base_dir, settings=None):
    """Create a fresh run directory with its own random key and settings; returns (run_id, path).

    A run that cannot be opened completely (a full disk) leaves nothing behind, key included.
    """
    discard_stale_keys(base_dir)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)
    path = os.path.join(base_dir, run_id)
    os.makedirs(base_dir, exist_ok=True)
    os.mkdir(path, mode=0o700)
    try:
        _fill_run(path, settings, shared=False)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return run_id, path


class SharedRunError(Exception):
    """A shared run that cannot be opened, joined or reported as asked."""


def check_run_id(run_id):
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise SharedRunError(
            "drift_run_id %r is not a run id: 1 to 100 letters, digits, '.', '_' or '-', not starting with "
            "'.', '_' or '-'" % (run_id,)
        )


def _fill_run(path, settings, shared):
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    for sub in ("facts", "errors", "requests"):
        os.mkdir(os.path.join(path, sub), mode=0o700)
    atomic_write(os.path.join(path, "settings.json"), json.dumps(settings or {}, sort_keys=True), mode=0o600)
    if shared:
        atomic_write(os.path.join(path, SHARED_MARK), "", mode=0o600)
    _write_key(path, shared)


def open_shared_run(base_dir, run_id, settings):
    """The collect phase: open the shared run `run_id`, or join it when another collect job opened
    it first (concurrent slices: it is built aside and renamed into place, so a run directory is
    always complete). Returns (path, opened: bool)."""
    check_run_id(run_id)
    discard_stale_keys(base_dir)
    path = os.path.join(base_dir, run_id)
    os.makedirs(base_dir, exist_ok=True)
    if not os.path.isdir(path):
        aside = tempfile.mkdtemp(prefix=".tmp-run-", dir=base_dir)
        try:
            _fill_run(aside, settings, shared=True)
            os.rename(aside, path)
            return path, True
        except OSError:
            if not os.path.isdir(path):  # not lost to another slice: a real failure
                raise
        finally:
            discard_key(aside)
            shutil.rmtree(aside, ignore_errors=True)
    check_joinable(path, run_id, settings)
    return path, False


def check_joinable(path, run_id, settings):
    """A collect job joins only a run that is shared, not yet reported, keyed, and audits the same
    areas (the report could not compare hosts asked different things)."""
    if not os.path.exists(os.path.join(path, SHARED_MARK)):
        raise SharedRunError("run %s is not a shared run (it was opened by a single-command audit)" % run_id)
    if os.path.exists(os.path.join(path, REPORTED_MARK)):
        raise SharedRunError("run %s was already reported: its facts can no longer be added to" % run_id)
    if not os.path.exists(os.path.join(path, KEY_FILE)):
        raise SharedRunError("run %s has no key left (older than a day, or its report started)" % run_id)
    opened_with = load_settings(path).get("areas")
    if opened_with != settings.get("areas"):
        raise SharedRunError(
            "run %s audits the areas %s; this collect job asks for %s: every slice of a run must audit "
            "the same areas" % (run_id, ", ".join(opened_with or []), ", ".join(settings.get("areas") or []))
        )


def claim_shared_run(base_dir, run_id, settings):
    """The report phase: claim the shared run `run_id` for this report job, once. Its settings
    become the report job's (its inventory knows every host, where a slice's may not), except what
    describes the collection: the areas and when it started. Returns the path."""
    check_run_id(run_id)
    path = os.path.join(base_dir, run_id)
    if not os.path.exists(os.path.join(path, SHARED_MARK)):
        raise SharedRunError(
            "no shared run %s under %s: no collect job of it ran with this drift_report_dir (or its "
            "report was written and the run directory removed)" % (run_id, base_dir)
        )
    try:
        fd = os.open(os.path.join(path, REPORTED_MARK), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SharedRunError(
            "run %s is already being reported, or was reported, by another report job" % run_id
        ) from None
    os.close(fd)
    collected = load_settings(path)
    merged = dict(settings, areas=collected.get("areas"), started_at=collected.get("started_at"), shared=True)
    atomic_write(os.path.join(path, "settings.json"), json.dumps(merged, sort_keys=True), mode=0o600)
    return path


def hosts_not_collected(settings, requests):
    """The hosts of the compared environments of which no collect job left a trace."""
    return [
        host for name in settings["environments"] for host in settings["groups"].get(name, ()) if host not in requests
    ]


def mark_not_collected(run_dir, settings, run_id):
    """A shared run's hosts that no slice collected (a slice missing, failed before this host, or
    still running) are reported as could not collect, never left out as a --limit would. Returns them."""
    missing = hosts_not_collected(settings, load_requests(run_dir))
    for host in missing:
        store_request(run_dir, host, None)
        reason = "no collect job of run %s delivered this host's facts (a slice missing, or still running)" % run_id
        store_error(run_dir, host, {"host": host, "status": "not collected", "task": "collect", "reason": reason})
    return missing


def load_settings(run_dir):
    with open(os.path.join(run_dir, "settings.json"), encoding="utf-8") as handle:
        return json.loads(handle.read())


def read_key(run_dir):
    with open(os.path.join(run_dir, KEY_FILE), encoding="ascii") as handle:
        return handle.read().strip()


def discard_key(run_dir):
    """Delete the run's key: without it the fingerprints kept with the facts cannot be tested
    against guesses (a 4-digit PIN falls in milliseconds with the key). Safe to call twice."""
    link = os.path.join(run_dir, KEY_FILE)
    with contextlib.suppress(FileNotFoundError):
        if os.path.islink(link):
            key_dir = os.path.dirname(os.readlink(link))
            # only what new_run made: a key file in its own directory of a memory file system
            if os.path.dirname(key_dir) in KEY_HOMES and os.path.basename(key_dir).startswith(KEY_DIR_PREFIX):
                shutil.rmtree(key_dir, ignore_errors=True)
        os.unlink(link)


def close_run(run_dir):
    """The end of a run, however it ended: the key goes, and the rest too unless the settings keep it."""
    discard_key(run_dir)
    try:
        keep = load_settings(run_dir).get("keep_run_dir")
    except (OSError, ValueError):
        return  # already removed (the report step did it), or never complete
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)


def close_run_on_exit(current_run_dir):
    """Close current_run_dir() (None before a run is opened) when this process ends: normally or by
    SIGINT (KeyboardInterrupt, then exit), and by SIGTERM or SIGHUP, whose handler closes it and then
    does what the previous handler did. SIGKILL cannot be caught (see discard_stale_keys).
    Called in ansible-playbook's main process, after Ansible has installed its own handlers."""

    def close():
        directory = current_run_dir()
        if directory:
            close_run(directory)

    def on_signal(signum, frame, previous):
        close()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    atexit.register(close)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(signum)
        signal.signal(signum, lambda number, frame, previous=previous: on_signal(number, frame, previous))


def _host_file(run_dir, sub, host, suffix):
    safe = host.replace(os.sep, "_")
    return os.path.join(run_dir, sub, safe + suffix)


def store_facts(run_dir, host, blob):
    """Keep the packed facts as sent, once they unpack within bounds and have the host envelope.

    Facts that do not are not kept: the host gets an error record (could not collect) with the
    reason, which is returned; None when the facts were stored.
    """
    try:
        unpack(blob)
    except FactsError as exc:
        reason = "its facts cannot be used: %s" % exc
        store_error(run_dir, host, {"host": host, "status": "failed", "task": "store facts", "reason": reason})
        return reason
    atomic_write(_host_file(run_dir, "facts", host, ".b64gz"), blob, mode=0o600)
    return None


def load_facts(run_dir, host):
    """The host's facts, or None when the host never delivered any.

    Facts on disk are checked again (they may not have come through store_facts): unusable ones
    become every requested area failed with the reason, so the other hosts are still reported.
    """
    path = _host_file(run_dir, "facts", host, ".b64gz")
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as handle:
            return unpack(handle.read(MAX_BLOB_BYTES + 1))
    except FactsError as exc:
        reason = "its facts cannot be used: %s" % exc
    request = _load_request(run_dir, host) or {}
    return {"areas": {area: {"status": "failed", "reason": reason} for area in request}}


def store_error(run_dir, host, record):
    atomic_write(_host_file(run_dir, "errors", host, ".json"), json.dumps(record, sort_keys=True), mode=0o600)


def load_error(run_dir, host):
    path = _host_file(run_dir, "errors", host, ".json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.loads(handle.read())


def store_request(run_dir, host, request):
    record = {"host": host, "areas": request}
    atomic_write(_host_file(run_dir, "requests", host, ".json"), json.dumps(record, sort_keys=True), mode=0o600)


def _load_request(run_dir, host):
    path = _host_file(run_dir, "requests", host, ".json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.loads(handle.read())["areas"]


def load_requests(run_dir):
    """{host: {area: request}} of every host that was asked to collect."""
    requests = {}
    directory = os.path.join(run_dir, "requests")
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                record = json.loads(handle.read())
            requests[record["host"]] = record["areas"]
    return requests
