"""A role's variables as a host defines them, checked against the role's argument specs.

The one controller helper that imports Ansible (its own argument spec validator, the one role
argument validation uses), shared by the action plugins: the checks run inside the audit's own
tasks instead of one validation task per role and host.
"""

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.envparity.audit.plugins.plugin_utils.areas import spec_options


class RoleVariablesError(ValueError):
    """A variable does not match its role's argument specs; the message names it and the field."""


def read_variables(role, task_vars, templar):
    """The role's variables that the host defines, templated (lookups and vault resolved)."""
    present = {name: task_vars[name] for name in spec_options(role) if name in task_vars}
    return templar.template(present)


def validate_variables(role, variables):
    """The variables with the specs' defaults applied; RoleVariablesError names what is wrong."""
    result = ArgumentSpecValidator(spec_options(role)).validate(variables, validate_role_argument_spec=True)
    if result.error_messages:
        raise RoleVariablesError(
            "the variables of envparity.audit.%s do not validate: %s" % (role, "; ".join(result.error_messages))
        )
    return result.validated_parameters
