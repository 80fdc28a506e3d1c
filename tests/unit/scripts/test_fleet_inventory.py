"""scripts/fleet_inventory.py: a fleet of prod hosts on the lab's sshd, read back by ansible-inventory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))

from fleet_inventory import fleet_host_names, fleet_hosts, keep_variables, write_fleet_inventory  # noqa: E402

LAB = ROOT / "inventory" / "lab"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def inventory_list(directory):
    """The inventory as Ansible reads it (the repository's ansible.cfg: rules files are not sources)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(directory), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    return json.loads(proc.stdout)


def test_fleet_is_read_by_ansible_with_the_labs_connection_and_only_env_and_git_variables(tmp_path):
    write_fleet_inventory(tmp_path, 3, ("audit", "env", "git"))
    listed = inventory_list(tmp_path)
    hostvars = listed["_meta"]["hostvars"]
    assert listed["prod"]["hosts"] == ["prod-001", "prod-002", "prod-003"]
    assert listed["dev"]["hosts"] == ["dev-laptop"]

    lab = yaml.safe_load((LAB / "hosts.yml").read_text(encoding="utf-8"))["all"]["children"]
    lab_prod = lab["prod"]["hosts"]["prod-vm"]
    control_paths = set()
    for name in listed["prod"]["hosts"]:
        host = hostvars[name]
        for variable, value in lab_prod.items():  # address, port, user, key, known_hosts exactly as the lab
            assert host[variable] == value, (name, variable)
        control_paths.add(host["ansible_control_path"])
    assert control_paths == {"%(directory)s/prod-00" + str(number) for number in (1, 2, 3)}
    assert hostvars["dev-laptop"]["ansible_connection"] == "local"

    lab_prod_vars = yaml.safe_load((LAB / "group_vars" / "prod.yml").read_text(encoding="utf-8"))
    for variable in ("drift_project_dir", "drift_env_files", "drift_git_repos", "drift_deploy_dirs"):
        assert hostvars["prod-002"][variable] == lab_prod_vars[variable]
    for host in hostvars.values():
        assert not [name for name in host if name.startswith(("drift_docker", "drift_compose", "drift_postgres"))]
        assert host["drift_environments"] == ["dev", "prod"]
    assert (tmp_path / "drift_rules.yml").read_bytes() == (LAB / "drift_rules.yml").read_bytes()


def test_host_names_sort_like_numbers():
    assert fleet_host_names(2) == ["prod-001", "prod-002"]
    names = fleet_host_names(1000)
    assert names[-1] == "prod-1000" and names[0] == "prod-0001"
    assert sorted(names) == names


def test_a_fleet_needs_a_host_and_a_lab_with_one_prod_host():
    lab = {"all": {"children": {"dev": {"hosts": {"d": {}}}, "prod": {"hosts": {"a": {}, "b": {}}}}}}
    with pytest.raises(ValueError, match="at least one"):
        fleet_hosts(lab, 0)
    with pytest.raises(ValueError, match="one host, it has 2"):
        fleet_hosts(lab, 5)


def test_keep_variables_keeps_the_named_ones_in_order():
    assert keep_variables({"b": 1, "drift_compose": [], "a": 2}, {"a", "b"}) == {"b": 1, "a": 2}
    assert keep_variables(None, {"a"}) == {}
