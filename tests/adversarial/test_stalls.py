"""Stalls: a host that connects and then never answers ends, within a bound, in a written report.

Loopback listeners started here stand in for a stalled prod (one never speaks, one sends an SSH
banner and then nothing); a Python interpreter that never returns stands in for a stuck module on
the lab's real prod, reached directly or through a relay that goes silent mid-run. Each run is
timed; prod must be "could not collect" with the bound it hit, the run must exit 4, and dev's own
finding must still be in the report.
"""

import configparser
import contextlib
import os
import re
import select
import shutil
import signal
import socket
import tempfile
import threading
import time

import pytest
import yaml

from ansible_collections.envparity.audit.plugins.plugin_utils.summary import failure_reason
from tests.integration.conftest import ROOT

BANNER = b"SSH-2.0-OpenSSH_9.2\r\n"
HOST_TIMEOUT = 15  # drift_host_timeout where that is the bound under test
LONG_HOST_TIMEOUT = 120  # where an SSH bound must end the wait first
WALL_BOUND = 60  # seconds a whole audit with a stalled prod may take
TEMPLATE_KEY = "ONLY_IN_DEV_TEMPLATE"


@contextlib.contextmanager
def stalled_server(greeting):
    """A listener on a free loopback port: accepts, sends `greeting` (maybe nothing), then says nothing."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)  # lets the thread see the stop flag
    stop = threading.Event()
    accepted = []

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)
            connection.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
        for connection in accepted:  # an ssh client still waiting on it ends here
            connection.close()


@contextlib.contextmanager
def freezable_relay(upstream_port):
    """A loopback relay to the lab's sshd; once `frozen` is set it passes nothing on, either way,
    and keeps both connections open: a link that goes silent without closing."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop, frozen = threading.Event(), threading.Event()
    opened = []

    def pump(source, target):
        with contextlib.suppress(OSError, ValueError):  # a connection closed at the end ends its pump
            while not stop.is_set():
                if frozen.is_set():
                    time.sleep(0.1)
                elif select.select([source], [], [], 0.2)[0]:
                    data = source.recv(65536)
                    if not data:
                        target.shutdown(socket.SHUT_WR)
                        return
                    target.sendall(data)

    def serve():
        while not stop.is_set():
            if select.select([listener], [], [], 0.2)[0]:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", upstream_port))
                opened.extend((client, upstream))
                for pair in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=pair, daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], frozen
    finally:
        stop.set()
        thread.join()
        listener.close()
        for connection in opened:
            connection.close()


def freeze_once_started(frozen, pids):
    """Sets `frozen` once the stalled interpreter has started: the session is up, the module running."""

    def watch():
        deadline = time.monotonic() + WALL_BOUND
        while not frozen.is_set() and time.monotonic() < deadline:
            if started_pids(pids):
                frozen.set()
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()


@pytest.fixture
def stalled_interpreter():
    """A world-executable 'python' in /tmp that records its pid and sleeps; killed by pid afterwards."""
    directory = tempfile.mkdtemp(prefix="envparity-stall-", dir="/tmp")
    os.chmod(directory, 0o777)  # the lab's deploy user runs it and records its pid here
    pids = os.path.join(directory, "pids")
    interpreter = os.path.join(directory, "python")
    with open(interpreter, "w") as handle:
        # the sleep ends by itself too, should the kill below never run
        handle.write("#!/bin/sh\necho $$ >> %s\nexec sleep 300\n" % pids)
    os.chmod(interpreter, 0o755)
    yield interpreter, pids
    for pid in started_pids(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    shutil.rmtree(directory)


def started_pids(pids):
    """The pids the stalled interpreter recorded in the file `pids` (none yet: empty)."""
    try:
        with open(pids) as handle:
            return [int(pid) for pid in handle.read().split()]
    except FileNotFoundError:
        return []


def lab_inventory(tmp_path, prod_vars):
    """A copy of the lab inventory with these host variables for prod-vm, and a dev-only finding.

    dev's env file gets a template with a key the file lacks: a finding about dev alone, which
    the report must hold whatever became of prod.
    """
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory" / "lab", inventory)
    template = tmp_path / "dev.env.example"
    template.write_text("%s=\n" % TEMPLATE_KEY)
    dev_files = [{"name": "app", "path": "config/development.env", "template": str(template)}]
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "dev-laptop.yml").write_text(yaml.safe_dump({"drift_env_files": dev_files}))
    (inventory / "host_vars" / "prod-vm.yml").write_text(yaml.safe_dump(prod_vars))
    return inventory


def timed_audit(audit, inventory, host_timeout):
    """The env area audited with this inventory; (result, seconds it took)."""
    started = time.monotonic()
    result = audit(cmdline="-i %s --tags env" % inventory, extravars={"drift_host_timeout": host_timeout})
    return result, time.monotonic() - started


def assert_prod_could_not_be_collected(result, elapsed, reason_pattern):
    """Within the bound, exit 4, prod 'could not collect' for the named reason, dev's finding kept."""
    assert elapsed < WALL_BOUND, "the audit took %.0f s" % elapsed
    assert result.rc == 4, result.stdout
    report = result.report
    prod = next(column for column in report["columns"] if column["label"] == "prod")
    assert prod["status"] == "unreachable"
    assert re.search(reason_pattern, prod["reason"]), prod["reason"]
    found = sorted((f["check"], f["key"], f["environments"]) for f in report["findings"])
    assert found == [
        ("audit.not_compared", "*", []),
        ("collect.failed", "*", ["prod"]),
        ("env.template_missing", TEMPLATE_KEY, ["dev"]),
    ]
    assert "⚠ could not collect" in result.markdown
    assert prod["reason"] in result.markdown


def test_banner_then_silence_ends_at_drift_host_timeout(audit, tmp_path):
    with stalled_server(BANNER) as port:
        inventory = lab_inventory(tmp_path, {"ansible_port": port})
        result, elapsed = timed_audit(audit, inventory, HOST_TIMEOUT)
    assert elapsed >= HOST_TIMEOUT
    assert_prod_could_not_be_collected(result, elapsed, r"^no answer within 15 s \(drift_host_timeout\)$")


def shipped_ssh_args_with_keepalives(interval, count):
    """ansible.cfg's ssh_args with its ServerAlive* values replaced by these (both must be there)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "ansible.cfg")
    ssh_args = config["ssh_connection"]["ssh_args"]
    ssh_args, intervals = re.subn(r"ServerAliveInterval=\d+", "ServerAliveInterval=%d" % interval, ssh_args)
    ssh_args, counts = re.subn(r"ServerAliveCountMax=\d+", "ServerAliveCountMax=%d" % count, ssh_args)
    assert (intervals, counts) == (1, 1), ssh_args
    return ssh_args


def test_banner_then_silence_ends_at_the_shipped_ssh_keepalives(audit, tmp_path):
    ssh_args = shipped_ssh_args_with_keepalives(interval=2, count=2)
    with stalled_server(BANNER) as port:
        inventory = lab_inventory(tmp_path, {"ansible_port": port, "ansible_ssh_args": ssh_args})
        result, elapsed = timed_audit(audit, inventory, LONG_HOST_TIMEOUT)
    assert_prod_could_not_be_collected(
        result, elapsed, r"^no answer within SSH keepalives \(ServerAliveInterval x ServerAliveCountMax\): .*timed out"
    )


def test_silent_listener_ends_at_the_connect_timeout(audit, tmp_path):
    with stalled_server(b"") as port:
        inventory = lab_inventory(tmp_path, {"ansible_port": port, "ansible_ssh_timeout": 3})
        result, elapsed = timed_audit(audit, inventory, LONG_HOST_TIMEOUT)
    assert_prod_could_not_be_collected(
        result, elapsed, r"^no answer within SSH ConnectTimeout \(ansible timeout\): .*timed out during banner exchange"
    )


def test_interpreter_that_never_returns_ends_at_drift_host_timeout(audit, tmp_path, stalled_interpreter):
    interpreter, pids = stalled_interpreter
    inventory = lab_inventory(tmp_path, {"ansible_python_interpreter": interpreter})
    result, elapsed = timed_audit(audit, inventory, HOST_TIMEOUT)
    assert started_pids(pids), "the lab's prod never started the stalled interpreter"
    assert_prod_could_not_be_collected(result, elapsed, r"^no answer within 15 s \(drift_host_timeout\)$")


def test_link_silent_mid_run_ends_at_the_ssh_keepalives(audit, tmp_path, stalled_interpreter):
    interpreter, pids = stalled_interpreter
    lab_prod = yaml.safe_load((ROOT / "inventory" / "lab" / "hosts.yml").read_text())["all"]["children"]["prod"]
    lab_prod = lab_prod["hosts"]["prod-vm"]
    with freezable_relay(lab_prod["ansible_port"]) as (port, frozen):
        prod_vars = {
            "ansible_port": port,
            "ansible_python_interpreter": interpreter,
            "ansible_ssh_args": shipped_ssh_args_with_keepalives(interval=2, count=2),
            # host key checking stays on: the relay's port is checked as the lab's sshd
            "ansible_ssh_common_args": lab_prod["ansible_ssh_common_args"]
            + " -o HostKeyAlias=[127.0.0.1]:%d" % lab_prod["ansible_port"],
        }
        inventory = lab_inventory(tmp_path, prod_vars)
        freeze_once_started(frozen, pids)
        result, elapsed = timed_audit(audit, inventory, LONG_HOST_TIMEOUT)
        assert frozen.is_set(), "the link was never frozen: the interpreter did not start"
    # ssh's ControlPersist master, which runs the keepalives, says nothing to Ansible: the reason is
    # Ansible's own, and the time shows which bound ended the wait.
    assert_prod_could_not_be_collected(result, elapsed, r"reached over ssh")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 22: Connection timed out",
            "no answer within SSH ConnectTimeout (ansible timeout): Failed to connect",
        ),
        ("Timeout, server 127.0.0.1 not responding.", "no answer within SSH keepalives (ServerAliveInterval x"),
        ("Failed to connect to the host via ssh: Connection refused", "Failed to connect"),
    ],
)
def test_ssh_messages_the_loopback_cannot_give_name_their_bound(message, reason):
    """A connect that times out (SYNs dropped) and keepalives failing without ControlPersist."""
    assert failure_reason({"msg": message}, "unreachable").startswith(reason)
