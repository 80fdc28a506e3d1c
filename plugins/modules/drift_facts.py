#!/usr/bin/python
"""Collect the drift facts of every requested area on the host, read-only, in one execution."""

DOCUMENTATION = r"""
---
module: drift_facts
short_description: Collect envparity drift facts of every area of the run in one execution per host
description:
  - Reads, on the host, every area the run audits (env files, git, Docker Compose and the engine,
    PostgreSQL, HTTP(S) endpoints probed from the host) in one module execution; the areas run
    concurrently. Endpoints probed from the controller run in the action plugin meanwhile and
    join the host's facts.
  - Secret values never leave the host in clear; they are replaced by keyed fingerprints.
  - Read-only; returns C(changed=false) and supports check mode.
  - The task takes the run directory only. Its action plugin (same name) reads the host's
    variables of each area (C(drift_env_files), C(drift_git_repos), C(drift_compose),
    C(drift_postgres), C(drift_endpoints) ...), checks them against each area role's argument
    specs, records the host's request in the run directory, and calls the module with the
    requests, the run's fingerprint key and the secrets (database passwords, probe credentials),
    on stdin of a pipelined module only (it refuses a connection without pipelining). It stores
    the packed facts in the run directory and returns only each area's status.
version_added: 0.1.0
author:
  - envparity developers
options:
  run_dir:
    description:
      - The run directory that C(envparity.audit.drift_run) opened (its C(run_dir) result).
    type: path
    required: true
notes:
  - The module itself takes C(areas) (the requests), C(run_key), C(secrets) and, when the run
    records or compares a baseline, C(baseline_key) (no_log); only its action plugin gives them, so
    they are not options of the task.
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
# As compare.yml runs it, after envparity.audit.drift_run opened the run.
- name: Collect drift facts (one read-only module execution per host, every area)
  envparity.audit.drift_facts:
    run_dir: "{{ __drift_run.run_dir }}"
  timeout: "{{ drift_host_timeout | default(__drift_run.host_timeout) }}"
"""

RETURN = r"""
areas:
  description:
    - Status of each area collected on the host (C(ok), or C(failed) with a reason); empty when the
      host configures no area.
    - The facts themselves (gzip-compressed, base64-encoded JSON from the module) are checked and
      stored in the run directory by the action plugin, never returned.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.envparity.audit.plugins.module_utils.collect import (
    collect_areas,
    host_facts,
    pack,
    summarize,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import BaselineKey


def main():
    module = AnsibleModule(
        argument_spec={
            "areas": {"type": "dict", "required": True},
            "run_key": {"type": "str", "required": True, "no_log": True},
            "secrets": {"type": "dict", "default": {}, "no_log": True},
            "baseline_key": {"type": "str", "required": False, "no_log": True},
        },
        supports_check_mode=True,
    )
    run_key = bytes.fromhex(module.params["run_key"])
    if module.params["baseline_key"]:
        run_key = BaselineKey(run_key, bytes.fromhex(module.params["baseline_key"]))
    collected = collect_areas(module.params["areas"], run_key, module.params["secrets"])
    module.exit_json(changed=False, facts_blob=pack(host_facts(collected, run_key)), areas=summarize(collected))


if __name__ == "__main__":
    main()
