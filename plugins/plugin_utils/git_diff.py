"""Diff rules of the git area: where each environment's commit sits in the others' history,
uncommitted work on production hosts, remotes, submodules, and deployed files without git.

Input per column: the host's git facts ({"repos": {...}, "deploy_dirs": {...}}, see
module_utils/git_collect.py), an unknown marker, or None (not configured there).
Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SubjectColumns,
    by_value,
    join_names,
    subject_names,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.object_type import ObjectType, get, keyed_outcomes

AREA = "git"
LISTED_COMMITS = 20
MIGRATION_HINTS = ("migration", "migrations/", "alembic/", "/migrate/", "schema.rb", "flyway")
CONFIG_HINTS = ("config/", "settings", ".env", "docker-compose", "compose.y", ".ini", ".toml", ".conf", "nginx")
STATUS_TEXT = {
    "missing": "path missing",
    "not_a_repository": "not a git repository",
    "dubious_ownership": "refused by git (dubious ownership)",
    "corrupt": "corrupt repository",
    "git_missing": "git not installed",
    "timeout": "git timed out",
    "failed": "git failed",
    "unreadable": "unreadable",
    "not_a_directory": "not a directory",
}


def subjects(request):
    request = request or {}
    return sorted({item["name"] for item in (request.get("repos") or []) + (request.get("deploy_dirs") or [])})


def _short(commit):
    return "%s %s" % (commit["sha"][:10], commit["subject"]) if commit else None


def _touches(commit, hints):
    return any(hint in path.lower() for path in commit.get("files") or [] for hint in hints)


def _commit_line(commit):
    flags = [
        name for name, hints in (("migration", MIGRATION_HINTS), ("config", CONFIG_HINTS)) if _touches(commit, hints)
    ]
    return "%s %s%s" % (commit["sha"][:10], commit["subject"], " [%s]" % ", ".join(flags) if flags else "")


def _listing(commits):
    shown = [_commit_line(commit) for commit in commits[:LISTED_COMMITS]]
    more = len(commits) - len(shown)
    return "; ".join(shown) + ("; and %d more" % more if more > 0 else "")


def _flags(commits):
    migrations = sum(1 for commit in commits if _touches(commit, MIGRATION_HINTS))
    configs = sum(1 for commit in commits if _touches(commit, CONFIG_HINTS))
    parts = []
    if migrations:
        parts.append("%d touch migrations" % migrations)
    if configs:
        parts.append("%d touch configuration" % configs)
    return " (%s)" % ", ".join(parts) if parts else ""


def _graph(*repos):
    """{sha: parents} from the collected histories.  A shallow clone's boundary commits show no
    parents there; another repository's history, when it has them, gives the real ones."""
    graph = {}
    for repo in repos:
        shallow = set(repo.get("shallow") or [])
        for commit in repo["history"]:
            if commit["sha"] not in shallow:
                graph[commit["sha"]] = commit["parents"]
    for repo in repos:
        for sha in repo.get("shallow") or []:
            graph.setdefault(sha, [])
    return graph


def _reachable(head, graph):
    """The commits of the graph reachable from head (head included when the graph has it)."""
    seen = set()
    stack = [head]
    while stack:
        sha = stack.pop()
        if sha in seen or sha not in graph:
            continue
        seen.add(sha)
        stack.extend(graph[sha])
    return seen


def place(base, other):
    """Where `other`'s HEAD sits relative to `base`'s: (relation, commits other lacks, commits only in other).

    relation: same, behind, ahead, diverged, unrelated, or unknown (no common commit within the
    collected windows, but a window was truncated or a clone is shallow).  Ancestry is followed
    through both histories, so a shallow clone's missing history is not counted as missing
    commits: only what the other side has after its commit is.
    """
    if base["head"] == other["head"]:
        return "same", [], []
    graph = _graph(base, other)
    from_base = _reachable(base["head"], graph)
    from_other = _reachable(other["head"], graph)
    lacking = [commit for commit in base["history"] if commit["sha"] not in from_other]
    only = [commit for commit in other["history"] if commit["sha"] not in from_base]
    if other["head"] in from_base:
        return "behind", lacking, []
    if base["head"] in from_other:
        return "ahead", [], only
    if from_base & from_other:
        return "diverged", lacking, only
    if any(repo.get("history_truncated") or repo.get("shallow") for repo in (base, other)):
        return "unknown", lacking, only
    return "unrelated", lacking, only


def cherry_picks(lacking, only):
    """{sha of a commit in `only`: the commit of `lacking` with the same patch id}.

    Patch ids are keyed fingerprints computed on the host; commits without one never match.
    """
    by_patch = {}
    for commit in reversed(lacking):  # the oldest commit with a given patch is the original
        if commit.get("patch_id"):
            by_patch.setdefault(commit["patch_id"], commit)
    return {
        commit["sha"]: by_patch[commit["patch_id"]]
        for commit in only
        if commit.get("patch_id") and commit["patch_id"] in by_patch
    }


def _picks_note(picks, baseline):
    """ ", of which N are cherry-picks of <baseline>'s commits (a = b, ...)", or "" when none."""
    if not picks:
        return ""
    return ", of which %d are cherry-picks of %s's commits (%s)" % (
        len(picks),
        baseline,
        ", ".join("%s = %s" % (sha[:10], original["sha"][:10]) for sha, original in sorted(picks.items())),
    )


class _Subject(SubjectColumns):
    AREA = AREA

    def ok(self):
        return [label for label in self.columns if self.records.get(label, {}).get("status") == "ok"]


def _status_findings(subject, what):
    broken = [
        label for label in subject.columns if label in subject.records and subject.records[label]["status"] != "ok"
    ]
    if not broken:
        return []
    values = {label: STATUS_TEXT.get(record["status"], "ok") for label, record in subject.records.items()}
    reasons = by_value(((label, subject.records[label].get("reason") or values[label]) for label in broken), ": ")
    missing = all(subject.records[label]["status"] == "missing" for label in broken)
    return [
        subject.finding(
            "@" + what,
            "missing" if missing else "unknown",
            "git.%s_status" % what,
            "high",
            values,
            broken,
            "%s %s could not be read on %s (%s)."
            % (what.replace("_", " ").capitalize(), subject.name, join_names(broken), reasons),
            "Fix the path or the repository on %s; it was not compared." % join_names(broken),
        )
    ]


def _same_head_groups(subject, labels):
    """The columns grouped by their head commit (and shallowness), in column order."""
    groups = {}
    for label in labels:
        record = subject.records[label]
        groups.setdefault((record["head"], bool(record.get("shallow"))), []).append(label)
    return list(groups.values())


def _head_findings(subject):
    ok = subject.ok()
    if len(ok) < 2:
        return []
    baseline = ok[0]
    base = subject.records[baseline]
    values = {
        label: _short(subject.records[label]["history"][0] if subject.records[label]["history"] else None)
        for label in ok
    }
    findings = []
    for group in _same_head_groups(subject, ok[1:]):
        # Hosts at the same commit stand the same against the baseline: one finding names them all.
        first, label = group[0], join_names(group)
        other = subject.records[first]
        if base["head"] is None or other["head"] is None:
            if base["head"] != other["head"]:
                findings.append(
                    subject.finding(
                        "head",
                        "changed",
                        "git.no_commits",
                        "medium",
                        values,
                        group,
                        "One of %s and %s has no commit yet." % (baseline, label),
                        "Check that the right directory is configured for %s." % subject.name,
                    )
                )
            continue
        relation, lacking, only = place(base, other)
        if relation == "same":
            continue
        production = any(name in subject.context["production"] for name in group)
        if relation == "behind":
            findings.append(
                subject.finding(
                    "head",
                    "changed",
                    "git.behind",
                    "medium",
                    values,
                    group,
                    "%s is %d commit(s) behind %s%s: %s."
                    % (label, len(lacking), baseline, _flags(lacking), _listing(lacking)),
                    "Deploy %s's commit to %s%s."
                    % (
                        baseline,
                        label,
                        "; run the migration tool's upgrade as part of it"
                        if any(_touches(c, MIGRATION_HINTS) for c in lacking)
                        else "",
                    ),
                )
            )
        elif relation == "ahead":
            findings.append(
                subject.finding(
                    "head",
                    "changed",
                    "git.ahead",
                    "medium",
                    values,
                    group,
                    "%s is %d commit(s) ahead of %s: %s." % (label, len(only), baseline, _listing(only)),
                    "Bring %s up to date with %s, or deploy from the branch %s runs." % (baseline, label, label),
                )
            )
        elif relation == "diverged" and len(cherry_picks(lacking, only)) == len(only):
            picks = cherry_picks(lacking, only)
            findings.append(
                subject.finding(
                    "head",
                    "changed",
                    "git.cherry_picked",
                    "medium",
                    values,
                    group,
                    "%s's %d commit(s) not in %s's history are cherry-picks of %s's commits (same patch): %s; "
                    "%s lacks %d commit(s)%s: %s."
                    % (
                        label,
                        len(only),
                        baseline,
                        baseline,
                        "; ".join("%s = %s" % (_short(c), picks[c["sha"]]["sha"][:10]) for c in only),
                        label,
                        len(lacking),
                        _flags(lacking),
                        _listing(lacking),
                    ),
                    "Deploy %s's commit to %s: it already holds the cherry-picked changes." % (baseline, label),
                )
            )
        elif relation == "diverged":
            findings.append(
                subject.finding(
                    "head",
                    "changed",
                    "git.diverged",
                    "high",
                    values,
                    group,
                    "%s and %s have diverged: %d commit(s) only on %s (%s)%s; %s lacks %d%s (%s)."
                    % (
                        baseline,
                        label,
                        len(only),
                        label,
                        _listing(only),
                        _picks_note(cherry_picks(lacking, only), baseline),
                        label,
                        len(lacking),
                        _flags(lacking),
                        _listing(lacking),
                    ),
                    "Merge the commits made only on %s back into the repository%s, then deploy one commit everywhere."
                    % (
                        label,
                        " (a hot-fix made on production is lost on the next deploy otherwise)" if production else "",
                    ),
                )
            )
        else:
            shallow = [name for name in (baseline, first) if subject.records[name].get("shallow")]
            findings.append(
                subject.finding(
                    "head",
                    "changed",
                    "git.unrelated" if relation == "unrelated" else "git.history_unknown",
                    "high",
                    values,
                    group,
                    "%s and %s share no commit%s%s."
                    % (
                        baseline,
                        label,
                        " in the collected history window" if relation == "unknown" else " (unrelated histories)",
                        "; the placement is partial: %s is a shallow clone, its history stops at its shallow boundary"
                        % join_names(shallow)
                        if shallow
                        else "",
                    ),
                    "Check that %s points at the same repository everywhere%s%s."
                    % (
                        subject.name,
                        "; raise drift_git_history_limit to look further back" if relation == "unknown" else "",
                        "; deepen the shallow clone (git fetch --deepen) to place it" if shallow else "",
                    ),
                )
            )
    return findings


def _worktree_text(record):
    parts = []
    for part in ("staged", "modified", "untracked"):
        if record[part]["count"]:
            parts.append("%d %s" % (record[part]["count"], part))
    return ", ".join(parts) if parts else "clean"


def _names(record, parts, limit=10):
    files = [item["path"] for part in parts for item in record[part]["files"]]
    more = sum(record[part]["count"] for part in parts) - len(files[:limit])
    return ", ".join(files[:limit]) + (" and %d more" % more if more > 0 else "")


def _worktree_findings(subject):
    ok = subject.ok()
    values = {label: _worktree_text(subject.records[label]) for label in ok}
    production = [label for label in ok if label in subject.context["production"]]
    others = [label for label in ok if label not in subject.context["production"]]
    findings = []
    dirty = [
        label
        for label in production
        if subject.records[label]["staged"]["count"] or subject.records[label]["modified"]["count"]
    ]
    if dirty:
        findings.append(
            subject.finding(
                "worktree.modified",
                "policy",
                "git.uncommitted_production",
                "high",
                values,
                dirty,
                "Uncommitted changes on production %s: %s."
                % (
                    join_names(dirty),
                    by_value(
                        ((label, _names(subject.records[label], ("staged", "modified"))) for label in dirty), ": "
                    ),
                ),
                "Commit the hot-fix on %s to the repository (or reproduce it there), "
                "or it will be lost on the next deploy." % join_names(dirty),
            )
        )
    untracked = [label for label in production if subject.records[label]["untracked"]["count"]]
    if untracked:
        findings.append(
            subject.finding(
                "worktree.untracked",
                "policy",
                "git.untracked_production",
                "medium",
                values,
                untracked,
                "Untracked files on production %s: %s."
                % (
                    join_names(untracked),
                    by_value(((label, _names(subject.records[label], ("untracked",))) for label in untracked), ": "),
                ),
                "Add them to the repository, to .gitignore, or remove them from %s." % join_names(untracked),
            )
        )
    local = [label for label in others if _worktree_text(subject.records[label]) != "clean"]
    if local:
        findings.append(
            subject.finding(
                "worktree.dev",
                "policy",
                "git.uncommitted_dev",
                "info",
                values,
                local,
                "Work in progress on %s (%s) is not part of any commit and will not be deployed."
                % (
                    join_names(local),
                    by_value(((label, values[label]) for label in local), ": "),
                ),
                "Commit what the release needs before deploying.",
            )
        )
    return findings


REMOTE = ObjectType(
    noun="remote",
    check="git.remote_changed",
    attributes=(("url", str),),
    missing="low",
    extra="low",
    changed="low",
    namespace="remotes.",
    checks=dict.fromkeys(("missing", "extra", "changed"), "git.remote_changed"),
)
SUBMODULE = ObjectType(
    noun="submodule",
    check="git.submodule_changed",
    attributes=(("commit", str),),
    namespace="submodules.",
    missing="medium",
    extra="medium",
    changed="medium",
    checks=dict.fromkeys(("missing", "extra", "changed"), "git.submodule_changed"),
)
# A deployed file: compared by content fingerprint, then by mode.
DEPLOYED_FILE = ObjectType(
    noun="file",
    check="git.file",
    text=lambda entry: "%d bytes, mode %s" % (entry["size"], entry["mode"]),
    attributes=(("content", get("fp")), ("mode", get("mode"))),
    missing="medium",
    extra="medium",
    changed="medium",
    checks={
        "missing": "git.file_missing",
        "extra": "git.file_extra",
        "changed": lambda differing: "git.file_changed" if "content" in differing else "git.file_mode",
    },
)
FILE_MESSAGES = {
    "git.file_missing": "%(path)s is deployed in %(baseline)s but missing in %(where)s.",
    "git.file_extra": "%(path)s is in %(where)s but not in %(baseline)s.",
    "git.file_changed": "%(path)s differs from %(baseline)s in %(where)s (content compared by fingerprint).",
    "git.file_mode": "%(path)s has another mode in %(where)s than in %(baseline)s.",
}
FILE_ADVICE = {
    "git.file_missing": "Redeploy %(name)s to %(where)s.",
    "git.file_extra": "Remove it from %(where)s, or add it to the repository.",
    "git.file_changed": "Someone edited %(path)s on %(where)s: commit the change to the repository or redeploy.",
    "git.file_mode": "Align the file mode with %(baseline)s.",
}


def _keyed_findings(subject, spec, field):
    """One finding per entry of a {name: value} field that differs across the ok columns."""
    ok = subject.ok()
    if len(ok) < 2:
        return []
    baseline = ok[0]
    maps = {label: subject.records[label].get(field) or {} for label in ok}
    findings = []
    for name, objects, outcomes in keyed_outcomes(spec, maps, ok):
        kind = outcomes[0][0]
        about = {label for _, labels in outcomes for label in labels}
        values = spec.cells(objects, ok)
        findings.append(
            subject.finding(
                spec.namespace + name,
                kind,
                spec.check_for(kind),
                spec.severity(kind),
                values,
                [label for label in ok if label in about],
                "%s %s differs across environments: %s."
                % (spec.noun.capitalize(), name, by_value((lbl, values[lbl] or "—") for lbl in ok)),
                "Align %s %s with %s." % (spec.noun, name, baseline),
            )
        )
    return findings


def _stash_findings(subject):
    ok = subject.ok()
    counts = {label: subject.records[label]["stash_count"] for label in ok}
    if len(ok) < 2 or len(set(counts.values())) == 1:
        return []
    with_stash = [label for label in ok if counts[label]]
    return [
        subject.finding(
            "stash",
            "changed",
            "git.stash",
            "info",
            {label: str(counts[label]) for label in ok},
            with_stash,
            "Stashed work on %s (%s)."
            % (join_names(with_stash), ", ".join("%s: %d" % (label, counts[label]) for label in with_stash)),
            "Make sure nothing the release needs is left in a stash.",
        )
    ]


def _program_findings(subject):
    """A repository whose own configuration names programs git would run (never run by the audit)."""
    ok = subject.ok()
    declaring = [label for label in ok if subject.records[label].get("declared_programs")]
    if not declaring:
        return []
    values = {label: ", ".join(subject.records[label].get("declared_programs") or []) or "none" for label in ok}
    return [
        subject.finding(
            "@programs",
            "policy",
            "git.runs_programs",
            "high" if subject.production(declaring) else "medium",
            values,
            declaring,
            "; ".join(
                "On %s this repository declares programs that git would run on status (and other commands): %s"
                % (label, values[label])
                for label in declaring
            )
            + ". The audit ran none of them and compared file contents as they are on disk.",
            "Remove these settings from the repository's configuration on %s (.git/config, the files it "
            "includes, .git/info/attributes), or check that each program is one you trust." % join_names(declaring),
        )
    ]


def _repo_findings(subject):
    findings = _status_findings(subject, "repository")
    findings += _program_findings(subject)
    findings += _head_findings(subject)
    ok = subject.ok()
    branches = {label: subject.records[label]["branch"] or "(detached)" for label in ok}
    if len(set(branches.values())) > 1:
        findings.append(
            subject.finding(
                "branch",
                "changed",
                "git.branch_changed",
                "low",
                branches,
                [label for label in ok if branches[label] != branches[ok[0]]],
                "Checked-out branch differs: %s." % by_value((label, branches[label]) for label in ok),
                "Deploy from the same branch everywhere, or record the difference as expected.",
            )
        )
    findings += _worktree_findings(subject)
    findings += _stash_findings(subject)
    findings += _keyed_findings(subject, REMOTE, "remotes")
    findings += _keyed_findings(subject, SUBMODULE, "submodules")
    return findings


def _file_findings(subject):
    findings = _status_findings(subject, "deploy_dir")
    ok = subject.ok()
    truncated = [label for label in ok if subject.records[label]["truncated"]]
    if truncated:
        findings.append(
            subject.finding(
                "@files",
                "unknown",
                "git.manifest_truncated",
                "medium",
                {label: "%d files" % subject.records[label]["count"] for label in ok},
                truncated,
                "The file manifest of %s was cut at the limit on %s; files past it were not compared."
                % (subject.name, join_names(truncated)),
                "Raise drift_git_manifest_limit or add ignore globs for %s." % subject.name,
            )
        )
    if len(ok) < 2:
        return findings
    baseline = ok[0]
    manifests = {label: subject.records[label]["files"] for label in ok}
    for path, entries, outcomes in keyed_outcomes(DEPLOYED_FILE, manifests, ok):
        for kind, where in outcomes:
            check = (
                DEPLOYED_FILE.check_for(
                    kind, DEPLOYED_FILE.differing(entries[baseline], *(entries[label] for label in where))
                )
                if kind == "changed"
                else DEPLOYED_FILE.check_for(kind)
            )
            values = DEPLOYED_FILE.cells(entries, ok)
            if check == "git.file_changed":
                letters = {}
                for label in ok:
                    if entries[label] is not None:
                        letters.setdefault(entries[label]["fp"], chr(ord("A") + len(letters)))
                        values[label] += ", content %s" % letters[entries[label]["fp"]]
            findings.append(
                subject.finding(
                    path,
                    kind,
                    check,
                    DEPLOYED_FILE.severity(kind),
                    values,
                    where,
                    FILE_MESSAGES[check] % {"path": path, "baseline": baseline, "where": join_names(where)},
                    FILE_ADVICE[check]
                    % {"path": path, "name": subject.name, "baseline": baseline, "where": join_names(where)},
                )
            )
    return findings


def diff(columns, cells, context):
    """All git findings for the given columns; context: {"baseline", "production": set of labels}."""
    findings = []
    for name in subject_names(cells, "repos"):
        findings += _repo_findings(_Subject(name, "repos", columns, cells, context))
    for name in subject_names(cells, "deploy_dirs"):
        findings += _file_findings(_Subject(name, "deploy_dirs", columns, cells, context))
    return findings
