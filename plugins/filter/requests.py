"""Filters that turn inventory inputs into the collector's area requests (thin glue)."""

DOCUMENTATION = r"""
---
name: env_request
short_description: Normalise drift_env_files into the env area's collection request
description:
  - Returns C(None) when no env file is configured (the area is then "not configured" for the host).
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
    env_request,
)


def _env_request(files, project_dir=None, max_bytes=1048576):
    try:
        return env_request(files, project_dir, max_bytes)
    except RequestError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"env_request": _env_request, "configured_areas": configured_areas}
