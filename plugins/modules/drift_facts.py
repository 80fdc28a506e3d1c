#!/usr/bin/python
"""Collect the drift facts of every requested area on the host, read-only, in one execution."""

DOCUMENTATION = r"""
---
module: drift_facts
short_description: Collect envparity drift facts of every requested area in one execution
description:
  - Reads env files (and, as areas are added, Docker, PostgreSQL and git state) on the host.
  - Secret values never leave the host in clear; they are replaced by keyed fingerprints.
  - Read-only; returns C(changed=false) and supports check mode.
  - Normally called through the action plugin of the same name, which stores the packed facts
    in the run directory on the controller and returns only a summary.
version_added: 0.1.0
author:
  - envparity developers
options:
  areas:
    description: "Requests per area, for example C({env: {project_dir: ..., files: [...]}})."
    type: dict
    required: true
  run_key:
    description:
      - Per-run HMAC key (hex) used to fingerprint secret values.
      - The action plugin passes it only through a pipelined module (on stdin), never in a file
        on the host, and refuses a connection without pipelining.
    type: str
    required: true
  max_file_bytes:
    description: Files larger than this are reported as too large and not read.
    type: int
    default: 1048576
  secrets:
    description:
      - "Secrets per area, kept out of the requests, for example C({postgres: {app: password}})."
      - Used on the host only (database passwords reach psql through its environment).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Collect the env area
  envparity.audit.drift_facts:
    areas:
      env:
        project_dir: /home/deploy/app
        files:
          - {name: app, path: config/production.env, template: docker/env.prod.example}
    run_key: "{{ lookup('ansible.builtin.file', run_dir ~ '/key') }}"
"""

RETURN = r"""
facts_blob:
  description:
    - Gzip-compressed, base64-encoded JSON of the collected facts.
    - The controller checks it before use (inflated size, depth, the structure of each area).
  returned: always
  type: str
areas:
  description: Status of each requested area (C(ok) or C(failed) with a reason).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.envparity.audit.plugins.module_utils.collect import collect_areas, pack, summarize


def main():
    module = AnsibleModule(
        argument_spec={
            "areas": {"type": "dict", "required": True},
            "run_key": {"type": "str", "required": True, "no_log": True},
            "max_file_bytes": {"type": "int", "default": 1048576},
            "secrets": {"type": "dict", "default": {}, "no_log": True},
        },
        supports_check_mode=True,
    )
    run_key = bytes.fromhex(module.params["run_key"])
    collected = collect_areas(module.params["areas"], run_key, module.params["secrets"])
    module.exit_json(changed=False, facts_blob=pack({"areas": collected}), areas=summarize(collected))


if __name__ == "__main__":
    main()
