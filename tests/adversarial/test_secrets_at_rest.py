"""No secret at rest: the run key and the database passwords never land in a file, however a run ends.

Real ansible-playbook runs (started with subprocess, so that SIGINT can be sent) with an inventory
of their own in tmp_path: dev over the local connection, prod over the lab's sshd as deploy, each
with a drift_postgres entry whose password is a fresh canary and whose server is a loopback
listener started here that accepts and never answers (the collect task is then running for as long
as drift_postgres_timeout). The files under the temporary directories Ansible and the module use
(~/.ansible/tmp of root and of deploy, /tmp/ansible*) are read during and after each run and
searched for the run key and the canary; zip archives (the module's payload) member by member.
"""

import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.facts_contract import unpack

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(ROOT / "compare.yml")]
LAB_SSH = pathlib.Path("/var/lib/envparity-lab/ssh")
TEMP_ROOTS = (pathlib.Path("/root/.ansible/tmp"), pathlib.Path("/home/deploy/.ansible/tmp"))
MAX_READ = 64 * 1024 * 1024


class StallingServer:
    """A loopback TCP listener that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.sock.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def stalling_server():
    server = StallingServer()
    yield server
    server.close()


def write_inventory(tmp_path, port, password, timeout):
    database = {"name": "app", "dbname": "app", "user": "audit", "host": "127.0.0.1", "port": port}
    database["password"] = password
    project = tmp_path / "dev"
    project.mkdir(exist_ok=True)
    (project / "app.env").write_text("DEBUG=true\n")
    common = {"drift_postgres": [database], "drift_postgres_timeout": timeout, "drift_env_files": []}
    common["drift_env_files"] = [{"name": "app", "path": "app.env"}]
    ssh_args = "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes" % (LAB_SSH / "known_hosts")
    inventory = {
        "all": {
            "vars": {"drift_environments": ["dev", "prod"], "drift_rules_files": []},
            "children": {
                "dev": {
                    "hosts": {
                        "dev-local": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                            "drift_project_dir": str(project),
                            **common,
                        }
                    }
                },
                "prod": {
                    "hosts": {
                        "prod-ssh": {
                            "ansible_host": "127.0.0.1",
                            "ansible_port": 2222,
                            "ansible_user": "deploy",
                            "ansible_python_interpreter": "/usr/bin/python3",
                            "ansible_ssh_private_key_file": str(LAB_SSH / "id_ed25519"),
                            "ansible_ssh_common_args": ssh_args,
                            "drift_project_dir": "/nonexistent/envparity-test",
                            **common,
                        }
                    }
                },
            },
        }
    }
    path = tmp_path / "inventory" / "hosts.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(inventory))  # JSON is YAML
    return path


def temp_files():
    """Regular files under the temporary directories of Ansible and of the module's payload."""
    roots = list(TEMP_ROOTS) + [path for path in pathlib.Path("/tmp").glob("ansible*")]
    for root in roots:
        if root.is_file():
            yield root
        for directory, _, names in os.walk(root):  # walk ignores what vanishes meanwhile
            for name in names:
                path = pathlib.Path(directory, name)
                if path.is_file() and not path.is_symlink():
                    yield path


def file_texts(path):
    """The file's bytes, and each member's if it is a zip archive (it may vanish meanwhile)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_READ)
        texts = [data]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                texts += [archive.read(name) for name in archive.namelist()]
        return texts
    except (OSError, zipfile.BadZipFile):
        return []


def leaks(needles):
    """{path: [needles found]} over the temporary files, now."""
    found = {}
    for path in temp_files():
        for data in file_texts(path):
            for needle in needles:
                if needle.encode() in data:
                    found.setdefault(str(path), []).append(needle)
    return found


class Run:
    """One ansible-playbook run; meanwhile the run key is captured and the temp files searched."""

    def __init__(self, tmp_path, inventory, password, extravars=None, env=None, options=()):
        self.report_dir = tmp_path / "reports"
        variables = {"drift_report_dir": str(self.report_dir)}
        variables.update(extravars or {})
        environment = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        environment.update(env or {})
        self.password = password
        self.key = None
        self.key_file = None
        self.found = {}
        self.process = subprocess.Popen(
            PLAYBOOK + ["-i", str(inventory), "-e", json.dumps(variables), *options],
            cwd=str(ROOT),
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.output.append(line)

    def run_dirs(self):
        return sorted((self.report_dir / ".runs").glob("*"))

    def watch_once(self):
        """Capture the key while it exists; search the temp files for it and the password."""
        if self.key is None:
            for directory in self.run_dirs():
                try:
                    self.key_file = os.path.realpath(directory / "key")
                    self.key = (directory / "key").read_text().strip() or None
                except OSError:
                    continue
        needles = [self.password] + ([self.key] if self.key else [])
        for path, found in leaks(needles).items():
            self.found.setdefault(path, set()).update(found)

    def watch_until(self, condition, timeout=120):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "".join(self.output)
            self.watch_once()
            time.sleep(0.2)

    def finish(self, timeout=180):
        self.watch_until(lambda: self.process.poll() is not None, timeout)
        time.sleep(0.5)  # the reader thread drains the last lines
        self.watch_once()
        return self.process.returncode

    @property
    def stdout(self):
        return "".join(self.output)


def assert_nothing_at_rest(run):
    assert run.key is not None and len(run.key) == 64, "the run key was never seen: %s" % run.stdout
    assert run.found == {}, run.found
    assert run.key_file.startswith("/dev/shm/")  # in memory while the run lasted, never on a disk
    assert not os.path.exists(os.path.dirname(run.key_file))
    for directory in run.run_dirs():
        assert not os.path.lexists(directory / "key")
    # reports, the history store (SQLite: read as bytes) and the run directory kept with its facts
    for path in run.report_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".b64gz":
                data = json.dumps(unpack(data.decode("ascii"))).encode()
            assert run.password.encode() not in data and run.key.encode() not in data, path
    assert run.password not in run.stdout and run.key not in run.stdout


@pytest.mark.parametrize(
    ("extravars", "returncode"),
    [
        ({"drift_keep_run_dir": True}, 0),  # a normal run that keeps its facts
        ({"drift_fail_on": "info"}, 2),  # a failed run: the gate trips
    ],
    ids=["normal-keep-run-dir", "failed"],
)
def test_no_key_or_password_on_disk_after_a_run(lab, tmp_path, stalling_server, extravars, returncode):
    password = "canary-" + secrets.token_hex(16)
    inventory = write_inventory(tmp_path, stalling_server.port, password, timeout=3)
    run = Run(tmp_path, inventory, password, extravars)
    assert run.finish() == returncode, run.stdout
    assert len(stalling_server.connections) == 2  # both hosts' collectors ran, each holding the password
    assert_nothing_at_rest(run)
    assert (run.report_dir / "latest.json").exists()
    if extravars.get("drift_keep_run_dir"):
        [kept] = run.run_dirs()
        assert sorted(path.name for path in (kept / "facts").iterdir()) == ["dev-local.b64gz", "prod-ssh.b64gz"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_no_key_or_password_on_disk_after_a_signal_during_collection(lab, tmp_path, stalling_server, signum):
    password = "canary-" + secrets.token_hex(16)
    inventory = write_inventory(tmp_path, stalling_server.port, password, timeout=30)
    run = Run(tmp_path, inventory, password)
    # Both hosts' collectors are waiting on the stalling server: the collect task is running.
    run.watch_until(lambda: len(stalling_server.connections) == 2)
    assert run.key is not None
    [directory] = run.run_dirs()
    assert (directory / "key").exists() and os.path.exists(run.key_file)
    run.process.send_signal(signum)
    assert run.finish(timeout=60) == (-signal.SIGTERM if signum == signal.SIGTERM else 99)
    assert_nothing_at_rest(run)
    assert run.run_dirs() == []  # drift_keep_run_dir is false: the interrupted run left nothing


@pytest.mark.parametrize("switch", ["ANSIBLE_DEBUG", "ANSIBLE_KEEP_REMOTE_FILES"])
def test_unsafe_debug_switches_are_refused_before_any_host_is_contacted(lab, tmp_path, stalling_server, switch):
    password = "canary-" + secrets.token_hex(16)
    inventory = write_inventory(tmp_path, stalling_server.port, password, timeout=3)
    run = Run(tmp_path, inventory, password, env={switch: "1"})
    assert run.finish() == 2
    assert "refusing to audit: %s" % switch in run.stdout
    assert "drift_allow_unsafe_debug=true" in run.stdout
    assert stalling_server.connections == []
    assert run.run_dirs() == []  # no run opened: no key was ever made
    assert not (run.report_dir / "latest.json").exists()


def test_a_forced_unsafe_debug_run_warns_loudly(lab, tmp_path, stalling_server):
    """dev only, its temporary directories in tmp_path: what the forced run keeps stays here."""
    password = "canary-" + secrets.token_hex(16)
    inventory = write_inventory(tmp_path, stalling_server.port, password, timeout=3)
    kept = tmp_path / "remote-tmp"
    env = {"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": str(kept)}
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "local-tmp")
    run = Run(tmp_path, inventory, password, {"drift_allow_unsafe_debug": True}, env, ["--limit", "dev-local"])
    assert run.finish() == 0, run.stdout
    assert "ENVPARITY UNSAFE DEBUG FORCED" in run.stdout
    assert "ANSIBLE_KEEP_REMOTE_FILES leaves the module with its arguments in files" in run.stdout
    assert (run.report_dir / "latest.json").exists()
    # What the warning says is true, and the search the other tests rely on finds it: the kept
    # module file holds the password and the run key.
    kept_texts = b"".join(text for path in kept.rglob("*") if path.is_file() for text in file_texts(path))
    assert run.password.encode() in kept_texts
    assert run.key.encode() in kept_texts
