"""Open an audit run on the controller: validate the audit-wide settings once, choose the areas,
and create the run directory with its random HMAC key and its settings."""

import os
import time

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir as rundir
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import (
    AUDIT_ROLE,
    REPORT_TEMPLATE,
    AreaSelectionError,
    selected_areas,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.audit import AuditConfigError, check_settings
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_facts import BaselineError, run_key_of
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_facts import (
    check_settings as check_baseline_settings,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_run import needs_key
from ansible_collections.envparity.audit.plugins.plugin_utils.role_variables import (
    RoleVariablesError,
    read_variables,
    validate_variables,
)


def run_settings(params, task_vars):
    """What the collect and report steps need, from the validated audit settings."""
    report_dir = params.get("drift_report_dir") or os.path.join(task_vars["playbook_dir"], "reports")
    template = params.get("drift_report_template") or REPORT_TEMPLATE
    return {
        "environments": params["drift_environments"],
        "production_environments": params["drift_production_environments"],
        "rules_files": params["drift_rules_files"],
        "fail_on": params["drift_fail_on"],
        "fail_on_new": params["drift_fail_on_new"],
        "history": params["drift_history"],
        "history_file": params.get("drift_history_file") or os.path.join(report_dir, "history.sqlite"),
        "history_retention_days": params["drift_history_retention_days"],
        "history_busy_timeout": params["drift_history_busy_timeout"],
        "history_trend_runs": params["drift_history_trend_runs"],
        "previous_report": params.get("drift_previous_report"),
        "baseline": params.get("drift_baseline"),
        "baseline_save": params.get("drift_baseline_save"),
        "baseline_columns": params["drift_baseline_columns"],
        "baseline_key_file": params.get("drift_baseline_key_file"),
        "report_dir": report_dir,
        "template": template,
        "keep_run_dir": params["drift_keep_run_dir"],
        "junit": params["drift_report_junit"],
        "metrics_file": params.get("drift_metrics_file"),
        "started_at": time.time(),
        "phase": params["drift_phase"],
        "run_id": params.get("drift_run_id"),
        "host_timeout": params["drift_host_timeout"],
        "inventory": ", ".join(task_vars.get("ansible_inventory_sources") or []),
        "groups": {name: list(hosts) for name, hosts in task_vars["groups"].items()},
        "areas": selected_areas(
            task_vars.get("ansible_run_tags"), task_vars.get("ansible_skip_tags"), params.get("drift_areas")
        ),
    }


def open_run(base_dir, settings):
    """(run id, run directory): a new run, or for a phase of a shared run, that run opened or joined
    (collect) or claimed (report)."""
    phase, run_id = settings["phase"], settings["run_id"]
    if phase == "all":
        if run_id:
            raise AuditConfigError("drift_run_id names a shared run: set drift_phase to collect or report")
        return rundir.new_run(base_dir, settings)
    if not run_id:
        raise AuditConfigError("drift_phase %s needs drift_run_id (the run its jobs share)" % phase)
    if phase == "collect":
        return run_id, rundir.open_shared_run(base_dir, run_id, settings)[0]
    return run_id, rundir.claim_shared_run(base_dir, run_id, settings)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False
    _VALID_ARGS = frozenset()

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            params = validate_variables(AUDIT_ROLE, read_variables(AUDIT_ROLE, task_vars, self._templar))
            # Before the key exists and before any host is contacted.
            self._check_debug_switches(params["drift_allow_unsafe_debug"])
            settings = run_settings(params, task_vars)
            check_settings(settings)
            check_baseline_settings(settings)
            if needs_key(settings):
                # Made (0600) before any host is contacted; a key that cannot be used stops the run here.
                run_key_of(settings, create=bool(settings["baseline_save"]))
            run_id, path = open_run(os.path.join(settings["report_dir"], ".runs"), settings)
        except (RoleVariablesError, AreaSelectionError, AuditConfigError, BaselineError, rundir.SharedRunError) as exc:
            raise AnsibleActionFail("cannot audit: %s" % exc) from None
        except OSError as exc:
            raise AnsibleActionFail(
                "cannot create the run directory under %s: %s" % (settings["report_dir"], exc.strerror)
            ) from None
        # The key stays in the run directory (0600); only its location travels.
        result.update(
            changed=False,
            run_id=run_id,
            run_dir=path,
            phase=settings["phase"],
            areas=settings["areas"],
            host_timeout=settings["host_timeout"],
        )
        return result

    def _check_debug_switches(self, allowed):
        """Before the key exists and before any host is contacted: refuse Ansible's debug switches
        that would write the key and the passwords out, unless the user forces them."""
        switches = rundir.unsafe_switches(C.DEFAULT_DEBUG, C.DEFAULT_KEEP_REMOTE_FILES)
        if not switches:
            return
        if not allowed:
            raise AnsibleActionFail(
                "refusing to audit: %s. Unset it, or force the audit with -e drift_allow_unsafe_debug=true "
                "and treat the output and the hosts' temporary files as secret." % "; ".join(switches)
            )
        Display().warning(
            "ENVPARITY UNSAFE DEBUG FORCED (drift_allow_unsafe_debug): %s. The run key and the database "
            "passwords are exposed by this run: treat its output and the hosts' temporary files as secret, "
            "and rotate the passwords if they leave this machine." % "; ".join(switches)
        )
