"""Walk the area registry: each area is one whole room (collector, diff rules, request builder,
role with defaults and argument specs, docs, lab part, tests), and each default has one value."""

import pathlib

import pytest
import yaml

from ansible_collections.envparity.audit.plugins.module_utils.areas import AREA_NAMES, AREAS, BY_NAME
from ansible_collections.envparity.audit.plugins.plugin_utils import requests
from ansible_collections.envparity.audit.plugins.plugin_utils.areas import (
    build_request,
    diff_rules,
    spec_defaults,
    spec_options,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def sample(option, name):
    """A value that satisfies an option's spec (its required fields filled in, named after it)."""
    if option.get("type") == "list" and option.get("elements") == "dict":
        fields = option.get("options", {})
        return [{field: sample(sub, name) for field, sub in fields.items() if sub.get("required")}]
    if option.get("type") == "list":
        return [name]
    if option.get("type") == "int":
        return 1
    return name


def configured_params(area):
    """The role's defaults, with every list of subjects given one item."""
    params = spec_defaults(area)
    for name, option in spec_options(area).items():
        if option.get("type") == "list" and option.get("elements") == "dict":
            params[name] = sample(option, name)
    return params


def test_the_registry_names_each_area_once():
    assert len(set(AREA_NAMES)) == len(AREA_NAMES) == len(AREAS)
    assert AREA_NAMES == ("env", "git", "docker", "postgres", "endpoints", "health", "deps")


@pytest.mark.parametrize("area", AREA_NAMES)
def test_each_area_has_a_collector_diff_rules_and_a_request_builder(area):
    entry = BY_NAME[area]
    assert callable(entry.load().collect_area)
    rules = diff_rules(area)
    assert callable(rules.diff) and callable(rules.subjects)
    assert callable(getattr(requests, "%s_request" % area))
    request = build_request(area, configured_params(area))
    assert request is not None and rules.subjects(request) != []
    # nothing configured: the area is "not configured", never an empty request
    assert build_request(area, {}) is None


@pytest.mark.parametrize("area", AREA_NAMES)
def test_role_defaults_are_the_argument_specs_defaults(area):
    defaults = yaml.safe_load((ROOT / "roles" / area / "defaults" / "main.yml").read_text())
    with_default = {name: value for name, value in spec_defaults(area).items() if value is not None}
    assert defaults == with_default
    for name, option in spec_options(area).items():
        assert name.startswith("drift_"), name
        assert option.get("description"), "%s has no description" % name


@pytest.mark.parametrize("area", AREA_NAMES)
def test_the_collector_defaults_are_the_argument_specs_defaults(area):
    """The collector's fallback for a missing request field is the value the role's specs give."""
    collector = BY_NAME[area].load()
    request = build_request(area, spec_defaults(area) | configured_params(area))
    assert collector.DEFAULTS, "%s has no DEFAULTS" % collector.__name__
    for field, default in collector.DEFAULTS.items():
        assert request[field] == default, (area, field)


def test_the_audit_role_defaults_are_its_argument_specs_defaults():
    defaults = yaml.safe_load((ROOT / "roles" / "audit" / "defaults" / "main.yml").read_text())
    assert defaults == {name: value for name, value in spec_defaults("audit").items() if value is not None}


@pytest.mark.parametrize("area", AREA_NAMES)
def test_each_area_has_docs_a_lab_part_and_tests(area):
    readme = (ROOT / "README.md").read_text()
    findings = (ROOT / "docs" / "findings.md").read_text()
    assert "--tags %s" % area in readme
    assert "| %s." % area in findings, "docs/findings.md lists no %s check" % area
    assert (ROOT / "lab" / ("%s_area.py" % area)).is_file()
    assert (ROOT / "roles" / area / "molecule" / "default" / "converge.yml").is_file()
    assert (ROOT / "tests" / "integration" / ("test_%s_audit.py" % area)).is_file()
    for name in spec_options(area):
        assert "`%s`" % name in readme, "README documents no %s" % name


@pytest.mark.parametrize("area", AREA_NAMES)
def test_each_area_plants_drift_in_the_lab(area):
    source = (ROOT / "lab" / ("%s_area.py" % area)).read_text()
    assert '"area": "%s"' % area in source or "area=%r" % area in source or "'%s'" % area in source


@pytest.mark.parametrize("area", AREA_NAMES)
def test_an_areas_tables_have_the_reports_shape_even_with_nothing_to_show(area):
    """audit.py puts whatever an area's tables() returns into the report, whose schema wants both
    lists: an area that has nothing to show (no host collected) still gives them."""
    tables_of = getattr(diff_rules(area), "tables", None)
    if tables_of is None:
        pytest.skip("%s has no tables" % area)
    context = {"baseline": "dev", "production": {"prod"}, "tolerances": None, "compared_values": None}
    context["area_cells"] = lambda other: {"dev": None, "prod": None}
    for cells in ({"dev": None, "prod": None}, {"dev": {"unknown": "down"}, "prod": {"unknown": "down"}}):
        given = tables_of(["dev", "prod"], cells, context)
        assert set(given) == {"tables", "charts"}, given
        assert isinstance(given["tables"], list) and isinstance(given["charts"], list)
