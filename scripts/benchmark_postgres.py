#!/usr/bin/env python3
"""Benchmark the PostgreSQL area against migra. Not a test: it measures and prints figures.

    .venv/bin/python scripts/benchmark_postgres.py [--tables 2000] [--runs 3] [--growth 4]
                                                   [--no-migra] [--migra-growth] [--quick]
                                                   [--output reports/benchmark_postgres.json]

It starts its OWN throwaway PostgreSQL 15 cluster (initdb as the postgres system user when run as
root, in a fresh directory under /tmp, on a free loopback port, fsync off, autovacuum off), and
stops and removes it at the end, also on an error or Ctrl-C. The lab's clusters are never touched.

  databases    bench_a: --tables tables (15 columns of mixed types, an identity primary key, 2 indexes,
               a foreign key to the previous table, or to public.parents for every 20th), generated
               server-side by one DO block (generate_series + format + EXECUTE, a COMMIT every 100
               tables); bench_b: a copy of bench_a (CREATE DATABASE … TEMPLATE) with 1% of the tables
               drifted (column type, nullability, default, length, added, dropped; index added,
               dropped; check added; foreign key dropped); ANALYZE on both.
  envparity    what an audit of two hosts does, minus Ansible: on each "host" the module's code
               path (collect_areas -> collect_postgres: one read-only psql session, one catalog
               query) and pack(); on the "controller" the packed facts land in a run directory and
               build_audit (unpack + keyed diff + rules), build_document + build_view + render_markdown
               with the real template (roles/audit/templates/report.md.j2) give the report (files not
               written: that is I/O). 1 warm-up, median of --runs.
                 catalog read   collect_areas on bench_a, on bench_b (sequential, as timed); and the
                                collector's own psql script on bench_a run bare (the psql floor: server
                                and psql, no Python shaping; not part of the end to end)
                 diff           pg_diff.diff on the two catalogs alone (also inside build_audit)
                 report         build_document + build_view + render_markdown
                 end to end     read both + pack both + land + build_audit + report, the hosts one
                                after the other
                 hosts at once  the same with both hosts' work (read + pack) run at the same time in
                                two processes, as Ansible's forks run two hosts, each sending back
                                its packed facts as the module does; here both share this machine's
                                CPUs with the one server, where an audit has a host each
               The diff's findings are checked against the planted drift (every drifted table found,
               no other table named).
  migra        installed in its own virtualenv under /tmp (pip install migra psycopg2-binary; if it
               does not work on a tiny pair of databases, again with version pins), never a project
               dependency; `migra --unsafe postgresql://…/bench_a postgresql://…/bench_b` timed to its
               answer (exit 2: differences found), 1 warm-up (skipped when a run takes over 60 s), median
               of --runs. The password reaches migra and psql through PGPASSWORD, never a command line.
  growth       the databases rebuilt at --growth × --tables (default 4×) and envparity measured again
               (migra too with --migra-growth): the ratio of the end-to-end medians (goal: at most 5×).
  ratio        migra's median over envparity's end to end, both ways (goal: at least 10×).
  data parity  bench_data: one table of --data-rows rows (default 10,000,000) and --reference-tables
               small tables (default 20) that foreign keys reference; the catalog read with and
               without data_parity (the role's defaults for everything else), 1 warm-up, median of
               --runs: what data parity adds (goal: at most 2 s). --data-only runs this part alone.

The figures go to stdout and, as JSON, to reports/benchmark_postgres.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import yaml
from benchlib import BenchmarkError, stats

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = str(ROOT / "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.envparity.audit.plugins.module_utils.collect import collect_areas, pack  # noqa: E402
from ansible_collections.envparity.audit.plugins.module_utils.pg_collect import build_script  # noqa: E402
from ansible_collections.envparity.audit.plugins.module_utils.pg_psql import PSQL_ARGS  # noqa: E402
from ansible_collections.envparity.audit.plugins.plugin_utils import pg_diff, run_dir  # noqa: E402
from ansible_collections.envparity.audit.plugins.plugin_utils.audit import build_audit  # noqa: E402
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import (  # noqa: E402
    build_document,
    build_view,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import render_markdown  # noqa: E402
from ansible_collections.envparity.audit.plugins.plugin_utils.requests import postgres_request  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TEMPLATE = ROOT / "roles" / "audit" / "templates" / "report.md.j2"
ROLE_DEFAULTS = ROOT / "roles" / "postgres" / "defaults" / "main.yml"
DB_A, DB_B = "bench_a", "bench_b"
SUBJECT = "bench"  # drift_postgres[].name: the logical database both environments have
HOSTS = {"dev": "bench-dev", "prod": "bench-prod"}  # environment -> host; bench_a is dev (the baseline)
COMMIT_EVERY = 100  # tables per transaction while building (the shared lock table stays at its default)
TABLE_RE = re.compile(r"(?<![A-Za-z0-9_$])t\d{5}(?!\d)")  # a table's name, also inside an index's name
MIGRA_SLOW_S = 60  # a migra run longer than this counts as a sample, not a warm-up
SQL_TIMEOUT = 3600

# 15 columns of mixed types; %1$I is the table, %2$I its foreign key's name, %3$I the referenced table.
TABLE_DDL = (
    "CREATE TABLE public.%1$I ("
    " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " parent_id bigint CONSTRAINT %2$I REFERENCES public.%3$I (id) ON DELETE CASCADE,"
    " code varchar(40) NOT NULL,"
    " name text NOT NULL,"
    " amount numeric(12,2) DEFAULT 0,"
    " quantity integer,"
    " ratio double precision,"
    " active boolean NOT NULL DEFAULT true,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamp without time zone,"
    " due_on date,"
    " payload jsonb,"
    " tags text[] DEFAULT '{}',"
    " ref uuid,"
    " note varchar(200))"
)

BUILD_SQL = """
CREATE TABLE public.parents (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL);
DO $bench$
DECLARE
  i integer;
  t text;
  parent text;
BEGIN
  FOR i IN SELECT generate_series(1, @TABLES@) LOOP
    t := 't' || lpad(i::text, 5, '0');
    parent := CASE WHEN i % 20 = 1 THEN 'parents' ELSE 't' || lpad((i - 1)::text, 5, '0') END;
    EXECUTE format($ddl$@DDL@$ddl$, t, t || '_parent_fkey', parent);
    EXECUTE format('CREATE INDEX %I ON public.%I (code)', t || '_code_idx', t);
    EXECUTE format('CREATE INDEX %I ON public.%I (parent_id, created_at)', t || '_parent_created_idx', t);
    IF i % @COMMIT@ = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
END
$bench$;
"""

# The planted drift, one kind per drifted table in turn ({t}: the table).
DRIFTS = (
    ("column type changed", "ALTER TABLE public.{t} ALTER COLUMN quantity TYPE bigint;"),
    ("column nullability changed", "ALTER TABLE public.{t} ALTER COLUMN note SET NOT NULL;"),
    ("index dropped", "DROP INDEX public.{t}_code_idx;"),
    ("column added", "ALTER TABLE public.{t} ADD COLUMN extra_flag boolean;"),
    ("column default changed", "ALTER TABLE public.{t} ALTER COLUMN amount SET DEFAULT 1;"),
    ("column dropped", "ALTER TABLE public.{t} DROP COLUMN ratio;"),
    ("index added", "CREATE INDEX {t}_name_idx ON public.{t} (name);"),
    ("check constraint added", "ALTER TABLE public.{t} ADD CONSTRAINT {t}_amount_check CHECK (amount >= 0);"),
    ("foreign key dropped", "ALTER TABLE public.{t} DROP CONSTRAINT {t}_parent_fkey;"),
    ("column length changed", "ALTER TABLE public.{t} ALTER COLUMN code TYPE varchar(80);"),
)

# migra's install: tried in order until migra answers on a tiny pair of databases.
MIGRA_ATTEMPTS = (
    ("unpinned", ["migra", "psycopg2-binary"]),
    ("sqlalchemy<2", ["migra", "psycopg2-binary", "sqlalchemy<2"]),
    ("sqlalchemy<1.4", ["migra", "psycopg2-binary", "sqlalchemy<1.4"]),
)
MIGRA_PACKAGES = ("migra", "schemainspect", "sqlbag", "sqlalchemy", "psycopg2-binary", "setuptools")
PROBE_SQL = "CREATE TABLE public.probe (id integer PRIMARY KEY, name text);"


# --- helpers -------------------------------------------------------------------------------------


def say(text):
    print(text, file=sys.stderr, flush=True)


def tail(text, lines=8):
    return "\n".join((text or "").strip().splitlines()[-lines:])


def tool(name):
    candidate = PG_BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres(argv):
    """initdb and pg_ctl refuse to run as root: run them as the postgres system user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


def table_name(number):
    return "t%05d" % number


# --- the throwaway cluster -----------------------------------------------------------------------


class Cluster:
    """A PostgreSQL 15 cluster of its own in a temporary directory; stop() removes it all."""

    def __init__(self):
        self.base = None
        self.port = None
        self.password = "Bench-" + secrets.token_urlsafe(18)
        self.started = False
        self.version = None

    def start(self):
        missing = [name for name in ("initdb", "pg_ctl", "psql") if not tool(name)]
        if missing:
            raise BenchmarkError("PostgreSQL binaries not found (%s): install postgresql-15" % ", ".join(missing))
        if os.geteuid() == 0 and (
            not shutil.which("runuser")
            or subprocess.run(["id", "postgres"], capture_output=True, check=False).returncode
        ):
            raise BenchmarkError("running as root needs runuser and a postgres system user to run initdb")
        self.base = tempfile.mkdtemp(prefix="envparity-pgbench-", dir="/tmp")
        os.chmod(self.base, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        pwfile = os.path.join(self.base, "pwfile")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(pwfile, "postgres")
        data = os.path.join(self.base, "data")
        initdb = [tool("initdb"), "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=" + pwfile]
        initdb += ["--no-sync", "-E", "UTF8", "--locale=C"]
        proc = subprocess.run(as_postgres(initdb), capture_output=True, text=True, cwd=self.base, check=False)
        os.unlink(pwfile)
        if proc.returncode != 0:
            raise BenchmarkError("initdb failed:\n%s" % tail(proc.stdout + proc.stderr))
        self.port = free_port()
        with open(os.path.join(data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write(
                textwrap.dedent(
                    f"""
                    listen_addresses = '127.0.0.1'
                    port = {self.port}
                    unix_socket_directories = '{self.base}'
                    fsync = off
                    synchronous_commit = off
                    full_page_writes = off
                    autovacuum = off
                    wal_level = minimal
                    max_wal_senders = 0
                    checkpoint_timeout = '1h'
                    max_wal_size = '4GB'
                    max_connections = 40
                    """
                )
            )
        start = [tool("pg_ctl"), "-D", data, "-l", os.path.join(self.base, "log"), "-w", "-t", "120", "start"]
        try:
            proc = subprocess.run(
                as_postgres(start), capture_output=True, text=True, cwd=self.base, timeout=180, check=False
            )
        finally:  # a server that came up despite an error or a timeout is still stopped at the end
            self.started = os.path.exists(os.path.join(data, "postmaster.pid"))
        if proc.returncode != 0:
            raise BenchmarkError("pg_ctl start failed:\n%s" % tail(proc.stdout + proc.stderr + self.log()))
        self.version = self.value("SHOW server_version")

    def log(self):
        with contextlib.suppress(OSError):
            return Path(self.base, "log").read_text(encoding="utf-8", errors="replace")
        return ""

    def stop(self):
        """Stop the server (fast, then immediate) and remove its directory."""
        if self.base is None:
            return
        if self.started:
            data = os.path.join(self.base, "data")
            for mode in ("fast", "immediate"):
                proc = subprocess.run(
                    as_postgres([tool("pg_ctl"), "-D", data, "-m", mode, "-w", "-t", "60", "stop"]),
                    capture_output=True,
                    cwd=self.base,
                    timeout=120,
                    check=False,
                )
                if proc.returncode == 0:
                    self.started = False
                    break
        if self.started:
            say("benchmark: the cluster in %s did not stop; it is left in place" % self.base)
            return
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def env(self, dbname="postgres"):
        """libpq's variables for the cluster's superuser: the password in the environment only."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(
            PGHOST="127.0.0.1",
            PGPORT=str(self.port),
            PGUSER="postgres",
            PGPASSWORD=self.password,
            PGDATABASE=dbname,
            PGCONNECT_TIMEOUT="10",
            PGCLIENTENCODING="UTF8",
            LC_ALL="C",
        )
        return env

    def sql(self, text, dbname="postgres"):
        proc = subprocess.run(
            [tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"],
            input=text,
            env=self.env(dbname),
            capture_output=True,
            text=True,
            timeout=SQL_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise BenchmarkError("psql on %s failed:\n%s" % (dbname, tail(proc.stderr)))
        return proc.stdout

    def value(self, query, dbname="postgres"):
        return self.sql(query + ";", dbname).strip()

    def url(self, dbname):
        """A libpq URL without the password (PGPASSWORD carries it)."""
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, dbname)


# --- the databases -------------------------------------------------------------------------------


def drifted_tables(tables):
    """1% of the tables (at least one), spread evenly: {table: (kind, statement)}."""
    count = max(1, tables // 100)
    step = tables / count
    drift = {}
    for index in range(count):
        name = table_name(1 + int(index * step + step / 2))
        kind, statement = DRIFTS[index % len(DRIFTS)]
        drift[name] = (kind, statement.format(t=name))
    return drift


def build_databases(cluster, tables):
    """bench_a with `tables` tables, bench_b a copy of it with 1% drift; both analysed. Returns the drift."""
    started = time.perf_counter()
    cluster.sql("DROP DATABASE IF EXISTS %s; DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (DB_A, DB_B, DB_A))
    script = BUILD_SQL.replace("@TABLES@", str(tables)).replace("@COMMIT@", str(COMMIT_EVERY))
    cluster.sql(script.replace("@DDL@", TABLE_DDL), DB_A)
    built = time.perf_counter()
    cluster.sql("CREATE DATABASE %s TEMPLATE %s;" % (DB_B, DB_A))
    drift = drifted_tables(tables)
    cluster.sql("\n".join(statement for _, statement in drift.values()), DB_B)
    for dbname in (DB_A, DB_B):
        cluster.sql("ANALYZE;", dbname)
    counts = {
        dbname: int(
            cluster.value(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'",
                dbname,
            )
        )
        for dbname in (DB_A, DB_B)
    }
    if counts[DB_A] != tables + 1 or counts[DB_B] != tables + 1:
        raise BenchmarkError("expected %d tables (+ parents) in each database, found %s" % (tables, counts))
    done = time.perf_counter()
    say(
        "  built    %s and %s: %d tables each (+ public.parents), %d drifted, in %.1f s (bench_a %.1f s)"
        % (DB_A, DB_B, tables, len(drift), done - started, built - started)
    )
    return drift, {"build_s": round(done - started, 1), "tables_per_database": counts[DB_A]}


# --- envparity -----------------------------------------------------------------------------------


def request_for(cluster, dbname, **entry):
    """The request the postgres role builds (postgres_request, the role's defaults) for one database;
    entry: more of its drift_postgres entry (data_parity, reference_tables)."""
    params = yaml.safe_load(ROLE_DEFAULTS.read_text(encoding="utf-8"))
    params["drift_postgres"] = [
        dict(name=SUBJECT, dbname=dbname, user="postgres", host="127.0.0.1", port=cluster.port, **entry)
    ]
    return postgres_request(params)


def host_side(request, run_key, password):
    """What the module does on one host: collect the area (one psql session) and pack the facts."""
    t0 = time.perf_counter()
    collected = collect_areas({"postgres": request}, run_key, {"postgres": password})
    t1 = time.perf_counter()
    blob = pack({"areas": collected})
    t2 = time.perf_counter()
    area = collected["postgres"]
    db = (area.get("data") or {}).get("databases", {}).get(SUBJECT) if area["status"] == "ok" else None
    if not db or db.get("status") != "ok":
        reason = (db or {}).get("reason") or area.get("reason")
        raise BenchmarkError("the collector did not read %s: %s" % (request["databases"][0]["dbname"], reason))
    return collected, blob, t1 - t0, t2 - t1


def packed_facts(request, run_key, password):
    """What a host sends back to the controller: the packed facts (the module's result)."""
    return host_side(request, run_key, password)[1]


def concurrent_hosts(pool, requests, run_key, password):
    """Both hosts' module work at once, each in its own process, as Ansible's forks run them."""
    t0 = time.perf_counter()
    futures = [pool.submit(packed_facts, request, run_key, password) for request in requests]
    for future in futures:
        future.result()
    return time.perf_counter() - t0


def one_pass(cluster, base, pool):
    """One audit of bench_a (dev) against bench_b (prod); seconds per phase and what it produced."""
    settings = {
        "environments": list(HOSTS),
        "production_environments": ["prod"],
        "groups": {environment: [host] for environment, host in HOSTS.items()},
        "rules_files": [],
        "fail_on": "never",
        "report_dir": base,
        "template": str(TEMPLATE),
        "inventory": "benchmark",
        "keep_run_dir": False,
    }
    _, directory = run_dir.new_run(base, settings)
    run_key = bytes.fromhex(run_dir.read_key(directory))
    requests = {HOSTS["dev"]: request_for(cluster, DB_A), HOSTS["prod"]: request_for(cluster, DB_B)}
    password = {SUBJECT: cluster.password}
    try:
        for host, request in requests.items():
            run_dir.store_request(directory, host, {"postgres": request})
        t0 = time.perf_counter()
        dev, dev_blob, read_a, pack_a = host_side(requests[HOSTS["dev"]], run_key, password)
        prod, prod_blob, read_b, pack_b = host_side(requests[HOSTS["prod"]], run_key, password)
        t1 = time.perf_counter()
        run_dir.store_facts(directory, HOSTS["dev"], dev_blob)
        run_dir.store_facts(directory, HOSTS["prod"], prod_blob)
        t2 = time.perf_counter()
        audit = build_audit(
            directory,
            settings["environments"],
            settings["production_environments"],
            settings["groups"],
            run_dir.load_requests(directory),
            settings["rules_files"],
            settings["fail_on"],
        )
        t3 = time.perf_counter()
        document = build_document(audit, "1970-01-01T00:00:00Z", settings["inventory"])
        view = build_view(document)
        markdown = render_markdown(settings["template"], view)
        t4 = time.perf_counter()
        hosts_at_once = concurrent_hosts(pool, [requests[HOSTS["dev"]], requests[HOSTS["prod"]]], run_key, password)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    # The diff alone, on the catalogs as build_audit hands them over (not part of the end to end).
    cells = {"dev": dev["postgres"]["data"], "prod": prod["postgres"]["data"]}
    t5 = time.perf_counter()
    findings = pg_diff.diff(list(HOSTS), cells, {"baseline": "dev", "production": {"prod"}})
    t6 = time.perf_counter()
    floor_s, floor_bytes = psql_floor(cluster, requests[HOSTS["dev"]])
    phases = {
        "catalog_read_a": read_a,
        "psql_floor_a": floor_s,
        "catalog_read_b": read_b,
        "pack": pack_a + pack_b,
        "land_facts": t2 - t1,
        "build_audit": t3 - t2,
        "diff": t6 - t5,
        "report": t4 - t3,
        "end_to_end": t4 - t0,
        "hosts_at_once": hosts_at_once,
        "end_to_end_hosts_at_once": hosts_at_once + (t4 - t1),
    }
    produced = {
        "findings": findings,
        "report_findings": len(document["findings"]),
        "markdown_bytes": len(markdown.encode("utf-8")),
        "facts_json_bytes": {
            DB_A: len(json.dumps(cells["dev"], separators=(",", ":"))),
            DB_B: len(json.dumps(cells["prod"], separators=(",", ":"))),
        },
        "facts_packed_bytes": {DB_A: len(dev_blob), DB_B: len(prod_blob)},
        "psql_output_bytes": {DB_A: floor_bytes},
        "tables_in_catalog": {
            DB_A: len(cells["dev"]["databases"][SUBJECT]["catalog"]["tables"]),
            DB_B: len(cells["prod"]["databases"][SUBJECT]["catalog"]["tables"]),
        },
    }
    return phases, produced


def psql_floor(cluster, request):
    """The collector's own psql script on bench_a, run bare: the server's and psql's share of a catalog read."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [tool("psql"), *PSQL_ARGS],
        input=build_script(request).encode("utf-8"),
        env=cluster.env(request["databases"][0]["dbname"]),
        capture_output=True,
        timeout=SQL_TIMEOUT,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchmarkError(
            "the collector's script failed under bare psql: %s" % tail(proc.stderr.decode(errors="replace"))
        )
    return seconds, len(proc.stdout)


def check_findings(findings, drift):
    """Every drifted table is named by a finding, and no other table is."""
    named = {}
    for finding in findings:
        for name in TABLE_RE.findall(str(finding["key"])):
            named.setdefault(name, []).append(finding["check"])
    missed = sorted(set(drift) - set(named))
    extra = sorted(set(named) - set(drift))
    return {
        "findings": len(findings),
        "drifted_tables": len(drift),
        "drifted_tables_found": len(drift) - len(missed),
        "missed": missed,
        "other_tables_named": extra[:20],
        "other_tables_named_count": len(extra),
        "checks": sorted({check for checks in named.values() for check in checks}),
    }


def measure_envparity(cluster, runs, drift, label):
    base = tempfile.mkdtemp(prefix="envparity-pgbench-runs-")
    samples = {}
    produced = None
    # Two worker processes started before timing: a host's Python start is Ansible's cost, not the area's.
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=2)
    pool.submit(time.sleep, 0).result()
    try:
        for index in range(runs + 1):
            phases, produced = one_pass(cluster, base, pool)
            say(
                "  %-8s %-8s read %.3f + %.3f s, build_audit %.3f s, diff %.3f s, report %.3f s, end to end %.3f s"
                " (hosts at once %.3f s)"
                % (
                    label,
                    "warm-up" if index == 0 else "%d/%d" % (index, runs),
                    phases["catalog_read_a"],
                    phases["catalog_read_b"],
                    phases["build_audit"],
                    phases["diff"],
                    phases["report"],
                    phases["end_to_end"],
                    phases["end_to_end_hosts_at_once"],
                )
            )
            if index:
                for name, seconds in phases.items():
                    samples.setdefault(name, []).append(seconds)
    finally:
        pool.shutdown()
        shutil.rmtree(base, ignore_errors=True)
    check = check_findings(produced.pop("findings"), drift)
    if check["missed"] or check["other_tables_named_count"]:
        say(
            "  WARNING  the diff missed %s and named undrifted tables %s"
            % (check["missed"], check["other_tables_named"])
        )
    return {"phases": {name: stats(values) for name, values in samples.items()}, "check": check, **produced}


# --- data parity -----------------------------------------------------------------------------------

DB_DATA = "bench_data"
# One big table (--data-rows rows, a primary key and an index on the column a foreign key uses), the
# reference tables (id, name, price: 10 to 50 rows each) that a links table references by foreign
# key (so data parity detects them as reference tables), and a few small tables counted exactly.
DATA_SQL = """
CREATE TABLE public.big (id bigint PRIMARY KEY, ref_id integer NOT NULL, payload text NOT NULL);
INSERT INTO public.big SELECT g, g %% 50, md5(g::text) FROM generate_series(1, %(rows)d) AS g;
CREATE INDEX big_ref_id ON public.big (ref_id);
DO $bench$
DECLARE
  i integer;
  t text;
BEGIN
  FOR i IN SELECT generate_series(1, %(references)d) LOOP
    t := 'ref' || lpad(i::text, 2, '0');
    EXECUTE format('CREATE TABLE public.%%I (id integer PRIMARY KEY, name text NOT NULL, price_cents integer)', t);
    EXECUTE format('INSERT INTO public.%%I SELECT g, %%L || g, g * 100 FROM generate_series(1, %%s) AS g',
                   t, t || '-', 10 + (i * 7) %% 41);
    EXECUTE format('CREATE TABLE public.%%I (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,'
                   ' ref_id integer REFERENCES public.%%I (id))', t || '_links', t);
    EXECUTE format('INSERT INTO public.%%I (ref_id) SELECT 1 FROM generate_series(1, 100)', t || '_links');
  END LOOP;
END
$bench$;
ANALYZE;
"""


def build_data_database(cluster, rows, references):
    started = time.perf_counter()
    cluster.sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (DB_DATA, DB_DATA))
    cluster.sql(DATA_SQL % {"rows": rows, "references": references}, DB_DATA)
    seconds = time.perf_counter() - started
    say(
        "  built    %s: %s rows in public.big, %d reference tables, in %.1f s"
        % (DB_DATA, format(rows, ","), references, seconds)
    )
    return round(seconds, 1)


def measure_data_parity(cluster, args):
    """The catalog read of bench_data without and with data parity (the role's defaults), medians."""
    say("data parity: %s rows in one table, %d reference tables" % (format(args.data_rows, ","), args.reference_tables))
    build_s = build_data_database(cluster, args.data_rows, args.reference_tables)
    run_key = secrets.token_bytes(32)
    password = {SUBJECT: cluster.password}
    requests = {"off": request_for(cluster, DB_DATA), "on": request_for(cluster, DB_DATA, data_parity=True)}
    samples = {"off": [], "on": []}
    data = None
    for index in range(args.runs + 1):
        for mode in ("off", "on"):
            collected, _, seconds, _ = host_side(requests[mode], run_key, password)
            if index:
                samples[mode].append(seconds)
            if mode == "on":
                data = collected["postgres"]["data"]["databases"][SUBJECT]["data"]
        if index:
            say(
                "  data     %d/%d: catalog only %.3f s, with data parity %.3f s"
                % (index, args.runs, samples["off"][-1], samples["on"][-1])
            )
    off, on = stats(samples["off"]), stats(samples["on"])
    tables = data.get("tables") or {}
    return {
        "rows": args.data_rows,
        "reference_tables": args.reference_tables,
        "build_s": build_s,
        "catalog_only": off,
        "with_data_parity": on,
        "data_parity_adds_s": round(on["median_s"] - off["median_s"], 3),
        "goal_max_s": 2,
        "exact_counts": sum(1 for table in tables.values() if table.get("exact") is not None),
        "estimated_only": sorted(name for name, table in tables.items() if table.get("exact") is None),
        "reference_tables_read": len(data.get("reference") or {}),
        "sequences_checked": len(data.get("sequences") or {}),
        "skipped": data.get("skipped") or [],
    }


# --- migra ---------------------------------------------------------------------------------------


def pip_errors(proc):
    """pip's last error lines, without its notes about the local mirrors it skips."""
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING: Location ")]
    return tail("\n".join(lines), 4) if proc.returncode else None


def pip_freeze(venv):
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    try:
        listed = json.loads(proc.stdout)
    except ValueError:
        return {}
    return {item["name"].lower(): item["version"] for item in listed if item["name"].lower() in MIGRA_PACKAGES}


def run_migra(venv, cluster, source, target, timeout):
    """(seconds, exit code, stdout, stderr) of one `migra --unsafe source target`."""
    argv = [str(venv / "bin" / "migra"), "--unsafe", cluster.url(source), cluster.url(target)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, env=cluster.env(), capture_output=True, text=True, timeout=timeout, check=False, cwd="/tmp"
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t0, None, "", "timed out after %d s" % timeout
    return time.perf_counter() - t0, proc.returncode, proc.stdout, proc.stderr


class MigraInstall(threading.Thread):
    """Creates migra's virtualenv and installs it (in the background while the databases are built)."""

    def __init__(self, venv_base, python):
        super().__init__(daemon=True)
        self.venv = Path(venv_base) / "venv"
        self.python = python
        self.attempts = []
        self.error = None

    def pip(self, packages):
        return subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", *packages],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    def run(self):
        try:
            proc = subprocess.run(
                [self.python, "-m", "venv", str(self.venv)], capture_output=True, text=True, check=False, timeout=300
            )
            if proc.returncode != 0:
                self.error = "python -m venv failed: %s" % tail(proc.stderr, 3)
                return
            name, packages = MIGRA_ATTEMPTS[0]
            proc = self.pip(packages)
            self.attempts.append(
                {"pins": name, "packages": packages, "pip_exit": proc.returncode, "pip_error": pip_errors(proc)}
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.error = "%s: %s" % (type(exc).__name__, exc)


def ready_migra(install, cluster):
    """Probe migra on a tiny pair of databases; on failure, try the next pins. Returns (venv|None, report)."""
    install.join()
    report = {"venv": str(install.venv), "python": install.python, "attempts": install.attempts, "error": None}
    if install.error:
        report["error"] = install.error
        return None, report
    cluster.sql("DROP DATABASE IF EXISTS probe_a; DROP DATABASE IF EXISTS probe_b; CREATE DATABASE probe_a;")
    cluster.sql("CREATE DATABASE probe_b;")
    cluster.sql(PROBE_SQL, "probe_b")
    try:
        for index, (name, packages) in enumerate(MIGRA_ATTEMPTS):
            if index:
                proc = install.pip(packages)
                install.attempts.append(
                    {"pins": name, "packages": packages, "pip_exit": proc.returncode, "pip_error": pip_errors(proc)}
                )
            attempt = install.attempts[-1]
            if attempt["pip_exit"] != 0:
                say("  migra    pip install (%s) failed: %s" % (name, attempt["pip_error"]))
                continue
            seconds, code, stdout, stderr = run_migra(install.venv, cluster, "probe_a", "probe_b", 300)
            attempt.update(probe_exit=code, probe_s=round(seconds, 2), versions=pip_freeze(install.venv))
            if code == 2 and "probe" in stdout:
                say("  migra    works with pins %s: %s" % (name, attempt["versions"]))
                report["worked_with"] = name
                report["versions"] = attempt["versions"]
                return install.venv, report
            attempt["probe_error"] = tail(stderr, 4)
            say("  migra    probe with pins %s: exit %s: %s" % (name, code, tail(stderr, 2)))
    finally:
        cluster.sql("DROP DATABASE IF EXISTS probe_a; DROP DATABASE IF EXISTS probe_b;")
    report["error"] = "no install of migra answered on the probe databases (see attempts)"
    return None, report


def measure_migra(venv, cluster, runs, drift, timeout, label):
    samples, outputs = [], None
    index = 0
    while len(samples) < runs:
        seconds, code, stdout, stderr = run_migra(venv, cluster, DB_A, DB_B, timeout)
        if code not in (0, 2):
            say("  %-8s failed (exit %s) after %.1f s: %s" % (label, code, seconds, tail(stderr, 3)))
            return {"error": "exit %s after %.1f s: %s" % (code, seconds, tail(stderr, 4)), "samples_s": samples}
        warm_up = index == 0 and seconds <= MIGRA_SLOW_S
        say("  %-8s %-8s %.3f s (exit %d)" % (label, "warm-up" if warm_up else "run", seconds, code))
        if not warm_up:
            samples.append(seconds)
        outputs = (code, stdout)
        index += 1
    code, stdout = outputs
    found = set(TABLE_RE.findall(stdout)) & set(drift)
    return dict(
        stats(samples),
        exit_code=code,
        warm_up=index > runs,
        output_lines=len(stdout.splitlines()),
        output_bytes=len(stdout.encode("utf-8")),
        drifted_tables_in_output=len(found),
        drifted_tables=len(drift),
    )


# --- output --------------------------------------------------------------------------------------

ROWS = (
    ("catalog read bench_a", "catalog_read_a"),
    ("  of which psql (floor)", "psql_floor_a"),
    ("catalog read bench_b", "catalog_read_b"),
    ("pack (host, gzip+b64)", "pack"),
    ("land facts (run dir)", "land_facts"),
    ("build_audit (+unpack)", "build_audit"),
    ("  of which diff", "diff"),
    ("report (doc+view+md)", "report"),
    ("end to end", "end_to_end"),
    ("  both hosts at once", "hosts_at_once"),
    ("end to end, hosts at once", "end_to_end_hosts_at_once"),
)


def fmt(seconds):
    if seconds is None:
        return "—"
    return "%.1f ms" % (seconds * 1000) if seconds < 1 else "%.2f s" % seconds


def data_parity_lines(data):
    return [
        "data parity (%s rows in one table, %d reference tables): catalog only %s, with data parity %s: "
        "adds %s (fastest runs: %s, %s); goal: at most %d s"
        % (
            format(data["rows"], ","),
            data["reference_tables"],
            fmt(data["catalog_only"]["median_s"]),
            fmt(data["with_data_parity"]["median_s"]),
            fmt(data["data_parity_adds_s"]),
            fmt(data["catalog_only"]["min_s"]),
            fmt(data["with_data_parity"]["min_s"]),
            data["goal_max_s"],
        ),
        "  exact counts %d, by estimate only %s, reference tables read %d, sequences checked %d, skipped %s"
        % (
            data["exact_counts"],
            ", ".join(data["estimated_only"]) or "none",
            data["reference_tables_read"],
            data["sequences_checked"],
            ", ".join("%s (%s)" % (item["what"], item["reason"]) for item in data["skipped"]) or "none",
        ),
    ]


def table(figures):
    if "scales" not in figures:
        return "\n".join(data_parity_lines(figures["data_parity"]))
    scales = figures["scales"]
    names = list(scales)
    width = 16
    lines = [
        "envparity postgres benchmark: PostgreSQL %s (own throwaway cluster), %d runs after a warm-up, medians"
        % (figures["environment"]["postgresql"], figures["runs"]),
        "",
        "%-24s" % "" + "".join("%*s" % (width, "%s tables" % format(int(name), ",")) for name in names),
    ]
    if len(names) == 2:
        lines[-1] += "%*s" % (width, "growth")
    for label, key in ROWS:
        values = [scales[name]["envparity"]["phases"][key]["median_s"] for name in names]
        row = "%-24s" % label + "".join("%*s" % (width, fmt(value)) for value in values)
        if len(values) == 2 and values[0] > 0:
            row += "%*s" % (width, "%.2fx" % (values[1] / values[0]))
        lines.append(row)
    migra_values = [(scales[name].get("migra") or {}).get("median_s") for name in names]
    row = "%-24s" % "migra --unsafe" + "".join(
        "%*s" % (width, fmt(value) if value is not None else "MISSING") for value in migra_values
    )
    if len(names) == 2 and all(migra_values):
        row += "%*s" % (width, "%.2fx" % (migra_values[1] / migra_values[0]))
    lines.append(row)
    for label, key in (
        ("migra / envparity e2e", "migra_over_envparity"),
        ("  hosts at once", "migra_over_envparity_hosts_at_once"),
    ):
        ratios = [scales[name].get(key) for name in names]
        lines.append(
            "%-24s" % label + "".join("%*s" % (width, "%.1fx" % value if value else "MISSING") for value in ratios)
        )
    lines.append("")
    for name in names:
        envparity = scales[name]["envparity"]
        check = envparity["check"]
        lines.append(
            "%s tables: %d findings, drifted tables found %d/%d, other tables named %d; facts %.1f MB JSON, "
            "%.0f KB packed per database; Markdown %d KB; databases built in %.0f s"
            % (
                format(int(name), ","),
                check["findings"],
                check["drifted_tables_found"],
                check["drifted_tables"],
                check["other_tables_named_count"],
                envparity["facts_json_bytes"][DB_A] / 1e6,
                envparity["facts_packed_bytes"][DB_A] / 1e3,
                envparity["markdown_bytes"] // 1024,
                scales[name]["databases"]["build_s"],
            )
        )
        migra = scales[name].get("migra")
        if migra and "median_s" in migra:
            lines.append(
                "  migra: exit %d, %d lines of SQL, drifted tables in its output %d/%d"
                % (
                    migra["exit_code"],
                    migra["output_lines"],
                    migra["drifted_tables_in_output"],
                    migra["drifted_tables"],
                )
            )
        elif migra:
            lines.append("  migra: MISSING: %s" % migra.get("error"))
    install = figures.get("migra_install")
    if install:
        if install.get("worked_with"):
            lines.append("migra install: worked with pins %s (%s)" % (install["worked_with"], install["versions"]))
        else:
            lines.append("migra install: FAILED: %s" % install.get("error"))
    for name in names:
        phases = scales[name]["envparity"]["phases"]
        lines.append(
            "%s tables: catalog read of bench_a %s over the bare psql script's %s: %.2fx (fastest runs: %.2fx)"
            % (
                format(int(name), ","),
                fmt(phases["catalog_read_a"]["median_s"]),
                fmt(phases["psql_floor_a"]["median_s"]),
                phases["catalog_read_a"]["median_s"] / phases["psql_floor_a"]["median_s"],
                phases["catalog_read_a"]["min_s"] / phases["psql_floor_a"]["min_s"],
            )
        )
    if figures.get("data_parity"):
        lines += data_parity_lines(figures["data_parity"])
    growth = figures.get("growth")
    if growth:
        lines.append(
            "growth %s -> %s tables: end to end %.2fx, diff %.2fx (goal: at most %dx)"
            % (
                format(growth["from"], ","),
                format(growth["to"], ","),
                growth["end_to_end_ratio"],
                growth["diff_ratio"],
                growth["goal_max"],
            )
        )
    return "\n".join(lines)


def versions(cluster):
    return {
        "python": platform.python_version(),
        "postgresql": cluster.version,
        "psql": subprocess.run([tool("psql"), "--version"], capture_output=True, text=True, check=False).stdout.strip(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=2000, help="tables per database (default 2000)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs after a warm-up (default 3)")
    parser.add_argument("--growth", type=int, default=4, help="the second size, × --tables (default 4; 0: skip)")
    parser.add_argument("--no-migra", action="store_true", help="do not install or time migra")
    parser.add_argument("--migra-growth", action="store_true", help="time migra at the second size too")
    parser.add_argument("--migra-timeout", type=int, default=900, help="seconds allowed for one migra run")
    parser.add_argument("--keep-migra-venv", action="store_true", help="leave migra's virtualenv in /tmp")
    parser.add_argument(
        "--data-rows", type=int, default=10_000_000, help="rows of the data parity database's big table (0: skip)"
    )
    parser.add_argument("--reference-tables", type=int, default=20, help="its reference tables (default 20)")
    parser.add_argument("--data-only", action="store_true", help="only the data parity measurement")
    parser.add_argument("--quick", action="store_true", help="--tables 500 --runs 1 --data-rows 100000")
    parser.add_argument("--output", default=str(ROOT / "reports" / "benchmark_postgres.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.runs, args.data_rows = 500, 1, 100_000
    if args.tables < 1 or args.runs < 1 or args.growth < 0 or args.migra_timeout < 1:
        parser.error("--tables and --runs must be at least 1, --growth at least 0")
    if args.data_rows < 0 or not 1 <= args.reference_tables <= 99 or (args.data_only and not args.data_rows):
        parser.error("--data-rows must be at least 0 (at least 1 with --data-only), --reference-tables 1 to 99")
    return args


def drift_by_kind(drift):
    return {kind: sorted(name for name, item in drift.items() if item[0] == kind) for kind, _ in DRIFTS}


def measure_scale(cluster, tables, args, migra):
    """Build the databases at one size, measure envparity, then migra when migra() gives a virtualenv.

    migra: called once the databases are built (the install runs meanwhile); returns (venv|None, error).
    """
    say("%s tables per database" % format(tables, ","))
    drift, databases = build_databases(cluster, tables)
    venv, error = migra()
    figures = {
        "tables": tables,
        "databases": dict(databases, drift=drift_by_kind(drift)),
        "envparity": measure_envparity(cluster, args.runs, drift, "envparity"),
    }
    if venv is not None:
        figures["migra"] = measure_migra(venv, cluster, args.runs, drift, args.migra_timeout, "migra")
        if figures["migra"].get("median_s"):
            phases = figures["envparity"]["phases"]
            for key, phase in (
                ("migra_over_envparity", "end_to_end"),
                ("migra_over_envparity_hosts_at_once", "end_to_end_hosts_at_once"),
            ):
                figures[key] = round(figures["migra"]["median_s"] / phases[phase]["median_s"], 1)
    elif error:
        figures["migra"] = {"error": error}
    return figures


def run(args, cluster):
    cluster.start()
    say("cluster  PostgreSQL %s on 127.0.0.1:%d in %s" % (cluster.version, cluster.port, cluster.base))
    install = migra_base = None
    figures = {"migra_install": None}
    ready = {}

    def migra_first():
        if install is None:
            return None, None
        ready["venv"], figures["migra_install"] = ready_migra(install, cluster)
        if ready["venv"] is None:
            say("  migra    MISSING: %s" % figures["migra_install"]["error"])
        return ready["venv"], figures["migra_install"]["error"]

    def migra_growth():
        if install is None or not args.migra_growth:
            return None, None
        return ready["venv"], figures["migra_install"]["error"]

    if args.data_only:
        return {"data_parity": measure_data_parity(cluster, args)}
    try:
        if not args.no_migra:
            migra_base = tempfile.mkdtemp(prefix="envparity-migra-", dir="/tmp")
            python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
            install = MigraInstall(migra_base, python)
            install.start()
        figures["scales"] = {str(args.tables): measure_scale(cluster, args.tables, args, migra_first)}
        if args.growth:
            tables = args.tables * args.growth
            figures["scales"][str(tables)] = measure_scale(cluster, tables, args, migra_growth)
            e2e, diff = (
                [figures["scales"][key]["envparity"]["phases"][phase]["median_s"] for key in figures["scales"]]
                for phase in ("end_to_end", "diff")
            )
            figures["growth"] = {
                "from": args.tables,
                "to": tables,
                "factor": args.growth,
                "end_to_end_ratio": round(e2e[1] / e2e[0], 2),
                "diff_ratio": round(diff[1] / diff[0], 2),
                "goal_max": 5 if args.growth == 4 else None,
            }
        if args.data_rows:
            figures["data_parity"] = measure_data_parity(cluster, args)
    finally:
        if migra_base and not args.keep_migra_venv:
            if install is not None and install.is_alive():
                install.join(timeout=900)
            shutil.rmtree(migra_base, ignore_errors=True)
    return figures


def main(argv=None):
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop the cluster and remove the directories.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster = Cluster()
    started = time.perf_counter()
    try:
        figures = run(args, cluster)
        figures["environment"] = versions(cluster)
    except (BenchmarkError, subprocess.TimeoutExpired) as exc:
        print("benchmark: %s" % exc, file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    figures = {
        "schema_version": 1,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": args.runs,
        "wall_s": round(time.perf_counter() - started, 1),
        "command": "scripts/benchmark_postgres.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        **figures,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(table(figures))
    print("\nwall time %.0f s; figures written to %s" % (figures["wall_s"], output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
