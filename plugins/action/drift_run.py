"""Open an audit run on the controller: a fresh run directory with its own random HMAC key."""

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir as rundir


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("base_dir",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        base_dir = self._task.args.get("base_dir")
        if not base_dir:
            raise AnsibleActionFail("base_dir is required")
        try:
            run_id, path = rundir.new_run(base_dir)
        except OSError as exc:
            raise AnsibleActionFail("cannot create the run directory under %s: %s" % (base_dir, exc.strerror))
        # The key stays in the run directory (0600); only its location travels.
        result.update(changed=False, run_id=run_id, run_dir=path)
        return result
