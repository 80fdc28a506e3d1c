"""scripts/benchmark_slices.py: the fleet cut into slices as AWX cuts a sliced job, and the limit
files that give each collect job its slice, as Ansible reads them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark_slices import DEV_HOST, slices, write_limits  # noqa: E402
from fleet_inventory import fleet_host_names, write_fleet_inventory  # noqa: E402

ANSIBLE = Path(sys.executable).parent / "ansible"


def test_slices_deal_the_hosts_in_turn_as_awx_does():
    hosts = [DEV_HOST, *fleet_host_names(200)]
    parts = slices(hosts, 4)
    assert [len(part) for part in parts] == [51, 50, 50, 50]
    assert parts[0][:3] == [DEV_HOST, "prod-004", "prod-008"] and parts[1][:2] == ["prod-001", "prod-005"]
    assert sorted(name for part in parts for name in part) == sorted(hosts)  # each host once
    assert slices(["a", "b"], 2) == [["a"], ["b"]]
    for count in (0, 3):
        with pytest.raises(ValueError):
            slices(["a", "b"], count)


def test_each_limit_file_selects_its_slice(tmp_path):
    inventory = write_fleet_inventory(tmp_path / "fleet", 5, ("audit", "env"))
    parts = slices([DEV_HOST, *fleet_host_names(5)], 2)
    for part, limit in zip(parts, write_limits(tmp_path, parts), strict=True):
        listed = subprocess.run(
            [str(ANSIBLE), "all", "-i", str(inventory), "--limit", "@%s" % limit, "--list-hosts"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")),
        )
        assert sorted(line.strip() for line in listed.stdout.splitlines()[1:]) == sorted(part)
