#!/usr/bin/python
"""Documentation of the drift_run action (it runs on the controller only; see plugins/action)."""

DOCUMENTATION = r"""
---
module: drift_run
short_description: Open an envparity audit run on the controller
description:
  - The first task of compare.yml, run once (C(run_once), C(delegate_to=localhost)).
  - Reads the audit-wide variables (C(drift_environments), C(drift_production_environments),
    C(drift_areas), C(drift_rules_files), C(drift_fail_on), C(drift_report_dir),
    C(drift_report_template), C(drift_keep_run_dir), C(drift_host_timeout),
    C(drift_allow_unsafe_debug), C(drift_fail_on_new), the history settings C(drift_history*),
    C(drift_previous_report), C(drift_baseline), C(drift_baseline_save)) and checks them against
    the argument specs of the role C(envparity.audit.audit), before any host is contacted.
  - Chooses the areas of the run from C(--tags) / C(--skip-tags) (C(ansible_run_tags),
    C(ansible_skip_tags)) or C(drift_areas).
  - Refuses to run with C(ANSIBLE_DEBUG) or C(ANSIBLE_KEEP_REMOTE_FILES) on unless
    C(drift_allow_unsafe_debug) forces it.
  - Creates the run directory under C(<drift_report_dir>/.runs) with its settings and a random
    per-run fingerprint key, kept in memory (C(/dev/shm)) where the system has it.
version_added: 0.1.0
author:
  - envparity developers
options: {}
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Open the audit run (settings, areas, run directory with its per-run fingerprint key)
  envparity.audit.drift_run:
  register: __drift_run
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
run_dir:
  description: The run directory, for the collect and report tasks.
  returned: success
  type: str
run_id:
  description: The run's identifier (UTC time and random hex).
  returned: success
  type: str
areas:
  description: The areas this run audits, in registry order.
  returned: success
  type: list
  elements: str
host_timeout:
  description: C(drift_host_timeout) as validated (seconds), for the collect task's C(timeout).
  returned: success
  type: int
"""
