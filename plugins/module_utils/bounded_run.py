"""Shared by the host-side collectors: a failure with a status, and a command run with a deadline.

Standard library only: this file travels to the audited host inside the module.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import threading


class CollectError(Exception):
    """Something an area could not collect; carries a status and a reason sentence (never a value)."""

    def __init__(self, status, reason):
        super().__init__(status)
        self.status = status
        self.reason = reason


class CommandTimeout(Exception):
    """The command did not finish within its timeout; it and its children were killed."""


def find_executable(name, fallbacks, path=None):
    """The command on PATH (or the given search path), else the first executable fallback."""
    found = shutil.which(name, path=path)
    if found:
        return found
    for candidate in fallbacks:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def seconds(value):
    return ("%g" % value) if isinstance(value, float) else str(value)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            proc.kill()


def _start(argv, env, with_stdin, cwd=None):
    """The command in a session of its own (a timeout kills its whole process group), piped."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        start_new_session=True,
    )


def run_bounded(argv, env, timeout, stdin_bytes=None, cwd=None):
    """Return (returncode, stdout bytes, stderr text).

    Starting errors (FileNotFoundError, PermissionError, OSError) reach the caller, which knows
    what they mean for its area; a command past its timeout is killed with its whole process group
    (a hook or helper it started too) and raises CommandTimeout.
    """
    proc = _start(argv, env, stdin_bytes is not None, cwd)
    try:
        out, err = proc.communicate(stdin_bytes, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            for pipe in (proc.stdout, proc.stderr):
                if pipe:
                    pipe.close()
            proc.wait()
        raise CommandTimeout() from None
    return proc.returncode, out, err.decode("utf-8", "replace")


class OutputTooLarge(Exception):
    """The command wrote more than its output limit; it and its children were killed."""


def run_capped(argv, env, timeout, max_output, stdin_bytes=None):
    """run_bounded, with stdout read up to max_output bytes: a command that writes more is killed
    (OutputTooLarge) instead of filling the collector's memory. Returns (returncode, stdout bytes,
    stderr text, at most 64 KiB of it)."""
    proc = _start(argv, env, stdin_bytes is not None)
    chunks, errors, state = [], [], {"size": 0, "too_large": False}

    def read_out():
        while True:
            chunk = proc.stdout.read(65536)
            if not chunk:
                return
            state["size"] += len(chunk)
            if state["size"] > max_output:
                state["too_large"] = True
                _kill_group(proc)
                return
            chunks.append(chunk)

    def read_err():
        data = proc.stderr.read(65536)
        errors.append(data)
        while proc.stderr.read(65536):
            pass

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for reader in readers:
        reader.start()
    if stdin_bytes is not None:
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin_bytes)
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        for reader in readers:
            reader.join(5)
        raise CommandTimeout() from None
    for reader in readers:
        reader.join(5)
    if state["too_large"]:
        raise OutputTooLarge()
    return proc.returncode, b"".join(chunks), b"".join(errors).decode("utf-8", "replace")
