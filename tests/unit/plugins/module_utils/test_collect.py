"""collect_areas: every requested area through the registry, concurrently; one failing area never
hides the others; reasons leave the host redacted. Real collectors on real files."""

import threading
import time

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import areas, collect

KEY = b"k" * 32


class Collector:
    """A stand-in collector module: just its collect_area."""

    def __init__(self, collect_area):
        self.collect_area = collect_area


def env_request(path, project_dir=None):
    return {
        "project_dir": project_dir,
        "files": [{"name": "app", "path": str(path), "template": None}],
        "max_bytes": 1024,
    }


def test_the_registry_collects_a_real_env_file(tmp_path):
    (tmp_path / "a.env").write_text("DEBUG=true\n")
    result = collect.collect_areas({"env": env_request(tmp_path / "a.env")}, KEY)
    assert result["env"]["status"] == "ok"
    assert result["env"]["data"]["files"]["app"]["keys"]["DEBUG"]["display"] == "true"


def test_one_failing_area_never_hides_the_others(tmp_path, monkeypatch):
    (tmp_path / "a.env").write_text("A=1\n")

    def broken(request, hmac_key, secrets=None):
        raise PermissionError(13, "Permission denied", "/secret/path?password=hunter2")

    monkeypatch.setitem(areas.BY_NAME, "git", areas.BY_NAME["git"]._replace(load=lambda: Collector(broken)))
    result = collect.collect_areas({"env": env_request(tmp_path / "a.env"), "git": {}}, KEY)
    assert result["env"]["status"] == "ok"
    assert result["git"] == {"status": "failed", "reason": "PermissionError: Permission denied"}
    assert "hunter2" not in repr(result)


def test_an_area_the_host_does_not_know_is_a_failure_of_its_own(tmp_path):
    (tmp_path / "a.env").write_text("A=1\n")
    result = collect.collect_areas({"env": env_request(tmp_path / "a.env"), "dns": {}}, KEY)
    assert result["env"]["status"] == "ok"
    assert result["dns"]["status"] == "failed" and "no collector for area 'dns'" in result["dns"]["reason"]


def test_areas_run_concurrently(monkeypatch):
    inside, both = [], threading.Barrier(2, timeout=5)

    def slow(request, hmac_key, secrets=None):
        inside.append(request["name"])
        both.wait()  # raises BrokenBarrierError if the other area never runs at the same time
        return {"name": request["name"]}

    for name in ("env", "git"):
        monkeypatch.setitem(areas.BY_NAME, name, areas.BY_NAME[name]._replace(load=lambda: Collector(slow)))
    start = time.monotonic()
    result = collect.collect_areas({"env": {"name": "e"}, "git": {"name": "g"}}, KEY)
    assert {r["status"] for r in result.values()} == {"ok"}
    assert sorted(inside) == ["e", "g"] and time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("reason", "hidden"),
    [
        ("could not connect to postgresql://app:s3cr3t-Pass@db:5432/app", "s3cr3t-Pass"),
        ("psql: host=db password=Zq8!pw dbname=app", "Zq8!pw"),
    ],
)
def test_every_reason_a_collector_writes_is_redacted_on_the_host(monkeypatch, reason, hidden):
    def leaky(request, hmac_key, secrets=None):
        return {"databases": {"app": {"status": "unreachable", "reason": reason, "nested": [{"reason": reason}]}}}

    monkeypatch.setitem(areas.BY_NAME, "postgres", areas.BY_NAME["postgres"]._replace(load=lambda: Collector(leaky)))
    result = collect.collect_areas({"postgres": {}}, KEY)
    record = result["postgres"]["data"]["databases"]["app"]
    assert hidden not in repr(result)
    assert "***" in record["reason"] and "***" in record["nested"][0]["reason"]
    assert record["status"] == "unreachable"
