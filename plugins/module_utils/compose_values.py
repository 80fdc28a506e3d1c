"""Compose's forms of scalar service attributes, so that two spellings Compose runs the same read the same.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Each function gives the text ``docker compose config`` prints for a value as
written (after interpolation), or the value unchanged when Compose would
refuse it (the stack then fails under Compose anyway):

* command_words: a command or entrypoint written as a string is split as
  compose-go splits it (go-shellwords, without environment or backtick
  expansion): quotes and backslashes as in a shell, and the words end at the
  first unquoted ``;``, ``&``, ``|``, ``<`` or ``>``;
* duration_text: a Go duration as Go prints it (``90s`` is ``1m30s``);
* memory_text: a memory size in bytes, binary units (``512m`` is
  ``536870912``), as docker/go-units reads it;
* cpus_text: a CPU count as the float32 Compose keeps (``0.50`` is ``0.5``);
* flag_text: a boolean as Compose accepts one (``yes``, ``on``, ``y``,
  ``true`` in any case are ``true``; ``no``, ``off``, ``n``, ``false`` are
  unset, as Compose omits a false flag).
"""

import re
import struct

from ansible_collections.envparity.audit.plugins.module_utils.compose_load import go_float_text

_SPACES = frozenset(" \t\r\n")
_OPERATORS = frozenset(";&|<>")
_TRUE = frozenset(("y", "yes", "true", "on"))
_FALSE = frozenset(("n", "no", "false", "off"))
_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)*) ?([kKmMgGtTpP])?[iI]?[bB]?\Z")
_MEMORY_UNITS = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_NANOSECONDS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


class _State:
    """go-shellwords' quoting state while a command line is read."""

    def __init__(self):
        self.single = self.double = self.back = self.dollar = False

    def quoted(self):
        return self.single or self.double or self.back or self.dollar


def _shell_words(line):
    """go-shellwords' Parse of line: the words, or None where it fails ("invalid command line")."""
    words = []
    word = []
    got = False  # a word has started (possibly empty, from quotes)
    escaped = False
    state = _State()
    for char in line:
        if escaped:
            word.append(char)
            escaped, got = False, True
            continue
        if char == "\\":
            if state.single:
                word.append(char)
            else:
                escaped = True
            continue
        if char in _SPACES:
            if state.quoted():
                word.append(char)
            elif got:
                words.append("".join(word))
                word, got = [], False
            continue
        if char == "`" and not (state.single or state.double or state.dollar):
            state.back = not state.back
        elif char == ")" and not (state.single or state.double or state.back):
            state.dollar = not state.dollar
        elif char == "(" and not (state.single or state.double or state.back):
            if state.dollar or not word or word[-1] != "$":
                return None
            state.dollar = True
        elif char == '"' and not (state.single or state.dollar):
            state.double = not state.double
            got = True
            continue
        elif char == "'" and not (state.double or state.dollar):
            state.single = not state.single
            got = True
            continue
        elif char in _OPERATORS and not state.quoted():
            if char == ">" and word and "0" <= word[0] <= "9":
                # "2>&1": the file descriptor is not a word.
                got = False
            break
        word.append(char)
        got = True
    if escaped or state.quoted():
        return None
    if got:
        words.append("".join(word))
    return words


def command_words(value):
    """A command or entrypoint as Compose keeps it: a list of words (a string split)."""
    if not isinstance(value, str):
        return value
    words = _shell_words(value)
    return value if words is None else words


def _duration_nanoseconds(text):
    if text in ("0", "+0", "-0"):
        return 0
    sign = -1 if text.startswith("-") else 1
    rest = text.lstrip("+-") if text[:1] in "+-" else text
    if not rest:
        return None
    total = 0
    pos = 0
    while pos < len(rest):
        match = _DURATION.match(rest, pos)
        if not match or match.group(1) in ("", "."):
            return None
        number, unit = match.groups()
        whole, _, fraction = number.partition(".")
        scale = _NANOSECONDS[unit]
        total += int(whole or "0") * scale + (int(fraction) * scale // 10 ** len(fraction) if fraction else 0)
        pos = match.end()
    return sign * total


def _fraction(value, digits):
    """value / 10**digits as Go's Duration.String writes it (trailing zeros dropped)."""
    whole, rest = divmod(value, 10**digits)
    rest = ("%0*d" % (digits, rest)).rstrip("0")
    return "%d%s" % (whole, "." + rest if rest else "")


def duration_text(value):
    """A Go duration ("90s", "1h", "1.5m") as Go prints it ("1m30s", "1h0m0s", "1m30s")."""
    if not isinstance(value, str):
        return value
    total = _duration_nanoseconds(value)
    if total is None:
        return value
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 10**3:
        return "%s%dns" % (sign, total)
    if total < 10**6:
        return "%s%s\u00b5s" % (sign, _fraction(total, 3))
    if total < 10**9:
        return "%s%sms" % (sign, _fraction(total, 6))
    minutes, nanoseconds = divmod(total, 60 * 10**9)
    hours, minutes = divmod(minutes, 60)
    seconds = _fraction(nanoseconds, 9) + "s"
    if hours:
        return "%s%dh%dm%s" % (sign, hours, minutes, seconds)
    if minutes:
        return "%s%dm%s" % (sign, minutes, seconds)
    return sign + seconds


def memory_text(value):
    """A memory size as Compose prints it: bytes ("512m" is "536870912")."""
    if not isinstance(value, str):
        return value
    match = _MEMORY.match(value)
    if not match:
        return value
    try:
        size = float(match.group(1))
    except ValueError:
        return value
    unit = match.group(2).lower() if match.group(2) else None
    return "%d" % int(size * _MEMORY_UNITS[unit])


def _float32(value):
    return struct.unpack("f", struct.pack("f", value))[0]


def cpus_text(value):
    """A CPU count as Compose prints it: the float32 it keeps, shortest digits ("0.50" is "0.5")."""
    if not isinstance(value, str):
        return value
    try:
        single = _float32(float(value))
    except (ValueError, OverflowError):
        return value
    for precision in range(1, 10):
        text = "%.*g" % (precision, single)
        if _float32(float(text)) == single:
            return go_float_text(float(text))
    return value


def flag_text(value):
    """A boolean as Compose keeps it: "true", or None for false (Compose omits a false flag)."""
    if not isinstance(value, str):
        return value
    if value.lower() in _TRUE:
        return "true"
    if value.lower() in _FALSE:
        return None
    return value
