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

import posixpath
from shlex import quote

from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import PROJECT_MARKER
from ansible_collections.envparity.audit.plugins.module_utils.git_collect import relative_inside
from ansible_collections.envparity.audit.plugins.plugin_utils import markdown_text
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import is_unknown, join_names
from ansible_collections.envparity.audit.plugins.plugin_utils.git_diff import MIGRATION_HINTS, place
from ansible_collections.envparity.audit.plugins.plugin_utils.pg_migrations import UPGRADE

LISTED = 10
# Postgres findings that are about a database's settings, roles, extensions, data or the audit
# itself, not schema objects a migration creates.
NOT_SCHEMA = ("@", "settings.", "migrations.", "extensions.", "data.")
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
    """How the root causes and the plan name a finding (it stays in the findings list as it is):
    its id, and what the id is made of, for the reader."""
    return {name: finding[name] for name in ("id", "area", "subject", "key", "check")}


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


# What a commit must do to an object to explain a finding, by the side the commit is on (the
# target lacks it, or only the target has it) and the finding's kind: a pending migration that
# creates what the target lacks, drops what only the target has, changes what differs; a commit
# only the target has, the other way round.
EFFECTS = {
    ("lacking", "missing"): "created",
    ("lacking", "extra"): "dropped",
    ("lacking", "changed"): "altered",
    ("only", "extra"): "created",
    ("only", "missing"): "dropped",
    ("only", "changed"): "altered",
}
# The introduced names (module_utils/git_introduces.py) of each effect, by sort of object.
EFFECT_SORTS = {
    "created": {"tables": "tables", "indexes": "indexes", "columns": "columns"},
    "dropped": {"tables": "dropped_tables", "indexes": "dropped_indexes", "columns": "dropped_columns"},
    "altered": {"columns": "altered_columns"},
}
VERBS = {
    ("created", "tables"): "creates table",
    ("created", "indexes"): "creates index",
    ("created", "columns"): "adds column",
    ("dropped", "tables"): "drops table",
    ("dropped", "indexes"): "drops index",
    ("dropped", "columns"): "drops column",
    ("altered", "columns"): "changes column",
    ("altered", "indexes"): "recreates index",
}


class _Index:
    """The names a list of commits introduces, each pointing at the oldest commit that does: one
    pass over the commits, then a lookup per finding (linear in both)."""

    def __init__(self, commits):
        self.names = {(effect, sort): {} for effect, sorts in EFFECT_SORTS.items() for sort in sorts}
        self.names[("altered", "indexes")] = {}
        for commit in reversed(commits):  # oldest first: the first to introduce a name keeps it
            introduces = commit.get("introduces")
            if introduces is None:
                continue
            for effect, sorts in EFFECT_SORTS.items():
                for sort, introduced in sorts.items():
                    names = self.names[(effect, sort)]
                    for name in introduces.get(introduced) or []:
                        if sort == "columns":
                            owner, _, column = name.lower().rpartition(".")
                            names.setdefault(column, []).append((owner, commit))
                        else:
                            names.setdefault(name.lower(), commit)
            # An index dropped and created again by one commit: its definition changes.
            for name in set(introduces.get("indexes") or []) & set(introduces.get("dropped_indexes") or []):
                self.names[("altered", "indexes")].setdefault(name.lower(), commit)

    def explain(self, finding, effect):
        """(commit, evidence) for a schema finding whose object the commits create, drop or change
        (effect), or None."""
        table, name = _object_names(finding)
        if table is None:
            return None
        tables = self.names.get((effect, "tables"), {})
        if table in tables:
            return tables[table], "%s %s" % (VERBS[(effect, "tables")], table) + (" (with %s)" % name if name else "")
        if name is None:
            return None
        indexes = self.names[(effect, "indexes")]
        if name in indexes:
            return indexes[name], "%s %s" % (VERBS[(effect, "indexes")], name)
        for owner, commit in self.names.get((effect, "columns"), {}).get(name, ()):
            if owner == table or table.endswith("_" + owner):
                return commit, "%s %s.%s" % (VERBS[(effect, "columns")], table, name)
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
    for side in ("lacking", "only"):
        index = _Index(placement[side])
        for finding in own:
            if id(finding) not in explained and is_schema_finding(finding):
                found = index.explain(finding, EFFECTS[(side, finding["kind"])])
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
    # A direct read of the environment first; then a Django setting of the key's very name (weaker:
    # the settings module may not read it from the environment), only for a key still missing.
    for sort, evidence in (("keys", "reads %s"), ("settings", "reads settings.%s (a Django setting of that name)")):
        for commit in reversed(placement["lacking"]):
            for key in (commit.get("introduces") or {}).get(sort) or []:
                for finding in wanted.pop(key, []):
                    explained.add(id(finding))
                    keys.setdefault(commit["sha"], []).append((finding, evidence % key))
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


# ---------------------------------------------------------------- compose files and deployed files

# Findings that compare a stack's declared state across environments (not per-environment policies).
DECLARED_KINDS = ("missing", "extra", "changed")


def _listed_paths(repo, state):
    return {item["path"] for item in (repo.get(state) or {}).get("files") or []}


def _repo_path_of(path, repos):
    """(repository name, path relative to it) for an absolute path on a host, else (None, None)."""
    for name, repo in sorted(repos.items()):
        if repo and repo.get("status") == "ok" and repo.get("path") and path:
            inside = relative_inside(path, repo["path"])
            if inside:
                return name, inside
    return None, None


def _dockerfile(service, repos, project_repos):
    """The service's Dockerfile as (repository, relative path), from its build context: inside
    the project ("<project>/…", the repository configured at the project directory) or absolute."""
    build = (service or {}).get("build") or {}
    context, dockerfile = build.get("context"), build.get("dockerfile")
    if not context or not dockerfile or posixpath.isabs(dockerfile):
        return None, None
    if context == PROJECT_MARKER or context.startswith(PROJECT_MARKER + "/"):
        if not project_repos:
            return None, None
        inside = posixpath.normpath(posixpath.join(context[len(PROJECT_MARKER) + 1 :] or ".", dockerfile))
        return (project_repos[0], inside) if not inside.startswith("../") else (None, None)
    return _repo_path_of(posixpath.join(context, dockerfile), repos)


def stack_sources(stack, service, repos, project_repos):
    """[(repository, relative path)] of the files a stack's declared state comes from on one host
    (its compose files, its env file, the service's Dockerfile), and the paths in no repository."""
    paths = [record.get("path") for record in stack.get("files") or []]
    paths.append((stack.get("env_file") or {}).get("path"))
    sources, outside = [], []
    for path in filter(None, paths):
        found = _repo_path_of(path, repos)
        (sources.append(found) if found[0] else outside.append(path))
    found = _dockerfile((stack.get("services") or {}).get(service), repos, project_repos)
    if found[0]:
        sources.append(found)
    return sources, outside


def _stack_of(finding):
    """(stack, service) of a docker finding about a declared service, else (None, None)."""
    parts = finding["key"].split(".")
    if finding["area"] != "docker" or len(parts) < 2 or parts[0] != "services":
        return None, None
    return finding["subject"], parts[1]


def _compose_causes(findings, cells, placements_of, project_repos, explained):
    """Declared-state differences of a stack on a target, linked to the lacking commit that changes
    a file the target's stack reads (compose_commit), else to those files being uncommitted or
    untracked there (uncommitted_config); what neither explains gets its reason."""
    causes, reasons = {}, {}
    for finding in findings:
        stack_name, service = _stack_of(finding)
        if stack_name is None or finding["kind"] not in DECLARED_KINDS or finding["expected"]:
            continue
        for target in finding["environments"]:
            docker, git = cells["docker"].get(target), cells["git"].get(target)
            if id(finding) in explained or not docker or is_unknown(docker) or not git or is_unknown(git):
                continue
            stack = (docker.get("stacks") or {}).get(stack_name) or {}
            repos = git.get("repos") or {}
            sources, outside = stack_sources(stack, service, repos, project_repos.get(target) or [])
            link = _commit_link(sources, placements_of(target))
            if link is None:
                dirty = sorted(
                    {(name, path) for name, path in sources if path in _listed_paths(repos[name], "untracked")}
                    | {(name, path) for name, path in sources if path in _listed_paths(repos[name], "modified")}
                )
                link = ("uncommitted", dirty[0][0], None, [path for _, path in dirty]) if dirty else None
            if link is None:
                where = _listing(outside) if outside else _listing(path for _, path in sources)
                reasons[id(finding)] = (
                    "the files %s's stack %s reads are in no repository: %s" % (target, stack_name, where)
                    if outside and not sources
                    else "no commit %s lacks changes the files its stack %s reads (%s)" % (target, stack_name, where)
                )
                continue
            kind, repo, commit, paths = link
            explained.add(id(finding))
            reasons.pop(id(finding), None)
            group = causes.setdefault(
                (kind, repo, target, stack_name, commit["sha"] if commit else ""),
                {"commit": commit, "files": set(), "links": []},
            )
            group["files"].update(paths)
            evidence = "changes %s" % _listing(paths) if commit else "declared in files in no commit on %s" % target
            group["links"].append((finding, evidence))
    return [_compose_cause(key, group) for key, group in sorted(causes.items())], reasons


def _commit_link(sources, placements):
    """The newest lacking commit that changes one of the sources: (kind, repo, commit, paths)."""
    for placement in placements:
        paths = {path for name, path in sources if name == placement["repo"]}
        for commit in placement["lacking"]:  # newest first
            touched = sorted(paths & set(commit.get("files") or []))
            if touched:
                return "commit", placement["repo"], commit, touched
    return None


def _compose_cause(key, group):
    kind, repo, target, stack, _ = key
    files = sorted(group["files"])
    if kind == "commit":
        text = "commit %s, which %s lacks, changes %s, which its stack %s reads" % (
            _short(group["commit"]),
            target,
            _listing(files),
            stack,
        )
    else:
        text = "%s's stack %s reads %s, untracked or edited in the repository %s there: in no commit" % (
            target,
            stack,
            _listing(files),
            repo,
        )
    placement = {"repo": repo, "target": target}
    cause = _cause(
        "compose_commit" if kind == "commit" else "uncommitted_config", placement, group["commit"], text, group["links"]
    )
    return dict(cause, files=files)


def _deploy_dir(cell, name):
    if cell is None or is_unknown(cell):
        return {}
    return (cell.get("deploy_dirs") or {}).get(name) or {}


def _commit_named(history, sha):
    return history.get(sha) or {"sha": sha, "subject": "(older than the collected history)"}


def _deploy_file_cause(finding, target, versions, history, baseline):
    """(kind, commit, text, evidence) for one deployed file on a target, or None."""
    shown = "%s/%s" % (finding["subject"], finding["key"])
    known = versions["files"].get(finding["key"]) or []
    deployed = (finding["_deployed"].get(target) or {}).get("fp")
    matched = [index for index, version in enumerate(known) if deployed and version["fp"] == deployed]
    if matched:
        commit = _commit_named(history, known[matched[0]]["commit"])
        since = [_commit_named(history, version["commit"]) for version in known[: matched[0]]]
        text = "%s on %s is the version of commit %s; %s changed it since: deploy" % (
            shown,
            target,
            _short(commit),
            _listing(_short(c) for c in since) or "no commit",
        )
        return "deploy_behind", since[0] if since else commit, text, "the version of commit %s" % commit["sha"][:10]
    if versions["complete"] and known and deployed:
        text = "%s on %s matches none of its %d committed versions in %s on %s: edited by hand on %s" % (
            shown,
            target,
            len(known),
            versions["repo"],
            baseline,
            target,
        )
        return "hand_edit", None, text, "in no commit"
    return None


def _deploy_file_reason(finding, versions, baseline):
    shown = "%s/%s" % (finding["subject"], finding["key"])
    if versions is None:
        return "%s's copy of %s is in no repository: its committed versions are unknown" % (
            baseline,
            finding["subject"],
        )
    if versions.get("reason"):
        return versions["reason"]
    if not versions["files"].get(finding["key"]):
        return "%s is in no commit of the collected history of %s on %s" % (shown, versions["repo"], baseline)
    if not versions["complete"]:
        return "%s matches no version in the collected history of %s (it was cut: older commits were not read)" % (
            shown,
            versions["repo"],
        )
    return "%s could not be read on %s" % (shown, join_names(finding["environments"]))


def _target_side_cause(finding, target, git_cells, placements):
    """(kind, commit, text, evidence) when the target's own copy lies in one of its repositories and
    that repository explains it: an uncommitted edit there (hand_edit), or the version of a commit
    only the target has (hotfix_commit); else None."""
    cell = git_cells.get(target)
    versions = _deploy_dir(cell, finding["subject"]).get("versions")
    if not versions:
        return None
    repo = (cell.get("repos") or {}).get(versions["repo"]) or {}
    path = posixpath.join(versions["prefix"], finding["key"]) if versions["prefix"] else finding["key"]
    shown = "%s/%s" % (finding["subject"], finding["key"])
    if path in _listed_paths(repo, "modified") | _listed_paths(repo, "untracked"):
        text = "%s on %s is edited in the checkout of %s there and in no commit: an uncommitted hot-fix" % (
            shown,
            target,
            versions["repo"],
        )
        return "hand_edit", None, text, "uncommitted edit in %s on %s" % (versions["repo"], target)
    deployed = (_deploy_dir(cell, finding["subject"]).get("files") or {}).get(finding["key"]) or {}
    only = {
        commit["sha"]: commit
        for placement in placements
        if placement["repo"] == versions["repo"] and placement["target"] == target
        for commit in placement["only"]
    }
    for version in versions["files"].get(finding["key"]) or []:
        if deployed.get("fp") and version["fp"] == deployed["fp"] and version["commit"] in only:
            commit = only[version["commit"]]
            text = "%s on %s is the version of commit %s, made only on %s: merge it back" % (
                shown,
                target,
                _short(commit),
                target,
            )
            return "hotfix_commit", commit, text, "the version of commit %s, only on %s" % (commit["sha"][:10], target)
    return None


def _deploy_file_causes(findings, git_cells, baseline, history, placements, explained):
    """A deployed file that differs on a target: first its own repository there (an uncommitted
    edit, or a commit only the target has); then against the committed versions of the baseline's
    copy (a deploy dir inside the baseline's repository): the version of an older commit means
    the target was deployed before the newer commits changed it (deploy_behind); a version no
    commit holds, in a complete history, is an edit made by hand on the target (hand_edit)."""
    causes, reasons = [], {}
    for finding in findings:
        if finding["check"] != "git.file_changed" or finding["expected"] or id(finding) in explained:
            continue
        versions = _deploy_dir(git_cells.get(baseline), finding["subject"]).get("versions")
        deployed = {
            target: (_deploy_dir(git_cells.get(target), finding["subject"]).get("files") or {}).get(finding["key"])
            for target in finding["environments"]
        }
        for target in finding["environments"]:
            found = _target_side_cause(finding, target, git_cells, placements)
            repo = found and _deploy_dir(git_cells[target], finding["subject"])["versions"]["repo"]
            if found is None and versions is not None:
                found = _deploy_file_cause(dict(finding, _deployed=deployed), target, versions, history, baseline)
                repo = versions["repo"]
            if found:
                kind, commit, text, evidence = found
                shown = "%s/%s" % (finding["subject"], finding["key"])
                placement = {"repo": repo, "target": target}
                causes.append(dict(_cause(kind, placement, commit, text, [(finding, evidence)]), files=[shown]))
                explained.add(id(finding))
                break
        else:
            reasons[id(finding)] = _deploy_file_reason(finding, versions, baseline)
    return causes, reasons


def _baseline_history(git_cells, baseline):
    cell = git_cells.get(baseline)
    if cell is None or is_unknown(cell):
        return {}
    return {
        commit["sha"]: commit for repo in (cell.get("repos") or {}).values() for commit in repo.get("history") or []
    }


def analyse(findings, git_cells, env_cells, baseline, targets, docker_cells=None, project_repos=None):
    """{"placements", "causes", "manual_schema_drift", "unexplained", "undefined_keys"}.
    project_repos: per target, the repositories configured at its project directory (where a
    build context inside the project lies)."""
    found = placements(git_cells, baseline, targets)
    explained = set()
    causes = []
    for placement in found:
        causes += _commit_causes(placement, findings, explained)
    more, other_reasons = _deploy_file_causes(
        findings, git_cells, baseline, _baseline_history(git_cells, baseline), found, explained
    )
    causes += more
    if docker_cells:
        more, compose_reasons = _compose_causes(
            findings,
            {"docker": docker_cells, "git": git_cells},
            lambda target: [p for p in found if p["target"] == target],
            project_repos or {},
            explained,
        )
        causes += more
        other_reasons.update(compose_reasons)
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
        elif id(finding) in other_reasons:
            unexplained.append(dict(ref(finding), reason=other_reasons[id(finding)]))
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


def _caused(analysis, kinds):
    """The findings the causes of these kinds explain, as refs, and the causes' files."""
    causes = [cause for cause in analysis["causes"] if cause["kind"] in kinds]
    refs = [{k: v for k, v in item.items() if k != "evidence"} for cause in causes for item in cause["findings"]]
    return refs, sorted({path for cause in causes for path in cause["files"]})


def _unique(refs):
    """Each finding once, by id, in first-seen order."""
    return list({item["id"]: item for item in refs}.values())


def _merge_back_step(analysis, findings):
    own = [f for f in findings if f["check"] in MERGE_BACK_CHECKS and not f["expected"]]
    only = [p for p in analysis["placements"] if p["only"]]
    edited, files = _caused(analysis, ("uncommitted_config", "hand_edit", "hotfix_commit"))
    if not own and not only and not edited:
        return None
    parts = ["%d commit(s) only on %s in %s" % (len(p["only"]), p["target"], p["repo"]) for p in only]
    parts += sorted({"%s (%s)" % (f["check"].split(".", 1)[1].replace("_", " "), f["subject"]) for f in own})
    if files:
        parts.append("files in no commit that the target's configuration or deploy reads: %s" % _listing(files))
    return _step(
        "merge_back",
        "Commit to the repository what exists only on the target, before the deploy overwrites it: %s."
        % "; ".join(parts),
        [],
        "Nothing changes on the target in this step; revert the merge commit in the repository to undo it.",
        _unique(_refs(own) + edited),
    )


def _schema_drift_step(analysis, findings):
    """The schema differences no migration explains (DDL run by hand): recorded in a migration, or
    undone, before the pending migrations run over them."""
    manual = analysis["manual_schema_drift"]
    if not manual:
        return None
    by_id = {finding["id"]: finding for finding in findings}
    parts = {}
    for item in manual:
        finding = by_id.get(item["id"]) or {"environments": []}
        where = "on %s" % join_names(sorted(finding["environments"])) if finding["environments"] else "differs"
        parts.setdefault(where, []).append(
            "%s %s (%s)" % (item["subject"], item["key"], item["check"].split(".", 1)[1].replace("_", " "))
        )
    return _step(
        "schema_drift",
        "Record in a migration the schema changes no migration explains (DDL run by hand), or undo them: %s."
        % "; ".join("%s: %s" % (where, _listing(names)) for where, names in sorted(parts.items())),
        [],
        "Nothing changes on the databases in this step; revert the commit of the new migration to undo it.",
        [{k: v for k, v in item.items() if k != "reason"} for item in manual],
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
    links = [{k: f[k] for k in ("id", "area", "subject", "key", "check")} for c in migrations for f in c["findings"]]
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
    changed, files = _caused(analysis, ("compose_commit", "deploy_behind"))
    return _step(
        "deploy",
        "Deploy %s%s."
        % (
            "; ".join("%s commit %s to %s" % (p["repo"], p["heads"][0][:10], p["target"]) for p in moving),
            "; it changes %s" % _listing(files) if files else "",
        ),
        [],
        "Redeploy the previous commit (%s); restore the backup if the migrations do not run backwards."
        % "; ".join("%s %s on %s" % (p["repo"], p["heads"][1][:10], p["target"]) for p in moving),
        _unique(_refs(own) + changed),
    )


def _restart_step(findings, projects):
    """One `docker compose up -d` per stack whose services' image or configuration differs on the
    target (projects: {stack: its Compose project name}, the stack's name when unknown)."""
    own = [f for f in findings if f["area"] == "docker" and f["check"] in RESTART_CHECKS and not f["expected"]]
    stacks = {}
    for finding in own:
        parts = finding["key"].split(".")
        if parts[0] == "services" and len(parts) > 1:
            stacks.setdefault(finding["subject"], set()).add(parts[1])
    if not stacks:
        return None
    return _step(
        "restart",
        "Restart the services whose image or configuration changed: %s."
        % "; ".join("%s: %s" % (stack, _listing(sorted(services))) for stack, services in sorted(stacks.items())),
        [
            "docker compose -p %s up -d %s"
            % (quote(projects.get(stack) or stack), " ".join(quote(service) for service in sorted(services)))
            for stack, services in sorted(stacks.items())
        ],
        "Bring the previous commit's compose file back and run docker compose up -d again.",
        _refs(f for f in own if f["subject"] in stacks),
    )


def _verify_step(steps, findings):
    resolved = _unique(f for step in steps for f in step["findings"])
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


def stabilization_plan(analysis, findings, databases, projects=None):
    """The numbered steps, in the order they must run; a step with nothing to do is left out.
    databases: {name: drift_postgres item} of the target whose migrations are pending; projects:
    {stack: Compose project name} on the targets."""
    migrations = [c for c in analysis["causes"] if c["kind"] == "pending_migration"]
    migrated = {f["subject"] for c in migrations for f in c["findings"] if f["area"] == "postgres"}
    steps = []
    merge_back = _merge_back_step(analysis, findings)
    if merge_back:
        steps.append(merge_back)
    drift = _schema_drift_step(analysis, findings)
    if drift:
        steps.append(drift)
    backup = _backup_step(migrations, {name: item for name, item in databases.items() if name in migrated})
    if backup:
        steps.append(backup)
    for step in (
        _migrate_step(migrations, len(steps) if backup else None),
        _config_step(analysis, findings),
        _deploy_step(analysis, findings),
        _restart_step(findings, projects or {}),
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
    host_of = {column["label"]: column["host"] for column in columns}
    project_repos = {
        label: [
            repo["name"]
            for repo in ((requests.get(host_of[label]) or {}).get("git") or {}).get("repos") or []
            if posixpath.normpath(repo.get("path") or "") == "."
        ]
        for label in targets
    }
    analysis = analyse(
        findings, cells_of("git"), cells_of("env"), labels[0], targets, cells_of("docker"), project_repos
    )
    databases = {}
    for label in targets:
        request = (requests.get(host_of[label]) or {}).get("postgres") or {}
        for database in request.get("databases") or []:
            databases.setdefault(database["name"], database)
    projects = {}
    for label in targets:
        cell = cells_of("docker").get(label)
        if cell and not is_unknown(cell):
            for name, stack in (cell.get("stacks") or {}).items():
                if (stack or {}).get("project"):
                    projects.setdefault(name, stack["project"])
    return analysis, stabilization_plan(analysis, findings, databases, projects)


# ---------------------------------------------------------------- the Markdown view


def _ref_text(item):
    return "%s %s · %s · %s" % (
        markdown_text.code(item["id"], table=False),
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
