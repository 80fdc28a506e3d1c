"""What the lab's tests share: where the lab lives, labctl, and read-only GETs to its engine."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABCTL = REPO / "lab" / "labctl"
STATE = Path("/var/lib/envparity-lab")
MANIFEST = STATE / "manifest.json"
CANARIES = STATE / "canaries.json"
RUN_DIR = Path("/run/envparity-lab")
DOCKER_SOCKET = RUN_DIR / "docker.sock"
SYSTEM_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def labctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LABCTL), *args], capture_output=True, text=True, timeout=900, check=False
    )


def lab_up():
    """Bring the lab up (with the system Python, as setup.sh does); after the module, leave it as
    it was found: running if it was up, stopped otherwise. For a module-scoped fixture."""
    was_up = labctl("status").returncode == 0
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-S", str(LABCTL), "up"], capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield {"was_up": was_up}
    if not was_up:
        labctl("down")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=30)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(DOCKER_SOCKET))


def engine_get(path: str):
    """GET from the lab's engine (read-only): parsed JSON, the text of any other body, None for 404."""
    conn = _UnixConnection()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status == 404:
        return None
    assert response.status == 200, (path, response.status, body[:300])
    return json.loads(body) if body.strip().startswith((b"{", b"[")) else body.decode()
