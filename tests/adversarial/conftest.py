"""Adversarial tests: a hostile host or a careless user, one file per class of attack.

They reuse the integration fixtures (the real lab, audits through ansible-runner).
"""

import yaml

from tests.integration.conftest import audit, canaries, lab  # noqa: F401


def two_local_hosts(path, dev, prod):
    """Write an inventory of a dev and a prod that are both this machine (local connection), each
    with its own variables, for an audit of files and servers a test made itself; returns path."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    groups = {
        name: {"hosts": {"%s-box" % name: dict(local, **variables)}}
        for name, variables in (("dev", dev), ("prod", prod))
    }
    path.write_text(yaml.safe_dump({"all": {"children": groups}}, sort_keys=False))
    return path
