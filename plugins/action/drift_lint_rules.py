"""Lint the rules files of the audit (drift_rules_files): thin glue around plugin_utils.rules_lint."""

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.envparity.audit.plugins.plugin_utils.areas import AUDIT_ROLE
from ansible_collections.envparity.audit.plugins.plugin_utils.role_variables import (
    RoleVariablesError,
    read_variables,
    validate_variables,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.rules_lint import ERRORS, lint_files, problem_lines


def last_report(report_dir):
    """The last audit's report (for its stale rules, unmatched policies and tolerances), or None."""
    try:
        with open(os.path.join(report_dir, "latest.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False
    _VALID_ARGS = frozenset(("report_dir",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            params = validate_variables(AUDIT_ROLE, read_variables(AUDIT_ROLE, task_vars, self._templar))
        except RoleVariablesError as exc:
            raise AnsibleActionFail("cannot lint the rules: %s" % exc) from None
        report_dir = self._task.args.get("report_dir") or params.get("drift_report_dir")
        report = last_report(report_dir) if report_dir else None
        problems = lint_files(params["drift_rules_files"], report=report)
        errors = [p for p in problems if p["kind"] in ERRORS]
        notes = [p for p in problems if p["kind"] not in ERRORS]
        result.update(changed=False, problems=problems, files=list(params["drift_rules_files"]))
        if notes:  # stale rules and waivers expiring soon: said, not failed
            result["warnings"] = problem_lines(notes)
        if errors:
            result.update(
                failed=True,
                msg="%d problem(s) in the rules files:\n%s" % (len(errors), "\n".join(problem_lines(errors))),
            )
        else:
            result["msg"] = "%d rules file(s): no malformed, duplicate or shadowed rule, no expired waiver%s" % (
                len(params["drift_rules_files"]),
                "" if report else " (no last report: stale rules, unmatched policies and tolerances not checked)",
            )
        return result
