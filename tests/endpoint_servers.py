"""Real HTTP(S) servers on 127.0.0.1 and certificates made in the test (cryptography), for the
endpoints probe and diff tests. Nothing here reaches anything but loopback."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

UTC = datetime.UTC


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name="Test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_cert(names, issuer=None, days_left=90, days_valid=365, not_before_days=None):
    """A leaf for `names` (DNS names and IPs), signed by issuer=(key, cert) or self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    not_after = now + datetime.timedelta(days=days_left, hours=1)
    not_before = (
        now + datetime.timedelta(days=not_before_days)
        if not_before_days is not None
        else not_after - datetime.timedelta(days=days_valid)
    )
    sans = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    issuer_key, issuer_cert = issuer if issuer else (key, None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(names[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return key, cert


def write_pem(directory, stem, key, cert):
    cert_path = directory / ("%s.pem" % stem)
    key_path = directory / ("%s.key" % stem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


def der_b64(cert):
    import base64

    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


class Routes:
    """path -> (status, headers, body bytes, delay seconds); records the requests it saw."""

    def __init__(self, routes):
        self.routes = routes
        self.seen = []


def _handler(routes):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "TestServer"
        sys_version = ""

        def log_message(self, *args):
            pass

        def do_GET(self):
            routes.seen.append({"path": self.path, "headers": dict(self.headers)})
            status, headers, body, delay = routes.routes.get(self.path, (404, {}, b"not found", 0))
            if delay:
                time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                for item in value if isinstance(value, list) else [value]:
                    self.send_header(name, item)
            if callable(body):
                self.send_header("Content-Length", "104857600")
                self.end_headers()
                body(self.wfile)
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

    return Handler


@contextlib.contextmanager
def serve(routes, cert_key=None, legacy=False):
    """A threading server on 127.0.0.1 (TLS when cert_key=(cert path, key path), accepting TLS 1.0
    and 1.1 too when legacy); yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(routes))
    server.daemon_threads = True
    if cert_key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_key[0]), str(cert_key[1]))
        if legacy:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.minimum_version = ssl.TLSVersion(0x0301)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def json_body(document):
    return json.dumps(document).encode()


@contextlib.contextmanager
def trickle_server(head=None):
    """Answers every connection with `head`, then one byte every 0.2 s, forever (slowloris); with
    no head, accepts connections and never sends anything (a silent server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def drip(conn):
        with contextlib.suppress(OSError), conn:
            if head is None:
                stop.wait()
                return
            conn.sendall(head)
            while not stop.wait(0.2):
                conn.sendall(b"x")

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                threading.Thread(target=drip, args=(listener.accept()[0],), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
