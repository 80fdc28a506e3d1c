"""Area requests built from inventory inputs. Pure Python; no Ansible imports."""


class RequestError(ValueError):
    """An inventory input that cannot be audited; the message says which and why."""


def env_request(files, project_dir=None, max_bytes=1048576):
    """The env area's request, or None when no env file is configured."""
    if not files:
        return None
    normalised = _named_items(files, "drift_env_files", (("template", None), ("allow_outside_project", False)))
    return {"project_dir": project_dir or None, "files": normalised, "max_bytes": int(max_bytes)}


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


def git_request(repos, deploy_dirs=None, project_dir=None, limits=None):
    """The git area's request, or None when neither repositories nor deployed directories are configured."""
    if not repos and not deploy_dirs:
        return None
    limits = dict(limits or {})
    request = {
        "project_dir": project_dir or None,
        "repos": _named_items(repos, "drift_git_repos"),
        "deploy_dirs": _named_items(deploy_dirs, "drift_deploy_dirs", (("ignore", []),)),
    }
    clash = {item["name"] for item in request["repos"]} & {item["name"] for item in request["deploy_dirs"]}
    if clash:
        raise RequestError("%s is both a repository and a deployed directory: names must differ" % sorted(clash)[0])
    for field, default in (("history_limit", 200), ("file_limit", 200), ("manifest_limit", 20000), ("timeout", 20)):
        request[field] = int(limits.get(field, default))
    request["fetch"] = str(limits.get("fetch", False)).lower() in ("true", "1", "yes")
    return request


def docker_request(stacks, docker_host=None, project_dir=None, limits=None):
    """The docker area's request, or None when no compose stack is configured."""
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
    host = str(docker_host or "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise RequestError("drift_docker_host must be a unix:// socket, e.g. unix:///var/run/docker.sock")
    limits = dict(limits or {})
    return {
        "project_dir": project_dir or None,
        "stacks": normalised,
        "docker_host": host,
        "max_file_bytes": int(limits.get("max_file_bytes", 1048576)),
        "timeout": int(limits.get("timeout", 10)),
    }


def postgres_request(databases, docker_host=None, limits=None):
    """The postgres area's request without any password, or None when no database is configured.

    The request is stored in the run directory and may be shown by Ansible: passwords travel
    apart (postgres_passwords), into a no_log option of the module.
    """
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
    limits = dict(limits or {})
    return {
        "databases": normalised,
        "docker_host": str(docker_host or "unix:///var/run/docker.sock"),
        "timeout": int(limits.get("timeout", 60)),
        "statement_timeout_ms": int(limits.get("statement_timeout_ms", 30000)),
        "lock_timeout_ms": int(limits.get("lock_timeout_ms", 5000)),
    }


def postgres_passwords(databases):
    """{name: password} of the databases that have one (for the module's no_log option)."""
    return {
        str(item["name"]): str(item["password"])
        for item in databases or []
        if isinstance(item, dict) and item.get("name") and item.get("password") not in (None, "")
    }


def configured_areas(requests):
    """Only the areas that have a request (an area with no input is not configured)."""
    return {area: request for area, request in (requests or {}).items() if request is not None}
