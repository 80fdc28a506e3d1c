"""What a commit introduces, read from its diff: the schema objects its migration files create,
change or drop, and the environment variable names its files start to use.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Only added lines count, and only names leave the host: table, column and index names from
migration files (SQL, Alembic, Django, Rails, Knex, Sequelize: what they create, alter, drop or
rename; a migration's undo part is not read), variable names from env files (KEY=…), compose files
(${KEY}, "- KEY=") and code (os.environ["KEY"], getenv("KEY"), process.env.KEY, ENV["KEY"],
env("KEY")), and the Django settings Python code reads (settings.KEY), kept apart from the keys.
Never a value: the line's other text is dropped.
Bounded: at most NAME_LIMIT names of each sort per commit, each at most NAME_LENGTH characters,
and only names of identifier shape; a name that looks like a token is left out; at most
FILE_CHARS of added text per file is read.
"""

import re

from ansible_collections.envparity.audit.plugins.module_utils.redact import looks_like_token

NAME_LIMIT = 100
NAME_LENGTH = 63  # PostgreSQL's identifier length
FILE_CHARS = 256 * 1024  # added text read per file of a commit
SORTS = (
    "tables",
    "columns",
    "indexes",
    "keys",
    "altered_columns",
    "dropped_tables",
    "dropped_columns",
    "dropped_indexes",
    "settings",
)
MIGRATION_PATHS = ("migration", "alembic/", "/migrate/", "flyway", "schema.rb")
# Migration files that only undo others (golang-migrate's down files, Flyway's undo files).
UNDO_FILE = re.compile(r"(\.down\.sql$|(^|/)U\d[^/]*__[^/]*\.sql$)", re.I)
ENV_FILE = re.compile(r"(^|/)(\.env[^/]*|[^/]*\.env(\.[^/]*)?|env\.(example|sample|template|dist))$")
COMPOSE_FILE = re.compile(r"(^|/)(docker-)?compose[^/]*\.ya?ml$")
CODE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".rb", ".go", ".php", ".java", ".kt", ".rs", ".ex", ".exs")

_ID = r"[\"'`]?([A-Za-z_][A-Za-z0-9_$]*)[\"'`]?"
_QID = r"(?:[\"'`]?[A-Za-z_][A-Za-z0-9_$]*[\"'`]?\.)?" + _ID  # schema-qualified: the last part
_Q = r"[\"':]?"  # a quote, or a Ruby symbol's colon
_NAME = _Q + r"([A-Za-z_][A-Za-z0-9_]*)[\"']?"  # a quoted string or a Ruby symbol
_NEXT = r"\s*,\s*"
_CALL = r"(?:\(\s*|\s+)"  # f("x") or Ruby's f :x
_KWARG = r"\s*=\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']"
_NOT_COLUMN = r"(?!CONSTRAINT\b|PRIMARY\b|UNIQUE\b|FOREIGN\b|CHECK\b|EXCLUDE\b)"

# The actions of one ALTER TABLE statement (its text after the table's name), each at the start
# or after a comma: ADD [COLUMN] c, ALTER [COLUMN] c TYPE / SET DATA TYPE / SET|DROP NOT NULL /
# SET|DROP DEFAULT, DROP [COLUMN] c, RENAME [COLUMN] a TO b, RENAME TO t.
ALTER_ACTIONS = re.compile(
    r"(?:^|,)\s*(?:"
    r"(?P<add>ADD)\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?" + _NOT_COLUMN + _ID + r"|"
    r"(?P<alter>ALTER)\s+(?:COLUMN\s+)?"
    + _NOT_COLUMN
    + _ID
    + r"\s+(?:SET\s+DATA\s+TYPE|TYPE|SET\s+NOT\s+NULL|DROP\s+NOT\s+NULL|SET\s+DEFAULT|DROP\s+DEFAULT)\b|"
    r"(?P<drop>DROP)\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?" + _NOT_COLUMN + _ID + r"|"
    r"(?P<renameto>RENAME\s+TO)\s+" + _ID + r"|"
    r"(?P<rename>RENAME)\s+(?:COLUMN\s+)?" + _NOT_COLUMN + _ID + r"\s+TO\s+" + _ID + r")",
    re.I,
)

_ACTIONS = set(ALTER_ACTIONS.groupindex.values())  # the groups that say which action, not names


def _alter_table(match):
    """(sort, name) of each action of an ALTER TABLE statement."""
    table = match.group(1)
    for action in ALTER_ACTIONS.finditer(match.group(2)):
        names = [group for number, group in enumerate(action.groups(), 1) if group and number not in _ACTIONS]
        if action.group("add"):
            yield "columns", "%s.%s" % (table, names[0])
        elif action.group("alter"):
            yield "altered_columns", "%s.%s" % (table, names[0])
        elif action.group("drop"):
            yield "dropped_columns", "%s.%s" % (table, names[0])
        elif action.group("renameto"):
            yield "dropped_tables", table
            yield "tables", names[0]
        else:
            yield "dropped_columns", "%s.%s" % (table, names[0])
            yield "columns", "%s.%s" % (table, names[1])


def _listed(sort):
    """Each name of a comma-separated list (DROP TABLE a, b), the last part of a qualified one."""

    def names(match):
        for item in match.group(1).split(","):
            yield sort, item.strip().rsplit(".", 1)[-1].strip("\"'`")

    return names


def _named(*outputs):
    """(sort, name) from the match's groups: each output is (sort, group numbers joined by '.')."""

    def names(match):
        for sort, groups in outputs:
            yield sort, ".".join(match.group(group) for group in groups)

    return names


_QNAME = r"(?:[\"'`]?[A-Za-z_][A-Za-z0-9_$]*[\"'`]?\.)?[\"'`]?[A-Za-z_][A-Za-z0-9_$]*[\"'`]?"
_LIST = r"(" + _QNAME + r"(?:\s*,\s*" + _QNAME + r")*)"  # DROP TABLE a, b
DDL = (
    # SQL (plain files, Flyway, golang-migrate, Prisma, and SQL inside Python/JS strings).
    (
        "table",
        re.compile(r"\bCREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _QID, re.I),
        _named(("tables", (1,))),
    ),
    (
        "alter",
        re.compile(r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?" + _QID + r"\s+([^;]{1,4000})", re.I),
        _alter_table,
    ),
    (
        "index",
        re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?" + _QID, re.I),
        _named(("indexes", (1,))),
    ),
    ("drop", re.compile(r"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?" + _LIST, re.I), _listed("dropped_tables")),
    (
        "drop",
        re.compile(r"\bDROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?" + _LIST, re.I),
        _listed("dropped_indexes"),
    ),
    (
        "alter",
        re.compile(r"\bALTER\s+INDEX\s+(?:IF\s+EXISTS\s+)?" + _QID + r"\s+RENAME\s+TO\s+" + _ID, re.I),
        _named(("dropped_indexes", (1,)), ("indexes", (2,))),
    ),
    # Alembic (op.*), Rails (f :t, :c), Knex (createTable), Sequelize (queryInterface.*).
    ("createtable", re.compile(r"\b(?:create_table|createTable)" + _CALL + _NAME), _named(("tables", (1,)))),
    (
        "droptable",
        re.compile(r"\b(?:drop_table|dropTable|dropTableIfExists)" + _CALL + _NAME),
        _named(("dropped_tables", (1,))),
    ),
    (
        "renametable",
        re.compile(r"\b(?:rename_table|renameTable)" + _CALL + _NAME + _NEXT + _NAME),
        _named(("dropped_tables", (1,)), ("tables", (2,))),
    ),
    (
        "addcolumn",
        re.compile(r"\b(?:add_column|addColumn)" + _CALL + _NAME + _NEXT + r"(?:sa\.Column\(\s*)?" + _NAME),
        _named(("columns", (1, 2))),
    ),
    (
        "column",
        re.compile(r"\b(?:drop_column|remove_column|removeColumn)" + _CALL + _NAME + _NEXT + _NAME),
        _named(("dropped_columns", (1, 2))),
    ),
    (
        "renamecolumn",
        re.compile(r"\b(?:rename_column|renameColumn)" + _CALL + _NAME + _NEXT + _NAME + _NEXT + _NAME),
        _named(("dropped_columns", (1, 2)), ("columns", (1, 3))),
    ),
    (
        "column",
        re.compile(
            r"\b(?:alter_column|change_column|change_column_null|change_column_default|changeColumn)"
            + _CALL
            + _NAME
            + _NEXT
            + _NAME
        ),
        _named(("altered_columns", (1, 2))),
    ),
    (
        "newcolumnname",  # Alembic's rename: op.alter_column("t", "old", new_column_name="new")
        re.compile(
            r"\balter_column\(\s*"
            + _NAME
            + _NEXT
            + _NAME
            + r"(?:(?!alter_column)[^;]){0,500}?\bnew_column_name"
            + _KWARG
        ),
        _named(("dropped_columns", (1, 2)), ("columns", (1, 3))),
    ),
    (
        "index",
        re.compile(r"\b(?:create_index|addIndex)\(\s*(?:op\.f\(\s*)?[\"']([A-Za-z_][A-Za-z0-9_]*)"),
        _named(("indexes", (1,))),
    ),
    (
        "dropindex",
        re.compile(r"\bdrop_index\(\s*(?:op\.f\(\s*)?[\"']([A-Za-z_][A-Za-z0-9_]*)"),
        _named(("dropped_indexes", (1,))),
    ),
    (
        "removeindex",  # Rails: remove_index :t, name: "i"; Sequelize: removeIndex('t', 'i')
        re.compile(
            r"\b(?:remove_index" + _CALL + _NAME + r"\s*,\s*name:\s*|removeIndex\(\s*" + _NAME + _NEXT + r")"
            r"[\"':]?([A-Za-z_][A-Za-z0-9_]*)"
        ),
        lambda match: [("dropped_indexes", match.group(3))],
    ),
    # Django: the model's name, lower case.
    ("createmodel", re.compile(r"\bmigrations\.CreateModel\(\s*name" + _KWARG), _named(("tables", (1,)))),
    ("deletemodel", re.compile(r"\bmigrations\.DeleteModel\(\s*name" + _KWARG), _named(("dropped_tables", (1,)))),
    (
        "renamemodel",
        re.compile(r"\bmigrations\.RenameModel\(\s*old_name" + _KWARG + _NEXT + "new_name" + _KWARG),
        _named(("dropped_tables", (1,)), ("tables", (2,))),
    ),
    (
        "addfield",
        re.compile(r"\bmigrations\.AddField\(\s*model_name" + _KWARG + _NEXT + "name" + _KWARG),
        _named(("columns", (1, 2))),
    ),
    (
        "removefield",
        re.compile(r"\bmigrations\.RemoveField\(\s*model_name" + _KWARG + _NEXT + "name" + _KWARG),
        _named(("dropped_columns", (1, 2))),
    ),
    (
        "alterfield",
        re.compile(r"\bmigrations\.AlterField\(\s*model_name" + _KWARG + _NEXT + "name" + _KWARG),
        _named(("altered_columns", (1, 2))),
    ),
    (
        "renamefield",
        re.compile(
            r"\bmigrations\.RenameField\(\s*model_name"
            + _KWARG
            + _NEXT
            + "old_name"
            + _KWARG
            + _NEXT
            + "new_name"
            + _KWARG
        ),
        _named(("dropped_columns", (1, 2)), ("columns", (1, 3))),
    ),
    (
        "removeindex",
        re.compile(r"\bmigrations\.RemoveIndex\(\s*model_name" + _KWARG + _NEXT + "name" + _KWARG),
        _named(("dropped_indexes", (2,))),
    ),
)
# Where a migration's undo begins (Alembic's downgrade, Rails' down, Knex/Sequelize's down): what
# it drops or renames is not what the migration does.
DOWN_START = re.compile(
    r"^(\s*)(?:def\s+(?:downgrade|down|backwards)\b|(?:async\s+)?down\s*[:(]|(?:module\.)?exports\.down\b"
    r"|export\s+(?:async\s+)?function\s+down\b|(?:public\s+)?(?:async\s+)?down\s*\()"
)
_KEY = r"([A-Za-z_][A-Za-z0-9_]*)"
ENV_LINE = re.compile(r"^\s*(?:export\s+)?" + _KEY + r"\s*=")
COMPOSE_KEYS = (re.compile(r"\$\{" + _KEY + r"(?:[:?+-][^}]*)?\}"), re.compile(r"^\s*-\s*[\"']?" + _KEY + r"="))
CODE_KEYS = (
    re.compile(r"\b(?:os\.environ|ENV|process\.env)\[\s*[\"']" + _KEY + r"[\"']"),
    re.compile(r"\b(?:os\.environ\.get|os\.getenv|getenv|Getenv|LookupEnv|ENV\.fetch|env)\(\s*[\"']" + _KEY + r"[\"']"),
    re.compile(r"\bprocess\.env\." + _KEY),
)

# Python code reading a Django setting: settings.X, getattr(settings, "X").  A setting is an
# environment variable only when the settings module reads it from the environment, which an
# added line does not show: these names are kept apart ("settings"), upper case only (Django's
# convention for settings), Django's own settings left out (DJANGO_OWN), and the controller uses
# them only to explain a missing key of the same name, never as a key the code needs.
SETTINGS_READS = (
    re.compile(r"\bsettings\.([A-Z][A-Z0-9_]*)\b(?!\s*=[^=])"),
    re.compile(r"\bgetattr\(\s*settings\s*,\s*[\"']([A-Z][A-Z0-9_]*)[\"']"),
)
DJANGO_OWN = frozenset(
    [
        "ABSOLUTE_URL_OVERRIDES",
        "ADMINS",
        "ALLOWED_HOSTS",
        "APPEND_SLASH",
        "AUTHENTICATION_BACKENDS",
        "AUTH_PASSWORD_VALIDATORS",
        "AUTH_USER_MODEL",
        "BASE_DIR",
        "CACHES",
        "CACHE_MIDDLEWARE_SECONDS",
        "CSRF_COOKIE_SECURE",
        "CSRF_TRUSTED_ORIGINS",
        "DATABASES",
        "DATABASE_ROUTERS",
        "DEBUG",
        "DEFAULT_AUTO_FIELD",
        "DEFAULT_FROM_EMAIL",
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_USE_TLS",
        "FILE_UPLOAD_MAX_MEMORY_SIZE",
        "INSTALLED_APPS",
        "INTERNAL_IPS",
        "LANGUAGES",
        "LANGUAGE_CODE",
        "LOGGING",
        "LOGIN_REDIRECT_URL",
        "LOGIN_URL",
        "MEDIA_ROOT",
        "MEDIA_URL",
        "MIDDLEWARE",
        "ROOT_URLCONF",
        "SECRET_KEY",
        "SECURE_PROXY_SSL_HEADER",
        "SERVER_EMAIL",
        "SESSION_COOKIE_AGE",
        "SESSION_COOKIE_SECURE",
        "SESSION_ENGINE",
        "SITE_ID",
        "STATICFILES_DIRS",
        "STATICFILES_STORAGE",
        "STATIC_ROOT",
        "STATIC_URL",
        "STORAGES",
        "TEMPLATES",
        "TIME_ZONE",
        "USE_I18N",
        "USE_TZ",
        "WSGI_APPLICATION",
    ]
)

# A line can name a key only if it holds one of these.
KEY_HINTS = {
    "env": ("=",),
    "compose": ("$", "="),
    "code": ("env", "ENV", "Env"),
    "python": ("env", "ENV", "Env", "settings"),
}


def _sort_of(path):
    lower = path.lower()
    if UNDO_FILE.search(path):
        return None
    if any(hint in lower for hint in MIGRATION_PATHS) or lower.endswith(".sql"):
        return "migration"
    if ENV_FILE.search(lower):
        return "env"
    if COMPOSE_FILE.search(lower):
        return "compose"
    if lower.endswith(".py"):
        return "python"
    if lower.endswith(CODE_SUFFIXES):
        return "code"
    return None


def _ddl_names(text):
    """(sort, name) of the DDL in text; a pattern runs only when its literal hint is in the text
    (lower case, underscores removed)."""
    folded = text.lower().replace("_", "")
    for hint, pattern, names in DDL:
        if hint in folded:
            for match in pattern.finditer(text):
                yield from names(match)


def _without_undo(lines):
    """The lines outside a migration's undo part: from a line that begins one (DOWN_START) while
    the next lines are blank or indented deeper, and its closing line (`end`, `}`) at its depth."""
    kept, depth = [], None
    for line in lines:
        if depth is not None:
            stripped = line.lstrip()
            indent = len(line) - len(stripped)
            if not stripped or indent > depth:
                continue
            closing = indent == depth and stripped.startswith(("end", "}", ")"))
            depth = None
            if closing:
                continue
        start = DOWN_START.match(line)
        if start:
            depth = len(start.group(1))
            continue
        kept.append(line)
    return kept


def _key_names(sort, line):
    if sort == "env":
        match = ENV_LINE.match(line)
        return [match.group(1)] if match else []
    patterns = COMPOSE_KEYS if sort == "compose" else CODE_KEYS
    return [match.group(1) for pattern in patterns for match in pattern.finditer(line)]


def _setting_names(line):
    """The Django settings (not Django's own) a line of Python reads."""
    if "settings" not in line:
        return []
    return [
        match.group(1)
        for pattern in SETTINGS_READS
        for match in pattern.finditer(line)
        if match.group(1) not in DJANGO_OWN
    ]


def _add(found, sort, name):
    names = found[sort]
    if len(names) >= NAME_LIMIT or len(name) > NAME_LENGTH or name in names or looks_like_token(name):
        return
    names.append(name)


def _file_names(found, sort, added):
    """The names in one file's added lines: DDL over the lines joined (a call often spans lines),
    keys line by line (only lines that can hold one)."""
    if sort == "migration":
        for name_sort, name in _ddl_names("\n".join(_without_undo(added))):
            _add(found, name_sort, name)
        return
    hints = KEY_HINTS[sort]
    for line in added:
        if any(hint in line for hint in hints):
            for name in _key_names(sort, line):
                _add(found, "keys", name)
            if sort == "python":
                for name in _setting_names(line):
                    _add(found, "settings", name)


def empty_introduced():
    return {sort: [] for sort in SORTS}


def parse_diffs(data, wanted):
    """{commit sha: {tables, columns ("table.column"), indexes, keys}} from `git diff-tree --stdin -p`
    output for the commits `wanted` (each begins with its id on a line of its own).  Only added
    lines of files whose path says what they are (migration, env, compose, code) are read."""
    wanted = set(wanted)
    result = {sha: empty_introduced() for sha in wanted}
    found, sort, added, header, size = None, None, [], False, 0
    for raw in data.split(b"\n"):
        line = raw.decode("utf-8", "replace")
        if line in wanted or line.startswith("diff --git "):
            if sort and added:
                _file_names(found, sort, added)
            sort, added, header, size = None, [], line not in wanted, 0
            if line in wanted:
                found = result[line]
        elif header and line.startswith("+++ ") and found is not None:
            path = line[4:]
            sort = _sort_of(path[2:] if path.startswith("b/") else path) if path != "/dev/null" else None
        elif line.startswith("@@"):
            header = False
        elif sort and not header and line.startswith("+") and size < FILE_CHARS:
            added.append(line[1:])
            size += len(line)
    if sort and added:
        _file_names(found, sort, added)
    return result
