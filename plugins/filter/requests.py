"""Filters that turn inventory inputs into the collector's area requests (thin glue)."""

DOCUMENTATION = r"""
---
name: env_request
short_description: Normalise an area's inventory inputs into its collection request
description:
  - C(env_request) normalises C(drift_env_files); C(git_request) normalises C(drift_git_repos) and
    C(drift_deploy_dirs); C(docker_request) normalises C(drift_compose) and C(drift_docker_host);
    C(postgres_request) normalises C(drift_postgres) without passwords, which C(postgres_passwords)
    returns apart for the module's no_log option; C(configured_areas) drops the areas that have no request.
  - Returns C(None) when nothing is configured (the area is then "not configured" for the host).
version_added: 0.1.0
author:
  - envparity developers
positional: project_dir, max_bytes
options:
  _input:
    description: The list of env files, as in C(drift_env_files).
    type: list
    elements: dict
    required: true
  project_dir:
    description: Base for relative paths.
    type: str
  max_bytes:
    description: Files larger than this are not read.
    type: int
"""

EXAMPLES = r"""
__env_request: "{{ drift_env_files | envparity.audit.env_request(drift_project_dir, 1048576) }}"
"""

RETURN = r"""
_value:
  description: The request, or None.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.envparity.audit.plugins.plugin_utils.requests import (
    RequestError,
    configured_areas,
    docker_request,
    env_request,
    git_request,
    postgres_passwords,
    postgres_request,
)


def _explained(build):
    """Turn a RequestError into a filter error that names the variable at fault."""

    def wrapper(*args, **kwargs):
        try:
            return build(*args, **kwargs)
        except RequestError as exc:
            raise AnsibleFilterError(str(exc)) from None

    return wrapper


class FilterModule:
    def filters(self):
        return {
            "env_request": _explained(env_request),
            "git_request": _explained(git_request),
            "docker_request": _explained(docker_request),
            "postgres_request": _explained(postgres_request),
            "postgres_passwords": postgres_passwords,
            "configured_areas": configured_areas,
        }
