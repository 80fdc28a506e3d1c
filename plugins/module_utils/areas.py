"""The areas envparity audits: one entry each, the only list of them.

An area is one room: its host collector (module_utils/<collector>.py, with `collect_area` and
`DEFAULTS`), its diff rules (plugin_utils/<diff_module>.py, with `diff` and `subjects`), its
request builder (plugin_utils/requests.py, `<name>_request`), its role (roles/<name>: defaults and
the argument specs the audit validates its variables with), its docs and its lab part.
tests/unit/test_area_registry.py walks this list and checks that each area has all of them.

Standard library only: this file travels to the audited host inside the module. Each collector is
imported only when its area is collected (an env-only audit does not pay for the Docker client's
imports on the host); Ansible's module packer ships them all, as it reads the imports inside
functions too.
"""

import collections

# controller_module: the plugin_utils module of an area's part collected from the controller while
# its host collects (start, host_secrets, merge: see plugin_utils/controller_side.py), or None.
Area = collections.namedtuple("Area", ("name", "load", "diff_module", "controller_module"), defaults=(None,))


def _env():
    from ansible_collections.envparity.audit.plugins.module_utils import env_collect

    return env_collect


def _git():
    from ansible_collections.envparity.audit.plugins.module_utils import git_collect

    return git_collect


def _docker():
    from ansible_collections.envparity.audit.plugins.module_utils import docker_collect

    return docker_collect


def _postgres():
    from ansible_collections.envparity.audit.plugins.module_utils import pg_collect

    return pg_collect


def _endpoints():
    from ansible_collections.envparity.audit.plugins.module_utils import endpoints_collect

    return endpoints_collect


def _health():
    from ansible_collections.envparity.audit.plugins.module_utils import health_collect

    return health_collect


def _deps():
    from ansible_collections.envparity.audit.plugins.module_utils import deps_collect

    return deps_collect


AREAS = (
    Area(name="env", load=_env, diff_module="env_diff"),
    Area(name="git", load=_git, diff_module="git_diff"),
    Area(name="docker", load=_docker, diff_module="docker_diff"),
    Area(name="postgres", load=_postgres, diff_module="pg_diff"),
    Area(name="endpoints", load=_endpoints, diff_module="endpoints_diff", controller_module="endpoints_controller"),
    Area(name="health", load=_health, diff_module="health_diff"),
    Area(name="deps", load=_deps, diff_module="deps_diff"),
)

AREA_NAMES = tuple(area.name for area in AREAS)
BY_NAME = {area.name: area for area in AREAS}
