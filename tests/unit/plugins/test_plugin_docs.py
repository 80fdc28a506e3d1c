"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN are valid YAML (ansible-doc and ansible-lint read them)."""

import ast
import pathlib

import pytest
import yaml

PLUGINS = pathlib.Path(__file__).resolve().parents[3] / "plugins"
FILES = sorted(path for kind in ("modules", "action", "callback", "filter") for path in (PLUGINS / kind).glob("*.py"))


def doc_strings(path):
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in (
            "DOCUMENTATION",
            "EXAMPLES",
            "RETURN",
        ):
            yield node.targets[0].id, node.value.value


@pytest.mark.parametrize("path", FILES, ids=lambda path: "%s/%s" % (path.parent.name, path.name))
def test_plugin_documentation_is_valid_yaml(path):
    for name, text in doc_strings(path):
        document = yaml.safe_load(text)
        if name == "DOCUMENTATION":
            assert document.get("short_description"), path


@pytest.mark.parametrize("name", ["drift_run", "drift_facts", "drift_report", "drift_lint_rules"])
def test_each_task_documents_exactly_the_arguments_its_action_takes(name):
    """ansible-doc shows the module file's options; the task's arguments are its action's."""
    from ansible_collections.envparity.audit.plugins.action import (
        drift_facts,
        drift_lint_rules,
        drift_report,
        drift_run,
    )

    action = {
        "drift_run": drift_run,
        "drift_facts": drift_facts,
        "drift_report": drift_report,
        "drift_lint_rules": drift_lint_rules,
    }[name]
    documented = yaml.safe_load(dict(doc_strings(PLUGINS / "modules" / ("%s.py" % name)))["DOCUMENTATION"])
    assert set(documented.get("options") or {}) == set(action.ActionModule._VALID_ARGS)
