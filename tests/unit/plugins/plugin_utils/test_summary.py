"""A run whose report could not be written: how it is recognised and what the terminal says."""

from ansible_collections.envparity.audit.plugins.plugin_utils.summary import (
    EXIT_REPORT_NOT_WRITTEN,
    report_not_written,
    run_not_opened,
    summary_lines,
)

# Exit codes Ansible itself gives (ansible.errors.ExitCode and the task queue manager's).
ANSIBLE_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 8, 99, 250, 255}


def test_the_exit_code_is_its_own():
    assert EXIT_REPORT_NOT_WRITTEN not in ANSIBLE_EXIT_CODES


def test_a_run_directory_that_cannot_be_created_means_no_report():
    failed = {"failed": True, "msg": "cannot create the run directory under /r/.runs: Read-only file system"}
    assert run_not_opened(failed) == {"failed": True, "report_unwritable": True, "msg": failed["msg"]}
    assert report_not_written(run_not_opened(failed))


def test_rejected_settings_are_not_an_unwritable_report():
    assert run_not_opened({"failed": True, "msg": "cannot audit: drift_fail_on must be one of …"}) is None
    assert run_not_opened({"failed": True}) is None
    assert not report_not_written(None)
    assert not report_not_written({"failed": True, "msg": "cannot compare environments: x"})


def test_the_terminal_says_no_report_and_why():
    message = "cannot write the report in /r:\nNo space"
    lines = summary_lines({"failed": True, "report_unwritable": True, "msg": message})
    assert lines == [
        "envparity: NO REPORT: cannot write the report in /r: No space",
        "envparity: nothing was written; exit code 73 (see README, Exit codes).",
    ]
