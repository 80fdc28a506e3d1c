"""Compose stacks: the SERVICE shape, normalisation, project names, secrets.

The merge, interpolation, loading and canonical-form rules have their own files (test_compose_merge.py,
test_compose_interpolate.py, test_compose_load.py, test_docker_forms.py).
"""

import json

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.compose import (
    normalize_project_name,
    parse_image,
)
from ansible_collections.envparity.audit.plugins.module_utils.redact import fingerprint
from tests.unit.plugins.module_utils.compose_helpers import (
    KEY,
    canary,
    collect_paths,
    service,
    stack,
    web,
    write,
)

IMAGES = [
    ("nginx", "nginx", None, None),
    ("nginx:1.25", "nginx", "1.25", None),
    ("nginx:latest", "nginx", "latest", None),
    ("library/nginx:1.25-alpine", "library/nginx", "1.25-alpine", None),
    ("localhost:5000/app", "localhost:5000/app", None, None),
    ("localhost:5000/team/app:2", "localhost:5000/team/app", "2", None),
    ("ghcr.io/o/app@sha256:abcd", "ghcr.io/o/app", None, "sha256:abcd"),
    ("ghcr.io/o/app:1.2@sha256:abcd", "ghcr.io/o/app", "1.2", "sha256:abcd"),
    ("registry.example.com:443/team/app:v1.10", "registry.example.com:443/team/app", "v1.10", None),
]


@pytest.mark.parametrize(("ref", "repository", "tag", "digest"), IMAGES)
def test_image_parsing(ref, repository, tag, digest):
    assert parse_image(ref) == {"ref": ref, "repository": repository, "tag": tag, "digest": digest}


LIMITS = [
    (
        "deploy.resources",
        {
            "deploy": {
                "resources": {
                    "limits": {"memory": "512M", "cpus": "0.50"},
                    "reservations": {"memory": "256M", "cpus": "0.25"},
                }
            }
        },
        {"memory": "536870912", "cpus": "0.5"},
        {"memory": "268435456", "cpus": "0.25"},
    ),
    (
        "short keys",
        {"mem_limit": "1g", "cpus": "1.5", "mem_reservation": "128m"},
        {"memory": "1073741824", "cpus": "1.5"},
        {"memory": "134217728", "cpus": None},
    ),
    (
        "deploy wins over short keys",
        {"mem_limit": "1g", "cpus": "2", "deploy": {"resources": {"limits": {"memory": "2g"}}}},
        {"memory": "2147483648", "cpus": "2"},
        {"memory": None, "cpus": None},
    ),
    ("none", {}, {"memory": None, "cpus": None}, {"memory": None, "cpus": None}),
]


@pytest.mark.parametrize(
    ("attributes", "limits", "reservations"), [row[1:] for row in LIMITS], ids=[row[0] for row in LIMITS]
)
def test_limits_and_reservations(tmp_path, attributes, limits, reservations):
    result = service(tmp_path, web(dict(attributes, image="x")))
    assert (result["limits"], result["reservations"]) == (limits, reservations)


def test_limits_as_compose_prints_them(tmp_path):
    # Memory in bytes (binary units), CPUs as the float32 Compose keeps.
    result = service(tmp_path, "services:\n  web:\n    mem_limit: 512M\n    cpus: 0.50\n")
    assert result["limits"] == {"memory": "536870912", "cpus": "0.5"}


def test_other_attributes(tmp_path):
    write(tmp_path / "proj" / "config" / "production.env", "TIER=web\n")
    result = service(
        tmp_path,
        web(
            {
                "build": {"context": "./app", "dockerfile": "Dockerfile", "target": "prod", "args": ["A=1"]},
                "command": "gunicorn app:wsgi -w 4",
                "entrypoint": ["/entry.sh"],
                "env_file": ["../config/production.env", {"path": "extra.env", "required": "false"}],
                "privileged": "false",
                "read_only": "yes",
                "healthcheck": {
                    "test": "curl -f http://localhost/health",
                    "interval": "30s",
                    "timeout": "5s",
                    "retries": "3",
                    "start_period": "10s",
                },
                "restart": "unless-stopped",
                "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
                "labels": {"com.example.tier": "web"},
                "cap_add": ["SYS_TIME", "NET_ADMIN"],
                "profiles": ["prod"],
                "networks": {"front": None, "back": {"aliases": ["api"]}},
                "depends_on": {"db": {"condition": "service_healthy"}},
            }
        ),
    )
    assert result["build"] == {"context": "<project>/docker/app", "dockerfile": "Dockerfile", "target": "prod"}
    assert result["command"] == ["gunicorn", "app:wsgi", "-w", "4"]
    assert result["entrypoint"] == ["/entry.sh"]
    assert result["env_file"] == ["<project>/config/production.env", "<project>/docker/extra.env"]
    assert (result["privileged"], result["read_only"]) == (None, "true")
    assert result["healthcheck"] == {
        "test": ["CMD-SHELL", "curl -f http://localhost/health"],
        "interval": "30s",
        "timeout": "5s",
        "retries": "3",
        "start_period": "10s",
        "disable": None,
    }
    assert result["restart"] == "unless-stopped"
    assert result["logging"] == {"driver": "json-file", "options": {"max-size": "10m"}}
    assert result["labels"] == {"com.example.tier": "web"}
    assert result["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert result["profiles"] == ["prod"]
    assert result["networks"] == ["back", "front"]
    assert result["depends_on"] == ["db"]


def test_build_string_is_the_context(tmp_path):
    result = service(tmp_path, web({"build": "."}))
    assert result["build"] == {"context": "<project>/docker", "dockerfile": "Dockerfile", "target": None}
    assert result["image"] is None


# ------------------------------------------------------------ project name

PROJECT_NAMES = [
    ("explicit wins", "Prod-Stack", {"name": "ignored"}, "docker", "prod-stack"),
    ("top-level name", None, {"name": "My App_2"}, "docker", "myapp_2"),
    ("directory of the first file", None, {}, "docker", "docker"),
    ("directory normalised", None, {}, "My.Project", "myproject"),
    ("leading separators dropped", "__x-1", {}, "docker", "x-1"),
    ("empty after normalising falls through", "!!!", {"name": "***"}, "Deploy", "deploy"),
    ("name interpolated", None, {"name": "${PROJECT}"}, "docker", "ai_assistant"),
]


@pytest.mark.parametrize(
    ("explicit", "top", "directory", "expected"),
    [row[1:] for row in PROJECT_NAMES],
    ids=[row[0] for row in PROJECT_NAMES],
)
def test_project_name(tmp_path, explicit, top, directory, expected):
    document = dict(top, services={"web": {"image": "x"}})
    result = stack(tmp_path, document, env="PROJECT=AI_Assistant\n", project=explicit, directory=directory)
    assert result["status"] == "ok"
    assert result["project"] == expected


def test_project_name_of_a_failed_stack(tmp_path):
    result = collect_paths(tmp_path, [tmp_path / "Web App" / "missing.yml"])
    assert result["project"] == "webapp"


@pytest.mark.parametrize(
    ("name", "expected"), [("Foo", "foo"), ("a.b c", "abc"), ("-_x", "x"), ("", None), (None, None)]
)
def test_normalize_project_name(name, expected):
    assert normalize_project_name(name) == expected


# ------------------------------------------------------------ secrets


def test_no_secret_leaks(tmp_path):
    in_compose = canary("Cmp")
    in_env_file = canary("Env")
    short = "pw12"  # too short to be masked by echo; only substitution tracking hides it
    error_hint = canary("Err")
    compose_file = {
        "name": "leaky",
        "x-anchor": {"token": in_compose},
        "services": {
            "web": {
                "image": "registry.example.com/app:1",
                "environment": {
                    "API_TOKEN": in_compose,
                    "DB_PASSWORD": "${DB_PASSWORD}",
                    "DATABASE_URL": "postgresql://app:${DB_PASSWORD}@db:5432/app",
                    "INNOCENT_NAME": "${DB_PASSWORD}",
                    "SHORT": "${SHORT_SECRET}",
                    "HINT": "${DB_PASSWORD:?%s}" % error_hint,
                },
                "command": [
                    "serve",
                    "--password",
                    "${DB_PASSWORD}",
                    "--token=%s" % in_compose,
                    "--short",
                    "$SHORT_SECRET",
                ],
                "entrypoint": "run --api-key %s --db postgresql://app:${DB_PASSWORD}@db/app" % in_compose,
                "healthcheck": {"test": ["CMD", "curl", "-H", "X-Token: ${DB_PASSWORD}", "http://localhost/"]},
                "labels": ["traefik.auth=${DB_PASSWORD}", "plain=${SHORT_SECRET}", "echo=%s" % in_compose],
                "logging": {"driver": "loki", "options": {"loki-url": "https://u:${DB_PASSWORD}@loki/push"}},
                "volumes": ["./${DB_PASSWORD}:/x"],
                "user": "${SHORT_SECRET}",
                "ports": ["${SHORT_SECRET}"],
            },
            "db": {"image": "postgres:15", "environment": ["POSTGRES_PASSWORD=${DB_PASSWORD}"]},
        },
    }
    result = stack(tmp_path, compose_file, env="DB_PASSWORD=%s\nSHORT_SECRET=%s\n" % (in_env_file, short))
    assert result["status"] == "ok", result["reason"]
    text = json.dumps(result)
    for secret in (in_compose, in_env_file, error_hint):
        assert secret not in text
    assert '"%s"' % short not in text and "=%s" % short not in text
    web_service = result["services"]["web"]
    env = web_service["environment"]
    # Secrets are fingerprinted from their real values, even under an innocent name.
    assert env["DB_PASSWORD"]["fp"] == fingerprint(KEY, in_env_file)
    assert env["INNOCENT_NAME"]["secret"] is True
    assert env["INNOCENT_NAME"]["display"] is None
    assert env["INNOCENT_NAME"]["fp"] == fingerprint(KEY, in_env_file)
    assert env["SHORT"]["secret"] is True
    assert env["DATABASE_URL"]["display"] == "postgresql://app:***@db:5432/app"
    assert web_service["command"][:3] == ["serve", "--password", "***"]
    assert web_service["user"] == "***"
    assert web_service["labels"]["traefik.auth"] == "<redacted:%s>" % fingerprint(KEY, in_env_file)
    assert result["services"]["db"]["environment"]["POSTGRES_PASSWORD"]["fp"] == fingerprint(KEY, in_env_file)


def test_no_secret_leaks_through_the_rules_compose_follows(tmp_path):
    # Env file values built from a secret (B=${A}), bare environment keys, service env_file
    # entries and included projects' variables: each secret stays a fingerprint.
    in_env_file = canary("Env")
    in_service_file = canary("Svc")
    in_included = canary("Inc")
    write(tmp_path / "proj" / "docker" / "app.env", "API_KEY=%s\nBUILT=${DB_PASSWORD}\nPLAIN=on\n" % in_service_file)
    write(tmp_path / "proj" / "docker" / "lib" / ".env", "LIB_SECRET=%s\n" % in_included)
    write(
        tmp_path / "proj" / "docker" / "lib" / "compose.yml",
        json.dumps({"services": {"lib": {"environment": {"TOKEN": "${LIB_SECRET}", "DERIVED": "${URL}"}}}}),
    )
    compose_file = {
        "include": ["lib/compose.yml"],
        "services": {
            "web": {
                "image": "x",
                "env_file": ["app.env"],
                "environment": ["DB_PASSWORD", "URL", "INNOCENT"],
                "command": "serve --password $DB_PASSWORD --url ${URL}",
            }
        },
    }
    env = "DB_PASSWORD=%s\nURL=postgresql://app:${DB_PASSWORD}@db/app\nINNOCENT=${DB_PASSWORD}\n" % in_env_file
    result = stack(tmp_path, compose_file, env=env)
    assert result["status"] == "ok", result["reason"]
    text = json.dumps(result)
    for secret in (in_env_file, in_service_file, in_included):
        assert secret not in text
    web_env = result["services"]["web"]["environment"]
    assert web_env["DB_PASSWORD"]["fp"] == fingerprint(KEY, in_env_file)
    assert web_env["URL"]["display"] == "postgresql://app:***@db/app"
    assert (web_env["INNOCENT"]["secret"], web_env["INNOCENT"]["display"]) == (True, None)
    assert web_env["BUILT"]["secret"] is True
    assert web_env["API_KEY"]["fp"] == fingerprint(KEY, in_service_file)
    assert web_env["PLAIN"]["display"] == "on"
    assert result["services"]["web"]["command"][:3] == ["serve", "--password", "***"]
    lib_env = result["services"]["lib"]["environment"]
    assert lib_env["TOKEN"]["fp"] == fingerprint(KEY, in_included)
    assert lib_env["DERIVED"]["display"] == "postgresql://app:***@db/app"


def test_secret_options_inside_shell_lines_are_masked(tmp_path):
    # A string healthcheck test becomes ["CMD-SHELL", line]; "sh -c" lines carry whole commands.
    password = "pw-%s" % canary("Opt")[:6]
    result = service(
        tmp_path,
        web(
            {
                "image": "x",
                "healthcheck": {"test": "mysqladmin ping --password %s -h localhost" % password},
                "command": ["sh", "-c", "exec app --token %s --verbose" % password],
            }
        ),
    )
    assert result["healthcheck"]["test"] == ["CMD-SHELL", "mysqladmin ping --password *** -h localhost"]
    assert result["command"] == ["sh", "-c", "exec app --token *** --verbose"]
    assert password not in json.dumps(result)


def test_ordinary_passwords_do_not_mask_other_fields(tmp_path):
    # A dev password "postgres" must not turn the image "postgres:15" into "***:15".
    result = stack(
        tmp_path,
        {"services": {"db": {"image": "postgres:15", "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"}}}},
        env="DB_PASSWORD=postgres\n",
    )
    assert result["services"]["db"]["image"]["repository"] == "postgres"
    assert result["services"]["db"]["environment"]["POSTGRES_PASSWORD"]["secret"] is True


def test_secret_change_still_shows_in_fingerprinted_labels(tmp_path):
    one = stack(tmp_path / "one", web({"labels": {"auth": "${TOKEN}"}}), env="TOKEN=first-value\n")
    two = stack(tmp_path / "two", web({"labels": {"auth": "${TOKEN}"}}), env="TOKEN=second-value\n")
    assert one["services"]["web"]["labels"]["auth"] != two["services"]["web"]["labels"]["auth"]


def test_token_shaped_keys_are_replaced(tmp_path):
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    result = service(tmp_path, web({"environment": [token]}))
    (key,) = result["environment"]
    assert key.startswith("<redacted:hmac-sha256:")
    assert token not in json.dumps(result)
