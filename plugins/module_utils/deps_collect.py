"""Collect the deps area on a host: Python environments, Node projects, the Python packages, OS
packages and Node projects inside the running containers of the configured compose stacks, OS
packages and runtime versions.

Standard library only, Python 3.8+: this module runs on the audited hosts. Read-only, and no
program the host chooses runs: metadata files are read directly (deps_python, deps_node, deps_os);
the only command is one ``docker exec <container> python3 -I -S -B -`` per image of a configured
stack's running services (the first replica), which runs this collection's own reader
(deps_container with the modules it uses, on stdin) within ``timeout`` seconds, its output capped
at ``max_output_bytes``.

Declared and locked files (requirements*.txt with their -r/-c includes, pyproject.toml,
poetry.lock, Pipfile.lock, uv.lock, pylock.toml) travel as text, each line that holds a URL with its
password masked here; the controller parses them (plugin_utils/deps_declared.py).
"""

import concurrent.futures
import inspect
import json
import os
import re

from ansible_collections.envparity.audit.plugins.module_utils import deps_container, deps_node, deps_os, deps_python
from ansible_collections.envparity.audit.plugins.module_utils.bounded_run import (
    CommandTimeout,
    OutputTooLarge,
    find_executable,
    run_capped,
)
from ansible_collections.envparity.audit.plugins.module_utils.deps_node import installed_runtime, read_project
from ansible_collections.envparity.audit.plugins.module_utils.deps_os import collect_os, os_release
from ansible_collections.envparity.audit.plugins.module_utils.deps_python import clean, mask_url, read_bounded
from ansible_collections.envparity.audit.plugins.module_utils.env_collect import _resolve

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# The request's settings when a field is missing: the deps role's argument specs (a test holds them equal).
DEFAULTS = {
    "docker_host": DEFAULT_DOCKER_HOST,
    "os_root": "/",
    "max_dists": 5000,
    "max_file_bytes": 16777216,
    "max_output_bytes": 4194304,
    "timeout": 20,
}
MAX_INCLUDES = 20
MAX_INCLUDE_DEPTH = 5
EXEC_WORKERS = 4
DOCKER_FALLBACKS = ("/usr/bin/docker", "/usr/local/bin/docker", "/opt/homebrew/bin/docker")
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)")
_NO_EXECUTABLE = ("executable file not found", "no such file or directory", "not found")
_NOT_RUNNING = ("is not running", "is paused", "is restarting", "no such container")
_CONTAINER_ID = re.compile(r"^[0-9a-f]{12,64}$")
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


def _setting(request, name):
    value = request.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value in ("", 0):
        return DEFAULTS[name]
    return value


# ------------------------------------------------------------------ declared and locked files


def _masked_text(data):
    """File text with every line holding a URL passed through mask_url (tokens in VCS URLs)."""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(mask_url(line) if "://" in line else line for line in lines)


def read_declared(path, project_dir, max_bytes):
    """[{path, status, text | reason}] for a declared or lock file and the files it includes."""
    found, seen = [], set()
    queue = [(path, 0, None)]
    while queue and len(found) < MAX_INCLUDES:
        shown, depth, base = queue.pop(0)
        full = _resolve(shown, base or project_dir)
        if full in seen:
            continue
        seen.add(full)
        entry = {"path": clean(mask_url(shown), 400), "status": "ok", "text": None, "reason": None}
        found.append(entry)
        try:
            data, truncated = read_bounded(full, max_bytes)
        except FileNotFoundError:
            entry.update(status="missing", reason="The file does not exist.")
            continue
        except OSError as exc:
            entry.update(status="unreadable", reason="The file cannot be read (%s)." % (exc.strerror or "error"))
            continue
        if truncated:
            entry.update(status="too_large", reason="The file is larger than %d bytes." % max_bytes)
            continue
        entry["text"] = _masked_text(data)
        if depth < MAX_INCLUDE_DEPTH and not full.endswith((".toml", ".lock", ".json")):
            for line in entry["text"].splitlines():
                match = _INCLUDE.match(line)
                if match:
                    queue.append((match.group(1), depth + 1, os.path.dirname(full)))
    return found


# ------------------------------------------------------------------ Python on the host


def collect_python(item, request):
    path = _resolve(item["path"], request.get("project_dir"))
    record = deps_python.read_environment(path, int(_setting(request, "max_dists")))
    record.setdefault("reason", None)
    max_bytes = int(_setting(request, "max_file_bytes"))
    project_dir = request.get("project_dir")
    record["declared"] = [
        entry for declared in item.get("declared") or [] for entry in read_declared(declared, project_dir, max_bytes)
    ]
    record["lock"] = read_declared(item["lock"], project_dir, max_bytes) if item.get("lock") else None
    return record


# ------------------------------------------------------------------ OS packages and runtimes


def collect_runtimes(root):
    """The OS release and Node (its node_version.h) under root, and the kernel when root is /."""
    runtimes = {"os": os_release(root), "node": installed_runtime(root)}
    if os.path.realpath(root) == "/":
        runtimes["kernel"] = clean(os.uname().release)
    return runtimes


# ------------------------------------------------------------------ containers


READER_MODULES = (deps_python, deps_os, deps_node, deps_container)
_COLLECTION_IMPORT = re.compile(
    r"^from ansible_collections\.envparity\.audit\.plugins\.module_utils\.\w+ import [^(\n]+$", re.M
)


def _reader_script(max_dists, max_bytes, timeout=DEFAULTS["timeout"], node_projects=()):
    """The reader sent into a container: deps_python, deps_os, deps_node and deps_container, their
    collection imports dropped (each module's names are defined by the one before it). Its first
    line arms an alarm: killing the docker client at the timeout does not end the process it
    started in the container, the alarm does."""
    sources = [_COLLECTION_IMPORT.sub("", inspect.getsource(module)) for module in READER_MODULES]
    projects = [(str(item["name"]), str(item["path"])) for item in node_projects]
    return "import signal; signal.alarm(%d)\n%s\nmain(%d, %d, %r)\n" % (
        int(timeout) + 1,
        "\n".join(sources),
        max_dists,
        max_bytes,
        projects,
    )


def _docker_env():
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "TMPDIR")}
    env["LC_ALL"] = "C"
    return env


def exec_reader(docker, docker_host, container, script, timeout, max_output):
    """The facts of one running container (Python, OS packages, Node projects) through one docker
    exec, or a status record."""
    # -I: no environment variables, no user site; -S: no site (no .pth runs); -B: no bytecode
    # written into the container's filesystem.
    argv = [docker, "-H", docker_host, "exec", "-i", container, "python3", "-I", "-S", "-B", "-"]
    try:
        code, out, err = run_capped(argv, _docker_env(), timeout, max_output, stdin_bytes=script.encode("utf-8"))
    except CommandTimeout:
        return {"status": "timeout", "reason": "The docker exec did not finish within %s seconds." % timeout}
    except OutputTooLarge:
        return {"status": "too_large", "reason": "The container's answer is larger than %d bytes." % max_output}
    except OSError as exc:
        return {"status": "failed", "reason": "docker could not be started (%s)." % (exc.strerror or "error")}
    text = err.lower()
    if code != 0:
        if any(marker in text for marker in _NOT_RUNNING):
            return {"status": "not_running", "reason": "The container stopped before or during the exec."}
        if code in (126, 127) or any(marker in text for marker in _NO_EXECUTABLE):
            return {"status": "no_python", "reason": "The container has no python3."}
        return {"status": "failed", "reason": "python3 in the container exited with code %s." % code}
    try:
        facts = json.loads(out.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return {"status": "failed", "reason": "The container's answer is not JSON."}
    if isinstance(facts, dict) and isinstance(facts.get("status"), str) and "python" not in facts:
        return {"status": clean(facts["status"], 40), "reason": clean(str(facts.get("reason") or ""))}
    if not isinstance(facts, dict) or not isinstance(facts.get("python"), dict):
        return {"status": "failed", "reason": "The container's answer has an unexpected shape."}
    return _checked_container_facts(facts)


def _status_record(record, what):
    """A part of the container's answer that is not a record: failed, with why."""
    if isinstance(record, dict) and isinstance(record.get("status"), str):
        return None
    return {"status": "failed", "reason": "The container's %s facts have an unexpected shape." % what}


def _checked_python(facts):
    dists = facts.get("dists") if isinstance(facts.get("dists"), dict) else {}
    cleaned = {}
    for key, record in list(dists.items())[: DEFAULTS["max_dists"]]:
        if not isinstance(record, dict) or not isinstance(key, str):
            continue
        direct = record.get("direct") if isinstance(record.get("direct"), dict) else None
        cleaned[clean(key)] = {
            "name": clean(str(record.get("name") or key)),
            "version": clean(str(record.get("version") or "")),
            "installer": clean(str(record["installer"])) if isinstance(record.get("installer"), str) else None,
            "requested": record.get("requested") is True,
            "direct": {"kind": clean(str(direct.get("kind"))), "url": clean(mask_url(str(direct.get("url"))), 400)}
            if direct
            else None,
            "requires": [
                clean(mask_url(item), 400) for item in (record.get("requires") or [])[:200] if isinstance(item, str)
            ],
        }
    return {
        "status": clean(facts["status"], 40),
        "reason": clean(facts["reason"]) if isinstance(facts.get("reason"), str) else None,
        "python": clean(facts["python"], 40) if isinstance(facts.get("python"), str) else None,
        "dists": cleaned,
        "broken": [clean(item) for item in (facts.get("broken") or [])[:50] if isinstance(item, str)],
        "truncated": facts.get("truncated") is True,
    }


def _text_map(mapping, limit):
    """{clean key: clean text} of at most limit string pairs of a mapping from the container."""
    mapping = mapping if isinstance(mapping, dict) else {}
    return {
        clean(key): clean(mask_url(value))
        for key, value in list(mapping.items())[:limit]
        if isinstance(key, str) and isinstance(value, str)
    }


def _checked_os(facts):
    return {
        "status": clean(facts["status"], 40),
        "reason": clean(facts["reason"]) if isinstance(facts.get("reason"), str) else None,
        "manager": clean(facts["manager"], 20) if isinstance(facts.get("manager"), str) else None,
        "packages": _text_map(facts.get("packages"), deps_os.MAX_OS_PACKAGES),
        "truncated": facts.get("truncated") is True,
        "release": clean(facts["release"]) if isinstance(facts.get("release"), str) else None,
    }


def _checked_node(facts):
    def entries(mapping, fields):
        mapping = mapping if isinstance(mapping, dict) else {}
        return {
            clean(key): {
                "version" if "version" in fields else "range": clean(mask_url(str(value.get(fields[0]) or ""))),
                "dev": value.get("dev") is True,
            }
            for key, value in list(mapping.items())[: deps_node.MAX_PACKAGES]
            if isinstance(key, str) and isinstance(value, dict)
        }

    locked = facts.get("locked")
    runtime = facts.get("runtime") if isinstance(facts.get("runtime"), dict) else {}
    return {
        "runtime": {"version": clean(str(runtime.get("version")), 100), "source": clean(str(runtime.get("source")), 40)}
        if isinstance(runtime.get("version"), str)
        else None,
        "status": clean(facts["status"], 40),
        "reason": clean(facts["reason"]) if isinstance(facts.get("reason"), str) else None,
        "declared": entries(facts.get("declared"), ("range",)) if isinstance(facts.get("declared"), dict) else None,
        "lock_file": clean(facts["lock_file"], 40) if isinstance(facts.get("lock_file"), str) else None,
        "lock_version": facts["lock_version"] if type(facts.get("lock_version")) is int else None,
        "locked": entries(locked, ("version",)) if isinstance(locked, dict) else None,
        "lock_truncated": facts.get("lock_truncated") is True,
        "installed": _text_map(facts.get("installed"), deps_node.MAX_PACKAGES)
        if isinstance(facts.get("installed"), dict)
        else None,
        "installed_truncated": facts.get("installed_truncated") is True,
        "broken": [clean(item) for item in (facts.get("broken") or [])[:50] if isinstance(item, str)],
        "problems": [clean(item) for item in (facts.get("problems") or [])[:20] if isinstance(item, str)],
    }


def _checked_container_facts(facts):
    """The container's answer, with every text cleaned again (it came from inside the container)."""
    python, system = facts.get("python"), facts.get("os")
    node = facts.get("node") if isinstance(facts.get("node"), dict) else {}
    return {
        "status": "ok",
        "python": _status_record(python, "Python") or _checked_python(python),
        "os": _status_record(system, "OS package") or _checked_os(system),
        "node": {
            clean(name): _status_record(record, "Node") or _checked_node(record)
            for name, record in list(node.items())[:50]
            if isinstance(name, str)
        },
        "watch": [clean(item, 400) for item in (facts.get("watch") or [])[:50] if isinstance(item, str)],
    }


def _stack_projects(stacks, request, hmac_key):
    """{stack name: compose project name} through the docker area's compose reader."""
    from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks

    collected = collect_stacks(stacks, request.get("project_dir"), hmac_key, 1048576)
    return {name: stack.get("project") for name, stack in collected.items()}


def _engine_api():
    from ansible_collections.envparity.audit.plugins.module_utils import docker_engine

    return docker_engine


def _engine_view(docker_host, timeout):
    """(engine version, running containers [{id, name, project, service, image, image_id}], images by id)."""
    engine_api = _engine_api()
    session = engine_api.Session(engine_api.socket_path(docker_host), timeout)
    try:
        version = session.get_json("/version", "GET /version", 1048576)
        api = version.get("ApiVersion") if isinstance(version, dict) else None
        if isinstance(api, str) and re.match(r"^[0-9]{1,3}\.[0-9]{1,3}$", api):
            session.prefix = "/v" + api
        summaries = session.get_json("/containers/json", "GET /containers/json", 64 * 1048576)
        running = []
        for summary in summaries if isinstance(summaries, list) else []:
            if not isinstance(summary, dict) or not _CONTAINER_ID.match(str(summary.get("Id"))):
                continue
            labels = summary.get("Labels") if isinstance(summary.get("Labels"), dict) else {}
            running.append(
                {
                    "id": summary["Id"],
                    "name": engine_api.summary_name(summary),
                    "project": labels.get(engine_api.COMPOSE_PROJECT_LABEL),
                    "service": labels.get(engine_api.COMPOSE_SERVICE_LABEL),
                    "compose_version": labels.get("com.docker.compose.version"),
                    "image": summary.get("Image"),
                    "image_id": summary.get("ImageID"),
                }
            )
        images = {}
        for image_id in sorted({item["image_id"] for item in running if isinstance(item["image_id"], str)}):
            if _IMAGE_ID.match(image_id):
                answer = session.get_json("/images/%s/json" % image_id, "GET /images/{id}/json", 8 * 1048576)
                images[image_id] = answer if isinstance(answer, dict) else {}
    finally:
        session.close()
    engine = (
        clean(version["Version"]) if isinstance(version, dict) and isinstance(version.get("Version"), str) else None
    )
    return engine, running, images


def _changed_paths(docker_host, timeout, ident):
    """The paths a container's filesystem changed against its image (GET /containers/{id}/changes),
    or None when the engine could not say (that container is then exec'd)."""
    engine_api = _engine_api()
    try:
        session = engine_api.Session(engine_api.socket_path(docker_host), timeout)
    except Exception:
        return None
    try:
        changes = session.get_json("/containers/%s/changes" % ident, "GET /containers/{id}/changes", 16 * 1048576)
    except Exception:  # gone, or an engine error
        return None
    finally:
        session.close()
    return [item.get("Path") for item in changes or [] if isinstance(item, dict)]


def _same_as_image(first, changes):
    """Whether a container may take the facts read in another container of its image: none of its
    changed paths is in a directory read there (site directories, OS package database, Node
    projects), or is a python in a bin directory."""
    if changes is None or first.get("status") not in ("ok", "no_python"):
        return False
    watched = tuple(path.rstrip("/") + "/" for path in first.get("watch") or [])
    return not any(
        isinstance(path, str)
        and (
            (watched and (path + "/").startswith(watched))
            or (os.path.basename(path).startswith("python") and os.path.dirname(path).endswith("/bin"))
        )
        for path in changes
    )


def shares_facts(first, first_changes, changes):
    """Whether another container of an image may take the facts read in its first container:
    neither one changed a directory read there (the first's facts are the image's only then)."""
    return _same_as_image(first, first_changes) and _same_as_image(first, changes)


def _service_parts(answer):
    """(python, os, node) of a service from its container's answer (or its failure)."""
    if answer.get("status") == "ok":
        return answer["python"], answer["os"], answer["node"]
    reason = answer.get("reason")
    if answer.get("status") == "no_python":
        reason = "The container has no python3: its OS packages and Node projects were not read."
    return answer, {"status": answer.get("status"), "reason": reason}, {}


def _platform(image):
    parts = [image.get(field) for field in ("Os", "Architecture", "Variant")]
    return "/".join(clean(part) for part in parts if isinstance(part, str) and part) or None


def _services(stacks, projects, running, images):
    """{stack: {service: (record, container)}}: the first running container of each service."""
    chosen = {}
    for item in stacks:
        services = chosen.setdefault(item["name"], {})
        for container in sorted(running, key=lambda c: c["name"]):
            project = projects.get(item["name"])
            if not project or container["project"] != project or not isinstance(container["service"], str):
                continue
            service = clean(container["service"])
            if service in services:
                continue  # the first replica speaks for its service
            image = images.get(container["image_id"]) or {}
            digests = image.get("RepoDigests") if isinstance(image.get("RepoDigests"), list) else []
            record = {
                "container": clean(container["name"]),
                "image": clean(str(container["image"] or "")),
                "digest": min((clean(d) for d in digests if isinstance(d, str)), default=None),
                "platform": _platform(image),
            }
            services[service] = (record, container)
    return chosen


def collect_containers(request, hmac_key, runtimes):
    """{stack name: {status, reason, project, services: {service: record}}} for the configured stacks.

    One docker exec per image reads the Python packages, the OS packages and the configured Node
    projects of the first running container of each image; another container of that image takes
    its facts when neither its filesystem nor the first's changed anything in the directories read
    there (GET /containers/{id}/changes), and is exec'd otherwise (someone ran pip or apt in one)."""
    stacks = request.get("stacks") or []
    if not stacks:
        return {}
    docker_host = str(_setting(request, "docker_host"))
    timeout = int(_setting(request, "timeout"))
    max_output = int(_setting(request, "max_output_bytes"))
    try:
        projects = _stack_projects(stacks, request, hmac_key)
        engine, running, images = _engine_view(docker_host, timeout)
    except Exception as exc:  # the engine or the compose files: reported per stack
        reason = getattr(exc, "reason", None) or "%s while listing the stack's containers." % type(exc).__name__
        return {item["name"]: {"status": "failed", "reason": reason, "services": {}} for item in stacks}
    runtimes["docker_engine"] = engine
    compose_versions = sorted({item["compose_version"] for item in running if isinstance(item["compose_version"], str)})
    runtimes["compose"] = clean(", ".join(compose_versions)) if compose_versions else None
    chosen = _services(stacks, projects, running, images)
    selected = [pair for services in chosen.values() for pair in services.values()]
    firsts, others = {}, []
    for record, container in selected:
        if container["image_id"] in firsts:
            others.append((record, container))
        else:
            firsts[container["image_id"]] = (record, container)
    docker = find_executable("docker", DOCKER_FALLBACKS, os.environ.get("PATH") or os.defpath)
    script = _reader_script(
        int(_setting(request, "max_dists")), max_output, timeout, request.get("container_node_projects") or ()
    )

    def read(container):
        if docker is None:
            return {"status": "failed", "reason": "docker is not installed on this host."}
        return exec_reader(docker, docker_host, container["name"], script, timeout, max_output)

    # The first execs and the other containers' change lists are asked at once (two pools): the
    # decision waits for both, neither waits for the other.
    with concurrent.futures.ThreadPoolExecutor(EXEC_WORKERS) as pool, concurrent.futures.ThreadPoolExecutor(
        EXEC_WORKERS
    ) as engine_pool:
        pending = {image_id: pool.submit(read, container) for image_id, (_, container) in firsts.items()}
        shared = {container["image_id"] for _, container in others}
        first_changes = {
            image_id: engine_pool.submit(_changed_paths, docker_host, timeout, firsts[image_id][1]["id"])
            for image_id in shared
        }
        changes = [engine_pool.submit(_changed_paths, docker_host, timeout, container["id"]) for _, container in others]
        first_facts = {image_id: future.result() for image_id, future in pending.items()}
        for image_id, (record, _) in firsts.items():
            record["answer"] = first_facts[image_id]
        again = []
        for (record, container), changed in zip(others, changes):
            first = first_facts[container["image_id"]]
            if shares_facts(first, first_changes[container["image_id"]].result(), changed.result()):
                record["answer"] = first
            else:
                again.append((record, container))
        for (record, _), facts in zip(again, pool.map(read, [container for _, container in again])):
            record["answer"] = facts
    result = {}
    for item in stacks:
        project = projects.get(item["name"])
        services = {}
        for service, (record, _) in chosen[item["name"]].items():
            facts = dict(record)
            facts["python"], facts["os"], facts["node"] = _service_parts(facts.pop("answer"))
            services[service] = facts
        result[item["name"]] = {
            "status": "ok" if project else "failed",
            "reason": None if project else "The stack's compose project name could not be found.",
            "project": project,
            "services": services,
        }
    return result


# ------------------------------------------------------------------ the area


def collect_area(request, hmac_key, secrets=None):
    """The registry's entry: the deps area needs no secret (URL credentials are masked here)."""
    request = request if isinstance(request, dict) else {}
    root = str(_setting(request, "os_root"))
    runtimes = collect_runtimes(root)
    facts = {
        "python": {},
        "node": {},
        "containers": collect_containers(request, hmac_key, runtimes),
        "os": collect_os(root),
        "runtimes": runtimes,
    }
    for item in request.get("python_envs") or []:
        try:
            facts["python"][item["name"]] = collect_python(item, request)
        except Exception as exc:  # one environment must not hide the others
            facts["python"][item["name"]] = {"status": "failed", "reason": "%s while reading it." % type(exc).__name__}
    for item in request.get("node_projects") or []:
        path = _resolve(item["path"], request.get("project_dir"))
        try:
            facts["node"][item["name"]] = read_project(path, int(_setting(request, "max_file_bytes")))
        except Exception as exc:
            facts["node"][item["name"]] = {"status": "failed", "reason": "%s while reading it." % type(exc).__name__}
    return facts
