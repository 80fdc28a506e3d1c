"""npm's semver ranges (package.json dependencies) against locked and installed versions.

The semantics of node-semver 7 (what npm uses) without options (no loose parsing, no
includePrerelease): ``^`` ``~`` ``~>``, the comparators ``< <= > >= =``, x-ranges (``*``, ``x``,
``X``, partial versions), hyphen ranges ``A - B``, space-separated intersections and ``||``
unions; a pre-release version satisfies a comparator set only when a comparator of that set names
the same major.minor.patch with a pre-release. Differentially tested against npm's own semver
package (tests/unit/plugins/plugin_utils/test_deps_semver.py).

``satisfies(version, range)`` is True / False, or None when the range is no semver range (a tag
like ``latest``, ``file:``, ``git+…``, ``npm:`` aliases, URLs, ``workspace:``) or the version is
not a valid semver: nothing is said then. Pure Python.
"""

import re

MAX_RANGE = 1024
_NUMBER = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*)"
_VERSION = re.compile(
    r"^v?(%s)\.(%s)\.(%s)(?:-(%s(?:\.%s)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
    % (_NUMBER, _NUMBER, _NUMBER, _PRE_ID, _PRE_ID)
)
_XR = r"(?:%s|[xX*])" % _NUMBER
_PARTIAL = re.compile(
    r"^v?(%s)(?:\.(%s)(?:\.(%s)(?:-?(%s(?:\.%s)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?$"
    % (_XR, _XR, _XR, _PRE_ID, _PRE_ID)
)
_OPERATOR = re.compile(r"^(\^|~>?|<=|>=|<|>|=)?\s*(.*)$")
_HYPHEN = re.compile(r"^\s*(\S+)\s+-\s+(\S+)\s*$")


class Version:
    """A semver version: (major, minor, patch) and its pre-release identifiers, ordered as semver
    orders them (a pre-release is lower than its release; numeric identifiers below alphanumeric)."""

    __slots__ = ("release", "pre")

    def __init__(self, release, pre=()):
        self.release = tuple(release)
        self.pre = tuple(pre)

    def key(self):
        pre = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.pre)
        return self.release, (0, pre) if self.pre else (1, ())

    def __lt__(self, other):
        return self.key() < other.key()

    def __le__(self, other):
        return self.key() <= other.key()

    def __eq__(self, other):
        return isinstance(other, Version) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())


def parse_version(text):
    """A Version of a strict semver string (a leading v allowed, surrounding blanks dropped), or None."""
    match = _VERSION.match((text or "").strip()) if isinstance(text, str) and len(text) <= 256 else None
    if not match:
        return None
    return Version((int(match.group(1)), int(match.group(2)), int(match.group(3))), _identifiers(match.group(4)))


def _identifiers(text):
    return tuple(text.split(".")) if text else ()


def _is_x(part):
    return part is None or part in ("x", "X", "*")


def _low(major, minor, patch, pre):
    """The lowest version a partial names (its x parts at 0)."""
    return Version((int(major), 0 if _is_x(minor) else int(minor), 0 if _is_x(patch) else int(patch)), pre)


def _next(parts):
    """The version just above every version a partial names: 1 → 2.0.0-0, 1.2 → 1.3.0-0."""
    major, minor, _ = parts
    if _is_x(minor):
        return Version((int(major) + 1, 0, 0), ("0",))
    return Version((int(major), int(minor) + 1, 0), ("0",))


def _partial(text, ordered=False):
    """(major, minor, patch, pre) of a partial version (x / X / * or missing parts), or ValueError.
    ordered: a number after an x part is refused (npm refuses 2.x.3 as a plain comparator, not
    after ^ or ~ or in a hyphen range, where the parts after an x are ignored)."""
    match = _PARTIAL.match(text)
    if not match:
        raise ValueError(text)
    major, minor, patch, pre = match.groups()
    parts = [major, minor, patch]
    if ordered and any(
        _is_x(part) and not _is_x(later) for index, part in enumerate(parts) for later in parts[index + 1 :]
    ):
        raise ValueError(text)
    if _is_x(major):
        return None, None, None, ()
    if _is_x(minor):
        return major, None, None, ()
    if _is_x(patch):
        return major, minor, None, ()
    return major, minor, patch, _identifiers(pre)


def _comparators(operator, text):
    """[(op, Version)] of one comparator, desugared as node-semver does."""
    major, minor, patch, pre = _partial(text, ordered=operator not in ("^", "~", "~>"))
    if major is None:  # *, x: any version (with an operator: < and > match none)
        return [("<", Version((0, 0, 0), ("0",)))] if operator in ("<", ">") else []
    full = patch is not None
    low = _low(major, minor, patch, pre)
    parts = (major, minor, patch)
    if operator == "^":
        if int(major) > 0 or _is_x(minor):
            high = Version((int(major) + 1, 0, 0), ("0",))
        elif int(minor) > 0 or _is_x(patch):
            high = Version((0, int(minor) + 1, 0), ("0",))
        else:
            high = Version((0, 0, int(patch) + 1), ("0",))
        return [(">=", low), ("<", high)]
    if operator in ("~", "~>"):
        return [(">=", low), ("<", _next((major, minor if not _is_x(minor) else None, None)))]
    if full:
        return [(operator or "=", low)]
    if operator in ("", "="):
        return [(">=", low), ("<", _next(parts))]
    if operator == ">":
        return [(">=", Version(_next(parts).release))]
    if operator == "<=":
        return [("<", _next(parts))]
    if operator == "<":
        return [("<", Version(low.release, ("0",)))]
    return [(">=", low)]  # >=


def _hyphen(first, second):
    low_major, low_minor, low_patch, low_pre = _partial(first)
    high_major, high_minor, high_patch, high_pre = _partial(second)
    found = [] if low_major is None else [(">=", _low(low_major, low_minor, low_patch, low_pre))]
    if high_major is None:
        return found
    if high_patch is not None:
        return found + [("<=", Version((int(high_major), int(high_minor), int(high_patch)), high_pre))]
    return found + [("<", _next((high_major, high_minor, None)))]


def _comparator_set(text):
    hyphen = _HYPHEN.match(text)
    if hyphen:
        return _hyphen(hyphen.group(1), hyphen.group(2))
    # an operator may stand apart from its version: ">= 1.2.3", "~ 1.2", "^ 1"
    text = re.sub(r"(\^|~>?|<=|>=|<|>|=)\s+", r"\1", text.strip())
    found = []
    for token in text.split():
        operator, rest = _OPERATOR.match(token).groups()
        found += _comparators(operator or "", rest)
    return found


def parse_range(text):
    """[[(op, Version)]] (a union of intersections), or None when text is no semver range."""
    if not isinstance(text, str) or len(text) > MAX_RANGE:
        return None
    try:
        return [_comparator_set(part) for part in text.split("||")]
    except ValueError:
        return None


def _holds(operator, bound, version):
    if operator == "=":
        return version == bound
    if operator == "<":
        return version < bound
    if operator == "<=":
        return version <= bound
    if operator == ">":
        return bound < version
    return bound <= version  # >=


def _set_holds(comparators, version):
    if not all(_holds(operator, bound, version) for operator, bound in comparators):
        return False
    if not version.pre:
        return True
    # a pre-release only where a comparator names the same release with a pre-release
    return any(bound.pre and bound.release == version.release for _, bound in comparators)


def satisfies(version_text, range_text):
    """Whether the version is in the range (npm's semantics); None when either is not semver."""
    version = parse_version(version_text)
    ranges = parse_range(range_text)
    if version is None or ranges is None:
        return None
    return any(_set_holds(comparators, version) for comparators in ranges)
