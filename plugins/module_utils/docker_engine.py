"""Collect the runtime state of a Docker engine on a host, read-only.

Standard library only, Python 3.8+: this module runs on the audited hosts.

The Docker Engine API is spoken over the engine's unix socket with
``http.client`` (no Docker SDK, no docker CLI).  Every request is a GET on one
keep-alive connection: ``/version`` (which also gives the API version used for
the other paths), ``/containers/json?all=1``, ``/containers/{id}/json`` for
each container and ``/images/json``.  Nothing is ever created, started,
stopped or removed.

The answers are normalised into the ENGINE facts of docs/docker-facts.md:
environment values go through ``describe_value`` (secrets leave the host only
as fingerprints), ports and mounts become the canonical strings of
docker_forms (which the compose side writes through too), and volatile
values (ids of containers, creation and start times, pids) are dropped.

The whole collection runs within ``timeout`` seconds: each socket operation
waits at most for the time left, and a watchdog shuts the socket down at the
deadline, so an engine that accepts and never answers cannot hold the audit.
Answers are read up to a size limit, and at most ``MAX_CONTAINERS`` containers
are inspected (``truncated`` says when more exist).

Reasons are fixed sentences: they name the socket and the request, never a
value that came from the API.
"""

import contextlib
import errno
import grp
import http.client
import json
import os
import re
import socket
import stat
import threading
import time

from ansible_collections.envparity.audit.plugins.module_utils.bounded_run import CollectError
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import (
    capabilities,
    nanoseconds_text,
    port_list,
    port_text,
    volume_name,
    volume_text,
    words_fingerprint,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    MASK,
    describe_value,
    fingerprint,
    looks_like_token,
)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 10
# Containers inspected at most; beyond that the result says "truncated".
MAX_CONTAINERS = 2000
# Largest answer read for a list (containers, images) and for one inspection.
MAX_LIST_BYTES = 64 * 1024 * 1024
MAX_INSPECT_BYTES = 8 * 1024 * 1024
READ_CHUNK = 256 * 1024

COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_HASH_LABEL = "com.docker.compose.config-hash"
# The labels Compose writes itself (project, service, hash, files...): not the compose file's.
COMPOSE_LABEL_PREFIX = "com.docker.compose."
# Secret values of a container's environment at least this long (or token-shaped) are masked in
# its command, entrypoint and healthcheck as shown (the compose side's rule).
MIN_ECHO_LENGTH = 12

_API_VERSION = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# The name Docker gives an anonymous volume: 64 hex digits.
_ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")
_NONE_TAGS = frozenset({"<none>:<none>", "<none>@<none>"})
# What a container id from the list may look like before it goes into a path.
_CONTAINER_ID = re.compile(r"^[0-9A-Za-z_.-]+$")


# socket.timeout is TimeoutError from Python 3.10 on, its own OSError before.
_TIMEOUTS = (TimeoutError, getattr(socket, "timeout", TimeoutError))


class EngineError(CollectError):
    """The engine could not be audited; carries a status and a reason sentence."""


class Gone(Exception):
    """The object asked for no longer exists (HTTP 404)."""


# ---------------------------------------------------------------- the result


def empty_engine(status, reason=None):
    """An ENGINE result with nothing collected."""
    return {
        "status": status,
        "reason": reason,
        "version": None,
        "api_version": None,
        "containers": [],
        "images": [],
        "truncated": False,
    }


# ---------------------------------------------------------------- small type guards

# The API is trusted for its meaning, not for its shape: every field is read
# through these, so an odd answer gives None or an empty value, never a crash.


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _dicts(value):
    """The items of a list that are objects."""
    return [item for item in _list(value) if isinstance(item, dict)]


def _str(value):
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _int(value, default=None):
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _bool(value):
    return value is True


def _positive(value):
    """A limit: 0 or absent means "no limit" and is None."""
    number = _int(value)
    return number if number else None


# ---------------------------------------------------------------- docker_host


def socket_path(docker_host):
    """The socket path of a ``unix://`` Docker host; raise EngineError otherwise.

    ``unix://`` alone (and an empty host) means the default socket.
    """
    host = docker_host if isinstance(docker_host, str) and docker_host.strip() else DEFAULT_DOCKER_HOST
    host = host.strip()
    match = _SCHEME.match(host)
    if not match:
        raise EngineError(
            "unsupported",
            "drift_docker_host is not a URL such as unix:///var/run/docker.sock; only unix:// sockets are supported.",
        )
    scheme = match.group(1).lower()
    if scheme != "unix":
        raise EngineError(
            "unsupported",
            "drift_docker_host uses %s://; only unix:// sockets are supported (audit that engine on its own host)."
            % scheme,
        )
    path = host[match.end() :]
    return path or DEFAULT_DOCKER_HOST[len("unix://") :]


# ---------------------------------------------------------------- the connection


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix stream socket; http.client keeps it alive between requests."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _group_hint(path):
    """ "membership of its group 'docker'" when the socket's group can be named."""
    try:
        st = os.stat(path)
        if not stat.S_ISSOCK(st.st_mode):
            return "access to it"
        return "access to it, e.g. membership of its group '%s'" % grp.getgrgid(st.st_gid).gr_name
    except (OSError, KeyError, OverflowError):
        return "access to it, e.g. membership of its group"


class Session:
    """GET requests on one keep-alive connection, all within one deadline (the health area opens
    several, one per worker thread, for its concurrent stats and logs)."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.expired = False
        self.prefix = ""
        self.conn = UnixHTTPConnection(path, timeout)
        self._lock = threading.Lock()
        self._watchdog = threading.Timer(timeout, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self):
        # Wakes a read blocked on a server that sends nothing (or drips).
        with self._lock:
            self.expired = True
            sock = self.conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self):
        self._watchdog.cancel()
        with self._lock:
            self.conn.close()

    def _remaining(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or self.expired:
            raise self._timeout_error()
        return remaining

    def _timeout_error(self):
        return EngineError(
            "failed",
            "The Docker engine at %s did not answer within %s seconds." % (self.path, _seconds(self.timeout)),
        )

    def _set_timeout(self):
        remaining = self._remaining()
        self.conn.timeout = remaining
        if self.conn.sock is not None:
            self.conn.sock.settimeout(remaining)

    def get_json(self, path, what, max_bytes):
        """GET prefix+path and decode the JSON answer; raise EngineError or Gone."""
        body = self.get_bytes(path, what, max_bytes)
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            # The error text quotes the answer: not passed on.
            raise EngineError(
                "failed", "The Docker engine at %s answered %s with malformed JSON." % (self.path, what)
            ) from None

    def get_bytes(self, path, what, max_bytes, cut=False):
        """GET prefix+path and return the answer's bytes (a log stream is no JSON); raise EngineError
        or Gone. With cut, an answer larger than max_bytes is cut there instead of refused."""
        try:
            return self._get_body(path, what, max_bytes, cut)
        except EngineError:
            raise
        except Gone:
            raise
        except _TIMEOUTS:
            raise self._timeout_error() from None
        except OSError as exc:
            if self.expired:
                raise self._timeout_error() from None
            raise self._os_error(exc) from None
        except http.client.HTTPException:
            self.conn.close()
            if self.expired:
                raise self._timeout_error() from None
            raise EngineError(
                "failed",
                "The Docker engine at %s closed the connection or gave an answer that is not HTTP (%s)."
                % (self.path, what),
            ) from None

    def _get_body(self, path, what, max_bytes, cut=False):
        self._set_timeout()
        self.conn.request(
            "GET",
            self.prefix + path,
            headers={"Accept": "application/json", "User-Agent": "envparity-audit"},
        )
        response = self.conn.getresponse()
        body = self._read(response, what, max_bytes, cut)
        if response.status == 404:
            raise Gone()
        if response.status in (401, 403):
            raise EngineError(
                "permission_denied",
                "The Docker engine at %s refused %s (HTTP %d): an authorization plugin or proxy denies the audit user."
                % (self.path, what, response.status),
            )
        if response.status != 200:
            raise EngineError(
                "failed",
                "The Docker engine at %s answered %s with HTTP status %d." % (self.path, what, response.status),
            )
        return body

    def _read(self, response, what, max_bytes, cut=False):
        length = response.getheader("Content-Length")
        if not cut and length and length.strip().isdigit() and int(length) > max_bytes:
            self.conn.close()
            raise self._too_large(what, max_bytes)
        chunks = []
        total = 0
        while True:
            self._set_timeout()
            chunk = response.read(READ_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                self.conn.close()
                if not cut:
                    raise self._too_large(what, max_bytes)
                chunks.append(chunk[: len(chunk) - (total - max_bytes)])
                break
            chunks.append(chunk)
        if self.expired:
            # The watchdog cut the answer short.
            raise self._timeout_error()
        return b"".join(chunks)

    def _too_large(self, what, max_bytes):
        return EngineError(
            "failed",
            "The Docker engine's answer to %s is larger than the %d-byte limit." % (what, max_bytes),
        )

    def _os_error(self, exc):
        code = exc.errno
        if code in (errno.ENOENT, errno.ENOTDIR):
            return EngineError(
                "unreachable",
                "The Docker socket %s does not exist: check drift_docker_host and that dockerd runs." % self.path,
            )
        if code == errno.ECONNREFUSED:
            return EngineError(
                "unreachable",
                "Nothing accepts connections on the Docker socket %s (connection refused): check that dockerd "
                "runs and drift_docker_host." % self.path,
            )
        if code in (errno.EACCES, errno.EPERM):
            return EngineError(
                "permission_denied",
                "Permission denied on the Docker socket %s: the audit user needs %s."
                % (self.path, _group_hint(self.path)),
            )
        if code in (errno.ECONNRESET, errno.EPIPE):
            return EngineError("failed", "The Docker engine at %s closed the connection during the audit." % self.path)
        detail = os.strerror(code) if code else "%s" % type(exc).__name__
        return EngineError("failed", "Talking to the Docker engine at %s failed: %s." % (self.path, detail))


def _seconds(value):
    return ("%g" % value) if isinstance(value, (int, float)) else str(value)


# ---------------------------------------------------------------- normalisation


def _port_key(key):
    """("80", "tcp") from "80/tcp"; the protocol defaults to tcp."""
    port, _, proto = key.partition("/")
    return port, (proto or "tcp").lower()


def _binding_texts(bindings):
    for key, targets in _dict(bindings).items():
        if not isinstance(key, str) or not isinstance(targets, list):
            continue
        port, proto = _port_key(key)
        for binding in _dicts(targets):
            yield port_text(_str(binding.get("HostIp")), _str(binding.get("HostPort")), port, proto)


def canonical_ports(bindings):
    """Published ports in the canonical form of docker_forms (port_list), as the compose side writes them.

    ``bindings`` is HostConfig.PortBindings or NetworkSettings.Ports:
    ``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, ...] | None}``.
    0.0.0.0 and :: (every address) are written without an ip, so the IPv4
    and IPv6 bindings of one port give one string; a port bound without a
    host port (an ephemeral one) is "target/proto"; a port that is only
    exposed (no binding at all) is not published and is left out.
    """
    return port_list(_binding_texts(bindings))


def container_ports(inspect):
    """Published ports of a container, from its configuration.

    HostConfig.PortBindings says what was asked for and stays the same across
    restarts (an ephemeral host port is "target/proto", not the number the
    engine picked this time); with PublishAllPorts every exposed port is
    published on an ephemeral port.  NetworkSettings.Ports is used only when
    the answer carries no PortBindings at all.
    """
    host_config = _dict(inspect.get("HostConfig"))
    bindings = host_config.get("PortBindings")
    if not isinstance(bindings, dict):
        return canonical_ports(_dict(inspect.get("NetworkSettings")).get("Ports"))
    ports = list(_binding_texts(bindings))
    if host_config.get("PublishAllPorts") is True:
        bound = {_port_key(key) for key, value in bindings.items() if isinstance(key, str) and value}
        for key in _dict(_dict(inspect.get("Config")).get("ExposedPorts")):
            if isinstance(key, str) and _port_key(key) not in bound:
                ports.append(port_text(None, None, *_port_key(key)))
    return port_list(ports)


def canonical_mounts(mounts, project=None):
    """Mounts as sorted "source:target[:ro]" strings, the canonical form of docker_forms.

    Named volumes by name (without the "<project>_" prefix Compose gives the
    volumes of ``project``), bind mounts by host path; an anonymous volume
    (a 64-hex-digit name) or a mount without a source (tmpfs) is ":target".
    """
    found = set()
    for mount in _dicts(mounts):
        target = _str(mount.get("Destination"))
        if target is None:
            continue
        if mount.get("Type") == "volume":
            source = _str(mount.get("Name")) or ""
            source = "" if _ANONYMOUS_VOLUME.match(source) else volume_name(source, project)
        elif mount.get("Type") == "tmpfs":
            source = ""
        else:
            source = _str(mount.get("Source")) or ""
        found.add(volume_text(source, target, mount.get("RW") is False))
    return sorted(found)


def _safe_key(key, hmac_key):
    """A variable name that is itself a token (a pasted secret) is replaced."""
    if looks_like_token(key):
        return "<redacted:%s>" % fingerprint(hmac_key, key)
    return key


def describe_environment(env, hmac_key):
    """Config.Env (["KEY=value", ...]) as {KEY: describe_value record}; the last one wins."""
    described = {}
    for entry in _list(env):
        if not isinstance(entry, str) or not entry:
            continue
        key, _, value = entry.partition("=")
        if not key:
            continue
        described[_safe_key(key, hmac_key)] = describe_value(key, value, hmac_key)
    return dict(sorted(described.items()))


def _has_healthcheck(healthcheck):
    """Whether the container runs a healthcheck: Config.Healthcheck is the effective one (the
    image's unless the container's own replaces it); ["NONE"] disables it."""
    test = _list(_dict(healthcheck).get("Test"))
    return bool(test) and test[0] != "NONE"


def _words(value):
    """A list of strings from the API (Cmd, Entrypoint, Healthcheck.Test), else None."""
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def _echoes(env, hmac_key):
    """The container's long or token-shaped secret environment values."""
    found = []
    for entry in _list(env):
        key, _, value = entry.partition("=") if isinstance(entry, str) else ("", "", "")
        long_enough = len(value) >= MIN_ECHO_LENGTH or looks_like_token(value)
        if value and long_enough and describe_value(key, value, hmac_key)["secret"]:
            found.append(value)
    return found


def _shown_words(words, redactor):
    return None if words is None else redactor.free_text(words)


def _healthcheck_config(healthcheck, redactor, hmac_key):
    """The effective healthcheck as compared with a declared one: its test shown redacted and
    fingerprinted, durations as Go prints them, retries as text; None when there is none."""
    healthcheck = _dict(healthcheck)
    test = _words(healthcheck.get("Test"))
    if not test and not any(healthcheck.get(key) for key in ("Interval", "Timeout", "StartPeriod", "Retries")):
        return None
    retries = _int(healthcheck.get("Retries"))
    return {
        "test": _shown_words(test, redactor),
        "test_fp": words_fingerprint(hmac_key, test) if test else None,
        "interval": nanoseconds_text(healthcheck.get("Interval")),
        "timeout": nanoseconds_text(healthcheck.get("Timeout")),
        "start_period": nanoseconds_text(healthcheck.get("StartPeriod")),
        "retries": "%d" % retries if retries else None,
    }


def _network_mode(host_config, names):
    """HostConfig.NetworkMode, a "container:<id>" as "container:<name>" (names: id -> name)."""
    mode = _str(host_config.get("NetworkMode"))
    if mode and mode.startswith("container:"):
        ident = mode[len("container:") :]
        return "container:%s" % names.get(ident, MASK if ident else "")
    return mode


def _user_labels(labels, hmac_key):
    """{key: describe_value record} of the labels other than Compose's own."""
    found = {}
    for key, value in labels.items():
        if isinstance(key, str) and key and not key.startswith(COMPOSE_LABEL_PREFIX) and isinstance(value, str):
            found[_safe_key(key, hmac_key)] = describe_value(key, value, hmac_key)
    return dict(sorted(found.items()))


def normalize_container(inspect, hmac_key, repo_digests=None, names=None):
    """One CONTAINER from GET /containers/{id}/json (docs/docker-facts.md).

    ``repo_digests`` maps image ids to their sorted repo digests, ``names`` container ids to
    names (a network mode "container:<id>" is shown by name).
    """
    # Imported here: compose.py's redaction rules, shared so that both sides show alike.
    from ansible_collections.envparity.audit.plugins.module_utils.compose import _Redactor

    inspect = _dict(inspect)
    config = _dict(inspect.get("Config"))
    host_config = _dict(inspect.get("HostConfig"))
    state = _dict(inspect.get("State"))
    labels = _dict(config.get("Labels"))
    image_id = _str(inspect.get("Image"))
    restart = host_config.get("RestartPolicy")
    restart_policy = None
    if isinstance(restart, dict):
        name = restart.get("Name")
        restart_policy = name if isinstance(name, str) and name else "no"
    name = _str(inspect.get("Name")) or ""
    project = _str(labels.get(COMPOSE_PROJECT_LABEL))
    redactor = _Redactor(hmac_key, _echoes(config.get("Env"), hmac_key))
    command, entrypoint = _words(config.get("Cmd")), _words(config.get("Entrypoint"))
    config_hash = _str(labels.get(COMPOSE_HASH_LABEL))
    return {
        "name": name[1:] if name.startswith("/") else name,
        "project": project,
        "service": _str(labels.get(COMPOSE_SERVICE_LABEL)),
        "image": _str(config.get("Image")),
        "image_id": image_id,
        "repo_digests": list((repo_digests or {}).get(image_id, [])),
        "state": _str(state.get("Status")),
        "health": _str(_dict(state.get("Health")).get("Status")),
        "restart_count": _int(inspect.get("RestartCount"), 0),
        "exit_code": _int(state.get("ExitCode"), 0),
        "oom_killed": _bool(state.get("OOMKilled")),
        "ports": container_ports(inspect),
        "mounts": canonical_mounts(inspect.get("Mounts"), project),
        "environment": describe_environment(config.get("Env"), hmac_key),
        "memory": _positive(host_config.get("Memory")),
        "nano_cpus": _positive(host_config.get("NanoCpus")),
        "restart_policy": restart_policy,
        "privileged": _bool(host_config.get("Privileged")),
        "healthcheck": _has_healthcheck(config.get("Healthcheck")),
        "user": _str(config.get("User")),
        "networks": sorted(key for key in _dict(_dict(inspect.get("NetworkSettings")).get("Networks")) if key),
        "command": _shown_words(command, redactor),
        "entrypoint": _shown_words(entrypoint, redactor),
        "fingerprints": {
            "command": words_fingerprint(hmac_key, command),
            "entrypoint": words_fingerprint(hmac_key, entrypoint),
        },
        "health_config": _healthcheck_config(config.get("Healthcheck"), redactor, hmac_key),
        "cap_add": capabilities(_words(host_config.get("CapAdd"))),
        "cap_drop": capabilities(_words(host_config.get("CapDrop"))),
        "network_mode": _network_mode(host_config, names or {}),
        "labels": _user_labels(labels, hmac_key),
        # The compose hash is of the whole service, secrets in clear: only its fingerprint leaves.
        "config_hash": fingerprint(hmac_key, config_hash) if config_hash else None,
    }


def normalize_images(images):
    """GET /images/json as [{"id", "tags", "digests"}] sorted by id."""
    found = {}
    for image in _dicts(images):
        image_id = _str(image.get("Id"))
        if image_id is None:
            continue
        tags = {t for t in _list(image.get("RepoTags")) if isinstance(t, str) and t and t not in _NONE_TAGS}
        digests = {d for d in _list(image.get("RepoDigests")) if isinstance(d, str) and d and d not in _NONE_TAGS}
        found[image_id] = {"id": image_id, "tags": sorted(tags), "digests": sorted(digests)}
    return [found[image_id] for image_id in sorted(found)]


def summary_name(summary):
    names = [n for n in _list(summary.get("Names")) if isinstance(n, str) and n]
    # A linked container has several names ("/web", "/app/web"): the shortest is its own.
    name = min(names, key=lambda n: (n.count("/"), n)) if names else ""
    return name[1:] if name.startswith("/") else name


def select_containers(summaries, limit=None):
    """(ids to inspect in name order, truncated) from GET /containers/json.

    At most ``limit`` (default MAX_CONTAINERS) ids, the first ones by name.
    """
    if limit is None:
        limit = MAX_CONTAINERS
    found = []
    for summary in _dicts(summaries):
        ident = _str(summary.get("Id"))
        if ident is not None and _CONTAINER_ID.match(ident):
            found.append((summary_name(summary), ident))
    found.sort()
    return [ident for _, ident in found[:limit]], len(found) > limit


# ---------------------------------------------------------------- collection


def negotiate(session):
    """GET /version and speak the engine's own API version from then on (the paths then mean what
    it documents); returns (engine version, API version), either None when not given."""
    version = session.get_json("/version", "GET /version", MAX_LIST_BYTES)
    if not isinstance(version, dict):
        raise EngineError(
            "failed", "The Docker engine at %s answered GET /version in an unexpected shape." % session.path
        )
    api_version = _str(version.get("ApiVersion"))
    if api_version and _API_VERSION.match(api_version):
        session.prefix = "/v" + api_version
    else:
        api_version = None
    return _str(version.get("Version")), api_version


def _collect(session, hmac_key, result):
    result["version"], result["api_version"] = negotiate(session)

    summaries = session.get_json("/containers/json?all=1", "GET /containers/json", MAX_LIST_BYTES)
    if not isinstance(summaries, list):
        raise EngineError(
            "failed", "The Docker engine at %s answered GET /containers/json in an unexpected shape." % session.path
        )
    idents, truncated = select_containers(summaries)
    names = {summary["Id"]: summary_name(summary) for summary in _dicts(summaries) if _str(summary.get("Id"))}

    images = session.get_json("/images/json", "GET /images/json", MAX_LIST_BYTES)
    if not isinstance(images, list):
        raise EngineError(
            "failed", "The Docker engine at %s answered GET /images/json in an unexpected shape." % session.path
        )
    image_list = normalize_images(images)
    repo_digests = {image["id"]: image["digests"] for image in image_list}

    containers = {}
    for ident in idents:
        try:
            inspect = session.get_json("/containers/%s/json" % ident, "GET /containers/{id}/json", MAX_INSPECT_BYTES)
        except Gone:
            continue  # removed since the list was taken: not there any more
        if not isinstance(inspect, dict):
            raise EngineError(
                "failed",
                "The Docker engine at %s answered GET /containers/{id}/json in an unexpected shape." % session.path,
            )
        container = normalize_container(inspect, hmac_key, repo_digests, names)
        containers[container["name"]] = container
    result["containers"] = [containers[name] for name in sorted(containers)]
    result["images"] = image_list
    result["truncated"] = truncated


def collect_engine(docker_host, hmac_key, timeout=DEFAULT_TIMEOUT):
    """The ENGINE facts of docs/docker-facts.md, plus ``truncated``.

    Never raises: a failure is a status (unreachable, permission_denied,
    unsupported, failed) with a reason sentence.
    """
    try:
        path = socket_path(docker_host)
    except EngineError as problem:
        return empty_engine(problem.status, problem.reason)
    if not isinstance(hmac_key, bytes) or not hmac_key:
        return empty_engine("failed", "The run's fingerprint key is missing.")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        timeout = DEFAULT_TIMEOUT
    result = empty_engine("ok")
    try:
        session = Session(path, timeout)
    except Exception as exc:  # a thread that cannot start: never a traceback
        return empty_engine("failed", "%s when preparing the Docker engine collector." % type(exc).__name__)
    try:
        _collect(session, hmac_key, result)
    except EngineError as problem:
        return dict(
            empty_engine(problem.status, problem.reason), version=result["version"], api_version=result["api_version"]
        )
    except Exception as exc:  # one odd answer must not become a traceback
        return dict(
            empty_engine("failed", "%s in the Docker engine collector." % type(exc).__name__),
            version=result["version"],
            api_version=result["api_version"],
        )
    finally:
        session.close()
    return result
