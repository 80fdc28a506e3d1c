"""The two checkouts of the application: dev (root, under the state dir) and prod (deploy, in
/home/deploy/ai_assistant), laid out like the seed project (config/, docker/).

Each is a git repository with ONE initial commit of the non-secret files. The committed files
come from this module and from any area that defines `repo_files(env)` (env_area contributes
docker/env.prod.example; later areas may add compose or migration files). Both checkouts commit
the same files with the same author and a fixed date, so dev and prod start on the very same
commit id: any git drift is then something an area planted on purpose.

Env files (config/*.env) are git-ignored and never committed: real teams keep them out of git,
and it lets `labctl replant` change secrets without touching history.
"""

from __future__ import annotations

from pathlib import Path

from labcore import DEV, ENVS, PROD, STATE_DIR, Ctx, Env, LabError, ensure_dir, remove_tree, run, write_file

NAME = "project"

# Fixed identity and date: identical commits in dev and prod, and no dependence on the
# machine's git configuration (a global hook or signing setting must not break the lab).
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_DATE": "2025-01-06T09:00:00+00:00",
    "GIT_COMMITTER_DATE": "2025-01-06T09:00:00+00:00",
}
GIT_IDENTITY = ["-c", "user.name=lab", "-c", "user.email=lab@invalid", "-c", "commit.gpgsign=false"]
BRANCH = "main"

README = """\
# Personal Assistant

An AI personal assistant: a FastAPI API, Celery workers and PostgreSQL, shipped with Docker
Compose.

- `config/`: environment files (`development.env`, `production.env`); never committed.
- `docker/`: compose files for dev and prod, the production env template and `deploy.sh`.

Production runs on the VM behind ianleblanc.ca; deploy with `docker/deploy.sh`.
"""

CONFIG_README = """\
# config/

Environment files live here and are git-ignored (`config/*.env`). Start production from
`docker/env.prod.example` and fill in every value.
"""

GITIGNORE = """\
# Environment files hold secrets: never commit them.
config/*.env
.env
__pycache__/
*.pyc
"""

DEPLOY_SH = """\
#!/usr/bin/env bash
# Deploy the current checkout on the production VM (run from anywhere).
set -euo pipefail
cd "$(dirname "$0")"
compose=(docker compose -f docker-compose.prod.yml --env-file ../config/production.env)
"${compose[@]}" build
"${compose[@]}" up -d --remove-orphans
"${compose[@]}" ps
"""

COMPOSE_DEV = """\
# Local development: code mounted from the laptop, PostgreSQL runs natively (not in compose).
services:
  api:
    image: personal-assistant:dev
    command: uvicorn app.main:app --host 0.0.0.0 --port 8000 --reload
    env_file: ../config/development.env
    ports:
      - "8000:8000"
    volumes:
      - ..:/app
  worker:
    image: personal-assistant:dev
    command: celery -A app.worker worker
    env_file: ../config/development.env
  nginx:
    image: nginx:1.25-alpine
    ports:
      - "8080:80"
    depends_on:
      - api
"""

COMPOSE_PROD = """\
# Production on the VM: everything in containers, with limits and health checks.
services:
  api:
    image: personal-assistant:latest
    command: gunicorn app.main:app -k uvicorn.workers.UvicornWorker --bind 0.0.0.0:8000
    env_file: ../config/production.env
    restart: unless-stopped
    deploy:
      resources:
        limits:
          cpus: "1.0"
          memory: 1g
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:8000/health"]
      interval: 30s
    depends_on:
      - db
  worker:
    image: personal-assistant:latest
    command: celery -A app.worker worker
    env_file: ../config/production.env
    restart: unless-stopped
  db:
    image: postgres:15
    environment:
      POSTGRES_DB: ai_assistant
      POSTGRES_USER: prod_user
    volumes:
      - pgdata:/var/lib/postgresql/data
    restart: unless-stopped
  nginx:
    image: nginx:1.25-alpine
    ports:
      - "80:80"
      - "443:443"
    volumes:
      - /etc/letsencrypt:/etc/letsencrypt:ro
    depends_on:
      - api
volumes:
  pgdata:
"""


def repo_files(env: Env) -> dict[str, tuple[str, int]]:
    """This module's committed files: relative path -> (content, mode)."""
    return {
        "README.md": (README, 0o644),
        ".gitignore": (GITIGNORE, 0o644),
        "config/README.md": (CONFIG_README, 0o644),
        "docker/deploy.sh": (DEPLOY_SH, 0o755),
        "docker/docker-compose.dev.yml": (COMPOSE_DEV, 0o644),
        "docker/docker-compose.prod.yml": (COMPOSE_PROD, 0o644),
    }


def build(ctx: Ctx) -> None:
    for env in ENVS:
        files = _all_repo_files(ctx, env)
        _write_checkout(ctx, env, files)
        _ensure_repo(ctx, env, sorted(files))


def _all_repo_files(ctx: Ctx, env: Env) -> dict[str, tuple[str, int]]:
    files: dict[str, tuple[str, int]] = {}
    for area in ctx.areas:
        contribute = getattr(area, "repo_files", None)
        for rel, spec in (contribute(env) if contribute else {}).items():
            if rel in files:
                raise LabError("two areas commit %s" % rel)
            files[rel] = spec
    return files


def _write_checkout(ctx: Ctx, env: Env, files: dict[str, tuple[str, int]]) -> None:
    if env is DEV:
        ensure_dir(ctx, env.project_dir.parent, 0o755)
    ensure_dir(ctx, env.project_dir, 0o755, env.owner)
    ensure_dir(ctx, env.project_dir / "config", 0o755, env.owner)
    for rel, (content, mode) in sorted(files.items()):
        path = env.project_dir / rel
        for parent in reversed(path.relative_to(env.project_dir).parents[:-1]):
            ensure_dir(ctx, env.project_dir / parent, 0o755, env.owner)
        write_file(ctx, path, content, mode, env.owner)


def git(env: Env, *args: str, check: bool = True):
    """git in the checkout, as the checkout's owner (so .git stays owned by deploy in prod)."""
    return run(
        ["git", *GIT_IDENTITY, "-C", str(env.project_dir), *args],
        user=env.owner,
        env={**GIT_ENV, "HOME": str(Path("~" + env.owner).expanduser())},
        check=check,
    )


def _ensure_repo(ctx: Ctx, env: Env, paths: list[str]) -> None:
    if not (env.project_dir / ".git").exists():
        git(env, "init", "-q", "-b", BRANCH)
        ctx.changed("git init %s" % env.project_dir)
    if git(env, "rev-parse", "-q", "--verify", "HEAD", check=False).returncode == 0:
        return  # already committed: re-committing is never the lab's job
    # Name the files explicitly (no `add -A`): only what the lab means to commit, whatever
    # else lies in the directory.
    git(env, "add", "--", *paths)
    git(env, "commit", "-q", "-m", "Initial commit")
    ctx.changed("git commit in %s" % env.project_dir)


def status() -> list[tuple[str, bool, str]]:
    checks = []
    for env in ENVS:
        head = env.project_dir / ".git" / "refs" / "heads" / BRANCH
        ok = head.is_file()
        checks.append(
            ("%s project" % env.name, ok, "%s (git %s)" % (env.project_dir, "committed" if ok else "missing"))
        )
    return checks


def purge(ctx: Ctx) -> None:
    # dev lives inside the state dir (labctl deletes it); prod's checkout is the lab's too.
    if remove_tree(PROD.project_dir, allowed=(PROD.project_dir, STATE_DIR)):
        ctx.changed("deleted %s" % PROD.project_dir)
