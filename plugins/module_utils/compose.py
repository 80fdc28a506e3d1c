"""Read Docker Compose stacks on a host, read-only, with every secret fingerprinted.

Standard library only, Python 3.8+: this module runs on the audited hosts.
PyYAML is imported lazily: without it every stack is "failed" with a reason
saying so, and the rest of the docker area (the engine) still reports.

A stack is a list of compose files merged in order, with variables taken
from the stack's env file (never from the process environment).  The result
is the STACK of docs/docker-facts.md.  The work is split as compose-go
splits it: compose_load reads the files (bounded, strings-only YAML; env
files with compose_dotenv), compose_interpolate substitutes variables,
compose_merge applies override files, extends and include, docker_forms
gives ports and volumes their canonical form, compose_values the other
scalars the form Compose prints; this module shapes the merged services
(their environment as Compose resolves it: service env_file entries, bare
keys) and the stack (its project name as Compose chooses it).

Secrets.  ``environment`` values become describe_value records.  A string
that received a secret variable's value carries that value only into
describe_value; everywhere else it is shown with ``***`` in its place.  An
environment value built from a secret variable is secret whatever its key.
Commands, entrypoints and health checks go through redact_text (and the
word after a secret-named option such as ``--password`` is masked); label
and logging option values that look secret become
``<redacted:FINGERPRINT>``; long secret values found in ``environment`` are
masked wherever else they are repeated.
"""

import concurrent.futures
import json
import os
import posixpath
import re

from ansible_collections.envparity.audit.plugins.module_utils.compose_cli import (
    Compose,
    ComposeUnusable,
    check_words,
    real_model,
    restore_secrets,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_hash import _Raw, config_hash, resolved_hash
from ansible_collections.envparity.audit.plugins.module_utils.compose_interpolate import (
    _displayed,
    _Interpolator,
    _Tainted,
    _tainted,
    bind_env_file,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_load import (
    DEFAULT_MAX_BYTES,
    MAX_EXPANDED_CHARS,
    PYYAML_MISSING,
    _read_compose,
    _read_env_file,
    make_loader,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_merge import (
    _REMOTE_CONTEXTS,
    _as_list,
    _ExtendedFiles,
    _Includes,
    _merge_prepared,
    _prepared,
    _resolve_extends,
)
from ansible_collections.envparity.audit.plugins.module_utils.compose_values import (
    command_words,
    cpus_text,
    duration_text,
    flag_text,
    memory_text,
)
from ansible_collections.envparity.audit.plugins.module_utils.docker_forms import (
    _host_path,
    _text,
    canonical_port,
    canonical_volume,
    port_list,
    project_relative,
    volume_names,
    words_fingerprint,
)
from ansible_collections.envparity.audit.plugins.module_utils.env_collect import _resolve, _safe_key
from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    MASK,
    describe_value,
    fingerprint,
    is_secret_name,
    looks_like_token,
    redact_text,
)

# Compose processes run at once on a host (one per stack).
MAX_COMPOSE_RUNS = 4
# Secret values at least this long (or token-shaped) are masked wherever repeated.
MIN_ECHO_LENGTH = 12

_PROJECT_CHARS = re.compile(r"[^a-z0-9_-]+")
_OPTION = re.compile(r"-{1,2}([A-Za-z][A-Za-z0-9_.-]*)\Z")
_WORDS = re.compile(r"(\s+)")


# ------------------------------------------------------------ normalisation


def parse_image(value):
    ref = _text(value)
    if ref is None:
        return None
    name, _, digest = ref.partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        # "localhost:5000/app" has no tag: that colon comes before a slash.
        name, tag = name[:colon], name[colon + 1 :]
    return {"ref": ref, "repository": name, "tag": tag or None, "digest": digest or None}


def _build(value, base_dir, project_root):
    """Compose's build: the context a path from the compose file's directory (shown inside the
    project as <project>/...), unless it is remote; the Dockerfile "Dockerfile" unless set."""
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"context": value}
    context = _text(value.get("context")) or "."
    if base_dir is not None and not context.startswith(_REMOTE_CONTEXTS):
        context = project_relative(_host_path(context, base_dir), project_root)
    dockerfile = _text(value.get("dockerfile"))
    if dockerfile is None and value.get("dockerfile_inline") is None:
        dockerfile = "Dockerfile"
    return {"context": context, "dockerfile": dockerfile, "target": _text(value.get("target"))}


def _dict(value):
    return value if isinstance(value, dict) else {}


def _first(*values):
    for value in values:
        if value is not None:
            return _text(value)
    return None


def _resources(service):
    resources = _dict(_dict(service.get("deploy")).get("resources"))
    limits = _dict(resources.get("limits"))
    reservations = _dict(resources.get("reservations"))
    return (
        {
            "memory": memory_text(_first(limits.get("memory"), service.get("mem_limit"))),
            "cpus": cpus_text(_first(limits.get("cpus"), service.get("cpus"))),
        },
        {
            "memory": memory_text(_first(reservations.get("memory"), service.get("mem_reservation"))),
            "cpus": cpus_text(_first(reservations.get("cpus"))),
        },
    )


def _networks(service):
    """The networks a service joins: Compose's "default" when it names none and has no network_mode."""
    if service.get("networks") is None and service.get("network_mode") is None:
        return ["default"]
    return _names(service.get("networks"))


def _names(value):
    if isinstance(value, dict):
        return sorted({_text(key) for key in value})
    if isinstance(value, list):
        return sorted({_text(item) for item in value if item is not None})
    if value is None:
        return []
    return [_text(value)]


class _Redactor:
    """Everything that leaves this module outside describe_value goes through here."""

    def __init__(self, hmac_key, echoes):
        self.hmac_key = hmac_key
        # Longest first, so that a secret containing another is masked whole.
        self.echoes = sorted(set(echoes), key=len, reverse=True)

    def mask(self, text):
        if text is None:
            return None
        for secret in self.echoes:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def free_text(self, value):
        """A command, an entrypoint or a health check test: str or list of str."""
        if value is None:
            return None
        if isinstance(value, list):
            return self._words([_text(item) or "" for item in value])
        pieces = _WORDS.split(_text(value))
        pieces[0::2] = self._words(pieces[0::2])
        return self.mask("".join(pieces))

    def _words(self, words):
        shown = []
        hide_next = False
        for word in words:
            if hide_next and word and not word.startswith("-"):
                shown.append(MASK)
                hide_next = False
                continue
            if _WORDS.search(word):
                # A shell line as one item ("CMD-SHELL", "sh -c ..."): its words are checked too.
                shown.append(self.free_text(word))
                hide_next = False
                continue
            shown.append(self.mask(redact_text(word)))
            option = _OPTION.match(word)
            hide_next = bool(option and is_secret_name(option.group(1)))
        return shown

    def opaque(self, key, value):
        """A label or logging option value (real, not displayed): shown unless secret.

        A secret value is shown as its fingerprint, so that a change still shows.
        """
        text = _text(value)
        if text is None:
            return None
        record = describe_value(key, "%s" % (text,), self.hmac_key)
        if record["secret"] or isinstance(value, _Tainted):
            return "<redacted:%s>" % record["fp"]
        return self.mask(text)

    def key(self, key):
        return _safe_key(_text(key), self.hmac_key)


def _environment(environment, hmac_key):
    """{KEY: describe_value record}, from real values; secret substitutions make a value secret."""
    described = {}
    for key, value in _dict(environment).items():
        text = None if value is None else "%s" % (_text(value),)
        record = describe_value(key, text, hmac_key)
        if isinstance(value, _Tainted):
            if not record["secret"]:
                record = describe_value("SECRET", text, hmac_key)
            display = record["display"]
            if display and any(secret in display for secret in value.secrets):
                record["display"] = None
        described[_safe_key(_text(key), hmac_key)] = record
    return dict(sorted(described.items()))


def _echoes(services, interpolators):
    """Long or token-shaped secret values, to be masked wherever they are repeated."""
    found = []
    candidates = [
        (name, value)
        for interpolator in interpolators
        for name, value in interpolator.values.items()
        if name in interpolator.shown
    ]
    for service in services.values():
        for key, value in _dict(_dict(service).get("environment")).items():
            if isinstance(value, str) and not isinstance(value, _Tainted):
                candidates.append((key, value))
    for key, value in candidates:
        if value and (len(value) >= MIN_ECHO_LENGTH or looks_like_token(value)):
            record = describe_value(key, value, interpolators[0].hmac_key)
            if record["secret"]:
                found.append(value)
    return found


def _healthcheck(value, redactor):
    if value is None:
        return None
    value = _dict(value)
    test = value.get("test")
    if isinstance(test, str):
        # Compose runs a test written as a string with the container's shell.
        test = ["CMD-SHELL", test]
    retries = _text(value.get("retries"))
    if retries is not None and retries.isdigit():
        retries = "%d" % int(retries)
    return {
        "test": redactor.free_text(test),
        "interval": redactor.mask(duration_text(_text(value.get("interval")))),
        "timeout": redactor.mask(duration_text(_text(value.get("timeout")))),
        "retries": redactor.mask(retries),
        "start_period": redactor.mask(duration_text(_text(value.get("start_period")))),
        "disable": redactor.mask(flag_text(_text(value.get("disable")))),
    }


def _fingerprints(real, hmac_key):
    """What a running container is compared by where the text may hold a secret: the fingerprints
    of the command, the entrypoint, the healthcheck test (its real words) and each label value."""
    test = _dict(real.get("healthcheck")).get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    return {
        "command": words_fingerprint(hmac_key, command_words(real.get("command"))),
        "entrypoint": words_fingerprint(hmac_key, command_words(real.get("entrypoint"))),
        "healthcheck": words_fingerprint(hmac_key, test),
        "labels": {
            _safe_key(_text(key), hmac_key): fingerprint(hmac_key, "%s" % ("" if value is None else _text(value),))
            for key, value in sorted(_dict(real.get("labels")).items())
        },
    }


def _logging(value, redactor):
    if value is None:
        return None
    value = _dict(value)
    options = {}
    for key, option in _dict(value.get("options")).items():
        options[redactor.key(key)] = redactor.opaque(key, option)
    driver = redactor.mask(_text(_displayed(value.get("driver"))))
    return {"driver": driver, "options": dict(sorted(options.items()))}


def _service(real, base_dir, hmac_key, redactor, project_root=None, named_volumes=None, hashed=None):
    """One merged service in the SERVICE shape of docs/docker-facts.md; hashed: Compose's config
    hash of it (None when not modelled)."""
    environment = _environment(real.get("environment"), hmac_key)
    service = _displayed(real)

    def masked(value):
        return redactor.mask(_text(value))

    def masked_list(values):
        return [masked(value) for value in values]

    image = parse_image(service.get("image"))
    if image is not None:
        image = {key: masked(value) for key, value in image.items()}
    build = _build(service.get("build"), base_dir, project_root)
    if build is not None:
        build = {key: masked(value) for key, value in build.items()}
    ports = port_list(canonical_port(item) or _text(item) for item in service.get("ports") or [] if item is not None)
    volumes = {
        project_relative(canonical_volume(item, base_dir, named_volumes), project_root)
        for item in service.get("volumes") or []
        if item is not None
    }
    env_files = []
    for item in _as_list(service.get("env_file")) or []:
        path = _text(item.get("path") if isinstance(item, dict) else item)
        if path is not None and base_dir is not None:
            # Resolved as Compose resolves it, and shown as volumes are ("<project>/…" inside it).
            path = project_relative(_host_path(path, base_dir), project_root)
        text = masked(path)
        if text is not None and text not in env_files:
            env_files.append(text)
    labels = {
        redactor.key(key): redactor.opaque(key, "" if value is None else value)
        for key, value in _dict(real.get("labels")).items()
    }
    limits, reservations = _resources(service)
    return {
        "image": image,
        "build": build,
        "command": redactor.free_text(command_words(service.get("command"))),
        "entrypoint": redactor.free_text(command_words(service.get("entrypoint"))),
        "ports": masked_list(ports),
        "environment": environment,
        "env_file": env_files,
        "volumes": masked_list(sorted(volumes)),
        "networks": masked_list(_networks(service)),
        "depends_on": masked_list(_names(service.get("depends_on"))),
        "healthcheck": _healthcheck(service.get("healthcheck"), redactor),
        "restart": masked(service.get("restart")),
        "limits": {key: masked(value) for key, value in limits.items()},
        "reservations": {key: masked(value) for key, value in reservations.items()},
        "logging": _logging(real.get("logging"), redactor),
        "labels": dict(sorted(labels.items())),
        "user": masked(service.get("user")),
        "privileged": masked(flag_text(_text(service.get("privileged")))),
        "read_only": masked(flag_text(_text(service.get("read_only")))),
        "replicas": masked(_first(_dict(service.get("deploy")).get("replicas"), service.get("scale"))),
        "cap_add": masked_list(_names(_as_list(service.get("cap_add")))),
        "cap_drop": masked_list(_names(_as_list(service.get("cap_drop")))),
        "network_mode": masked(service.get("network_mode")),
        "profiles": masked_list(_names(_as_list(service.get("profiles")))),
        "fingerprints": _fingerprints(real, hmac_key),
        # Compose's hash is of the whole service, secrets in clear: only its fingerprint leaves.
        "config_hash": fingerprint(hmac_key, hashed) if hashed else None,
    }


# ------------------------------------------------------------------- stacks


def normalize_project_name(name):
    """Compose's rule: lower-case, only [a-z0-9_-], no leading "_" or "-"."""
    if not isinstance(name, str):
        return None
    return _PROJECT_CHARS.sub("", name.lower()).lstrip("_-") or None


def _env_file_variables(service, interpolator, base_dir, max_bytes):
    """({name: value} the service's env_file entries give its container, problem or None).

    As Compose reads them: in order, each value interpolated from the variables the files above
    gave and then the stack's own; a bare ``KEY`` takes the stack's variable; a file that is not
    required may be missing."""
    local = interpolator.child(precedence=False)
    given = {}
    for entry in service.get("env_file") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        raw = _text(entry.get("format")) == "raw"
        record, entries = _read_env_file(_host_path(entry["path"], base_dir), max_bytes, raw)
        if record["status"] == "missing" and flag_text(_text(entry.get("required"))) is None:
            continue
        problem = None
        if record["status"] != "ok":
            problem = "The env file %s is not usable (%s)." % (record["path"], record["status"])
        problem = problem or bind_env_file(local, record, [item for item in entries if item["value"] is not None])
        if problem:
            return {}, problem
        for item in entries:
            if item["key"] in local.values:
                given[item["key"]] = _tainted(*local.variable(item["key"]))
    return given, None


def _resolved(service, interpolator, defining, base_dir, max_bytes):
    """(the service with the environment Compose gives its container, problem or None): its
    env_file entries' variables (read with the variables of defining, the interpolator of the
    project that defines the service), under its own environment entries, where an entry without a
    value (``KEY`` or ``KEY:``) takes the stack's variable of that name (from its env file) if any."""
    given, problem = _env_file_variables(service, defining, base_dir, max_bytes)
    environment = _dict(service.get("environment"))
    if not given and not any(value is None and key in interpolator.values for key, value in environment.items()):
        return service, problem
    for key, value in environment.items():
        given[key] = _tainted(*interpolator.variable(key)) if value is None and key in interpolator.values else value
    return dict(service, environment=given), problem


def _services(merged, includes, interpolator, base_dir, hmac_key, project_root, project, max_bytes, hashes=None):
    """(every merged service in the SERVICE shape, secrets fingerprinted and echoes masked,
    problems); interpolator is the stack's own, includes the _Includes that read its files;
    hashes: {service: config hash} when Compose gave them, else computed here."""
    services, problems, computed = {}, [], {}
    for name, real in _dict(merged.get("services")).items():
        defining = includes.projects.get(name, interpolator)
        services[name], problem = _resolved(_dict(real), interpolator, defining, base_dir, max_bytes)
        # The hash `docker compose up` writes: of the service with its env files read into its
        # environment (`config --hash` hashes the model before it reads them).
        resolved = {key: value for key, value in services[name].items() if key != "env_file"}
        if hashes is not None:
            computed[name] = hashes.get(name)
        else:
            computed[name] = None if problem else config_hash(resolved, base_dir, interpolator.values)
        if problem:
            problems.append(problem)
    redactor = _Redactor(hmac_key, _echoes(services, [interpolator, *includes.interpolators]))
    named_volumes = volume_names(_displayed(merged.get("volumes")), project)
    shaped = {
        redactor.key(name): _service(real, base_dir, hmac_key, redactor, project_root, named_volumes, computed[name])
        for name, real in sorted(services.items())
    }
    return shaped, problems


def _prepare_files(files, documents, interpolator, extended_files, includes):
    """(prepared documents, problems): each file interpolated, checked, its extends applied and
    what it includes added."""
    prepared, problems = [], []
    # The stack's own files (one document each); extended_files appends the files extends name.
    for index, document in enumerate(documents):
        record = files[index]
        ready, why = _prepared(record, document, interpolator)
        if ready is None:
            malformed = "The compose file %s is not usable (malformed)." % record["path"]
            problems.append(malformed if why == "malformed" else why)
            continue
        ready, unresolved = _resolve_extends(ready, record["path"], extended_files)
        ready, included = includes.apply(ready, record["path"], (record["path"],), interpolator)
        problems += unresolved + included
        prepared.append(ready)
    return prepared, problems


class _Reading:
    """What the built-in reader learnt of a stack that the Compose reader needs too."""

    def __init__(self, paths, env_path, interpolator, includes, base_dir, root):
        self.paths = paths
        self.env_path = env_path
        self.interpolator = interpolator
        self.includes = includes
        self.base_dir = base_dir
        self.root = root

    def secret_variables(self):
        """{name: (value, display)} of every variable the stack's env files (its own and those of
        projects it includes) make secret or build from a secret; raises ComposeUnusable when one
        name has two values (one environment variable could not stand for both)."""
        found = {}
        interpolators = [self.interpolator, *self.includes.interpolators]
        for interpolator in interpolators:
            for name in interpolator.shown:
                found.setdefault(name, (interpolator.values[name], interpolator.shown[name]))
        for name, (value, _display) in found.items():
            if any(interpolator.values.get(name, value) != value for interpolator in interpolators):
                raise ComposeUnusable("a secret variable has another value in a project the stack includes")
        return found


def _project_name(item, merged, interpolator, base_dir):
    """As Compose names the project: the stack's own setting (-p), COMPOSE_PROJECT_NAME in its env
    file, name:, the directory."""
    name = None
    if merged is not None:
        shown = _displayed(merged.get("name"))
        name = shown if isinstance(shown, str) and MASK not in shown else None
    from_env_file = interpolator.values.get("COMPOSE_PROJECT_NAME")
    if "COMPOSE_PROJECT_NAME" in interpolator.shown:
        from_env_file = None
    directory = os.path.basename(posixpath.normpath(base_dir)) if base_dir else None
    for candidate in (item.get("project"), from_env_file, name, directory):
        project = normalize_project_name(candidate)
        if project:
            return project
    return None


def _read_builtin(item, project_dir, hmac_key, max_bytes, parse):
    """(STACK as the built-in reader reads it, _Reading or None when it could not)."""
    files_asked = item.get("files") or []
    if isinstance(files_asked, str):
        files_asked = [files_asked]
    paths = [_resolve(path, project_dir) for path in files_asked]
    files = []
    documents = []
    problems = []
    for path in paths:
        record, document = _read_compose(path, max_bytes, parse)
        files.append(record)
        documents.append(document)
        if record["status"] != "ok":
            problems.append("The compose file %s is not usable (%s)." % (path, record["status"]))
    env_record = None
    env_path = None
    interpolator = _Interpolator({}, hmac_key)
    if item.get("env_file"):
        env_path = _resolve(item["env_file"], project_dir)
        env_record, entries = _read_env_file(env_path, max_bytes)
        if env_record["status"] != "ok":
            problems.append("The env file %s is not usable (%s)." % (env_record["path"], env_record["status"]))
        else:
            problem = bind_env_file(interpolator, env_record, entries)
            if problem:
                problems.append(problem)
    if not paths:
        problems.append("No compose files are configured for this stack.")
    if parse is None:
        problems.insert(0, PYYAML_MISSING)

    merged = None
    extended_files = _ExtendedFiles(interpolator, max_bytes, parse, files)
    includes = _Includes(max_bytes, parse, files)
    if not problems:
        prepared, problems = _prepare_files(files, documents, interpolator, extended_files, includes)
        if not problems:
            merged = _merge_prepared(prepared)

    base_dir = os.path.dirname(paths[0]) if paths else None
    root = os.path.normpath(_resolve(".", project_dir)) if project_dir else None
    reading = _Reading(paths, env_path, interpolator, includes, base_dir, root)
    project = _project_name(item, merged, interpolator, base_dir)
    services = {}
    if merged is not None:
        services, problems = _services(merged, includes, interpolator, base_dir, hmac_key, root, project, max_bytes)
    stack = {
        "project": project,
        "status": "failed" if problems else "ok",
        "reason": problems[0] if problems else None,
        "files": files,
        "env_file": env_record,
        "services": services,
    }
    return stack, (None if problems else reading)


class _Included:
    """No include entries (Compose has resolved them), but the included projects' variables,
    whose secrets are masked wherever they are repeated."""

    def __init__(self, interpolators):
        self.projects = {}
        self.interpolators = interpolators


def _read_with_compose(item, builtin, reading, compose, hmac_key, max_bytes, parse):
    """STACK from Compose's model of the stack: shaped as the built-in reader shapes its own, the
    built-in reading's file records and service env_file lists kept (Compose drops the lists
    once it has read the files).  Raises ComposeUnusable."""
    answer, placeholders = compose.config(
        reading.paths, reading.env_path, item.get("project"), reading.secret_variables()
    )
    try:
        # Read as a compose file (JSON is YAML), so that its scalars are the strings a file gives.
        document = parse(answer, max(MAX_EXPANDED_CHARS, 2 * max_bytes))
    except Exception:  # whatever the loader refuses: the built-in reading stands
        raise ComposeUnusable("Compose's answer could not be read") from None
    record = {"path": reading.paths[0], "status": "ok"}
    # Compose escapes each `$` it prints as `$$`: interpolating with no variable reads them back.
    ready, why = _prepared(record, document, _Interpolator({}, hmac_key))
    if ready is None or not isinstance(ready.get("services"), dict):
        raise ComposeUnusable("Compose's answer could not be read")
    check_words(ready["services"], placeholders)
    merged = restore_secrets(_merge_prepared([ready]), placeholders)
    project = normalize_project_name(_text(merged.get("name")))
    services, problems = _services(
        merged,
        _Included(reading.includes.interpolators),
        reading.interpolator,
        reading.base_dir,
        hmac_key,
        reading.root,
        project,
        max_bytes,
        hashes=_resolved_hashes(answer, placeholders),
    )
    if problems or project is None or sorted(services) != sorted(builtin["services"]):
        raise ComposeUnusable("Compose's model names other services than the compose files")
    for name, service in services.items():
        service["env_file"] = builtin["services"][name]["env_file"]
        if _reveals(service, builtin["services"][name]):
            raise ComposeUnusable("Compose's model would show a value the built-in reader keeps secret")
    return dict(builtin, project=project, services=services)


def _resolved_hashes(answer, placeholders):
    """{service: the hash `up` writes} from Compose's JSON answer (numbers kept as Go wrote them)."""
    model = json.loads(answer, parse_int=_Raw, parse_float=_Raw)
    return {
        name: resolved_hash(real_model(service, placeholders))
        for name, service in model["services"].items()
        if isinstance(service, dict)
    }


def _reveals(service, builtin):
    """Whether an environment value the built-in reading keeps secret is not secret in service."""
    return any(
        record["secret"] and not (service["environment"].get(key) or {}).get("secret", True)
        for key, record in builtin["environment"].items()
    )


def _reader(name, version=None, note=None):
    return {"name": name, "version": version, "note": note}


def _collect_stack(item, project_dir, hmac_key, max_bytes, parse, compose):
    """STACK, read by Compose when compose is a usable Compose, else by the built-in reader
    (compose then the reason none is used, or None when the audit asked for the built-in one)."""
    stack, reading = _read_builtin(item, project_dir, hmac_key, max_bytes, parse)
    if not isinstance(compose, Compose):
        return dict(stack, reader=_reader("built-in", note=compose))
    if reading is None:
        # The built-in reader could not read it: a resource on the network (a remote include),
        # or a problem Compose refuses too; the stack's secrets are known only from its reading.
        return dict(stack, reader=_reader("built-in", note="Compose is not run on a stack the built-in reader refuses"))
    try:
        read = _read_with_compose(item, stack, reading, compose, hmac_key, max_bytes, parse)
    except ComposeUnusable as why:
        return dict(stack, reader=_reader("built-in", note="%s" % why))
    return dict(read, reader=_reader("compose", compose.version_text))


def collect_stacks(stacks, project_dir, hmac_key, max_bytes=DEFAULT_MAX_BYTES, compose=None):
    """Collect compose stacks, each item ``{"name", "files", "env_file", "project"}``; compose: the
    host's usable Compose (compose_cli.find_compose), or why none is used, or None for the built-in
    reader alone.

    Returns ``{name: STACK}`` as described in docs/docker-facts.md.
    """
    try:
        parse = make_loader()
    except ImportError:
        parse = None

    def read(item):
        return _collect_stack(item, project_dir, hmac_key, max_bytes, parse, compose)

    if not isinstance(compose, Compose) or len(stacks) < 2:
        return {item["name"]: read(item) for item in stacks}
    # Compose runs a process per stack: the stacks are read side by side, while each waits.
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(stacks), MAX_COMPOSE_RUNS)) as pool:
        return dict(zip([item["name"] for item in stacks], pool.map(read, stacks)))
