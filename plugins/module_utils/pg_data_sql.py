"""The SQL of data parity (opt-in per database): what pg_collect runs after the catalog, in the
same READ ONLY transaction, when a database's entry says data_parity.

Standard library only (nothing but text here): this module travels to the audited host.

1. ``STATS_QUERY``: one statement, no table read: each table's planner estimate (reltuples),
   live-row count and whether it was ever analyzed or vacuumed (pg_stat_user_tables), and the
   invalid indexes (indisvalid = false: a failed CREATE INDEX CONCURRENTLY).
2. ``GENERATOR``: one SELECT whose rows psql's ``\\gexec`` runs, each read in a savepoint with its
   own statement timeout, so that a slow or failing table is skipped (psql goes on:
   ON_ERROR_STOP is off for this part only) instead of failing the audit:
   - ``count(*)`` of the tables whose size (relpages) is at most the exact-count limit;
   - each sequence that feeds a column (OWNED BY, identity): its last value and max() of the
     column, for a column that leads a btree index or a table under the exact-count limit;
   - reference tables (the configured ones, and small tables with a primary key that a foreign
     key references): their rows keyed by primary key, each column a salted sha256 (the salt is
     derived from the run's key: equal values hash alike on every host of a run, and nothing
     lets a reader of the facts test a guess); date and time columns are left out (they record
     when a row was written, not what it says).  At most row_cap + 1 rows are read.
   Each read is announced first (a "planned" line), so that one that printed nothing is known
   to have timed out or failed.  Every read checks a deadline (the total time budget of the
   database, from the start of this part) and returns NULL past it: nothing is read then, and
   the collector lists it as skipped.
Tables the audit role may not read are listed as skipped, not read.
"""

# tables of the database's own schemas, not an extension's
_OWN = """n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')"""

STATS_QUERY = r"""
SELECT json_build_object(
  'kind', 'stats',
  'tables', (SELECT json_object_agg(n.nspname || '.' || c.relname, json_build_array(
                      c.reltuples::bigint, s.n_live_tup,
                      s.last_analyze IS NULL AND s.last_autoanalyze IS NULL,
                      s.last_vacuum IS NULL AND s.last_autovacuum IS NULL))
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE c.relkind = 'r' AND __OWN__),
  'invalid_indexes', (SELECT json_agg(n.nspname || '.' || c.relname || '.' || ic.relname
                                      ORDER BY n.nspname || '.' || c.relname || '.' || ic.relname COLLATE "C")
                      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                      JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE NOT i.indisvalid AND __OWN__));
""".replace("__OWN__", _OWN).strip()

# psql variables the script sets before GENERATOR: envparity_data_salt, envparity_data_max_bytes,
# envparity_data_row_cap, envparity_data_timeout_ms, envparity_data_budget_ms,
# envparity_data_references (a JSON array of "schema.table").
GENERATOR = (
    r"""
WITH
own AS (
  SELECT c.oid, c.relkind, c.relpages, c.reltuples, n.nspname, c.relname, n.nspname || '.' || c.relname AS ident,
         has_table_privilege(c.oid, 'SELECT') AS readable
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND __OWN__
),
limits AS (
  SELECT clock_timestamp() + make_interval(secs => :envparity_data_budget_ms / 1000.0) AS deadline,
         :envparity_data_max_bytes::bigint AS max_bytes, current_setting('block_size')::bigint AS block,
         :envparity_data_row_cap AS cap,
         ARRAY(SELECT json_array_elements_text(:'envparity_data_references'::json)) AS configured
),
pkey AS (
  SELECT o.oid, co.conkey FROM own o JOIN pg_constraint co ON co.conrelid = o.oid AND co.contype = 'p'
),
refs AS (
  SELECT o.*, p.conkey, o.ident = ANY (l.configured) AS configured
  FROM own o JOIN pkey p ON p.oid = o.oid, limits l
  WHERE o.ident = ANY (l.configured)
     OR (EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = o.oid AND f.conrelid <> o.oid)
         AND (o.relpages <= 16 OR o.reltuples BETWEEN 0 AND 1000))
),
reads AS (
  SELECT 'count' AS grp, o.ident AS ord,
         CASE WHEN NOT o.readable
           THEN format('SELECT json_build_object(''kind'', ''count'', ''table'', %L, ''skipped'', '
                       '''no_select_privilege'')', o.ident)
           ELSE format('SELECT json_build_object(''kind'', ''count'', ''table'', %L, ''rows'', '
                       'CASE WHEN clock_timestamp() < %L::timestamptz THEN (SELECT count(*) FROM %I.%I) END)',
                       o.ident, l.deadline, o.nspname, o.relname)
         END AS cmd
  FROM own o, limits l
  WHERE o.relpages::bigint * l.block <= l.max_bytes
  UNION ALL
  SELECT 'sequence', sn.nspname || '.' || sc.relname,
         CASE WHEN NOT o.readable
           THEN format('SELECT json_build_object(''kind'', ''sequence'', ''sequence'', %L, ''skipped'', '
                       '''no_select_privilege'')', sn.nspname || '.' || sc.relname)
           ELSE format('SELECT json_build_object(''kind'', ''sequence'', ''sequence'', %L, ''column'', %L, '
                       '''increment'', s.increment_by, ''last_value'', s.last_value::text, '
                       '''start'', s.start_value::text, ''readable'', has_sequence_privilege('
                       'quote_ident(s.schemaname) || ''.'' || quote_ident(s.sequencename), ''SELECT, USAGE''), '
                       '''max'', '
                       'CASE WHEN clock_timestamp() < %L::timestamptz THEN (SELECT max(%I)::text FROM %I.%I) END) '
                       'FROM pg_sequences s WHERE s.schemaname = %L AND s.sequencename = %L',
                       sn.nspname || '.' || sc.relname, o.ident || '.' || a.attname, l.deadline, a.attname,
                       o.nspname, o.relname, sn.nspname, sc.relname)
         END
  FROM pg_depend d
  JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = sc.relnamespace
  JOIN own o ON o.oid = d.refobjid
  JOIN pg_attribute a ON a.attrelid = o.oid AND a.attnum = d.refobjsubid
  CROSS JOIN limits l
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
    AND (o.relpages::bigint * l.block <= l.max_bytes
         OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                    JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
                    WHERE i.indrelid = o.oid AND i.indkey[0] = a.attnum AND i.indisvalid AND i.indpred IS NULL))
  UNION ALL
  SELECT 'reference', r.ident,
         CASE WHEN NOT r.readable
           THEN format('SELECT json_build_object(''kind'', ''reference'', ''table'', %L, ''skipped'', '
                       '''no_select_privilege'')', r.ident)
           ELSE format('SELECT json_build_object(''kind'', ''reference'', ''table'', %L, '
                       '''configured'', %L::boolean, ''key'', %L::json, ''columns'', %L::json, ''rows'', '
                       'CASE WHEN clock_timestamp() < %L::timestamptz '
                       'THEN (SELECT coalesce(json_agg(json_build_array(x.k, x.h)), ''[]''::json) FROM '
                       '(SELECT concat_ws('', '', %s) AS k, json_build_array(%s) AS h FROM %I.%I '
                       'ORDER BY %s LIMIT %s) AS x) END)',
                       r.ident, r.configured, k.names, v.names, l.deadline, k.texts, coalesce(v.hashes, ''),
                       r.nspname, r.relname, k.idents, l.cap + 1)
         END
  FROM refs r
  CROSS JOIN limits l
  CROSS JOIN LATERAL (
    SELECT json_agg(a.attname ORDER BY u.n)::text AS names,
           string_agg(format('%I::text', a.attname), ', ' ORDER BY u.n) AS texts,
           string_agg(format('%I', a.attname), ', ' ORDER BY u.n) AS idents
    FROM unnest(r.conkey) WITH ORDINALITY AS u(attnum, n)
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = u.attnum
  ) AS k
  CROSS JOIN LATERAL (
    SELECT coalesce(json_agg(a.attname ORDER BY a.attnum), '[]'::json)::text AS names,
           string_agg(format('CASE WHEN %1$I IS NULL THEN NULL ELSE left(encode(sha256(convert_to(%2$L || %1$I::text, '
                             '''UTF8'')), ''hex''), 16) END', a.attname, :'envparity_data_salt'), ', '
                      ORDER BY a.attnum) AS hashes
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnum <> ALL (r.conkey)
      AND t.typcategory <> 'D'
  ) AS v
)
SELECT format('SELECT json_build_object(''kind'', ''planned'', ''read'', %L, ''what'', %L)', r.grp, r.ord),
       'SAVEPOINT envparity_data',
       format('SET LOCAL statement_timeout = %s', :envparity_data_timeout_ms),
       r.cmd,
       'ROLLBACK TO SAVEPOINT envparity_data'
FROM reads r
ORDER BY r.grp COLLATE "C", r.ord COLLATE "C"
""".replace("__OWN__", _OWN).strip()
    + " \\gexec"
)
