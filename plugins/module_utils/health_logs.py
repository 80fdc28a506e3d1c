"""Log lines reduced, on the host, to counts per level and error templates.

Standard library only, Python 3.8+: this module runs on the audited hosts.

No log text with data leaves the host: an error line becomes a template in which time stamps, numbers, hex ids,
UUIDs, quoted strings, IPs, emails, URLs' passwords, secret-named values (password=..., token:
...), bearer credentials, token-shaped and random-looking words are masked (``<time>``, ``<n>``, ``<hex>``,
``<uuid>``, ``<str>``, ``<ip>``, ``<email>``, ``<secret>``, ``<id>``). Only the templates, their
counts and the counts per level travel; never a raw line.

Everything is bounded: a file is read from its tail only (``max_bytes``), at most ``max_lines``
lines are looked at, a line is cut at MAX_LINE_BYTES before it is decoded (a 1 MB line costs no
more than a short one), invalid UTF-8 and binary garbage are replaced, and at most MAX_TEMPLATES
templates are kept per source (the rest are counted).
"""

import errno
import hashlib
import os
import re
import stat

from ansible_collections.envparity.audit.plugins.module_utils.redact import MASK, is_secret_name, redact_text

# A line longer than this is cut before it is decoded or matched.
MAX_LINE_BYTES = 2048
# Templates kept per source (a log file, a container); the others are counted in other_templates.
MAX_TEMPLATES = 200
# A template longer than this is cut (its id is that of the cut text).
MAX_TEMPLATE_CHARS = 240
LEVELS = ("error", "warning", "info", "debug", "other")
# Line shapes remembered per source with their template.
MAX_KNOWN_SHAPES = 4096

_LEVEL_OF = {
    "FATAL": "error",
    "CRITICAL": "error",
    "CRIT": "error",
    "ERROR": "error",
    "ERR": "error",
    "PANIC": "error",
    "EMERG": "error",
    "ALERT": "error",
    "SEVERE": "error",
    "WARNING": "warning",
    "WARN": "warning",
    "INFO": "info",
    "NOTICE": "info",
    "DEBUG": "debug",
    "TRACE": "debug",
}
# "level=error", "level":"error", severity=WARN (any case); or a bare upper-case level word
# ("2024-01-01 ERROR ...", "[ERROR]"; "E:" is not taken) among the first words of the line.
_KEYED_LEVEL = re.compile(r"""(?i)\b(?:level|lvl|severity|loglevel)["']?\s*[:=]\s*["']?([a-z]+)""")
_LEVEL_SCAN_CHARS = 160
_LEVEL_SCAN_WORDS = 8

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Order matters: the widest shapes first, so that a UUID is not seen as numbers.
_SECRET_PAIR = re.compile(
    r"""(?ix)
    \b([a-z][a-z0-9_.-]{0,40})          # a name ...
    (["']?\s*[:=]\s*["']?)              # ... ": " or "=" ...
    ([^\s"',;&]+)                       # ... and its value
    """
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)([^\s\"',;]+)")
# "password is hunter2", "secret: x", "passphrase x": the word after a secret noun is its value.
_SECRET_NOUN = re.compile(
    r"(?i)(?<![<\w])(passwords?|passwd|passphrase|secrets?|api[_-]?keys?|private[_-]?keys?)(?![>\w])"
    r"((?:\s+(?:is|was))?\s*[:=]?\s*)([^\s\"',;<=:][^\s\"',;<]*)"
)
_QUOTED = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_IPV4 = re.compile(r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?::[0-9]{1,5})?\b")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![0-9A-Za-z:])")
_HEX = re.compile(r"\b(?:0x[0-9a-fA-F]+|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,})\b")
_NUMBER = re.compile(r"(?<![A-Za-z0-9<])[0-9]+(?:[.,][0-9]+)*(?![A-Za-z0-9>])")
# ISO 8601 and syslog time stamps: one placeholder, not six numbers.
_TIMESTAMP = re.compile(
    r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?(?:[.,][0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
    r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"|\b[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?"
)
# A word still holding a digit (user42, req-7f3a…) is data: masked whole.
_WORD = re.compile(r"[A-Za-z0-9_.+/=-]+")
# Runs of hex digits holding a decimal digit (numbers, hex ids): what the shape of a line ignores.
_NUMERIC_RUN = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]*[0-9][0-9a-fA-F]*")
_PLACEHOLDER = re.compile(r"<(?:n|hex|uuid|str|ip|email|secret|id|time)>")
_SPACES = re.compile(r"\s+")


_WORD_EDGES = "[]():|<>,;\"'"
_KEYED_HINTS = ("level", "lvl", "severity")


def level_of(line):
    """error, warning, info, debug or other, from the start of a decoded line.

    Plain string operations first (a regex scan of every line cost 50 µs): a keyed level only
    when the head names one, else the first upper-case level word among the first words."""
    head = line[:_LEVEL_SCAN_CHARS]
    lowered = head.lower()
    if any(hint in lowered for hint in _KEYED_HINTS):
        keyed = _KEYED_LEVEL.search(head)
        if keyed:
            return _LEVEL_OF.get(keyed.group(1).upper(), "other")
    for word in head.split(None, _LEVEL_SCAN_WORDS)[:_LEVEL_SCAN_WORDS]:
        level = _LEVEL_OF.get(word.strip(_WORD_EDGES))
        if level is not None:
            return level
    return "other"


def _mask_secret_pairs(text):
    def replace(match):
        name, sep, value = match.groups()
        if is_secret_name(name) and value:
            return name + sep + "<secret>"
        return match.group()

    return _SECRET_PAIR.sub(replace, text)


def _data_word(match):
    word = match.group()
    return "<id>" if any(char.isdigit() for char in word) else word


def _mask_data_words(text):
    """Words holding digits that the narrower masks left (user42) become <id>; placeholders stay."""
    pieces = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        pieces.append(_WORD.sub(_data_word, text[last : match.start()]))
        pieces.append(match.group())
        last = match.end()
    pieces.append(_WORD.sub(_data_word, text[last:]))
    return "".join(pieces)


def _ipv6(match):
    """An IPv6 address (two colons or more, some hex digit); "::" alone or "a::b" prose stays."""
    found = match.group()
    return "<ip>" if any(char.isalnum() for char in found) else found


def template_of(line):
    """The template of one decoded log line: its data masked, blanks folded, length bounded."""
    text = _CONTROL.sub(" ", _ANSI.sub("", line))
    # redact_text masks URL passwords, secret-named assignments, token-shaped and random words
    # (as ***), or the whole line when it holds a private key.
    text = _TIMESTAMP.sub("<time>", text)
    text = redact_text(text).replace(MASK, "<secret>")
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + "<secret>", text)
    text = _SECRET_NOUN.sub(lambda m: m.group(1) + m.group(2) + "<secret>", text)
    text = _mask_secret_pairs(text)
    text = _QUOTED.sub("<str>", text)
    text = _EMAIL.sub("<email>", text)
    text = _UUID.sub("<uuid>", text)
    text = _IPV4.sub("<ip>", text)
    text = _IPV6.sub(_ipv6, text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    text = _mask_data_words(text)
    text = _SPACES.sub(" ", text).strip()
    return text[:MAX_TEMPLATE_CHARS]


def template_id(template):
    """A short, stable id of a template (the template is already masked: a plain hash)."""
    return hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def decode_line(raw):
    """bytes -> text: cut at MAX_LINE_BYTES, invalid UTF-8 replaced, CR dropped."""
    return raw[:MAX_LINE_BYTES].decode("utf-8", "replace").rstrip("\r")


class LogSummary:
    """Counts per level and error templates of one source, fed line by line."""

    def __init__(self, error_pattern=None):
        self.levels = dict.fromkeys(LEVELS, 0)
        self.templates = {}
        self.other_templates = 0
        self.lines = 0
        self.error_pattern = error_pattern
        # Lines that differ only in runs holding digits (numbers, hex ids: always masked, whatever
        # they hold) give one template: templated once, so a log repeating one error with other
        # numbers costs one masking. The template is the first line's: nothing of the others.
        self._known = {}

    def add(self, raw):
        line = decode_line(raw)
        if not line.strip():
            return
        self.lines += 1
        level = level_of(line)
        if level != "error" and self.error_pattern is not None and self.error_pattern.search(line):
            level = "error"
        self.levels[level] += 1
        if level != "error":
            return
        shape = _NUMERIC_RUN.sub("0", line)
        known = self._known.get(shape)
        if known is None:
            template = template_of(line)
            known = (template, template_id(template))
            if len(self._known) < MAX_KNOWN_SHAPES:
                self._known[shape] = known
        template, ident = known
        entry = self.templates.get(ident)
        if entry is not None:
            entry["count"] += 1
        elif len(self.templates) < MAX_TEMPLATES:
            self.templates[ident] = {"template": template, "count": 1}
        else:
            self.other_templates += 1

    def result(self, **extra):
        result = {
            "status": "ok",
            "reason": None,
            "lines": self.lines,
            "levels": dict(self.levels),
            "templates": {ident: self.templates[ident] for ident in sorted(self.templates)},
            "other_templates": self.other_templates,
        }
        result.update(extra)
        return result


def summarize_lines(lines, error_pattern=None, **extra):
    summary = LogSummary(error_pattern)
    for raw in lines:
        summary.add(raw)
    return summary.result(**extra)


def last_lines(data, max_lines, cut_first):
    """The last max_lines lines of a byte buffer; the first is dropped when the buffer starts
    mid-line (cut_first: it was read from the middle of a file)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if cut_first and lines:
        lines.pop(0)
    return lines[-max_lines:] if max_lines > 0 else []


def compile_pattern(pattern):
    """A log file's error pattern, or None; raises ValueError with a safe reason."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        raise ValueError("its pattern is not a valid regular expression") from None


def failed_source(status, reason):
    return {
        "status": status,
        "reason": reason,
        "lines": 0,
        "levels": dict.fromkeys(LEVELS, 0),
        "templates": {},
        "other_templates": 0,
    }


def read_tail(path, max_bytes):
    """(bytes of the file's last max_bytes, whether the read started mid-file).

    Opened non-blocking (a FIFO named as a log file must not hang the audit) and checked to be a
    regular file before anything is read; raises ValueError with a safe reason or OSError.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a regular file")
        start = max(0, info.st_size - max_bytes)
        os.lseek(fd, start, os.SEEK_SET)
        chunks = []
        left = max_bytes
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), start > 0
    finally:
        os.close(fd)


_OS_REASONS = {
    errno.ENOENT: ("not_found", "the file does not exist"),
    errno.ENOTDIR: ("not_found", "the file does not exist"),
    errno.EACCES: ("permission_denied", "the audit user may not read it"),
    errno.EPERM: ("permission_denied", "the audit user may not read it"),
}


def summarize_file(item, max_bytes, max_lines):
    """One configured log file {name, path, pattern?}: its tail's counts and error templates."""
    try:
        pattern = compile_pattern(item.get("pattern"))
        data, cut = read_tail(item["path"], max_bytes)
    except ValueError as problem:
        return failed_source("failed", "Log file %s: %s." % (item["name"], problem))
    except OSError as exc:
        status, why = _OS_REASONS.get(exc.errno, ("failed", os.strerror(exc.errno) if exc.errno else "read error"))
        return failed_source(status, "Log file %s: %s." % (item["name"], why))
    lines = last_lines(data, max_lines, cut)
    del data
    return summarize_lines(lines, pattern, truncated=cut or len(lines) >= max_lines, span_seconds=None)
