"""The CI recipes (examples/ci/) validate against the schemas GitHub and GitLab publish for them,
as vendored by check-jsonschema (SchemaStore's github-workflow and GitLab's own CI schema, shipped
inside the PyPI package, so that the check runs offline), with a broken copy of each as a control.

What this does not check, and actionlint would: expressions (`${{ }}`: syntax, contexts available
where they are used, types), the shell scripts of `run:` steps (actionlint runs shellcheck on
them), action inputs against each action's action.yml, `needs:` cycles and job outputs, and cron
syntax of `on.schedule`. The shell steps themselves are run against the lab by
tests/integration/test_ci_recipes.py."""

import copy
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECIPES = {
    "vendor.github-workflows": ROOT / "examples" / "ci" / "github-actions.yml",
    "vendor.gitlab-ci": ROOT / "examples" / "ci" / "gitlab-ci.yml",
}
CHECK_JSONSCHEMA = pathlib.Path(sys.executable).parent / "check-jsonschema"
# Any attempt to fetch a schema from the network fails at once (nothing listens on port 9).
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def check(schema, path):
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, "--no-cache", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **OFFLINE},
        timeout=120,
    )


@pytest.mark.parametrize("schema", sorted(RECIPES))
def test_the_recipe_validates_against_its_ci_schema(schema):
    result = check(schema, RECIPES[schema])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validation done" in result.stdout


def test_every_workflow_job_has_a_timeout():
    result = check("custom.github-workflows-require-timeout", RECIPES["vendor.github-workflows"])
    assert result.returncode == 0, result.stdout + result.stderr


def broken_workflow(workflow):
    """A step that both runs a script and uses an action, and a job with no runner."""
    broken = copy.deepcopy(workflow)
    job = broken["jobs"]["audit"]
    job["steps"][0]["run"] = "echo both"
    del job["runs-on"]
    return broken


def broken_gitlab(pipeline):
    """A `when:` GitLab does not know, and artifacts kept for a duration given as a list."""
    broken = copy.deepcopy(pipeline)
    broken["envparity"]["when"] = "sometimes"
    broken["envparity"]["artifacts"]["expire_in"] = ["30 days"]
    return broken


@pytest.mark.parametrize(
    ("schema", "breaks"),
    [("vendor.github-workflows", broken_workflow), ("vendor.gitlab-ci", broken_gitlab)],
)
def test_a_broken_copy_of_the_recipe_fails(tmp_path, schema, breaks):
    broken = tmp_path / RECIPES[schema].name
    broken.write_text(yaml.safe_dump(breaks(yaml.safe_load(RECIPES[schema].read_text()))))
    result = check(schema, broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema validation errors were encountered" in result.stdout + result.stderr


@pytest.mark.parametrize("schema", sorted(RECIPES))
def test_an_unbroken_copy_passes(tmp_path, schema):
    """The controls' copies pass when not broken: their failure comes from the breakage, not from
    the YAML round trip."""
    copy_path = tmp_path / RECIPES[schema].name
    copy_path.write_text(yaml.safe_dump(yaml.safe_load(RECIPES[schema].read_text())))
    assert check(schema, copy_path).returncode == 0
