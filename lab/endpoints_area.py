"""The endpoints area of the lab: a real web service for dev and prod on loopback, over HTTP and
HTTPS, with certificates made at build time by `openssl`.

One process (lab/endpoints_server.py, copied under STATE_DIR/endpoints and run by pid) serves four
sites on 127.0.0.1: dev HTTPS (18443) and HTTP (18080), prod HTTPS (28443) and HTTP (28080). The
inventory reaches prod as https://ianleblanc.ca through `connect_to: 127.0.0.1:28443` (nothing
but loopback is ever contacted), probed from the prod host (`from: host`); dev from the controller.

- dev's certificate is self-signed for localhost and www.localhost (expected by the lab's rules);
  prod's comes from the lab CA, for ianleblanc.ca only (www missing), and expires in 10 days (it
  is made again when fewer than 8 are left, so the plant holds on any day); prod still accepts
  TLS 1.0 and 1.1.
- /api/health (JSON): dev reports its checkout's HEAD, prod the v1.0.0 tag's commit while its
  checkout is at its hot-fix (the code that runs is not the code on disk: the lab's inventory
  names the repository with `git_repo: app`, so an audit with the git area finds it; its
  manifest entry says so with `with_areas: ["git"]`, and an endpoints-only audit finds all the
  rest); prod reports another version, has a field dev lacks
  (legacy_mode), sends no HSTS, tells its version in Server, sets its session cookie without
  Secure; each health body carries a canary token (fingerprinted, never shown); `uptime` changes
  on every call (volatile, never drift).
- /api/search over HTTP: 0.6 s slower in prod than in dev (far beyond the tolerances).
- prod's HTTP site serves /metrics (request counts and durations) to prod's Prometheus
  (lab/prometheus_area.py) and makes its own traffic: /api/search and /api/orders, which always
  answers 500, once a second each.
- HTTP /: dev redirects to HTTPS, prod answers over plain HTTP.
- The probes' credentials are canaries too: dev's search URL carries a password
  (http://monitor:…@localhost), prod's health takes a bearer token header; both routes answer 401
  without them, so a report without a 401 proves they were sent, and the leak test that they were
  never shown.
PLANTED lists the findings the audit must report for this area, no more.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from pathlib import Path

from labcore import (
    DEV,
    STATE_DIR,
    Ctx,
    LabError,
    canary_maker,
    cmdline,
    ensure_dir,
    pid_alive,
    read_pidfile,
    run,
    terminate,
    write_file,
)

NAME = "endpoints"
CANARY_PREFIX = "endpoints."
DIR = STATE_DIR / "endpoints"
CA_CERT = DIR / "ca.pem"
CONFIG = DIR / "sites.json"
SERVER = DIR / "endpoints_server.py"
PIDFILE = DIR / "server.pid"
LOG = DIR / "server.log"
# The probes' credentials, read by the inventory with a file lookup (as from a mounted secret).
DEV_PASSWORD = DIR / "dev.probe_password"
PROD_TOKEN = DIR / "prod.probe_token"
SOURCE = Path(__file__).resolve().parent / "endpoints_server.py"
PORTS = {"dev_https": 18443, "dev_http": 18080, "prod_https": 28443, "prod_http": 28080}
PROD_HOST = "ianleblanc.ca"
PROD_DAYS = 10
PROD_RENEW_BELOW_DAYS = 8
SLOW_SECONDS = 0.6
RELEASE_TAG = "v1.0.0"  # the git area's tag of the shared commit
HEALTH = "api-health"
SEARCH = "api-search"
SITE = "site-http"


def _finding(subject: str, key: str, kind: str, check: str, expected: bool = False, with_areas=()) -> dict:
    """with_areas: the other areas the audit must run for the check to be made (none: this one alone)."""
    entry = {"area": "endpoints", "subject": subject, "key": key, "kind": kind, "check": check, "expected": expected}
    if with_areas:
        entry["with_areas"] = list(with_areas)
    return entry


PLANTED = [
    # prod's certificate: 10 days left (high), no www name; dev's self-signed one is expected.
    _finding(HEALTH, "tls.expiry", "policy", "endpoints.cert_expiring"),
    _finding(HEALTH, "tls.san.www.{host}", "missing", "endpoints.cert_names_changed"),
    _finding(HEALTH, "tls.issuer", "changed", "endpoints.cert_issuer_changed", expected=True),
    _finding(HEALTH, "tls.trust", "changed", "endpoints.cert_trust_changed", expected=True),
    # prod still accepts TLS 1.0 and 1.1.
    _finding(HEALTH, "tls.legacy", "changed", "endpoints.tls_changed"),
    _finding(HEALTH, "tls.legacy", "policy", "endpoints.legacy_tls"),
    # prod sends no HSTS, tells its version, and its session cookie lacks Secure.
    _finding(HEALTH, "headers.strict-transport-security", "missing", "endpoints.header_changed"),
    _finding(HEALTH, "headers.strict-transport-security", "policy", "endpoints.hsts_missing"),
    _finding(HEALTH, "headers.server", "changed", "endpoints.header_changed"),
    _finding(HEALTH, "headers.server", "policy", "endpoints.version_leak"),
    _finding(HEALTH, "cookies.session", "changed", "endpoints.cookie_changed"),
    _finding(HEALTH, "cookies.session", "policy", "endpoints.cookie_flags"),
    # the health body: another version and commit, another canary token, a field dev lacks.
    _finding(HEALTH, "body.version", "changed", "endpoints.version_changed"),
    _finding(HEALTH, "body.commit", "changed", "endpoints.version_changed"),
    # prod runs v1.0.0's commit, its checkout is at the hot-fix (git_repo: the git area's HEAD).
    _finding(HEALTH, "body.commit", "policy", "endpoints.commit_not_checkout", with_areas=["git"]),
    _finding(HEALTH, "body.cache_token", "changed", "endpoints.body_changed"),
    _finding(HEALTH, "body.legacy_mode", "extra", "endpoints.body_changed"),
    # search: 0.6 s slower in prod; served over plain http there.
    _finding(SEARCH, "timing", "policy", "endpoints.slower"),
    _finding(SEARCH, "redirects", "policy", "endpoints.no_https_redirect"),
    # http /: dev redirects to https, prod does not.
    _finding(SITE, "redirects", "changed", "endpoints.redirects_changed"),
    _finding(SITE, "redirects", "policy", "endpoints.no_https_redirect"),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


def stale_rules() -> list[str]:
    return []


# ---------------------------------------------------------------- certificates


def _openssl(*args: str) -> None:
    run(["openssl", *args])


def _valid_for(cert: Path, days: int) -> bool:
    """Whether the certificate exists and is still valid `days` days from now."""
    if not cert.exists():
        return False
    proc = run(["openssl", "x509", "-in", str(cert), "-noout", "-checkend", str(days * 86400)], check=False)
    return proc.returncode == 0


def _expires_within(cert: Path, days: int) -> bool:
    return cert.exists() and not _valid_for(cert, days)


def _key(path: Path) -> None:
    if not path.exists():
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
        path.chmod(0o600)


def _certificates(ctx: Ctx) -> None:
    ensure_dir(ctx, DIR, 0o755)
    ca_key = DIR / "ca.key"
    _key(ca_key)
    if not _valid_for(CA_CERT, 365):
        _openssl(
            "req", "-x509", "-new", "-key", str(ca_key), "-days", "3650", "-subj", "/CN=envparity lab CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", str(CA_CERT),
        )  # fmt: skip
        CA_CERT.chmod(0o644)
        (DIR / "prod.pem").unlink(missing_ok=True)  # signed by the old CA
        ctx.changed("made the lab CA %s" % CA_CERT)
        ctx.flags.add("endpoints_restart")
    dev_cert, dev_key = DIR / "dev.pem", DIR / "dev.key"
    _key(dev_key)
    if not _valid_for(dev_cert, 30):
        _openssl(
            "req", "-x509", "-new", "-key", str(dev_key), "-days", "365", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,DNS:www.localhost", "-out", str(dev_cert),
        )  # fmt: skip
        ctx.changed("made dev's self-signed certificate")
        ctx.flags.add("endpoints_restart")
    prod_cert, prod_key = DIR / "prod.pem", DIR / "prod.key"
    _key(prod_key)
    if not prod_cert.exists() or _expires_within(prod_cert, PROD_RENEW_BELOW_DAYS):
        csr = DIR / "prod.csr"
        _openssl("req", "-new", "-key", str(prod_key), "-subj", "/CN=%s" % PROD_HOST, "-out", str(csr))
        extensions = DIR / "prod.ext"
        extensions.write_text("subjectAltName=DNS:%s\n" % PROD_HOST)
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(CA_CERT), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", str(PROD_DAYS), "-extfile", str(extensions), "-out", str(prod_cert),
        )  # fmt: skip
        ctx.changed("made prod's certificate (%d days, lab CA)" % PROD_DAYS)
        ctx.flags.add("endpoints_restart")


# ---------------------------------------------------------------- sites

SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "default-src 'self'",
}


def _commit(revision: str) -> str:
    """The short id of a revision of dev's checkout (read-only; the git area built it already)."""
    cmd = ["git", "--no-optional-locks", "-C", str(DEV.project_dir), "rev-parse", "--short=7", revision]
    return run(cmd, env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}).stdout.strip()


def _health(env: str, token: str, commit: str, auth: str | None = None) -> dict:
    dev = env == "dev"
    headers = dict(SECURITY)
    if dev:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    headers["Set-Cookie"] = "session=lab; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if dev else "")
    body = {
        "status": "ok",
        "version": "1.5.0" if dev else "1.4.2",
        "commit": commit,
        "database": {"ok": True, "migrations": 12},
        "cache_token": token,
    }
    if not dev:
        body["legacy_mode"] = True
    route = {"json": body, "headers": headers, "uptime": True}
    if auth:
        route["auth"] = auth
    if not dev:
        route["server"] = "envparity-lab/1.4.2 Python/3"
    return route


def _sites(tokens: dict[str, str], commits: dict[str, str]) -> dict:
    search = {"json": {"results": []}, "headers": dict(SECURITY)}
    basic = base64.b64encode(("monitor:%s" % tokens["dev_password"]).encode()).decode()
    page = {"text": "<html><body>lab</body></html>", "headers": dict(SECURITY)}
    return {
        "sites": [
            {
                "port": PORTS["dev_https"],
                "tls": {"cert": str(DIR / "dev.pem"), "key": str(DIR / "dev.key")},
                "routes": {"/api/health": _health("dev", tokens["dev"], commits["dev"]), "/": page},
            },
            {
                "port": PORTS["dev_http"],
                "tls": None,
                "routes": {
                    "/": {
                        "status": 301,
                        "text": "",
                        "headers": {"Location": "https://localhost:%d/" % PORTS["dev_https"]},
                    },
                    "/api/search": dict(search, auth="Basic " + basic),
                },
            },
            {
                "port": PORTS["prod_https"],
                "tls": {"cert": str(DIR / "prod.pem"), "key": str(DIR / "prod.key"), "legacy": True},
                "routes": {
                    "/api/health": _health("prod", tokens["prod"], commits["prod"], "Bearer " + tokens["prod_bearer"]),
                    "/": page,
                },
            },
            {
                "port": PORTS["prod_http"],
                "tls": None,
                "routes": {
                    "/": page,
                    "/api/search": dict(search, delay=SLOW_SECONDS),
                    "/api/orders": {"status": 500, "json": {"error": "orders backend unavailable"}},
                },
                # scraped by prod's Prometheus (lab/prometheus_area.py); its own client makes the
                # traffic whose 5xx share Prometheus computes (/api/orders always fails)
                "metrics": True,
                "traffic": [{"path": "/api/search", "every": 1.0}, {"path": "/api/orders", "every": 1.0}],
            },
        ]
    }


def build(ctx: Ctx) -> None:
    tokens = {env: ctx.canary("endpoints.%s.cache_token" % env, canary_maker("lab-", 24)) for env in ("dev", "prod")}
    # the probes' own credentials: a password in dev's search URL, a bearer token for prod's health
    tokens["dev_password"] = ctx.canary("endpoints.dev.probe_password", canary_maker("pw", 20))
    tokens["prod_bearer"] = ctx.canary("endpoints.prod.probe_token", canary_maker("tok", 24))
    ctx.save_canaries(CANARY_PREFIX)
    _certificates(ctx)
    write_file(ctx, DEV_PASSWORD, tokens["dev_password"], 0o600)
    write_file(ctx, PROD_TOKEN, tokens["prod_bearer"], 0o600)
    # dev runs its checkout's HEAD; prod still runs the release tag, not its hot-fixed checkout
    commits = {"dev": _commit("HEAD"), "prod": _commit(RELEASE_TAG)}
    changed = write_file(ctx, CONFIG, json.dumps(_sites(tokens, commits), indent=2, sort_keys=True) + "\n", 0o600)
    changed |= write_file(ctx, SERVER, SOURCE.read_text(), 0o755)
    if changed:
        ctx.flags.add("endpoints_restart")


# ---------------------------------------------------------------- the service


def running_pid() -> int | None:
    """The lab's web service, if it runs: the pidfile's pid, and its command line names our config."""
    pid = read_pidfile(PIDFILE)
    if pid and pid_alive(pid) and str(CONFIG) in cmdline(pid):
        return pid
    return None


def _accepts(port: int, timeout: float = 10.0) -> bool:
    """Whether something accepts on 127.0.0.1:port within timeout (an HTTP server sends no banner)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def _listening() -> bool:
    return all(_accepts(port) for port in PORTS.values())


def start(ctx: Ctx) -> None:
    pid = running_pid()
    if pid and "endpoints_restart" not in ctx.flags:
        return
    if pid:
        terminate(pid)
    with open(LOG, "ab") as log:
        proc = subprocess.Popen(
            ["/usr/bin/python3", "-I", "-S", str(SERVER), str(CONFIG)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    write_file(ctx, PIDFILE, "%d\n" % proc.pid, 0o644)
    if not _listening() or proc.poll() is not None:
        raise LabError("the lab's web service did not come up on %s; see %s" % (sorted(PORTS.values()), LOG))
    ctx.changed("started the lab's web service (pid %d) on ports %s" % (proc.pid, sorted(PORTS.values())))


def stop(ctx: Ctx) -> None:
    pid = running_pid()
    if pid:
        terminate(pid)
        ctx.changed("stopped the lab's web service (pid %d)" % pid)
    PIDFILE.unlink(missing_ok=True)


def status() -> list[tuple[str, bool, str]]:
    pid = running_pid()
    checks = [("endpoints service", bool(pid), "pid %d" % pid if pid else "not running")]
    checks.append(
        (
            "endpoints prod certificate",
            _valid_for(DIR / "prod.pem", 0) and _expires_within(DIR / "prod.pem", 21),
            "expires within 21 days (planted)",
        )
    )
    return checks
