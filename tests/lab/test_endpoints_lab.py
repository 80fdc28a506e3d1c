"""The lab's endpoints part (lab/endpoints_area.py): its web service, certificates and plants,
checked with the standard library and openssl, independently of the audit's probe."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from tests.lab.labtest import CANARIES, MANIFEST, REPO, STATE, SYSTEM_PYTHON  # noqa: E402

DIR = STATE / "endpoints"
CA = DIR / "ca.pem"


def get(port, path, tls_name=None, headers=None, verify=True):
    """(status, headers, body) of a GET to 127.0.0.1:port (TLS with SNI tls_name when given)."""
    if tls_name:
        context = ssl.create_default_context(cafile=str(CA))
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn = http.client.HTTPSConnection(tls_name, port, context=context, timeout=10)
        conn.sock = context.wrap_socket(raw, server_hostname=tls_name)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def succeeds(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def canaries():
    return json.loads(CANARIES.read_text())


def test_up_is_idempotent_for_the_endpoints_part():
    pid = (DIR / "server.pid").read_text()
    config = (DIR / "sites.json").read_bytes()
    labctl = [SYSTEM_PYTHON, "-I", "-S", str(REPO / "lab" / "labctl"), "-v", "up"]
    proc = subprocess.run(labctl, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "endpoints" not in proc.stdout.split("labctl up:")[0]
    assert (DIR / "server.pid").read_text() == pid and (DIR / "sites.json").read_bytes() == config


def test_prod_certificate_expires_in_about_ten_days_without_www_from_the_lab_ca():
    prod = str(DIR / "prod.pem")
    assert succeeds("openssl", "verify", "-CAfile", str(CA), prod)
    days = [d for d in range(12) if not succeeds("openssl", "x509", "-in", prod, "-noout", "-checkend", str(d * 86400))]
    assert days and 7 <= days[0] <= 11
    names = openssl("x509", "-in", prod, "-noout", "-ext", "subjectAltName")
    assert "DNS:ianleblanc.ca" in names and "www." not in names
    dev = openssl("x509", "-in", str(DIR / "dev.pem"), "-noout", "-subject", "-issuer", "-ext", "subjectAltName")
    assert "DNS:www.localhost" in dev and dev.count("CN = localhost") == 2  # self-signed


def test_the_sites_answer_as_planted():
    tokens = canaries()
    bearer = {"Authorization": "Bearer " + tokens["endpoints.prod.probe_token"]}
    status, _, _ = get(28443, "/api/health", "ianleblanc.ca")
    assert status == 401  # prod's health wants the probe's token
    status, headers, body = get(28443, "/api/health", "ianleblanc.ca", bearer)
    health = json.loads(body)
    assert status == 200 and health["version"] == "1.4.2" and health["legacy_mode"] is True
    assert health["cache_token"] == tokens["endpoints.prod.cache_token"]
    assert "strict-transport-security" not in headers and "1.4.2" in headers["server"]
    assert "Secure" not in headers["set-cookie"]
    status, headers, body = get(18443, "/api/health", "localhost", verify=False)
    assert status == 200 and json.loads(body)["version"] == "1.5.0"
    assert headers["strict-transport-security"] and "Secure" in headers["set-cookie"]
    with pytest.raises(ssl.SSLCertVerificationError):
        get(18443, "/api/health", "localhost")  # dev's certificate is self-signed
    assert get(18080, "/")[0] == 301 and get(28080, "/")[0] == 200
    basic = base64.b64encode(("monitor:" + tokens["endpoints.dev.probe_password"]).encode()).decode()
    assert get(18080, "/api/search")[0] == 401
    assert get(18080, "/api/search", headers={"Authorization": "Basic " + basic})[0] == 200


def test_the_manifest_plants_endpoints_drift_and_no_secret():
    manifest = MANIFEST.read_text()
    assert '"area": "endpoints"' in manifest
    for name, value in canaries().items():
        if name.startswith("endpoints."):
            assert value not in manifest
            assert value not in (REPO / "inventory" / "lab" / "group_vars" / "prod.yml").read_text()


def test_the_service_is_the_labs_by_pid():
    pid = int((DIR / "server.pid").read_text())
    cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
    assert str(DIR / "sites.json") in cmdline
    assert oct((DIR / "sites.json").stat().st_mode & 0o777) == "0o600"  # it holds canaries
