"""Hostile env files and host names through a real audit into the JUnit XML and the Prometheus
textfile: both still parse (junitparser and the JUnit schema, prometheus_client's parser), no test
case or metric sample is injected, and each hostile text reads back as it was (or, for characters
XML cannot hold, spelled out)."""

import json
import pathlib

import junitparser
import xmlschema
from prometheus_client.parser import text_string_to_metric_families

ROOT = pathlib.Path(__file__).resolve().parents[2]
JUNIT_SCHEMA = xmlschema.XMLSchema(str(ROOT / "tests" / "unit" / "fixtures" / "junit" / "junit.xsd"))
CLOSE = "]]></failure></testcase><testcase name='injected'>"
HOST = 'prod"vm\\} evil{x="1"}'


def test_hostile_keys_values_and_host_names_stay_text(audit, tmp_path):
    dev_env, prod_env = tmp_path / "dev.env", tmp_path / "prod.env"
    dev_env.write_text("CLOSE=one\nESCAPE=plain\nQUOTE=a\n")
    prod_env.write_text("CLOSE=%s\nESCAPE=\x1b[31mred\x07\nQUOTE='a\"b<c>&d'\n" % CLOSE)
    inventory = tmp_path / "hosts.yml"
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "dev": {
                            "hosts": {"dev-box": dict(local, drift_env_files=[{"name": "app", "path": str(dev_env)}])}
                        },
                        "prod": {
                            "hosts": {HOST: dict(local, drift_env_files=[{"name": "app", "path": str(prod_env)}])}
                        },
                    }
                }
            }
        )
    )
    metrics_file = tmp_path / "envparity.prom"
    result = audit("-i %s --tags env" % inventory, extravars={"drift_metrics_file": str(metrics_file)})
    assert result.rc == 0, result.stdout
    findings = result.report["findings"]

    text = (result.report_dir / "latest.junit.xml").read_bytes()
    JUNIT_SCHEMA.validate(text)
    xml = junitparser.JUnitXml.fromstring(text)
    cases = [case for suite in xml for case in suite]
    assert len(cases) == len(findings) and not any(case.name == "injected" for case in cases)
    by_key = {f["key"]: f for f in findings}
    close = next(case for case in cases if case.name.startswith(by_key["CLOSE"]["id"]))
    assert CLOSE in close.result[0].text  # the failure text holds the value as it was read
    quote = next(case for case in cases if case.name.startswith(by_key["QUOTE"]["id"]))
    assert 'a"b<c>&d' in quote.result[0].text
    escape = next(case for case in cases if case.name.startswith(by_key["ESCAPE"]["id"]))
    assert by_key["ESCAPE"]["values"]["prod"] == "\x1b[31mred\x07"  # the report keeps the real characters
    assert "prod: \\x1b[31mred\\x07" in escape.result[0].text  # XML cannot hold them: spelled out
    assert b"\x1b" not in text and b"\x07" not in text

    families = {family.name: family for family in text_string_to_metric_families(metrics_file.read_text())}
    hosts = {sample.labels["host"] for sample in families["envparity_collection_ok"].samples}
    assert hosts == {"dev-box", HOST}
    assert all(name.startswith("envparity_") for name in families)
