"""Root causes and the stabilization plan on real finding shapes: git facts collected from
repositories built with git, findings made by the git, postgres and env diff modules."""

import copy
import json
import pathlib

import jsonschema
import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks
from ansible_collections.envparity.audit.plugins.module_utils.git_collect import collect_git
from ansible_collections.envparity.audit.plugins.module_utils.git_introduces import NAME_LIMIT, parse_diffs
from ansible_collections.envparity.audit.plugins.plugin_utils import docker_diff, env_diff, git_diff, root_causes
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import with_ids
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view
from tests.pg_facts import catalog, database, facts, migrations, run, table
from tests.unit.plugins.module_utils.test_git_collect import _isolated_git_config, commit, git  # noqa: F401
from tests.unit.plugins.plugin_utils.test_env_diff import env_file, plain

KEY = b"k" * 32
SCHEMA = json.loads((pathlib.Path(__file__).resolve().parents[4] / "schemas" / "report.schema.json").read_text())
SETTINGS_V1 = 'import os\nAPP_NAME = os.environ.get("APP_NAME", "app")\n'
MIGRATION_0002 = """\
import sqlalchemy as sa
from alembic import op

revision = "0002"


def upgrade():
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer, primary_key=True),
    )
    op.add_column("users", sa.Column("avatar_url", sa.Text))
    op.execute("CREATE INDEX users_name_idx ON public.users (name)")


def downgrade():
    op.drop_index("users_name_idx")
    op.drop_column("users", "avatar_url")
    op.drop_table("reminders")
"""
SETTINGS_V2 = SETTINGS_V1 + 'INTERVAL = int(os.environ.get("REMINDER_INTERVAL_SECONDS", "300"))\n'
TEMPLATE_V2 = "APP_NAME=app\nFEATURE_NEW_UI=s3cr3t-value-never-sent\n"


@pytest.fixture
def repos(tmp_path):
    """dev: three commits prod lacks (a migration, a settings change, an env template change);
    prod: a clone of the shared commit plus a hot-fix of its own."""
    dev, prod = tmp_path / "dev", tmp_path / "prod"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(
        dev,
        {
            "config/settings.py": SETTINGS_V1,
            "migrations/versions/0001_initial.py": "# users\n",
            ".env.example": "APP_NAME=app\n",
        },
        "Initial",
    )
    git(tmp_path, "clone", "-q", str(dev), str(prod))
    commit(dev, {"migrations/versions/0002_add_reminders.py": MIGRATION_0002}, "Add the reminders table")
    commit(dev, {"config/settings.py": SETTINGS_V2}, "Check reminders every 5 minutes")
    commit(dev, {".env.example": TEMPLATE_V2}, "Add the new UI flag")
    commit(prod, {"app.py": "print('hot-fix')\n"}, "Hotfix on the server")
    return dev, prod


def git_facts(path):
    return collect_git({"project_dir": None, "repos": [{"name": "app", "path": str(path)}], "deploy_dirs": []}, KEY)


def by_subject(record):
    return {commit["subject"]: commit for commit in record["history"]}


def test_the_collector_reports_what_each_commit_introduces_and_no_value(repos):
    dev, _ = repos
    facts_ = git_facts(dev)
    history = by_subject(facts_["repos"]["app"])
    # The downgrade's drops are not what the migration does.
    assert history["Add the reminders table"]["introduces"] == {
        "tables": ["reminders"],
        "columns": ["users.avatar_url"],
        "indexes": ["users_name_idx"],
        "keys": [],
        "altered_columns": [],
        "dropped_tables": [],
        "dropped_columns": [],
        "dropped_indexes": [],
        "settings": [],
    }
    assert history["Check reminders every 5 minutes"]["introduces"]["keys"] == ["REMINDER_INTERVAL_SECONDS"]
    assert history["Add the new UI flag"]["introduces"]["keys"] == ["FEATURE_NEW_UI"]
    assert history["Initial"]["introduces"] is None  # a root commit, like a merge, is not read
    assert "s3cr3t" not in json.dumps(facts_)


def test_a_shallow_boundary_commit_has_no_introduced_names(tmp_path, repos):
    dev, _ = repos
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", "file://%s" % dev, str(shallow))
    record = git_facts(shallow)["repos"]["app"]
    assert record["shallow"] and record["history"][0]["introduces"] is None


def schema_cells():
    """dev: the migration's table, column and index, plus a column nobody migrated; prod lacks
    them and has a table made by hand."""
    dev_catalog, prod_catalog = catalog(), catalog()
    dev_catalog["tables"]["public.reminders"] = table({})
    dev_catalog["tables"]["public.users"]["columns"]["avatar_url"] = copy.deepcopy(
        dev_catalog["tables"]["public.users"]["columns"]["name"]
    )
    dev_catalog["tables"]["public.users"]["columns"]["avatar_url"]["position"] = 6
    del prod_catalog["tables"]["public.users"]["indexes"]["users_name_idx"]
    del prod_catalog["tables"]["public.users"]["columns"]["active"]
    prod_catalog["tables"]["public.hand_made"] = table({})
    dev = database(dev_catalog, tools={"alembic": migrations("alembic", ["0002"])})
    prod = database(prod_catalog, tools={"alembic": migrations("alembic", ["0001"])})
    return facts(app=dev), facts(app=prod)


def findings_of(dev_git, prod_git):
    context = {"baseline": "dev", "production": {"prod"}}
    env_cells = {
        "dev": {"files": {"app": env_file({"APP_NAME": plain("app"), "FEATURE_NEW_UI": plain("true")})}},
        "prod": {"files": {"app": env_file({"APP_NAME": plain("app"), "OLD_ONLY": plain("1")})}},
    }
    git_cells = {"dev": dev_git, "prod": prod_git}
    findings = run(*schema_cells())
    findings += env_diff.diff(["dev", "prod"], env_cells, context)
    findings += git_diff.diff(["dev", "prod"], git_cells, context)
    return with_ids(findings), git_cells, env_cells


def keys(items):
    return sorted(item["key"] for item in items)


def test_every_planted_link_is_made_and_none_without_evidence(repos):
    dev, prod = repos
    findings, git_cells, env_cells = findings_of(git_facts(dev), git_facts(prod))
    analysis = root_causes.analyse(findings, git_cells, env_cells, "dev", ["prod"])
    (placement,) = analysis["placements"]
    assert placement["relation"] == "diverged" and len(placement["lacking"]) == 3 and len(placement["only"]) == 1
    causes = {cause["kind"]: cause for cause in analysis["causes"]}
    assert sorted(causes) == ["commit_keys", "pending_migration"]
    migration = causes["pending_migration"]
    assert migration["commit"]["subject"] == "Add the reminders table"
    assert migration["files"] == ["migrations/versions/0002_add_reminders.py"]
    assert keys(migration["findings"]) == [
        "migrations.alembic",
        "public.reminders",
        "public.users.avatar_url",
        "public.users.users_name_idx",
    ]
    assert {f["key"]: f["evidence"] for f in migration["findings"]}["public.users.avatar_url"] == (
        "adds column users.avatar_url"
    )
    assert keys(causes["commit_keys"]["findings"]) == ["FEATURE_NEW_UI"]
    assert causes["commit_keys"]["commit"]["subject"] == "Add the new UI flag"
    # Precision: the column nobody migrated and the hand-made table are manual drift, nothing else.
    assert keys(analysis["manual_schema_drift"]) == ["public.hand_made", "public.users.active"]
    linked = {(f["area"], f["key"]) for cause in analysis["causes"] for f in cause["findings"]}
    assert not linked & {("postgres", "public.hand_made"), ("postgres", "public.users.active")}
    # Code on dev reads a key no env file of prod defines.
    assert [(u["key"], u["target"]) for u in analysis["undefined_keys"]] == [("REMINDER_INTERVAL_SECONDS", "prod")]


def test_the_plan_is_ordered_and_made_of_data(repos):
    dev, prod = repos
    findings, git_cells, env_cells = findings_of(git_facts(dev), git_facts(prod))
    analysis = root_causes.analyse(findings, git_cells, env_cells, "dev", ["prod"])
    database = {"name": "app", "dbname": "ai", "user": "deploy", "host": None, "port": None, "container": "db-1"}
    plan = root_causes.stabilization_plan(analysis, findings, {"app": database, "unrelated": dict(database)})
    assert [step["action"] for step in plan] == [
        "merge_back",
        "schema_drift",
        "backup",
        "apply_migrations",
        "config",
        "deploy",
        "verify",
    ]
    assert [step["number"] for step in plan] == [1, 2, 3, 4, 5, 6, 7]
    steps = {step["action"]: step for step in plan}
    assert steps["backup"]["commands"] == [
        "docker exec db-1 pg_dump --format=custom --dbname=ai --username=deploy > ai-before-deploy.dump"
    ]  # only the database the migrations change
    assert steps["apply_migrations"]["commands"] == ["alembic upgrade head"]
    assert "backup of step 3" in steps["apply_migrations"]["rollback"]
    # The schema changes no migration explains: a step of their own, before the backup.
    drift = steps["schema_drift"]
    assert {f["id"] for f in drift["findings"]} == {item["id"] for item in analysis["manual_schema_drift"]}
    assert "on prod: app public.hand_made (table extra), app public.users.active (column missing)" in drift["text"]
    assert drift["commands"] == [] and "revert" in drift["rollback"]
    assert "FEATURE_NEW_UI" in steps["config"]["text"] and "REMINDER_INTERVAL_SECONDS" in steps["config"]["text"]
    assert "s3cr3t" not in json.dumps(plan)
    assert git_cells["prod"]["repos"]["app"]["head"][:10] in steps["deploy"]["rollback"]
    assert all(step["rollback"] for step in plan)
    resolved = [root_causes.ref(f) for step in plan[:-1] for f in step["findings"]]
    assert sorted(map(str, steps["verify"]["findings"])) == sorted(set(map(str, resolved)))


def test_the_backup_command_quotes_inventory_values():
    database = {"name": "app", "dbname": "ai; rm -rf /", "user": "o'neil", "host": "db", "port": 5433}
    assert root_causes.backup_command(database) == (
        "pg_dump --format=custom --dbname='ai; rm -rf /' --username='o'\"'\"'neil' --host=db --port=5433 "
        "--file='ai; rm -rf /-before-deploy.dump'"
    )


def test_nothing_to_do_leaves_the_plan_empty(repos):
    dev, _ = repos
    same = git_facts(dev)
    dev_db = database(catalog())
    findings = run(facts(app=dev_db), facts(app=copy.deepcopy(dev_db)))
    findings += git_diff.diff(["dev", "prod"], {"dev": same, "prod": same}, {"baseline": "dev", "production": {"prod"}})
    with_ids(findings)
    analysis = root_causes.analyse(findings, {"dev": same, "prod": same}, {}, "dev", ["prod"])
    assert analysis["causes"] == [] and analysis["manual_schema_drift"] == []
    assert root_causes.stabilization_plan(analysis, findings, {}) == []


def test_a_shallow_clone_degrades_to_cause_unknown_with_the_reason(tmp_path, repos):
    dev, prod = repos
    shallow = tmp_path / "shallow-dev"
    git(tmp_path, "clone", "-q", "--depth", "1", "file://%s" % dev, str(shallow))
    findings, git_cells, env_cells = findings_of(git_facts(shallow), git_facts(prod))
    analysis = root_causes.analyse(findings, git_cells, env_cells, "dev", ["prod"])
    assert analysis["causes"] == [] and analysis["manual_schema_drift"] == []
    unexplained = {item["key"]: item["reason"] for item in analysis["unexplained"]}
    assert "public.reminders" in unexplained and "public.users.active" in unexplained
    assert "shallow" in unexplained["public.reminders"]


def test_without_the_git_area_nothing_is_called_manual():
    findings = with_ids(run(*schema_cells()))
    analysis = root_causes.analyse(findings, {"dev": None, "prod": None}, {}, "dev", ["prod"])
    assert analysis["causes"] == [] and analysis["manual_schema_drift"] == []
    assert {item["reason"] for item in analysis["unexplained"]} == {"no repository is configured to look for a cause"}


def test_document_with_root_causes_validates_and_the_view_escapes(repos):
    dev, prod = repos
    findings, git_cells, env_cells = findings_of(git_facts(dev), git_facts(prod))
    analysis = root_causes.analyse(findings, git_cells, env_cells, "dev", ["prod"])
    plan = root_causes.stabilization_plan(analysis, findings, {})
    analysis["causes"][0]["text"] = "a *starred* | piped text"
    audit = {
        "columns": [
            {"label": "dev", "environment": "dev", "host": "dev-vm"},
            {"label": "prod", "environment": "prod", "host": "prod-vm"},
        ],
        "environments": [{"name": "dev", "hosts": ["dev-vm"]}, {"name": "prod", "hosts": ["prod-vm"]}],
        "states": {"dev-vm": {"status": "ok", "reason": None}, "prod-vm": {"status": "ok", "reason": None}},
        "production": ["prod"],
        "audited_areas": ["env", "git", "postgres"],
        "findings": findings,
        "stale_rules": [],
        "errors": [],
        "gate": {"fail_on": "never", "tripped": False, "count": 0},
        "root_causes": analysis,
        "stabilization_plan": plan,
    }
    document = build_document(audit, "2026-01-01T00:00:00Z", "inventory/lab")
    jsonschema.validate(json.loads(json.dumps(document)), SCHEMA)
    shown = build_view(document)["root_causes"]
    assert shown["causes"][0]["text"] == "a \\*starred\\* \\| piped text"
    assert [step["number"] for step in shown["steps"]] == [step["number"] for step in plan]


def diff_of(path, added):
    sha = "a" * 40
    lines = [sha, "diff --git a/%s b/%s" % (path, path), "--- a/%s" % path, "+++ b/%s" % path, "@@ -1 +1 @@"]
    return ("\n".join(lines + ["+" + line for line in added]) + "\n").encode(), sha


@pytest.mark.parametrize(
    ("path", "added", "expected"),
    [
        (
            "db/migrate/20250101_add_reminders.rb",
            ["create_table :reminders do |t|", "add_column :users, :avatar_url, :string"],
            {"tables": ["reminders"], "columns": ["users.avatar_url"]},
        ),
        (
            "migrations/V2__reminders.sql",
            [
                "CREATE TABLE IF NOT EXISTS public.reminders (id int);",
                "ALTER TABLE ONLY public.users ADD COLUMN avatar_url text;",
                "ALTER TABLE users ADD CONSTRAINT c CHECK (true);",
                "CREATE UNIQUE INDEX CONCURRENTLY users_email_idx ON users (email);",
            ],
            {"tables": ["reminders"], "columns": ["users.avatar_url"], "indexes": ["users_email_idx"]},
        ),
        (
            "migrations/20250101_reminders.js",
            ["exports.up = (knex) => knex.schema.createTable('reminders', (t) => {});"],
            {"tables": ["reminders"]},
        ),
        (
            "assistant/migrations/0003_user_avatar_url.py",
            ["migrations.AddField(", "    model_name='user',", "    name='avatar_url',"],
            {"columns": ["user.avatar_url"]},
        ),
        (
            "docker-compose.yml",
            ["      - LOG_FORMAT=json", "    image: app:${APP_TAG:-latest}"],
            {"keys": ["APP_TAG", "LOG_FORMAT"]},
        ),
        ("config/production.env", ["export SMTP_HOST=mail", "# COMMENTED=1"], {"keys": ["SMTP_HOST"]}),
        (
            "web/src/api.ts",
            ["const url = process.env.API_URL ?? process.env['API_KEY'];"],
            {"keys": ["API_KEY", "API_URL"]},
        ),
        ("README.md", ["os.environ['NOT_CODE']"], {}),
        ("app/main.py", ["x = 'ghp_' + 'y'", 'os.environ["ghp_0123456789abcdefABCDEF0123456789abcd"]'], {}),
    ],
)
def test_introduced_names_by_file_kind(path, added, expected):
    data, sha = diff_of(path, added)
    found = parse_diffs(data, [sha])[sha]
    assert {sort: sorted(names) for sort, names in found.items() if names} == expected


def test_introduced_names_are_bounded_and_headers_need_a_diff_line():
    names = ["os.getenv('KEY_%d')" % number for number in range(NAME_LIMIT + 20)] + ["os.getenv('%s')" % ("L" * 80)]
    data, sha = diff_of("app/main.py", names + ["++ b/.env", "+EVIL=1"])
    found = parse_diffs(data, [sha])[sha]
    assert len(found["keys"]) == NAME_LIMIT and all(len(name) <= 63 for name in found["keys"])
    assert "EVIL" not in found["keys"]  # an added line "++ b/.env" inside a hunk is not a file header


# ---------------------------------------------------------------- deployed files and compose files

APP_JS_V1 = 'const API_BASE = "/api";\n'
APP_JS_V2 = 'const API_BASE = "/api/v2";\n'
STYLE = "body { margin: 0; }\n"
COMPOSE_V1 = "services:\n  web:\n    image: app:1.0\n    build: ../web\n"
COMPOSE_V2 = "services:\n  web:\n    image: app:2.0\n    build: ../web\n"


def deploy_facts(repo, site, repos=True):
    request = {
        "project_dir": None,
        "repos": [{"name": "app", "path": str(repo)}] if repos else [],
        "deploy_dirs": [{"name": "site", "path": str(site)}],
    }
    return collect_git(request, KEY)


def test_deployed_files_are_an_older_commit_or_a_hand_edit(tmp_path):
    """dev's site/ is in its repository; prod's copy (no git) has app.js as the first commit left
    it, and style.css edited by hand."""
    dev = tmp_path / "dev"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    first = commit(dev, {"site/app.js": APP_JS_V1, "site/style.css": STYLE}, "Add the site")
    second = commit(dev, {"site/app.js": APP_JS_V2}, "Move the API")
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text(APP_JS_V1)
    (static / "style.css").write_text(STYLE + "/* hot-fix */\n")
    dev_git, prod_git = deploy_facts(dev, dev / "site"), deploy_facts(dev, static, repos=False)
    versions = dev_git["deploy_dirs"]["site"]["versions"]
    assert versions["repo"] == "app" and versions["complete"]
    assert [v["commit"] for v in versions["files"]["app.js"]] == [second, first]
    assert "API_BASE" not in json.dumps(dev_git)  # fingerprints, never content
    git_cells = {"dev": dev_git, "prod": prod_git}
    findings = with_ids(git_diff.diff(["dev", "prod"], git_cells, {"baseline": "dev", "production": {"prod"}}))
    assert sorted(f["key"] for f in findings if f["check"] == "git.file_changed") == ["app.js", "style.css"]
    analysis = root_causes.analyse(findings, git_cells, {}, "dev", ["prod"])
    causes = {cause["kind"]: cause for cause in analysis["causes"]}
    assert sorted(causes) == ["deploy_behind", "hand_edit"]
    assert causes["deploy_behind"]["commit"]["sha"] == second
    assert [f["key"] for f in causes["deploy_behind"]["findings"]] == ["app.js"]
    assert causes["deploy_behind"]["findings"][0]["evidence"] == "the version of commit %s" % first[:10]
    assert [f["key"] for f in causes["hand_edit"]["findings"]] == ["style.css"]
    assert causes["hand_edit"]["files"] == ["site/style.css"]
    plan = {step["action"]: step for step in root_causes.stabilization_plan(analysis, findings, {})}
    assert "style.css" in plan["merge_back"]["text"]
    ids = {f["key"]: f["id"] for f in findings}
    assert ids["style.css"] in {f["id"] for f in plan["merge_back"]["findings"]}


def test_a_cut_history_makes_no_hand_edit_claim(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(dev, {"site/app.js": APP_JS_V1}, "Add the site")
    for number in range(3):
        commit(dev, {"site/app.js": APP_JS_V1 + "// %d\n" % number}, "Tweak %d" % number)
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text("something else\n")
    request = {"project_dir": None, "repos": [{"name": "app", "path": str(dev)}], "history_limit": 2}
    dev_git = collect_git(dict(request, deploy_dirs=[{"name": "site", "path": str(dev / "site")}]), KEY)
    prod_git = deploy_facts(dev, static, repos=False)
    assert dev_git["deploy_dirs"]["site"]["versions"]["complete"] is False
    git_cells = {"dev": dev_git, "prod": prod_git}
    findings = with_ids(git_diff.diff(["dev", "prod"], git_cells, {"baseline": "dev", "production": {"prod"}}))
    analysis = root_causes.analyse(findings, git_cells, {}, "dev", ["prod"])
    assert analysis["causes"] == []
    (unexplained,) = [item for item in analysis["unexplained"] if item["key"] == "app.js"]
    assert "cut" in unexplained["reason"]


def compose_cells(dev, prod):
    def docker(root):
        stacks = collect_stacks([{"name": "app", "files": ["docker/compose.yml"]}], str(root), KEY)
        return {"stacks": stacks, "engine": {"status": "ok", "reason": None, "containers": [], "images": []}}

    return {"dev": docker(dev), "prod": docker(prod)}


def test_compose_findings_link_to_the_commit_that_changes_the_stack_files(tmp_path):
    dev, prod = tmp_path / "dev", tmp_path / "prod"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(dev, {"docker/compose.yml": COMPOSE_V1, "web/Dockerfile": "FROM python:3.11\n"}, "Initial")
    git(tmp_path, "clone", "-q", str(dev), str(prod))
    bump = commit(dev, {"docker/compose.yml": COMPOSE_V2}, "Release 2.0")
    git_cells = {"dev": git_facts(dev), "prod": git_facts(prod)}
    docker_cells = compose_cells(dev, prod)
    context = {"baseline": "dev", "production": {"prod"}}
    findings = with_ids(docker_diff.diff(["dev", "prod"], docker_cells, context))
    image = [f for f in findings if f["key"].startswith("services.web.image") and f["kind"] == "changed"]
    assert image, findings
    analysis = root_causes.analyse(findings, git_cells, {}, "dev", ["prod"], docker_cells, {"prod": ["app"]})
    (cause,) = [c for c in analysis["causes"] if c["kind"] == "compose_commit"]
    assert cause["commit"]["sha"] == bump and cause["files"] == ["docker/compose.yml"]
    assert {f["id"] for f in image} <= {f["id"] for f in cause["findings"]}
    assert all(f["evidence"] == "changes docker/compose.yml" for f in cause["findings"])
    plan = {step["action"]: step for step in root_causes.stabilization_plan(analysis, findings, {})}
    assert "docker/compose.yml" in plan["deploy"]["text"]


def test_compose_findings_from_files_in_no_commit_and_from_no_repository(tmp_path):
    dev, prod = tmp_path / "dev", tmp_path / "prod"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(dev, {"docker/compose.yml": COMPOSE_V1}, "Initial")
    git(tmp_path, "clone", "-q", str(dev), str(prod))
    (prod / "docker" / "compose.yml").write_text(COMPOSE_V2)  # edited by hand on prod, not committed
    git_cells = {"dev": git_facts(dev), "prod": git_facts(prod)}
    docker_cells = compose_cells(dev, prod)
    findings = with_ids(docker_diff.diff(["dev", "prod"], docker_cells, {"baseline": "dev", "production": {"prod"}}))
    analysis = root_causes.analyse(findings, git_cells, {}, "dev", ["prod"], docker_cells, {"prod": ["app"]})
    (cause,) = analysis["causes"]
    assert cause["kind"] == "uncommitted_config" and cause["commit"] is None
    assert cause["files"] == ["docker/compose.yml"]
    plan = {step["action"]: step for step in root_causes.stabilization_plan(analysis, findings, {})}
    assert {f["id"] for f in cause["findings"]} <= {f["id"] for f in plan["merge_back"]["findings"]}
    # The same stack outside any repository: no cause, and the reason says why.
    outside = {"dev": git_facts(dev), "prod": {"repos": {}, "deploy_dirs": {}}}
    analysis = root_causes.analyse(findings, outside, {}, "dev", ["prod"], docker_cells, {"prod": []})
    assert analysis["causes"] == []
    reasons = {item["reason"] for item in analysis["unexplained"] if item["area"] == "docker"}
    assert reasons and all("in no repository" in reason for reason in reasons)


def test_deployed_files_in_the_targets_own_repository_name_its_hot_fixes(tmp_path):
    """prod deploys from its own checkout: one file changed by a commit made only on prod, one
    edited in place and not committed."""
    dev, prod = tmp_path / "dev", tmp_path / "prod"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(dev, {"site/app.js": APP_JS_V1, "site/style.css": STYLE}, "Add the site")
    git(tmp_path, "clone", "-q", str(dev), str(prod))
    hotfix = commit(prod, {"site/app.js": APP_JS_V2}, "Hotfix the API base on the server")
    (prod / "site" / "style.css").write_text(STYLE + "/* edited in place */\n")
    git_cells = {"dev": deploy_facts(dev, dev / "site"), "prod": deploy_facts(prod, prod / "site")}
    findings = with_ids(git_diff.diff(["dev", "prod"], git_cells, {"baseline": "dev", "production": {"prod"}}))
    analysis = root_causes.analyse(findings, git_cells, {}, "dev", ["prod"])
    causes = {cause["findings"][0]["key"]: cause for cause in analysis["causes"]}
    assert causes["app.js"]["kind"] == "hotfix_commit" and causes["app.js"]["commit"]["sha"] == hotfix
    assert causes["style.css"]["kind"] == "hand_edit" and causes["style.css"]["commit"] is None
    assert causes["style.css"]["findings"][0]["evidence"] == "uncommitted edit in app on prod"


# ---------------------------------------------------------------- migrations that change, drop or rename

ALEMBIC_0003 = '''\
"""Users: a longer display name, no more legacy flags.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.alter_column("users", "display_name", type_=sa.String(length=120), existing_nullable=True)
    op.alter_column("tasks", "priority", existing_type=sa.SmallInteger(), nullable=False)
    op.alter_column("users", "tz", new_column_name="timezone")
    op.drop_column("users", "legacy_flags")
    op.drop_index(op.f("ix_tasks_owner"), table_name="tasks")
    op.rename_table("todo_items", "tasks_archive")
    op.drop_table("old_sessions")


def downgrade() -> None:
    op.create_table("old_sessions", sa.Column("id", sa.Integer, primary_key=True))
    op.rename_table("tasks_archive", "todo_items")
    op.create_index(op.f("ix_tasks_owner"), "tasks", ["user_id"])
    op.add_column("users", sa.Column("legacy_flags", sa.Integer))
    op.alter_column("users", "timezone", new_column_name="tz")
'''
DJANGO_0004 = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("assistant", "0003_user_avatar_url")]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="display_name",
            field=models.CharField(max_length=120, null=True),
        ),
        migrations.RemoveField(
            model_name="task",
            name="legacy_flags",
        ),
        migrations.RenameField(
            model_name="user",
            old_name="tz",
            new_name="timezone",
        ),
        migrations.DeleteModel(
            name="OldSession",
        ),
        migrations.RenameModel(
            old_name="TodoItem",
            new_name="ArchivedTask",
        ),
        migrations.RemoveIndex(
            model_name="task",
            name="task_owner_idx",
        ),
    ]
"""
RAILS_MIGRATION = """\
class TightenUsers < ActiveRecord::Migration[7.1]
  def up
    change_column :users, :display_name, :string, limit: 120
    change_column_null :tasks, :priority, false
    change_column_default :users, :timezone, from: "America/Toronto", to: "UTC"
    rename_column :users, :tz, :timezone_name
    remove_column :users, :legacy_flags
    remove_index :tasks, name: "index_tasks_on_owner"
    rename_table :todo_items, :archived_tasks
    drop_table :old_sessions
  end

  def down
    create_table :old_sessions
    add_column :users, :legacy_flags, :integer
    rename_column :users, :timezone_name, :tz
  end
end
"""
SQL_MIGRATION = """\
-- V7: tighten the users table (Flyway)
ALTER TABLE ONLY public.users
    ALTER COLUMN display_name TYPE character varying(120),
    ALTER timezone SET DEFAULT 'UTC',
    ALTER COLUMN email SET NOT NULL,
    DROP COLUMN IF EXISTS legacy_flags,
    ADD COLUMN avatar_url text,
    ADD CONSTRAINT users_email_key UNIQUE (email),
    DROP CONSTRAINT users_old_check;
ALTER TABLE public.users RENAME COLUMN tz TO timezone_name;
ALTER TABLE IF EXISTS public.todo_items RENAME TO archived_tasks;
ALTER TABLE public.tasks ALTER COLUMN priority SET DATA TYPE integer;
DROP TABLE IF EXISTS public.old_sessions, "audit_log" CASCADE;
DROP INDEX CONCURRENTLY IF EXISTS public.tasks_owner_idx;
ALTER INDEX tasks_due_idx RENAME TO tasks_due_at_idx;
"""
SEQUELIZE_MIGRATION = """\
'use strict';

module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.changeColumn('users', 'display_name', { type: Sequelize.STRING(120) });
    await queryInterface.removeColumn('users', 'legacy_flags');
    await queryInterface.renameColumn('users', 'tz', 'timezone');
    await queryInterface.removeIndex('tasks', 'tasks_owner_idx');
    await queryInterface.dropTable('old_sessions');
  },

  async down(queryInterface, Sequelize) {
    await queryInterface.createTable('old_sessions', { id: Sequelize.INTEGER });
    await queryInterface.addColumn('users', 'legacy_flags', Sequelize.INTEGER);
  },
};
"""


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "migrations/versions/0003_tighten_users.py",
            ALEMBIC_0003,
            {
                "altered_columns": ["tasks.priority", "users.display_name", "users.tz"],
                "columns": ["users.timezone"],
                "dropped_columns": ["users.legacy_flags", "users.tz"],
                "dropped_indexes": ["ix_tasks_owner"],
                "dropped_tables": ["old_sessions", "todo_items"],
                "tables": ["tasks_archive"],
            },
        ),
        (
            "assistant/migrations/0004_tighten_users.py",
            DJANGO_0004,
            {
                "altered_columns": ["user.display_name"],
                "columns": ["user.timezone"],
                "dropped_columns": ["task.legacy_flags", "user.tz"],
                "dropped_indexes": ["task_owner_idx"],
                "dropped_tables": ["OldSession", "TodoItem"],
                "tables": ["ArchivedTask"],
            },
        ),
        (
            "db/migrate/20250301120000_tighten_users.rb",
            RAILS_MIGRATION,
            {
                "altered_columns": ["tasks.priority", "users.display_name", "users.timezone"],
                "columns": ["users.timezone_name"],
                "dropped_columns": ["users.legacy_flags", "users.tz"],
                "dropped_indexes": ["index_tasks_on_owner"],
                "dropped_tables": ["old_sessions", "todo_items"],
                "tables": ["archived_tasks"],
            },
        ),
        (
            "db/migration/V7__tighten_users.sql",
            SQL_MIGRATION,
            {
                "altered_columns": ["tasks.priority", "users.display_name", "users.email", "users.timezone"],
                "columns": ["users.avatar_url", "users.timezone_name"],
                "dropped_columns": ["users.legacy_flags", "users.tz"],
                "dropped_indexes": ["tasks_due_idx", "tasks_owner_idx"],
                "dropped_tables": ["audit_log", "old_sessions", "todo_items"],
                "indexes": ["tasks_due_at_idx"],
                "tables": ["archived_tasks"],
            },
        ),
        (
            "migrations/20250301120000-tighten-users.js",
            SEQUELIZE_MIGRATION,
            {
                "altered_columns": ["users.display_name"],
                "columns": ["users.timezone"],
                "dropped_columns": ["users.legacy_flags", "users.tz"],
                "dropped_indexes": ["tasks_owner_idx"],
                "dropped_tables": ["old_sessions"],
            },
        ),
        # golang-migrate's down file and Flyway's undo file only undo: not read.
        ("migrations/000007_tighten_users.down.sql", "DROP TABLE users;\nALTER TABLE t DROP COLUMN c;", {}),
        ("db/migration/U7__tighten_users.sql", "DROP TABLE users;", {}),
    ],
)
def test_migrations_that_change_drop_or_rename(path, text, expected):
    data, sha = diff_of(path, text.splitlines())
    found = parse_diffs(data, [sha])[sha]
    assert {sort: sorted(names) for sort, names in found.items() if names} == expected


def alter_cells():
    """dev ran 0003 (display_name widened, legacy_flags dropped, tz renamed to timezone,
    users_name_idx dropped); prod is still at 0002."""
    dev_catalog, prod_catalog = catalog(), catalog()
    users = dev_catalog["tables"]["public.users"]
    users["columns"]["email"]["type"] = "character varying(255)"
    users["columns"]["timezone"] = dict(copy.deepcopy(users["columns"]["name"]), position=6)
    prod_catalog["tables"]["public.users"]["columns"]["tz"] = dict(copy.deepcopy(users["columns"]["name"]), position=6)
    prod_catalog["tables"]["public.users"]["columns"]["legacy_flags"] = dict(
        copy.deepcopy(users["columns"]["active"]), position=7
    )
    del users["indexes"]["users_name_idx"]
    users["columns"]["updated_at"]["default"] = None  # changed by hand on dev: no migration says so
    dev = database(dev_catalog, tools={"alembic": migrations("alembic", ["0003"])})
    prod = database(prod_catalog, tools={"alembic": migrations("alembic", ["0002"])})
    return facts(app=dev), facts(app=prod)


ALEMBIC_ALTER = """\
import sqlalchemy as sa
from alembic import op

revision = "0003"


def upgrade():
    op.alter_column("users", "email", type_=sa.String(length=255))
    op.drop_column("users", "legacy_flags")
    op.alter_column("users", "tz", new_column_name="timezone")
    op.drop_index("users_name_idx", table_name="users")


def downgrade():
    op.create_index("users_name_idx", "users", ["name"])
    op.add_column("users", sa.Column("legacy_flags", sa.Boolean))
    op.alter_column("users", "email", type_=sa.String(length=120))
"""


def test_a_pending_migration_that_changes_drops_or_renames_explains_those_findings(tmp_path):
    dev, prod = tmp_path / "dev", tmp_path / "prod"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(dev, {"migrations/versions/0002_base.py": "# base\n"}, "Initial")
    commit(dev, {"README.md": "app\n"}, "Docs")
    git(tmp_path, "clone", "-q", str(dev), str(prod))
    change = commit(dev, {"migrations/versions/0003_tighten_users.py": ALEMBIC_ALTER}, "Tighten users")
    git_cells = {"dev": git_facts(dev), "prod": git_facts(prod)}
    findings = with_ids(
        run(*alter_cells()) + git_diff.diff(["dev", "prod"], git_cells, {"baseline": "dev", "production": {"prod"}})
    )
    kinds = {f["key"]: f["kind"] for f in findings if f["area"] == "postgres"}
    assert kinds["public.users.email"] == "changed" and kinds["public.users.legacy_flags"] == "extra"
    assert kinds["public.users.tz"] == "extra" and kinds["public.users.timezone"] == "missing"
    assert kinds["public.users.users_name_idx"] == "extra"
    analysis = root_causes.analyse(findings, git_cells, {}, "dev", ["prod"])
    (cause,) = [c for c in analysis["causes"] if c["kind"] == "pending_migration"]
    assert cause["commit"]["sha"] == change
    assert {f["key"]: f["evidence"] for f in cause["findings"]} == {
        "migrations.alembic": "adds alembic migration migrations/versions/0003_tighten_users.py",
        "public.users.email": "changes column users.email",
        "public.users.legacy_flags": "drops column users.legacy_flags",
        "public.users.tz": "drops column users.tz",
        "public.users.timezone": "adds column users.timezone",
        "public.users.users_name_idx": "drops index users_name_idx",
    }
    # Precision: the default changed by hand is manual drift; the downgrade explains nothing.
    assert keys(analysis["manual_schema_drift"]) == ["public.users.updated_at"]


def test_a_commit_only_the_target_has_explains_the_other_way_round():
    only = {
        "sha": "b" * 40,
        "subject": "Hotfix: drop the name index on the server",
        "files": ["migrations/versions/0003_hotfix.py"],
        "introduces": dict(
            {sort: [] for sort in ("tables", "columns", "indexes", "keys", "settings", "altered_columns")},
            dropped_tables=[],
            dropped_columns=[],
            dropped_indexes=["users_name_idx"],
        ),
    }
    dev_catalog, prod_catalog = catalog(), catalog()
    del prod_catalog["tables"]["public.users"]["indexes"]["users_name_idx"]
    findings = with_ids(run(facts(app=database(dev_catalog)), facts(app=database(prod_catalog))))
    placement = {"repo": "app", "target": "prod", "lacking": [], "only": [only]}
    (cause,) = root_causes._commit_causes(placement, findings, set())
    assert cause["kind"] == "target_only_migration"
    assert [(f["key"], f["evidence"]) for f in cause["findings"]] == [
        ("public.users.users_name_idx", "drops index users_name_idx")
    ]


# ---------------------------------------------------------------- Django settings


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    if settings.FEATURE_NEW_UI:", ["FEATURE_NEW_UI"]),
        ('    interval = getattr(settings, "REMINDER_INTERVAL_SECONDS", 300)', ["REMINDER_INTERVAL_SECONDS"]),
        ("    debug = settings.DEBUG or settings.SECRET_KEY", []),  # Django's own settings
        ("    settings.configure(default_settings=x)", []),  # not a setting
        ("    settings.FEATURE_NEW_UI = True", []),  # a test setting it, not reading it
        ("    if settings.FEATURE_NEW_UI == 'on':", ["FEATURE_NEW_UI"]),
    ],
)
def test_django_settings_read_by_python_code_are_kept_apart_from_keys(line, expected):
    data, sha = diff_of("assistant/views.py", [line])
    found = parse_diffs(data, [sha])[sha]
    assert found["settings"] == expected and found["keys"] == []


def test_settings_x_is_python_only():
    data, sha = diff_of("web/src/app.js", ["if (settings.FEATURE_NEW_UI) {}"])
    assert parse_diffs(data, [sha])[sha]["settings"] == []


def test_a_django_setting_explains_a_missing_key_of_its_name_and_nothing_more(tmp_path):
    dev, prod = tmp_path / "dev", tmp_path / "prod"
    dev.mkdir()
    git(dev, "init", "-q", "-b", "main")
    commit(dev, {"assistant/views.py": "from django.conf import settings\n"}, "Initial")
    commit(dev, {"README.md": "app\n"}, "Docs")
    git(tmp_path, "clone", "-q", str(dev), str(prod))
    views = "from django.conf import settings\n\n\ndef home(request):\n    if settings.FEATURE_NEW_UI:\n"
    views += "        return settings.WELCOME_BANNER\n"
    flag = commit(dev, {"assistant/views.py": views}, "Show the new UI behind a flag")
    git_cells = {"dev": git_facts(dev), "prod": git_facts(prod)}
    env_cells = {
        "dev": {"files": {"app": env_file({"FEATURE_NEW_UI": plain("true"), "APP_NAME": plain("app")})}},
        "prod": {"files": {"app": env_file({"APP_NAME": plain("app")})}},
    }
    findings = with_ids(env_diff.diff(["dev", "prod"], env_cells, {"baseline": "dev", "production": {"prod"}}))
    analysis = root_causes.analyse(findings, git_cells, env_cells, "dev", ["prod"])
    (cause,) = analysis["causes"]
    assert cause["kind"] == "commit_keys" and cause["commit"]["sha"] == flag
    assert [(f["key"], f["evidence"]) for f in cause["findings"]] == [
        ("FEATURE_NEW_UI", "reads settings.FEATURE_NEW_UI (a Django setting of that name)")
    ]
    # WELCOME_BANNER may well be defined in settings.py itself: never claimed as an env key to define.
    assert analysis["undefined_keys"] == []


# ---------------------------------------------------------------- the restart step


def docker_finding(stack, key, check, kind="policy", expected=False):
    return {
        "id": "%s-%s" % (stack, key),
        "area": "docker",
        "subject": stack,
        "key": key,
        "check": check,
        "kind": kind,
        "expected": expected,
        "environments": ["prod"],
    }


EMPTY_ANALYSIS = {"placements": [], "causes": [], "manual_schema_drift": [], "unexplained": [], "undefined_keys": []}


def test_the_restart_step_names_each_stacks_services_and_its_project():
    findings = [
        docker_finding("app", "services.web.image", "docker.image_mismatch"),
        docker_finding("app", "services.worker.environment.LOG_LEVEL", "docker.env_changed", "changed"),
        docker_finding("app", "services.web.ports", "docker.declared_changed", "changed"),
        docker_finding("metrics", "services.prometheus", "docker.not_running"),
        docker_finding("metrics", "services.grafana.image", "docker.unhealthy"),  # watched, not restarted
    ]
    plan = root_causes.stabilization_plan(EMPTY_ANALYSIS, findings, {}, {"app": "ai_assistant"})
    assert [step["action"] for step in plan] == ["restart", "verify"]
    restart = plan[0]
    assert restart["text"] == (
        "Restart the services whose image or configuration changed: app: web, worker; metrics: prometheus."
    )
    assert restart["commands"] == [
        "docker compose -p ai_assistant up -d web worker",
        "docker compose -p metrics up -d prometheus",  # no project known: the stack's name
    ]
    assert {f["id"] for f in restart["findings"]} == {f["id"] for f in findings[:4]}
    assert "docker compose up -d" in restart["rollback"]
    assert "grafana" not in restart["text"] and "metrics services.grafana.image" in plan[1]["text"]


def test_the_restart_step_quotes_names_from_hosts():
    findings = [docker_finding("app", "services.web;reboot.image", "docker.image_mismatch")]
    (restart, _) = root_causes.stabilization_plan(EMPTY_ANALYSIS, findings, {}, {"app": "x y"})
    assert restart["commands"] == ["docker compose -p 'x y' up -d 'web;reboot'"]


@pytest.mark.parametrize(
    "findings",
    [
        [],
        [docker_finding("app", "services.web.image", "docker.image_mismatch", expected=True)],  # a rule expects it
        [docker_finding("app", "services.web", "docker.unhealthy")],  # health: watched in verify only
        [docker_finding("app", "engine", "docker.image_mismatch")],  # not a service
    ],
)
def test_no_restart_step_without_a_service_to_restart(findings):
    plan = root_causes.stabilization_plan(EMPTY_ANALYSIS, findings, {})
    assert "restart" not in [step["action"] for step in plan]


@pytest.mark.parametrize(
    ("key", "schema"),
    [
        ("public.users.avatar_url", True),
        ("public.tasks.tasks_status_due_at_idx", True),
        ("data.public.plans", False),  # rows differ: no DDL made that
        ("settings.work_mem", False),
        ("migrations.alembic", False),
    ],
)
def test_what_counts_as_a_schema_finding(key, schema):
    finding = {"area": "postgres", "subject": "app", "key": key, "kind": "changed"}
    assert root_causes.is_schema_finding(finding) is schema
