"""The deps area end to end: compare.yml through ansible-runner against the real lab (real
virtualenvs built by pip, an editable install, a Node project, dpkg status files, the stacks'
running containers reached by docker exec)."""

import json

import jsonschema

from tests.lab.labtest import engine_get

from .conftest import LAB_STATE, tree_state
from .test_env_audit import SCHEMA, identities, planted

DEPS_DIRS = ("/var/lib/envparity-lab/dev/deps", "/home/deploy/deps")


# The compose projects of the lab's stacks (other parts of the shared lab may run containers of their own).
PROJECTS = ("personal_assistant", "ai_assistant")


def engine_state():
    """Every container of the lab's stacks: state, start time, image (an audit changes none of them)."""
    found = []
    for summary in engine_get("/containers/json?all=1"):
        if (summary.get("Labels") or {}).get("com.docker.compose.project") in PROJECTS:
            state = engine_get("/containers/%s/json" % summary["Id"])["State"]
            found.append((summary["Names"][0], state["Status"], state["StartedAt"], summary["ImageID"]))
    return sorted(found)


def _healthcheck_argv(container):
    """The command the engine runs as the container's healthcheck (an exec of its own)."""
    test = ((container.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    if test[:1] == ["CMD"]:
        return test[1:]
    if test[:1] == ["CMD-SHELL"]:
        return ["/bin/sh", "-c", *test[1:]]
    return None


def running_execs():
    """The execs still running in any container (the audit's must all have ended), the engine's
    own healthcheck runs left out."""
    running = []
    for summary in engine_get("/containers/json"):
        container = engine_get("/containers/%s/json" % summary["Id"])
        for exec_id in container.get("ExecIDs") or []:
            state = engine_get("/exec/%s/json" % exec_id)
            if state is None or not state["Running"]:
                continue
            process = state.get("ProcessConfig") or {}
            if [process.get("entrypoint"), *(process.get("arguments") or [])] != _healthcheck_argv(container):
                running.append((summary["Names"][0], exec_id))
    return running


def test_deps_recall_and_precision_against_the_manifest(audit, lab):
    files_before, engine_before = tree_state(*DEPS_DIRS), engine_state()
    result = audit(cmdline="--tags deps")
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    assert report["areas"] == ["deps"]
    found = identities(report["findings"])
    expected = planted(lab["manifest"], area="deps")
    assert sorted(set(expected) - set(found)) == [], "planted but not found"
    assert sorted(set(found) - set(expected)) == [], "found but never planted"
    # read-only: no file of the environments changed, no container started, stopped or left with an exec
    assert tree_state(*DEPS_DIRS) == files_before
    assert engine_state() == engine_before
    assert running_execs() == []


def test_deps_report_names_the_reasons_and_sections(audit, lab):
    result = audit(cmdline="--tags deps")
    findings = {(f["subject"], f["key"]): f for f in result.report["findings"]}
    labhttp = findings[("python app", "labhttp")]
    assert labhttp["severity"] == "high"  # a major version apart
    assert "the lockfiles differ (dev=2.0.1; prod=1.9.0): a deploy of the lock did not happen" in labhttp["message"]
    assert findings[("python app", "labcore-utils")]["severity"] == "medium"
    assert "required by labclient (labcore-utils>=1.3)" in findings[("python app", "labcore-utils")]["message"]
    labextra = findings[("python app", "labextra")]
    assert "only the installed set differs" in labextra["message"]
    editable = findings[("python app", "labapp")]
    assert editable["values"]["prod"] == "editable from file:///home/deploy/deps/src/labapp"
    no_python = findings[("containers app", "@no_python")]
    assert no_python["values"] == {"dev": "mailhog, scheduler, web, worker", "prod": "db, legacy-cron, web, worker"}
    markdown = result.markdown
    for heading in ("## Area: deps", "### python app", "### node web", "### os packages", "### containers app"):
        assert heading in markdown
    # the planted architecture: dev's service of the py-arch stack runs an image recorded as arm64
    platform = findings[("containers pyarch", "api/@image.platform")]
    assert platform["values"] == {"dev": "linux/arm64/v8", "prod": "linux/amd64"} and platform["severity"] == "high"
    assert findings[("node web", "@node")]["values"] == {"dev": "20.11.1 (.nvmrc)", "prod": "18.19.0 (.nvmrc)"}
    assert findings[("runtimes", "node")]["values"] == {"dev": "20.11.1", "prod": "18.20.4"}


def test_deps_report_tables_fold_to_the_differing_packages(audit, lab):
    """One table per ecosystem, package × environment: only the packages that differ, then a count
    of the equal ones (pyapp's image holds this machine's dpkg database: hundreds of equal rows)."""
    result = audit(cmdline="--tags deps")
    tables = {table["title"]: table for table in result.report["tables"]["deps"]["tables"]}
    python = tables["python app: packages"]
    assert python["header"] == ["package", "dev", "prod"]
    assert python["rows"][:4] == [
        ["labcore-utils", "1.4.0", "1.2.0"],
        ["labextra", "—", "0.5.0rc1"],
        ["labhttp", "2.0.1", "1.9.0"],
        ["labpinned", "3.1.0", "3.2.0"],
    ]
    assert python["rows"][-1][0].endswith("packages the same in dev and prod)")
    container_os = tables["containers pyapp: OS packages"]["rows"]
    assert container_os[0] == ["api/os:hotfix-tool", "—", "1.0-1"] and len(container_os) == 2
    equal = int(container_os[-1][0].split(" ")[0].lstrip("("))
    with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as handle:
        assert equal == sum(1 for line in handle if line.startswith("Package: "))  # the image's copy of it
    runtimes = {row[0]: row[1:] for row in tables["runtimes"]["rows"]}
    assert runtimes["node"] == ["20.11.1", "18.20.4"] and runtimes["python app"][0] == runtimes["python app"][1]
    markdown = result.markdown
    assert "| api/os:hotfix-tool | — | 1.0-1 |" in markdown
    assert "| node web | 20.11.1 (.nvmrc) | 18.19.0 (.nvmrc) |" in markdown


def test_the_vcs_token_in_installed_metadata_never_leaves_the_host(audit, lab):
    """The prod venv's labclient declares a requirement on a VCS URL with a token (the canary):
    the collected facts carry it masked, and it is nowhere in the report or the runner's output."""
    token = json.loads((LAB_STATE / "canaries.json").read_text())["deps.prod.vcs_token"]
    metadata = "/home/deploy/deps/venv/lib/python3.11/site-packages/labclient-1.0.0.dist-info/METADATA"
    with open(metadata) as handle:
        assert token in handle.read()  # control: the secret is really there on the host
    result = audit(cmdline="--tags deps", extravars={"drift_keep_run_dir": True}, verbosity=4)
    assert result.rc == 0, result.stdout
    from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import unpack

    (blob,) = [path for path in result.report_dir.glob(".runs/*/facts/prod-vm*")]
    facts = unpack(blob.read_text())
    requires = facts["areas"]["deps"]["data"]["python"]["app"]["dists"]["labclient"]["requires"]
    assert any("git+https://deploy:***@git.example.invalid/lab/labtoken.git" in item for item in requires)
    outputs = [result.stdout, json.dumps(facts), result.markdown, json.dumps(result.report)]
    outputs += [path.read_text(errors="replace") for path in result.private_dir.rglob("*") if path.is_file()]
    assert not any(token in text for text in outputs)
