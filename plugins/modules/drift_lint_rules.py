#!/usr/bin/python
"""Documentation of the drift_lint_rules action (it runs on the controller only; see plugins/action)."""

DOCUMENTATION = r"""
---
module: drift_lint_rules
short_description: Lint the envparity rules files (malformed, duplicate, shadowed, stale rules, waivers)
description:
  - Reads C(drift_rules_files) (checked against the argument specs of the role C(envparity.audit.audit))
    and reports, with file and line, every malformed rule, duplicate rule, shadowed rule (an earlier
    rule without expiry always matches first), expired waiver and waiver expiring within 14 days, and
    the rules the last report (C(<report_dir>/latest.json)) lists as stale.
  - Fails when a rule is malformed, duplicate or shadowed, or a waiver has expired.
version_added: 0.2.0
author:
  - envparity developers
options:
  report_dir:
    description: The report directory whose C(latest.json) gives the stale rules (unset, C(drift_report_dir)).
    type: path
    required: false
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Lint the rules files
  envparity.audit.drift_lint_rules:
    report_dir: "{{ playbook_dir }}/../reports"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
problems:
  description: Each problem with kind, source (file), line and message.
  returned: always
  type: list
files:
  description: The rules files linted.
  returned: always
  type: list
"""
