"""The SQL that pg_collect runs through psql: one catalog query, one migrations query.

Standard library only (nothing but text here): this module travels to the audited host.

The script (see pg_collect.build_script) runs in one psql session, in one READ ONLY transaction
that ends with ROLLBACK:

1. ``migration_probe()``: finds the migration tables with ``to_regclass`` under the audit role's
   own search path, and the server version (psql ``\\gset``: nothing is printed).  Every call is
   schema-qualified, because the search path is still the role's.
2. ``SET LOCAL search_path = pg_catalog, pg_temp``: from here on nothing a database user created
   can shadow a built-in function, and ``format_type``, ``pg_get_viewdef`` … print every
   user-defined name schema-qualified, whatever the audit role's search path is.  Then
   ``SET LOCAL work_mem`` (CATALOG_WORK_MEM).  The settings changed with SET LOCAL are reported
   with the value a session starts with (SESSION_SETTINGS), not the audit's own.
3. ``CATALOG_QUERY``: one SELECT over pg_catalog (never information_schema) returning a single
   JSON document.
4. ``migrations_generator()``: one SELECT that writes, from the tables step 1 found, one SELECT
   reading them all; psql's ``\\gexec`` runs it.  Tables the audit role may not read, or whose
   columns are not the tool's, are named in the result instead of being read, so that the
   generated statement cannot fail.

Objects that belong to an extension (pg_depend deptype 'e'), the system schemas (pg_catalog,
information_schema, pg_toast, pg_temp_*: every ``pg_*`` name is reserved) and temporary
schemas are left out.  The password hash is never selected: roles come from pg_roles, column by
column.  Texts are as PostgreSQL prints them; the query sorts only in byte order (COLLATE "C"),
and leaves any other sorting to Python, so that dev and prod sort alike whatever their locales.
"""

# The server versions the catalog query supports (attgenerated: 12; SQL-standard bodies: 14).
MIN_SERVER_VERSION_NUM = 120000
SQL_BODY_VERSION_NUM = 140000
NULLS_NOT_DISTINCT_VERSION_NUM = 150000
# Write privileges listed for the audit role (the check itself is exact).
WRITE_PRIVILEGE_LIMIT = 20
# A publication's schemas (FOR TABLES IN SCHEMA, from 15): psql variable envparity_pub_schemas, an
# expression over the publication p (no single quote: it is set with psql's \\set '...').
PUBLICATION_SCHEMAS = (
    '(SELECT json_agg(n.nspname ORDER BY n.nspname COLLATE "C") FROM pg_publication_namespace pn'
    " JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid)"
)
# Distinct (owner, ACL) pairs of large objects read (each is exploded into grantees and privileges).
LARGE_OBJECT_GROUP_LIMIT = 10000

# Settings the script changes with SET LOCAL: their session value is the audit's own, so the
# catalog reports the value sessions start with (reset_val) instead, with its source worked out
# from pg_db_role_setting ("configuration file" when it differs from the built-in default).
# The transaction_* settings BEGIN READ ONLY changes are left out.
SESSION_SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "search_path",
    "work_mem",
    "jit",
)
# Memory for the catalog query's aggregates (per-table JSON), for this transaction only: with the
# default 4MB they spill to temporary files (measured: 2,000 tables, 30% slower).
CATALOG_WORK_MEM = "64MB"

# tool: (the name given to to_regclass, the psql variable holding the table's oid)
MIGRATION_TABLES = (
    ("alembic", "alembic_version"),
    ("django", "django_migrations"),
    ("schema_migrations", "schema_migrations"),
    ("flyway", "flyway_schema_history"),
    ("knex", "knex_migrations"),
    ("prisma", "_prisma_migrations"),
    ("sequelize", '"SequelizeMeta"'),
)

# How each tool's table is read: (tool, table key in MIGRATION_TABLES, columns it must have,
# a column whose presence ("+name") or absence ("-name") selects this reader, the JSON array of
# ids, the "dirty" flag).  Ids come in applied order where the table records one; otherwise
# unordered, and Python sorts them (a collation-independent order).  schema_migrations is
# Rails' without a "dirty" column, golang-migrate's with one.
MIGRATION_READERS = (
    ("alembic", "alembic", ("version_num",), None, "json_agg(version_num::text)", "NULL::boolean"),
    (
        "django",
        "django",
        ("id", "app", "name"),
        None,
        "json_agg(json_build_array(app::text, name::text) ORDER BY id)",
        "NULL::boolean",
    ),
    ("rails", "schema_migrations", ("version",), "-dirty", "json_agg(version::text)", "NULL::boolean"),
    (
        "golang-migrate",
        "schema_migrations",
        ("version", "dirty"),
        "+dirty",
        "json_agg(version::text)",
        "bool_or(dirty)",
    ),
    (
        "flyway",
        "flyway",
        ("installed_rank", "version", "success"),
        None,
        "json_agg(version::text ORDER BY installed_rank) FILTER (WHERE success AND version IS NOT NULL)",
        "coalesce(bool_or(NOT success), false)",
    ),
    ("knex", "knex", ("id", "name"), None, "json_agg(name::text ORDER BY id)", "NULL::boolean"),
    (
        "prisma",
        "prisma",
        ("migration_name", "finished_at", "rolled_back_at"),
        None,
        "json_agg(migration_name::text ORDER BY finished_at, migration_name)"
        " FILTER (WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL)",
        "coalesce(bool_or(finished_at IS NULL AND rolled_back_at IS NULL), false)",
    ),
    ("sequelize", "sequelize", ("name",), None, "json_agg(name::text)", "NULL::boolean"),
)


def probe_variable(table_key):
    """The psql variable that holds the oid of a migration table (0: none)."""
    return "envparity_mig_" + table_key


def migration_probe():
    """The first statement (role's search path; schema-qualified calls only), ending in \\gset."""
    columns = [
        "COALESCE(pg_catalog.to_regclass('%s')::pg_catalog.oid, '0'::pg_catalog.oid) AS %s"
        % (name, probe_variable(key))
        for key, name in MIGRATION_TABLES
    ]
    for variable, version_num in (
        ("envparity_supported", MIN_SERVER_VERSION_NUM),
        ("envparity_pg14", SQL_BODY_VERSION_NUM),
        ("envparity_pg15", NULLS_NOT_DISTINCT_VERSION_NUM),
    ):
        columns.append(
            "pg_catalog.int4ge(pg_catalog.current_setting('server_version_num')::pg_catalog.int4, %d) AS %s"
            % (version_num, variable)
        )
    return "SELECT " + ",\n       ".join(columns) + " \\gset\n"


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


def _array(items):
    return "ARRAY[%s]::text[]" % ", ".join(_literal(item) for item in items)


def migrations_generator():
    """The SELECT (search_path = pg_catalog) whose one cell is the statement reading the
    migration tables, or NULL when there are none (\\gexec skips it).  Ends in \\gexec."""
    rows = []
    for tool, key, required, selector, ids, dirty in MIGRATION_READERS:
        when_present = when_absent = "NULL"
        if selector and selector[0] == "+":
            when_present = _literal(selector[1:])
        elif selector:
            when_absent = _literal(selector[1:])
        reader = "SELECT json_build_object('ids', coalesce(%s, '[]'::json), 'dirty', %s) FROM %%2$s" % (ids, dirty)
        rows.append(
            "(%s, :%s::oid, %s, %s, %s, %s)"
            % (_literal(tool), probe_variable(key), _array(required), when_present, when_absent, _literal(reader))
        )
    return (
        """SELECT 'SELECT json_build_object(' || string_agg(format('%L, %s', m.tool, m.reader), ', ') || ')'
FROM (
  SELECT k.tool,
         CASE
           WHEN NOT has_table_privilege(c.oid, 'SELECT')
             THEN format('json_build_object(''table'', %L, ''skipped'', ''no_select_privilege'')', t.ident)
           WHEN NOT (k.required <@ t.cols)
             THEN format('json_build_object(''table'', %L, ''skipped'', ''unexpected_columns'')', t.ident)
           ELSE format('json_build_object(''table'', %1$L, ''read'', (' || k.reader || '))', t.ident, t.qualified)
         END AS reader
  FROM (VALUES
    """
        + ",\n    ".join(rows)
        + """
  ) AS k(tool, oid, required, when_present, when_absent, reader)
  JOIN pg_class c ON c.oid = k.oid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL (
    SELECT n.nspname || '.' || c.relname AS ident,
           format('%I.%I', n.nspname, c.relname) AS qualified,
           ARRAY(SELECT a.attname::text FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols
  ) AS t
  WHERE k.oid <> 0
    AND (k.when_present IS NULL OR k.when_present = ANY (t.cols))
    AND (k.when_absent IS NULL OR k.when_absent <> ALL (t.cols))
) AS m \\gexec
"""
    )


CATALOG_QUERY = (
    r"""
WITH
ext AS (
  SELECT d.classid, d.objid FROM pg_depend d WHERE d.deptype = 'e'
),
nsp AS (
  SELECT n.oid, n.nspname, pg_get_userbyid(n.nspowner) AS owner
  FROM pg_namespace n
  WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = n.oid)
),
-- Tables (and partitioned and foreign tables) apart from the other relations: a CTE of its own
-- keeps the planner's row estimate for them right (a filter on a CTE's output is a guess).
tbl AS (
  SELECT c.oid, c.relname, c.relkind, c.relowner, c.relrowsecurity, c.relforcerowsecurity,
         c.relispartition, c.reltuples, c.relpages, c.reltoastrelid, c.relpersistence, c.relreplident, c.reloptions,
         c.relam, c.reltablespace, c.relpartbound, n.nspname, n.nspname || '.' || c.relname AS ident
  FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'f')
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
),
rel AS (
  SELECT c.oid, c.relkind, c.relpersistence, n.nspname || '.' || c.relname AS ident
  FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('v', 'm', 'S')
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
),
-- Each table's compared part is written here, as the text pg_tables describes: one JSON array
-- per table, built by json_build_array (its format: ", " between items), the columns in attnum
-- order, constraints, indexes and triggers sorted by name in byte order (COLLATE "C": the same on
-- every server, whatever its locale).  The collector passes the text on as it is; only a table
-- with a literal it redacts is rewritten, from the texts with a quote each part lists (lits).
-- Measured on 2,000 tables: the server spends ~0.05 s more than on flat rows, the collector
-- 0.2 s less than it spent grouping them.
-- The live columns of those tables, read once for the columns, defaults and keys; by table through
-- the (attrelid, attnum) index: pg_attribute also holds every index's, view's and TOAST table's
-- columns and six system columns a relation, which a full scan reads too (10% of the query).
att AS (
  SELECT a.*
  FROM tbl t
  CROSS JOIN LATERAL (
    SELECT pa.attrelid, pa.attnum, pa.attname, pa.atttypid, pa.atttypmod, pa.attnotnull, pa.attidentity,
           pa.attgenerated, pa.attcollation, pa.attacl, pa.attinhcount, pa.attislocal
    FROM pg_attribute pa WHERE pa.attrelid = t.oid AND pa.attnum > 0 AND NOT pa.attisdropped OFFSET 0
  ) AS a
),
col_rows AS (
  SELECT a.attrelid AS oid,
         string_agg(json_build_array(
           a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, d.def,
           CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END, d.gen,
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation THEN
             CASE WHEN cn.nspname = 'pg_catalog' THEN co.collname::text ELSE cn.nspname || '.' || co.collname END
           END,
           -- an inherited column: whether the table declares it too (null: not inherited)
           CASE WHEN a.attinhcount > 0 THEN a.attislocal END)::text, ', ' ORDER BY a.attnum) AS j,
         array_agg(coalesce(d.def, d.gen)) FILTER (WHERE strpos(coalesce(d.def, d.gen), '''') > 0) AS lits
  FROM att a
  JOIN pg_type ty ON ty.oid = a.atttypid
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
  LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
  -- OFFSET 0 keeps the subquery whole: each text is deparsed once, not once per use.
  LEFT JOIN (
    -- A column default cannot refer to a column: deparsed without the table (3x faster).
    SELECT ad.adrelid, ad.adnum,
           CASE WHEN da.attgenerated = '' THEN pg_get_expr(ad.adbin, 0) END AS def,
           CASE WHEN da.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS gen
    FROM pg_attrdef ad JOIN att da ON da.attrelid = ad.adrelid AND da.attnum = ad.adnum
    OFFSET 0
  ) AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  GROUP BY a.attrelid
),
-- Primary keys, unique constraints and foreign keys on plain columns are written here, in the text
-- pg_get_constraintdef prints for them (a test holds the two equal), from set-based joins: the
-- function costs ~20 us a constraint in a fresh session.  Checks, exclusions and the rest
-- (INCLUDE, NULLS NOT DISTINCT, ON DELETE SET NULL (columns)) go through pg_get_constraintdef.
con AS (
  SELECT co.oid, co.conrelid, co.conname, co.contype, co.conkey, co.confkey, co.confrelid, co.confmatchtype,
         co.confupdtype, co.confdeltype,
         CASE WHEN co.condeferrable THEN ' DEFERRABLE' ELSE '' END
           || CASE WHEN co.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END
           || CASE WHEN co.convalidated THEN '' ELSE ' NOT VALID' END AS suffix,
         CASE co.contype
           WHEN 'f' THEN :envparity_fk_plain
           WHEN 'c' THEN false
           WHEN 'x' THEN false
           ELSE EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = co.conindid
                                 AND i.indnkeyatts = i.indnatts AND NOT :envparity_nulls_not_distinct)
         END AS plain
  FROM pg_constraint co JOIN tbl t ON t.oid = co.conrelid
  WHERE co.contype IN ('p', 'u', 'f', 'c', 'x')
),
con_keys AS (
  SELECT cs.oid,
         string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) FILTER (WHERE k.side = 1) AS keys,
         string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) FILTER (WHERE k.side = 2) AS refkeys
  FROM con cs
  CROSS JOIN LATERAL (
    SELECT 1 AS side, cs.conrelid AS rel, u.attnum, u.n FROM unnest(cs.conkey) WITH ORDINALITY AS u(attnum, n)
    UNION ALL
    SELECT 2, cs.confrelid, u.attnum, u.n FROM unnest(cs.confkey) WITH ORDINALITY AS u(attnum, n)
  ) AS k
  LEFT JOIN att a ON a.attrelid = k.rel AND a.attnum = k.attnum
  WHERE cs.plain
  GROUP BY cs.oid
  HAVING bool_and(a.attname IS NOT NULL)
),
con_rows AS (
  SELECT s.conrelid AS oid,
         string_agg(json_build_array(s.conname, s.kind, s.def)::text, ', ' ORDER BY s.conname COLLATE "C") AS j,
         array_agg(s.def) FILTER (WHERE strpos(s.def, '''') > 0) AS lits
  FROM (
    SELECT cs.conrelid, cs.conname,
           CASE cs.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key'
                           WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' END AS kind,
           coalesce(
             CASE cs.contype
               WHEN 'p' THEN 'PRIMARY KEY (' || k.keys || ')'
               WHEN 'u' THEN 'UNIQUE (' || k.keys || ')'
               WHEN 'f' THEN 'FOREIGN KEY (' || k.keys || ') REFERENCES ' || quote_ident(rn.nspname) || '.'
                 || quote_ident(rc.relname) || '(' || k.refkeys || ')'
                 || CASE cs.confmatchtype WHEN 'f' THEN ' MATCH FULL' WHEN 'p' THEN ' MATCH PARTIAL' ELSE '' END
                 || CASE cs.confupdtype WHEN 'r' THEN ' ON UPDATE RESTRICT' WHEN 'c' THEN ' ON UPDATE CASCADE'
                      WHEN 'n' THEN ' ON UPDATE SET NULL' WHEN 'd' THEN ' ON UPDATE SET DEFAULT' ELSE '' END
                 || CASE cs.confdeltype WHEN 'r' THEN ' ON DELETE RESTRICT' WHEN 'c' THEN ' ON DELETE CASCADE'
                      WHEN 'n' THEN ' ON DELETE SET NULL' WHEN 'd' THEN ' ON DELETE SET DEFAULT' ELSE '' END
             END || cs.suffix,
             pg_get_constraintdef(cs.oid)) AS def
    FROM con cs
    LEFT JOIN con_keys k ON k.oid = cs.oid
    LEFT JOIN pg_class rc ON rc.oid = cs.confrelid
    LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    OFFSET 0
  ) AS s
  GROUP BY s.conrelid
),
-- pg_get_indexdef costs ~80 us an index in a fresh session (catalog cache misses). An index on
-- plain columns, each with its type's default operator class, its own collation and the default
-- order, without predicate, INCLUDE, options or NULLS NOT DISTINCT, has its definition written
-- here instead, in the text pg_get_indexdef prints for it (tests hold the two equal); every
-- other index is deparsed by pg_get_indexdef.  A type's default operator class follows
-- GetDefaultOpClass: the default for the type itself, else the default for the one preferred
-- type of its category it is binary-coercible to (varchar: text_ops).
default_opclass AS (
  SELECT oc.oid AS opc, oc.opcintype AS typ FROM pg_opclass oc WHERE oc.opcdefault
  UNION ALL
  SELECT oc.oid, ca.castsource
  FROM pg_cast ca
  JOIN pg_opclass oc ON oc.opcintype = ca.casttarget AND oc.opcdefault
  JOIN pg_type st ON st.oid = ca.castsource
  JOIN pg_type it ON it.oid = ca.casttarget
  WHERE ca.castmethod = 'b' AND ca.castcontext = 'i' AND it.typispreferred AND it.typcategory = st.typcategory
    AND NOT EXISTS (SELECT 1 FROM pg_opclass x
                    WHERE x.opcmethod = oc.opcmethod AND x.opcdefault AND x.opcintype = ca.castsource)
),
idx AS (
  SELECT i.indexrelid, i.indrelid, i.indnkeyatts, i.indkey, i.indclass, i.indoption, i.indcollation, i.indisunique,
         i.indisprimary, ic.relname, ic.relpages, ic.relkind, am.amname, t.nspname, t.relname AS tablename,
         i.indexprs IS NULL AND i.indpred IS NULL AND i.indnkeyatts = i.indnatts AND i.indnkeyatts <= 32
           AND NOT :envparity_nulls_not_distinct AND ic.relkind = 'i' AND ic.reloptions IS NULL AS simple
  FROM pg_index i
  JOIN tbl t ON t.oid = i.indrelid
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
),
idx_plain AS (
  SELECT x.indexrelid, string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) AS keys
  FROM idx x
  -- Key positions by subscript (the vectors start at 0), joined to 0..31 (INDEX_MAX_KEYS, the
  -- usual build's limit; "simple" excludes more keys): measured 10-15% off the whole query, against unnest.
  JOIN (SELECT generate_series(0, 31) AS n) AS p ON p.n < x.indnkeyatts
  CROSS JOIN LATERAL (SELECT x.indkey[p.n] AS attnum, x.indclass[p.n] AS opc, x.indoption[p.n] AS opt,
                             x.indcollation[p.n] AS coll, p.n) AS k
  LEFT JOIN att a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
  LEFT JOIN default_opclass dop ON dop.opc = k.opc AND dop.typ = a.atttypid
  WHERE x.simple
  GROUP BY x.indexrelid
  HAVING bool_and(coalesce(a.attnum IS NOT NULL AND k.opt = 0 AND (k.coll = 0 OR k.coll = a.attcollation)
                           AND dop.opc IS NOT NULL, false))
),
idx_rows AS (
  SELECT s.indrelid AS oid,
         string_agg(json_build_array(s.relname, s.def, s.indisunique, s.indisprimary)::text, ', '
                    ORDER BY s.relname COLLATE "C") AS j,
         array_agg(s.def) FILTER (WHERE strpos(s.def, '''') > 0) AS lits,
         sum(s.relpages) AS pages
  FROM (
    SELECT x.indrelid, x.relname, x.indisunique, x.indisprimary, x.relpages,
           coalesce(
             'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(x.relname)
               || ' ON ' || quote_ident(x.nspname) || '.' || quote_ident(x.tablename)
               || ' USING ' || quote_ident(x.amname) || ' (' || p.keys || ')',
             pg_get_indexdef(x.indexrelid)) AS def
    FROM idx x LEFT JOIN idx_plain p ON p.indexrelid = x.indexrelid
    OFFSET 0
  ) AS s
  GROUP BY s.indrelid
),
trg_rows AS (
  SELECT s.tgrelid AS oid,
         string_agg(json_build_array(s.tgname, s.def, s.enabled)::text, ', ' ORDER BY s.tgname COLLATE "C") AS j,
         array_agg(s.def) FILTER (WHERE strpos(s.def, '''') > 0) AS lits
  FROM (
    SELECT tg.tgrelid, tg.tgname, pg_get_triggerdef(tg.oid, true) AS def,
           CASE tg.tgenabled WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
                             WHEN 'A' THEN 'always' END AS enabled
    FROM pg_trigger tg JOIN tbl t ON t.oid = tg.tgrelid
    WHERE NOT tg.tgisinternal
    OFFSET 0
  ) AS s
  GROUP BY s.tgrelid
),
-- Parents of tables that inherit (INHERITS, not partitions: partition_of says those), in order.
inh AS (
  SELECT h.inhrelid AS oid, json_agg(pn.nspname || '.' || pc.relname ORDER BY h.inhseqno) AS parents
  FROM pg_inherits h
  JOIN tbl t ON t.oid = h.inhrelid AND NOT t.relispartition
  JOIN pg_class pc ON pc.oid = h.inhparent
  JOIN pg_namespace pn ON pn.oid = pc.relnamespace
  GROUP BY h.inhrelid
),
-- Row estimates and sizes are pg_class statistics (as of the last VACUUM, ANALYZE or CREATE
-- INDEX): pg_total_relation_size would lock every table to the end of the transaction, in the way
-- of any DDL a deployment runs meanwhile, and stat its files.
tables AS (
  SELECT json_agg(json_build_array(
           t.ident, pg_get_userbyid(t.relowner), t.reltuples::bigint,
           t.relpages::bigint + coalesce(tc.relpages, 0) + coalesce(i.pages, 0),
           '[' || json_build_array(
             CASE t.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned' ELSE 'foreign' END,
             t.relrowsecurity, t.relforcerowsecurity,
             CASE WHEN t.relkind = 'p' THEN pg_get_partkeydef(t.oid) END,
             (SELECT pn.nspname || '.' || pc.relname
              FROM pg_inherits h
              JOIN pg_class pc ON pc.oid = h.inhparent
              JOIN pg_namespace pn ON pn.oid = pc.relnamespace
              WHERE t.relispartition AND h.inhrelid = t.oid),
             CASE WHEN t.relpersistence = 'u' THEN 'unlogged' ELSE 'logged' END,
             CASE WHEN t.reloptions IS NOT NULL
                  THEN (SELECT json_agg(o.opt ORDER BY o.opt COLLATE "C") FROM unnest(t.reloptions) AS o(opt)) END,
             CASE t.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'
               ELSE 'index ' || (SELECT ri.relname FROM pg_index ix JOIN pg_class ri ON ri.oid = ix.indexrelid
                                 WHERE ix.indrelid = t.oid AND ix.indisreplident) END,
             (SELECT ih.parents FROM inh ih WHERE ih.oid = t.oid),
             CASE WHEN t.relispartition THEN pg_get_expr(t.relpartbound, t.oid) END,
             -- heap is access method 2 (HEAP_TABLE_AM_OID, fixed): named without a lookup.
             CASE t.relam WHEN 0 THEN NULL WHEN 2 THEN 'heap'
                          ELSE (SELECT am.amname FROM pg_am am WHERE am.oid = t.relam)::text END,
             CASE WHEN t.reltablespace <> 0
                  THEN (SELECT sp.spcname FROM pg_tablespace sp WHERE sp.oid = t.reltablespace) END)::text
           || ', [' || coalesce(c.j, '') || '], [' || coalesce(k.j, '') || '], [' || coalesce(i.j, '')
           || '], [' || coalesce(g.j, '') || ']]',
           c.lits || k.lits || i.lits || g.lits
             || CASE WHEN t.relispartition AND strpos(pg_get_expr(t.relpartbound, t.oid), '''') > 0
                     THEN ARRAY[pg_get_expr(t.relpartbound, t.oid)] END)) AS j
  -- No more relations in this FROM than before (each one more widens the planner's join search):
  -- parents and bounds are read in the select list.
  FROM tbl t
  LEFT JOIN pg_class tc ON tc.oid = t.reltoastrelid
  LEFT JOIN col_rows c ON c.oid = t.oid
  LEFT JOIN con_rows k ON k.oid = t.oid
  LEFT JOIN idx_rows i ON i.oid = t.oid
  LEFT JOIN trg_rows g ON g.oid = t.oid
),
-- Views with their triggers (INSTEAD OF ...) and materialized views with their indexes, by name.
views AS (
  SELECT json_object_agg(r.ident, json_build_object(
           'materialized', r.relkind = 'm', 'definition', pg_get_viewdef(r.oid, true),
           'triggers', (SELECT json_object_agg(tg.tgname, json_build_object(
                                 'definition', pg_get_triggerdef(tg.oid, true),
                                 'enabled', CASE tg.tgenabled WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled'
                                                              WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END))
                        FROM pg_trigger tg WHERE tg.tgrelid = r.oid AND NOT tg.tgisinternal),
           'indexes', CASE WHEN r.relkind = 'm' THEN
                        (SELECT json_object_agg(ic.relname, json_build_object(
                                  'definition', pg_get_indexdef(i.indexrelid), 'unique', i.indisunique,
                                  'primary', i.indisprimary))
                         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = r.oid)
                      END)) AS j
  FROM rel r WHERE r.relkind IN ('v', 'm')
),
funcs AS (
  SELECT json_object_agg(
           n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           json_build_object(
             'kind', CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure'
                                    WHEN 'a' THEN 'aggregate' ELSE 'window' END,
             'language', l.lanname,
             'returns', CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END,
             'volatility', CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
             'security_definer', p.prosecdef,
             'body', coalesce(:envparity_sqlbody, p.prosrc))) AS j
  FROM pg_proc p
  JOIN nsp n ON n.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
),
-- A sequence's OWNED BY column: its automatic (deptype 'a') dependency on a table column.
seqs AS (
  SELECT json_object_agg(r.ident, json_build_object(
           'type', format_type(s.seqtypid, NULL), 'increment', s.seqincrement::text,
           'min', s.seqmin::text, 'max', s.seqmax::text, 'cycle', s.seqcycle,
           'start', s.seqstart::text, 'cache', s.seqcache::text,
           'unlogged', r.relpersistence = 'u',
           'owned_by', (SELECT on_.nspname || '.' || oc.relname || '.' || oa.attname
                        FROM pg_depend d
                        JOIN pg_class oc ON oc.oid = d.refobjid
                        JOIN pg_namespace on_ ON on_.oid = oc.relnamespace
                        JOIN pg_attribute oa ON oa.attrelid = d.refobjid AND oa.attnum = d.refobjsubid
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'a'
                          AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0))) AS j
  FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
  WHERE r.relkind = 'S'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'i')
),
-- Enums, domains, ranges and composite types of their own (CREATE TYPE ... AS (...)): not the row
-- type every table, view and sequence has.
typ AS (
  SELECT t.oid, t.typtype, t.typbasetype, t.typtypmod, t.typnotnull, t.typdefaultbin, t.typowner, t.typacl,
         t.typrelid, n.nspname || '.' || t.typname AS ident
  FROM pg_type t JOIN nsp n ON n.oid = t.typnamespace
  WHERE (t.typtype IN ('e', 'd', 'r')
         OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class tc WHERE tc.oid = t.typrelid AND tc.relkind = 'c')))
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_type'::regclass AND ext.objid = t.oid)
),
composites AS (
  SELECT json_object_agg(ty.ident, json_build_object(
           'attributes', (SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod))
                                                   ORDER BY a.attnum), '[]'::json)
                          FROM pg_attribute a WHERE a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped)))
           AS j
  FROM typ ty WHERE ty.typtype = 'c'
),
ranges AS (
  SELECT json_object_agg(ty.ident, json_build_object(
           'subtype', format_type(rg.rngsubtype, NULL),
           'collation', (SELECT cn.nspname || '.' || co.collname FROM pg_collation co
                         JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = rg.rngcollation),
           'opclass', (SELECT oc.opcname FROM pg_opclass oc WHERE oc.oid = rg.rngsubopc),
           'canonical', CASE WHEN rg.rngcanonical <> 0 THEN rg.rngcanonical::regproc::text END,
           'subdiff', CASE WHEN rg.rngsubdiff <> 0 THEN rg.rngsubdiff::regproc::text END)) AS j
  FROM typ ty JOIN pg_range rg ON rg.rngtypid = ty.oid
),
-- The locale column is colliculocale in 15 and 16, colllocale from 17 (read by name from the row).
colls AS (
  SELECT json_object_agg(n.nspname || '.' || co.collname, json_build_object(
           'provider', CASE co.collprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin'
                                            ELSE 'default' END,
           'locale', coalesce(to_jsonb(co) ->> 'colllocale', to_jsonb(co) ->> 'colliculocale'),
           'collate', co.collcollate, 'ctype', co.collctype, 'deterministic', co.collisdeterministic)) AS j
  FROM pg_collation co JOIN nsp n ON n.oid = co.collnamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_collation'::regclass AND ext.objid = co.oid)
),
-- Rules (CREATE RULE; not the _RETURN rule that makes a view) as pg_get_ruledef prints them.
rules AS (
  SELECT json_object_agg(n.nspname || '.' || c.relname || '.' || rw.rulename, json_build_object(
           'relation', n.nspname || '.' || c.relname, 'definition', pg_get_ruledef(rw.oid, true))) AS j
  FROM pg_rewrite rw JOIN pg_class c ON c.oid = rw.ev_class JOIN nsp n ON n.oid = c.relnamespace
  WHERE rw.rulename <> '_RETURN'
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
),
evts AS (
  SELECT json_object_agg(e.evtname, json_build_object(
           'event', e.evtevent,
           'function', pn.nspname || '.' || p.proname,
           'enabled', CASE e.evtenabled WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
                                        WHEN 'A' THEN 'always' END,
           'tags', (SELECT json_agg(x.tag ORDER BY x.tag COLLATE "C") FROM unnest(e.evttags) AS x(tag)))) AS j
  FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_event_trigger'::regclass AND ext.objid = e.oid)
),
-- Publications (pubviaroot from 13: read by name from the row) and this database's subscriptions,
-- column by column: never subconninfo, the connection string.
pubs AS (
  SELECT json_object_agg(p.pubname, json_build_object(
           'all_tables', p.puballtables, 'insert', p.pubinsert, 'update', p.pubupdate, 'delete', p.pubdelete,
           'truncate', p.pubtruncate, 'via_root', (to_jsonb(p) ->> 'pubviaroot')::boolean,
           'tables', (SELECT coalesce(json_agg(t.ident ORDER BY t.ident COLLATE "C"), '[]'::json)
                      FROM pg_publication_rel pr JOIN tbl t ON t.oid = pr.prrelid WHERE pr.prpubid = p.oid),
           -- From 15 (psql variables, NULL before): FOR TABLES IN SCHEMA, and per table its row
           -- filter (pg_get_expr) and column list (names in the table's order), for the tables with one.
           'schemas', :envparity_pub_schemas,
           'filters', (SELECT json_object_agg(t.ident, json_build_object(
                                'where', :envparity_pub_where,
                                'columns', (SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                                            WHERE a.attrelid = pr.prrelid AND a.attnum = ANY (:envparity_pub_columns))))
                       FROM pg_publication_rel pr JOIN tbl t ON t.oid = pr.prrelid
                       WHERE pr.prpubid = p.oid
                         AND (:envparity_pub_where IS NOT NULL OR :envparity_pub_columns IS NOT NULL)))) AS j
  FROM pg_publication p
),
-- Large objects: each lo_create picks its own oid, so they are compared without identity: per
-- owner (the database's owner as "(database owner)", whatever its name), how many there are and
-- how many carry each ACL (grantee: privileges; the owner "(owner)", a NULL ACL as the default it
-- means, acldefault).  Distinct (owner, ACL) pairs are grouped first and only those exploded, at
-- most __LO_GROUPS__ of them ("truncated" past that).
lo_groups AS (
  SELECT m.lomowner, m.lomacl, count(*) AS n
  FROM pg_largeobject_metadata m GROUP BY m.lomowner, m.lomacl LIMIT __LO_GROUPS__ + 1
),
lo_shapes AS (
  SELECT CASE WHEN g.lomowner = (SELECT datdba FROM pg_database WHERE datname = current_database())
              THEN '(database owner)' ELSE pg_get_userbyid(g.lomowner)::text END AS owner,
         coalesce((SELECT string_agg(x.grantee || ': ' || x.privileges, '; ' ORDER BY x.grantee COLLATE "C")
                   FROM (SELECT y.grantee, string_agg(y.privilege, ', ' ORDER BY y.privilege COLLATE "C") AS privileges
                         FROM (SELECT CASE WHEN e.grantee = g.lomowner THEN '(owner)' WHEN e.grantee = 0 THEN 'PUBLIC'
                                           ELSE pg_get_userbyid(e.grantee)::text END AS grantee,
                                      e.privilege_type
                                        || CASE WHEN bool_or(e.is_grantable) THEN ' WITH GRANT OPTION' ELSE '' END
                                        AS privilege
                               FROM aclexplode(coalesce(g.lomacl, acldefault('L', g.lomowner))) AS e
                               GROUP BY 1, e.privilege_type) AS y
                         GROUP BY y.grantee) AS x), '') AS acl,
         g.n
  FROM (SELECT * FROM lo_groups LIMIT __LO_GROUPS__) AS g
),
lobs AS (
  SELECT json_build_object(
           'count', (SELECT count(*) FROM pg_largeobject_metadata),
           'truncated', (SELECT count(*) FROM lo_groups) > __LO_GROUPS__,
           'owners', (SELECT coalesce(json_object_agg(o.owner, json_build_object('count', o.n, 'acls', o.acls)),
                                      '{}'::json)
                      FROM (SELECT s.owner, sum(s.n) AS n, json_object_agg(s.acl, s.n) AS acls
                            FROM (SELECT owner, acl, sum(n) AS n FROM lo_shapes GROUP BY owner, acl) AS s
                            GROUP BY s.owner) AS o)) AS j
),
subs AS (
  SELECT json_object_agg(s.subname, json_build_object(
           'enabled', s.subenabled, 'slot', s.subslotname,
           'publications', (SELECT json_agg(x.pub ORDER BY x.pub COLLATE "C")
                            FROM unnest(s.subpublications) AS x(pub)))) AS j
  FROM pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
),
-- Comments (COMMENT ON) of the database's own objects (oids from FirstNormalObjectId, 16384),
-- keyed "<kind> <object>"; columns, indexes, constraints, triggers, policies and rules under their
-- table.
descr AS (
  SELECT d.objoid, d.classoid, d.objsubid, d.description FROM pg_description d WHERE d.objoid >= 16384
),
comments AS (
  SELECT json_object_agg(x.k, x.description) AS j
  FROM (
    SELECT CASE c.relkind WHEN 'f' THEN 'foreign table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          WHEN 'S' THEN 'sequence' ELSE 'table' END || ' ' || n.nspname || '.' || c.relname AS k,
           d.description
    FROM descr d JOIN pg_class c ON c.oid = d.objoid JOIN nsp n ON n.oid = c.relnamespace
    WHERE d.classoid = 'pg_class'::regclass AND d.objsubid = 0 AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
    UNION ALL
    SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname, d.description
    FROM descr d JOIN pg_class c ON c.oid = d.objoid JOIN nsp n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
    WHERE d.classoid = 'pg_class'::regclass AND d.objsubid > 0
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
    UNION ALL
    SELECT 'index ' || n.nspname || '.' || c.relname || '.' || ic.relname, d.description
    FROM descr d JOIN pg_index i ON i.indexrelid = d.objoid JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class c ON c.oid = i.indrelid JOIN nsp n ON n.oid = c.relnamespace
    WHERE d.classoid = 'pg_class'::regclass AND d.objsubid = 0
    UNION ALL
    SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           d.description
    FROM descr d JOIN pg_proc p ON p.oid = d.objoid JOIN nsp n ON n.oid = p.pronamespace
    WHERE d.classoid = 'pg_proc'::regclass
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
    UNION ALL
    SELECT 'type ' || ty.ident, d.description FROM descr d JOIN typ ty ON ty.oid = d.objoid
    WHERE d.classoid = 'pg_type'::regclass
    UNION ALL
    SELECT 'schema ' || n.nspname, d.description FROM descr d JOIN nsp n ON n.oid = d.objoid
    WHERE d.classoid = 'pg_namespace'::regclass
    UNION ALL
    SELECT 'constraint ' || t.ident || '.' || co.conname, d.description
    FROM descr d JOIN pg_constraint co ON co.oid = d.objoid JOIN tbl t ON t.oid = co.conrelid
    WHERE d.classoid = 'pg_constraint'::regclass
    UNION ALL
    -- A trigger's or a rule's (not the _RETURN rule of a view), under its relation.
    SELECT CASE WHEN tg.oid IS NULL THEN 'rule ' ELSE 'trigger ' END || n.nspname || '.' || c.relname || '.'
             || coalesce(tg.tgname, rw.rulename),
           d.description
    FROM descr d
    LEFT JOIN pg_trigger tg ON d.classoid = 'pg_trigger'::regclass AND tg.oid = d.objoid
    LEFT JOIN pg_rewrite rw ON d.classoid = 'pg_rewrite'::regclass AND rw.oid = d.objoid AND rw.rulename <> '_RETURN'
    JOIN pg_class c ON c.oid = coalesce(tg.tgrelid, rw.ev_class)
    JOIN nsp n ON n.oid = c.relnamespace
    UNION ALL
    SELECT 'policy ' || t.ident || '.' || po.polname, d.description
    FROM descr d JOIN pg_policy po ON po.oid = d.objoid JOIN tbl t ON t.oid = po.polrelid
    WHERE d.classoid = 'pg_policy'::regclass
    UNION ALL
    SELECT 'collation ' || n.nspname || '.' || co.collname, d.description
    FROM descr d JOIN pg_collation co ON co.oid = d.objoid JOIN nsp n ON n.oid = co.collnamespace
    WHERE d.classoid = 'pg_collation'::regclass
    UNION ALL
    SELECT 'event trigger ' || e.evtname, d.description
    FROM descr d JOIN pg_event_trigger e ON e.oid = d.objoid WHERE d.classoid = 'pg_event_trigger'::regclass
    UNION ALL
    SELECT 'publication ' || p.pubname, d.description
    FROM descr d JOIN pg_publication p ON p.oid = d.objoid WHERE d.classoid = 'pg_publication'::regclass
    UNION ALL
    SELECT 'extension ' || e.extname, d.description
    FROM descr d JOIN pg_extension e ON e.oid = d.objoid WHERE d.classoid = 'pg_extension'::regclass
    UNION ALL
    -- A subscription's comment is in this database's pg_description (COMMENT ON writes only those
    -- of databases, roles and tablespaces to pg_shdescription).
    SELECT 'subscription ' || s.subname, d.description
    FROM descr d JOIN pg_subscription s ON s.oid = d.objoid
    WHERE d.classoid = 'pg_subscription'::regclass
      AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    -- Shared objects' comments, in pg_shdescription: this database's (key "database", as in
    -- privileges) and the roles' listed in roles (whatever their oid).  Only databases, tablespaces
    -- and roles have theirs there: a role's is the one of neither of the other two classes.
    SELECT CASE WHEN r.rolname IS NULL THEN 'database' ELSE 'role ' || r.rolname END, sd.description
    FROM pg_shdescription sd
    LEFT JOIN pg_roles r ON sd.classoid NOT IN ('pg_database'::regclass, 'pg_tablespace'::regclass)
                        AND r.oid = sd.objoid
    WHERE (sd.classoid = 'pg_database'::regclass
           AND sd.objoid = (SELECT oid FROM pg_database WHERE datname = current_database()))
       OR (r.rolname IS NOT NULL AND r.rolname NOT LIKE 'pg\_%')
  ) AS x
),
enums AS (
  SELECT json_object_agg(ty.ident, json_build_object(
           'labels', (SELECT coalesce(json_agg(e.enumlabel ORDER BY e.enumsortorder), '[]'::json)
                      FROM pg_enum e WHERE e.enumtypid = ty.oid))) AS j
  FROM typ ty WHERE ty.typtype = 'e'
),
domains AS (
  SELECT json_object_agg(ty.ident, json_build_object(
           'base_type', format_type(ty.typbasetype, ty.typtypmod),
           'nullable', NOT ty.typnotnull,
           'default', pg_get_expr(ty.typdefaultbin, 0),
           'constraints', (SELECT coalesce(json_agg(pg_get_constraintdef(c.oid)), '[]'::json)
                           FROM pg_constraint c WHERE c.contypid = ty.oid AND c.contype <> 'n'),
           -- The same by name (ALTER DOMAIN ... VALIDATE CONSTRAINT needs it; NOT VALID ends a
           -- definition whose convalidated is false).
           'named_constraints', (SELECT coalesce(json_object_agg(c.conname, pg_get_constraintdef(c.oid)), '{}'::json)
                                 FROM pg_constraint c WHERE c.contypid = ty.oid AND c.contype <> 'n'))) AS j
  FROM typ ty WHERE ty.typtype = 'd'
),
exts AS (
  SELECT json_object_agg(e.extname, json_build_object('version', e.extversion, 'schema', n.nspname)) AS j
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
),
me AS (
  SELECT (SELECT oid FROM pg_database WHERE datname = current_database()) AS db,
         (SELECT oid FROM pg_roles WHERE rolname = session_user) AS role
),
role_set AS (
  SELECT rs.setdatabase, rs.setrole, lower(split_part(c.item, '=', 1)) AS name
  FROM pg_db_role_setting rs, me, unnest(rs.setconfig) AS c(item)
  WHERE (rs.setdatabase = me.db OR rs.setdatabase = 0) AND (rs.setrole = me.role OR rs.setrole = 0)
),
sets AS (
  SELECT json_object_agg(s.name, json_build_object('value', s.value, 'unit', s.unit, 'source', s.source)) AS j
  FROM (
    SELECT st.name, st.unit,
           CASE WHEN st.source = 'session' THEN st.reset_val ELSE st.setting END AS value,
           CASE
             WHEN st.source <> 'session' THEN st.source
             WHEN EXISTS (SELECT 1 FROM role_set x, me WHERE x.setdatabase = me.db AND x.setrole = me.role
                          AND x.name = lower(st.name)) THEN 'database user'
             WHEN EXISTS (SELECT 1 FROM role_set x, me WHERE x.setdatabase = 0 AND x.setrole = me.role
                          AND x.name = lower(st.name)) THEN 'user'
             WHEN EXISTS (SELECT 1 FROM role_set x, me WHERE x.setdatabase = me.db AND x.setrole = 0
                          AND x.name = lower(st.name)) THEN 'database'
             WHEN st.reset_val IS DISTINCT FROM st.boot_val THEN 'configuration file'
           END AS source
    FROM pg_settings st
    WHERE st.source NOT IN ('default', 'override', 'client', 'interactive')
      AND (st.source <> 'session' OR st.name IN (__SESSION_SETTINGS__))
    UNION ALL
    -- Custom settings no module defines (ALTER DATABASE ... SET app.jwt_secret = ...) are
    -- placeholders, which pg_settings does not show: read them where they are stored.
    SELECT split_part(c.item, '=', 1), NULL, substr(c.item, strpos(c.item, '=') + 1), 'database'
    FROM pg_db_role_setting rs, me, unnest(rs.setconfig) AS c(item)
    WHERE rs.setdatabase = me.db AND rs.setrole = 0
      AND NOT EXISTS (SELECT 1 FROM pg_settings st WHERE lower(st.name) = lower(split_part(c.item, '=', 1)))
  ) AS s
  WHERE s.source IS NOT NULL
),
roles AS (
  SELECT json_object_agg(r.rolname, json_build_object(
           'superuser', r.rolsuper, 'createdb', r.rolcreatedb, 'createrole', r.rolcreaterole,
           'login', r.rolcanlogin, 'replication', r.rolreplication, 'bypassrls', r.rolbypassrls,
           'connection_limit', r.rolconnlimit,
           'member_of', (SELECT coalesce(json_agg(g.rolname), '[]'::json)
                         FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                         WHERE m.member = r.oid),
           'config', r.rolconfig,
           'database_config', (SELECT rs.setconfig FROM pg_db_role_setting rs, me
                               WHERE rs.setdatabase = me.db AND rs.setrole = r.oid))) AS j
  FROM pg_roles r WHERE r.rolname NOT LIKE 'pg\_%'
),
priv AS (
  SELECT 1 AS grp, ''::text AS k1, 0 AS k2, 'CREATE on database ' || current_database() AS d
  WHERE has_database_privilege(current_database(), 'CREATE')
  UNION ALL
  SELECT 2, n.nspname::text, 0, 'CREATE on schema ' || n.nspname
  FROM nsp n WHERE has_schema_privilege(n.oid, 'CREATE')
  UNION ALL
  SELECT 3, r.ident, p.o, p.priv || ' on ' || r.ident
  FROM tbl r CROSS JOIN (VALUES (1, 'INSERT'), (2, 'UPDATE'), (3, 'DELETE'), (4, 'TRUNCATE')) AS p(o, priv)
  -- INSERT and UPDATE may also be granted on columns; has_any_column_privilege reads every column's
  -- ACL, so it is asked only of a table with column ACLs (for a role without write privileges,
  -- 2,000 tables: 0.15 s less).
  WHERE has_table_privilege(r.oid, p.priv)
     OR (p.o <= 2 AND EXISTS (SELECT 1 FROM pg_attribute ca WHERE ca.attrelid = r.oid AND ca.attacl IS NOT NULL)
         AND has_any_column_privilege(r.oid, p.priv))
),
audit AS (
  SELECT json_build_object(
           'name', current_user,
           'superuser', coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false),
           'can_write', EXISTS (SELECT 1 FROM priv),
           'write_privileges', (SELECT coalesce(json_agg(x.d ORDER BY x.grp, x.k1 COLLATE "C", x.k2), '[]'::json)
                                FROM (SELECT * FROM priv ORDER BY grp, k1 COLLATE "C", k2
                                      LIMIT __WRITE_LIMIT__) AS x)) AS j
),
schemas AS (
  SELECT json_object_agg(nspname, json_build_object('owner', owner)) AS j FROM nsp
)
,
-- Privileges: the objects with an explicit ACL (NULL is the kind's default, privilege_defaults
-- below, as acldefault prints it), exploded by aclexplode into grantee -> privileges; a
-- privilege held with the grant option reads "SELECT WITH GRANT OPTION" (whoever granted it:
-- grantors are not compared).  The object's owner is "(owner)", so that an owner named
-- differently in each environment is not a difference; grantee 0 is PUBLIC.  Identity
-- sequences are part of their column (not listed, like in sequences).
acl_obj AS (
  SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'f' THEN 'foreign table'
                        WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'sequence' END AS kind,
         n.nspname || '.' || c.relname AS ident, c.relowner AS owner, c.relacl AS acl
  FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
  WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('e', 'i'))
  UNION ALL
  SELECT 'column', t.ident || '.' || a.attname, t.relowner, a.attacl
  FROM att a JOIN tbl t ON t.oid = a.attrelid WHERE a.attacl IS NOT NULL
  UNION ALL
  SELECT 'function', n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
         p.proowner, p.proacl
  FROM pg_proc p JOIN nsp n ON n.oid = p.pronamespace
  WHERE p.proacl IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
  UNION ALL
  SELECT 'schema', n.nspname, n.nspowner, n.nspacl
  FROM pg_namespace n JOIN nsp ON nsp.oid = n.oid WHERE n.nspacl IS NOT NULL
  UNION ALL
  SELECT 'database', NULL, d.datdba, d.datacl
  FROM pg_database d WHERE d.datname = current_database() AND d.datacl IS NOT NULL
  UNION ALL
  SELECT 'type', ty.ident, ty.typowner, ty.typacl FROM typ ty WHERE ty.typacl IS NOT NULL
  UNION ALL
  -- ALTER DEFAULT PRIVILEGES (defacl below): the creating role owns the future objects.
  SELECT 'default privileges', d.oid::text, d.defaclrole, d.defaclacl FROM pg_default_acl d
),
-- grantee -> sorted privileges, for an ACL whose owner is given (the grant option once per
-- privilege: granted by two grantors, with and without it, counts as with it).
acl_grants AS (
  SELECT o.kind, o.ident,
         -- An ACL with nothing left in it (all revoked, even from the owner) is {}, not the default.
         coalesce(json_object_agg(g.grantee, g.privileges) FILTER (WHERE g.grantee IS NOT NULL), '{}'::json) AS grants
  FROM acl_obj o
  LEFT JOIN LATERAL (
    SELECT x.grantee, json_agg(x.privilege ORDER BY x.privilege COLLATE "C") AS privileges
    FROM (
      SELECT CASE WHEN e.grantee = o.owner THEN '(owner)' WHEN e.grantee = 0 THEN 'PUBLIC'
                  ELSE pg_get_userbyid(e.grantee)::text END AS grantee,
             e.privilege_type || CASE WHEN bool_or(e.is_grantable) THEN ' WITH GRANT OPTION' ELSE '' END AS privilege
      FROM aclexplode(o.acl) AS e
      GROUP BY 1, e.privilege_type
    ) AS x
    GROUP BY x.grantee
  ) AS g ON true
  GROUP BY o.kind, o.ident
),
privs AS (
  SELECT json_object_agg(concat_ws(' ', g.kind, g.ident), g.grants) AS j
  FROM acl_grants g WHERE g.kind <> 'default privileges'
),
-- What a NULL ACL means, per kind (acldefault for an owner; columns have none).
acl_defaults AS (
  SELECT json_object_agg(k.kind, (
           SELECT coalesce(json_object_agg(x.grantee, x.privileges), '{}'::json)
           FROM (
             SELECT CASE WHEN e.grantee = 10 THEN '(owner)' ELSE 'PUBLIC' END AS grantee,
                    json_agg(e.privilege_type ORDER BY e.privilege_type COLLATE "C") AS privileges
             FROM aclexplode(acldefault(k.code::"char", 10::oid)) AS e
             GROUP BY 1
           ) AS x)) AS j
  FROM (VALUES ('table', 'r'), ('foreign table', 'r'), ('view', 'r'), ('materialized view', 'r'),
               ('sequence', 's'), ('function', 'f'), ('schema', 'n'), ('database', 'd'), ('type', 'T'))
       AS k(kind, code)
),
-- ALTER DEFAULT PRIVILEGES: per creating role, schema (none: every schema) and kind of object;
-- grantees as for privileges, the creating role (the future objects' owner) being "(owner)".
defacl AS (
  SELECT json_object_agg(
           concat_ws(' ', pg_get_userbyid(d.defaclrole), 'in schema ' || n.nspname, 'on ' || k.objects),
           json_build_object('role', pg_get_userbyid(d.defaclrole), 'schema', n.nspname, 'on', k.objects,
                             'grants', g.grants)) AS j
  FROM pg_default_acl d
  JOIN acl_grants g ON g.kind = 'default privileges' AND g.ident = d.oid::text
  JOIN (VALUES ('r', 'tables'), ('S', 'sequences'), ('f', 'functions'), ('T', 'types'), ('n', 'schemas'))
       AS k(code, objects) ON k.code = d.defaclobjtype
  LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
),
-- Row level security policies, by table and name; roles sorted (0 is PUBLIC), expressions as
-- pg_get_expr prints them.
pols AS (
  SELECT json_object_agg(t.ident || '.' || p.polname, json_build_object(
           'table', t.ident,
           'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                    WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
           'permissive', p.polpermissive,
           'roles', (SELECT json_agg(r.name ORDER BY r.name COLLATE "C")
                     FROM (SELECT CASE WHEN u.oid = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(u.oid)::text END AS name
                           FROM unnest(p.polroles) AS u(oid)) AS r),
           'using', pg_get_expr(p.polqual, p.polrelid),
           'with_check', pg_get_expr(p.polwithcheck, p.polrelid))) AS j
  FROM pg_policy p JOIN tbl t ON t.oid = p.polrelid
)
SELECT json_build_object(
  'server_version', current_setting('server_version'),
  'server_version_num', current_setting('server_version_num')::int,
  -- Which server this is (roles and server settings are its, not the database's): the system
  -- identifier initdb chose, the port and, where the role may read it, the data directory.
  'cluster', json_build_object(
    'system_identifier', CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
                              THEN (SELECT system_identifier::text FROM pg_control_system()) END,
    'port', current_setting('port')::int,
    'data_directory', (SELECT setting FROM pg_settings WHERE name = 'data_directory')),
  'audit_role', audit.j,
  'catalog', json_build_object(
    'schemas', coalesce(schemas.j, '{}'::json),
    'block_size', current_setting('block_size')::int,
    'tables', coalesce(tables.j, '[]'::json),
    'views', coalesce(views.j, '{}'::json),
    'functions', coalesce(funcs.j, '{}'::json),
    'sequences', coalesce(seqs.j, '{}'::json),
    'enums', coalesce(enums.j, '{}'::json),
    'domains', coalesce(domains.j, '{}'::json),
    'extensions', coalesce(exts.j, '{}'::json),
    'settings', coalesce(sets.j, '{}'::json),
    'roles', coalesce(roles.j, '{}'::json),
    -- The sections below are scalar subqueries, not items of FROM: past 12 items of FROM (the
    -- geqo_threshold) the planner would search their join order (measured: planning 2-3x longer).
    'privileges', coalesce((SELECT j FROM privs), '{}'::json),
    'privilege_defaults', coalesce((SELECT j FROM acl_defaults), '{}'::json),
    'default_privileges', coalesce((SELECT j FROM defacl), '{}'::json),
    'policies', coalesce((SELECT j FROM pols), '{}'::json),
    'composites', coalesce((SELECT j FROM composites), '{}'::json),
    'ranges', coalesce((SELECT j FROM ranges), '{}'::json),
    'collations', coalesce((SELECT j FROM colls), '{}'::json),
    'rules', coalesce((SELECT j FROM rules), '{}'::json),
    'event_triggers', coalesce((SELECT j FROM evts), '{}'::json),
    'publications', coalesce((SELECT j FROM pubs), '{}'::json),
    'subscriptions', coalesce((SELECT j FROM subs), '{}'::json),
    'comments', coalesce((SELECT j FROM comments), '{}'::json),
    'large_objects', (SELECT j FROM lobs)))
FROM audit, schemas, tables,
     views, funcs, seqs, enums, domains, exts, sets, roles;
""".replace("__SESSION_SETTINGS__", ", ".join(_literal(name) for name in SESSION_SETTINGS))
    .replace("__WRITE_LIMIT__", str(WRITE_PRIVILEGE_LIMIT))
    .replace("__LO_GROUPS__", str(LARGE_OBJECT_GROUP_LIMIT))
)
