"""What a commit introduces, read from its diff: the schema objects its migration files create
and the environment variable names its files start to use.

Standard library only, Python 3.8+: this module runs on the audited hosts.

Only added lines count, and only names leave the host: table, column and index names from
migration files (SQL, Alembic, Django, Rails, Knex, Sequelize), variable names from env files
(KEY=…), compose files (${KEY}, "- KEY=") and code (os.environ["KEY"], getenv("KEY"),
process.env.KEY, ENV["KEY"], env("KEY")).  Never a value: the line's other text is dropped.
Bounded: at most NAME_LIMIT names of each sort per commit, each at most NAME_LENGTH characters,
and only names of identifier shape; a name that looks like a token is left out; at most
FILE_CHARS of added text per file is read.
"""

import re

from ansible_collections.envparity.audit.plugins.module_utils.redact import looks_like_token

NAME_LIMIT = 100
NAME_LENGTH = 63  # PostgreSQL's identifier length
FILE_CHARS = 256 * 1024  # added text read per file of a commit
SORTS = ("tables", "columns", "indexes", "keys")
MIGRATION_PATHS = ("migration", "alembic/", "/migrate/", "flyway", "schema.rb")
ENV_FILE = re.compile(r"(^|/)(\.env[^/]*|[^/]*\.env(\.[^/]*)?|env\.(example|sample|template|dist))$")
COMPOSE_FILE = re.compile(r"(^|/)(docker-)?compose[^/]*\.ya?ml$")
CODE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".rb", ".go", ".php", ".java", ".kt", ".rs", ".ex", ".exs")

_ID = r"[\"'`]?([A-Za-z_][A-Za-z0-9_$]*)[\"'`]?"
_QID = r"(?:[\"'`]?[A-Za-z_][A-Za-z0-9_$]*[\"'`]?\.)?" + _ID  # schema-qualified: the last part
_Q = r"[\"':]?"  # a quote, or a Ruby symbol's colon
DDL = (
    # SQL (plain files, Flyway, golang-migrate, Prisma, and SQL inside Python/JS strings).
    ("tables", "table", re.compile(r"\bCREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _QID, re.I)),
    (
        "columns",
        "alter",
        re.compile(
            r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?" + _QID + r"\s+ADD\s+(?:COLUMN\s+)?"
            r"(?:IF\s+NOT\s+EXISTS\s+)?(?!CONSTRAINT\b|PRIMARY\b|UNIQUE\b|FOREIGN\b|CHECK\b)" + _ID,
            re.I,
        ),
    ),
    (
        "indexes",
        "index",
        re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?" + _QID, re.I),
    ),
    # Alembic (op.*), Knex (createTable), Sequelize (queryInterface.*).
    (
        "tables",
        "createtable",
        re.compile(r"\b(?:create_table|createTable)(?:\(\s*|\s+)" + _Q + r"([A-Za-z_][A-Za-z0-9_]*)"),
    ),
    (
        "columns",
        "addcolumn",
        re.compile(
            r"\b(?:add_column|addColumn)(?:\(\s*|\s+)" + _Q + r"([A-Za-z_][A-Za-z0-9_]*)[\"']?\s*,\s*"
            r"(?:sa\.Column\(\s*)?" + _Q + r"([A-Za-z_][A-Za-z0-9_]*)"
        ),
    ),
    ("indexes", "index", re.compile(r"\b(?:create_index|addIndex)\(\s*[\"']([A-Za-z_][A-Za-z0-9_]*)")),
    # Rails: create_table :name / add_column :table, :column (the table regex above covers
    # `create_table :name` with its colon).  Django: the model's name, lower case.
    ("tables", "createmodel", re.compile(r"\bmigrations\.CreateModel\(\s*name\s*=\s*[\"']([A-Za-z_][A-Za-z0-9_]*)")),
    (
        "columns",
        "addfield",
        re.compile(
            r"\bmigrations\.AddField\(\s*model_name\s*=\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']\s*,\s*"
            r"name\s*=\s*[\"']([A-Za-z_][A-Za-z0-9_]*)"
        ),
    ),
)
_KEY = r"([A-Za-z_][A-Za-z0-9_]*)"
ENV_LINE = re.compile(r"^\s*(?:export\s+)?" + _KEY + r"\s*=")
COMPOSE_KEYS = (re.compile(r"\$\{" + _KEY + r"(?:[:?+-][^}]*)?\}"), re.compile(r"^\s*-\s*[\"']?" + _KEY + r"="))
CODE_KEYS = (
    re.compile(r"\b(?:os\.environ|ENV|process\.env)\[\s*[\"']" + _KEY + r"[\"']"),
    re.compile(r"\b(?:os\.environ\.get|os\.getenv|getenv|Getenv|LookupEnv|ENV\.fetch|env)\(\s*[\"']" + _KEY + r"[\"']"),
    re.compile(r"\bprocess\.env\." + _KEY),
)


# A line can name a key only if it holds one of these.
KEY_HINTS = {"env": ("=",), "compose": ("$", "="), "code": ("env", "ENV", "Env")}


def _sort_of(path):
    lower = path.lower()
    if any(hint in lower for hint in MIGRATION_PATHS) or lower.endswith(".sql"):
        return "migration"
    if ENV_FILE.search(lower):
        return "env"
    if COMPOSE_FILE.search(lower):
        return "compose"
    if lower.endswith(CODE_SUFFIXES):
        return "code"
    return None


def _ddl_names(text, full):
    """(sort, name) of the DDL in text; a pattern runs only when its literal hint is in the text
    (lower case, underscores removed) and its sort is not full yet."""
    folded = text.lower().replace("_", "")
    for sort, hint, pattern in DDL:
        if sort in full or hint not in folded:
            continue
        for match in pattern.finditer(text):
            groups = [group for group in match.groups() if group]
            yield sort, ".".join(groups) if sort == "columns" else groups[-1]


def _key_names(sort, line):
    if sort == "env":
        match = ENV_LINE.match(line)
        return [match.group(1)] if match else []
    patterns = COMPOSE_KEYS if sort == "compose" else CODE_KEYS
    return [match.group(1) for pattern in patterns for match in pattern.finditer(line)]


def _add(found, sort, name):
    names = found[sort]
    if len(names) >= NAME_LIMIT or len(name) > NAME_LENGTH or name in names or looks_like_token(name):
        return
    names.append(name)


def _file_names(found, sort, added):
    """The names in one file's added lines: DDL over the lines joined (a call often spans lines),
    keys line by line (only lines that can hold one)."""
    full = {name for name, names in found.items() if len(names) >= NAME_LIMIT}
    if sort == "migration":
        for name_sort, name in _ddl_names("\n".join(added), full):
            _add(found, name_sort, name)
        return
    if "keys" in full:
        return
    hints = KEY_HINTS[sort]
    for line in added:
        if any(hint in line for hint in hints):
            for name in _key_names(sort, line):
                _add(found, "keys", name)


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
