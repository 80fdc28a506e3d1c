"""The deps area's host side on real files: site directories as pip leaves them, hostile metadata
(huge, invalid UTF-8, symlink loops, thousands of distributions), Node lockfiles v1/v2/v3, dpkg."""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import deps_collect, deps_node, deps_os, deps_python


def dist_info(site, name, version, requires=(), direct=None, installer="pip", requested=True, metadata=None):
    path = site / ("%s-%s.dist-info" % (name.replace("-", "_"), version))
    path.mkdir(parents=True)
    text = metadata if metadata is not None else "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)
    text += "".join("Requires-Dist: %s\n" % item for item in requires)
    (path / "METADATA").write_text(text)
    (path / "INSTALLER").write_text(installer + "\n")
    if requested:
        (path / "REQUESTED").write_text("")
    if direct is not None:
        (path / "direct_url.json").write_text(json.dumps(direct))
    return path


def venv(tmp_path, version="3.11.2"):
    root = tmp_path / "venv"
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion = %s\n" % version)
    return root, site


def test_a_virtualenv_as_pip_leaves_it(tmp_path):
    root, site = venv(tmp_path)
    dist_info(site, "Requests", "2.31.0", ["idna<4,>=2.5", "PySocks!=1.5.7; extra == 'socks'"])
    dist_info(site, "my_app", "0.1.0", direct={"url": "file:///src/app", "dir_info": {"editable": True}})
    dist_info(site, "lib", "1.0", direct={"url": "git+https://ci:s3cr3t-t0ken@git.example/lib.git", "vcs_info": {}})
    egg = site / "legacy.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Name: legacy\nVersion: 0.9\n")
    (egg / "requires.txt").write_text("six\n[tests]\npytest\n")
    (site / "devtool.egg-link").write_text("/src/devtool\n.\n")
    facts = deps_python.read_environment(str(root))
    assert facts["status"] == "ok" and facts["kind"] == "venv" and facts["python"] == "3.11.2"
    dists = facts["dists"]
    assert sorted(dists) == ["devtool", "legacy", "lib", "my-app", "requests"]
    assert dists["requests"]["requires"][0] == "idna<4,>=2.5" and dists["requests"]["requested"] is True
    assert dists["my-app"]["direct"] == {"kind": "editable", "url": "file:///src/app"}
    assert dists["lib"]["direct"] == {"kind": "vcs", "url": "git+https://ci:***@git.example/lib.git"}
    assert "s3cr3t" not in json.dumps(facts)
    assert dists["legacy"]["requires"] == ["six", 'pytest; extra == "tests"']
    assert dists["devtool"]["direct"]["kind"] == "editable"


def test_the_reader_agrees_with_importlib_metadata_on_the_controllers_venv():
    """Oracle: the standard library's importlib.metadata over the same site directory."""
    import importlib.metadata
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    facts = deps_python.read_site_dirs([site])
    expected = {
        deps_python.canonical_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[site])
        if dist.metadata["Name"]
    }
    assert {name: record["version"] for name, record in facts["dists"].items()} == expected


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda p: None, "missing"),
        (lambda p: p.mkdir(), "not_an_environment"),
    ],
)
def test_a_path_that_is_no_environment_has_a_status(tmp_path, make, status):
    path = tmp_path / "nothing"
    make(path)
    assert deps_python.read_environment(str(path))["status"] == status


def test_hostile_metadata_is_bounded(tmp_path):
    root, site = venv(tmp_path)
    huge = "Name: huge\nVersion: 1.0\nSummary: " + "x" * (5 * 1024 * 1024) + "\n"
    dist_info(site, "huge", "1.0", metadata=huge)
    bad = site / "badutf-1.0.dist-info"
    bad.mkdir()
    (bad / "METADATA").write_bytes(b"Name: bad\xff\xfeutf\nVersion: 1.\xc3\x28\n")
    (site / "nometa-1.0.dist-info").mkdir()
    loop = site / "loop-1.0.dist-info"
    loop.symlink_to(loop)
    dist_info(site, "pipe|name", "1.0", metadata="Name: pipe|name\u2603\nVersion: 1.0\x1b[31m\n")
    facts = deps_python.read_environment(str(root))
    assert facts["dists"]["huge"]["version"] == "1.0"
    assert "bad\ufffd\ufffdutf" in facts["dists"]
    assert sorted(facts["broken"]) == ["loop-1.0.dist-info", "nometa-1.0.dist-info"]
    assert facts["dists"]["pipe|name\u2603"]["version"] == "1.0[31m"  # control characters dropped


def test_thousands_of_distributions_are_cut_at_the_limit(tmp_path):
    root, site = venv(tmp_path)
    for index in range(3000):
        path = site / ("p%04d-1.0.dist-info" % index)
        path.mkdir()
        (path / "METADATA").write_text("Name: p%04d\nVersion: 1.0\n" % index)
    facts = deps_python.read_environment(str(root), max_dists=2500)
    assert facts["truncated"] is True and len(facts["dists"]) == 2500


def test_the_container_reader_runs_on_a_bare_interpreter(tmp_path):
    """The script sent into containers (deps_python, deps_os, deps_node, deps_container) on stdin
    of python3 -I -S -: Python packages, the OS packages under / and the Node projects that exist."""
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"a": "^1.0.0"}}))
    (tmp_path / "node_modules" / "a").mkdir(parents=True)
    (tmp_path / "node_modules" / "a" / "package.json").write_text(json.dumps({"version": "1.2.0"}))
    projects = [{"name": "web", "path": str(tmp_path)}, {"name": "absent", "path": str(tmp_path / "none")}]
    script = deps_collect._reader_script(5000, 4194304, 20, projects)
    assert "ansible_collections" not in script
    result = subprocess.run([sys.executable, "-I", "-S", "-"], input=script.encode(), capture_output=True, check=True)
    facts = json.loads(result.stdout)
    assert facts["python"]["status"] == "ok" and facts["python"]["dists"]
    assert facts["os"] == dict(deps_os.collect_os("/"), release=deps_os.os_release("/"))
    assert list(facts["node"]) == ["web"] and facts["node"]["web"]["installed"] == {"a": "1.2.0"}
    assert str(tmp_path) in facts["watch"] and "/var/lib/dpkg" in facts["watch"]
    checked = deps_collect._checked_container_facts(facts)
    assert checked["python"]["dists"].keys() == facts["python"]["dists"].keys()
    assert checked["os"]["packages"] == facts["os"]["packages"]
    assert checked["node"]["web"]["declared"] == {"a": {"range": "^1.0.0", "dev": False}}


@pytest.mark.parametrize(
    "answer",
    [
        {"python": {"status": "ok"}, "os": "dpkg", "node": {"web": 3}},
        {"python": {"status": "ok", "dists": {"a": {"version": 1}}}, "os": {"status": "ok", "packages": [1]}},
        {"python": {"status": "ok"}, "os": {"status": "ok", "packages": {"x|y": "1\x1b[31m", "n": 2}}, "node": []},
        {
            "python": {"status": "ok"},
            "node": {"w": {"status": "ok", "locked": {"a": "1"}, "installed": {"a": ["1"]}, "lock_version": True}},
        },
    ],
)
def test_hostile_container_answers_are_cleaned(answer):
    checked = deps_collect._checked_container_facts(answer)
    assert checked["status"] == "ok" and checked["python"]["status"] == "ok"
    assert isinstance(checked["os"], dict) and checked["os"]["status"] in ("ok", "failed")
    assert all(isinstance(record, dict) and "status" in record for record in checked["node"].values())
    text = json.dumps(checked)
    assert "\x1b" not in text and "\\u001b" not in text


def test_a_container_answer_over_the_cap_is_cut(tmp_path):
    script = deps_collect._reader_script(5000, 100)
    result = subprocess.run([sys.executable, "-I", "-S", "-"], input=script.encode(), capture_output=True, check=True)
    assert json.loads(result.stdout)["status"] == "too_large"
    assert deps_collect._service_parts({"status": "too_large", "reason": "big"})[1]["status"] == "too_large"


def test_declared_files_follow_includes_and_mask_tokens(tmp_path):
    (tmp_path / "base.txt").write_text("requests==2.31.0 --hash=sha256:abc\n-c constraints.txt\n")
    (tmp_path / "constraints.txt").write_text("idna<4\n-r base.txt\n")
    (tmp_path / "requirements.txt").write_text(
        "-r base.txt\nlib @ git+https://user:tok3n-CANARY@git.example/lib.git\n-r missing.txt\n"
    )
    found = deps_collect.read_declared("requirements.txt", str(tmp_path), 1024)
    assert [entry["path"] for entry in found] == ["requirements.txt", "base.txt", "missing.txt", "constraints.txt"]
    assert [entry["status"] for entry in found] == ["ok", "ok", "missing", "ok"]
    assert "tok3n-CANARY" not in json.dumps(found) and "user:***@git.example" in found[0]["text"]
    (tmp_path / "big.txt").write_text("x" * 2048)
    assert deps_collect.read_declared("big.txt", str(tmp_path), 1024)[0]["status"] == "too_large"


LOCK_V1 = {
    "lockfileVersion": 1,
    "dependencies": {"a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}}},
}
LOCK_V2 = {
    "lockfileVersion": 2,
    "packages": {
        "": {"name": "x"},
        "node_modules/a": {"version": "1.0.0"},
        "node_modules/a/node_modules/b": {"version": "2.0.0"},
    },
    "dependencies": {"a": {"version": "9.9.9"}},
}
LOCK_V3 = {
    "lockfileVersion": 3,
    "packages": {"node_modules/a": {"version": "1.0.0"}, "node_modules/@s/c": {"version": "3.0.0", "dev": True}},
}


@pytest.mark.parametrize(
    ("lock", "expected"),
    [
        (LOCK_V1, {"a": "1.0.0", "a > b": "2.0.0"}),
        (LOCK_V2, {"a": "1.0.0", "a > b": "2.0.0"}),  # v2: the packages map wins over v1's tree
        (LOCK_V3, {"a": "1.0.0", "@s/c": "3.0.0"}),
    ],
)
def test_package_lock_versions(lock, expected):
    version, found, truncated = deps_node.locked(lock)
    assert version == lock["lockfileVersion"] and not truncated
    assert {key: value["version"] for key, value in found.items()} == expected


def test_a_node_project(tmp_path):
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"a": "^1.0.0"}, "devDependencies": {"d": "1"}}))
    (tmp_path / "package-lock.json").write_text("{not json")
    for name, version in (("a", "1.0.0"), ("@s/c", "3.0.0")):
        (tmp_path / "node_modules" / name).mkdir(parents=True)
        (tmp_path / "node_modules" / name / "package.json").write_text(json.dumps({"version": version}))
    (tmp_path / "node_modules" / "broken").mkdir()
    record = deps_node.read_project(str(tmp_path), 1 << 20)
    assert record["declared"] == {"a": {"range": "^1.0.0", "dev": False}, "d": {"range": "1", "dev": True}}
    assert record["installed"] == {"@s/c": "3.0.0", "a": "1.0.0"} and record["broken"] == ["broken"]
    assert record["problems"] == ["package-lock.json is not valid JSON."] and record["locked"] is None


def test_a_50000_entry_dpkg_status_is_bounded(tmp_path):
    status = tmp_path / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    with status.open("w") as handle:
        for index in range(50000):
            handle.write(
                "Package: p%05d\nStatus: install ok installed\nVersion: 1.%d\nDescription: x\n y\n\n" % (index, index)
            )
        handle.write("Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n")
    facts = deps_collect.collect_os(str(tmp_path))
    assert facts["manager"] == "dpkg" and facts["truncated"] is True
    assert len(facts["packages"]) == deps_os.MAX_OS_PACKAGES and facts["packages"]["p00001"] == "1.1"


def test_apk_and_no_database(tmp_path):
    apk = tmp_path / "lib" / "apk" / "db" / "installed"
    apk.parent.mkdir(parents=True)
    apk.write_text("C:x\nP:musl\nV:1.2.4-r2\n\nP:busybox\nV:1.36.1-r5\n")
    assert deps_collect.collect_os(str(tmp_path))["packages"] == {"musl": "1.2.4-r2", "busybox": "1.36.1-r5"}
    assert deps_collect.collect_os(str(tmp_path / "empty"))["status"] == "none"


def test_collect_area_reads_each_part_and_one_failure_hides_nothing(tmp_path):
    root, site = venv(tmp_path)
    dist_info(site, "a", "1.0")
    request = {
        "python_envs": [{"name": "app", "path": str(root)}, {"name": "gone", "path": str(tmp_path / "gone")}],
        "node_projects": [{"name": "web", "path": "web"}],
        "project_dir": str(tmp_path),
        "os_root": str(tmp_path),
    }
    facts = deps_collect.collect_area(request, b"key")
    assert facts["python"]["app"]["dists"]["a"]["version"] == "1.0"
    assert facts["python"]["gone"]["status"] == "missing"
    assert facts["node"]["web"]["status"] == "missing"
    assert facts["os"]["status"] == "none" and facts["containers"] == {}
    assert os.path.realpath(str(tmp_path)) != "/" and "kernel" not in facts["runtimes"]


@pytest.mark.parametrize(
    ("first", "changes", "same"),
    [
        ({"status": "ok", "watch": ["/usr/lib/python3/dist-packages", "/var/lib/dpkg"]}, [], True),
        # the container's own python wrote bytecode next to the standard library: still the image's packages
        (
            {"status": "ok", "watch": ["/usr/lib/python3/dist-packages", "/var/lib/dpkg"]},
            ["/usr/lib/python3.11/__pycache__/a.pyc"],
            True,
        ),
        (
            {"status": "ok", "watch": ["/usr/lib/python3/dist-packages", "/var/lib/dpkg"]},
            ["/usr/lib/python3/dist-packages/x.dist-info"],
            False,
        ),
        ({"status": "ok", "watch": ["/var/lib/dpkg"]}, ["/var/lib/dpkg/status"], False),  # apt run in it
        ({"status": "ok", "watch": ["/app"]}, ["/app"], False),
        ({"status": "ok", "watch": ["/app"]}, ["/application/x"], True),
        ({"status": "no_python"}, ["/tmp/a"], True),
        ({"status": "no_python"}, ["/usr/local/bin/python3"], False),
        ({"status": "ok", "watch": []}, None, False),  # the engine could not say
        ({"status": "timeout"}, [], False),
    ],
)
def test_another_container_of_an_image_takes_its_facts_only_when_unchanged(first, changes, same):
    assert deps_collect._same_as_image(first, changes) is same


@pytest.mark.parametrize(
    ("first_changes", "changes", "shared"),
    [
        ([], [], True),
        (["/tmp/x"], ["/var/log/y"], True),
        # pip was run in the first container: its facts are its own, not the image's
        (["/usr/local/lib/python3.11/dist-packages/hotfix-0.1.dist-info"], [], False),
        ([], ["/usr/local/lib/python3.11/dist-packages/hotfix-0.1.dist-info"], False),
        (None, [], False),
    ],
)
def test_a_first_container_changed_by_hand_speaks_for_itself_only(first_changes, changes, shared):
    first = {"status": "ok", "watch": ["/usr/local/lib/python3.11/dist-packages"]}
    assert deps_collect.shares_facts(first, first_changes, changes) is shared


NODE_VERSION_H = """#ifndef SRC_NODE_VERSION_H_
#define SRC_NODE_VERSION_H_

#define NODE_MAJOR_VERSION 20
#define NODE_MINOR_VERSION 11
#define NODE_PATCH_VERSION 1

#define NODE_VERSION_IS_LTS 1
#define NODE_VERSION_LTS_CODENAME "Iron"
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {".nvmrc": "v20.11.1\n", "package.json": '{"engines": {"node": ">=18"}}'},
            {"version": "v20.11.1", "source": ".nvmrc"},
        ),
        ({".node-version": "18.19.0"}, {"version": "18.19.0", "source": ".node-version"}),
        (
            {".nvmrc": "\n", "package.json": '{"engines": {"node": ">=18 <21"}}'},
            {"version": ">=18 <21", "source": "package.json engines"},
        ),
        ({"package.json": '{"engines": {"node": 18}}'}, None),
        ({"package.json": "not json"}, None),
        ({}, None),
    ],
)
def test_a_projects_declared_node_version(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert deps_node.read_project(str(tmp_path), 65536)["runtime"] == expected


@pytest.mark.parametrize(
    ("relative", "text", "expected"),
    [
        ("usr/local/include/node/node_version.h", NODE_VERSION_H, "20.11.1"),
        ("usr/include/node/node_version.h", NODE_VERSION_H.replace("20", "18"), "18.11.1"),
        ("usr/include/node/node_version.h", "#define NODE_MAJOR_VERSION 20\n", None),
        ("usr/include/node/node_version.h", NODE_VERSION_H.replace("11\n", "1`|x\n", 1), None),
        ("usr/include/other.h", NODE_VERSION_H, None),
    ],
)
def test_the_installed_node_version_is_read_from_its_header_never_run(tmp_path, relative, text, expected):
    path = tmp_path / relative
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert deps_node.installed_runtime(str(tmp_path)) == expected
    assert deps_collect.collect_runtimes(str(tmp_path))["node"] == expected
