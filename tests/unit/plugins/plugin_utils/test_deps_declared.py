"""Parsers of declared and lock files, table by table (texts in the shapes the tools write)."""

import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils.deps_declared import (
    DeclaredError,
    declared_requirements,
    locked_versions,
    parse_lock,
    parse_pyproject,
    parse_requirements,
    satisfies,
)

REQUIREMENTS = """\
# pinned by hand
Django==4.2.7 \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
requests[socks]>=2.31,<3 ; python_version >= "3.8"
-r base.txt
--index-url https://pypi.example/simple
-e git+https://git.example/lib.git#egg=my_lib
lib @ git+https://ci:***@git.example/lib.git
not a requirement !!
"""


def test_requirements_file():
    found, unparsed = parse_requirements(REQUIREMENTS)
    assert found["django"]["spec"] == "==4.2.7"
    assert found["requests"]["spec"] == "<3,>=2.31" and found["requests"]["marker"] == 'python_version >= "3.8"'
    assert found["my-lib"]["editable"] is True
    assert found["lib"]["url"] == "git+https://ci:***@git.example/lib.git"
    assert unparsed == ["not a requirement !!"]


PYPROJECT = """\
[project]
name = "app"
dependencies = ["httpx>=0.27", "pydantic[email]~=2.5"]

[tool.poetry.dependencies]
python = "^3.11"
celery = "^5.3.4"
redis = "~4.6"
zero = "^0.2.1"
star = "*"
table = {version = "^1.0", optional = true}
"""


def test_pyproject_pep621_and_poetry():
    found = parse_pyproject(PYPROJECT)
    assert found["httpx"]["spec"] == ">=0.27" and found["pydantic"]["spec"] == "~=2.5"
    assert found["celery"]["spec"] == ">=5.3.4,<6"
    assert found["redis"]["spec"] == ">=4.6,<4.7"
    assert found["zero"]["spec"] == ">=0.2.1,<0.3"
    assert found["star"]["spec"] == "" and found["table"]["spec"] == ">=1.0,<2"
    assert "python" not in found


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("poetry.lock", '[[package]]\nname = "Celery"\nversion = "5.3.4"\n', {"celery": "5.3.4"}),
        ("uv.lock", 'version = 1\n[[package]]\nname = "httpx"\nversion = "0.27.0"\n', {"httpx": "0.27.0"}),
        ("pylock.toml", 'lock-version = "1.0"\n[[packages]]\nname = "idna"\nversion = "3.7"\n', {"idna": "3.7"}),
        ("Pipfile.lock", '{"default": {"Requests": {"version": "==2.31.0"}}, "develop": {}}', {"requests": "2.31.0"}),
        ("requirements.lock", "a==1.0\nb>=2\n", {"a": "1.0", "b": ">=2"}),
    ],
)
def test_lock_files(path, text, expected):
    assert parse_lock(path, text) == expected


@pytest.mark.parametrize(
    ("path", "text"), [("poetry.lock", "[[package]\n"), ("Pipfile.lock", "{"), ("uv.lock", "package = 1\n")]
)
def test_broken_lock_files_say_which(path, text):
    with pytest.raises(DeclaredError, match=path.split(".")[0]):
        parse_lock(path, text)


def test_declared_and_locked_from_host_entries():
    entries = [
        {"path": "requirements.txt", "status": "ok", "text": "a>=1\n"},
        {"path": "gone.txt", "status": "missing", "reason": "The file does not exist."},
        {"path": "pyproject.toml", "status": "ok", "text": "[project\n"},
    ]
    merged, problems = declared_requirements(entries)
    assert merged["a"]["spec"] == ">=1"
    assert problems == ["gone.txt: The file does not exist.", "pyproject.toml: pyproject.toml is not valid TOML"]
    assert locked_versions([{"path": "poetry.lock", "status": "ok", "text": "x = ["}]) == (
        None,
        "poetry.lock: poetry.lock is not valid TOML",
    )
    assert locked_versions(None) == (None, None)


@pytest.mark.parametrize(
    ("installed", "spec", "expected"),
    [("3.2.0", "==3.1.0", False), ("3.1.0", "==3.1.0", True), ("1.0rc1", ">=0.9", True), ("junk", ">=1", None)],
)
def test_satisfies(installed, spec, expected):
    assert satisfies(installed, spec) is expected
