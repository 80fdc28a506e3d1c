"""Read a Node project's declared, locked and installed packages, bounded.

Standard library only, Python 3.8+: this module runs on the audited hosts.

- declared: package.json's dependencies, devDependencies and optionalDependencies (name: range);
- locked: package-lock.json (or npm-shrinkwrap.json), lockfileVersion 1 (the nested
  "dependencies" tree), 2 and 3 (the flat "packages" map keyed by install path);
- installed: node_modules/<name>/package.json and node_modules/@scope/<name>/package.json, the
  top level only (what `require(name)` finds from the project).

Packages are keyed by their install path below the project with each "node_modules/" dropped and
nested levels joined by " > " ("debug", "express > debug"), so that a hoisted copy and a nested one
stay apart. Files are read up to max_bytes; JSON errors are a status, never a traceback.

Node's own version is never asked of the node binary (no program the host chooses runs): a
project's is what it declares (.nvmrc or .node-version, the files nvm, fnm and Volta read, else
package.json's engines.node); an installation's is read from the node_version.h header it ships
(the official images and the distributions' packages install it under include/node).
"""

import json
import os
import re

from ansible_collections.envparity.audit.plugins.module_utils.deps_python import clean, mask_url, read_bounded

MAX_PACKAGES = 20000
LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json")
DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies")
VERSION_FILES = (".nvmrc", ".node-version")
NODE_HEADERS = ("usr/local/include/node/node_version.h", "usr/include/node/node_version.h")
_HEADER_FIELD = re.compile(r"^#define[ \t]+NODE_(MAJOR|MINOR|PATCH)_VERSION[ \t]+(\d{1,6})[ \t]*$", re.M)


class NodeError(Exception):
    def __init__(self, status, reason):
        super().__init__(status)
        self.status = status
        self.reason = reason


def read_json(path, max_bytes):
    """The decoded JSON of a file, or NodeError (missing, too_large, invalid)."""
    try:
        data, truncated = read_bounded(path, max_bytes)
    except FileNotFoundError:
        raise NodeError("missing", "%s does not exist." % os.path.basename(path)) from None
    except OSError as exc:
        raise NodeError("unreadable", "%s cannot be read (%s)." % (os.path.basename(path), exc.strerror)) from None
    if truncated:
        raise NodeError("too_large", "%s is larger than %d bytes." % (os.path.basename(path), max_bytes))
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        raise NodeError("invalid", "%s is not valid JSON." % os.path.basename(path)) from None


def _text(value):
    return clean(mask_url(value)) if isinstance(value, str) else None


def declared(manifest):
    """{name: {"range", "dev"}} from package.json."""
    found = {}
    for field in DEPENDENCY_FIELDS:
        section = manifest.get(field) if isinstance(manifest, dict) else None
        if not isinstance(section, dict):
            continue
        for name, spec in list(section.items())[:MAX_PACKAGES]:
            if isinstance(name, str) and name and name not in found:
                found[clean(name)] = {"range": _text(spec) or "", "dev": field == "devDependencies"}
    return found


def _lock_key(path):
    """ "node_modules/a/node_modules/@s/b" -> "a > @s/b"; "" (the project) -> None."""
    parts = [part for part in path.split("node_modules/") if part]
    return " > ".join(clean(part.strip("/")) for part in parts) if parts else None


def locked(lock):
    """(lockfileVersion, {key: {"version", "dev"}}, truncated) of a package-lock."""
    if not isinstance(lock, dict):
        raise NodeError("invalid", "The lockfile is not a JSON object.")
    version = lock.get("lockfileVersion")
    version = version if isinstance(version, int) and not isinstance(version, bool) else None
    found = {}
    truncated = False
    packages = lock.get("packages")
    if isinstance(packages, dict) and packages:
        for path, entry in packages.items():
            if len(found) >= MAX_PACKAGES:
                truncated = True
                break
            key = _lock_key(path) if isinstance(path, str) and "node_modules/" in path else None
            if key and isinstance(entry, dict) and not entry.get("link"):
                found[key] = {"version": _text(entry.get("version")) or "", "dev": bool(entry.get("dev"))}
        return version, found, truncated
    stack = [("", lock.get("dependencies"))]
    while stack:
        parent, tree = stack.pop()
        if not isinstance(tree, dict):
            continue
        for name, entry in tree.items():
            if len(found) >= MAX_PACKAGES:
                return version, found, True
            if not isinstance(name, str) or not isinstance(entry, dict):
                continue
            key = "%s > %s" % (parent, clean(name)) if parent else clean(name)
            found[key] = {"version": _text(entry.get("version")) or "", "dev": bool(entry.get("dev"))}
            if parent.count(" > ") < 20:
                stack.append((key, entry.get("dependencies")))
    return version, found, truncated


def installed(modules_dir, max_bytes):
    """({name: version} of node_modules' top level, broken names, truncated)."""
    found, broken = {}, []
    try:
        names = sorted(os.listdir(modules_dir))
    except OSError:
        return None, [], False
    candidates = []
    for name in names:
        if name.startswith("."):
            continue
        if name.startswith("@"):
            try:
                candidates += ["%s/%s" % (name, sub) for sub in sorted(os.listdir(os.path.join(modules_dir, name)))]
            except OSError:
                broken.append(clean(name))
        else:
            candidates.append(name)
    truncated = len(candidates) > MAX_PACKAGES
    for name in candidates[:MAX_PACKAGES]:
        try:
            manifest = read_json(os.path.join(modules_dir, name, "package.json"), max_bytes)
        except NodeError:
            broken.append(clean(name))
            continue
        version = manifest.get("version") if isinstance(manifest, dict) else None
        found[clean(name)] = _text(version) or ""
    return found, broken[:50], truncated


def declared_runtime(path, manifest):
    """{"version", "source"} of the Node version a project declares, or None."""
    for name in VERSION_FILES:
        try:
            data, _ = read_bounded(os.path.join(path, name), 4096)
        except OSError:
            continue
        lines = data.decode("utf-8", "replace").strip().splitlines()
        if lines and lines[0].strip():
            return {"version": clean(lines[0].strip(), 100), "source": name}
    engines = manifest.get("engines") if isinstance(manifest, dict) else None
    if isinstance(engines, dict) and isinstance(engines.get("node"), str):
        return {"version": clean(engines["node"], 100), "source": "package.json engines"}
    return None


def installed_runtime(root):
    """The version of the Node installed under root, from its node_version.h header, or None."""
    for relative in NODE_HEADERS:
        try:
            data, _ = read_bounded(os.path.join(root, relative), 65536)
        except OSError:
            continue
        fields = dict(_HEADER_FIELD.findall(data.decode("utf-8", "replace")))
        if len(fields) == 3:
            return "%s.%s.%s" % (int(fields["MAJOR"]), int(fields["MINOR"]), int(fields["PATCH"]))
    return None


def read_project(path, max_bytes):
    """The facts of one Node project directory."""
    if not os.path.isdir(path):
        return {"status": "missing", "reason": "The project directory does not exist."}
    record = {"status": "ok", "reason": None, "problems": []}
    manifest = None
    try:
        manifest = read_json(os.path.join(path, "package.json"), max_bytes)
        record["declared"] = declared(manifest)
    except NodeError as problem:
        record["declared"] = None
        record["problems"].append(problem.reason)
    record["runtime"] = declared_runtime(path, manifest)
    record["lock_version"], record["locked"], record["lock_truncated"] = None, None, False
    for name in LOCK_FILES:
        lock_path = os.path.join(path, name)
        if not os.path.exists(lock_path):
            continue
        try:
            record["lock_version"], record["locked"], record["lock_truncated"] = locked(read_json(lock_path, max_bytes))
        except NodeError as problem:
            record["problems"].append(problem.reason)
        record["lock_file"] = name
        break
    record["installed"], record["broken"], record["installed_truncated"] = installed(
        os.path.join(path, "node_modules"), max_bytes
    )
    return record
