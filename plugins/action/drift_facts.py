"""Run the drift_facts module and land its packed facts in the run directory.

The bulky facts never enter hostvars, callbacks or ansible-runner events: only the per-area
statuses are returned (PERFORMANCE.md: big data must not flow through hostvars).
"""

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir as rundir


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("run_dir", "areas", "max_file_bytes", "secrets"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        if not args.get("run_dir"):
            raise AnsibleActionFail("run_dir is required (set by the envparity.audit.prepare role)")
        host = task_vars.get("inventory_hostname")
        # Recorded before contacting the host: an unreachable host is still known to the report.
        rundir.store_request(args["run_dir"], host, args.get("areas") or {})
        module_args = {
            "areas": args.get("areas") or {},
            "run_key": self._run_key(args["run_dir"], task_vars),
            "max_file_bytes": args.get("max_file_bytes", 1048576),
            # never stored with the request, never returned: a no_log option of the module
            "secrets": args.get("secrets") or {},
        }
        module_result = self._execute_module(
            module_name="envparity.audit.drift_facts", module_args=module_args, task_vars=task_vars
        )
        if module_result.get("failed"):
            result.update(failed=True, msg=module_result.get("msg", "drift_facts failed"))
            return result
        unusable = rundir.store_facts(args["run_dir"], host, module_result.get("facts_blob") or "")
        if unusable:
            result.update(failed=True, msg=unusable)
            return result
        result.update(changed=False, areas=module_result.get("areas", {}))
        return result

    def _run_key(self, run_dir, task_vars):
        """The key travels only inside a pipelined module (stdin), never in a file on the host,
        unless the user forced Ansible's debug switches (drift_allow_unsafe_debug, warned of)."""
        forced = boolean(task_vars.get("drift_allow_unsafe_debug", False), strict=False)
        if not forced and not self._is_pipelining_enabled("new"):
            raise AnsibleActionFail(
                "pipelining is off for this host's connection: the module and its arguments (the run key, "
                "database passwords) would be written to a file on it; enable pipelining (ansible.cfg "
                "[connection] pipelining = True, or ansible_pipelining: true) and no keep_remote_files"
            )
        return rundir.read_key(run_dir)
