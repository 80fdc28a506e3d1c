"""Capture hosts that could not be collected, and print a short summary of the drift report."""

DOCUMENTATION = r"""
---
name: drift_summary
type: notification
short_description: Record collection failures for the envparity report and print its summary
description:
  - Writes one record per unreachable or failed host into the run directory, so that the report
    shows those hosts as "could not collect" (never as "same").
  - Prints the report's path, its counts by severity and the gate result at the end of the run.
  - When no host remained in the play to run the report step (every host unreachable), writes
    the report itself from the run directory, so that an opened run always ends with a report.
  - Ends the run with exit code 73 when the report could not be written (the report directory
    is read-only, full, or not a directory), after saying so; nothing of the report is left behind.
  - In a collect phase of a shared run (drift_phase collect), leaves the run directory to the run's
    other jobs and says how many hosts this job collected, and that the report job writes the report.
  - In a report phase (drift_phase report), ends the run with exit code 4 when some host of the
    compared environments was delivered by no collect job (could not collect in the report).
  - Records only the failure message Ansible gives, cut to a bounded length; it never records
    task arguments or results.
version_added: 0.1.0
author:
  - envparity developers
requirements:
  - enabled in ansible.cfg (callbacks_enabled = envparity.audit.drift_summary)
"""

import sys

from ansible.plugins.callback import CallbackBase

from ansible_collections.envparity.audit.plugins.plugin_utils.areas import load_specs
from ansible_collections.envparity.audit.plugins.plugin_utils.audit import AuditConfigError
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import ReportWriteError
from ansible_collections.envparity.audit.plugins.plugin_utils.run_dir import close_run_on_exit, store_error
from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import write_run_report
from ansible_collections.envparity.audit.plugins.plugin_utils.summary import (
    EXIT_NOT_COLLECTED,
    EXIT_REPORT_NOT_WRITTEN,
    collect_phase,
    collected_line,
    failure_reason,
    report_not_written,
    run_not_opened,
    summary_lines,
)

RUN_ACTIONS = frozenset(("envparity.audit.drift_run", "drift_run"))
REPORT_ACTIONS = frozenset(("envparity.audit.drift_report", "drift_report"))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "envparity.audit.drift_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._run_dir = None
        self._run = None  # the run-opening result: run id and phase
        self._report = None
        self._report_failure = None

    def v2_playbook_on_start(self, playbook):
        # Read once here, in the main process: the workers forked per host inherit the specs read.
        load_specs()
        # The per-run key must not outlive the run, however it ends (nor the run directory, unless kept).
        # A collect phase leaves its shared run to the other slices and the report job.
        close_run_on_exit(lambda: None if collect_phase(self._run) else self._run_dir)

    def _record(self, result, status):
        host = result._host.get_name()
        reason = failure_reason(result._result, status)
        if self._run_dir is None:
            return
        try:
            store_error(
                self._run_dir, host, {"host": host, "status": status, "task": result._task.get_name(), "reason": reason}
            )
        except OSError as exc:
            self._display.warning("envparity: cannot record the failure of %s: %s" % (host, exc.strerror))

    def v2_runner_on_ok(self, result):
        action = result._task.action
        if action in RUN_ACTIONS:
            self._run = result._result
            self._run_dir = result._result.get("run_dir")
        elif action in REPORT_ACTIONS:
            self._report = result._result

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if result._task.action in REPORT_ACTIONS:
            self._report = result._result
            return
        if result._task.action in RUN_ACTIONS:
            self._report = run_not_opened(result._result)
            return
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def _write_fallback_report(self):
        """No host remained to run the report step (all unreachable): write it from the run dir."""
        try:
            self._report = write_run_report(self._run_dir)
        except ReportWriteError as exc:
            self._report = {"failed": True, "report_unwritable": True, "msg": str(exc)}
            return
        except (AuditConfigError, OSError, ValueError) as exc:
            self._display.warning("envparity: cannot write the report: %s" % exc)
            return
        self._display.display("envparity: no host remained in the play; the report was written by the callback.")

    def v2_playbook_on_stats(self, stats):
        if self._run_dir is None and self._report is None:
            return  # not an audit run (no run was opened): nothing to say
        if collect_phase(self._run):
            self._display.display(collected_line(self._run, stats.processed, stats.dark, stats.failures))
            return
        if self._report is None:
            self._write_fallback_report()
        if report_not_written(self._report):
            for line in summary_lines(self._report):
                self._display.error(line, wrap_text=False)
            # Ansible's stats would say 2 (a task failed) or 0; a missing report has its own code.
            sys.exit(EXIT_REPORT_NOT_WRITTEN)
        for line in summary_lines(self._report):
            self._display.display(line)
        if self._report.get("not_collected"):
            sys.exit(EXIT_NOT_COLLECTED)  # as Ansible ends a run with unreachable hosts, tripped gate or not
