"""AWX job slicing, for real on the lab: the audit split into collect jobs, each on its own slice of
the hosts (two ansible-playbook processes at the same time, each with --limit), and one report job
(drift_phase report), gives the report one single-command run gives. A slice missing is could not
collect (exit 4), and a run is reported once."""

import json
import os
import re
import subprocess
import sys

from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import report_body

from .conftest import ROOT

# Without the history store (a second run would say "persisting"), and without the areas that
# measure (response times, loads: another sample each run), as the determinism test of one run.
COMMON = ["--skip-tags", "endpoints,health", "-e", "drift_history=false"]


def playbook(report_dir, *arguments):
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(ROOT / "compare.yml")]
    command += COMMON + ["-e", "drift_report_dir=%s" % report_dir, *arguments]
    environment = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finished(process):
    output, _ = process.communicate(timeout=900)
    return process.returncode, output


def collect(report_dir, run_id, *limits):
    """One collect job per limit, all at once; their (rc, output)."""
    jobs = [
        playbook(report_dir, "-e", "drift_phase=collect", "-e", "drift_run_id=%s" % run_id, "--limit", limit)
        for limit in limits
    ]
    return [finished(job) for job in jobs]


def report(report_dir, run_id):
    return finished(playbook(report_dir, "-e", "drift_phase=report", "-e", "drift_run_id=%s" % run_id))


def test_two_slices_and_a_report_give_the_single_run_report(tmp_path, lab):
    sliced = tmp_path / "sliced"
    for rc, output in collect(sliced, "wf-1", "dev-laptop", "prod-vm"):
        assert rc == 0, output
        assert "this collect job took 1 host(s) into the shared run" in output
        assert not (sliced / "latest.md").exists()  # no slice writes a report
    assert sorted(os.listdir(sliced / ".runs" / "wf-1" / "facts")) == ["dev-laptop.b64gz", "prod-vm.b64gz"]
    rc, output = report(sliced, "wf-1")
    assert rc == 0, output
    assert re.search(r"prod-vm\s+: ok=0 ", output), output  # the report job contacts no host
    whole = tmp_path / "whole"
    rc, output = finished(playbook(whole))
    assert rc == 0, output
    sliced_findings = json.loads((sliced / "latest.json").read_text())["findings"]
    whole_findings = json.loads((whole / "latest.json").read_text())["findings"]
    for findings in (sliced_findings, whole_findings):  # both collected everything (else the diff says why)
        assert not [f for f in findings if f["kind"] == "unknown"], [f for f in findings if f["kind"] == "unknown"]
    assert report_body((sliced / "latest.md").read_text()) == report_body((whole / "latest.md").read_text())
    assert sliced_findings and [f["id"] for f in sliced_findings] == [f["id"] for f in whole_findings]
    assert not (sliced / ".runs" / "wf-1").exists()  # reported: the run directory goes with its key

    rc, output = report(sliced, "wf-1")  # a second report job for the same run
    assert rc == 2 and "cannot audit: no shared run wf-1 under" in output, output


def test_a_missing_slice_is_could_not_collect_and_exits_4(tmp_path, lab):
    reports = tmp_path / "reports"
    [(rc, output)] = collect(reports, "wf-2", "dev-laptop")
    assert rc == 0, output
    rc, output = report(reports, "wf-2")
    assert rc == 4, output
    assert "NOT COLLECTED by any collect job of the shared run: prod-vm" in output
    document = json.loads((reports / "latest.json").read_text())
    assert [column["host"] for column in document["columns"]] == ["dev-laptop", "prod-vm"]
    prod = [f for f in document["findings"] if f["kind"] == "unknown" and f["environments"] == ["prod"]]
    assert prod and all("no collect job of run wf-2 delivered" in json.dumps(f) for f in prod)
    assert "no collect job of run wf-2 delivered" in (reports / "latest.md").read_text()
