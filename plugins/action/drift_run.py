"""Open an audit run on the controller: a fresh run directory, its random HMAC key, its settings."""

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir as rundir
from ansible_collections.envparity.audit.plugins.plugin_utils.audit import AuditConfigError, check_settings
from ansible_collections.envparity.audit.plugins.plugin_utils.run_report import SETTINGS


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("base_dir", "allow_unsafe_debug") + tuple(name for name in SETTINGS if name != "groups"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        base_dir = args.pop("base_dir", None)
        if not base_dir:
            raise AnsibleActionFail("base_dir is required")
        self._check_debug_switches(boolean(args.pop("allow_unsafe_debug", False), strict=False))
        settings = {name: args.get(name) for name in SETTINGS if name != "groups"}
        settings["groups"] = {name: list(hosts) for name, hosts in task_vars["groups"].items()}
        try:
            check_settings(settings)
            run_id, path = rundir.new_run(base_dir, settings)
        except AuditConfigError as exc:
            raise AnsibleActionFail("cannot audit: %s" % exc) from None
        except OSError as exc:
            raise AnsibleActionFail("cannot create the run directory under %s: %s" % (base_dir, exc.strerror)) from None
        # The key stays in the run directory (0600); only its location travels.
        result.update(changed=False, run_id=run_id, run_dir=path)
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
