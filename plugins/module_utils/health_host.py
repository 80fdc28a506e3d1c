"""Host facts of the health area on Linux, read from /proc, /etc and the standard library.

Standard library only, Python 3.8+: this module runs on the audited hosts.

No program the host chooses runs: everything is read from files (/proc, /etc) or asked of the
kernel through the standard library (statvfs, getrlimit, adjtimex through ctypes). The one
exception is the list of failed systemd units and timers, which systemd keeps in memory only: when
systemd runs (/run/systemd/system exists), the fixed path /usr/bin/systemctl (or /bin/systemctl) is
run with a fixed argument list, LC_ALL=C and a 5-second bound; never a program found on PATH.

Each fact is a value or None, "not available" (the platform cannot give it); a part that cannot be
read says so in its own status, so the rest still reports. Every read is bounded (size of a file,
number of processes and descriptors walked for socket owners).
"""

import contextlib
import ctypes
import os
import resource
import sys
import time

from ansible_collections.envparity.audit.plugins.module_utils.bounded_run import CommandTimeout, run_bounded
from ansible_collections.envparity.audit.plugins.module_utils.redact import redact_text

MAX_PROC_FILE_BYTES = 4 * 1024 * 1024
# Socket owners: at most this many processes and descriptors per process are looked at.
MAX_PIDS = 8192
MAX_FDS_PER_PID = 4096
MAX_SOCKETS = 2000
# Cron: at most this many files per directory, this many bytes per file, entries in all.
MAX_CRON_FILES = 200
MAX_CRON_FILE_BYTES = 256 * 1024
MAX_CRON_ENTRIES = 1000
MAX_CRON_COMMAND_CHARS = 300
SYSTEMCTL_PATHS = ("/usr/bin/systemctl", "/bin/systemctl")
FIXED_TOOL_TIMEOUT = 5
NOT_AVAILABLE = None

# /proc/net/tcp states: 0A is LISTEN; an unconnected UDP socket is 07 (CLOSE).
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
# adjtimex: the clock state TIME_ERROR means the kernel's clock is not synchronised.
_TIME_ERROR = 5


def read_text(path, limit=MAX_PROC_FILE_BYTES):
    """A small file as text (invalid UTF-8 replaced), read up to limit bytes; OSError passes."""
    with open(path, "rb") as handle:
        return handle.read(limit).decode("utf-8", "replace")


def _optional(read, *args):
    """read(*args), or None when the file is missing or unreadable (vanished under /proc)."""
    try:
        return read(*args)
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- parsers (pure, unit-tested)


def parse_os_release(text):
    """/etc/os-release -> {id, version_id, pretty_name} (quotes removed)."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("ID", "VERSION_ID", "PRETTY_NAME"):
            found[key.strip().lower()] = value.strip().strip("\"'")[:120]
    return {field: found.get(field) for field in ("id", "version_id", "pretty_name")}


def parse_meminfo(text):
    """/proc/meminfo -> {memory_total, memory_available, swap_total, swap_free} in bytes."""
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return {
        "memory_total": values.get("MemTotal"),
        "memory_available": values.get("MemAvailable"),
        "swap_total": values.get("SwapTotal"),
        "swap_free": values.get("SwapFree"),
    }


def parse_loadavg(text):
    """/proc/loadavg -> [1, 5, 15 minute averages]."""
    return [float(part) for part in text.split()[:3]]


def parse_uptime(text):
    return int(float(text.split()[0]))


def _hex_address(text):
    """'0100007F:1F90' (host byte order, per 32-bit word) -> ('127.0.0.1', 8080); IPv6 too."""
    address, _, port = text.partition(":")
    raw = bytes.fromhex(address)
    words = b"".join(raw[index : index + 4][::-1] for index in range(0, len(raw), 4))
    if len(words) == 4:
        ip = ".".join(str(byte) for byte in words)
    else:
        groups = ["%x" % int.from_bytes(words[index : index + 2], "big") for index in range(0, 16, 2)]
        ip = _compress_ipv6(groups)
    return ip, int(port, 16)


def _compress_ipv6(groups):
    """Eight hex groups in the canonical short form (the longest run of zeros as ::)."""
    best, run_start, best_len = None, None, 1
    for index, group in enumerate([*groups, "end"]):
        if group == "0":
            run_start = index if run_start is None else run_start
            continue
        if run_start is not None and index - run_start > best_len:
            best, best_len = run_start, index - run_start
        run_start = None
    text = ":".join(groups) if best is None else ":".join(groups[:best]) + "::" + ":".join(groups[best + best_len :])
    if groups[:5] == ["0"] * 5 and groups[5] == "ffff":  # an IPv4-mapped address
        high, low = int(groups[6], 16), int(groups[7], 16)
        return "::ffff:%d.%d.%d.%d" % (high >> 8, high & 255, low >> 8, low & 255)
    return text


def parse_proc_net(text, protocol):
    """/proc/net/{tcp,tcp6,udp,udp6} -> [{protocol, address, port, inode}] of listening sockets."""
    wanted = _TCP_LISTEN if protocol.startswith("tcp") else _UDP_UNCONNECTED
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted:
            continue
        with contextlib.suppress(ValueError):
            address, port = _hex_address(fields[1])
            _, remote_port = _hex_address(fields[2])
            if protocol.startswith("udp") and remote_port != 0:
                continue
            found.append({"protocol": protocol[:3], "address": address, "port": port, "inode": fields[9]})
    return found


def is_loopback(address):
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1") or address.startswith("::ffff:127.")


def parse_systemctl_units(text):
    """`systemctl list-units --failed --plain --no-legend` -> sorted unit names."""
    units = set()
    for line in text.splitlines():
        fields = [field for field in line.split() if field not in ("●", "*")]
        if fields and "." in fields[0]:
            units.add(fields[0][:200])
    return sorted(units)


def parse_systemctl_timers(text):
    """`systemctl list-timers --all --plain --no-legend` -> sorted 'x.timer -> x.service' strings."""
    timers = set()
    for line in text.splitlines():
        fields = line.split()
        for index, field in enumerate(fields):
            if field.endswith(".timer"):
                target = fields[index + 1] if index + 1 < len(fields) else "?"
                timers.add(("%s -> %s" % (field, target))[:300])
                break
    return sorted(timers)


_CRON_SPECIALS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def parse_crontab(text, has_user_field):
    """Lines of a crontab -> entries "schedule [user] command", the command redacted.

    Blank lines, comments and variable assignments (NAME=value, which may hold a secret) are
    skipped; /etc/crontab and /etc/cron.d files name a user after the schedule, users' own
    crontabs (/var/spool/cron/...) do not."""
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            if fields[0] not in _CRON_SPECIALS:
                continue
            schedule, rest = fields[:1], fields[1:]
        else:
            if "=" in fields[0] or len(fields) < 6:
                continue  # an assignment, or not an entry
            schedule, rest = fields[:5], fields[5:]
        user = []
        if has_user_field:
            if not rest:
                continue
            user, rest = rest[:1], rest[1:]
        if not rest:
            continue
        command = redact_text(" ".join(rest))[:MAX_CRON_COMMAND_CHARS]
        entries.append(" ".join(schedule + user + [command]))
    return entries


def is_user_crontab(path):
    """A user's own crontab (no user field): the spool directories of cron and cronie."""
    return "/var/spool/cron" in os.path.abspath(path)


# ---------------------------------------------------------------- readers


def os_facts():
    uname = os.uname()
    release = _optional(read_text, "/etc/os-release") or _optional(read_text, "/usr/lib/os-release")
    return {
        "system": uname.sysname,
        "kernel": uname.release,
        "architecture": uname.machine,
        "os": parse_os_release(release) if release is not None else NOT_AVAILABLE,
    }


def cpu_facts():
    count = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else count
    load = _optional(lambda: parse_loadavg(read_text("/proc/loadavg")))
    if load is None and hasattr(os, "getloadavg"):
        load = list(os.getloadavg())
    return {"cpus": count, "cpus_usable": usable, "load": load}


def memory_facts():
    text = _optional(read_text, "/proc/meminfo")
    if text is None:
        return dict.fromkeys(("memory_total", "memory_available", "swap_total", "swap_free"), NOT_AVAILABLE)
    return parse_meminfo(text)


def time_zone():
    """The host's time zone name: /etc/timezone, else the zoneinfo name /etc/localtime links to."""
    text = _optional(read_text, "/etc/timezone", 256)
    if text and text.strip():
        return text.strip().splitlines()[0][:80]
    target = _optional(os.readlink, "/etc/localtime")
    if target and "zoneinfo/" in target:
        return target.split("zoneinfo/", 1)[1][:80]
    return time.tzname[0][:80] if time.tzname else NOT_AVAILABLE


def clock_synchronised():
    """True/False from the kernel's adjtimex() clock state (TIME_ERROR: not synchronised), None
    where the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return NOT_AVAILABLE
    buffer = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
    state = adjtimex(buffer)
    if state < 0:
        return NOT_AVAILABLE
    return state != _TIME_ERROR


def file_limits():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    file_max = _optional(lambda: int(read_text("/proc/sys/fs/file-max", 64).split()[0]))
    unlimited = getattr(resource, "RLIM_INFINITY", -1)
    return {
        "nofile_soft": None if soft == unlimited else soft,
        "nofile_hard": None if hard == unlimited else hard,
        "file_max": file_max,
    }


def _mounts():
    """[(mount point, fstype)] from /proc/self/mountinfo (octal escapes decoded)."""
    text = _optional(read_text, "/proc/self/mountinfo")
    mounts = []
    for line in (text or "").splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        mounts.append((point, right.split()[0] if right.split() else None))
    return mounts


def _mount_of(path, mounts):
    if not mounts:
        return None, None  # no mount table (macOS): not available
    best = ("/", None)
    for point, fstype in mounts:
        prefix = point.rstrip("/") + "/"
        if (path == point or path.startswith(prefix)) and len(point) >= len(best[0]):
            best = (point, fstype)
    return best


def _percent(used, total):
    return round(100.0 * used / total, 1) if total else None


def filesystem_facts(paths):
    """{name: {status, mount, fstype, size, used_percent, inodes_used_percent}} of configured paths."""
    mounts = _mounts()
    found = {}
    for item in paths:
        path = os.path.realpath(os.path.expanduser(item["path"]))
        try:
            info = os.statvfs(path)
        except OSError as exc:
            status = "not_found" if exc.errno == 2 else "failed"
            found[item["name"]] = {"status": status, "reason": "%s: %s" % (item["name"], os.strerror(exc.errno))}
            continue
        total = info.f_blocks * info.f_frsize
        used = (info.f_blocks - info.f_bfree) * info.f_frsize
        # As df: the share of what non-root users may use (reserved blocks excluded).
        usable = used + info.f_bavail * info.f_frsize
        point, fstype = _mount_of(path, mounts)
        found[item["name"]] = {
            "status": "ok",
            "reason": None,
            "mount": point,
            "fstype": fstype,
            "size": total,
            "used_percent": _percent(used, usable),
            "inodes_used_percent": _percent(info.f_files - info.f_ffree, info.f_files),
        }
    return found


def _socket_owners(inodes, deadline):
    """{socket inode: process name} for the sockets asked, from /proc/<pid>/fd; others stay unknown."""
    owners = {}
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()][:MAX_PIDS]
    except OSError:
        return owners
    for pid in pids:
        if len(owners) == len(inodes) or time.monotonic() > deadline:
            break
        fd_dir = "/proc/%s/fd" % pid
        try:
            fds = os.listdir(fd_dir)[:MAX_FDS_PER_PID]
        except OSError:
            continue  # another user's process (no permission) or gone meanwhile
        for fd in fds:
            try:
                target = os.readlink("%s/%s" % (fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                name = _optional(read_text, "/proc/%s/comm" % pid, 64)
                owners[target[8:-1]] = (name or "").strip()[:64] or None
    return owners


def listening_sockets(owner_seconds=2.0):
    """Listening TCP and unconnected UDP sockets: [{protocol, address, port, process}], sorted.

    process is the owning process's name, or None when it cannot be seen (another user's process
    without the permission to read its descriptors)."""
    sockets = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        text = _optional(read_text, "/proc/net/%s" % protocol)
        if text is not None:
            sockets += parse_proc_net(text, protocol)
    sockets = sockets[:MAX_SOCKETS]
    owners = _socket_owners({item["inode"] for item in sockets}, time.monotonic() + owner_seconds)
    found = {}
    for item in sockets:
        key = (item["protocol"], item["address"], item["port"])
        found[key] = {
            "protocol": item["protocol"],
            "address": item["address"],
            "port": item["port"],
            "process": owners.get(item["inode"]),
        }
    return [found[key] for key in sorted(found)]


def run_fixed(paths, arguments):
    """The text a system tool prints, run from the first of its fixed absolute paths that exists
    (never one found on PATH) with a fixed argument list, LC_ALL=C and a bound; None when it is
    missing, fails or times out."""
    binary = next((path for path in paths if os.access(path, os.X_OK)), None)
    if binary is None:
        return None
    env = {"LC_ALL": "C", "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    try:
        code, out, _ = run_bounded([binary, *arguments], env, FIXED_TOOL_TIMEOUT)
    except (OSError, CommandTimeout):
        return None
    return out[:MAX_PROC_FILE_BYTES].decode("utf-8", "replace") if code == 0 else None


def _systemctl(arguments):
    """The output of a fixed systemctl call, or None when systemd does not run or the call fails."""
    if not os.path.isdir("/run/systemd/system"):
        return None
    return run_fixed(SYSTEMCTL_PATHS, arguments)


def systemd_facts():
    failed = _systemctl(["list-units", "--failed", "--plain", "--no-legend", "--no-pager"])
    timers = _systemctl(["list-timers", "--all", "--plain", "--no-legend", "--no-pager"])
    return {
        "failed_units": None if failed is None else parse_systemctl_units(failed),
        "timers": None if timers is None else parse_systemctl_timers(timers),
    }


def _cron_files(path):
    if os.path.isdir(path):
        names = sorted(
            name for name in os.listdir(path) if not name.startswith(".") and not name.endswith(("~", ".dpkg-old"))
        )
        return [os.path.join(path, name) for name in names[:MAX_CRON_FILES]]
    return [path]


def cron_facts(paths):
    """{status, entries, unreadable}: every entry of the configured crontab files and directories.

    A path that does not exist contributes nothing; one that cannot be read is named in
    unreadable (its entries are then unknown, never "absent")."""
    entries, unreadable = set(), []
    for given in paths:
        path = os.path.expanduser(given)
        if not os.path.lexists(path):
            continue
        try:
            files = _cron_files(path)
        except OSError:
            unreadable.append(path)
            continue
        for name in files:
            if not os.path.isfile(name):
                continue
            try:
                text = read_text(name, MAX_CRON_FILE_BYTES)
            except OSError:
                unreadable.append(name)
                continue
            entries.update(parse_crontab(text, not is_user_crontab(name)))
    return {"entries": sorted(entries)[:MAX_CRON_ENTRIES], "unreadable": sorted(unreadable)}


def collect_host(request):
    """Every host fact of the health area (docs/health-facts.md)."""
    if sys.platform == "darwin":
        return _collect_darwin(request)
    if not os.path.isdir("/proc"):
        return {"status": "unsupported", "reason": "The host has no /proc (not Linux): host facts are not available."}
    facts = {"status": "ok", "reason": None}
    facts.update(os_facts())
    facts.update(cpu_facts())
    facts.update(memory_facts())
    facts["uptime"] = _optional(lambda: parse_uptime(read_text("/proc/uptime")))
    facts["time_zone"] = time_zone()
    facts["clock_synchronised"] = clock_synchronised()
    facts.update(file_limits())
    facts["filesystems"] = filesystem_facts(request.get("paths") or [])
    facts["sockets"] = listening_sockets()
    facts.update(systemd_facts())
    facts["cron"] = cron_facts(request.get("cron_paths") or [])
    return facts


def _collect_darwin(request):
    """macOS: what the standard library gives, the rest from health_darwin's fixed tools."""
    from ansible_collections.envparity.audit.plugins.module_utils.health_darwin import collect_darwin

    facts = {"status": "ok", "reason": None}
    facts.update(os_facts())
    facts.update(cpu_facts())
    facts["time_zone"] = time_zone()
    facts.update(file_limits())
    facts["filesystems"] = filesystem_facts(request.get("paths") or [])
    facts["cron"] = cron_facts(request.get("cron_paths") or [])
    facts.update(collect_darwin())
    return facts
