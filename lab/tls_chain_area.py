"""Certificate chains and OCSP stapling for the endpoints area: one `openssl s_server` per
environment on loopback (dev 127.0.0.1:18444, prod 127.0.0.1:28444; started and stopped by pid),
each serving a leaf signed by an intermediate of the lab CA (lab/endpoints_area.py's ca.pem) and
sending that intermediate with it.

- dev staples an OCSP response made by `openssl ocsp` for its leaf (good; remade weekly, valid 30
  days); prod staples none (planted: prod does not staple where dev does);
- prod's intermediate expires in 15 days (remade when fewer than 12 are left, so the plant holds on
  any day): a high finding on the intermediate, while the leaf is valid for a year.

Both intermediates are named alike (the chain compares the same), and s_server's status page sends
no HSTS (planted on prod as for any https endpoint without it). The audit reads the chain and the
stapled response from the controller (pyOpenSSL); nothing but loopback is contacted.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from endpoints_area import CA_CERT, _accepts, _key, _openssl, _valid_for  # the lab CA and its helpers
from labcore import (
    STATE_DIR,
    Ctx,
    LabError,
    cmdline,
    ensure_dir,
    pid_alive,
    read_pidfile,
    run,
    terminate,
    write_file,
)

NAME = "tls_chain"
CA_KEY = CA_CERT.with_suffix(".key")  # the lab CA of lab/endpoints_area.py (built before this part)
DIR = STATE_DIR / "tls-chain"
PORTS = {"dev": 18444, "prod": 28444}
HOSTS = {"dev": "localhost", "prod": "ianleblanc.ca"}
INTERMEDIATE_NAME = "envparity lab intermediate"
PROD_INTERMEDIATE_DAYS = 15
PROD_RENEW_BELOW_DAYS = 12
OCSP_DAYS = 30
OCSP_REMAKE_SECONDS = 7 * 86400
SUBJECT = "tls-chain"


def _finding(key: str, kind: str, check: str) -> dict:
    return {"area": "endpoints", "subject": SUBJECT, "key": key, "kind": kind, "check": check, "expected": False}


PLANTED = [
    _finding("tls.ocsp", "changed", "endpoints.ocsp_changed"),
    _finding("tls.intermediate.CN=%s" % INTERMEDIATE_NAME, "policy", "endpoints.intermediate_expiring"),
    _finding("headers.strict-transport-security", "policy", "endpoints.hsts_missing"),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


def _sign(csr: Path, issuer: Path, issuer_key: Path, days: int, extensions: str, out: Path) -> None:
    ext = out.with_suffix(".ext")
    ext.write_text(extensions)
    serial = out.with_suffix(".srl")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(issuer), "-CAkey", str(issuer_key), "-CAcreateserial",
        "-CAserial", str(serial), "-days", str(days), "-extfile", str(ext), "-out", str(out),
    )  # fmt: skip


def _chain(ctx: Ctx, env: str) -> None:
    """env's intermediate (signed by the lab CA) and leaf (signed by the intermediate)."""
    inter, inter_key = DIR / ("%s-intermediate.pem" % env), DIR / ("%s-intermediate.key" % env)
    leaf, leaf_key = DIR / ("%s-leaf.pem" % env), DIR / ("%s-leaf.key" % env)
    _key(inter_key)
    _key(leaf_key)
    days = PROD_INTERMEDIATE_DAYS if env == "prod" else 3650
    renew_below = PROD_RENEW_BELOW_DAYS if env == "prod" else 365
    ca_newer = inter.exists() and CA_CERT.stat().st_mtime > inter.stat().st_mtime
    if ca_newer or not _valid_for(inter, renew_below):
        csr = DIR / ("%s-intermediate.csr" % env)
        _openssl("req", "-new", "-key", str(inter_key), "-subj", "/CN=%s" % INTERMEDIATE_NAME, "-out", str(csr))
        extensions = (
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
        )
        _sign(csr, CA_CERT, CA_KEY, days, extensions, inter)
        leaf.unlink(missing_ok=True)  # signed by the old intermediate
        ctx.changed("made %s's intermediate (%d days)" % (env, days))
    if not _valid_for(leaf, 30):
        csr = DIR / ("%s-leaf.csr" % env)
        _openssl("req", "-new", "-key", str(leaf_key), "-subj", "/CN=%s" % HOSTS[env], "-out", str(csr))
        _sign(csr, inter, inter_key, 365, "subjectAltName=DNS:%s\n" % HOSTS[env], leaf)
        (DIR / "dev-ocsp.der").unlink(missing_ok=True)
        ctx.changed("made %s's leaf certificate" % env)
        ctx.flags.add("tls_chain_restart_" + env)


def _ocsp(ctx: Ctx) -> None:
    """dev's stapled response: `openssl ocsp` as the intermediate's responder, for dev's leaf."""
    response = DIR / "dev-ocsp.der"
    if response.exists() and time.time() - response.stat().st_mtime < OCSP_REMAKE_SECONDS:
        return
    inter, leaf = DIR / "dev-intermediate.pem", DIR / "dev-leaf.pem"
    serial = run(["openssl", "x509", "-in", str(leaf), "-noout", "-serial"]).stdout.strip().split("=", 1)[1]
    index = DIR / "dev-index.txt"  # the responder's database: dev's leaf, valid (V)
    index.write_text("V\t491231235959Z\t\t%s\tunknown\t/CN=%s\n" % (serial, HOSTS["dev"]))
    request = DIR / "dev-ocsp-request.der"
    _openssl("ocsp", "-issuer", str(inter), "-cert", str(leaf), "-no_nonce", "-reqout", str(request))
    _openssl(
        "ocsp", "-index", str(index), "-rsigner", str(inter), "-rkey", str(DIR / "dev-intermediate.key"),
        "-CA", str(inter), "-reqin", str(request), "-respout", str(response), "-ndays", str(OCSP_DAYS),
    )  # fmt: skip
    ctx.changed("made dev's stapled OCSP response (%d days)" % OCSP_DAYS)
    ctx.flags.add("tls_chain_restart_dev")


def build(ctx: Ctx) -> None:
    ensure_dir(ctx, DIR, 0o755)
    for env in PORTS:
        _chain(ctx, env)
    _ocsp(ctx)


def _pidfile(env: str) -> Path:
    return DIR / ("%s-server.pid" % env)


def running_pid(env: str) -> int | None:
    """env's s_server, if it runs: the pidfile's pid, and its command line names env's leaf."""
    pid = read_pidfile(_pidfile(env))
    if pid and pid_alive(pid) and str(DIR / ("%s-leaf.pem" % env)) in cmdline(pid):
        return pid
    return None


def _command(env: str) -> list[str]:
    command = [
        "openssl", "s_server", "-quiet", "-www", "-accept", "127.0.0.1:%d" % PORTS[env],
        "-cert", str(DIR / ("%s-leaf.pem" % env)), "-key", str(DIR / ("%s-leaf.key" % env)),
        "-cert_chain", str(DIR / ("%s-intermediate.pem" % env)),
    ]  # fmt: skip
    if env == "dev":
        command += ["-status_file", str(DIR / "dev-ocsp.der")]
    return command


def start(ctx: Ctx) -> None:
    for env, port in PORTS.items():
        pid = running_pid(env)
        if pid and "tls_chain_restart_" + env not in ctx.flags:
            continue
        if pid:
            terminate(pid)
        with open(DIR / ("%s-server.log" % env), "ab") as log:
            proc = subprocess.Popen(
                _command(env), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=str(DIR)
            )
        write_file(ctx, _pidfile(env), "%d\n" % proc.pid, 0o644)
        if not _accepts(port) or proc.poll() is not None:
            raise LabError("%s's openssl s_server did not come up on 127.0.0.1:%d" % (env, port))
        ctx.changed("started %s's openssl s_server (pid %d) on 127.0.0.1:%d" % (env, proc.pid, port))


def stop(ctx: Ctx) -> None:
    for env in PORTS:
        pid = running_pid(env)
        if pid:
            terminate(pid)
            ctx.changed("stopped %s's openssl s_server (pid %d)" % (env, pid))
        _pidfile(env).unlink(missing_ok=True)


def status() -> list[tuple[str, bool, str]]:
    checks = []
    for env, port in PORTS.items():
        pid = running_pid(env)
        checks.append(
            ("tls chain %s" % env, bool(pid), "pid %d on 127.0.0.1:%d" % (pid, port) if pid else "not running")
        )
    return checks
