"""The real Docker Compose v2, where a host has it: its resolved model of a stack.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Only a binary at a path the audit names (Docker's system-wide CLI plugin directories by default)
is run, and only when it and every directory above it belong to root and nobody else may write
them: a program the audited machine's users could have chosen never runs.  It runs standalone
(not through the ``docker`` CLI, whose config file may name aliases and plugin directories),
as ``config --format json``, which reads the files and starts nothing, with a clean
environment: no variable of the audit's own shell; DOCKER_HOST and DOCKER_CONFIG point at paths
that cannot exist, so that no engine or credential helper is ever reached.  It is bounded in time
and output, and its error text is never shown (it may quote a value).

Secrets.  Compose prints values in clear.  So each variable the stack's env files make secret
(or build from a secret) is handed to Compose as a random placeholder through its environment,
which takes precedence over the env files as Compose reads them; once the model is back, each
placeholder becomes the real value again as a _Tainted string, exactly where Compose put it,
and the built-in reader's redaction applies unchanged.
"""

import binascii
import os
import re
import stat

from ansible_collections.envparity.audit.plugins.module_utils.bounded_run import (
    CommandTimeout,
    OutputTooLarge,
    run_capped,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_hash import _Raw
from ansible_collections.envparity.audit.plugins.module_utils.compose_interpolate import _tainted

# Where Docker's packages install the Compose plugin on Linux (the CLI's system plugin directories).
DEFAULT_COMPOSE_PATHS = (
    "/usr/local/lib/docker/cli-plugins/docker-compose",
    "/usr/local/libexec/docker/cli-plugins/docker-compose",
    "/usr/lib/docker/cli-plugins/docker-compose",
    "/usr/libexec/docker/cli-plugins/docker-compose",
)
# `!reset` and `!override` (2.24.0) are the newest behaviour the built-in reader models; an older
# Compose would read such a stack otherwise, so it is not used.
MIN_VERSION = (2, 24, 0)
READERS = ("auto", "built-in", "compose")
# Paths that cannot exist: `config` needs neither an engine nor the CLI's config file.
NO_ENGINE = "unix:///dev/null/envparity-no-engine"
NO_CONFIG = "/dev/null/envparity-no-config"
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_SHELL_SPECIAL = re.compile(r"[\s'\"\\]")


class ComposeUnusable(Exception):
    """Compose could not give this stack's model; the reason is safe to show (no value)."""


def _trusted(path):
    """Why the file at path may not be run (None when it may): it and every directory above it
    must be root's, written by nobody else, and it a regular executable file."""
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & stat.S_IXUSR:
        return "not an executable file"
    current = path
    while True:
        info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            return "a symbolic link on its path"
        if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return "writable by another user than root"
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _clean_env(extra=None):
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": NO_ENGINE, "DOCKER_CONFIG": NO_CONFIG}
    # `~` in a compose path is the audit user's home, as the built-in reader expands it.
    home = os.environ.get("HOME")
    if home:
        env["HOME"] = home
    env.update(extra or {})
    return env


def parse_version(text):
    """(major, minor, patch) from `docker-compose version --short`, or None."""
    found = _VERSION.search(text or "")
    return tuple(int(part) for part in found.groups()) if found else None


class Compose:
    """The usable Compose of this host, found once per run; None-like when there is none."""

    def __init__(self, path, version, timeout, max_output):
        self.path = path
        self.version = version
        self.timeout = timeout
        self.max_output = max_output

    @property
    def version_text(self):
        return "%d.%d.%d" % self.version

    def config(self, files, env_file, project, variables):
        """(Compose's model of the stack as JSON text, placeholders): each secret variable given
        to Compose as its placeholder (restore_secrets puts the values back).  variables:
        {name: (value, display)} of the secret variables (and those built from one).  Raises
        ComposeUnusable."""
        placeholders = placeholders_for(variables)
        argv = [self.path, "--project-directory", os.path.dirname(files[0])]
        for path in files:
            argv += ["-f", path]
        # Without an env file Compose would read the project directory's .env; the audit reads none.
        argv += ["--env-file", env_file or os.devnull]
        if project:
            argv += ["-p", project]
        argv += ["--profile", "*", "config", "--format", "json"]
        env = _clean_env({name: token for name, (token, _value, _display) in placeholders.items()})
        try:
            code, out, _err = run_capped(argv, env, self.timeout, self.max_output)
        except CommandTimeout:
            raise ComposeUnusable("Compose did not answer within %ds" % self.timeout) from None
        except OutputTooLarge:
            raise ComposeUnusable("Compose's answer is over %d bytes" % self.max_output) from None
        except OSError as exc:
            raise ComposeUnusable("Compose could not be started (%s)" % type(exc).__name__) from None
        if code != 0:
            raise ComposeUnusable("Compose refused the stack (exit status %d)" % code)
        try:
            return out.decode("utf-8"), placeholders
        except UnicodeDecodeError:
            raise ComposeUnusable("Compose's answer is not UTF-8") from None


def find_compose(paths, timeout, max_output):
    """(Compose, None) for the first usable binary of paths, else (None, why none is used)."""
    why = "Compose v2 is not installed at %s" % ", ".join(paths) if paths else "no path is given for Compose"
    for path in paths:
        if not isinstance(path, str) or not os.path.isabs(path):
            continue
        refused = _trusted(path)
        if refused == "missing":
            continue
        if refused:
            return None, "Compose at %s is not run: %s" % (path, refused)
        try:
            code, out, _err = run_capped([path, "version", "--short"], _clean_env(), timeout, 4096)
        except (CommandTimeout, OutputTooLarge, OSError):
            return None, "Compose at %s did not tell its version" % path
        version = parse_version(out.decode("utf-8", "replace")) if code == 0 else None
        if version is None:
            return None, "Compose at %s did not tell its version" % path
        if version < MIN_VERSION:
            return None, "Compose at %s is %d.%d.%d, older than %d.%d.%d" % ((path,) + version + MIN_VERSION)
        return Compose(path, version, timeout, max_output), None
    return None, why


def check_words(services, placeholders):
    """Raise ComposeUnusable when a command or an entrypoint holds the placeholder of a value with
    a space, a quote or a backslash: Compose splits a command line into words after substituting
    variables, and a placeholder is one plain word where that value may be several."""
    tokens = [token for token, value, _display in placeholders.values() if _SHELL_SPECIAL.search(value)]
    if not tokens:
        return
    for service in services.values():
        for field in ("command", "entrypoint"):
            words = service.get(field) if isinstance(service, dict) else None
            if any(token in word for word in words or () if isinstance(word, str) for token in tokens):
                raise ComposeUnusable("a command line holds a secret variable's value with a space or a quote")


def placeholders_for(variables):
    """{name: (placeholder, value, display)}: a random word per secret variable, which no compose
    file can hold by chance (16 random bytes)."""
    found = {}
    for name, (value, display) in sorted(variables.items()):
        token = "envparity%sx%s" % (len(found), binascii.hexlify(os.urandom(16)).decode("ascii"))
        found[name] = (token, value, display)
    return found


def map_strings(node, function):
    """node with function applied to every string value (never a key: keys are not interpolated,
    so they never hold a placeholder)."""
    if isinstance(node, dict):
        return {key: map_strings(value, function) for key, value in node.items()}
    if isinstance(node, list):
        return [map_strings(item, function) for item in node]
    if isinstance(node, str) and not isinstance(node, _Raw):  # a _Raw is a number as Go wrote it
        return function(node)
    return node


def restore_secrets(node, placeholders):
    """node with every placeholder replaced by its real value, each string that held one a
    _Tainted string (its display showing each secret as the built-in reader shows it)."""

    def restored(text):
        real, shown, secrets = text, text, []
        for token, value, display in placeholders.values():
            if token in real:
                real = real.replace(token, value)
                shown = shown.replace(token, display)
                secrets.append(value)
        return _tainted(real, shown, secrets)

    return map_strings(node, restored) if placeholders else node


def real_model(service, placeholders):
    """A service of Compose's JSON answer with its real values: each ``$$`` read as ``$``, then
    each placeholder its value (for the config hash, which is of the real values)."""

    def real(text):
        text = text.replace("$$", "$")
        for token, value, _display in placeholders.values():
            text = text.replace(token, value)
        return text

    return map_strings(service, real)
