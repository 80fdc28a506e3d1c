"""Area requests built from a host's inventory variables. Pure Python; no Ansible imports.

Each area's builder is `<area>_request(params)`: params are the variables of the area's
argument specs (roles/<area>/meta/argument_specs.yml), validated and with the specs' defaults
applied (see plugin_utils/areas.py), so no default is written twice. A builder returns None when
the host configures nothing for the area ("not configured").
"""

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_probe import (
    SAFE_METHODS,
    display_url,
    parse_connect_to,
    split_url,
)
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_prometheus import (
    DEFAULT_QUERIES,
    MAX_QUERIES,
    MAX_QUERY_CHARS,
    SUBJECT,
)
from ansible_collections.envparity.audit.plugins.module_utils.pg_data import REFERENCE_NAME


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
        "compose_reader": _compose_reader(params),
        "compose_paths": [str(path) for path in params["drift_docker_compose_paths"]],
    }


def _compose_reader(params):
    reader = params["drift_docker_compose_reader"]
    if reader not in ("auto", "built-in", "compose"):
        raise RequestError("drift_docker_compose_reader must be auto, built-in or compose, not %r" % (reader,))
    return reader


def _docker_host(params):
    host = str(params["drift_docker_host"])
    if not host.startswith("unix://"):
        raise RequestError("drift_docker_host must be a unix:// socket, e.g. unix:///var/run/docker.sock")
    return host


def _reference_tables(item, index):
    """A database entry's reference_tables: "schema.table" names of plain characters."""
    names = item.get("reference_tables") or []
    if not isinstance(names, list) or not all(isinstance(name, str) and REFERENCE_NAME.match(name) for name in names):
        raise RequestError(
            "drift_postgres item %d: reference_tables must be a list of schema.table names (letters, digits, _ and $)"
            % (index + 1)
        )
    return sorted(set(names))


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
                "data_parity": bool(item.get("data_parity")),
                "reference_tables": _reference_tables(item, index),
            }
        )
    return {
        "databases": normalised,
        "docker_host": _docker_host(params),
        "timeout": int(params["drift_postgres_timeout"]),
        "statement_timeout_ms": int(params["drift_postgres_statement_timeout_ms"]),
        "lock_timeout_ms": int(params["drift_postgres_lock_timeout_ms"]),
        "data_exact_count_max_mb": int(params["drift_postgres_data_exact_count_max_mb"]),
        "data_row_cap": int(params["drift_postgres_data_row_cap"]),
        "data_table_timeout_ms": int(params["drift_postgres_data_table_timeout_ms"]),
        "data_budget_ms": int(params["drift_postgres_data_budget_ms"]),
    }


def postgres_secrets(params):
    """{name: password} of the databases that have one: a no_log option of the module, never in the request."""
    return {
        str(item["name"]): str(item["password"])
        for item in params.get("drift_postgres") or []
        if isinstance(item, dict) and item.get("name") and item.get("password") not in (None, "")
    }


ENDPOINT_SOURCES = ("controller", "host")


def _endpoint(item, index, names):
    if not isinstance(item, dict) or not item.get("name") or not item.get("url"):
        raise RequestError("drift_endpoints item %d needs a name and a url" % (index + 1))
    name = str(item["name"])
    if name == SUBJECT:
        raise RequestError(
            "drift_endpoints: %s is the name of the Prometheus metrics; name the endpoint otherwise" % name
        )
    if name in names:
        raise RequestError("drift_endpoints names must be unique: %s appears twice" % name)
    names.add(name)
    # A URL or connect_to that cannot be used fails its own probe with the reason (the host's
    # other endpoints and areas are still audited).
    url = str(item["url"])
    source = item.get("from") or "controller"
    if source not in ENDPOINT_SOURCES:
        raise RequestError("drift_endpoints %s: from must be controller or host" % name)
    method = str(item.get("method") or "GET").upper()
    if method not in SAFE_METHODS:
        raise RequestError("drift_endpoints %s: method must be one of %s (read-only)" % (name, ", ".join(SAFE_METHODS)))
    expect = item.get("expect_status")
    return {
        "name": name,
        # the URL as it may be stored and shown; one with credentials travels in endpoints_secrets
        "url": display_url(url),
        "method": method,
        "expect_status": int(expect) if expect not in (None, "") else None,
        "samples": _samples(item.get("samples"), "drift_endpoints %s: samples" % name),
        "from": source,
        "connect_to": str(item["connect_to"]) if item.get("connect_to") else None,
        "ca_file": str(item["ca_file"]) if item.get("ca_file") else None,
        "json_fields": [str(field) for field in item.get("json_fields") or []],
        "git_repo": str(item["git_repo"]) if item.get("git_repo") else None,
        # header names only: their values may be credentials (endpoints_secrets)
        "header_names": sorted(str(header) for header in (item.get("headers") or {})),
    }


MAX_SAMPLES = 100


def _samples(value, what):
    """A sample count within 1..MAX_SAMPLES (each sample is one request to the endpoint), or None."""
    if value in (None, ""):
        return None
    if not 1 <= int(value) <= MAX_SAMPLES:
        raise RequestError("%s must be between 1 and %d" % (what, MAX_SAMPLES))
    return int(value)


def endpoints_request(params):
    """The endpoints area's request, or None when no endpoint is configured. Header values and
    URL credentials are not in it (endpoints_secrets): the request is stored and may be shown."""
    endpoints = params["drift_endpoints"]
    # the specs' validation gives every option, unset ones as None: only set ones configure it
    prometheus = {key: value for key, value in (params.get("drift_prometheus") or {}).items() if value is not None}
    if not endpoints and not prometheus:
        return None
    names = {SUBJECT}  # the metrics' subject: no endpoint may take its name
    request = {"endpoints": [_endpoint(item, index, names) for index, item in enumerate(endpoints or [])]}
    if prometheus:
        request["prometheus"] = prometheus_request(prometheus)
    _samples(params["drift_endpoints_samples"], "drift_endpoints_samples")
    for field in ("samples", "timeout", "area_timeout", "max_body_bytes", "max_redirects", "concurrency"):
        request[field] = int(params["drift_endpoints_" + field])
        if request[field] < (0 if field == "max_redirects" else 1):
            raise RequestError("drift_endpoints_%s must be a positive number" % field)
    for field in ("slower_ms", "slower_percent", "expiry_high_days", "expiry_critical_days", "error_percent"):
        request[field] = int(params["drift_endpoints_" + field])
    return request


def prometheus_request(config):
    """drift_prometheus ({url, queries?, from?, connect_to?, ca_file?}) validated: an http(s) URL
    without credentials, read-only PromQL queries by name (the default set when none is given)."""
    if not isinstance(config, dict) or not config.get("url"):
        raise RequestError("drift_prometheus needs a url")
    url = str(config["url"])
    try:
        split_url(url)
        parse_connect_to(config.get("connect_to"))
    except ValueError as exc:
        raise RequestError("drift_prometheus: %s" % exc) from None
    if display_url(url) != url:
        raise RequestError("drift_prometheus: the url may not carry credentials or secret query values")
    source = config.get("from") or "controller"
    if source not in ENDPOINT_SOURCES:
        raise RequestError("drift_prometheus: from must be controller or host")
    queries = config.get("queries") or DEFAULT_QUERIES
    if not isinstance(queries, dict) or len(queries) > MAX_QUERIES:
        raise RequestError("drift_prometheus: queries must be a mapping of at most %d names to PromQL" % MAX_QUERIES)
    checked = {}
    for given, query in queries.items():
        name = str(given)
        if not name.replace("_", "").isalnum() or len(name) > 60 or name == "up":
            raise RequestError("drift_prometheus: query names are letters, digits and _ (and not up): %r" % name[:60])
        if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY_CHARS:
            raise RequestError(
                "drift_prometheus: query %s must be PromQL text of at most %d characters" % (name, MAX_QUERY_CHARS)
            )
        checked[name] = query
    return {
        "url": url,
        "queries": checked,
        "from": source,
        "connect_to": str(config["connect_to"]) if config.get("connect_to") else None,
        "ca_file": str(config["ca_file"]) if config.get("ca_file") else None,
    }


def endpoints_secrets(params):
    """{name: {"url": the URL with its credentials, "headers": {...}}} of the endpoints that have
    either: a no_log option of the module, never in the request."""
    secrets = {}
    for item in params.get("drift_endpoints") or []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        entry = {}
        url = str(item.get("url") or "")
        if display_url(url) != url:
            entry["url"] = url
        if item.get("headers"):
            entry["headers"] = {str(key): str(value) for key, value in item["headers"].items()}
        if entry:
            secrets[str(item["name"])] = entry
    return secrets


# The thresholds drift_health_thresholds may set (their defaults are in the health role's specs).
HEALTH_THRESHOLDS = (
    "disk_percent",
    "inode_percent",
    "memory_percent",
    "swap_percent",
    "load_per_cpu",
    "restarts",
    "clock_sync",
    "error_rate_percent",
    "error_rate_per_hour",
)


def _health_items(items, variable, fields):
    """{name, ...fields} items of a health list, names unique."""
    names = set()
    normalised = []
    for index, item in enumerate(items or []):
        if not isinstance(item, dict) or not item.get("name") or not all(item.get(field) for field in fields):
            raise RequestError("%s item %d needs a name and %s" % (variable, index + 1, " and ".join(fields)))
        if item["name"] in names:
            raise RequestError("%s names must be unique: %s appears twice" % (variable, item["name"]))
        names.add(item["name"])
        normalised.append({"name": str(item["name"]), **{field: str(item[field]) for field in fields}})
    return normalised


def health_request(params):
    """The health area's request, or None when the host lists no filesystem, stack or log file."""
    paths, stacks, logs = params["drift_health_paths"], params["drift_health_stacks"], params["drift_log_files"]
    if not paths and not stacks and not logs:
        return None
    log_files = _health_items(logs, "drift_log_files", ("path",))
    for entry, item in zip(log_files, logs, strict=True):
        entry["pattern"] = str(item["pattern"]) if item.get("pattern") else None
    port_range = str(params["drift_health_port_range"])
    low, _, high = port_range.partition("-")
    if not (low.isdigit() and (high or low).isdigit() and 1 <= int(low) <= int(high or low) <= 65535):
        raise RequestError("drift_health_port_range must be a range of ports such as 1-65535 or 8000-8999")
    thresholds = dict(params["drift_health_thresholds"] or {})
    unknown = sorted(set(thresholds) - set(HEALTH_THRESHOLDS))
    if unknown:
        raise RequestError(
            "drift_health_thresholds names %s; known: %s" % (", ".join(unknown), ", ".join(HEALTH_THRESHOLDS))
        )
    not_numbers = sorted(name for name, value in thresholds.items() if not isinstance(value, (int, float)))
    if not_numbers:
        raise RequestError(
            "drift_health_thresholds: %s must be numbers (clock_sync: true or false)" % ", ".join(not_numbers)
        )
    return {
        "project_dir": params.get("drift_project_dir") or None,
        "paths": _health_items(paths, "drift_health_paths", ("path",)),
        "stacks": _health_items(stacks, "drift_health_stacks", ("project",)),
        "log_files": log_files,
        "cron_paths": [str(path) for path in params["drift_health_cron_paths"]],
        "docker_host": _docker_host(params),
        "timeout": int(params["drift_health_timeout"]),
        "concurrency": int(params["drift_health_concurrency"]),
        "log_window": int(params["drift_health_log_window"]),
        "log_max_lines": int(params["drift_health_log_max_lines"]),
        "log_max_bytes": int(params["drift_health_log_max_bytes"]),
        "thresholds": thresholds,
        "expected_ports": [int(port) for port in params["drift_health_expected_ports"]],
        "port_loopback": bool(params["drift_health_port_loopback"]),
        "port_range": port_range,
        "known_projects": [str(pattern) for pattern in params["drift_health_known_projects"]],
    }


def deps_request(params):
    """The deps area's request, or None when no Python environment, Node project or compose stack
    (whose running containers are read) is configured."""
    skipped = {str(name) for name in params["drift_deps_skip_stacks"] or []}
    python_envs = _named_items(params["drift_python_envs"], "drift_python_envs", (("declared", []), ("lock", None)))
    node_projects = _named_items(params["drift_node_projects"], "drift_node_projects")
    container_node_projects = _named_items(
        params["drift_deps_container_node_projects"], "drift_deps_container_node_projects"
    )
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
        "container_node_projects": container_node_projects,
        "stacks": stacks,
        "docker_host": _docker_host(params),
        "os_root": str(params["drift_deps_os_root"]),
    }
    for field in ("max_dists", "max_file_bytes", "max_output_bytes", "timeout"):
        request[field] = int(params["drift_deps_" + field])
    return request
