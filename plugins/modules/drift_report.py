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
  - Fails when the gate (C(drift_fail_on)) trips, naming the count and the report.
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
gate:
  description: The gate (fail_on, tripped, count).
  returned: always
  type: dict
"""
