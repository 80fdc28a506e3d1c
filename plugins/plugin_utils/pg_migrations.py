"""Migration state of one database compared across environments: which migrations each
environment applied, by tool (docs/postgres-facts.md names the tools and their tables).

Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.compare import always_same, compare_key
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import by_value, join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_objects import plural

LISTED_IDS = 10
# The command that applies pending migrations, per tool (docs/postgres-facts.md names the tools).
UPGRADE = {
    "alembic": "alembic upgrade head",
    "django": "python manage.py migrate",
    "rails": "bin/rails db:migrate",
    "golang-migrate": "migrate up",
    "schema_migrations": "bin/rails db:migrate (or migrate up)",
    "flyway": "flyway migrate",
    "knex": "knex migrate:latest",
    "prisma": "prisma migrate deploy",
    "sequelize": "sequelize db:migrate",
}


def _ids(ids):
    ids = list(ids)
    shown = ", ".join(str(item) for item in ids[:LISTED_IDS])
    more = len(ids) - LISTED_IDS
    return shown + (" and %d more" % more if more > 0 else "")


def _migration_text(tool, record):
    if record is None:
        return None
    heads = ", ".join(record.get("heads") or []) or "none"
    if tool == "alembic":
        return "head %s" % heads
    count = record.get("count")
    if count is None:
        count = len(record.get("applied") or [])
    return "%d applied, head %s%s" % (count, heads, ", dirty" if record.get("dirty") else "")


def migration_findings(db):
    ok = db.ok
    migrations = {label: db.records[label].get("migrations") or {} for label in ok}
    tools = set()
    for label in ok:
        tools.update(migrations[label])
    findings = []
    for tool in sorted(tools):
        records = {label: migrations[label].get(tool) for label in ok}
        findings += _dirty_findings(db, tool, records, ok)
        if len(ok) < 2:
            continue
        findings += _tool_findings(db, tool, records, ok)
    return findings


def _dirty_findings(db, tool, records, ok):
    dirty = [label for label in ok if records[label] and records[label].get("dirty")]
    if not dirty:
        return []
    values = {label: _migration_text(tool, records[label]) for label in ok}
    return [
        db.finding(
            "migrations.%s" % tool,
            "policy",
            "postgres.migrations_dirty",
            "high",
            values,
            dirty,
            "The %s migration table is marked dirty on %s: a migration failed halfway." % (tool, join_names(dirty)),
            "Inspect the schema on %s, repair what the failed migration left, then force the version and run "
            "the upgrade again before deploying." % join_names(dirty),
        )
    ]


def _tool_findings(db, tool, records, ok):
    baseline = ok[0]
    values = {label: _migration_text(tool, records[label]) for label in ok}
    key = "migrations.%s" % tool
    upgrade = UPGRADE.get(tool, "the migration tool's upgrade")
    base = records[baseline]
    outcome = compare_key(records, ok, same=always_same)
    if outcome and outcome[0] == "extra":
        present = outcome[1]
        return [
            db.finding(
                key,
                "extra",
                "postgres.migrations_missing",
                "medium",
                values,
                present,
                "%s has a %s migration table (%s) but the baseline %s has none."
                % (join_names(present), tool, records[present[0]].get("table"), baseline),
                "Check that %s runs the same migrations as %s (a leftover table from another tool, or a database "
                "migrated from another branch)." % (baseline, join_names(present)),
            )
        ]
    findings = []
    if outcome:  # the baseline has it: missing where it is absent
        absent = outcome[1]
        findings.append(
            db.finding(
                key,
                "missing",
                "postgres.migrations_missing",
                "high",
                values,
                absent,
                "%s has no %s migration table (%s exists on %s)."
                % (join_names(absent), tool, base.get("table"), baseline),
                "Run %s on %s (it creates the table and applies every migration), or check that drift_postgres "
                "points at the right database." % (upgrade, join_names(absent)),
            )
        )
    if tool == "alembic":
        findings += _head_findings(db, tool, records, ok, values, upgrade)
        return findings
    base_ids = list(base.get("applied") or [])
    base_set = set(base_ids)
    relations = {"behind": [], "ahead": [], "diverged": []}
    phrases = {"behind": [], "ahead": [], "diverged": []}
    for label in ok[1:]:
        record = records[label]
        if record is None:
            continue
        ids = list(record.get("applied") or [])
        other_set = set(ids)
        lacking = [item for item in base_ids if item not in other_set]
        only = [item for item in ids if item not in base_set]
        if not lacking and not only:
            continue
        if lacking and not only:
            relation = "behind"
            phrase = "%s is %s behind %s: %s" % (label, plural(len(lacking), "migration"), baseline, _ids(lacking))
        elif only and not lacking:
            relation = "ahead"
            phrase = "%s has %s that %s lacks: %s" % (label, plural(len(only), "migration"), baseline, _ids(only))
        else:
            relation = "diverged"
            phrase = "%s lacks %s of %s (%s) and has %s that %s lacks (%s)" % (
                label,
                plural(len(lacking), "migration"),
                baseline,
                _ids(lacking),
                plural(len(only), "other migration"),
                baseline,
                _ids(only),
            )
        relations[relation].append(label)
        phrases[relation].append(phrase)
    advice = {
        "behind": (
            "high",
            "Run %s on %%s before deploying the code that needs them." % upgrade,
        ),
        "ahead": (
            "medium",
            "Apply the same migrations on %s (%s), or check that %%s was not migrated from an unreleased branch."
            % (baseline, upgrade),
        ),
        "diverged": (
            "high",
            "Reconcile the migration history: %%s has migrations %s does not know; merge them into the "
            "code base (or roll them back) before the next deploy runs %s." % (baseline, upgrade),
        ),
    }
    for relation in ("behind", "ahead", "diverged"):
        labels = relations[relation]
        if not labels:
            continue
        severity, recommendation = advice[relation]
        findings.append(
            db.finding(
                key,
                "changed",
                "postgres.migrations_%s" % relation,
                severity,
                values,
                labels,
                "%s (%s)." % ("; ".join(phrases[relation]), tool),
                recommendation % join_names(labels),
            )
        )
    return findings


def _head_findings(db, tool, records, ok, values, upgrade):
    """Alembic keeps only its current heads: different heads say "differs", not how far."""
    baseline = ok[0]
    base = set(records[baseline].get("heads") or records[baseline].get("applied") or [])
    differing = [
        label
        for label in ok[1:]
        if records[label] is not None
        and set(records[label].get("heads") or records[label].get("applied") or []) != base
    ]
    if not differing:
        return []
    return [
        db.finding(
            "migrations.%s" % tool,
            "changed",
            "postgres.migrations_heads",
            "high",
            values,
            differing,
            "The %s head differs: %s." % (tool, by_value((label, values[label]) for label in ok if values[label])),
            "Run %s on %s before deploying the code that needs it (alembic history shows whether %s is behind "
            "%s or on another branch)." % (upgrade, join_names(differing), join_names(differing), baseline),
        )
    ]
