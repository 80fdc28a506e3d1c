#!/usr/bin/python
"""Documentation of the drift_report action (it runs on the controller only; see plugins/action)."""

DOCUMENTATION = r"""
---
module: drift_report
short_description: Diff the run's facts, write the envparity report and apply the gate
description:
  - The last task of compare.yml, run once on the controller.
  - Reads the run directory (settings, each host's request, facts and failures), diffs every
    area, applies the rules of expected differences, writes C(<drift_report_dir>/<stamp>-<run id>/report.md)
    and C(report.json) and switches C(latest) to them, then deletes the run directory (unless
    C(drift_keep_run_dir); the fingerprint key is deleted either way).
  - Compares the findings with the earlier run (the history store, C(drift_previous_report) or
    C(drift_baseline)), giving new, persisting, changed, resolved, first seen and age; then, after the
    report, records the run in the store in one transaction (a store that cannot be used is a
    warning and a line of the report, never a lost report).
  - Fails when the gate (C(drift_fail_on), C(drift_fail_on_new)) trips, naming the count and the report.
version_added: 0.1.0
author:
  - envparity developers
options:
  run_dir:
    description: The run directory that C(envparity.audit.drift_run) opened.
    type: path
    required: true
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Diff the collected facts and write the drift report
  envparity.audit.drift_report:
    run_dir: "{{ __drift_run.run_dir }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
report:
  description: Paths of the report written (markdown, json, and their latest links).
  returned: success
  type: dict
summary:
  description: Counts by severity, area, expected, unknown, stale rules and errors.
  returned: success
  type: dict
history:
  description: The history store, its error if any, and the counts of new, persisting, changed and resolved findings.
  returned: success
  type: dict
gate:
  description: The gate (fail_on, fail_on_new, tripped, count, new_count).
  returned: always
  type: dict
"""
