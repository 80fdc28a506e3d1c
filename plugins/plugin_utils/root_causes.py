"""Root causes across areas: the findings a commit the target environment lacks explains, and
the ordered stabilization plan built from them.

The git area places each environment's commit against the baseline's (git_diff.place) and its
facts carry, per recent commit, the names its added lines create or read (module_utils/
git_introduces.py).  A schema finding whose table, column or index a lacking commit's migration
creates is grouped under that commit; a key missing in the target that a lacking commit starts
to read is grouped under that commit.  Nothing links without that evidence: a schema finding no
commit explains is "manual schema drift" (DDL run by hand, or a migration outside the collected
window), and the reason a link could not be looked for is kept.  Findings are referred to by
(area, subject, key, check) and stay in the report as they are.

Pure Python; no Ansible imports.
"""

from shlex import quote

from ansible_collections.envparity.audit.plugins.plugin_utils import markdown_text
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import is_unknown, join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.git_diff import MIGRATION_HINTS, place
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_migrations import UPGRADE

LISTED = 10
# Postgres findings that are about a database's settings, roles, extensions or the audit itself,
# not schema objects a migration creates.
NOT_SCHEMA = ("@", "settings.", "migrations.", "extensions.")
# Which migration files belong to which tool (the tools pg_migrations knows).
TOOL_PATHS = {
    "alembic": ("versions/", "alembic/"),
    "django": ("/migrations/0", "migrations/0"),
    "rails": ("db/migrate/",),
    "schema_migrations": ("db/migrate/", ".up.sql"),
    "golang-migrate": (".up.sql",),
    "flyway": ("/v1", "/v2", "/v3", "/v4", "/v5", "/v6", "/v7", "/v8", "/v9", "flyway"),
    "knex": ("migrations/",),
    "prisma": ("prisma/migrations/",),
    "sequelize": ("migrations/",),
}


def ref(finding):
    """How the root causes and the plan name a finding (it stays in the findings list as it is)."""
    return {name: finding[name] for name in ("area", "subject", "key", "check")}


def _short(commit):
    return "%s %s" % (commit["sha"][:10], commit["subject"])


def _listing(items):
    items = list(items)
    more = len(items) - LISTED
    return ", ".join(items[:LISTED]) + (" and %d more" % more if more > 0 else "")


def is_schema_finding(finding):
    return (
        finding["area"] == "postgres"
        and not finding["subject"].startswith("cluster:")
        and not finding["key"].startswith(NOT_SCHEMA)
        and finding["kind"] in ("missing", "extra", "changed")
    )


def _migration_files(commit):
    return [path for path in commit.get("files") or [] if any(hint in path.lower() for hint in MIGRATION_HINTS)]


def placements(git_cells, baseline, targets):
    """[{repo, target, relation, lacking, only, reason}] per repository and target column whose
    records both read; the reason says why a repository could not be placed."""
    found = []
    names = set()
    for cell in git_cells.values():
        if cell is not None and not is_unknown(cell):
            names.update(cell.get("repos") or {})
    base_cell = git_cells.get(baseline)
    for name in sorted(names):
        for target in targets:
            cell = git_cells.get(target)
            records = [
                (c.get("repos") or {}).get(name) if c is not None and not is_unknown(c) else None
                for c in (base_cell, cell)
            ]
            if any(record is None or record.get("status") != "ok" or not record.get("head") for record in records):
                found.append(
                    {
                        "repo": name,
                        "target": target,
                        "relation": "unknown",
                        "lacking": [],
                        "only": [],
                        "reason": "repository %s could not be read on %s and %s" % (name, baseline, target),
                        "heads": [None, None],
                    }
                )
                continue
            relation, lacking, only = place(records[0], records[1])
            reason = None
            if relation in ("unknown", "unrelated"):
                reason = "the histories of %s on %s and %s share no commit in the collected window%s" % (
                    name,
                    baseline,
                    target,
                    " (shallow clone)" if any(r.get("shallow") for r in records) else "",
                )
            found.append(
                {
                    "repo": name,
                    "target": target,
                    "relation": relation,
                    "lacking": lacking,
                    "only": only,
                    "reason": reason,
                    "heads": [records[0]["head"], records[1]["head"]],
                }
            )
    return found


def _object_names(finding):
    """(table, object) of a schema finding's key: "schema.table" → (table, None),
    "schema.table.name" → (table, name); the schema is left out (migrations rarely name it)."""
    parts = finding["key"].split(".")
    if len(parts) == 2:
        return parts[1].lower(), None
    if len(parts) >= 3:
        return parts[1].lower(), parts[2].lower()
    return None, None


class _Index:
    """The names a list of commits introduces, each pointing at the oldest commit that does: one
    pass over the commits, then a lookup per finding (linear in both)."""

    def __init__(self, commits):
        self.tables, self.indexes, self.columns = {}, {}, {}
        for commit in reversed(commits):  # oldest first: the first to introduce a name keeps it
            introduces = commit.get("introduces")
            if introduces is None:
                continue
            for name in introduces["tables"]:
                self.tables.setdefault(name.lower(), commit)
            for name in introduces["indexes"]:
                self.indexes.setdefault(name.lower(), commit)
            for column in introduces["columns"]:
                owner, _, added = column.lower().rpartition(".")
                self.columns.setdefault(added, []).append((owner, commit))

    def explain(self, finding):
        """(commit, evidence) for a missing/extra schema object, or None."""
        table, name = _object_names(finding)
        if table is None or finding["kind"] == "changed":
            return None
        if table in self.tables:
            evidence = "creates table %s" % table + (" (with %s)" % name if name else "")
            return self.tables[table], evidence
        if name is None:
            return None
        if name in self.indexes:
            return self.indexes[name], "creates index %s" % name
        for owner, commit in self.columns.get(name, ()):
            if owner == table or table.endswith("_" + owner):
                return commit, "adds column %s.%s" % (table, name)
        return None


def _tool_of(finding):
    if finding["area"] == "postgres" and finding["key"].startswith("migrations."):
        return finding["key"].split(".", 1)[1]
    return None


def _touches_tool(commit, tool):
    return any(hint in path.lower() for path in _migration_files(commit) for hint in TOOL_PATHS.get(tool, ()))


def _unread(commits):
    return [commit for commit in commits if commit.get("introduces") is None]


def _cause(kind, placement, commit, text, links):
    return {
        "kind": kind,
        "repo": placement["repo"],
        "target": placement["target"],
        "commit": {"sha": commit["sha"], "subject": commit["subject"]} if commit else None,
        "files": _migration_files(commit) if commit and kind == "pending_migration" else [],
        "text": text,
        "findings": [dict(ref(finding), evidence=evidence) for finding, evidence in links],
    }


def _commit_causes(placement, findings, explained):
    """Causes from the commits the target lacks (pending migrations, keys) and the commits only
    the target has (extra schema objects their migrations created), oldest commit first."""
    target = placement["target"]
    own = [f for f in findings if target in f["environments"] and id(f) not in explained]
    links = {}  # (side, sha) -> [(finding, evidence)]
    keys = {}  # (key) -> [(finding, evidence)] for commit_keys
    for side, commits, kind in (("lacking", placement["lacking"], "missing"), ("only", placement["only"], "extra")):
        index = _Index(commits)
        for finding in own:
            if id(finding) not in explained and is_schema_finding(finding) and finding["kind"] == kind:
                found = index.explain(finding)
                if found:
                    explained.add(id(finding))
                    links.setdefault((side, found[0]["sha"]), []).append((finding, found[1]))
    tools = [(finding, _tool_of(finding)) for finding in own if _tool_of(finding)]
    for commit in placement["lacking"]:
        if commit.get("introduces") is None:  # a shallow boundary lists every file as added
            continue
        for finding, tool in tools:
            if _migration_files(commit) and _touches_tool(commit, tool):
                evidence = "adds %s migration %s" % (tool, _listing(_migration_files(commit)))
                links.setdefault(("lacking", commit["sha"]), []).append((finding, evidence))
                explained.add(id(finding))
    wanted = {}
    for finding in own:
        key = _key_of(finding)
        if key and finding["kind"] == "missing" and id(finding) not in explained:
            wanted.setdefault(key, []).append(finding)
    for commit in reversed(placement["lacking"]):
        for key in (commit.get("introduces") or {}).get("keys") or []:
            for finding in wanted.pop(key, []):
                explained.add(id(finding))
                keys.setdefault(commit["sha"], []).append((finding, "reads %s" % key))
    causes = []
    for side, commits in (("lacking", placement["lacking"]), ("only", placement["only"])):
        for commit in reversed(commits):
            schema = links.get((side, commit["sha"]))
            if schema:
                causes.append(
                    _cause(
                        "pending_migration" if side == "lacking" else "target_only_migration",
                        placement,
                        commit,
                        "commit %s (%s), %s: %s"
                        % (
                            _short(commit),
                            _listing(_migration_files(commit)) or "no migration file",
                            "which %s lacks" % target if side == "lacking" else "only on %s" % target,
                            _listing(sorted({evidence for _, evidence in schema})),
                        ),
                        schema,
                    )
                )
            if side == "lacking" and commit["sha"] in keys:
                found = keys[commit["sha"]]
                causes.append(
                    _cause(
                        "commit_keys",
                        placement,
                        commit,
                        "commit %s starts to use %s, which %s lacks"
                        % (_short(commit), _listing(sorted({_key_of(f) for f, _ in found})), target),
                        found,
                    )
                )
    return causes


def _key_of(finding):
    """The variable name of an env or compose environment finding, else None."""
    if finding["area"] == "env" and not finding["key"].startswith("@"):
        return finding["key"]
    if finding["area"] == "docker" and ".environment." in finding["key"]:
        return finding["key"].rsplit(".", 1)[1]
    return None


def undefined_keys(placement, env_cells):
    """Keys the target's lacking commits start to read that no env file of the target defines
    (the code falls back to its default, or fails, once deployed): {key: commit}."""
    cell = env_cells.get(placement["target"])
    if cell is None or is_unknown(cell):
        return {}
    defined = set()
    for record in (cell.get("files") or {}).values():
        defined.update(record.get("keys") or {})
    found = {}
    for commit in reversed(placement["lacking"]):
        for key in (commit.get("introduces") or {}).get("keys") or []:
            if key not in defined:
                found.setdefault(key, commit)
    return found


def analyse(findings, git_cells, env_cells, baseline, targets):
    """{"placements", "causes", "manual_schema_drift", "unexplained", "undefined_keys"}."""
    found = placements(git_cells, baseline, targets)
    explained = set()
    causes = []
    for placement in found:
        causes += _commit_causes(placement, findings, explained)
    reasons = {}
    for placement in found:
        unread = _unread(placement["lacking"] + placement["only"])
        if placement["reason"]:
            reasons.setdefault(placement["target"], []).append(placement["reason"])
        elif unread:
            reasons.setdefault(placement["target"], []).append(
                "the changes of %d commit(s) of %s were not read (%s): older than the most recent ones, "
                "merges, or a shallow clone's boundary"
                % (len(unread), placement["repo"], _listing(c["sha"][:10] for c in unread))
            )
    manual = []
    unexplained = []
    for finding in findings:
        if id(finding) in explained or finding["expected"]:
            continue
        why = "; ".join(sorted({r for label in finding["environments"] for r in reasons.get(label, [])}))
        if not found:
            why = "no repository is configured to look for a cause"
        if is_schema_finding(finding):
            entry = dict(ref(finding), reason=why or None)
            if found and not why:
                manual.append(entry)
            else:
                unexplained.append(dict(entry, reason=why))
        elif (finding["kind"] == "missing" and _key_of(finding)) or (
            finding["area"] == "postgres" and _tool_of(finding)
        ):
            unexplained.append(dict(ref(finding), reason=why or "no commit the target lacks introduces it"))
    linked = {(c["target"], _key_of(f)) for c in causes if c["kind"] == "commit_keys" for f in c["findings"]}
    undefined = []
    for placement in found:
        for key, commit in sorted(undefined_keys(placement, env_cells).items()):
            if (placement["target"], key) in linked:
                continue
            undefined.append(
                {"key": key, "target": placement["target"], "repo": placement["repo"], "commit": commit["sha"]}
            )
    return {
        "placements": [
            {
                "repo": p["repo"],
                "target": p["target"],
                "relation": p["relation"],
                "lacking": [c["sha"] for c in p["lacking"]],
                "only": [c["sha"] for c in p["only"]],
                "reason": p["reason"],
                "heads": p["heads"],
            }
            for p in found
        ],
        "causes": causes,
        "manual_schema_drift": manual,
        "unexplained": unexplained,
        "undefined_keys": undefined,
    }


# ---------------------------------------------------------------- the stabilization plan

MERGE_BACK_CHECKS = (
    "git.diverged",
    "git.ahead",
    "git.uncommitted_production",
    "git.untracked_production",
    "git.file_changed",
)
DEPLOY_CHECKS = ("git.behind", "git.diverged", "git.cherry_picked", "git.ahead")
RESTART_CHECKS = ("docker.image_mismatch", "docker.declared_changed", "docker.env_changed", "docker.not_running")
HEALTH_CHECKS = ("docker.unhealthy", "docker.not_running")


def _refs(findings):
    return [ref(finding) for finding in findings]


def _step(action, text, commands, rollback, findings):
    return {"action": action, "text": text, "commands": commands, "rollback": rollback, "findings": findings}


def backup_command(database):
    """The dump command for a configured database (drift_postgres item), each inventory value
    shell-quoted: run where the audit reads it, inside its container when it has one."""
    dump = quote("%s-before-deploy.dump" % database["dbname"])
    options = "--format=custom --dbname=%s --username=%s" % (quote(database["dbname"]), quote(database["user"]))
    if database.get("host"):
        options += " --host=%s" % quote(database["host"])
    if database.get("port"):
        options += " --port=%d" % database["port"]
    if database.get("container"):
        return "docker exec %s pg_dump %s > %s" % (quote(database["container"]), options, dump)
    return "pg_dump %s --file=%s" % (options, dump)


def _merge_back_step(analysis, findings):
    own = [f for f in findings if f["check"] in MERGE_BACK_CHECKS and not f["expected"]]
    only = [p for p in analysis["placements"] if p["only"]]
    if not own and not only:
        return None
    parts = ["%d commit(s) only on %s in %s" % (len(p["only"]), p["target"], p["repo"]) for p in only]
    parts += sorted({"%s (%s)" % (f["check"].split(".", 1)[1].replace("_", " "), f["subject"]) for f in own})
    return _step(
        "merge_back",
        "Commit to the repository what exists only on the target, before the deploy overwrites it: %s."
        % "; ".join(parts),
        [],
        "Nothing changes on the target in this step; revert the merge commit in the repository to undo it.",
        _refs(own),
    )


def _backup_step(migrations, databases):
    if not migrations or not databases:
        return None
    return _step(
        "backup",
        "Back up %s before the migrations change the schema." % join_names(sorted(databases)),
        [backup_command(databases[name]) for name in sorted(databases)],
        "Restore a dump with pg_restore --clean --if-exists --dbname=<database> <file>.",
        [],
    )


def _migrate_step(migrations, number):
    if not migrations:
        return None
    tools = sorted(
        {f["key"].split(".", 1)[1] for c in migrations for f in c["findings"] if f["key"].startswith("migrations.")}
    )
    links = [{k: f[k] for k in ("area", "subject", "key", "check")} for c in migrations for f in c["findings"]]
    return _step(
        "apply_migrations",
        "Apply the pending migrations in order: %s." % "; ".join(c["text"] for c in migrations),
        [UPGRADE.get(tool, "the migration tool's upgrade") for tool in tools] or ["the migration tool's upgrade"],
        "Downgrade to the target's previous revision with the migration tool, or restore the backup%s."
        % (" of step %d" % number if number else ""),
        links,
    )


def _config_step(analysis, findings):
    keys = [f for f in findings if f["kind"] == "missing" and _key_of(f) and not f["expected"]]
    undefined = analysis["undefined_keys"]
    if not keys and not undefined:
        return None
    names = sorted({_key_of(f) for f in keys})
    text = "Add the missing keys (names only; values from the secret store): %s." % _listing(names) if names else ""
    if undefined:
        names = sorted({u["key"] for u in undefined})
        text += "%sDefine %s on %s: the code of the commits to deploy reads %s and no env file there defines %s." % (
            " " if text else "",
            _listing(names),
            join_names(sorted({u["target"] for u in undefined})),
            "them" if len(names) > 1 else "it",
            "them" if len(names) > 1 else "it",
        )
    return _step("config", text, [], "Remove the added keys: the running code does not read them.", _refs(keys))


def _deploy_step(analysis, findings):
    moving = [p for p in analysis["placements"] if p["relation"] in ("behind", "diverged", "ahead") and p["lacking"]]
    if not moving:
        return None
    own = [f for f in findings if f["check"] in DEPLOY_CHECKS and not f["expected"]]
    return _step(
        "deploy",
        "Deploy %s." % "; ".join("%s commit %s to %s" % (p["repo"], p["heads"][0][:10], p["target"]) for p in moving),
        [],
        "Redeploy the previous commit (%s); restore the backup if the migrations do not run backwards."
        % "; ".join("%s %s on %s" % (p["repo"], p["heads"][1][:10], p["target"]) for p in moving),
        _refs(own),
    )


def _restart_step(findings):
    own = [f for f in findings if f["area"] == "docker" and f["check"] in RESTART_CHECKS and not f["expected"]]
    if not own:
        return None
    services = sorted({f["key"].split(".")[1] for f in own if f["key"].startswith("services.")})
    return _step(
        "restart",
        "Restart the services whose image or configuration changed: %s." % _listing(services),
        ["docker compose up -d %s" % " ".join(services)],
        "Bring the previous commit's compose file back and run docker compose up -d again.",
        _refs(own),
    )


def _verify_step(steps, findings):
    resolved = list({tuple(f.values()): f for step in steps for f in step["findings"]}.values())
    unexpected = [f for f in findings if not f["expected"]]
    health = sorted(
        {"%s %s" % (f["subject"], f["key"]) for f in unexpected if f["check"] in HEALTH_CHECKS}
        | {"endpoint %s" % f["subject"] for f in unexpected if f["area"] == "endpoints"}
    )
    if not resolved and not health:
        return None
    return _step(
        "verify",
        "Run the audit again: the %d finding(s) the steps above resolve should be gone%s."
        % (
            len(resolved),
            "; watch the health checks: %s" % _listing(health) if health else "",
        ),
        ["ansible-playbook compare.yml"],
        "If a check fails, roll back the steps above in reverse order.",
        resolved,
    )


def stabilization_plan(analysis, findings, databases):
    """The numbered steps, in the order they must run; a step with nothing to do is left out.
    databases: {name: drift_postgres item} of the target whose migrations are pending."""
    migrations = [c for c in analysis["causes"] if c["kind"] == "pending_migration"]
    migrated = {f["subject"] for c in migrations for f in c["findings"] if f["area"] == "postgres"}
    steps = []
    merge_back = _merge_back_step(analysis, findings)
    if merge_back:
        steps.append(merge_back)
    backup = _backup_step(migrations, {name: item for name, item in databases.items() if name in migrated})
    if backup:
        steps.append(backup)
    for step in (
        _migrate_step(migrations, len(steps) if backup else None),
        _config_step(analysis, findings),
        _deploy_step(analysis, findings),
        _restart_step(findings),
    ):
        if step:
            steps.append(step)
    verify = _verify_step(steps, findings)
    if verify:
        steps.append(verify)
    return [dict(step, number=index + 1) for index, step in enumerate(steps)]


def build(findings, columns, production, cells_of, requests):
    """The audit's root causes and plan: targets are the production columns (every column but the
    baseline when none is production); cells_of(area) gives an area's cells per column."""
    labels = [column["label"] for column in columns]
    targets = [label for label in labels[1:] if label in production] or labels[1:]
    analysis = analyse(findings, cells_of("git"), cells_of("env"), labels[0], targets)
    host_of = {column["label"]: column["host"] for column in columns}
    databases = {}
    for label in targets:
        request = (requests.get(host_of[label]) or {}).get("postgres") or {}
        for database in request.get("databases") or []:
            databases.setdefault(database["name"], database)
    return analysis, stabilization_plan(analysis, findings, databases)


# ---------------------------------------------------------------- the Markdown view


def _ref_text(item):
    return "%s · %s · %s" % (
        markdown_text.text(item["area"]),
        markdown_text.text(item["subject"]),
        markdown_text.code(item["key"], table=False),
    )


def view(document):
    """What the template prints for the plan and the causes, every text escaped; empty lists when
    the document has none (an audit without the git area)."""
    analysis = document.get("root_causes") or {"causes": [], "manual_schema_drift": [], "unexplained": []}
    return {
        "steps": [
            {
                "number": step["number"],
                "text": markdown_text.text(step["text"]),
                "commands": [markdown_text.code(command, table=False) for command in step["commands"]],
                "rollback": markdown_text.text(step["rollback"]),
                "findings": len(step["findings"]),
            }
            for step in document.get("stabilization_plan") or []
        ],
        "causes": [
            {
                "text": markdown_text.text(cause["text"]),
                "target": markdown_text.text(cause["target"]),
                "findings": [
                    "%s: %s" % (_ref_text(item), markdown_text.text(item["evidence"])) for item in cause["findings"]
                ],
            }
            for cause in analysis["causes"]
        ],
        "manual": [_ref_text(item) for item in analysis["manual_schema_drift"]],
        "unexplained": [
            "%s: %s" % (_ref_text(item), markdown_text.text(item["reason"] or "no cause found"))
            for item in analysis["unexplained"]
        ],
    }
