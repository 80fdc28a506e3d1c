"""The git area of the lab: dev ahead of prod, prod hot-fixed by hand, and a deploy without git.

On top of the project area's initial commit (identical in dev and prod), both checkouts get one
more shared commit (the application's code, settings and first migration, tagged v1.0.0). Then:

- dev (root): three commits prod lacks — the reminders feature with a static site/ (ordinary
  code), a migration (migrations/versions/0002_add_reminders.py) and a settings change
  (config/settings.py); one stash entry; a staged new file, a modified tracked file and an
  untracked file; remote origin over ssh (no credential).
- prod (deploy): one commit dev lacks (a hot-fix committed on the server: the histories
  diverge); an uncommitted hot-fix edit of a tracked file and an untracked leftover; remote
  origin over https with a token in the URL (a canary; git.example.invalid is never contacted).
- /home/deploy/ai_assistant_static (deploy): a copy of dev's site/ deployed without git (as
  rsync leaves it), with one file edited by hand.

Commits have fixed authors and dates, so their ids are the same on every machine. Every step
first looks (read-only: `git --no-optional-locks`, nothing that rewrites the index) and acts only
when the planted state is missing, so a second `up` changes nothing; `replant` only rewrites
prod's remote URL with a fresh canary.

The audit is configured with repo `app` (path "." in both) and deploy dir `site` (dev: "site"
in dev's project dir; prod: /home/deploy/ai_assistant_static). PLANTED lists the findings the
audit must report for this area, no more.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from labcore import (
    DEV,
    PROD,
    Ctx,
    Env,
    LabError,
    canary_maker,
    ensure_dir,
    remove_tree,
    run,
    write_file,
)
from project_area import GIT_ENV

NAME = "git"
CANARY_PREFIX = "git."
TOKEN_CANARY = "git.prod.origin_token"
REPO_SUBJECT = "app"
SITE_SUBJECT = "site"
STATIC_DIR = Path("/home/deploy/ai_assistant_static")
TAG = "v1.0.0"
DEV_ORIGIN = "git@git.example.invalid:team/ai_assistant.git"
PROD_ORIGIN = "https://deploy:{token}@git.example.invalid/team/ai_assistant.git"
EDITED_SITE_FILE = "app.js"
LAB_AUTHOR = ("lab", "lab@invalid")
DEPLOY_AUTHOR = ("deploy", "deploy@ai-assistant.invalid")


def _finding(subject: str, key: str, kind: str, check: str, expected: bool = False) -> dict:
    return {"area": "git", "subject": subject, "key": key, "kind": kind, "check": check, "expected": expected}


# What the audit must find (dev is the baseline). No values here: the manifest never holds a
# secret, and commit ids are the audit's to find.
PLANTED = [
    # prod has a commit dev lacks, and lacks dev's three (one migration, one config change).
    _finding(REPO_SUBJECT, "head", "changed", "git.diverged"),
    # prod: an uncommitted hot-fix edit of app/main.py, and an untracked leftover.
    _finding(REPO_SUBJECT, "worktree.modified", "policy", "git.uncommitted_production"),
    _finding(REPO_SUBJECT, "worktree.untracked", "policy", "git.untracked_production"),
    # dev: staged, modified and untracked files, reported once (info).
    _finding(REPO_SUBJECT, "worktree.dev", "policy", "git.uncommitted_dev"),
    # dev has one stash entry, prod none.
    _finding(REPO_SUBJECT, "stash", "changed", "git.stash"),
    # dev: ssh URL without credential; prod: https URL with a token (shown masked).
    _finding(REPO_SUBJECT, "remotes.origin", "changed", "git.remote_changed"),
    # the static deploy: one file edited by hand on prod.
    _finding(SITE_SUBJECT, EDITED_SITE_FILE, "changed", "git.file_changed"),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


# ---------------------------------------------------------------- file contents

INIT = '"""Personal Assistant: the API and its background workers."""\n'

MAIN_V1 = '''\
"""The HTTP API."""

from fastapi import FastAPI

from config import settings

app = FastAPI(title=settings.APP_NAME)


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}
'''

MAIN_V2 = '''\
"""The HTTP API."""

from fastapi import FastAPI

from app.reminders import router as reminders
from config import settings

app = FastAPI(title=settings.APP_NAME)
app.include_router(reminders, prefix="/api/reminders")


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}
'''

# prod's uncommitted edit of its (older) app/main.py, made on the server during an incident.
MAIN_PROD_HOTFIX = '''\
"""The HTTP API."""

from fastapi import FastAPI

from config import settings

app = FastAPI(title=settings.APP_NAME)
# HOTFIX 2025-02-11: the load balancer probes /health/ with a trailing slash.
app.router.redirect_slashes = False


@app.get("/health")
@app.get("/health/")
def health() -> dict:
    return {"status": "ok"}
'''

WORKER_V1 = '''\
"""Celery workers: background jobs."""

from celery import Celery

from config import settings

celery = Celery("personal_assistant", broker=settings.BROKER_URL)
celery.conf.task_time_limit = 60
'''

WORKER_PROD_HOTFIX = '''\
"""Celery workers: background jobs."""

from celery import Celery

from config import settings

celery = Celery("personal_assistant", broker=settings.BROKER_URL)
# Summaries of long threads need more than a minute.
celery.conf.task_time_limit = 300
'''

SETTINGS_V1 = '''\
"""Settings from the environment (config/*.env), with defaults for what is not secret."""

import os

APP_NAME = os.environ.get("APP_NAME", "Personal Assistant")
BROKER_URL = os.environ.get("BROKER_URL", "redis://redis:6379/0")
WORKERS = int(os.environ.get("WORKERS", "4"))
'''

SETTINGS_V2 = (
    SETTINGS_V1
    + """\
# How often the worker looks for reminders that are due.
REMINDER_INTERVAL_SECONDS = int(os.environ.get("REMINDER_INTERVAL_SECONDS", "300"))
"""
)

# dev's stash: an experiment with a shorter interval, put aside.
SETTINGS_STASHED = (
    SETTINGS_V1
    + """\
# How often the worker looks for reminders that are due.
REMINDER_INTERVAL_SECONDS = int(os.environ.get("REMINDER_INTERVAL_SECONDS", "60"))
"""
)

MIGRATION_0001 = '''\
"""Initial schema: users.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("users")
'''

MIGRATION_0002 = '''\
"""Add the reminders table.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reminders")
'''

REMINDERS_V1 = '''\
"""Reminders: create and list them."""

from fastapi import APIRouter

router = APIRouter()


@router.get("/")
def list_reminders() -> list:
    return []
'''

# dev's unstaged edit of a tracked file.
REMINDERS_DEV_EDIT = (
    REMINDERS_V1
    + """

@router.post("/")
def create_reminder(text: str) -> dict:
    return {"text": text}
"""
)

# dev's staged new file.
NOTIFICATIONS = '''\
"""Notifications: e-mail a reminder when it is due."""


def notify(user_email: str, text: str) -> None:
    raise NotImplementedError
'''

# dev's untracked file.
TODO = """\
# TODO

- reminders: snooze button
- notifications: pick the SMTP provider
"""

SITE_INDEX = """\
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Personal Assistant</title>
  <link rel="stylesheet" href="style.css">
</head>
<body>
  <h1>Reminders</h1>
  <ul id="reminders"></ul>
  <script src="app.js"></script>
</body>
</html>
"""

SITE_APP_JS = """\
const API_BASE = "/api";

async function loadReminders() {
  const response = await fetch(`${API_BASE}/reminders/`);
  const list = document.getElementById("reminders");
  for (const reminder of await response.json()) {
    const item = document.createElement("li");
    item.textContent = reminder.text;
    list.appendChild(item);
  }
}

loadReminders();
"""

# Edited by hand on the static deploy: the API moved to its own host.
SITE_APP_JS_PROD = SITE_APP_JS.replace('const API_BASE = "/api";', 'const API_BASE = "https://api.ianleblanc.ca";')

SITE_STYLE = """\
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }
h1 { font-size: 1.5rem; }
"""


# ---------------------------------------------------------------- the plan


@dataclasses.dataclass(frozen=True)
class Commit:
    subject: str
    date: str
    files: dict  # relative path -> content (every file 0644)
    author: tuple[str, str] = LAB_AUTHOR


SHARED = [
    Commit(
        "Add the API, the worker, settings and the first migration",
        "2025-01-13T10:00:00+00:00",
        {
            "app/__init__.py": INIT,
            "app/main.py": MAIN_V1,
            "app/worker.py": WORKER_V1,
            "config/settings.py": SETTINGS_V1,
            "migrations/versions/0001_initial.py": MIGRATION_0001,
        },
    ),
]
DEV_ONLY = [
    Commit(
        "Add reminders to the API and the web page",
        "2025-02-03T10:00:00+00:00",
        {
            "app/main.py": MAIN_V2,
            "app/reminders.py": REMINDERS_V1,
            "site/index.html": SITE_INDEX,
            "site/app.js": SITE_APP_JS,
            "site/style.css": SITE_STYLE,
        },
    ),
    Commit(
        "Add the reminders table",
        "2025-02-04T10:00:00+00:00",
        {"migrations/versions/0002_add_reminders.py": MIGRATION_0002},
    ),
    Commit(
        "Check for due reminders every 5 minutes",
        "2025-02-05T10:00:00+00:00",
        {"config/settings.py": SETTINGS_V2},
    ),
]
PROD_ONLY = [
    Commit(
        "Hotfix: give the worker more time per task",
        "2025-02-10T22:30:00+00:00",
        {"app/worker.py": WORKER_PROD_HOTFIX},
        DEPLOY_AUTHOR,
    ),
]
COMMITS = {DEV.name: SHARED + DEV_ONLY, PROD.name: SHARED + PROD_ONLY}
INITIAL_SUBJECT = "Initial commit"  # project_area's commit, under everything here

STASH_FILE = "config/settings.py"
STASH_MESSAGE = "try a one-minute reminder interval"
STASH_DATE = "2025-02-06T09:00:00+00:00"
STAGED_FILE = "app/notifications.py"

# Working-tree state over HEAD: path -> content.
WORKTREE = {
    DEV.name: {
        STAGED_FILE: NOTIFICATIONS,  # staged (added to the index below)
        "app/reminders.py": REMINDERS_DEV_EDIT,  # modified, not staged
        "notes/todo.md": TODO,  # untracked
    },
    PROD.name: {
        "app/main.py": MAIN_PROD_HOTFIX,  # the uncommitted hot-fix
        "app/main.py.orig": MAIN_V1,  # untracked leftover of the hot-fix
    },
}
STATIC_FILES = {
    "index.html": SITE_INDEX,
    EDITED_SITE_FILE: SITE_APP_JS_PROD,
    "style.css": SITE_STYLE,
}


def _head_files(env: Env) -> dict[str, str]:
    files: dict[str, str] = {}
    for commit in COMMITS[env.name]:
        files.update(commit.files)
    return files


# ---------------------------------------------------------------- git


def _git(env: Env, *args: str, date: str | None = None, author: tuple[str, str] = LAB_AUTHOR, check: bool = True):
    """git in the checkout as its owner, with a fixed identity and date and no user config."""
    name, email = author
    extra = {
        "HOME": str(Path("~" + env.owner).expanduser()),
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    if date:
        extra["GIT_AUTHOR_DATE"] = extra["GIT_COMMITTER_DATE"] = date
    return run(
        ["git", "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", "-C", str(env.project_dir), *args],
        user=env.owner,
        env={**GIT_ENV, **extra},
        check=check,
    )


def _look(env: Env, *args: str, check: bool = True):
    """A read-only query: never refreshes or rewrites the index (a second `up` changes nothing)."""
    return _git(env, "--no-optional-locks", *args, check=check)


def _history(env: Env) -> list[tuple[str, str]]:
    """(sha, subject) of HEAD's first-parent history, oldest first."""
    out = _look(env, "log", "--first-parent", "--reverse", "--format=%H %s", "HEAD").stdout
    history = []
    for line in out.splitlines():
        sha, _, subject = line.partition(" ")
        history.append((sha, subject))
    return history


def _ensure_history(ctx: Ctx, env: Env) -> None:
    commits = COMMITS[env.name]
    subjects = [subject for _, subject in _history(env)]
    wanted = [INITIAL_SUBJECT] + [commit.subject for commit in commits]
    if subjects != wanted[: len(subjects)]:
        raise LabError(
            "%s has a history the lab did not plant (HEAD is %r); `labctl down --purge` then `labctl up` rebuilds it"
            % (env.project_dir, subjects[-1] if subjects else None)
        )
    for commit in commits[len(subjects) - 1 :]:
        for rel, content in sorted(commit.files.items()):
            _write(ctx, env, rel, content)
        _git(env, "add", "--", *sorted(commit.files))
        _git(env, "commit", "-q", "--no-verify", "-m", commit.subject, date=commit.date, author=commit.author)
        ctx.changed("git commit in %s: %s" % (env.project_dir, commit.subject))


def _ensure_tag(ctx: Ctx, env: Env) -> None:
    if _look(env, "rev-parse", "-q", "--verify", "refs/tags/" + TAG, check=False).returncode == 0:
        return
    shared = dict((subject, sha) for sha, subject in _history(env))[SHARED[-1].subject]
    _git(env, "tag", TAG, shared)
    ctx.changed("git tag %s in %s" % (TAG, env.project_dir))


def _ensure_stash(ctx: Ctx, env: Env) -> None:
    if _look(env, "stash", "list").stdout.strip():
        return
    _write(ctx, env, STASH_FILE, SETTINGS_STASHED)
    _git(env, "stash", "push", "-q", "-m", STASH_MESSAGE, "--", STASH_FILE, date=STASH_DATE)
    ctx.changed("git stash in %s" % env.project_dir)


def _status(env: Env) -> dict[str, str]:
    """path -> XY of `git status --porcelain`, read-only."""
    out = _look(env, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    return {entry[3:]: entry[:2] for entry in out.split("\0") if entry}


def _ensure_worktree(ctx: Ctx, env: Env) -> None:
    for rel, content in sorted({**_head_files(env), **WORKTREE[env.name]}.items()):
        _write(ctx, env, rel, content)
    if env is DEV and _status(env).get(STAGED_FILE) != "A ":
        _git(env, "add", "--", STAGED_FILE)
        ctx.changed("git add %s in %s" % (STAGED_FILE, env.project_dir))


def _ensure_remote(ctx: Ctx, env: Env, url: str) -> None:
    current = _look(env, "config", "--get", "remote.origin.url", check=False)
    if current.returncode == 0 and current.stdout.strip() == url:
        return
    if current.returncode == 0:
        _git(env, "remote", "set-url", "origin", url)
    else:
        _git(env, "remote", "add", "origin", url)
    # The URL may hold a canary: the change names the remote, never the URL.
    ctx.changed("git remote origin in %s" % env.project_dir)


def _write(ctx: Ctx, env: Env, rel: str, content: str) -> None:
    path = env.project_dir / rel
    for parent in reversed(Path(rel).parents[:-1]):
        ensure_dir(ctx, env.project_dir / parent, 0o755, env.owner)
    write_file(ctx, path, content, 0o644, env.owner)


# ---------------------------------------------------------------- area interface


def build(ctx: Ctx) -> None:
    token = ctx.canary(TOKEN_CANARY, canary_maker("ghp_", 36))
    ctx.save_canaries(CANARY_PREFIX)  # recorded before any file holds it
    for env in (DEV, PROD):
        _ensure_history(ctx, env)
        _ensure_tag(ctx, env)
    _ensure_stash(ctx, DEV)
    for env in (DEV, PROD):
        _ensure_worktree(ctx, env)
    _ensure_remote(ctx, DEV, DEV_ORIGIN)
    _ensure_remote(ctx, PROD, PROD_ORIGIN.format(token=token))
    ensure_dir(ctx, STATIC_DIR, 0o755, PROD.owner)
    for rel, content in sorted(STATIC_FILES.items()):
        write_file(ctx, STATIC_DIR / rel, content, 0o644, PROD.owner)


def status() -> list[tuple[str, bool, str]]:
    """Cheap file checks (status may run without root, and never runs git as another user)."""
    dev_git, prod_git = DEV.project_dir / ".git", PROD.project_dir / ".git"
    dev_ok = (dev_git / "refs" / "stash").is_file() and (DEV.project_dir / STAGED_FILE).is_file()
    try:
        prod_ok = '[remote "origin"]' in (prod_git / "config").read_text()
    except OSError:
        prod_ok = False
    static_ok = all((STATIC_DIR / rel).is_file() for rel in STATIC_FILES)
    return [
        ("dev git", dev_ok, "%s (ahead of prod, stash, uncommitted work)" % DEV.project_dir),
        ("prod git", prod_ok, "%s (diverged, hot-fixed, remote origin)" % PROD.project_dir),
        ("prod static", static_ok, "%s (deployed without git)" % STATIC_DIR),
    ]


def purge(ctx: Ctx) -> None:
    # The checkouts go with the project area; the static deploy is this area's own.
    if remove_tree(STATIC_DIR, allowed=(STATIC_DIR,)):
        ctx.changed("deleted %s" % STATIC_DIR)
