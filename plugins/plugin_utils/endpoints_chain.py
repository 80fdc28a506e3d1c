"""The certificate chain and the stapled OCSP response of an https endpoint probed from the
controller: one more TLS handshake, with pyOpenSSL (the standard library exposes the chain only
from Python 3.13 and a stapled response not at all).

The handshake asks for OCSP stapling (status_request) and keeps what the server sends: its chain
as sent (leaf first), the chain OpenSSL built and verified against the system store or ca_file
(when it verified), and the stapled response's DER. Everything here is read from the endpoint:
hostile input, bounded (certificates count and size, one deadline) and parsed on the controller by
endpoints_tls.py. Endpoints probed from the host keep to the standard library: their chain and
stapling are "not checked", never guessed. Pure Python; no Ansible imports.
"""

import base64
import socket
import struct
import threading
import urllib.parse

from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_probe import parse_connect_to

try:
    from OpenSSL import SSL
except ImportError:  # reported per endpoint as "not checked"
    SSL = None

MAX_CERTIFICATES = 10
MAX_DER_BYTES = 16384
MAX_OCSP_BYTES = 16384


def _b64(der):
    return base64.b64encode(der).decode("ascii")


def _ders(chain):
    """Base64 DER of each certificate of a chain (at most MAX_CERTIFICATES; a too large one is left out)."""
    ders = [cert.public_bytes(Encoding.DER) for cert in (chain or [])[:MAX_CERTIFICATES]]
    return [_b64(der) for der in ders if len(der) <= MAX_DER_BYTES]


def _context(ca_file, stapled, verify_errors):
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if ca_file:
        context.load_verify_locations(ca_file)
    else:
        context.set_default_verify_paths()

    def verify(_connection, _cert, errno, _depth, ok):
        if not ok:
            verify_errors.append(errno)
        return True  # read the chain even when it does not verify; the probe reports trust

    def ocsp(_connection, data, _arg):
        stapled["der"] = data[: MAX_OCSP_BYTES + 1] if data else b""
        return True

    context.set_verify(SSL.VERIFY_PEER, verify)
    context.set_ocsp_client_callback(ocsp)
    return context


def read_chain(address, hostname, ca_file, timeout):
    """{"status": "ok", "sent": [b64 DER], "verified": [b64 DER] | None, "ocsp": b64 DER | None}, or
    {"status": "failed" | "not_checked", "reason"} of one TLS handshake with address (host, port),
    the hostname as SNI, within `timeout` seconds in all."""
    if SSL is None:
        return {"status": "not_checked", "reason": "pyOpenSSL is not installed on the controller"}
    stapled, verify_errors = {}, []
    sock = connection = None
    timer = None
    try:
        context = _context(ca_file, stapled, verify_errors)
        sock = socket.create_connection(address, timeout)
        # pyOpenSSL wants a blocking socket: the kernel's timeouts bound each read and write, and a
        # timer shuts the socket down when the whole handshake's time is up.
        sock.settimeout(None)
        limit = struct.pack("ll", int(timeout), 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        timer = threading.Timer(timeout, sock.shutdown, args=(socket.SHUT_RDWR,))
        timer.daemon = True
        timer.start()
        connection = SSL.Connection(context, sock)
        connection.set_tlsext_host_name(hostname.encode("idna"))
        connection.request_ocsp()
        connection.set_connect_state()
        connection.do_handshake()
        sent = connection.get_peer_cert_chain(as_cryptography=True)
        verified = connection.get_verified_chain(as_cryptography=True) if not verify_errors else None
    except (OSError, SSL.Error, ValueError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return {"status": "failed", "reason": "the chain could not be read (%s)" % reason}
    finally:
        if timer is not None:
            timer.cancel()
        if connection is not None:
            connection.close()
        elif sock is not None:
            sock.close()
    der = stapled.get("der") or b""
    return {
        "status": "ok",
        "sent": _ders(sent),
        "verified": _ders(verified) if verified else None,
        "ocsp": _b64(der) if 0 < len(der) <= MAX_OCSP_BYTES else None,
        "ocsp_too_large": len(der) > MAX_OCSP_BYTES,
    }


def add_chains(request, results, timeout, concurrency):
    """Each https endpoint probed here (results: {name: record}) gets tls.chain, in place: its final
    origin's chain and stapled OCSP response, reached as the probe reached it (connect_to); at
    most `concurrency` handshakes at once, each within `timeout` seconds."""
    items = {item["name"]: item for item in request.get("endpoints") or []}
    pending = []
    for name, record in results.items():
        tls = record.get("tls")
        if record.get("status") != "ok" or not isinstance(tls, dict) or name not in items:
            continue
        try:
            final = urllib.parse.urlsplit(record["http"]["final_url"])
            address = parse_connect_to(items[name].get("connect_to")) or (final.hostname, final.port or 443)
        except (KeyError, TypeError, ValueError):
            tls["chain"] = {"status": "failed", "reason": "the final URL cannot be read"}
            continue
        pending.append((tls, address, final.hostname, items[name].get("ca_file")))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not pending:
                    return
                tls, address, hostname, ca_file = pending.pop()
            tls["chain"] = read_chain(address, hostname, ca_file, timeout)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(concurrency, len(pending))))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()  # each handshake is bounded by its own timer
