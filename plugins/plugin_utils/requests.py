"""Area requests built from a host's inventory variables. Pure Python; no Ansible imports.

Each area's builder is `<area>_request(params)`: params are the variables of the area's
argument specs (roles/<area>/meta/argument_specs.yml), validated and with the specs' defaults
applied (see plugin_utils/areas.py), so no default is written twice. A builder returns None when
the host configures nothing for the area ("not configured").
"""


class RequestError(ValueError):
    """An inventory input that cannot be audited; the message says which and why."""


def env_request(params):
    """The env area's request, or None when no env file is configured."""
    files = params["drift_env_files"]
    if not files:
        return None
    normalised = _named_items(files, "drift_env_files", (("template", None), ("allow_outside_project", False)))
    return {
        "project_dir": params.get("drift_project_dir") or None,
        "files": normalised,
        "max_bytes": int(params["drift_env_max_file_bytes"]),
    }


def _named_items(items, variable, extra=()):
    names = set()
    normalised = []
    for index, item in enumerate(items or []):
        if not isinstance(item, dict) or not item.get("name") or not item.get("path"):
            raise RequestError("%s item %d needs a name and a path" % (variable, index + 1))
        if item["name"] in names:
            raise RequestError("%s names must be unique: %s appears twice" % (variable, item["name"]))
        names.add(item["name"])
        entry = {"name": str(item["name"]), "path": str(item["path"])}
        entry.update({field: item.get(field, default) for field, default in extra})
        normalised.append(entry)
    return normalised


def git_request(params):
    """The git area's request, or None when neither repositories nor deployed directories are configured."""
    repos, deploy_dirs = params["drift_git_repos"], params["drift_deploy_dirs"]
    if not repos and not deploy_dirs:
        return None
    request = {
        "project_dir": params.get("drift_project_dir") or None,
        "repos": _named_items(repos, "drift_git_repos"),
        "deploy_dirs": _named_items(deploy_dirs, "drift_deploy_dirs", (("ignore", []),)),
    }
    clash = {item["name"] for item in request["repos"]} & {item["name"] for item in request["deploy_dirs"]}
    if clash:
        raise RequestError("%s is both a repository and a deployed directory: names must differ" % sorted(clash)[0])
    for field in ("history_limit", "file_limit", "manifest_limit", "timeout"):
        request[field] = int(params["drift_git_" + field])
    request["fetch"] = bool(params["drift_git_fetch"])
    return request


def docker_request(params):
    """The docker area's request, or None when no compose stack is configured."""
    stacks = params["drift_compose"]
    if not stacks:
        return None
    names = set()
    normalised = []
    for index, item in enumerate(stacks):
        files = item.get("files") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not item.get("name") or not isinstance(files, list) or not files:
            raise RequestError("drift_compose item %d needs a name and files (a non-empty list of paths)" % (index + 1))
        if item["name"] in names:
            raise RequestError("drift_compose names must be unique: %s appears twice" % item["name"])
        names.add(item["name"])
        normalised.append(
            {
                "name": str(item["name"]),
                "files": [str(path) for path in files],
                "env_file": item.get("env_file"),
                "project": item.get("project"),
            }
        )
    return {
        "project_dir": params.get("drift_project_dir") or None,
        "stacks": normalised,
        "docker_host": _docker_host(params),
        "max_file_bytes": int(params["drift_docker_max_file_bytes"]),
        "timeout": int(params["drift_docker_timeout"]),
    }


def _docker_host(params):
    host = str(params["drift_docker_host"])
    if not host.startswith("unix://"):
        raise RequestError("drift_docker_host must be a unix:// socket, e.g. unix:///var/run/docker.sock")
    return host


def postgres_request(params):
    """The postgres area's request without any password, or None when no database is configured.

    The request is stored in the run directory and may be shown by Ansible: passwords travel
    apart (postgres_secrets), into a no_log option of the module.
    """
    databases = params["drift_postgres"]
    if not databases:
        return None
    names = set()
    normalised = []
    for index, item in enumerate(databases):
        if not isinstance(item, dict) or not item.get("name") or not item.get("dbname") or not item.get("user"):
            raise RequestError("drift_postgres item %d needs a name, a dbname and a user" % (index + 1))
        if item["name"] in names:
            raise RequestError("drift_postgres names must be unique: %s appears twice" % item["name"])
        names.add(item["name"])
        port = item.get("port")
        normalised.append(
            {
                "name": str(item["name"]),
                "dbname": str(item["dbname"]),
                "user": str(item["user"]),
                "host": str(item["host"]) if item.get("host") else None,
                "port": int(port) if port not in (None, "") else None,
                "container": str(item["container"]) if item.get("container") else None,
            }
        )
    return {
        "databases": normalised,
        "docker_host": _docker_host(params),
        "timeout": int(params["drift_postgres_timeout"]),
        "statement_timeout_ms": int(params["drift_postgres_statement_timeout_ms"]),
        "lock_timeout_ms": int(params["drift_postgres_lock_timeout_ms"]),
    }


def postgres_secrets(params):
    """{name: password} of the databases that have one: a no_log option of the module, never in the request."""
    return {
        str(item["name"]): str(item["password"])
        for item in params.get("drift_postgres") or []
        if isinstance(item, dict) and item.get("name") and item.get("password") not in (None, "")
    }


def deps_request(params):
    """The deps area's request, or None when no Python environment, Node project or compose stack
    (whose running containers are read) is configured."""
    skipped = {str(name) for name in params["drift_deps_skip_stacks"] or []}
    python_envs = _named_items(params["drift_python_envs"], "drift_python_envs", (("declared", []), ("lock", None)))
    node_projects = _named_items(params["drift_node_projects"], "drift_node_projects")
    stacks = [
        {
            "name": str(item["name"]),
            "files": [str(path) for path in item.get("files") or []],
            "env_file": item.get("env_file"),
            "project": item.get("project"),
        }
        for item in params["drift_compose"] or []
        if isinstance(item, dict) and item.get("name") and str(item["name"]) not in skipped
    ]
    if not python_envs and not node_projects and not stacks:
        return None
    for entry in python_envs:
        entry["declared"] = [str(path) for path in entry["declared"] or []]
        entry["lock"] = str(entry["lock"]) if entry["lock"] else None
    request = {
        "project_dir": params.get("drift_project_dir") or None,
        "python_envs": python_envs,
        "node_projects": node_projects,
        "stacks": stacks,
        "docker_host": _docker_host(params),
        "os_root": str(params["drift_deps_os_root"]),
    }
    for field in ("max_dists", "max_file_bytes", "max_output_bytes", "timeout"):
        request[field] = int(params["drift_deps_" + field])
    return request
