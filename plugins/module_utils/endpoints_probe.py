"""Probe one HTTP(S) endpoint, read-only and bounded: status, redirects, response times, headers,
cookie flags, a JSON body key by key, and the TLS handshake.

Standard library only (http.client, ssl, socket), Python 3.8: this file runs on the audited host
(`from: host`) and on the controller (`from: controller`). Only GET, HEAD and OPTIONS are sent.
Every read is bounded: a timeout per socket operation, a deadline per request, a body read up to
max_body_bytes and never further, a redirect count, a JSON depth and field count. Secret values
(configured headers, URL credentials, secret-shaped JSON values) never appear in the result: they
are fingerprinted or left out. Reasons are fixed sentences and OS error texts, never data read.
"""

import base64
import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
import warnings

from ansible_collections.envparity.audit.plugins.module_utils.redact import describe_value, redact_text

SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
)
VERSION_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-generator")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# A header value kept in the facts: longer ones are cut (a hostile server may send kilobytes).
MAX_HEADER_CHARS = 300
MAX_COOKIES = 50
MAX_JSON_FIELDS = 200
MAX_JSON_DEPTH = 4
MAX_KEY_CHARS = 120
MAX_DER_BYTES = 16384
# A JSON field whose value changes on every call (a clock, an uptime) is not drift.
VOLATILE_NAMES = frozenset(
    ("uptime", "uptime_seconds", "timestamp", "time", "now", "date", "datetime", "server_time", "started_at", "ts")
)
_READ_CHUNK = 16384
TIMED_OUT = ("timeout", "no complete answer within the timeout")


# TLS 1.0 and 1.1, offered or not: tried with a context of their own (protocol versions as
# numbers, OpenSSL's security level 0 so that this side can offer them at all).
LEGACY_PROTOCOLS = (("TLSv1", 0x0301), ("TLSv1.1", 0x0302))
# Setting those versions warns (deprecated protocols): here they are asked for on purpose.
warnings.filterwarnings("ignore", message=r"ssl\.TLSVersion\.TLSv1", category=DeprecationWarning)


class ProbeError(Exception):
    """A probe that could not complete: status (refused, timeout, tls_failed, ...) and a reason."""

    def __init__(self, status, reason):
        super().__init__(status)
        self.status = status
        self.reason = reason


def parse_connect_to(value):
    """'127.0.0.1:8443' or '[::1]:8443' -> (host, port); None when not set."""
    if not value:
        return None
    text = str(value)
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("connect_to must be host:port, e.g. 127.0.0.1:8443")
    return host, int(port)


def split_url(url):
    """(scheme, host, port, path with query) of an http(s) URL, without its credentials."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the URL must be http:// or https:// with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def basic_credentials(url):
    """The Authorization header value of a URL's user:password, or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None
    pair = "%s:%s" % (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def display_url(url):
    """The URL as it may be shown: credentials and secret query values masked."""
    return redact_text(str(url))[:MAX_HEADER_CHARS]


class _Deadline:
    """Shuts a connection's socket down when its time is up: a server that sends one byte at a
    time stays within each read's timeout, never within the request's."""

    def __init__(self, seconds):
        self.expired = False
        self._sock = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _shutdown(self):
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def _expire(self):
        with self._lock:
            self.expired = True
            self._shutdown()

    def watch(self, sock):
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shutdown()

    def cancel(self):
        self._timer.cancel()


class _Connection(http.client.HTTPConnection):
    """One connection to `address` (connect_to, or the URL's own host and port), with TLS for
    https: the URL's host stays the SNI name and the Host header, as curl's --connect-to."""

    def __init__(self, host, port, timeout, address, tls_context):
        super().__init__(host, port, timeout=timeout)
        self.default_port = 443 if tls_context is not None else 80
        self._address = address
        self._tls = tls_context
        self.handshake = None
        self.deadline = _Deadline(timeout)

    def connect(self):
        sock = socket.create_connection(self._address, self.timeout)
        self.deadline.watch(sock)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
                self.deadline.watch(sock)
                sock.do_handshake()
            except BaseException:
                sock.close()
                raise
            self.handshake = {"protocol": sock.version(), "cipher": (sock.cipher() or [None])[0]}
            self.handshake["der"] = sock.getpeercert(binary_form=True)
        self.sock = sock


def tls_context(ca_file, verify):
    """A client context: the system store (or ca_file) when verifying; no hostname check here (the
    controller matches the names itself, from the certificate, to report a mismatch as such)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.check_hostname = False
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    return context


def _os_reason(exc):
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_failed", "certificate verification failed: %s" % (exc.verify_message or "unknown reason")
    if isinstance(exc, ssl.SSLError):
        return "tls_failed", "TLS handshake failed: %s" % (exc.reason or type(exc).__name__)
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TIMED_OUT
    if isinstance(exc, socket.gaierror):
        return "dns_failed", "the host name does not resolve"
    if isinstance(exc, http.client.HTTPException):
        return "bad_response", "not a valid HTTP response (%s)" % type(exc).__name__
    if isinstance(exc, OSError):
        return "failed", "%s: %s" % (type(exc).__name__, exc.strerror or "operating system error")
    return "failed", "%s while probing" % type(exc).__name__


def _read_body(response, limit):
    """Up to limit bytes of the body and whether there was more; never reads past limit + 1."""
    data = bytearray()
    while len(data) <= limit:
        chunk = response.read(min(_READ_CHUNK, limit + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data[:limit]), len(data) > limit


def request_once(target, method, headers, timeout, max_body_bytes, context):
    """One request: (response summary, handshake or None, elapsed seconds). Raises ProbeError."""
    scheme, host, port, path = target["scheme"], target["host"], target["port"], target["path"]
    address = target.get("address") or (host, port)
    started = time.monotonic()
    connection = _Connection(host, port, timeout, address, context if scheme == "https" else None)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body, truncated = (b"", False) if method == "HEAD" else _read_body(response, max_body_bytes)
        if connection.deadline.expired:  # the socket was shut down: what was read is cut short
            raise ProbeError(*TIMED_OUT)
        elapsed = time.monotonic() - started
        summary = {
            "status": response.status,
            "headers": [(name.lower(), value) for name, value in response.getheaders()],
            "body": body,
            "truncated": truncated,
        }
        return summary, connection.handshake, elapsed
    except Exception as exc:  # every network failure is a reason, never a traceback
        if connection.deadline.expired:
            raise ProbeError(*TIMED_OUT) from None
        status, reason = _os_reason(exc)
        raise ProbeError(status, reason) from None
    finally:
        connection.deadline.cancel()
        connection.close()


def _header(headers, name):
    for key, value in headers:
        if key == name:
            return value
    return None


def cookie_flags(headers):
    """{cookie name: {secure, httponly, samesite}} of the Set-Cookie headers; values never kept."""
    cookies = {}
    for key, value in headers:
        if key != "set-cookie" or len(cookies) >= MAX_COOKIES:
            continue
        parts = [part.strip() for part in value.split(";")]
        name = parts[0].split("=", 1)[0].strip()[:MAX_KEY_CHARS]
        if not name:
            continue
        attributes = {}
        for part in parts[1:]:
            attr, _, attr_value = part.partition("=")
            attributes[attr.strip().lower()] = attr_value.strip()
        cookies[redact_text(name)] = {
            "secure": "secure" in attributes,
            "httponly": "httponly" in attributes,
            "samesite": (attributes.get("samesite") or "").capitalize()[:20] or None,
        }
    return cookies


def _flatten(value, prefix, depth, out):
    if len(out) >= MAX_JSON_FIELDS:
        return
    if isinstance(value, dict) and depth < MAX_JSON_DEPTH:
        for key in sorted(value, key=str):
            _flatten(value[key], "%s.%s" % (prefix, key) if prefix else str(key), depth + 1, out)
        return
    if isinstance(value, list) and depth < MAX_JSON_DEPTH:
        out[prefix + "[]"] = ("list", str(len(value)))
        return
    kind = "null" if value is None else type(value).__name__
    if isinstance(value, (dict, list)):
        text = "(nested deeper than %d levels)" % MAX_JSON_DEPTH
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = "" if value is None else str(value)
    out[prefix[:MAX_KEY_CHARS]] = (kind, text)


def json_fields(body, selected, hmac_key):
    """{"kind": json | not_json | empty, "fields": {dotted key: description}} of a body.

    Each value is described as env values are (redact.describe_value): a secret-named or
    secret-shaped value leaves only as a keyed fingerprint. `selected` keeps only those keys (and
    the keys below them); volatile fields (clocks, uptimes) are left out.
    """
    if not body.strip():
        return {"kind": "empty", "fields": {}}
    try:
        document = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {"kind": "not_json", "fields": {}}
    flat = {}
    _flatten(document, "", 0, flat)
    fields = {}
    for key, (kind, text) in flat.items():
        leaf = key.rsplit(".", 1)[-1].lower()
        if leaf in VOLATILE_NAMES:
            continue
        if selected and not any(key == name or key.startswith(name + ".") for name in selected):
            continue
        described = describe_value(leaf, text, hmac_key)
        display = described["display"]
        fields[redact_text(key)] = {
            "type": kind,
            "secret": described["secret"],
            "value": display[:MAX_HEADER_CHARS] if display is not None else None,
            "fp": described["fp"] if described["secret"] else None,
        }
    return {"kind": "json", "fields": fields, "truncated": len(flat) >= MAX_JSON_FIELDS}


def _resolve_redirect(target, location, connect_to):
    """The next target of a redirect, or (None, why) when it is not followed."""
    base = "%s://%s:%d%s" % (target["scheme"], target["host"], target["port"], target["path"])
    try:
        scheme, host, port, path = split_url(urllib.parse.urljoin(base, location))
    except ValueError:
        return None, "not followed: not an http(s) URL"
    if connect_to and (scheme, host, port) != (target["scheme"], target["host"], target["port"]):
        # connect_to pins the connection to one address: another origin is not reached through it.
        return None, "not followed: another origin than the one connect_to reaches"
    address = target.get("address") if (host, port) == (target["host"], target["port"]) else None
    return {"scheme": scheme, "host": host, "port": port, "path": path, "address": address}, None


def follow(target, method, session, settings):
    """The first response after following redirects: (summary, handshake, hops, final target);
    the handshake is the final origin's (None when it is plain http)."""
    hops = []
    seen = set()
    while True:
        summary, handshake, _elapsed = session.request(target, method, settings)
        location = _header(summary["headers"], "location")
        if summary["status"] not in REDIRECT_STATUSES or not location:
            return summary, handshake, hops, target
        key = (target["scheme"], target["host"], target["port"], target["path"])
        seen.add(key)
        nxt, why = _resolve_redirect(target, location, settings.get("connect_to"))
        hop = {"status": summary["status"], "location": display_url(location), "followed": nxt is not None}
        if why:
            hop["note"] = why
        hops.append(hop)
        if nxt is None:
            return summary, handshake, hops, target
        if (nxt["scheme"], nxt["host"], nxt["port"], nxt["path"]) in seen:
            raise ProbeError("redirect_loop", "the redirects loop back to a URL already visited")
        if len(hops) > settings["max_redirects"]:
            raise ProbeError("redirect_loop", "more than %d redirects" % settings["max_redirects"])
        target = nxt


def percentile(values, share):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def timing(target, method, session, settings):
    """Response times of the first response (redirects not followed) over `samples` requests after
    one warm-up request whose time is not counted; milliseconds."""
    times, failures = [], 0
    for index in range(settings["samples"] + 1):
        try:
            _summary, _shake, elapsed = session.request(target, method, settings)
        except ProbeError:
            failures += index > 0
            continue
        if index > 0:
            times.append(elapsed * 1000.0)
    if not times:
        return {"samples": 0, "failed": failures}
    return {
        "samples": len(times),
        "failed": failures,
        "median_ms": round(percentile(times, 0.5), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "max_ms": round(max(times), 1),
    }


def _offers(target, version, timeout):
    """Whether the server completes a handshake at this protocol version only: True, False, or
    None when this side cannot offer it (its OpenSSL was built without it)."""
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = ssl.TLSVersion(version)
    except (ValueError, ssl.SSLError):
        return None
    try:
        tls_handshake(context, target, timeout)
        return True
    except ProbeError:
        return False
    except ssl.SSLError as exc:
        return None if "NO_PROTOCOLS_AVAILABLE" in str(exc.reason) else False
    except OSError:
        return False


def legacy_offered(target, timeout):
    """{protocol: True | False | None} of TLS 1.0 and 1.1 (None: not testable from here)."""
    return {name: _offers(target, version, timeout) for name, version in LEGACY_PROTOCOLS}


def _tls_facts(handshake, verified, verify_error):
    der = handshake.get("der") or b""
    return {
        "protocol": handshake.get("protocol"),
        "cipher": handshake.get("cipher"),
        "verified": verified,
        "verify_error": verify_error,
        "cert_der": base64.b64encode(der).decode("ascii") if 0 < len(der) <= MAX_DER_BYTES else None,
    }


def _response_facts(summary, hops, final, hmac_key, selected):
    headers = summary["headers"]
    content_length = _header(headers, "content-length")
    facts = {
        "status": summary["status"],
        "redirects": hops,
        "final_url": display_url("%s://%s:%d%s" % (final["scheme"], final["host"], final["port"], final["path"])),
        "content_type": (_header(headers, "content-type") or "")[:MAX_HEADER_CHARS] or None,
        "size": len(summary["body"]),
        "size_truncated": summary["truncated"],
        "content_length": content_length[:20] if content_length else None,
        "headers": {
            name: redact_text(_header(headers, name).strip())[:MAX_HEADER_CHARS]
            for name in SECURITY_HEADERS + VERSION_HEADERS
            if _header(headers, name) is not None
        },
        "cookies": cookie_flags(headers),
    }
    if summary["truncated"]:
        facts["body"] = {"kind": "too_large", "fields": {}}
    else:
        facts["body"] = json_fields(summary["body"], selected, hmac_key)
    return facts


def probe(endpoint, settings, hmac_key, secret=None):
    """One endpoint's facts: {"status": ok | refused | timeout | tls_failed | ..., "reason", ...}.

    endpoint: {name, url (credentials masked), method, samples, connect_to, ca_file, json_fields,
    from}; secret: {"url": the URL with its credentials, "headers": {name: value}} when configured.
    """
    secret = secret or {}
    record = {
        "status": "ok",
        "reason": None,
        "url": display_url(endpoint["url"]),
        "from": endpoint["from"],
        "expect_status": endpoint.get("expect_status"),
        "git_repo": endpoint.get("git_repo"),
    }
    method = str(endpoint.get("method") or "GET").upper()
    if method not in SAFE_METHODS:
        return dict(record, status="failed", reason="only GET, HEAD and OPTIONS are sent (read-only)")
    try:
        scheme, host, port, path = split_url(secret.get("url") or endpoint["url"])
        connect_to = parse_connect_to(endpoint.get("connect_to"))
    except ValueError as exc:
        return dict(record, status="failed", reason=str(exc))
    settings = dict(settings, samples=int(endpoint.get("samples") or settings["samples"]), connect_to=connect_to)
    target = {"scheme": scheme, "host": host, "port": port, "path": path, "address": connect_to}
    credentials = dict(secret.get("headers") or {})
    basic = basic_credentials(secret.get("url") or endpoint["url"])
    if basic and "Authorization" not in credentials:
        credentials["Authorization"] = basic
    session = _Session(target, credentials, endpoint.get("ca_file"), settings["timeout"])
    try:
        summary, handshake, hops, final = follow(target, method, session, settings)
        record["http"] = _response_facts(summary, hops, final, hmac_key, endpoint.get("json_fields") or [])
        record["timing"] = timing(target, method, session, settings)
    except ProbeError as exc:
        return dict(record, status=exc.status, reason=exc.reason)
    if handshake is not None:
        record["tls"] = _tls_facts(handshake, *session.verification(final))
        record["tls"]["legacy"] = legacy_offered(final, settings["timeout"])
    if session.withheld:
        record["credentials_withheld"] = True
    return record


class _Session:
    """What one probe's requests share: the TLS context of each https origin it reaches (with
    whether its certificate verified), and the headers each request sends. Credentials go only
    to the configured URL's own origin, and never over a connection whose certificate did not
    verify."""

    BASE_HEADERS = {"User-Agent": "envparity-audit", "Accept": "application/json, */*;q=0.5", "Connection": "close"}

    def __init__(self, target, credentials, ca_file, timeout):
        self.origin = (target["scheme"], target["host"], target["port"])
        self.credentials = credentials
        self.ca_file = ca_file
        self.timeout = timeout
        self.origins = {}
        self.withheld = False

    def _key(self, target):
        return (target["host"], target["port"], target.get("address"))

    def context(self, target):
        if target["scheme"] != "https":
            return None
        key = self._key(target)
        if key not in self.origins:
            self.origins[key] = _trusted_context(target, self.ca_file, self.timeout)
        return self.origins[key][0]

    def verification(self, target):
        """(verified, verification error) of an https origin (reached first if need be)."""
        self.context(target)
        return self.origins[self._key(target)][1:]

    def request(self, target, method, settings):
        """request_once with this probe's headers and TLS context for the target."""
        return request_once(
            target,
            method,
            self.headers(target),
            settings["timeout"],
            settings["max_body_bytes"],
            self.context(target),
        )

    def headers(self, target):
        headers = dict(self.BASE_HEADERS)
        if not self.credentials or (target["scheme"], target["host"], target["port"]) != self.origin:
            return headers
        if target["scheme"] == "https" and not self.verification(target)[0]:
            self.withheld = True
            return headers
        headers.update(self.credentials)
        return headers


def _trusted_context(target, ca_file, timeout):
    """(context to probe with, verified, verification error): a verified handshake first; when
    the chain does not verify, an unverified context so that the certificate is still read."""
    try:
        verifying = tls_context(ca_file, verify=True)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ProbeError("failed", "ca_file cannot be used (%s)" % reason) from None
    try:
        tls_handshake(verifying, target, timeout)
        return verifying, True, None
    except ssl.SSLCertVerificationError as exc:
        return tls_context(ca_file, verify=False), False, exc.verify_message or "certificate verification failed"
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError(*_os_reason(exc)) from None


def tls_handshake(context, target, timeout):
    """One TLS handshake with the target (its connect_to address, the URL's host as SNI) within one
    deadline; the connection is closed after it. Raises ProbeError on the deadline, else what the
    socket or TLS layer raised."""
    address = target.get("address") or (target["host"], target["port"])
    deadline = _Deadline(timeout)
    sock = None
    try:
        sock = socket.create_connection(address, timeout)
        deadline.watch(sock)
        sock = context.wrap_socket(sock, server_hostname=target["host"], do_handshake_on_connect=False)
        deadline.watch(sock)
        sock.do_handshake()
    except (OSError, ssl.SSLError):
        if deadline.expired:
            raise ProbeError(*TIMED_OUT) from None
        raise
    finally:
        deadline.cancel()
        if sock is not None:
            sock.close()
