"""Canonical forms of ports and volumes."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import canonical_port, canonical_volume
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
