"""Parse the declared and locked files of a Python environment (their text comes from the host,
URL passwords already masked there): requirements files, pyproject.toml (PEP 621 and Poetry),
poetry.lock, Pipfile.lock, uv.lock and pylock.toml (PEP 751).

Versions and specifiers are `packaging`'s; TOML is the standard library's tomllib. Every parser
takes text and returns data or raises DeclaredError with a sentence naming the file (never a value
read from it). Pure Python; no Ansible imports.
"""

import json
import posixpath
import re
import tomllib

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_OPTION = re.compile(r"^\s*-")
_EDITABLE = re.compile(r"^\s*(?:-e|--editable)(?:\s+|=)(\S+)")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")
_POETRY_CARET = re.compile(r"^\^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_POETRY_TILDE = re.compile(r"^~\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


class DeclaredError(ValueError):
    """A declared or lock file that cannot be parsed; str() says which and why."""


def version(text):
    """A packaging Version, or None when the text is not a PEP 440 version."""
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


def _logical_lines(text):
    """Lines with comments removed and backslash continuations joined (pip's own rules)."""
    joined, pending = [], ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append((pending + line).strip())
        pending = ""
    if pending.strip():
        joined.append(pending.strip())
    return [line for line in joined if line]


def parse_requirements(text):
    """({canonical name: {"spec", "editable", "url"}}, [lines that are no requirement]) of a
    requirements file; options (-r, -c, --hash, --index-url) carry no requirement themselves."""
    found, unparsed = {}, []
    for line in _logical_lines(text):
        editable = _EDITABLE.match(line)
        if editable:
            egg = _EGG.search(editable.group(1))
            if egg:
                found[canonicalize_name(egg.group(1))] = {"spec": "", "editable": True, "url": editable.group(1)}
            continue
        if _OPTION.match(line):
            continue
        requirement_text = re.split(r"\s+--", line, maxsplit=1)[0]
        try:
            requirement = Requirement(requirement_text)
        except InvalidRequirement:
            unparsed.append(line)
            continue
        found[canonicalize_name(requirement.name)] = {
            "spec": str(requirement.specifier),
            "editable": False,
            "url": requirement.url,
            "marker": str(requirement.marker) if requirement.marker else None,
        }
    return found, unparsed


def _toml(text, what):
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        raise DeclaredError("%s is not valid TOML" % what) from None


def _poetry_spec(value):
    """A Poetry constraint (^1.2, ~1.2, 1.2.*, >=1,<2) as a PEP 440 specifier string."""
    if isinstance(value, dict):
        value = value.get("version", "")
    if not isinstance(value, str):
        return ""
    value = value.strip()
    if value in ("", "*"):
        return ""
    caret = _POETRY_CARET.match(value)
    if caret:
        parts = [int(part) if part else 0 for part in caret.groups()]
        given = [part for part in caret.groups() if part is not None]
        index = next((i for i, part in enumerate(parts[: len(given)]) if part), len(given) - 1)
        upper = parts[: index + 1]
        upper[-1] += 1
        return ">=%s,<%s" % (".".join(given), ".".join(map(str, upper)))
    tilde = _POETRY_TILDE.match(value)
    if tilde:
        given = [part for part in tilde.groups() if part is not None]
        upper = [int(part) for part in given[:2]] if len(given) > 1 else [int(given[0])]
        upper[-1] += 1
        return ">=%s,<%s" % (".".join(given), ".".join(map(str, upper)))
    if re.match(r"^\d", value):
        return "==" + value
    return value


def parse_pyproject(text):
    """{canonical name: {"spec", ...}} of PEP 621 dependencies and Poetry's dependencies."""
    data = _toml(text, "pyproject.toml")
    found = {}
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    for item in project.get("dependencies") or []:
        try:
            requirement = Requirement(item)
        except (InvalidRequirement, TypeError):
            raise DeclaredError("pyproject.toml lists a dependency that is not a PEP 508 requirement") from None
        found[canonicalize_name(requirement.name)] = {
            "spec": str(requirement.specifier),
            "editable": False,
            "url": requirement.url,
            "marker": str(requirement.marker) if requirement.marker else None,
        }
    poetry = ((data.get("tool") or {}).get("poetry") or {}) if isinstance(data.get("tool"), dict) else {}
    for name, value in (poetry.get("dependencies") or {}).items():
        if name.lower() == "python":
            continue
        found.setdefault(canonicalize_name(name), {"spec": _poetry_spec(value), "editable": False, "url": None})
    return found


def _lock_packages(entries, what):
    if not isinstance(entries, list):
        raise DeclaredError("%s has no package list" % what)
    found = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            found[canonicalize_name(entry["name"])] = str(entry.get("version") or "")
    return found


def parse_lock(path, text):
    """{canonical name: version} of a lock file, by its name: poetry.lock, uv.lock, pylock*.toml,
    Pipfile.lock, or a requirements-style file of == pins (pip-compile, pip freeze)."""
    name = posixpath.basename(path.replace("\\", "/"))
    if name in ("poetry.lock", "uv.lock"):
        return _lock_packages(_toml(text, name).get("package"), name)
    if name.startswith("pylock") and name.endswith(".toml"):
        return _lock_packages(_toml(text, name).get("packages"), name)
    if name == "Pipfile.lock":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise DeclaredError("Pipfile.lock is not valid JSON") from None
        if not isinstance(data, dict):
            raise DeclaredError("Pipfile.lock is not a JSON object")
        found = {}
        for section in ("default", "develop"):
            for package, entry in (data.get(section) or {}).items():
                pinned = entry.get("version", "") if isinstance(entry, dict) else ""
                found[canonicalize_name(package)] = pinned[2:] if pinned.startswith("==") else pinned
        return found
    requirements, _ = parse_requirements(text)
    return {
        package: entry["spec"][2:] if entry["spec"].startswith("==") and "," not in entry["spec"] else entry["spec"]
        for package, entry in requirements.items()
    }


def declared_requirements(entries):
    """(merged {name: entry}, [problems]) of the declared files a host read, in order."""
    merged, problems = {}, []
    for entry in entries or []:
        if entry.get("status") != "ok":
            problems.append("%s: %s" % (entry.get("path"), entry.get("reason") or entry.get("status")))
            continue
        path = entry["path"]
        try:
            if path.endswith("pyproject.toml"):
                parsed = parse_pyproject(entry["text"])
            else:
                parsed, unparsed = parse_requirements(entry["text"])
                if unparsed:
                    problems.append("%s: %d line(s) are no requirement" % (path, len(unparsed)))
        except DeclaredError as exc:
            problems.append("%s: %s" % (path, exc))
            continue
        for name, requirement in parsed.items():
            merged.setdefault(name, requirement)
    return merged, problems


def locked_versions(entries):
    """({name: version}, problem or None) of a lock file as the host read it (first entry; a
    requirements-style lock's includes follow)."""
    if not entries:
        return None, None
    found = {}
    for entry in entries:
        if entry.get("status") != "ok":
            return None, "%s: %s" % (entry.get("path"), entry.get("reason") or entry.get("status"))
        try:
            for name, pinned in parse_lock(entry["path"], entry["text"]).items():
                found.setdefault(name, pinned)
        except DeclaredError as exc:
            return None, "%s: %s" % (entry["path"], exc)
    return found, None


def satisfies(installed, spec):
    """True / False whether a version meets a specifier string; None when either cannot be read."""
    parsed = version(installed)
    if parsed is None:
        return None
    try:
        return SpecifierSet(spec or "").contains(parsed, prereleases=True)
    except InvalidSpecifier:
        return None
