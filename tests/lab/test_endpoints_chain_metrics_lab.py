"""The lab's chain and metrics parts (lab/tls_chain_area.py, lab/prometheus_area.py), checked with
their own tools as oracles: `openssl s_client -status`, `promtool` and Prometheus' HTTP API;
then the audit's readers against them (pyOpenSSL's chain, the Prometheus facts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from ansible_collections.envparity.audit.plugins.module_utils import endpoints_prometheus  # noqa: E402
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_chain import read_chain  # noqa: E402
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_tls import chain_facts  # noqa: E402
from tests.lab.labtest import STATE  # noqa: E402

CA = STATE / "endpoints" / "ca.pem"
CHAIN = STATE / "tls-chain"
PROMETHEUS = "http://127.0.0.1:29090"


def s_client(port, name):
    command = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", name, "-status",
               "-CAfile", str(CA), "-showcerts"]  # fmt: skip
    return subprocess.run(command, input="", capture_output=True, text=True, timeout=30, check=False).stdout


def test_dev_staples_a_good_response_and_prod_none():
    dev, prod = s_client(18444, "localhost"), s_client(28444, "ianleblanc.ca")
    assert "Cert Status: good" in dev and "Verify return code: 0 (ok)" in dev
    assert "OCSP response: no response sent" in prod and "Verify return code: 0 (ok)" in prod
    for sent in (dev, prod):  # the leaf and the intermediate, not the root
        assert " 1 s:CN = envparity lab intermediate" in sent and " 2 s:" not in sent


def test_prods_intermediate_expires_in_about_fifteen_days():
    def valid_in(days):
        command = [
            "openssl",
            "x509",
            "-in",
            str(CHAIN / "prod-intermediate.pem"),
            "-noout",
            "-checkend",
            str(days * 86400),
        ]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    assert valid_in(11) and not valid_in(16)


def test_the_audits_chain_reader_agrees_with_openssl():
    dev = chain_facts(read_chain(("127.0.0.1", 18444), "localhost", str(CA), 5), None)
    prod = chain_facts(read_chain(("127.0.0.1", 28444), "ianleblanc.ca", str(CA), 5), None)
    assert dev["ocsp"] == "stapled, good" and prod["ocsp"] == "not stapled"
    assert dev["missing"] == prod["missing"] == []
    assert [facts["subject"] for facts in prod["intermediates"]] == ["CN=envparity lab intermediate"]
    assert 11 <= prod["intermediates"][0]["days_left"] <= 15


def query(promql):
    url = "%s/api/v1/query?%s" % (PROMETHEUS, urllib.parse.urlencode({"query": promql}))
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback)
        return json.load(answer)["data"]["result"]


def test_prometheus_config_checks_and_it_scrapes_as_planted():
    checked = subprocess.run(
        ["promtool", "check", "config", str(STATE / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    up = {series["metric"]["job"]: series["value"][1] for series in query("up")}
    assert up == {"web": "1", "node": "0"}
    ratio = query(endpoints_prometheus.DEFAULT_QUERIES["error_ratio"])
    assert ratio and float(ratio[0]["value"][1]) > 0.1  # /api/orders: a 500 a second


def test_the_audits_prometheus_reader_agrees_with_the_api():
    record = endpoints_prometheus.collect({"url": PROMETHEUS, "from": "controller"}, 5, 30)
    assert record["status"] == "ok"
    assert record["targets"]["jobs"] == {"web": {"127.0.0.1:28080": 1}, "node": {"127.0.0.1:29100": 0}}
    assert record["queries"]["request_rate"]["jobs"]["web"] > 0
    assert 0.1 < record["queries"]["error_ratio"]["jobs"]["web"] < 1
    assert record["queries"]["p95_latency_seconds"]["jobs"]["web"] > 0
