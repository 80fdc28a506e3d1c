"""The AWX execution environment (examples/awx/execution-environment.yml): ansible-builder writes
its build context (no container engine needed), and every Python pin in it is the one the test
suite runs with (requirements.txt)."""

import os
import pathlib
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "examples" / "awx" / "execution-environment.yml"


def pins(lines):
    found = {}
    for line in lines:
        name, separator, version = line.strip().partition("==")
        if separator:
            found[name.lower()] = version
    return found


def test_ansible_builder_creates_the_build_context(tmp_path):
    builder = shutil.which("ansible-builder", path=os.path.dirname(sys.executable)) or "ansible-builder"
    context = tmp_path / "context"
    created = subprocess.run(
        [builder, "create", "-f", str(DEFINITION), "-c", str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert created.returncode == 0 and "Complete!" in created.stdout, created
    containerfile = next(context / name for name in ("Containerfile", "Dockerfile") if (context / name).exists())
    assert "ansible-core==2.19.14" in containerfile.read_text()
    bindep = (context / "_build" / "bindep.txt").read_text()
    assert "openssh-clients [platform:rpm]" in bindep
    built = pins((context / "_build" / "requirements.txt").read_text().splitlines())
    assert set(built) == {"jinja2", "pyyaml", "cryptography", "pyopenssl"}


def test_every_pin_is_the_tested_one():
    tested = pins((ROOT / "requirements.txt").read_text().splitlines())
    dependencies = yaml.safe_load(DEFINITION.read_text())["dependencies"]
    ee = pins(dependencies["python"])
    ee.update(pins([dependencies["ansible_core"]["package_pip"], dependencies["ansible_runner"]["package_pip"]]))
    assert ee and all(tested.get(name) == version for name, version in ee.items()), (ee, tested)
