"""Root causes and the stabilization plan end to end: compare.yml against the real lab, where prod
lacks dev's three commits (one adds alembic migration 0002, which creates the reminders table;
one makes the worker read REMINDER_INTERVAL_SECONDS) and has a hot-fix of its own; its static
site has app.js edited by hand, and its compose stack is declared in files that are untracked
in its checkout."""

import jsonschema

from ansible_collections.envparity.audit.plugins.plugin_utils.root_causes import RESTART_CHECKS

from .test_env_audit import SCHEMA


def ids_of(items):
    return {item["id"] for item in items}


def refs(items):
    return sorted((item["area"], item["subject"], item["key"]) for item in items)


def test_lab_links_and_plan(audit, lab):
    result = audit()
    assert result.rc == 0, result.stdout
    report = result.report
    jsonschema.validate(report, SCHEMA)
    causes = report["root_causes"]
    (placement,) = causes["placements"]
    assert (placement["repo"], placement["target"], placement["relation"]) == ("app", "prod", "diverged")
    assert (len(placement["lacking"]), len(placement["only"])) == (3, 1)
    (migration,) = [cause for cause in causes["causes"] if cause["kind"] == "pending_migration"]
    assert migration["commit"]["subject"] == "Add the reminders table"
    assert migration["files"] == ["migrations/versions/0002_add_reminders.py"]
    assert refs(migration["findings"]) == [
        ("postgres", "app", "migrations.alembic"),
        ("postgres", "app", "public.reminders"),
    ]
    # Precision: the lab's other schema differences were made by hand (no migration creates them),
    # among them the index created CONCURRENTLY on prod as a hot-fix (lab/postgres_area.py HOTFIXES),
    # which no django_migrations row, alembic revision or migration file records.
    manual = refs(causes["manual_schema_drift"])
    assert ("postgres", "app", "public.users.avatar_url") in manual
    assert ("postgres", "app", "public.tasks.tasks_status_due_at_idx") in manual
    assert ("postgres", "app", "public.reminders") not in manual
    linked = {item["key"] for cause in causes["causes"] for item in cause["findings"]}
    assert "public.tasks.tasks_status_due_at_idx" not in linked
    # FEATURE_NEW_UI is only in dev's env file: no commit introduces it, and that is said.
    unexplained = {(item["area"], item["key"]): item["reason"] for item in causes["unexplained"]}
    assert unexplained[("env", "FEATURE_NEW_UI")] == "no commit the target lacks introduces it"
    assert [(u["key"], u["target"]) for u in causes["undefined_keys"]] == [("REMINDER_INTERVAL_SECONDS", "prod")]
    # The deployed file edited by hand matches none of its committed versions in dev's repository.
    (hand_edit,) = [cause for cause in causes["causes"] if cause["kind"] == "hand_edit"]
    assert refs(hand_edit["findings"]) == [("git", "site", "app.js")] and hand_edit["files"] == ["site/app.js"]
    # prod's stack reads untracked compose files: its declared differences have that cause, and no
    # commit is blamed for them.
    (config,) = [cause for cause in causes["causes"] if cause["kind"] == "uncommitted_config"]
    assert config["commit"] is None and "docker/compose.prod.yml" in config["files"]
    assert {item["area"] for item in config["findings"]} == {"docker"}
    assert not [cause for cause in causes["causes"] if cause["kind"] in ("compose_commit", "deploy_behind")]
    # Every reference names a finding of the report by its id, as that finding's own fields say.
    by_id = {finding["id"]: finding for finding in report["findings"]}
    referenced = [item for cause in causes["causes"] for item in cause["findings"]] + causes["unexplained"]
    for item in referenced + [item for step in report["stabilization_plan"] for item in step["findings"]]:
        finding = by_id[item["id"]]
        assert (finding["area"], finding["subject"], finding["key"], finding["check"]) == (
            item["area"],
            item["subject"],
            item["key"],
            item["check"],
        )
    plan = report["stabilization_plan"]
    actions = [step["action"] for step in plan]
    assert actions[:6] == ["merge_back", "schema_drift", "backup", "apply_migrations", "config", "deploy"]
    assert actions[-1] == "verify"
    steps = {step["action"]: step for step in plan}
    check_schema_drift_step(report, steps)
    check_restart_step(report, steps, actions)
    assert ids_of(hand_edit["findings"]) | ids_of(config["findings"]) <= ids_of(steps["merge_back"]["findings"])
    assert steps["backup"]["commands"][0].startswith("docker exec ai_assistant-db-1 pg_dump ")
    assert steps["apply_migrations"]["commands"] == ["alembic upgrade head"]
    assert "## Stabilization plan" in result.markdown and "## Root causes" in result.markdown
    assert result.markdown.index("## Stabilization plan") < result.markdown.index("## Action plan")


def check_schema_drift_step(report, steps):
    """The index made by hand on prod is manual schema drift, and the plan's schema_drift step
    (and its verify) lists it with every other difference no migration explains."""
    causes = report["root_causes"]
    (hotfix,) = [f for f in report["findings"] if f["key"] == "public.tasks.tasks_status_due_at_idx"]
    assert hotfix["kind"] == "extra" and hotfix["check"] == "postgres.index_extra"
    assert hotfix["id"] in ids_of(steps["schema_drift"]["findings"])
    assert ids_of(steps["schema_drift"]["findings"]) == ids_of(causes["manual_schema_drift"])
    assert steps["schema_drift"]["text"].startswith("Record in a migration the schema changes no migration explains")
    assert hotfix["id"] in ids_of(steps["verify"]["findings"])
    assert not [item for item in causes["manual_schema_drift"] if item["key"].startswith("data.")]  # rows, not DDL


def check_restart_step(report, steps, actions):
    # prod's stack differs from dev's in services' images and configuration: one restart, for the
    # project Compose names prod's stack, of exactly the services those findings name.
    restarted = [
        f
        for f in report["findings"]
        if f["area"] == "docker" and f["check"] in RESTART_CHECKS and not f["expected"] and f["subject"] == "app"
    ]
    services = sorted({f["key"].split(".")[1] for f in restarted})
    assert actions[-2] == "restart" and services
    assert "docker compose -p ai_assistant up -d %s" % " ".join(services) in steps["restart"]["commands"]
    assert ids_of(restarted) <= ids_of(steps["restart"]["findings"])
