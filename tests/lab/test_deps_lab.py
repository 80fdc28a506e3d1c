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
import time
from pathlib import Path

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("the lab runs as root on Linux", allow_module_level=True)

from ansible_collections.envparity.audit.plugins.module_utils import deps_python  # noqa: E402
from tests.lab.labtest import CANARIES, STATE, engine_get  # noqa: E402

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


# ---------------------------------------------------------------- containers (real execs)

DOCKER_HOST = "unix:///run/envparity-lab/docker.sock"
PROJECT = "deps_labtest"
PIP_BY_HAND = (
    "import os, time; d = '/usr/local/lib/python3.11/dist-packages/hotfix-0.1.dist-info'; os.makedirs(d); "
    "open(d + '/METADATA', 'w').write('Name: hotfix\\nVersion: 0.1\\n'); time.sleep(1e9)"
)


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "-H", DOCKER_HOST, *args], capture_output=True, text=True, timeout=120, check=False
    )


def changed_files(service: str) -> set[str]:
    """What `docker diff` says the container changed against its image (unordered)."""
    return set(docker("diff", "%s-%s-1" % (PROJECT, service)).stdout.splitlines())


@pytest.fixture
def stack(tmp_path):
    """Four services of one compose project: api and api2 of the lab's Python image (unchanged), patched
    of the same image with a distribution installed by hand in it, cron of busybox (no python3)."""
    services = {
        "api": ("lab/python:3.11",),
        "api2": ("lab/python:3.11",),
        "patched": ("lab/python:3.11", "python3", "-c", PIP_BY_HAND),
        "cron": ("lab/worker:1.0", "sleep", "1000000"),
    }
    for service, (image, *command) in services.items():
        proc = docker(
            "run", "-d", "--name", "%s-%s-1" % (PROJECT, service),
            "--label", "com.docker.compose.project=%s" % PROJECT,
            "--label", "com.docker.compose.service=%s" % service,
            image, *command,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    compose = tmp_path / "compose.yml"
    compose.write_text("name: %s\nservices: {}\n" % PROJECT)
    time.sleep(1)  # the patched service writes its distribution as it starts
    yield {"name": "lab", "files": [str(compose)], "project": PROJECT}
    docker("rm", "-f", *("%s-%s-1" % (PROJECT, service) for service in services))


def test_containers_are_read_once_per_image_and_again_where_pip_ran(stack):
    from ansible_collections.envparity.audit.plugins.module_utils import deps_collect

    diffs = {name: changed_files(name) for name in ("api", "api2", "patched")}
    calls = []
    real_exec = deps_collect.exec_reader

    def counted(*args):
        calls.append(args[2])
        return real_exec(*args)

    deps_collect.exec_reader = counted
    try:
        facts = deps_collect.collect_area({"stacks": [stack], "docker_host": DOCKER_HOST}, b"key")
    finally:
        deps_collect.exec_reader = real_exec
    services = facts["containers"]["lab"]["services"]
    assert services["cron"]["python"]["status"] == "no_python"
    api = services["api"]["python"]
    assert api["status"] == "ok" and api["python"] == "3.11.2"
    assert {name: dist["version"] for name, dist in api["dists"].items()} == {
        "labclient": "1.0.0",
        "labcore-utils": "1.4.0",
        "labhttp": "2.0.1",
    }
    assert services["api2"]["python"] == api
    assert services["patched"]["python"]["dists"]["hotfix"]["version"] == "0.1"
    assert sorted(calls) == sorted(["%s-api-1" % PROJECT, "%s-patched-1" % PROJECT, "%s-cron-1" % PROJECT])
    assert services["api"]["platform"] == "linux/amd64"
    # read-only: the execs wrote nothing into any container (no bytecode, no file)
    assert {name: changed_files(name) for name in diffs} == diffs
    assert "site_paths" not in api


def test_an_exec_that_does_not_finish_in_time_and_a_stopped_container(tmp_path):
    """A real exec cut by its timeout is a clear status (its process killed, nothing left running),
    and so is a container that is not running when the exec comes."""
    from ansible_collections.envparity.audit.plugins.module_utils import deps_collect

    name = "%s-slow-1" % PROJECT
    assert docker("run", "-d", "--name", name, "lab/python:3.11").returncode == 0
    try:
        script = deps_collect._reader_script(5000, 4194304, 2).replace(
            "\nmain(", "\nimport time; time.sleep(30)\nmain(", 1
        )
        started = time.monotonic()
        answer = deps_collect.exec_reader("/usr/bin/docker", DOCKER_HOST, name, script, 2, 4194304)
        assert answer == {"status": "timeout", "reason": "The docker exec did not finish within 2 seconds."}
        assert time.monotonic() - started < 10
        # Killing the docker client does not end what it started in the container: the reader's alarm
        # (timeout + 1 s) does. The engine's own process list (GET /containers/{id}/top) shows it gone.
        deadline = started + 10
        while any("-I -S -B -" in " ".join(row) for row in engine_get("/containers/%s/top" % name)["Processes"]):
            assert time.monotonic() < deadline, "the reader still runs in the container"
            time.sleep(0.2)
        assert time.monotonic() - started < 10
        assert docker("stop", "-t", "0", name).returncode == 0
        answer = deps_collect.exec_reader("/usr/bin/docker", DOCKER_HOST, name, script, 5, 4194304)
        assert answer["status"] == "not_running"
        gone = deps_collect.exec_reader("/usr/bin/docker", DOCKER_HOST, "%s-none-1" % PROJECT, script, 5, 4194304)
        assert gone["status"] == "not_running"
    finally:
        docker("rm", "-f", name)


APP = {"dev": "pyapp_dev-api-1", "prod": "pyapp_prod-api-1"}


def dpkg_query(container: str, tmp_path: Path) -> dict:
    """dpkg's own reading of the container's status file (copied out with docker cp): the oracle."""
    admin = tmp_path / container
    admin.mkdir()
    proc = docker("cp", "%s:/var/lib/dpkg/status" % container, str(admin / "status"))
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run(
        ["dpkg-query", "--admindir", str(admin), "-W", "-f", "${db:Status-Status} ${Package} ${Version}\\n"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return {
        name: version
        for state, name, version in (line.split(" ", 2) for line in out.splitlines())
        if state == "installed"
    }


def test_one_exec_reads_the_containers_os_packages_and_node_project_as_dpkg_does(tmp_path):
    """The pyapp stack's containers (lab/pyapp:1.0): dpkg status and /app read in the same exec as
    the Python packages; dpkg-query is the oracle; prod's hand-made drift is seen, dev's is none."""
    from ansible_collections.envparity.audit.plugins.module_utils import deps_collect

    before = {env: changed_files_of(name) for env, name in APP.items()}
    for env, project in (("dev", "pyapp_dev"), ("prod", "pyapp_prod")):
        compose = tmp_path / ("%s.yml" % env)
        compose.write_text("name: %s\nservices: {}\n" % project)
        request = {
            "stacks": [{"name": "pyapp", "files": [str(compose)], "project": project}],
            "container_node_projects": [{"name": "web", "path": "/app"}, {"name": "none", "path": "/srv/none"}],
            "docker_host": DOCKER_HOST,
        }
        api = deps_collect.collect_area(request, b"key")["containers"]["pyapp"]["services"]["api"]
        assert api["python"]["status"] == "ok" and api["os"]["status"] == "ok" and api["os"]["manager"] == "dpkg"
        assert api["os"]["packages"] == dpkg_query(APP[env], tmp_path)
        assert len(api["os"]["packages"]) > 100 and api["os"]["release"]
        assert list(api["node"]) == ["web"]
        leftpad = api["node"]["web"]["installed"]["leftpad-lab"]
        assert leftpad == ("2.0.0" if env == "prod" else "1.1.0")
        assert api["node"]["web"]["locked"]["leftpad-lab"]["version"] == "1.1.0"
        assert ("hotfix-tool" in api["os"]["packages"]) is (env == "prod")
    # read-only: the execs changed nothing in either container
    assert {env: changed_files_of(name) for env, name in APP.items()} == before


def changed_files_of(container: str) -> set[str]:
    return set(docker("diff", container).stdout.splitlines())


# ---------------------------------------------------------------- another architecture, Node's version


def test_devs_pyarch_service_runs_an_image_recorded_as_arm64():
    """The engine reports the platform dev's image records (linux/arm64/v8) while prod's is this
    machine's; both containers run (the recorded image's layers are this machine's files), and the
    collector reads each service's platform from the engine."""
    from ansible_collections.envparity.audit.plugins.module_utils import deps_collect

    arm = engine_get("/images/lab/python:3.11-arm64/json")
    assert (arm["Os"], arm["Architecture"], arm["Variant"]) == ("linux", "arm64", "v8")
    assert engine_get("/images/lab/python:3.11/json")["Architecture"] == "amd64"
    platforms = {}
    for env, path in (("dev", STATE / "dev" / "deps"), ("prod", Path("/home/deploy/deps"))):
        state = engine_get("/containers/pyarch_%s-api-1/json" % env)["State"]
        assert state["Running"], env
        request = {
            "stacks": [{"name": "pyarch", "files": [str(path / "arch-compose.yml")]}],
            "docker_host": DOCKER_HOST,
        }
        stack = deps_collect.collect_containers(request, b"k" * 32, {})["pyarch"]
        assert stack["status"] == "ok", stack
        platforms[env] = stack["services"]["api"]["platform"]
        assert stack["services"]["api"]["python"]["status"] == "ok"
    assert platforms == {"dev": "linux/arm64/v8", "prod": "linux/amd64"}


def test_nodes_version_is_read_from_files_as_planted():
    from ansible_collections.envparity.audit.plugins.module_utils import deps_collect, deps_node

    for base, declared, installed in (
        (STATE / "dev" / "deps", "20.11.1", "20.11.1"),
        (Path("/home/deploy/deps"), "18.19.0", "18.20.4"),
    ):
        project = deps_node.read_project(str(base / "web"), 65536)
        assert project["runtime"] == {"version": declared, "source": ".nvmrc"}
        assert deps_collect.collect_runtimes(str(base / "osroot"))["node"] == installed


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_python_version_read_from_pyvenv_cfg_is_the_venvs_interpreters(env):
    """The collector never runs the venv's python; the test does, as the oracle."""
    venv, _ = VENVS[env]
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert deps_python.read_environment(str(venv))["python"] == proc.stdout.strip()
