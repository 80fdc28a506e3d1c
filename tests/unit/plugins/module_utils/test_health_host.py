"""Host facts of the health area (module_utils/health_host.py): parsers on recorded /proc files and
documented command outputs, and the readers on this machine."""

import os
import pathlib
import socket

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import health_host
from ansible_collections.envparity.audit.plugins.module_utils.health_host import (
    collect_host,
    cron_facts,
    filesystem_facts,
    is_loopback,
    listening_sockets,
    parse_crontab,
    parse_loadavg,
    parse_meminfo,
    parse_os_release,
    parse_proc_net,
    parse_systemctl_timers,
    parse_systemctl_units,
)

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "unit" / "fixtures" / "health"


def fixture(name, system="linux"):
    """A recorded output (tests/unit/fixtures/health/<system>/README.md says where it comes from)."""
    return (FIXTURES / system / name).read_text()


def test_os_release():
    assert parse_os_release(fixture("os-release")) == {
        "id": "debian",
        "version_id": "12",
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
    }


def test_meminfo_in_bytes():
    facts = parse_meminfo(fixture("meminfo"))
    assert facts["memory_total"] > facts["memory_available"] > 0
    assert facts["memory_total"] % 1024 == 0
    assert facts["swap_total"] == 0 and facts["swap_free"] == 0


def test_loadavg():
    load = parse_loadavg(fixture("loadavg"))
    assert len(load) == 3 and all(isinstance(value, float) for value in load)


def test_tcp_listeners_recorded_here():
    sockets = parse_proc_net(fixture("proc_net_tcp"), "tcp")
    assert {"protocol": "tcp", "address": "127.0.0.1", "port": 8080, "inode": "182968"} in sockets
    assert all(item["address"] for item in sockets)


def test_tcp6_listeners_and_not_the_established_connection():
    sockets = parse_proc_net(fixture("proc_net_tcp6"), "tcp6")
    assert [(item["address"], item["port"]) for item in sockets] == [
        ("::", 22),
        ("::1", 631),
        ("::ffff:127.0.0.1", 8080),
    ]


def test_udp_bound_sockets_not_connected_ones():
    sockets = parse_proc_net(fixture("proc_net_udp"), "udp")
    assert [(item["address"], item["port"]) for item in sockets] == [("127.0.0.53", 53), ("0.0.0.0", 68)]


def test_garbage_lines_are_skipped():
    assert parse_proc_net("header\nnot a line\n 0: ZZ:1 00:0 0A a b c d e f g\n", "tcp") == []


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
    ],
)
def test_loopback(address, loopback):
    assert is_loopback(address) is loopback


# Formats of systemctl(1): `list-units --failed --plain --no-legend` prints "UNIT LOAD ACTIVE SUB
# DESCRIPTION" (a "●" marks failed units when not --plain); `list-timers --all --plain --no-legend`
# prints "NEXT LEFT LAST PASSED UNIT ACTIVATES", the times with blanks in them.
FAILED_UNITS = """\
nginx.service      loaded failed failed A high performance web server
● backup.service   loaded failed failed Nightly backup
"""
TIMERS = """\
Mon 2026-12-07 00:00:00 UTC 19h left Sun 2026-12-06 00:00:00 UTC 4h 30min ago logrotate.timer logrotate.service
n/a n/a Sun 2026-12-06 03:10:01 UTC 1h ago certbot.timer certbot.service
"""


def test_systemctl_failed_units():
    assert parse_systemctl_units(FAILED_UNITS) == ["backup.service", "nginx.service"]
    assert parse_systemctl_units("") == []


def test_systemctl_timers():
    assert parse_systemctl_timers(TIMERS) == [
        "certbot.timer -> certbot.service",
        "logrotate.timer -> logrotate.service",
    ]


def test_crontab_lines_system_and_user_formats():
    text = """\
# m h dom mon dow user command
SHELL=/bin/sh
DB_PASSWORD=hunter2hunter2
17 *	* * *	root    cd / && run-parts --report /etc/cron.hourly
@reboot deploy /home/deploy/bin/start --token=sk-abcdefghijklmnopqrstuvwxyz012345
@bogus root nothing
*/5 * * * *
"""
    assert parse_crontab(text, True) == [
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly",
        "@reboot deploy /home/deploy/bin/start --token=***",
    ]
    assert parse_crontab("0 3 * * * /usr/bin/backup\n", False) == ["0 3 * * * /usr/bin/backup"]


def test_cron_paths_files_directories_and_unreadable(tmp_path):
    directory = tmp_path / "cron.d"
    directory.mkdir()
    (directory / "app").write_text("0 3 * * * root /bin/backup\n")
    (directory / ".hidden").write_text("0 4 * * * root /bin/hidden\n")
    (directory / "app~").write_text("0 5 * * * root /bin/old\n")
    unreadable = tmp_path / "locked"
    unreadable.mkdir(mode=0)
    facts = cron_facts([str(directory), str(tmp_path / "absent"), str(unreadable)])
    assert facts["entries"] == ["0 3 * * * root /bin/backup"]
    if os.geteuid() != 0:  # root reads through any mode
        assert facts["unreadable"] == [str(unreadable)]


def test_filesystems_of_configured_paths(tmp_path):
    facts = filesystem_facts([{"name": "here", "path": str(tmp_path)}, {"name": "gone", "path": str(tmp_path / "x")}])
    assert facts["here"]["status"] == "ok" and 0 <= facts["here"]["used_percent"] <= 100
    assert facts["here"]["mount"].startswith("/") and facts["here"]["size"] > 0
    assert facts["gone"]["status"] == "not_found" and str(tmp_path) not in facts["gone"]["reason"]


def test_listening_sockets_with_their_owner():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        found = [item for item in listening_sockets() if item["port"] == port and item["protocol"] == "tcp"]
    assert found == [{"protocol": "tcp", "address": "127.0.0.1", "port": port, "process": found[0]["process"]}]
    # This process's own socket: its owner is always visible.
    assert found[0]["process"] == pathlib.Path("/proc/self/comm").read_text().strip()


def test_a_vanishing_proc_entry_is_not_a_failure(monkeypatch):
    real = health_host.read_text

    def vanishing(path, limit=health_host.MAX_PROC_FILE_BYTES):
        if path in ("/proc/loadavg", "/proc/uptime"):
            raise FileNotFoundError(2, "No such file or directory")
        return real(path, limit)

    monkeypatch.setattr(health_host, "read_text", vanishing)
    facts = collect_host({"paths": [], "cron_paths": []})
    assert facts["status"] == "ok" and facts["uptime"] is None
    assert facts["load"] is not None  # os.getloadavg() stands in


def test_the_whole_host_on_this_machine():
    facts = collect_host({"paths": [{"name": "root", "path": "/"}], "cron_paths": ["/etc/crontab", "/etc/cron.d"]})
    assert facts["status"] == "ok" and facts["system"] == "Linux"
    assert facts["cpus"] >= 1 and len(facts["load"]) == 3
    assert facts["clock_synchronised"] in (True, False)
    assert facts["nofile_soft"] is None or facts["nofile_soft"] > 0
    assert facts["filesystems"]["root"]["mount"] == "/"
    # systemd runs here or it does not: either the lists, or "not available" (None)
    running = os.path.isdir("/run/systemd/system")
    assert (facts["failed_units"] is not None) == running
