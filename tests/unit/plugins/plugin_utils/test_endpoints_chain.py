"""Certificate chains and stapled OCSP responses: read with pyOpenSSL from a real TLS server on
127.0.0.1 (certificates and OCSP responses made in the test with cryptography), then judged by
the endpoints diff."""

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from ansible_collections.envparity.audit.plugins.plugin_utils import endpoints_chain
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_diff import diff
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_tls import chain_facts, stapled_status
from tests.endpoint_servers import Routes, der_b64, free_port, make_ca, make_cert, serve, trickle_server, write_pem
from tests.unit.plugins.plugin_utils.test_endpoints_diff import CONTEXT, record

UTC = datetime.UTC
ROOT = make_ca("Chain Root")


def make_intermediate(days_left=1000, name="Chain Intermediate"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)]))
        .issuer_name(ROOT[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now + datetime.timedelta(days=days_left, hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ROOT[0], hashes.SHA256())
    )
    return key, cert


def stapled(leaf, issuer, status=ocsp.OCSPCertStatus.GOOD, next_update_days=7):
    now = datetime.datetime.now(UTC)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf,
        issuer=issuer[1],
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=now - datetime.timedelta(days=1),
        next_update=now + datetime.timedelta(days=next_update_days),
        revocation_time=now - datetime.timedelta(days=1) if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None,
    )
    response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer[1]).sign(issuer[0], hashes.SHA256())
    return base64.b64encode(response.public_bytes(serialization.Encoding.DER)).decode()


def chain_record(leaf, sent, verified, ocsp_b64=None):
    tls_record = record("https://app.example.test/", cert=leaf)
    tls_record["tls"]["chain"] = {
        "status": "ok",
        "sent": [der_b64(cert) for cert in sent],
        "verified": [der_b64(cert) for cert in verified] if verified is not None else None,
        "ocsp": ocsp_b64,
    }
    return tls_record


def findings(dev, prod):
    cells = {"dev": {"endpoints": {"site": dev}}, "prod": {"endpoints": {"site": prod}}}
    return {(f["key"], f["check"]): f for f in diff(["dev", "prod"], cells, CONTEXT)}


def test_stapled_status_good_revoked_stale_foreign_and_unreadable():
    inter = make_intermediate()
    leaf = make_cert(["app.example.test"], issuer=inter)[1]
    other = make_cert(["other.example.test"], issuer=inter)[1]
    assert stapled_status(stapled(leaf, inter), der_b64(leaf)) == ("stapled, good", False)
    revoked = stapled(leaf, inter, status=ocsp.OCSPCertStatus.REVOKED)
    assert stapled_status(revoked, der_b64(leaf)) == ("stapled, revoked", False)
    assert stapled_status(stapled(leaf, inter, next_update_days=-1), der_b64(leaf)) == ("stapled, good", True)
    assert stapled_status(stapled(other, inter), der_b64(leaf))[0] == "stapled, for another certificate"
    assert stapled_status("bm90IG9jc3A=", der_b64(leaf))[0] == "stapled, unreadable"
    assert stapled_status(None, der_b64(leaf)) == ("not stapled", False)


def test_chain_facts_complete_incomplete_and_hostile():
    inter = make_intermediate()
    leaf = make_cert(["app.example.test"], issuer=inter)[1]
    complete = chain_facts(chain_record(leaf, [leaf, inter[1]], [leaf, inter[1], ROOT[1]])["tls"]["chain"], None)
    assert complete["verified"] and complete["missing"] == []
    assert [facts["subject"] for facts in complete["intermediates"]] == ["CN=Chain Intermediate"]
    incomplete = chain_facts(chain_record(leaf, [leaf], [leaf, inter[1], ROOT[1]])["tls"]["chain"], None)
    assert incomplete["missing"] == ["CN=Chain Intermediate"]
    assert chain_facts({"status": "not_checked", "reason": "from the host"}, None) is None
    hostile = chain_facts({"status": "ok", "sent": [7, "!!", None], "verified": "x", "ocsp": 5}, None)
    assert hostile == {"ocsp": "stapled, unreadable", "stale": False, "verified": False, "missing": [],
                       "intermediates": []}  # fmt: skip


def test_production_that_does_not_staple_where_dev_does_and_an_expiring_intermediate():
    dev_inter, prod_inter = make_intermediate(), make_intermediate(days_left=15)
    dev_leaf = make_cert(["app.example.test"], issuer=dev_inter)[1]
    prod_leaf = make_cert(["app.example.test"], issuer=prod_inter)[1]
    dev = chain_record(
        dev_leaf, [dev_leaf, dev_inter[1]], [dev_leaf, dev_inter[1], ROOT[1]], stapled(dev_leaf, dev_inter)
    )
    prod = chain_record(prod_leaf, [prod_leaf, prod_inter[1]], [prod_leaf, prod_inter[1], ROOT[1]])
    found = findings(dev, prod)
    ocsp_changed = found[("tls.ocsp", "endpoints.ocsp_changed")]
    assert ocsp_changed["values"] == {"dev": "stapled, good", "prod": "not stapled"}
    expiring = found[("tls.intermediate.CN=Chain Intermediate", "endpoints.intermediate_expiring")]
    assert expiring["severity"] == "high" and expiring["environments"] == ["prod"]
    assert "intermediate certificate CN=Chain Intermediate on prod expires in 15 days" in expiring["message"]
    assert ("tls.chain", "endpoints.chain_changed") not in found  # both complete
    assert ("tls.intermediates", "endpoints.chain_changed") not in found  # alike: name, key, signature


def test_incomplete_chain_revoked_and_stale_staples_in_production():
    inter = make_intermediate()
    leaf = make_cert(["app.example.test"], issuer=inter)[1]
    dev = chain_record(leaf, [leaf, inter[1]], [leaf, inter[1], ROOT[1]], stapled(leaf, inter))
    revoked = stapled(leaf, inter, status=ocsp.OCSPCertStatus.REVOKED)
    found = findings(dev, chain_record(leaf, [leaf], [leaf, inter[1], ROOT[1]], revoked))
    assert found[("tls.chain", "endpoints.chain_incomplete")]["values"]["prod"] == "not sent: CN=Chain Intermediate"
    assert found[("tls.ocsp", "endpoints.ocsp_revoked")]["severity"] == "critical"
    stale = findings(
        dev, chain_record(leaf, [leaf, inter[1]], [leaf, inter[1], ROOT[1]], stapled(leaf, inter, next_update_days=-2))
    )
    assert stale[("tls.ocsp", "endpoints.ocsp_stale")]["severity"] == "high"
    assert ("tls.ocsp", "endpoints.ocsp_changed") not in stale  # both stapled, good: staleness is the policy's


def test_a_chain_not_read_is_never_compared():
    """An endpoint probed from the host has no chain facts: not checked there, never "different"."""
    inter = make_intermediate()
    leaf = make_cert(["app.example.test"], issuer=inter)[1]
    dev = chain_record(leaf, [leaf, inter[1]], [leaf, inter[1], ROOT[1]], stapled(leaf, inter))
    prod = record("https://app.example.test/", cert=leaf)
    prod["tls"]["chain"] = {"status": "not_checked", "reason": "probed from the host"}
    assert not [key for key, _check in findings(dev, prod) if key.startswith(("tls.ocsp", "tls.chain", "tls.inter"))]


def test_read_chain_from_a_real_server(tmp_path):
    inter = make_intermediate()
    key, leaf = make_cert(["app.example.test"], issuer=inter)
    cert_path, key_path = write_pem(tmp_path, "leaf", key, leaf)
    cert_path.write_bytes(cert_path.read_bytes() + inter[1].public_bytes(serialization.Encoding.PEM))
    root_path, _ = write_pem(tmp_path, "root", None, ROOT[1])
    with serve(Routes({}), cert_key=(cert_path, key_path)) as port:
        read = endpoints_chain.read_chain(("127.0.0.1", port), "app.example.test", str(root_path), 5)
        untrusted = endpoints_chain.read_chain(("127.0.0.1", port), "app.example.test", None, 5)
    assert read["status"] == "ok" and read["ocsp"] is None
    assert read["sent"] == [der_b64(leaf), der_b64(inter[1])]
    assert read["verified"] == [der_b64(leaf), der_b64(inter[1]), der_b64(ROOT[1])]
    assert untrusted["status"] == "ok" and untrusted["verified"] is None  # read, not verified
    refused = endpoints_chain.read_chain(("127.0.0.1", free_port()), "app.example.test", None, 2)
    assert refused["status"] == "failed" and "could not be read" in refused["reason"]


def test_a_server_that_never_answers_the_handshake_is_bounded():
    for head in (None, b"\x16\x03\x03"):  # silent; then a TLS record dripped a byte every 0.2 s
        with trickle_server(head) as port:
            started = datetime.datetime.now(UTC)
            slow = endpoints_chain.read_chain(("127.0.0.1", port), "app.example.test", None, 1)
        assert slow["status"] == "failed"
        assert (datetime.datetime.now(UTC) - started).total_seconds() < 3


def test_without_pyopenssl_the_chain_is_not_checked(monkeypatch):
    monkeypatch.setattr(endpoints_chain, "SSL", None)
    assert endpoints_chain.read_chain(("127.0.0.1", 1), "x", None, 1)["status"] == "not_checked"
