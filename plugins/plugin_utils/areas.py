"""The controller's side of the area registry (module_utils/areas.py): each area's diff rules,
request builder and argument specs, and which areas a run audits.

Pure Python (PyYAML); no Ansible imports.
"""

import copy
import functools
import importlib
import os

import yaml

from ansible_collections.envparity.audit.plugins.module_utils.areas import AREA_NAMES, BY_NAME
from ansible_collections.envparity.audit.plugins.plugin_utils import requests

PACKAGE = "ansible_collections.envparity.audit.plugins.plugin_utils"
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The audit-wide settings (environments, rules, gate, report) live in a role entry of their own.
AUDIT_ROLE = "audit"


class AreaSelectionError(ValueError):
    """The tags or drift_areas of a run select no area, or name one that does not exist."""


def diff_rules(area):
    """The area's diff module: diff(labels, cells, context) and subjects(request)."""
    return importlib.import_module("%s.%s" % (PACKAGE, BY_NAME[area].diff_module))


def controller_part(area):
    """The area's part collected from the controller (start, host_secrets, merge), or None."""
    name = BY_NAME[area].controller_module
    return importlib.import_module("%s.%s" % (PACKAGE, name)) if name else None


def request_builder(area):
    return getattr(requests, "%s_request" % area)


def role_dir(role):
    return os.path.join(COLLECTION_ROOT, "roles", role)


# The Markdown report's template when drift_report_template is unset.
REPORT_TEMPLATE = os.path.join(role_dir(AUDIT_ROLE), "templates", "report.md.j2")


# libyaml's loader where PyYAML has it: the pure-Python one took 2-3 ms per spec and host.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _spec_options(role):
    with open(os.path.join(role_dir(role), "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_YAML_LOADER)["argument_specs"]["main"]["options"]


def load_specs():
    """Read every role's specs once: called where the controller's main process imports this
    module (the callback), so that the workers Ansible forks per host inherit them read."""
    for role in (AUDIT_ROLE,) + AREA_NAMES:
        _spec_options(role)


def spec_options(role):
    """The options of a role's main argument spec: the one source of its variables and defaults."""
    return copy.deepcopy(_spec_options(role))


def spec_defaults(role):
    """{variable: default} of a role's argument spec (None where it has none)."""
    return {name: copy.deepcopy(option.get("default")) for name, option in _spec_options(role).items()}


def build_request(area, params):
    """The area's request from a host's validated variables (missing ones take the specs' defaults)."""
    merged = spec_defaults(area)
    merged.update({name: value for name, value in params.items() if name in merged})
    return request_builder(area)(merged)


def selected_areas(run_tags, skip_tags, wanted=None):
    """The areas a run audits, in registry order: those --tags selects (all when no tag names an
    area, as with no --tags at all), less --skip-tags, within drift_areas when it is set."""
    run_tags = set(run_tags or ("all",))
    skip_tags = set(skip_tags or ())
    if wanted is not None:
        unknown = sorted(set(wanted) - set(AREA_NAMES))
        if unknown:
            raise AreaSelectionError(
                "drift_areas names %s, which is not an area (areas: %s)" % (", ".join(unknown), ", ".join(AREA_NAMES))
            )
    tagged = run_tags & set(AREA_NAMES)
    chosen = [
        name
        for name in AREA_NAMES
        if (name in tagged or not tagged) and name not in skip_tags and (wanted is None or name in wanted)
    ]
    if not chosen:
        raise AreaSelectionError(
            "no area is selected (--tags %s, --skip-tags %s, drift_areas %s); areas: %s"
            % (
                ",".join(sorted(run_tags)),
                ",".join(sorted(skip_tags)) or "none",
                "unset" if wanted is None else ",".join(wanted) or "[]",
                ", ".join(AREA_NAMES),
            )
        )
    return chosen
