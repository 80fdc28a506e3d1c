"""Canonical forms of ports and volumes: each side's reading, and both sides agreeing.

The agreement tests hold a compose declaration against what the engine reports for a container
Compose creates from it: inspect data of such containers (tests/unit/fixtures/docker/
forms_inspect.json) and, when the lab is up, the lab's running containers, read with GETs only.
"""

import json
import os
import socket
import time
from pathlib import Path

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks
from ansible_collections.envparity.audit.plugins.module_utils.docker_engine import normalize_container
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import (
    canonical_port,
    canonical_volume,
    capabilities,
    nanoseconds_text,
    port_list,
    volume_name,
    volume_names,
    volume_text,
    words_fingerprint,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint
from ansible_collections.envparity.audit.plugins.plugin_utils import docker_diff
from tests.unit.plugins.module_utils.compose_helpers import (
    KEY,
    as_yaml,
    web,
    write,
)

# ------------------------------------------------------------ normalisation tables

PORTS = [
    ("80", "80/tcp"),
    ("8080:80", "8080:80/tcp"),
    ("80:80", "80:80/tcp"),
    ("127.0.0.1:8080:80/udp", "127.0.0.1:8080:80/udp"),
    ("127.0.0.1:5432:5432", "127.0.0.1:5432:5432/tcp"),
    ("127.0.0.1::80", "127.0.0.1::80/tcp"),
    # Every address is written without one, as the engine side writes it.
    ("0.0.0.0:8080:80", "8080:80/tcp"),
    ("[::]:8080:80", "8080:80/tcp"),
    ("[::1]:6000:6000", "[::1]:6000:6000/tcp"),
    ("::1:6000:6000", "[::1]:6000:6000/tcp"),
    ("53/UDP", "53/udp"),
    # Ranges are kept as written.
    ("8000-8010:8000-8010", "8000-8010:8000-8010/tcp"),
    ("9090-9091:8080-8081/tcp", "9090-9091:8080-8081/tcp"),
    ({"target": "80", "published": "8080"}, "8080:80/tcp"),
    ({"target": "80", "published": "8080", "host_ip": "127.0.0.1", "protocol": "udp"}, "127.0.0.1:8080:80/udp"),
    ({"target": "80"}, "80/tcp"),
    ({"target": "80", "published": "8000-8001", "mode": "host"}, "8000-8001:80/tcp"),
    ({"target": "80", "host_ip": "0.0.0.0", "published": "80"}, "80:80/tcp"),
    ({"published": "80"}, None),
    ("", None),
    ("[::1:80", None),
]


@pytest.mark.parametrize(("written", "expected"), PORTS)
def test_port_canonicalisation(written, expected):
    assert canonical_port(written) == expected


VOLUMES = [
    ("./site:/www:ro", "/srv/app/docker/site:/www:ro"),
    ("./site:/www:rw", "/srv/app/docker/site:/www"),
    ("../data:/d", "/srv/app/data:/d"),
    (".:/code", "/srv/app/docker:/code"),
    ("data:/var/lib/x", "data:/var/lib/x"),
    ("data:/var/lib/x:ro,nocopy", "data:/var/lib/x:ro"),
    ("/tmp", ":/tmp"),
    ("/data:ro", ":/data:ro"),
    ("/host/a/../b//c:/b", "/host/b/c:/b"),
    ("/etc/ssl:/ssl:ro,z", "/etc/ssl:/ssl:ro"),
    ({"type": "bind", "source": "./conf", "target": "/conf", "read_only": "true"}, "/srv/app/docker/conf:/conf:ro"),
    ({"type": "bind", "source": "/abs", "target": "/x", "read_only": "false"}, "/abs:/x"),
    ({"type": "bind", "source": "/abs", "target": "/x", "read_only": "yes"}, "/abs:/x:ro"),
    ({"type": "volume", "source": "db", "target": "/var/lib/postgresql/data"}, "db:/var/lib/postgresql/data"),
    ({"type": "volume", "target": "/anon"}, ":/anon"),
    ({"type": "tmpfs", "target": "/run"}, ":/run"),
    ({"source": "db", "target": "/d"}, "db:/d"),
]


@pytest.mark.parametrize(("written", "expected"), VOLUMES)
def test_volume_canonicalisation(written, expected):
    assert canonical_volume(written, "/srv/app/docker") == expected


def test_volume_home_expansion(monkeypatch):
    monkeypatch.setenv("HOME", "/home/deploy")
    assert canonical_volume("~/certs:/certs:ro", "/srv/app") == "/home/deploy/certs:/certs:ro"


def test_relative_binds_resolve_against_the_first_files_directory(tmp_path):
    # Compose: paths in every file are relative to the first file's directory.
    write(tmp_path / "proj" / "base" / "compose.yml", as_yaml(web({"image": "x", "volumes": ["./a:/a"]})))
    write(tmp_path / "proj" / "over" / "compose.yml", as_yaml(web({"volumes": ["./b:/b"]})))
    item = {"name": "s", "files": ["base/compose.yml", "over/compose.yml"], "env_file": None, "project": None}
    result = collect_stacks([item], str(tmp_path / "proj"), KEY)["s"]
    assert result["services"]["web"]["volumes"] == ["<project>/base/a:/a", "<project>/base/b:/b"]


def test_bind_sources_inside_the_project_are_shown_relative_to_it(tmp_path):
    """The same layout deployed under two project directories must not read as a volume drift."""
    results = []
    for name in ("dev", "prod"):
        project = tmp_path / name
        (project / "docker").mkdir(parents=True)
        (project / "docker" / "compose.yml").write_text(
            "services:\n  web:\n    image: x:1\n    volumes:\n      - ../site:/www:ro\n      - /srv/data:/data\n"
        )
        stacks = collect_stacks([{"name": "app", "files": ["docker/compose.yml"]}], str(project), b"k" * 32)
        results.append(stacks["app"]["services"]["web"]["volumes"])
    assert results[0] == results[1] == ["/srv/data:/data", "<project>/site:/www:ro"]


def test_consecutive_entries_of_a_service_read_as_one_range(tmp_path):
    ports = ["8081:81", "8080:80", "127.0.0.1:53:53/udp", "127.0.0.1:54:54/udp", "7000", "7001/tcp"]
    result = collect_stacks(
        [{"name": "s", "files": [str(write(tmp_path / "c.yml", as_yaml(web({"ports": ports}))))]}], None, KEY
    )
    assert result["s"]["services"]["web"]["ports"] == [
        "127.0.0.1:53-54:53-54/udp",
        "7000-7001/tcp",
        "8080-8081:80-81/tcp",
    ]


PORT_LISTS = [
    pytest.param(["8080:80/tcp", "8081:81/tcp", "8082:82/tcp"], ["8080-8082:80-82/tcp"], id="a-run"),
    pytest.param(["8000-8001:80-81/tcp", "8001:81/tcp", "8002:82/tcp"], ["8000-8002:80-82/tcp"], id="overlap"),
    pytest.param(["8080:80/tcp", "9081:81/tcp"], ["8080:80/tcp", "9081:81/tcp"], id="not-the-same-distance"),
    pytest.param(["8080:80/tcp", "8081:81/udp"], ["8080:80/tcp", "8081:81/udp"], id="not-the-same-protocol"),
    pytest.param(
        ["127.0.0.1:8080:80/tcp", "8081:81/tcp"], ["127.0.0.1:8080:80/tcp", "8081:81/tcp"], id="not-the-same-ip"
    ),
    pytest.param(["80/tcp", "81/tcp", "83/tcp"], ["80-81/tcp", "83/tcp"], id="unpublished"),
    pytest.param(["80:80/tcp", "81/tcp"], ["80:80/tcp", "81/tcp"], id="published-and-not"),
    pytest.param(["8000-8010:80/tcp", "8011:81/tcp"], ["8000-8010:80/tcp", "8011:81/tcp"], id="host-range-kept"),
    pytest.param(["[::1]::80/tcp", "[::1]::81/tcp"], ["[::1]::80-81/tcp"], id="ipv6-ephemeral"),
    pytest.param(["x:80/tcp", "{}", "80/tcp"], ["80/tcp", "x:80/tcp", "{}"], id="not-ports-kept"),
    pytest.param(["9-8/tcp", "1:2:3:4/tcp"], ["1:2:3:4/tcp", "9-8/tcp"], id="odd-ranges-kept"),
    pytest.param([], [], id="none"),
]


@pytest.mark.parametrize(("texts", "expected"), PORT_LISTS)
def test_port_list(texts, expected):
    assert port_list(texts) == expected


def test_port_list_of_a_hostile_size_stays_small_and_quick():
    """Ranges are joined, never expanded: every port of the host, one by one or as wide ranges, is one line."""
    started = time.monotonic()
    one_by_one = ["%d:%d/tcp" % (port, port) for port in range(1, 65536)]
    assert port_list(one_by_one) == ["1-65535:1-65535/tcp"]
    assert port_list(["1-65535:1-65535/tcp"] * 10000 + ["1-65535/udp"] * 10000) == [
        "1-65535/udp",
        "1-65535:1-65535/tcp",
    ]
    assert time.monotonic() - started < 5.0


CAPABILITIES = [
    (["net_admin", "CAP_SYS_TIME", " chown "], ["CHOWN", "NET_ADMIN", "SYS_TIME"]),
    (["ALL", "all"], ["ALL"]),
    (["CAP_"], ["CAP_"]),
    ([None, ""], []),
    (None, []),
]


@pytest.mark.parametrize(("written", "expected"), CAPABILITIES)
def test_capabilities(written, expected):
    # Compose passes cap_add / cap_drop as written; the engine keeps them so.
    assert capabilities(written) == expected


DURATIONS = [
    (90 * 10**9, "1m30s"),
    (5 * 10**9, "5s"),
    (1500 * 10**6, "1.5s"),
    (3600 * 10**9, "1h0m0s"),
    (250 * 10**3, "250\u00b5s"),
    (0, None),
    (None, None),
    (True, None),
    (-1, None),
]


@pytest.mark.parametrize(("nanoseconds", "expected"), DURATIONS)
def test_engine_durations_as_go_prints_them(nanoseconds, expected):
    # The compose side writes "90s" as Go prints it too (compose_values.duration_text): "1m30s".
    assert nanoseconds_text(nanoseconds) == expected


def test_words_are_compared_by_fingerprint():
    words = ["sh", "-c", "echo x"]
    assert words_fingerprint(KEY, words) == fingerprint(KEY, json.dumps(words))
    assert words_fingerprint(KEY, "true") == words_fingerprint(KEY, ["true"])
    assert words_fingerprint(KEY, None) is None
    assert words_fingerprint(KEY, []) != words_fingerprint(KEY, None)


def test_volume_forms():
    assert volume_text("data", "/data/", False) == "data:/data"
    assert volume_text("", "//run/x/../y", True) == ":/run/y:ro"
    assert volume_name("app_db", "app") == "db"
    assert volume_name("app_", "app") == "app_"
    assert volume_name("other_db", "app") == "other_db"
    assert volume_name("app_db", None) == "app_db"
    assert volume_names({"db": {"name": "app_pg"}, "x": None, "y": {"external": "true"}}, "app") == {"db": "pg"}


# ------------------------------------------------------------ both sides agree

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "docker" / "forms_inspect.json"
ROWS = json.loads(FIXTURE.read_text())["rows"]


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_declaration_and_engine_agree(tmp_path, row):
    """The compose side and the engine side give one canonical form for one container."""
    directory = tmp_path / "app"
    service = row["inspect"]["Config"]["Labels"]["com.docker.compose.service"]
    document = dict(row.get("top") or {}, services={service: dict(row["compose"], image="app/x:1")})
    path = write(directory / "compose.yml", as_yaml(document))
    stack = collect_stacks([{"name": "s", "files": [str(path)], "project": "app"}], None, KEY)["s"]
    assert stack["status"] == "ok", stack["reason"]
    declared = stack["services"][service]
    inspect = json.loads(json.dumps(row["inspect"]).replace("@DIR@", str(directory)))
    running = normalize_container(inspect, KEY)
    expected = json.loads(json.dumps(row["expected"]).replace("@DIR@", str(directory)))
    # Sorted again: the directory replacing @DIR@ may sort elsewhere.
    assert declared["ports"] == running["ports"] == sorted(expected["ports"])
    assert declared["volumes"] == running["mounts"] == sorted(expected["volumes"])
    # Nor does the declared-against-running comparison see any other difference in these forms.
    assert list(docker_diff._runtime_differences(declared, running, [running])) == []


LAB_SOCKET = "/run/envparity-lab/docker.sock"


def _lab_engine_answers():
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(2)
            probe.connect(LAB_SOCKET)
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _lab_engine_answers(), reason="the lab's Docker engine is not up (or not readable)")
def test_the_labs_running_containers_read_as_their_compose_files():
    """Each lab container whose service its compose files declare: the same ports and mounts both ways.

    Read-only: GETs to the lab's engine, and its compose files read as the audit reads them.
    """
    from tests.lab.labtest import engine_get

    compared = []
    for summary in engine_get("/containers/json?all=1"):
        inspect = engine_get("/containers/%s/json" % summary["Id"])
        labels = inspect["Config"]["Labels"] or {}
        files = (labels.get("com.docker.compose.project.config_files") or "").split(",")
        if not files[0] or not all(os.access(path, os.R_OK) for path in files):
            continue
        item = {"name": "s", "files": files, "project": labels.get("com.docker.compose.project")}
        stack = collect_stacks([item], None, KEY)["s"]
        declared = stack["services"].get(labels.get("com.docker.compose.service"))
        if declared is None:
            continue  # an orphan: no compose file declares it
        running = normalize_container(inspect, KEY)
        assert (running["name"], declared["ports"], declared["volumes"]) == (
            running["name"],
            running["ports"],
            running["mounts"],
        )
        compared.append((running["name"], running["ports"], running["mounts"]))
    # Not vacuous: the lab publishes ports and mounts binds (read-only ones too).
    assert sum(1 for _, ports, _ in compared if ports) >= 2, compared
    assert any(mount.endswith(":ro") for _, _, mounts in compared for mount in mounts), compared
