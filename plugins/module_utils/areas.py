"""The areas envparity audits: one line each, the only list of them.

An area is one room: its host collector (module_utils/<collector>.py, with `collect_area`), its
diff rules (plugin_utils/<diff>.py, with `diff` and `subjects`), its request builder
(plugin_utils/requests.py, `<name>_request`), its role (roles/<name>: defaults and the
argument specs the audit validates its variables with), its docs and its lab part.
tests/unit/test_area_registry.py walks this list and checks that each area has all of them.

Standard library only: this file travels to the audited host inside the module.
"""

import collections

from ansible_collections.envparity.audit.plugins.module_utils import (
    docker_collect,
    env_collect,
    git_collect,
    pg_collect,
)

Area = collections.namedtuple("Area", ("name", "collect", "diff_module"))

AREAS = (
    Area(name="env", collect=env_collect.collect_area, diff_module="env_diff"),
    Area(name="git", collect=git_collect.collect_area, diff_module="git_diff"),
    Area(name="docker", collect=docker_collect.collect_area, diff_module="docker_diff"),
    Area(name="postgres", collect=pg_collect.collect_area, diff_module="pg_diff"),
)

AREA_NAMES = tuple(area.name for area in AREAS)
BY_NAME = {area.name: area for area in AREAS}
