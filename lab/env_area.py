"""The env area of the lab: dev's config/development.env and prod's config/production.env, with
planted drift and canary secrets, plus the committed template docker/env.prod.example.

The audit aligns both files as env file `app` (inventory/lab/group_vars); dev is the baseline.
PLANTED below is the exact list of findings the audit must report for this area — no more (the
integration test checks precision), so every line not listed there is identical in both files,
and the only secrets are the planted ones.

Canary values are random per plant and recorded in canaries.json under names starting with
"env."; the files are rendered from them, so re-running `up` rewrites nothing and `replant`
changes only the secret values.
"""

from __future__ import annotations

from labcore import DEV, PROD, Ctx, Env, canary_maker, random_chars, write_file

NAME = "env"
CANARY_PREFIX = "env."
SUBJECT = "app"
DEV_FILE = DEV.project_dir / "config" / "development.env"
PROD_FILE = PROD.project_dir / "config" / "production.env"
TEMPLATE_REL = "docker/env.prod.example"


def _finding(key: str, kind: str, check: str, expected: bool = False) -> dict:
    return {"area": "env", "subject": SUBJECT, "key": key, "kind": kind, "check": check, "expected": expected}


# What the audit must find (dev vs prod), in the order of the lab brief. No values here: the
# manifest must never hold a secret.
PLANTED = [
    _finding("FEATURE_NEW_UI", "missing", "env.key_missing"),  # only in dev
    _finding("CDN_BASE_URL", "extra", "env.key_extra"),  # only in prod
    _finding("LOG_LEVEL", "changed", "env.value_changed"),  # DEBUG vs INFO
    _finding("SECRET_KEY", "changed", "env.secret_changed"),  # two canaries
    _finding("OPENAI_API_KEY", "policy", "env.secret_reused"),  # one canary in both
    _finding("DEBUG", "policy", "env.debug_enabled"),  # true in prod
    _finding("CELERY_LOG_LEVEL", "policy", "env.debug_log_level"),  # debug in prod
    _finding("GOOGLE_REDIRECT_URI", "policy", "env.localhost_url"),  # localhost in prod
    _finding("API_PUBLIC_URL", "policy", "env.insecure_url"),  # plain http in prod
    _finding("STRIPE_WEBHOOK_SECRET", "policy", "env.empty_secret"),  # empty in prod
    _finding("STRIPE_WEBHOOK_SECRET", "changed", "env.secret_changed"),  # canary vs empty
    _finding("SESSION_SECRET", "policy", "env.short_secret"),  # 8 chars in prod
    _finding("SESSION_SECRET", "changed", "env.secret_changed"),  # long vs short
    _finding("SMTP_PASSWORD", "missing", "env.template_missing"),  # in the template only
    _finding("WORKERS", "policy", "env.duplicate_key"),  # 2 then 4 in prod; 4 in dev
    _finding("@syntax", "policy", "env.unparseable_line"),  # one bad line in prod
    _finding("@file.mode", "policy", "env.file_permissions"),  # prod file is 0644
    _finding("DATABASE_URL", "changed", "env.secret_changed", expected=True),  # rule in drift_rules.yml
    _finding("APP_ENV", "changed", "env.value_changed", expected=True),  # rule in drift_rules.yml
]

# inventory/lab/drift_rules.yml has a rule for these keys; the lab plants none of them, so the
# audit must report the rule as stale.
STALE_RULES = ["env/app/LEGACY_*"]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


def stale_rules() -> list[str]:
    return list(STALE_RULES)


# ---------------------------------------------------------------- canaries


def _canaries(ctx: Ctx) -> dict[str, str]:
    """Every secret value of both files. Prefixes mimic real shapes (OpenAI, Stripe) so that the
    audit's secret detection meets realistic values; "CANARY" makes a leak obvious."""
    secret = canary_maker(length=40)
    password = canary_maker(length=24)
    names = {
        "env.dev.SECRET_KEY": secret,
        "env.prod.SECRET_KEY": secret,
        "env.shared.OPENAI_API_KEY": canary_maker("sk-lab-", 32),  # reused in prod: planted
        "env.dev.STRIPE_WEBHOOK_SECRET": canary_maker("whsec_", 32),
        "env.dev.SESSION_SECRET": canary_maker(length=48),
        # 8 characters: short enough for env.short_secret, still unique per plant.
        "env.prod.SESSION_SECRET": lambda: "CNRY" + random_chars(4),
        "env.dev.DATABASE_URL.password": password,
        "env.prod.DATABASE_URL.password": password,
        "env.prod.unparseable_line": password,
    }
    return {name: ctx.canary(name, make) for name, make in names.items()}


# ---------------------------------------------------------------- file contents
# Lines shared verbatim by both files (and by the template, secrets aside), so that nothing but
# the planted items differs. They exercise the dotenv syntax the parser must handle: comments,
# blank lines, `export`, single and double quotes, an inline comment, a literal ${VAR} reference
# and a multi-line double-quoted value.

APP_SETTINGS = """\
export APP_NAME="Personal Assistant"   # shown in the page title
export APP_HOME=/app
LOG_DIR=${APP_HOME}/logs
TIMEZONE=UTC  # every server runs in UTC
DEFAULT_MODEL='gpt-4o-mini'
ALLOWED_HOSTS=ianleblanc.ca,www.ianleblanc.ca
"""

# Public URLs, not secrets. Both are planted policy findings in prod.
URLS = """\
API_PUBLIC_URL=http://ianleblanc.ca/api
GOOGLE_REDIRECT_URI="http://localhost:8000/auth/callback"
"""

# A multi-line value. Deliberately plain text rather than a PEM certificate: a certificate body
# is high-entropy base64 that a secret detector may call secret, and a "secret" equal in dev and
# prod would be a secret_reused finding nobody planted.
EMAIL_FOOTER = """\
EMAIL_FOOTER="--
Personal Assistant, ianleblanc.ca
You receive this because you have an account; manage e-mails in Settings."
"""


def render_dev(c: dict[str, str]) -> str:
    return f"""\
# Personal Assistant: local development settings.
# Read by docker/docker-compose.dev.yml and by `uvicorn --env-file`.

{APP_SETTINGS}APP_ENV=development
DEBUG=true
LOG_LEVEL=DEBUG
CELERY_LOG_LEVEL=debug
WORKERS=4

# --- URLs
{URLS}
# --- database: the laptop's own PostgreSQL
DATABASE_URL=postgresql://ianleblanc:{c["env.dev.DATABASE_URL.password"]}@localhost:5432/personal_assistant

# --- secrets
SECRET_KEY='{c["env.dev.SECRET_KEY"]}'
export OPENAI_API_KEY={c["env.shared.OPENAI_API_KEY"]}
STRIPE_WEBHOOK_SECRET="{c["env.dev.STRIPE_WEBHOOK_SECRET"]}"
SESSION_SECRET={c["env.dev.SESSION_SECRET"]}

# --- features being tried out
FEATURE_NEW_UI=true

{EMAIL_FOOTER}"""


def render_prod(c: dict[str, str]) -> str:
    return f"""\
# Personal Assistant: production settings (docker/docker-compose.prod.yml).
# Template: docker/env.prod.example

{APP_SETTINGS}APP_ENV=production
DEBUG=true
LOG_LEVEL=INFO
CELERY_LOG_LEVEL=debug
WORKERS=2

# --- URLs
{URLS}CDN_BASE_URL=https://cdn.ianleblanc.ca

# --- database: the db container
DATABASE_URL=postgresql://prod_user:{c["env.prod.DATABASE_URL.password"]}@db:5432/ai_assistant

# --- secrets
SECRET_KEY='{c["env.prod.SECRET_KEY"]}'
export OPENAI_API_KEY={c["env.shared.OPENAI_API_KEY"]}
STRIPE_WEBHOOK_SECRET=
SESSION_SECRET={c["env.prod.SESSION_SECRET"]}
ADMIN PASSWORD={c["env.prod.unparseable_line"]}

# scaled up after the March incident
WORKERS=4

{EMAIL_FOOTER}"""


# The template names every prod key (plus SMTP_PASSWORD, which neither file has); secret values
# are empty and the rest are the values production should have.
TEMPLATE = f"""\
# Template for config/production.env: copy it there and fill in every empty value.
# The real file is git-ignored; never commit secrets.

{APP_SETTINGS}APP_ENV=production
DEBUG=false
LOG_LEVEL=INFO
CELERY_LOG_LEVEL=info
WORKERS=4

API_PUBLIC_URL=https://ianleblanc.ca/api
GOOGLE_REDIRECT_URI=https://ianleblanc.ca/auth/callback
CDN_BASE_URL=https://cdn.ianleblanc.ca

# postgresql://prod_user:<password>@db:5432/ai_assistant
DATABASE_URL=
SECRET_KEY=
OPENAI_API_KEY=
STRIPE_WEBHOOK_SECRET=
SESSION_SECRET=
SMTP_PASSWORD=

{EMAIL_FOOTER}"""


# ---------------------------------------------------------------- area interface


def repo_files(env: Env) -> dict[str, tuple[str, int]]:
    """The template is committed in both checkouts (same repository); the env files never are."""
    return {TEMPLATE_REL: (TEMPLATE, 0o644)}


def build(ctx: Ctx) -> None:
    c = _canaries(ctx)
    ctx.save_canaries(CANARY_PREFIX)  # recorded before any file holds them
    write_file(ctx, DEV_FILE, render_dev(c), 0o644, DEV.owner)
    # 0644 on a production secret file is itself planted (env.file_permissions).
    write_file(ctx, PROD_FILE, render_prod(c), 0o644, PROD.owner)


def status() -> list[tuple[str, bool, str]]:
    return [("%s env file" % env.name, path.is_file(), str(path)) for env, path in ((DEV, DEV_FILE), (PROD, PROD_FILE))]
