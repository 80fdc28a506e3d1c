"""The lab's deps area (lab/deps_area.py), run as root against the real lab on this machine.

pip itself is the oracle: `pip inspect` and `pip check` (run here by the test, never by the audit,
as each venv's owner and without writing bytecode) say what the virtualenvs hold, and the deps
collector's reader must read the same from the metadata files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from ansible_collections.envparity.audit.plugins.module_utils import deps_python  # noqa: E402
from tests.lab.labtest import CANARIES, STATE  # noqa: E402

VENVS = {"dev": (STATE / "dev" / "deps" / "venv", "root"), "prod": (Path("/home/deploy/deps/venv"), "deploy")}


def pip(env: str, *args: str) -> subprocess.CompletedProcess:
    venv, owner = VENVS[env]
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    if owner != "root":
        cmd = ["runuser", "-u", owner, "--", *cmd]
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PIP_NO_CACHE_DIR": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=environment)


def inspected(env: str) -> dict:
    proc = pip(env, "inspect", "--local")
    assert proc.returncode == 0, proc.stderr
    return {deps_python.canonical_name(item["metadata"]["name"]): item for item in json.loads(proc.stdout)["installed"]}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_reader_reads_what_pip_inspect_prints(env):
    oracle = inspected(env)
    facts = deps_python.read_environment(str(VENVS[env][0]))
    assert facts["status"] == "ok" and facts["broken"] == [] and not facts["truncated"]
    assert {name: dist["version"] for name, dist in facts["dists"].items()} == {
        name: item["metadata"]["version"] for name, item in oracle.items()
    }
    for name, item in oracle.items():
        dist = facts["dists"][name]
        assert dist["requested"] is item["requested"], name
        assert dist["installer"] == item["installer"], name
        direct = item.get("direct_url")
        if direct and direct.get("dir_info", {}).get("editable"):
            assert dist["direct"] == {"kind": "editable", "url": direct["url"]}


def test_the_planted_versions_are_installed():
    dev, prod = inspected("dev"), inspected("prod")
    assert {n: dev[n]["metadata"]["version"] for n in dev if n.startswith("lab")} == {
        "labapp": "0.1.0",
        "labclient": "1.0.0",
        "labcore-utils": "1.4.0",
        "labhttp": "2.0.1",
        "labpinned": "3.1.0",
    }
    assert {n: prod[n]["metadata"]["version"] for n in prod if n.startswith("lab")} == {
        "labapp": "0.1.0",
        "labclient": "1.0.0",
        "labcore-utils": "1.2.0",
        "labextra": "0.5.0rc1",
        "labhttp": "1.9.0",
        "labpinned": "3.2.0",
    }
    assert prod["labapp"]["direct_url"]["dir_info"] == {"editable": True}
    assert "direct_url" not in dev["labapp"]


def test_pip_check_finds_the_planted_unmet_requirement_only_in_prod():
    assert pip("dev", "check").returncode == 0
    proc = pip("prod", "check")
    assert proc.returncode == 1
    assert (
        proc.stdout.strip() == "labclient 1.0.0 has requirement labcore-utils>=1.3, but you have labcore-utils 1.2.0."
    )


def test_the_vcs_token_canary_is_in_prods_metadata():
    token = json.loads(CANARIES.read_text())["deps.prod.vcs_token"]
    metadata = inspected("prod")["labclient"]["metadata"]
    assert any(token in item for item in metadata["requires_dist"])
    assert deps_python.read_environment(str(VENVS["prod"][0]))["dists"]["labclient"]["requires"][1].startswith(
        "labtoken @ git+https://deploy:***@git.example.invalid"
    )


def test_node_lockfiles_and_prods_owner():
    for env, base, version in (("dev", STATE / "dev" / "deps", 3), ("prod", Path("/home/deploy/deps"), 2)):
        lock = json.loads((base / "web" / "package-lock.json").read_text())
        assert lock["lockfileVersion"] == version, env
    assert Path("/home/deploy/deps/venv").stat().st_uid == Path("/home/deploy").stat().st_uid
