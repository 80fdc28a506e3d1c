"""Diff the facts of the run directory, write the report, and apply the gate.

Thin glue: the logic lives in plugin_utils (audit, report_model, report_writer).
"""

import shutil
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.envparity.audit.plugins.plugin_utils.audit import AREAS, AuditConfigError, build_audit
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown, write_report



def area_requests(hostvars, hosts):
    """Per host, the requests its area roles recorded as __<area>_request (hosts of this run only)."""
    requests = {}
    for host in hosts:
        own = hostvars[host]
        found = {area: own["__%s_request" % area] for area in AREAS if "__%s_request" % area in own}
        if found:
            requests[host] = found
    return requests


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(
        (
            "run_dir", "environments", "production_environments", "rules_files", "fail_on",
            "report_dir", "template", "inventory", "keep_run_dir",
        )
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        groups = task_vars["groups"]
        requests = area_requests(task_vars["hostvars"], groups.get("all", []))
        try:
            audit = build_audit(
                args["run_dir"], list(args["environments"]), list(args.get("production_environments") or []),
                {name: list(hosts) for name, hosts in groups.items()}, requests,
                list(args.get("rules_files") or []), args.get("fail_on", "never"),
            )
        except AuditConfigError as exc:
            raise AnsibleActionFail("cannot compare environments: %s" % exc) from None
        now = time.gmtime()
        document = build_document(audit, time.strftime("%Y-%m-%dT%H:%M:%SZ", now), args.get("inventory") or "")
        markdown = render_markdown(args["template"], build_view(document))
        paths = write_report(args["report_dir"], time.strftime("%Y%m%dT%H%M%SZ", now), markdown, document)
        if not args.get("keep_run_dir"):
            shutil.rmtree(args["run_dir"], ignore_errors=True)
        summary = document["summary"]
        result.update(changed=False, report=paths, summary=summary, gate=document["gate"])
        if document["gate"]["tripped"]:
            result.update(
                failed=True,
                msg="%d unexpected finding(s) at or above %s; see %s"
                % (document["gate"]["count"], document["gate"]["fail_on"], paths["markdown"]),
            )
        else:
            result["msg"] = "report written to %s" % paths["markdown"]
        return result
