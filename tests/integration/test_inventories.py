"""Both inventories parse; the real one is only parsed, never connected to."""

import json
import subprocess

from .conftest import ROOT


def inventory(path):
    completed = subprocess.run(
        ["ansible-inventory", "-i", str(ROOT / path), "--list"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(completed.stdout)


def test_production_inventory_maps_the_seed():
    data = inventory("inventory/production")
    assert data["dev"]["hosts"] == ["localhost"]
    assert data["prod"]["hosts"] == ["prod-vm"]
    prod = data["_meta"]["hostvars"]["prod-vm"]
    assert prod["ansible_host"] == "165.227.38.1"
    assert prod["ansible_user"] == "deploy"
    assert prod["ansible_ssh_private_key_file"] == "~/.ssh/do_personal_assistant"
    assert prod["drift_project_dir"] == "/home/deploy/ai_assistant"
    assert prod["drift_env_files"] == [
        {"name": "app", "path": "config/production.env", "template": "docker/env.prod.example"}
    ]
    dev = data["_meta"]["hostvars"]["localhost"]
    assert dev["ansible_connection"] == "local"
    assert dev["drift_project_dir"] == "~/Desktop/personal_assistant"
    assert dev["drift_env_files"] == [{"name": "app", "path": "config/development.env"}]


def test_lab_inventory_is_loopback_only_and_ignores_rules_files():
    completed = subprocess.run(
        ["ansible-inventory", "-i", str(ROOT / "inventory/lab"), "--list"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert "Skipping" not in completed.stderr
    data = json.loads(completed.stdout)
    prod = data["_meta"]["hostvars"]["prod-vm"]
    assert prod["ansible_host"] == "127.0.0.1"
    assert prod["ansible_port"] == 2222
