"""The deps area's diff rules on small facts: distance severities, the chain, policies, reasons,
containers (no Python, platforms), unknown columns and hostile names."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import deps_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import unknown_cell
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import md_value

CONTEXT = {"baseline": "dev", "production": {"prod"}}


def dist(version, requires=(), direct=None, requested=True):
    return {
        "name": "x",
        "version": version,
        "installer": "pip",
        "requested": requested,
        "direct": direct,
        "requires": list(requires),
    }


def env(dists, declared=None, lock=None, python="3.11.2"):
    return {
        "status": "ok",
        "python": python,
        "dists": dists,
        "broken": [],
        "truncated": False,
        "declared": [{"path": "requirements.txt", "status": "ok", "text": declared}] if declared else [],
        "lock": [{"path": "requirements.lock", "status": "ok", "text": lock}] if lock else None,
    }


def cell(python=None, **sections):
    return {
        "python": python or {},
        "node": {},
        "containers": {},
        "os": {"status": "ok", "packages": {}},
        "runtimes": {},
        **sections,
    }


def identities(findings):
    found = set()
    for finding in findings:
        found.add((finding["subject"], finding["key"], finding["kind"], finding["check"], finding["severity"]))
    return found


@pytest.mark.parametrize(
    ("old", "new", "severity"),
    [
        ("2.0.1", "1.9.0", "high"),
        ("1.4.0", "1.2.0", "medium"),
        ("1.4.0", "1.4.1", "low"),
        ("1:2.0-1", "1:2.0-2", "low"),
        ("3.0.11-1~deb12u2", "3.0.9-1", "low"),
        ("abc", "def", "medium"),
        ("1.0", "1.0.0.1", "low"),
    ],
)
def test_severity_by_distance(old, new, severity):
    assert deps_diff.severity_of_change(old, new) == severity


def test_python_chain_policies_and_reasons():
    dev = env(
        {"a": dist("1.4.0"), "b": dist("1.0.0", ["a>=1.3"]), "pip": dist("23.0")},
        declared="a>=1\nb\nc==1.0\n",
        lock="a==1.4.0\nb==1.0.0\n",
    )
    prod = env(
        {
            "a": dist("1.2.0"),
            "b": dist("1.0.0", ["a>=1.3", "z; extra == 'x'"]),
            "c": dist("2.0rc1", direct={"kind": "editable", "url": "file:///src/c"}),
            "d": dist("0.1"),
            "pip": dist("23.0"),  # the venv's own: never "unlocked"
        },
        declared="a>=1\nb\nc==1.0\n",
        lock="a==1.2.0\nb==1.0.0\n",
    )
    findings = deps_diff.diff(["dev", "prod"], {"dev": cell({"app": dev}), "prod": cell({"app": prod})}, CONTEXT)
    found = identities(findings)
    assert found == {
        ("python app", "a", "changed", "deps.version_changed", "medium"),
        ("python app", "b", "policy", "deps.requirement_unmet", "high"),
        ("python app", "c", "extra", "deps.package_extra", "medium"),
        ("python app", "c", "missing", "deps.declared_not_installed", "high"),
        ("python app", "c", "policy", "deps.pin_violated", "high"),
        ("python app", "c", "policy", "deps.prerelease_production", "medium"),
        ("python app", "c", "policy", "deps.direct_install_production", "high"),
        ("python app", "d", "extra", "deps.package_extra", "medium"),
        ("python app", "d", "policy", "deps.unlocked_installed", "medium"),
    }
    changed = next(f for f in findings if f["check"] == "deps.version_changed")
    assert "in dev required by b (a>=1.3)" in changed["message"]
    assert "the lockfiles differ (dev=1.4.0; prod=1.2.0)" in changed["message"]
    assert changed["values"] == {"dev": "1.4.0", "prod": "1.2.0"}


def test_same_locks_mean_pip_was_run_by_hand():
    dev = env({"a": dist("1.4.0")}, lock="a==1.4.0\n")
    prod = env({"a": dist("1.5.0")}, lock="a==1.4.0\n")
    findings = deps_diff.diff(["dev", "prod"], {"dev": cell({"app": dev}), "prod": cell({"app": prod})}, CONTEXT)
    changed = next(f for f in findings if f["check"] == "deps.version_changed")
    assert "the lockfiles agree: only the installed set differs" in changed["message"]


def test_statuses_and_unknown_columns_are_never_same():
    broken = {"status": "not_an_environment", "reason": "The path is neither a virtualenv."}
    findings = deps_diff.diff(
        ["dev", "prod"], {"dev": cell({"app": env({"a": dist("1")})}), "prod": cell({"app": broken})}, CONTEXT
    )
    assert identities(findings) == {("python app", "@environment", "unknown", "deps.environment_status", "high")}
    assert deps_diff.diff(["dev", "prod"], {"dev": cell({"app": env({})}), "prod": unknown_cell("down")}, CONTEXT) == []


def test_containers_without_python_and_other_platforms():
    def stack(platform, status="ok", dists=None):
        python = (
            {"status": status, "reason": None, "dists": dists or {}}
            if status == "ok"
            else {"status": status, "reason": "r"}
        )
        return {
            "status": "ok",
            "services": {
                "api": {"image": "app:1", "digest": None, "platform": platform, "python": python},
                "cron": {"image": "busybox", "digest": None, "platform": platform, "python": {"status": "no_python"}},
            },
        }

    dev = cell(containers={"app": stack("linux/arm64", dists={"a": dist("1.0")})})
    prod = cell(containers={"app": stack("linux/amd64", dists={"a": dist("2.0")})})
    found = identities(deps_diff.diff(["dev", "prod"], {"dev": dev, "prod": prod}, CONTEXT))
    assert found == {
        ("containers app", "@no_python", "policy", "deps.container_no_python", "info"),
        ("containers app", "api/@image.platform", "changed", "deps.image_platform_changed", "high"),
        ("containers app", "cron/@image.platform", "changed", "deps.image_platform_changed", "high"),
        ("containers app", "api/a", "changed", "deps.version_changed", "high"),
    }
    timed_out = cell(containers={"app": stack("linux/arm64", status="timeout")})
    found = identities(deps_diff.diff(["dev", "prod"], {"dev": dev, "prod": timed_out}, CONTEXT))
    assert ("containers app", "api", "unknown", "deps.container_unreadable", "high") in found


def test_a_hostile_package_name_is_escaped_in_the_report():
    prod = env({"evil|`name`\u202e": dist("1.0")})
    findings = deps_diff.diff(["dev", "prod"], {"dev": cell({"app": env({})}), "prod": cell({"app": prod})}, CONTEXT)
    (finding,) = findings
    assert finding["key"] == "evil|`name`\u202e"
    assert "|" not in md_value(finding["key"]).replace("\\|", "")


def test_subjects_follow_the_request():
    request = {"python_envs": [{"name": "app"}], "node_projects": [{"name": "web"}], "stacks": [{"name": "s"}]}
    assert deps_diff.subjects(request) == ["containers s", "node web", "python app"]


def node(installed, locked=None, declared=None):
    return {
        "status": "ok",
        "declared": {name: {"range": spec, "dev": False} for name, spec in (declared or {}).items()},
        "locked": None if locked is None else {name: {"version": v, "dev": False} for name, v in locked.items()},
        "installed": installed,
        "problems": [],
    }


def test_node_ranges_against_the_lock_and_node_modules():
    declared = {"a": "^1.2.0", "b": "~2.0.0", "c": "1.x || >=3.0.0 <4", "d": "latest", "e": "file:../e"}
    dev = cell(node={"web": node({"a": "1.4.0", "b": "2.0.5"}, {"a": "1.4.0", "b": "2.0.5"}, declared)})
    prod = cell(
        node={
            "web": node(
                {"a": "2.0.0", "b": "2.0.5", "c": "2.0.0", "d": "9.0.0", "e": "0.0.1"},
                {"a": "2.0.0", "b": "2.1.0", "c": "3.5.0", "d": "9.0.0", "e": "0.0.1", "a > x": "0.1.0"},
                declared,
            )
        }
    )
    found = {
        (key, check)
        for _, key, _, check, _ in identities(deps_diff.diff(["dev", "prod"], {"dev": dev, "prod": prod}, CONTEXT))
    }
    # a: locked and installed 2.0.0 outside ^1.2.0; b: locked 2.1.0 outside ~2.0.0, installed 2.0.5 is the lock's
    # mismatch; c: installed 2.0.0 is outside the range, the lock's 3.5.0 is inside; d, e: no semver range, nothing said
    assert {item for item in found if item[1] in ("deps.lock_unsatisfied", "deps.pin_violated")} == {
        ("a", "deps.lock_unsatisfied"),
        ("a", "deps.pin_violated"),
        ("b", "deps.lock_unsatisfied"),
        ("c", "deps.pin_violated"),
    }
    assert ("b", "deps.lock_mismatch") in found and ("c", "deps.lock_mismatch") in found


def test_container_os_packages_and_node_projects_are_compared_per_service():
    def stack(os_packages, installed, locked, os_status="ok"):
        system = {"status": os_status, "reason": None, "packages": os_packages}
        return {
            "status": "ok",
            "services": {
                "api": {
                    "image": "app:1",
                    "digest": None,
                    "platform": "linux/amd64",
                    "python": {"status": "ok", "dists": {}},
                    "os": system,
                    "node": {"web": node(installed, locked, {"left": "^1.0.0"})},
                },
                "only-dev": {"image": "x", "digest": None, "platform": None, "python": {"status": "no_python"}},
            },
        }

    dev = cell(containers={"app": stack({"libssl3": "3.0.11-1", "curl": "7.88"}, {"left": "1.0.0"}, {"left": "1.0.0"})})
    prod_stack = stack({"libssl3": "3.0.13-1", "curl": "7.88", "vim": "9.0"}, {"left": "2.0.0"}, {"left": "1.0.0"})
    del prod_stack["services"]["only-dev"]
    prod = cell(containers={"app": prod_stack})
    found = {
        (key, check)
        for _, key, _, check, _ in identities(deps_diff.diff(["dev", "prod"], {"dev": dev, "prod": prod}, CONTEXT))
    }
    assert {
        ("api/os:libssl3", "deps.version_changed"),
        ("api/os:vim", "deps.package_extra"),
        ("api/node web:left", "deps.version_changed"),
        ("api/node web:left", "deps.pin_violated"),
        ("api/node web:left", "deps.lock_mismatch"),
    } <= found
    assert not any(key.startswith("only-dev") or key == "api/os:curl" for key, _ in found)
    # a container whose OS packages could not be read compares none of them
    unread = cell(containers={"app": stack({}, {"left": "1.0.0"}, {"left": "1.0.0"}, os_status="no_python")})
    found = identities(deps_diff.diff(["dev", "prod"], {"dev": dev, "prod": unread}, CONTEXT))
    assert not any(key.startswith("api/os:") for _, key, _, _, _ in found)


# ---------------------------------------------------------------- the report's tables


def tables_of(cells, columns=("dev", "prod")):
    return {table["title"]: table for table in deps_diff.tables(list(columns), cells, CONTEXT)["tables"]}


def test_a_package_table_lists_only_the_differing_rows_and_counts_the_rest():
    same = {"same-%03d" % index: dist("1.0") for index in range(40)}
    dev = cell({"app": env(dict(same, a=dist("1.4.0"), b=dist("2.0")))})
    prod = cell({"app": env(dict(same, a=dist("1.2.0"), c=dist("0.1rc1")))})
    table = tables_of({"dev": dev, "prod": prod})["python app: packages"]
    assert table["header"] == ["package", "dev", "prod"]
    assert table["rows"] == [
        ["a", "1.4.0", "1.2.0"],
        ["b", "2.0", "—"],
        ["c", "—", "0.1rc1"],
        ["(40 packages the same in dev and prod)", "", ""],
    ]


def test_a_big_set_folds_at_the_row_limit():
    dev = cell(os={"status": "ok", "packages": {"p%05d" % index: "1.0" for index in range(1000)}})
    prod = cell(
        os={"status": "ok", "packages": {"p%05d" % index: "2.0" if index < 450 else "1.0" for index in range(1000)}}
    )
    rows = tables_of({"dev": dev, "prod": prod})["os packages"]["rows"]
    assert len(rows) == deps_diff.MAX_TABLE_ROWS + 2
    assert rows[0] == ["p00000", "1.0", "2.0"]
    assert rows[-2] == ["… 250 more differing packages", "", ""]
    assert rows[-1] == ["(550 packages the same in dev and prod)", "", ""]


def test_tables_with_hostile_names_are_escaped_by_the_report_model():
    from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view

    hostile = "evil|`name`\n<script>x</script>\u202e"
    dev = cell(
        {"app": env({hostile: dist("1.0|2")})},
        node={"we|b": dict(node({hostile: "1.0.0"}), runtime={"version": "20|x", "source": ".nvmrc"})},
        runtimes={"os": "Debian | 12\n# heading", "kernel": "6.1"},
    )
    prod = cell({"app": env({})}, runtimes={"os": "Debian 12", "kernel": "6.1"})
    given = deps_diff.tables(["dev", "prod"], {"dev": dev, "prod": prod}, CONTEXT)
    titles = [table["title"] for table in given["tables"]]
    # os packages: empty everywhere, so no table
    assert titles == ["node we|b: packages", "python app: packages", "runtimes"]
    assert all(isinstance(text, str) for table in given["tables"] for row in table["rows"] for text in row)
    python = next(table for table in given["tables"] if table["title"] == "python app: packages")
    assert python["rows"][0] == [hostile, "1.0|2", "—"]
    audit = {
        "columns": [{"label": label, "environment": label, "host": label} for label in ("dev", "prod")],
        "states": {label: {"status": "ok", "reason": None} for label in ("dev", "prod")},
        "production": ["prod"],
        "audited_areas": ["deps"],
        "environments": [{"name": label, "hosts": [label]} for label in ("dev", "prod")],
        "findings": [],
        "stale_rules": [],
        "errors": [],
        "gate": {"fail_on": "never", "tripped": False, "count": 0},
        "tables": {"deps": given},
    }
    view = build_view(build_document(audit, "2026-01-01T00:00:00Z", "inv"))["areas"][0]
    for table in view["tables"]:
        for row in [table["header"], *table["rows"]]:
            for text in row:
                assert "\n" not in text and "<script>" not in text and "\u202e" not in text
                assert "|" not in text.replace("\\|", ""), text


def test_unread_and_unconfigured_columns_are_shown_as_such():
    dev = cell({"app": env({"a": dist("1.0")})})
    broken = cell({"app": {"status": "missing", "reason": "The path does not exist."}})
    table = tables_of({"dev": dev, "prod": broken, "stage": unknown_cell("unreachable")}, ("dev", "prod", "stage"))
    assert table["python app: packages"]["rows"] == [["a", "1.0", "(not read)", "(not read)"]]
    assert deps_diff.tables(["dev"], {"dev": None}, CONTEXT) == {"tables": [], "charts": []}


def test_the_runtimes_table_holds_each_environments_python_and_nodes_declared_version():
    dev = cell(
        {"app": env({}, python="3.11.2")},
        node={"web": dict(node({}), runtime={"version": "20.11.1", "source": ".nvmrc"})},
        runtimes={"os": "Debian GNU/Linux 12", "kernel": "6.1.0", "node": "20.11.1", "docker_engine": None},
    )
    prod = cell(
        {"app": env({}, python="3.9.18")},
        node={"web": dict(node({}), runtime={"version": ">=18", "source": "package.json engines"})},
        runtimes={"os": "Debian GNU/Linux 12", "kernel": "6.1.0", "node": "18.19.0"},
    )
    rows = tables_of({"dev": dev, "prod": prod})["runtimes"]["rows"]
    assert rows == [
        ["os", "Debian GNU/Linux 12", "Debian GNU/Linux 12"],
        ["kernel", "6.1.0", "6.1.0"],
        ["node", "20.11.1", "18.19.0"],
        ["node web", "20.11.1 (.nvmrc)", ">=18 (package.json engines)"],
        ["python app", "3.11.2", "3.9.18"],
    ]


def test_runtime_versions_are_compared_as_findings():
    def with_node(declared, installed, python):
        runtime = {"version": declared, "source": ".nvmrc"} if declared else None
        return cell(
            {"app": env({}, python=python)},
            node={"web": dict(node({}), runtime=runtime)},
            runtimes={"os": "Debian 12", "node": installed},
        )

    dev, prod = with_node("20.11.1", "20.11.1", "3.11.2"), with_node("18.19.0", "18.19.0", "3.11.9")
    found = identities(deps_diff.diff(["dev", "prod"], {"dev": dev, "prod": prod}, CONTEXT))
    assert {
        ("node web", "@node", "changed", "deps.runtime_changed", "high"),
        ("runtimes", "node", "changed", "deps.runtime_changed", "high"),
        ("python app", "@python", "changed", "deps.runtime_changed", "low"),
    } <= found
    findings = {
        (f["subject"], f["key"]): f for f in deps_diff.diff(["dev", "prod"], {"dev": dev, "prod": prod}, CONTEXT)
    }
    assert findings[("node web", "@node")]["message"] == (
        "The Node version declared by node web differs: dev=20.11.1 (.nvmrc); prod=18.19.0 (.nvmrc)."
    )
    # declared in one environment only, or the same everywhere: nothing to compare
    quiet = identities(
        deps_diff.diff(
            ["dev", "prod"],
            {"dev": with_node("20.11.1", None, "3.11.2"), "prod": with_node(None, None, "3.11.2")},
            CONTEXT,
        )
    )
    assert not any(item[3] == "deps.runtime_changed" for item in quiet)
