"""Build this host's request for every area of the run, run the drift_facts module once, and land
its packed facts in the run directory.

Each area's variables are checked here against the area role's argument specs (no validation
task per role and host). The bulky facts never enter hostvars, callbacks or ansible-runner events:
only the per-area statuses are returned (big data must not flow through hostvars).
"""

# What the task `timeout:` keyword raises (its home in ansible-core 2.19, the core meta/runtime.yml requires).
from ansible._internal._errors._task_timeout import TaskTimeoutError
from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.envparity.audit.plugins.module_utils.redact import BaselineKey
from ansible_collections.envparity.audit.plugins.plugin_utils import controller_side, requests
from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir as rundir
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import build_request
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_facts import BaselineError, run_key_of
from ansible_collections.envparity.audit.plugins.plugin_utils.baseline_run import needs_key
from ansible_collections.envparity.audit.plugins.plugin_utils.requests import RequestError
from ansible_collections.envparity.audit.plugins.plugin_utils.role_variables import (
    RoleVariablesError,
    read_variables,
    validate_variables,
)


def host_requests(areas, variables_of):
    """({area: request} of the configured areas, {area: secrets}); variables_of(area) validates."""
    configured, secrets = {}, {}
    for area in areas:
        params = variables_of(area)
        request = build_request(area, params)
        if request is None:
            continue
        configured[area] = request
        secrets_of = getattr(requests, "%s_secrets" % area, None)
        if secrets_of is not None:
            secrets[area] = secrets_of(params)
    return configured, secrets


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("run_dir",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        run_directory = self._task.args.get("run_dir")
        if not run_directory:
            raise AnsibleActionFail("run_dir is required (set by the run's first task, envparity.audit.drift_run)")
        settings = rundir.load_settings(run_directory)
        host = task_vars.get("inventory_hostname")
        # This job's own groups: a slice job's inventory may hold only its slice (AWX job slicing).
        groups = task_vars.get("groups") or settings["groups"]
        if not any(host in groups.get(name, []) for name in settings["environments"]):
            result.update(changed=False, skipped=True, skip_reason="host is in none of drift_environments")
            return result
        try:
            areas, secrets = host_requests(
                settings["areas"],
                lambda area: validate_variables(area, read_variables(area, task_vars, self._templar)),
            )
        except (RoleVariablesError, RequestError) as exc:
            # Known to the report as a host whose areas are unknown (never "not configured").
            rundir.store_request(run_directory, host, None)
            raise AnsibleActionFail("cannot audit %s: %s" % (host, exc)) from None
        # Recorded before contacting the host: an unreachable host is still known to the report.
        rundir.store_request(run_directory, host, areas)
        if not areas:
            result.update(changed=False, areas={}, msg="no area is configured for this host")
            return result
        module_args = {
            "areas": areas,
            "run_key": self._run_key(run_directory, task_vars),
            # never stored with the request, never returned: a no_log option of the module
            "secrets": secrets,
        }
        if needs_key(settings):
            # Only when the run records or compares a baseline's facts; no_log, like the run key.
            try:
                module_args["baseline_key"] = run_key_of(settings)
            except BaselineError as exc:
                raise AnsibleActionFail("cannot audit %s: %s" % (host, exc)) from None
        # parts of areas collected from here while the host collects (e.g. endpoints `from: controller`)
        here_key = bytes.fromhex(module_args["run_key"])
        if "baseline_key" in module_args:
            here_key = BaselineKey(here_key, bytes.fromhex(module_args["baseline_key"]))
        running = controller_side.start(areas, here_key, secrets)
        try:
            module_result = self._execute_module(
                module_name="envparity.audit.drift_facts", module_args=module_args, task_vars=task_vars
            )
            finished = controller_side.finish(running)  # within the same timeout
        except TaskTimeoutError as exc:
            # The task's `timeout:` ran out: the host is not collectable (rc 4, report written), not a failed task.
            result.update(unreachable=True, msg="no answer within %d s (drift_host_timeout)" % exc.timeout)
            return result
        if module_result.get("failed"):
            result.update(failed=True, msg=module_result.get("msg", "drift_facts failed"))
            return result
        blob = controller_side.merged_blob(module_result.get("facts_blob") or "", finished, here_key)
        unusable = rundir.store_facts(run_directory, host, blob)
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
