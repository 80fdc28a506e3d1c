"""Diff the facts of the run directory, write the report, and apply the gate.

Thin glue: the logic lives in plugin_utils (run_report, audit, report_model, report_writer).
"""

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.envparity.audit.plugins.plugin_utils.audit import AuditConfigError
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import ReportWriteError
from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import write_run_report


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("run_dir",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            written = write_run_report(self._task.args["run_dir"])
        except AuditConfigError as exc:
            raise AnsibleActionFail("cannot compare environments: %s" % exc) from None
        except ReportWriteError as exc:
            # the callback ends the run with its own exit code (README, Exit codes)
            raise AnsibleActionFail(str(exc), result={"report_unwritable": True}) from None
        except OSError as exc:
            raise AnsibleActionFail("cannot write the report: %s: %s" % (exc.filename, exc.strerror)) from None
        result.update(changed=False, **written)
        gate = written["gate"]
        if written["history"]["error"]:
            result.setdefault("warnings", []).append("history: %s" % written["history"]["error"])
        if written["metrics"]["error"]:
            result.setdefault("warnings", []).append("metrics: %s" % written["metrics"]["error"])
        if gate["tripped"]:
            result.update(
                failed=True,
                msg="%d unexpected finding(s) at or above %s, %d new at or above %s; see %s"
                % (
                    gate["count"],
                    gate["fail_on"],
                    gate["new_count"],
                    gate["fail_on_new"],
                    written["report"]["markdown"],
                ),
            )
        else:
            result["msg"] = "report written to %s" % written["report"]["markdown"]
        return result
