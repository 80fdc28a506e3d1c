"""The reader run inside a container: its Python environment, its OS packages and its Node
projects, printed as one JSON line.

Standard library only, Python 3.8+. deps_collect sends the source of deps_python, deps_os,
deps_node and this module, concatenated (the collection imports dropped: each module's names are
defined by the one before it), to ``python3 -I -S -B -`` through one docker exec per image; the
first line of that script arms an alarm. ``main`` reads the interpreter's site directories, the
OS package database under / (dpkg, apk or rpm) and each configured Node project directory that
exists, and prints at most ``max_bytes`` (else a too_large mark). ``watch`` lists the directories
read: another container of the same image takes these facts unless its filesystem changed one of
them (GET /containers/{id}/changes).
"""

import json
import os
import sys

from ansible_collections.envparity.audit.plugins.module_utils.deps_node import read_project
from ansible_collections.envparity.audit.plugins.module_utils.deps_os import OS_DIRS, collect_os, os_release
from ansible_collections.envparity.audit.plugins.module_utils.deps_python import running_environment


def _guarded(read, what):
    try:
        return read()
    except Exception as exc:  # reported, never a traceback
        return {"status": "failed", "reason": "%s while reading the %s." % (type(exc).__name__, what)}


def read_container(max_dists, max_bytes, node_projects):
    """{"python", "os", "node": {name: NODE}, "watch": [directories read]} of this container."""
    python = _guarded(lambda: running_environment(max_dists), "Python packages")
    system = _guarded(lambda: collect_os("/"), "OS packages")
    if isinstance(system, dict):
        system["release"] = _guarded(lambda: os_release("/"), "os-release")
    node = {}
    for name, path in node_projects:
        if os.path.isdir(path):
            node[name] = _guarded(lambda path=path: read_project(path, max_bytes), "Node project")
    watch = list(python.get("site_paths") or []) + ["/" + relative for relative in OS_DIRS]
    watch += [path for _, path in node_projects]
    return {"python": python, "os": system, "node": node, "watch": watch}


def main(max_dists, max_bytes, node_projects):
    """Print this container's facts as one JSON line, at most max_bytes (else a too_large mark)."""
    facts = read_container(max_dists, max_bytes, node_projects)
    text = json.dumps(facts, separators=(",", ":"), sort_keys=True)
    if len(text) > max_bytes:
        text = json.dumps({"status": "too_large", "reason": "The package list is larger than the output limit."})
    sys.stdout.write(text)
