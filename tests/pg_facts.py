"""Builders of postgres facts in the shape of docs/postgres-facts.md, and runners of the diff on
them, for the unit tests of plugins/plugin_utils/pg_*.py."""

import copy
import hashlib

from ansible_collections.envparity.audit.plugins.module_utils import pg_tables
from ansible_collections.envparity.audit.plugins.module_utils.redact import length_class
from ansible_collections.envparity.audit.plugins.plugin_utils import pg_diff
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import KINDS, SEVERITIES

CANARY = "CANARY-pg-7f3e9a1c55d04b2e"


# --- builders: the contract's shapes ------------------------------------------------------------


def record(value, secret=False, fp=None):
    """A describe_value record; a secret one carries no display (its fp may carry a canary)."""
    return {
        "secret": secret,
        "display": None if secret else value,
        "fp": fp or "hmac-sha256:" + hashlib.sha256(value.encode()).hexdigest()[:24],
        "secret_fp": (fp or "hmac-sha256:s" + value) if secret else None,
        "length_class": length_class(len(value)),
        "empty": not value,
    }


def column(
    position, type_="integer", nullable=True, default=None, identity=None, generated=None, collation=None, local=None
):
    return {
        "position": position,
        "type": type_,
        "nullable": nullable,
        "default": default,
        "identity": identity,
        "generated": generated,
        "collation": collation,
        "local": local,
    }


def table(columns, constraints=None, indexes=None, triggers=None, **overrides):
    base = {
        "kind": "table",
        "owner": "app",
        "rls": False,
        "rls_forced": False,
        "partition_key": None,
        "partition_of": None,
        "persistence": "logged",
        "options": None,
        "replica_identity": "default",
        "inherits": None,
        "partition_bound": None,
        "access_method": "heap",
        "tablespace": None,
        "row_estimate": 1000,
        "size_estimate_bytes": 65536,
        "columns": columns,
        "constraints": constraints or {},
        "indexes": indexes or {},
        "triggers": triggers or {},
    }
    base.update(overrides)
    return base


def body(text):
    return {"definition": text, "hash": hashlib.sha256(text.encode()).hexdigest()}


def view(text, materialized=False):
    return dict(body(text), materialized=materialized)


def function(text, language="plpgsql", returns="trigger", **overrides):
    base = {
        "kind": "function",
        "language": language,
        "returns": returns,
        "volatility": "volatile",
        "security_definer": False,
        "body": text,
        "hash": hashlib.sha256(text.encode()).hexdigest(),
    }
    base.update(overrides)
    return base


def role(**attributes):
    base = {
        "superuser": False,
        "createdb": False,
        "createrole": False,
        "login": True,
        "replication": False,
        "bypassrls": False,
        "connection_limit": -1,
        "member_of": [],
        "config": {},
    }
    base.update(attributes)
    return base


def setting(value, unit=None, secret=False, fp=None):
    return {"value": record(value, secret=secret, fp=fp), "unit": unit, "source": "configuration file"}


def migrations(tool, applied, heads=None, table=None, dirty=None):
    tables = {
        "alembic": "public.alembic_version",
        "django": "public.django_migrations",
        "rails": "public.schema_migrations",
        "golang-migrate": "public.schema_migrations",
        "flyway": "public.flyway_schema_history",
        "knex": "public.knex_migrations",
        "prisma": "public._prisma_migrations",
        "sequelize": 'public."SequelizeMeta"',
    }
    return {
        "table": table or tables[tool],
        "applied": list(applied),
        "heads": list(heads if heads is not None else applied[-1:]),
        "count": len(applied),
        "dirty": dirty,
    }


VIEW_TEXT = " SELECT users.id,\n    users.email\n   FROM users\n  WHERE users.active;"
TOUCH_TEXT = "\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n"


def catalog():
    users = table(
        {
            "id": column(1, "integer", False, identity="by default"),
            "email": column(2, "character varying(120)", False),
            "name": column(3, "text", collation="C"),
            "active": column(4, "boolean", False, "true"),
            "updated_at": column(5, "timestamp with time zone", True, "now()"),
        },
        constraints={
            "users_pkey": {"type": "primary key", "definition": "PRIMARY KEY (id)"},
            "users_email_key": {"type": "unique", "definition": "UNIQUE (email)"},
        },
        indexes={
            "users_pkey": {
                "definition": "CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)",
                "unique": True,
                "primary": True,
            },
            "users_email_key": {
                "definition": "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)",
                "unique": True,
                "primary": False,
            },
            "users_name_idx": {
                "definition": "CREATE INDEX users_name_idx ON public.users USING btree (name)",
                "unique": False,
                "primary": False,
            },
        },
        triggers={
            "users_touch": {
                "definition": "CREATE TRIGGER users_touch BEFORE UPDATE ON public.users FOR EACH ROW "
                "EXECUTE FUNCTION public.touch()",
                "enabled": "origin",
            }
        },
    )
    orders = table(
        {
            "id": column(1, "bigint", False, "nextval('orders_id_seq'::regclass)"),
            "user_id": column(2, "integer", False),
            "total": column(3, "numeric(10,2)", False, "0"),
            "status": column(4, "public.order_status", False, "'new'::public.order_status"),
        },
        constraints={
            "orders_pkey": {"type": "primary key", "definition": "PRIMARY KEY (id)"},
            "orders_user_id_fkey": {
                "type": "foreign key",
                "definition": "FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE",
            },
            "orders_total_check": {"type": "check", "definition": "CHECK ((total >= (0)::numeric))"},
        },
        indexes={
            "orders_pkey": {
                "definition": "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)",
                "unique": True,
                "primary": True,
            }
        },
    )
    return {
        "schemas": {"public": {"owner": "pg_database_owner"}, "billing": {"owner": "app"}},
        "tables": {"public.users": users, "public.orders": orders},
        "views": {"public.v_active_users": view(VIEW_TEXT)},
        "functions": {
            "public.touch()": function(TOUCH_TEXT),
            "public.add(integer, integer)": function(
                "SELECT $1 + $2", language="sql", returns="integer", volatility="immutable"
            ),
        },
        "sequences": {
            "public.orders_id_seq": {
                "type": "bigint",
                "increment": "1",
                "min": "1",
                "max": "9223372036854775807",
                "cycle": False,
                "start": "1",
                "cache": "1",
                "unlogged": False,
                "owned_by": "public.orders.id",
            }
        },
        "enums": {"public.order_status": {"labels": ["new", "paid", "shipped"]}},
        "domains": {
            "public.email_address": {
                "base_type": "text",
                "nullable": True,
                "default": None,
                "constraints": ["CHECK ((VALUE ~ '@'::text))", "CHECK ((length(VALUE) < 255))"],
            }
        },
        "extensions": {
            "pg_trgm": {"version": "1.6", "schema": "public"},
            "citext": {"version": "1.6", "schema": "public"},
        },
        "settings": {
            "work_mem": setting("4096", "kB"),
            "max_connections": setting("100"),
            "shared_buffers": setting("16384", "8kB"),
        },
        "roles": {
            "app": role(config={"search_path": record("public")}),
            "app_reader": role(member_of=["pg_read_all_data", "pg_monitor"]),
        },
    }


def database(cat=None, status="ok", reason=None, tools=None, audit_role=None):
    return {
        "status": status,
        "reason": reason,
        "server_version": "15.18" if status == "ok" else None,
        "server_version_num": 150018 if status == "ok" else None,
        "audit_role": audit_role or {"name": "app", "superuser": False, "can_write": False, "write_privileges": []},
        "catalog": (cat if cat is not None else catalog()) if status == "ok" else None,
        "migrations": tools if tools is not None else {"alembic": migrations("alembic", ["3f2a9c1b4d5e"])},
    }


def facts(**databases):
    return {"databases": databases or {"app": database()}}


def _rows(records, fields):
    return [[name, *(record[field] for field in fields)] for name, record in records.items()]


def wire_table(table):
    """A table of the contract's TABLE shape as the collector sends it (pg_tables)."""
    columns = sorted(table["columns"].items(), key=lambda item: item[1]["position"])
    return {
        "owner": table["owner"],
        "row_estimate": table["row_estimate"],
        "size_estimate_bytes": table["size_estimate_bytes"],
        "shape": pg_tables.encode_shape(
            [table[field] for field in pg_tables.TABLE_FIELDS],
            _rows(dict(columns), pg_tables.COLUMN_FIELDS),
            _rows(table["constraints"], pg_tables.CONSTRAINT_FIELDS),
            _rows(table["indexes"], pg_tables.INDEX_FIELDS),
            _rows(table["triggers"], pg_tables.TRIGGER_FIELDS),
        ),
    }


def on_the_wire(cells):
    """The cells with every table in its wire form (in place; tables already encoded are kept)."""
    for cell in cells.values():
        for db in ((cell or {}).get("databases") or {}).values():
            catalog = db.get("catalog")
            if isinstance(catalog, dict):
                catalog["tables"] = {
                    name: table if "shape" in table else wire_table(table)
                    for name, table in (catalog.get("tables") or {}).items()
                }
    return cells


PROD = {"prod"}


def run(dev, prod, production=PROD):
    cells = on_the_wire({"dev": dev, "prod": prod})
    return pg_diff.diff(["dev", "prod"], cells, {"baseline": "dev", "production": production})


def run_n(cells):
    labels = list(cells)
    return pg_diff.diff(labels, on_the_wire(cells), {"baseline": labels[0], "production": {"prod/web1", "prod/web2"}})


def checks(findings):
    return sorted((f["key"], f["kind"], f["check"]) for f in findings)


def pair(mutate_dev=None, mutate_prod=None):
    """Two identical databases, each optionally changed in place by a function of its DB record."""
    dev, prod = database(), database()
    if mutate_dev:
        mutate_dev(dev)
    if mutate_prod:
        mutate_prod(prod)
    return run(facts(app=dev), facts(app=prod))


def delete(*path):
    def mutate(db):
        node = db["catalog"]
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def assign(value, *path):
    def mutate(db):
        node = db["catalog"]
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = copy.deepcopy(value)

    return mutate


def well_formed(finding):
    assert finding["kind"] in KINDS and finding["severity"] in SEVERITIES
    assert finding["area"] == "postgres" and finding["subject"] == "app"
    assert finding["message"].endswith(".") and finding["recommendation"]
    for cell in finding["values"].values():
        assert cell is None or isinstance(cell, str) or set(cell) == {"unknown"}
    assert set(finding) - {"detail"} == {
        "area",
        "subject",
        "key",
        "kind",
        "check",
        "severity",
        "expected",
        "reason",
        "values",
        "environments",
        "message",
        "recommendation",
    }
