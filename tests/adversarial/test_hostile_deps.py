"""Hostile package data on both hosts, through a real audit (--tags deps): a path that is no
virtualenv, broken and huge metadata, a symlink loop, a package name with a Markdown pipe and
Unicode, a lockfile that is not TOML, a package-lock that is not JSON, a 50,000-entry dpkg status
file and a token in a VCS URL. Each gives a clear row, the rest of the report stands, no token
leaves the host."""

import json
import secrets

from tests.adversarial.conftest import two_local_hosts

TOKEN = "ghp_" + secrets.token_hex(18)


def venv(root, dists):
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\n")
    for name, version, extra in dists:
        info = site / ("%s-%s.dist-info" % (name.replace("|", "_"), version))
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (name, version, extra))
        (info / "INSTALLER").write_text("pip\n")
    return site


def dpkg(root, count):
    status = root / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    with status.open("w") as handle:
        for index in range(count):
            handle.write("Package: p%05d\nStatus: install ok installed\nVersion: 1.0\n\n" % index)


def test_hostile_package_data_gives_clear_rows(audit, tmp_path):
    dev, prod = tmp_path / "dev", tmp_path / "prod"
    site = venv(
        dev / "venv",
        [("requests", "2.31.0", ""), ("a|b`c\u00e9", "1.0", ""), ("huge", "1.0", "Summary: " + "x" * 3_000_000 + "\n")],
    )
    (site / "nometa-1.0.dist-info").mkdir()
    (site / "loop-1.0.dist-info").symlink_to(site / "loop-1.0.dist-info")
    (prod / "notavenv").mkdir(parents=True)
    prod_site = venv(
        prod / "venv2",
        [("requests", "2.28.0", "Requires-Dist: lib @ git+https://ci:%s@git.example.invalid/l.git\n" % TOKEN)],
    )
    (prod_site / "lib-1.0.dist-info").mkdir()
    (prod_site / "lib-1.0.dist-info" / "METADATA").write_text("Name: lib\nVersion: 1.0\n")
    (prod_site / "lib-1.0.dist-info" / "direct_url.json").write_text(
        json.dumps({"url": "git+https://deploy:%s@git.example.invalid/l.git" % TOKEN, "vcs_info": {"vcs": "git"}})
    )
    (dev / "poetry.lock").write_text("[[package]\nname = broken")
    for side in (dev, prod):
        (side / "web").mkdir()
        (side / "web" / "package.json").write_text('{"dependencies": {"x": "^1"}}')
    (prod / "web" / "package-lock.json").write_text("{not json")
    dpkg(dev / "root", 3)
    dpkg(prod / "root", 50000)

    def host(side, envs):
        return {
            "drift_project_dir": str(side),
            "drift_python_envs": envs,
            "drift_node_projects": [{"name": "web", "path": "web"}],
            "drift_deps_os_root": str(side / "root"),
        }

    inventory = two_local_hosts(
        tmp_path / "hosts.yml",
        host(dev, [{"name": "app", "path": "venv", "lock": "poetry.lock"}, {"name": "other", "path": "venv"}]),
        host(prod, [{"name": "app", "path": "venv2"}, {"name": "other", "path": "notavenv"}]),
    )
    result = audit(cmdline="-i %s --tags deps" % inventory)
    assert result.rc == 0, result.stdout
    findings = {(f["subject"], f["key"], f["check"]): f for f in result.report["findings"]}
    also = {(f["subject"], f["key"], a["check"]) for f in result.report["findings"] for a in f.get("also", [])}
    status = findings[("python other", "@environment", "deps.environment_status")]
    assert status["values"]["prod"] == "not a Python environment" and status["kind"] == "unknown"
    assert findings[("python app", "@broken", "deps.broken_metadata")]["values"]["dev"] == (
        "loop-1.0.dist-info, nometa-1.0.dist-info"
    )
    assert findings[("python app", "@declared", "deps.declared_unreadable")]["values"]["dev"] == (
        "poetry.lock: poetry.lock is not valid TOML"
    )
    assert ("python app", "a|b`c\u00e9", "deps.package_missing") in findings
    assert findings[("python app", "requests", "deps.version_changed")]["severity"] == "medium"
    vcs = (
        findings.get(("python app", "lib", "deps.direct_install_production"))
        or findings[("python app", "lib", "deps.package_extra")]
    )
    assert ("python app", "lib", "deps.direct_install_production") in set(findings) | also
    assert (
        findings[("node web", "@files", "deps.declared_unreadable")]["values"]["prod"]
        == "package-lock.json is not valid JSON."
    )
    assert findings[("os packages", "@truncated", "deps.truncated")]["environments"] == ["prod"]
    markdown = result.markdown
    assert "a\\|b" in markdown and "## Area: deps" in markdown
    everything = [result.stdout, markdown, json.dumps(result.report)]
    everything += [path.read_text(errors="replace") for path in result.private_dir.rglob("*") if path.is_file()]
    assert not any(TOKEN in text for text in everything)
    assert "deploy:***@git.example.invalid" in json.dumps(vcs)
