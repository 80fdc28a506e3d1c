"""A probed endpoint's certificate, read on the controller: names, issuer, key, validity; and its
chain (each intermediate) and stapled OCSP response when the controller read them.

The probe (module_utils/endpoints_probe.py, standard library only, maybe on a Python 3.8 host)
sends the leaf certificate as DER, since the standard library decodes a certificate only once it
verified; here `cryptography` (installed with ansible-core) reads it, verified or not. The DER
came from the audited host or the endpoint: hostile input, parsed inside a guard.
Pure Python; no Ansible imports.
"""

import base64
import binascii
import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

MAX_DER_CHARS = 32768


def _name(name):
    """'CN=example, O=Org' of an x509 Name (common name and organisation only)."""
    parts = []
    for oid, label in ((NameOID.COMMON_NAME, "CN"), (NameOID.ORGANIZATION_NAME, "O")):
        parts += ["%s=%s" % (label, attribute.value) for attribute in name.get_attributes_for_oid(oid)]
    return ", ".join(parts) or name.rfc4514_string()[:200]


def _key(cert):
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA %d" % key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC %s" % key.curve.name
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA %d" % key.key_size
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return type(key).__name__.replace("PublicKey", "")
    return type(key).__name__


def _sans(cert):
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return sorted(str(name).lower() for name in extension.value.get_values_for_type(x509.DNSName)) + sorted(
        str(address) for address in extension.value.get_values_for_type(x509.IPAddress)
    )


def read_certificate(der_b64, now=None):
    """{subject, issuer, sans, key, signature, not_before, not_after, days_left, lifetime_left,
    self_signed} of a base64 DER certificate, or None when it cannot be read."""
    if not isinstance(der_b64, str) or not der_b64 or len(der_b64) > MAX_DER_CHARS:
        return None
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(der_b64, validate=True))
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        signature = cert.signature_hash_algorithm
        facts = {
            "subject": _name(cert.subject),
            "issuer": _name(cert.issuer),
            "sans": _sans(cert),
            "key": _key(cert),
            "signature": "%s-%s" % (_key(cert).split()[0], signature.name) if signature else _key(cert),
            "self_signed": cert.issuer == cert.subject,
        }
    except (ValueError, TypeError, binascii.Error, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    lifetime = (not_after - not_before).total_seconds()
    facts.update(
        not_before=not_before.strftime("%Y-%m-%d"),
        not_after=not_after.strftime("%Y-%m-%d"),
        days_left=int((not_after - now).total_seconds() // 86400),
        not_yet_valid=now < not_before,
        lifetime_left=max(0, int(100 * (not_after - now).total_seconds() // lifetime)) if lifetime > 0 else 0,
    )
    return facts


def hostname_matches(hostname, sans, subject):
    """Whether a certificate's names cover hostname (RFC 6125: a wildcard stands for the leftmost
    label only; the subject's CN only when there is no SAN at all)."""
    hostname = (hostname or "").lower().rstrip(".")
    names = list(sans)
    if not names and subject.startswith("CN="):
        names = [subject[3:].split(",")[0].lower()]
    for name in names:
        if name == hostname:
            return True
        if name.startswith("*.") and "." in hostname:
            first, rest = hostname.split(".", 1)
            if first and rest == name[2:]:
                return True
    return False


def relative_names(hostname, sans):
    """SANs relative to the URL's host ('{host}', 'www.{host}', '*.{host}'), so that dev's and
    prod's certificates compare although they name different hosts; other names as they are."""
    hostname = (hostname or "").lower()
    relative = set()
    for name in sans:
        if hostname and name == hostname:
            relative.add("{host}")
        elif hostname and name.endswith("." + hostname):
            relative.add(name[: -len(hostname)] + "{host}")
        else:
            relative.add(name)
    return sorted(relative)


def _cert_of(der_b64):
    try:
        return x509.load_der_x509_certificate(base64.b64decode(der_b64, validate=True))
    except (ValueError, TypeError, binascii.Error):
        return None


def stapled_status(ocsp_b64, leaf_b64, now=None):
    """'stapled, good', 'stapled, revoked', ... of a stapled OCSP response (for the leaf), with
    whether it is stale (its next update passed); ('not stapled', False) when there is none."""
    if not ocsp_b64:
        return "not stapled", False
    try:
        response = ocsp.load_der_ocsp_response(base64.b64decode(ocsp_b64, validate=True))
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return "stapled, unsuccessful (%s)" % response.response_status.name.lower(), False
        leaf = _cert_of(leaf_b64)
        if leaf is not None and response.serial_number != leaf.serial_number:
            return "stapled, for another certificate", False
        status = response.certificate_status.name.lower()
        next_update = response.next_update_utc
    except (ValueError, TypeError, binascii.Error):
        return "stapled, unreadable", False
    now = now or datetime.datetime.now(datetime.UTC)
    return "stapled, %s" % status, next_update is not None and next_update < now


def chain_facts(chain, leaf_b64, now=None):
    """What the controller read of an endpoint's chain (plugin_utils/endpoints_chain.py): {"ocsp",
    "stale", "complete", "missing": [names the server does not send], "intermediates": [facts of
    read_certificate]}; None when it was not read (from the host, or pyOpenSSL missing)."""
    if not isinstance(chain, dict) or chain.get("status") != "ok":
        return None
    sent = [der for der in chain.get("sent") or [] if isinstance(der, str)][:10]
    verified = chain.get("verified")
    verified = [der for der in verified if isinstance(der, str)][:10] if isinstance(verified, list) else None
    path = [read_certificate(der, now) for der in (verified or sent)[1:]]
    pairs = [(der, facts) for der, facts in zip((verified or sent)[1:], path, strict=True) if facts is not None]
    intermediates = [(der, facts) for der, facts in pairs if not facts["self_signed"]]
    missing = [facts["subject"] for der, facts in intermediates if der not in sent]
    ocsp_text, stale = stapled_status(chain.get("ocsp"), leaf_b64, now)
    return {
        "ocsp": ocsp_text,
        "stale": stale,
        "verified": verified is not None,
        "missing": missing,
        "intermediates": [facts for _der, facts in intermediates],
    }
