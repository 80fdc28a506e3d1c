"""Host facts of the health area on macOS (the seed's dev host is a Mac): no /proc there.

Standard library only, Python 3.8+: this module runs on the audited hosts.

What the standard library gives is read without a program (statvfs, getloadavg, getrlimit,
platform.mac_ver(), which reads SystemVersion.plist, the /etc/localtime link). Memory, swap,
listening sockets and launchd jobs are only given by the system's tools: each is run from its
fixed absolute path (never one found on PATH) with a fixed argument list, LC_ALL=C and a bound:
/usr/sbin/sysctl -n hw.memsize, /usr/sbin/sysctl vm.swapusage, /usr/bin/vm_stat,
/usr/sbin/lsof -nP -iTCP -sTCP:LISTEN, /bin/launchctl list. A tool that is missing, fails or
times out makes its facts "not available" (None), never a difference.
"""

import platform
import re

from ansible_collections.envparity.audit.plugins.module_utils.health_host import run_fixed

_PAGE_SIZE = re.compile(r"page size of ([0-9]+) bytes")
_SWAP = re.compile(r"total = ([0-9.]+)([KMG])\s+used = ([0-9.]+)([KMG])\s+free = ([0-9.]+)([KMG])")
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}
_LISTEN_NAME = re.compile(r"^(.*):([0-9]+)$")


# ---------------------------------------------------------------- parsers (pure, unit-tested)


def parse_vm_stat(text):
    """vm_stat -> available bytes (free, inactive, speculative and purgeable pages: what macOS
    reclaims at once), or None."""
    size = _PAGE_SIZE.search(text)
    if not size:
        return None
    pages = {}
    for line in text.splitlines()[1:]:
        name, _, value = line.partition(":")
        value = value.strip().rstrip(".")
        if value.isdigit():
            pages[name.strip().strip('"')] = int(value)
    wanted = ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable")
    if "Pages free" not in pages:
        return None
    return sum(pages.get(name, 0) for name in wanted) * int(size.group(1))


def parse_swapusage(text):
    """sysctl vm.swapusage -> (total bytes, free bytes), or (None, None)."""
    found = _SWAP.search(text)
    if not found:
        return None, None
    total = int(float(found.group(1)) * _UNITS[found.group(2)])
    free = int(float(found.group(5)) * _UNITS[found.group(6)])
    return total, free


def parse_lsof_listen(text):
    """lsof -nP -iTCP -sTCP:LISTEN -> [{protocol, address, port, process}] of listeners, sorted."""
    found = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[-1] != "(LISTEN)" or fields[-3] != "TCP":
            continue
        match = _LISTEN_NAME.match(fields[-2])
        if not match:
            continue
        address = match.group(1).strip("[]")
        address = {"*": "0.0.0.0", "localhost": "127.0.0.1"}.get(address, address)
        if fields[4] == "IPv6" and address == "0.0.0.0":
            address = "::"
        if fields[4] == "IPv6" and address == "127.0.0.1":
            address = "::1"
        key = ("tcp", address, int(match.group(2)))
        found[key] = {"protocol": "tcp", "address": address, "port": key[2], "process": fields[0][:64]}
    return [found[key] for key in sorted(found)]


def parse_launchctl_list(text):
    """launchctl list -> sorted labels of jobs not running whose last exit status is not 0 (the
    macOS counterpart of systemd's failed units)."""
    failed = set()
    for line in text.splitlines():
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 3 or fields[0] == "PID":
            continue
        pid, status, label = fields[0].strip(), fields[1].strip(), fields[2].strip()
        if pid == "-" and status not in ("0", "-") and label:
            failed.add(label[:200])
    return sorted(failed)


# ---------------------------------------------------------------- readers


def collect_darwin():
    """The host facts health_host gives on Linux, as far as macOS gives them (the rest None)."""
    memsize = run_fixed(("/usr/sbin/sysctl",), ["-n", "hw.memsize"])
    vm_stat = run_fixed(("/usr/bin/vm_stat",), [])
    swap = run_fixed(("/usr/sbin/sysctl",), ["vm.swapusage"])
    lsof = run_fixed(("/usr/sbin/lsof",), ["-nP", "-iTCP", "-sTCP:LISTEN"])
    launchctl = run_fixed(("/bin/launchctl",), ["list"])
    swap_total, swap_free = parse_swapusage(swap) if swap else (None, None)
    version = platform.mac_ver()[0]
    return {
        "os": {"id": "macos", "version_id": version or None, "pretty_name": ("macOS " + version) if version else None},
        "memory_total": int(memsize.strip()) if memsize and memsize.strip().isdigit() else None,
        "memory_available": parse_vm_stat(vm_stat) if vm_stat else None,
        "swap_total": swap_total,
        "swap_free": swap_free,
        "uptime": None,
        "clock_synchronised": None,
        "sockets": parse_lsof_listen(lsof) if lsof else None,
        "failed_units": parse_launchctl_list(launchctl) if launchctl else None,
        "timers": None,
    }
