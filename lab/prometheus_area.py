"""Prod's Prometheus, for the endpoints area's service-level metrics: Debian's `prometheus` server
on 127.0.0.1:29090 (started and stopped by pid, as the `prometheus` user, its data under
STATE_DIR/prometheus), scraping every 2 s:

- job `web`: prod's HTTP site (lab/endpoints_area.py, 127.0.0.1:28080/metrics), whose own client
  requests /api/search and /api/orders once a second each; /api/orders always answers 500, so
  about 40 % of the job's requests are 5xx (planted: far above the 1 % tolerance);
- job `node`: 127.0.0.1:29100, where nothing listens (planted: a scrape target down).

Dev has no Prometheus (its metrics are "not configured", never "different"). Nothing but loopback
is scraped or listened on. PLANTED lists what the audit must report, no more.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request

from labcore import (
    STATE_DIR,
    Ctx,
    LabError,
    cmdline,
    ensure_dir,
    install_packages,
    pid_alive,
    read_pidfile,
    terminate,
    uninstalled,
    write_file,
)

NAME = "prometheus"
DIR = STATE_DIR / "prometheus"
DATA = DIR / "data"
CONFIG = DIR / "prometheus.yml"
PIDFILE = DIR / "prometheus.pid"
LOG = DIR / "prometheus.log"
BINARY = "/usr/bin/prometheus"
PORT = 29090
WEB_PORT = 28080  # prod's HTTP site (lab/endpoints_area.py PORTS["prod_http"])
DOWN_PORT = 29100  # nothing listens here
SUBJECT = "prometheus-metrics"
USER = "prometheus"

CONFIG_TEXT = """\
# The lab's prod Prometheus (lab/prometheus_area.py); made by labctl, do not edit.
global:
  scrape_interval: 2s
  scrape_timeout: 1s
  evaluation_interval: 15s
scrape_configs:
  - job_name: web
    static_configs:
      - targets: ["127.0.0.1:%d"]
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:%d"]
""" % (WEB_PORT, DOWN_PORT)


def _finding(key: str, kind: str, check: str, expected: bool = False) -> dict:
    return {"area": "endpoints", "subject": SUBJECT, "key": key, "kind": kind, "check": check, "expected": expected}


PLANTED = [
    # dev has no Prometheus: not configured there (the engine's finding), not "different".
    _finding("*", "missing", "endpoints.not_configured"),
    _finding("up.node", "policy", "endpoints.target_down"),
    _finding("error_ratio.web", "policy", "endpoints.error_ratio"),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


def build(ctx: Ctx) -> None:
    install_packages(ctx, uninstalled(["prometheus"]))
    ensure_dir(ctx, DIR, 0o755)
    ensure_dir(ctx, DATA, 0o750, owner=USER)
    if write_file(ctx, CONFIG, CONFIG_TEXT, 0o644):
        ctx.flags.add("prometheus_restart")


def running_pid() -> int | None:
    """The lab's Prometheus, if it runs: the pidfile's pid, and its command line names our config."""
    pid = read_pidfile(PIDFILE)
    if pid and pid_alive(pid) and str(CONFIG) in cmdline(pid):
        return pid
    return None


def query(promql: str, timeout: float = 5.0) -> list:
    """The result list of an instant query to the lab's Prometheus."""
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (PORT, urllib.parse.urlencode({"query": promql}))
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (loopback, fixed scheme)
        return json.load(answer)["data"]["result"]


def _scraped(timeout: float = 60.0) -> bool:
    """Whether both jobs were scraped and the web job's error ratio can be computed (two scrapes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            jobs = {series["metric"]["job"] for series in query("up")}
            rate = query("sum by (job) (rate(http_requests_total[5m]))")
            if jobs == {"web", "node"} and rate:
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    return False


def start(ctx: Ctx) -> None:
    pid = running_pid()
    if pid and "prometheus_restart" not in ctx.flags:
        return
    if pid:
        terminate(pid)
    command = [
        BINARY,
        "--config.file=%s" % CONFIG,
        "--storage.tsdb.path=%s" % DATA,
        "--storage.tsdb.retention.time=1d",
        "--web.listen-address=127.0.0.1:%d" % PORT,
    ]
    with open(LOG, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            user=USER,
            group=USER,
            extra_groups=[],
            cwd=str(DIR),
        )
    write_file(ctx, PIDFILE, "%d\n" % proc.pid, 0o644)
    if not _scraped() or proc.poll() is not None:
        raise LabError("prod's Prometheus did not come up and scrape on 127.0.0.1:%d; see %s" % (PORT, LOG))
    ctx.changed("started prod's Prometheus (pid %d) on 127.0.0.1:%d" % (proc.pid, PORT))


def stop(ctx: Ctx) -> None:
    pid = running_pid()
    if pid:
        terminate(pid)
        ctx.changed("stopped prod's Prometheus (pid %d)" % pid)
    PIDFILE.unlink(missing_ok=True)


def status() -> list[tuple[str, bool, str]]:
    pid = running_pid()
    return [("prometheus (prod)", bool(pid), "pid %d on 127.0.0.1:%d" % (pid, PORT) if pid else "not running")]
