"""The run directory: where one audit's facts land on the controller.

Layout: <run_dir>/key (per-run HMAC key, 0600), settings.json (what the report needs: environments,
groups, rules, gate, paths), requests/<host>.json (what each host was asked to collect, written
before collection so that an unreachable host is still known), facts/<host>.b64gz (packed facts),
errors/<host>.json (why a host could not be collected).
Pure Python; no Ansible imports.
"""

import json
import os
import secrets
import tempfile
import time

from ansible_collections.envparity.audit.plugins.module_utils.collect import unpack


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


def new_run(base_dir, settings=None):
    """Create a fresh run directory with its own random key and settings; returns (run_id, path)."""
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)
    path = os.path.join(base_dir, run_id)
    os.makedirs(os.path.join(path, "facts"), mode=0o700)
    os.makedirs(os.path.join(path, "errors"), mode=0o700)
    os.makedirs(os.path.join(path, "requests"), mode=0o700)
    os.chmod(path, 0o700)
    atomic_write(os.path.join(path, "key"), secrets.token_hex(32), mode=0o600)
    atomic_write(os.path.join(path, "settings.json"), json.dumps(settings or {}, sort_keys=True), mode=0o600)
    return run_id, path


def load_settings(run_dir):
    with open(os.path.join(run_dir, "settings.json"), encoding="utf-8") as handle:
        return json.loads(handle.read())


def read_key(run_dir):
    with open(os.path.join(run_dir, "key"), encoding="ascii") as handle:
        return handle.read().strip()


def _host_file(run_dir, sub, host, suffix):
    safe = host.replace(os.sep, "_")
    return os.path.join(run_dir, sub, safe + suffix)


def store_facts(run_dir, host, blob):
    """Keep the packed facts as sent; the report step unpacks them."""
    atomic_write(_host_file(run_dir, "facts", host, ".b64gz"), blob, mode=0o600)


def load_facts(run_dir, host):
    """The host's facts, or None when the host never delivered any."""
    path = _host_file(run_dir, "facts", host, ".b64gz")
    if not os.path.exists(path):
        return None
    with open(path, encoding="ascii") as handle:
        return unpack(handle.read())


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
