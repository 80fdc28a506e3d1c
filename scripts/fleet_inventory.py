"""A fleet inventory for the benchmark: N prod hosts, all on the lab's sshd, and dev as in the lab.

    .venv/bin/python scripts/fleet_inventory.py 50 /tmp/fleet   # writes /tmp/fleet/hosts.yml …

From inventory/lab: hosts.yml gives dev as it is and the template of a prod host (address, port,
user, key, known_hosts, interpreter, exactly as the lab has them); each fleet host is a copy named
prod-001 … with its own SSH ControlPath socket, as distinct machines would have. The group_vars
keep only the variables of the given roles (the audit's own settings and the areas audited); the
rules of expected differences are copied beside them, where all.yml's `drift_rules_files` finds
them (`ansible_inventory_sources | first`).
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAB_INVENTORY = ROOT / "inventory" / "lab"
RULES_FILE = "drift_rules.yml"


def fleet_host_names(count):
    """prod-001 … prod-<count> (three digits at least, so that names sort like numbers)."""
    width = max(3, len(str(count)))
    return ["prod-%0*d" % (width, number) for number in range(1, count + 1)]


def fleet_hosts(lab_hosts, count):
    """The inventory (hosts.yml data) of a fleet: the lab's dev, and `count` copies of its one prod host.

    Each copy has its own ControlPath (`%(directory)s` is Ansible's control_path_dir): without it,
    hosts with the same address, port and user would share one SSH master.
    """
    if count < 1:
        raise ValueError("a fleet has at least one prod host, not %d" % count)
    children = lab_hosts["all"]["children"]
    prod_hosts = children["prod"]["hosts"]
    if len(prod_hosts) != 1:
        raise ValueError("the lab's prod group should have one host, it has %d" % len(prod_hosts))
    template = next(iter(prod_hosts.values()))
    fleet = copy.deepcopy(lab_hosts)
    fleet["all"]["children"]["prod"]["hosts"] = {
        name: dict(copy.deepcopy(template), ansible_control_path="%%(directory)s/%s" % name)
        for name in fleet_host_names(count)
    }
    return fleet


def keep_variables(group_vars, names):
    """The group variables whose names are in `names`, in their order."""
    return {name: value for name, value in (group_vars or {}).items() if name in names}


def role_variables(role):
    """The variable names of a role's main argument spec (roles/<role>/meta/argument_specs.yml)."""
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return set(specs["argument_specs"]["main"]["options"])


def write_fleet_inventory(directory, count, roles, lab_inventory=LAB_INVENTORY):
    """Write the fleet inventory into `directory` (hosts.yml, group_vars/, the rules); returns its path."""
    directory = Path(directory)
    lab_inventory = Path(lab_inventory)
    names = set().union(*(role_variables(role) for role in roles))
    lab_hosts = yaml.safe_load((lab_inventory / "hosts.yml").read_text(encoding="utf-8"))
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    dump(directory / "hosts.yml", fleet_hosts(lab_hosts, count))
    for source in sorted((lab_inventory / "group_vars").glob("*.yml")):
        group_vars = yaml.safe_load(source.read_text(encoding="utf-8"))
        dump(directory / "group_vars" / source.name, keep_variables(group_vars, names))
    shutil.copyfile(lab_inventory / RULES_FILE, directory / RULES_FILE)
    return directory


def dump(path, data):
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False, width=1000), encoding="utf-8")


def main(argv):
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: fleet_inventory.py COUNT DIRECTORY", file=sys.stderr)
        return 2
    print(write_fleet_inventory(argv[1], int(argv[0]), ("audit", "env", "git")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
