"""A table's compared part as one canonical text: what the collector writes, the diff reads."""

import base64
import json

from ansible_collections.envparity.audit.plugins.module_utils.pg_tables import decode_shape, decode_table, encode_shape

TABLE = ["table", True, False, None, None, "unlogged", ["fillfactor=70"], "full", None, None, "heap", None]
COLUMNS = [
    ["id", "bigint", False, None, "always", None, None, None],
    ["na\u00efve", "text", True, "'d\u00e9j\u00e0'::text", None, None, "C", False],
]
CONSTRAINTS = [
    ["t_pkey", "primary key", "PRIMARY KEY (id)"],
    ["t_check", "check", "CHECK ((id > 0))"],
]
INDEXES = [["t_pkey", "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)", True, True]]
TRIGGERS = [["t_touch", "CREATE TRIGGER t_touch BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION touch()", "O"]]


def test_round_trip_gives_the_contract_record():
    record = decode_shape(encode_shape(TABLE, COLUMNS, CONSTRAINTS, INDEXES, TRIGGERS))
    assert record == {
        "kind": "table",
        "rls": True,
        "rls_forced": False,
        "partition_key": None,
        "partition_of": None,
        "persistence": "unlogged",
        "options": ["fillfactor=70"],
        "replica_identity": "full",
        "inherits": None,
        "partition_bound": None,
        "access_method": "heap",
        "tablespace": None,
        "columns": {
            "id": {
                "position": 1,
                "type": "bigint",
                "nullable": False,
                "default": None,
                "identity": "always",
                "generated": None,
                "collation": None,
                "local": None,
            },
            "na\u00efve": {
                "position": 2,
                "type": "text",
                "nullable": True,
                "default": "'d\u00e9j\u00e0'::text",
                "identity": None,
                "generated": None,
                "collation": "C",
                "local": False,
            },
        },
        "constraints": {
            "t_pkey": {"type": "primary key", "definition": "PRIMARY KEY (id)"},
            "t_check": {"type": "check", "definition": "CHECK ((id > 0))"},
        },
        "indexes": {
            "t_pkey": {
                "definition": "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
                "unique": True,
                "primary": True,
            }
        },
        "triggers": {"t_touch": {"definition": TRIGGERS[0][1], "enabled": "O"}},
    }


def test_the_same_table_gives_the_same_text_whatever_order_its_parts_came_in():
    one = encode_shape(TABLE, COLUMNS, CONSTRAINTS, INDEXES, TRIGGERS)
    other = encode_shape(TABLE, COLUMNS, list(reversed(CONSTRAINTS)), INDEXES, TRIGGERS)
    assert one == other
    text = base64.b64decode(one)
    # The format json_build_array writes (the catalog query's own text): ", " between items, UTF-8.
    assert text.startswith(
        b'[["table", true, false, null, null, "unlogged", ["fillfactor=70"], "full", null, null, "heap", null],'
        b' [["id", "bigint", false, null, "always"'
    )
    assert '"na\u00efve"'.encode("utf-8") in text
    assert json.loads(text) == [TABLE, COLUMNS, sorted(CONSTRAINTS), INDEXES, TRIGGERS]


def test_column_order_and_every_compared_field_change_the_text():
    base = encode_shape(TABLE, COLUMNS, CONSTRAINTS, INDEXES, TRIGGERS)
    assert encode_shape(TABLE, list(reversed(COLUMNS)), CONSTRAINTS, INDEXES, TRIGGERS) != base
    for position, value in enumerate([None, False, None, "x", "public.p", "logged", None, "default", ["public.p"]]):
        table = list(TABLE)
        table[position] = value
        assert encode_shape(table, COLUMNS, CONSTRAINTS, INDEXES, TRIGGERS) != base
    changed = [list(row) for row in COLUMNS]
    changed[1][3] = None
    assert encode_shape(TABLE, changed, CONSTRAINTS, INDEXES, TRIGGERS) != base
    assert encode_shape(TABLE, COLUMNS, CONSTRAINTS, [], TRIGGERS) != base


def test_owner_estimates_and_size_travel_beside_the_text():
    table = {
        "owner": "app",
        "row_estimate": 12,
        "size_estimate_bytes": 8192,
        "shape": encode_shape(TABLE, COLUMNS, CONSTRAINTS, INDEXES, TRIGGERS),
    }
    record = decode_table(table)
    assert (record["owner"], record["row_estimate"], record["size_estimate_bytes"]) == ("app", 12, 8192)
    assert set(record["columns"]) == {"id", "na\u00efve"}
