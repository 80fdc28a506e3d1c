"""macOS host facts of the health area (module_utils/health_darwin.py): parsers on outputs recorded
on real Macs (tests/unit/fixtures/health/macos/README.md says where each comes from), and the
collector's path on macOS with its tools faked (this machine is Linux)."""

from ansible_collections.envparity.audit.plugins.module_utils import health_darwin, health_host
from ansible_collections.envparity.audit.plugins.module_utils.health_darwin import (
    parse_launchctl_list,
    parse_lsof_listen,
    parse_swapusage,
    parse_vm_stat,
)
from tests.unit.plugins.module_utils.test_health_host import fixture as recorded


def fixture(name):
    return recorded(name, "macos")


def test_vm_stat_available_pages_times_the_page_size():
    assert parse_vm_stat(fixture("vm_stat")) == (10069 + 426177 + 5899 + 11278) * 16384
    assert parse_vm_stat("not vm_stat output") is None


def test_swapusage():
    total, free = parse_swapusage(fixture("sysctl_vm.swapusage"))
    assert total == 10240 * 1024**2 and free == int(550.06 * 1024**2)
    assert parse_swapusage("vm.swapusage: nothing") == (None, None)


def test_lsof_listeners_not_connections():
    assert parse_lsof_listen(fixture("lsof_listen")) == [
        {"protocol": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"},
        {"protocol": "tcp", "address": "127.0.0.1", "port": 18789, "process": "node"},
        {"protocol": "tcp", "address": "127.0.0.1", "port": 18800, "process": "Google"},
        {"protocol": "tcp", "address": "::1", "port": 18789, "process": "node"},
    ]


def test_launchctl_jobs_that_exited_with_an_error():
    assert parse_launchctl_list(fixture("launchctl_list")) == [
        "com.apple.some.failed.agent",
        "com.example.misconfigured",
        "com.example.mycrashingapp",
    ]


def test_the_macos_path_runs_fixed_tools_only(monkeypatch):
    outputs = {
        ("/usr/sbin/sysctl", "-n", "hw.memsize"): "34359738368\n",
        ("/usr/bin/vm_stat",): fixture("vm_stat"),
        ("/usr/sbin/sysctl", "vm.swapusage"): fixture("sysctl_vm.swapusage"),
        ("/usr/sbin/lsof", "-nP", "-iTCP", "-sTCP:LISTEN"): fixture("lsof_listen"),
        ("/bin/launchctl", "list"): fixture("launchctl_list"),
    }
    ran = []

    def fake_run(argv, env, timeout):
        ran.append(tuple(argv))
        assert env["LC_ALL"] == "C" and timeout == health_host.FIXED_TOOL_TIMEOUT
        return 0, outputs[tuple(argv)].encode(), ""

    monkeypatch.setattr(health_host.sys, "platform", "darwin")
    monkeypatch.setattr(health_host.os, "access", lambda path, mode: True)
    monkeypatch.setattr(health_host, "run_bounded", fake_run)
    monkeypatch.setattr(health_darwin.platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    facts = health_host.collect_host({"paths": [{"name": "root", "path": "/"}], "cron_paths": []})
    assert sorted(ran) == sorted(outputs)
    assert all(argv[0].startswith("/") for argv in ran)
    assert facts["status"] == "ok" and facts["os"]["pretty_name"] == "macOS 14.5"
    assert facts["memory_total"] == 34359738368 and facts["swap_total"] == 10240 * 1024**2
    assert facts["clock_synchronised"] is None and facts["timers"] is None  # not available
    assert len(facts["sockets"]) == 4 and len(facts["failed_units"]) == 3


def test_a_missing_tool_is_not_available(monkeypatch):
    monkeypatch.setattr(health_host.os, "access", lambda path, mode: False)
    monkeypatch.setattr(health_darwin.platform, "mac_ver", lambda: ("", ("", "", ""), ""))
    facts = health_darwin.collect_darwin()
    assert facts["memory_total"] is None and facts["sockets"] is None and facts["failed_units"] is None
    assert facts["os"]["pretty_name"] is None
