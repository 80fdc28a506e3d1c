"""The deps area of the lab: real Python virtualenvs, a Node project and dpkg status files in dev
and prod, with planted package drift.

Python: `python3 -m venv` in /var/lib/envparity-lab/dev/deps/venv and /home/deploy/deps/venv
(beside the checkouts, not in them, so that the git area's planted working trees stay as they
are), with small pure-Python distributions installed by the venv's own pip, offline:
`pip install --no-index --no-deps --find-links <cache>`. The wheels are written here (a wheel is a
zip of the module and its .dist-info) into the lab's state directory, so a rebuild needs no
network. prod's own project (labapp) is installed editable (`pip install -e`) through a tiny
in-tree PEP 660 build backend, so pip itself records it as editable in direct_url.json.
Node: package.json, package-lock.json (v3 in dev, v2 in prod), node_modules/*/package.json and
an .nvmrc (Node 20 in dev, 18 in prod). OS: a dpkg status file and Node's node_version.h under
each environment's drift_deps_os_root. Containers: the `py`, `pyapp` and `pyarch` stacks (below),
dev's `pyarch` service on an image whose recorded platform is linux/arm64/v8.

A venv is rebuilt only when what should be in it changes (a stamp of its wheels and install
plan); `replant` gives the canary (a token in a VCS URL of labclient's metadata) a fresh value, so
prod's venv is rebuilt then.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import docker_area
import postgres_area
from labcore import DEV, PROD, STATE_DIR, Ctx, Env, LabError, canary_maker, ensure_dir, run, write_file

NAME = "deps"
CANARY_PREFIX = "deps."
WHEELS = STATE_DIR / "deps" / "wheels"
BASE = {DEV.name: STATE_DIR / "dev" / "deps", PROD.name: Path("/home/deploy/deps")}
PYTHON = "/usr/bin/python3"
SUBJECT = "python app"


def _finding(subject: str, key: str, kind: str, check: str) -> dict:
    return {"area": "deps", "subject": subject, "key": key, "kind": kind, "check": check, "expected": False}


PLANTED = [
    _finding(SUBJECT, "labcore-utils", "changed", "deps.version_changed"),  # 1.4.0 vs 1.2.0: minor
    _finding(SUBJECT, "labhttp", "changed", "deps.version_changed"),  # 2.0.1 vs 1.9.0: major; prod's lock behind
    _finding(SUBJECT, "labpinned", "changed", "deps.version_changed"),  # pip run by hand on prod
    _finding(SUBJECT, "labpinned", "policy", "deps.pin_violated"),  # requirements.txt says ==3.1.0
    _finding(SUBJECT, "labpinned", "changed", "deps.lock_mismatch"),  # prod's lock says 3.1.0
    _finding(SUBJECT, "labextra", "extra", "deps.package_extra"),  # only in prod
    _finding(SUBJECT, "labextra", "policy", "deps.unlocked_installed"),  # in no lock of prod
    _finding(SUBJECT, "labextra", "policy", "deps.prerelease_production"),  # 0.5.0rc1
    _finding(SUBJECT, "labapp", "policy", "deps.direct_install_production"),  # pip install -e in prod
    _finding(SUBJECT, "labclient", "policy", "deps.requirement_unmet"),  # needs labcore-utils>=1.3
    _finding("node web", "colors-lab", "changed", "deps.version_changed"),  # 2.1.0 vs 2.0.0
    _finding("node web", "lock: colors-lab", "changed", "deps.lock_version_changed"),  # prod's lock behind
    _finding("node web", "debug-lab", "extra", "deps.package_extra"),  # installed by hand in prod
    _finding("node web", "debug-lab", "policy", "deps.unlocked_installed"),
    _finding("os packages", "libssl3", "changed", "deps.version_changed"),  # patch level
    _finding("os packages", "netcat-openbsd", "extra", "deps.package_extra"),
    _finding("containers app", "@no_python", "policy", "deps.container_no_python"),  # busybox services
    _finding("containers py", "api/hotfix", "extra", "deps.package_extra"),  # pip run inside prod's container
    _finding("containers pyapp", "api/os:hotfix-tool", "extra", "deps.package_extra"),  # apt run in prod's container
    _finding("containers pyapp", "api/node web:leftpad-lab", "changed", "deps.version_changed"),  # npm run in it
    _finding("containers pyapp", "api/node web:leftpad-lab", "policy", "deps.pin_violated"),  # outside ^1.0.0
    _finding("containers pyapp", "api/node web:leftpad-lab", "changed", "deps.lock_mismatch"),  # the lock: 1.1.0
    _finding("containers pyarch", "api/@image.platform", "changed", "deps.image_platform_changed"),  # arm64 dev
    _finding("node web", "@node", "changed", "deps.runtime_changed"),  # .nvmrc: 20.11.1 vs 18.19.0
    _finding("runtimes", "node", "changed", "deps.runtime_changed"),  # node_version.h: 20.11.1 vs 18.20.4
    # The docker area sees the same plant in the compose files: dev's pyarch declares the arm64 image.
    dict(
        _finding("pyarch", "services.api.image", "changed", "docker.declared_changed"),
        area="docker",
    ),
]


def planted() -> list[dict]:
    return [dict(entry) for entry in PLANTED]


# ---------------------------------------------------------------- wheels


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def wheel_bytes(name: str, version: str, requires=(), files: dict | None = None) -> bytes:
    """A pure-Python wheel: the module `name` (or the given files) and its .dist-info."""
    module = name.replace("-", "_")
    dist_info = "%s-%s.dist-info" % (module, version)
    metadata = "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: envparity lab package\n" % (name, version)
    metadata += "".join("Requires-Dist: %s\n" % item for item in requires)
    if any("extra ==" in item for item in requires):
        metadata += "Provides-Extra: private\n"
    content = dict(files or {"%s/__init__.py" % module: '__version__ = "%s"\n' % version})
    content[dist_info + "/METADATA"] = metadata
    content[dist_info + "/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: envparity-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(path, data.encode()) for path, data in sorted(content.items())]
    content[dist_info + "/RECORD"] = "\n".join(record + [dist_info + "/RECORD,,"]) + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(content.items()):
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _wheels(token: str) -> dict[str, bytes]:
    private = "labtoken @ git+https://deploy:%s@git.example.invalid/lab/labtoken.git ; extra == 'private'" % token
    wanted = [
        ("labcore-utils", "1.2.0", ()),
        ("labcore-utils", "1.4.0", ()),
        ("labhttp", "1.9.0", ()),
        ("labhttp", "2.0.1", ()),
        ("labpinned", "3.1.0", ()),
        ("labpinned", "3.2.0", ()),
        ("labextra", "0.5.0rc1", ()),
        ("labclient", "1.0.0", ("labcore-utils>=1.3", private)),
        ("labapp", "0.1.0", ("labclient",)),
    ]
    return {
        "%s-%s-py3-none-any.whl" % (name.replace("-", "_"), version): wheel_bytes(name, version, requires)
        for name, version, requires in wanted
    }


# ---------------------------------------------------------------- what each environment holds

INSTALLED = {
    DEV.name: {
        "labcore-utils": "1.4.0",
        "labhttp": "2.0.1",
        "labpinned": "3.1.0",
        "labclient": "1.0.0",
        "labapp": "0.1.0",
    },
    PROD.name: {
        "labcore-utils": "1.2.0",
        "labhttp": "1.9.0",
        "labpinned": "3.2.0",
        "labclient": "1.0.0",
        "labextra": "0.5.0rc1",
    },
}
REQUIREMENTS = "labcore-utils>=1.0\nlabhttp>=1.9\nlabpinned==3.1.0\nlabclient\nlabapp\n"
# dev's lock is what dev runs; prod's is dev's previous lock (labcore-utils and labhttp behind).
LOCKS = {
    DEV.name: dict(INSTALLED[DEV.name]),
    PROD.name: dict(INSTALLED[DEV.name], **{"labcore-utils": "1.2.0", "labhttp": "1.9.0"}),
}

# An in-tree PEP 517/660 backend: pip builds labapp's editable wheel with it, offline.
BACKEND = '''"""The lab's build backend for labapp: a wheel, or an editable wheel (a .pth to the source)."""
import base64, hashlib, os, zipfile

NAME, VERSION = "labapp", "0.1.0"
DIST = "%s-%s.dist-info" % (NAME, VERSION)


def _write(directory, files):
    path = os.path.join(directory, "%s-%s-py3-none-any.whl" % (NAME, VERSION))
    record = []
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (name, digest, len(data.encode())))
        archive.writestr(DIST + "/RECORD", "\\n".join(record + [DIST + "/RECORD,,"]) + "\\n")
    return os.path.basename(path)


def _meta():
    return {
        DIST + "/METADATA": "Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n" % (NAME, VERSION)
        + "Requires-Dist: labclient\\n",
        DIST + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: lab\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = _meta()
    files["labapp/__init__.py"] = "VERSION = '0.1.0'\\n"
    return _write(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    files = _meta()
    files["__editable__.labapp.pth"] = os.path.abspath("src") + "\\n"
    return _write(wheel_directory, files)
'''
PYPROJECT = (
    '[build-system]\nrequires = []\nbuild-backend = "labbackend"\nbackend-path = ["."]\n\n'
    '[project]\nname = "labapp"\nversion = "0.1.0"\n'
)


def _plan(env: Env, wheels: dict[str, bytes]) -> str:
    """The stamp of what env's venv holds: its wheels and its install plan."""
    used = sorted("%s-%s" % (name.replace("-", "_"), version) for name, version in INSTALLED[env.name].items())
    digest = hashlib.sha256()
    for name in sorted(wheels):
        if any(name.startswith(prefix + "-") for prefix in used):
            digest.update(name.encode() + wheels[name])
    digest.update(json.dumps(INSTALLED[env.name], sort_keys=True).encode())
    digest.update((BACKEND + PYPROJECT).encode() if env is PROD else b"")
    return digest.hexdigest()


def _build_venv(ctx: Ctx, env: Env, wheels: dict[str, bytes]) -> None:
    base = BASE[env.name]
    venv = base / "venv"
    stamp = _plan(env, wheels)
    stamp_file = base / "venv.stamp"
    if venv.is_dir() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return
    if venv.exists():
        shutil.rmtree(venv)
    run([PYTHON, "-m", "venv", str(venv)], user=env.owner, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    offline = ["--no-index", "--no-deps", "--find-links", str(WHEELS)]
    specs = ["%s==%s" % (name, version) for name, version in sorted(INSTALLED[env.name].items())]
    run([*pip, "install", *offline, *specs], user=env.owner, timeout=300)
    if env is PROD:
        # prod's own project, editable (someone ran pip install -e . on the server).
        run(
            [*pip, "install", *offline, "--no-build-isolation", "-e", str(base / "src" / "labapp")],
            user=env.owner,
            timeout=300,
        )
    write_file(ctx, stamp_file, stamp + "\n", 0o644, env.owner)
    ctx.changed("built the %s virtualenv %s" % (env.name, venv))


# ---------------------------------------------------------------- Node and dpkg

NODE_MANIFEST = {"name": "web", "version": "1.0.0", "dependencies": {"leftpad-lab": "^1.0.0", "colors-lab": "^2.0.0"}}
NODE_INSTALLED = {
    DEV.name: {"leftpad-lab": "1.1.0", "colors-lab": "2.1.0"},
    PROD.name: {"leftpad-lab": "1.1.0", "colors-lab": "2.0.0", "debug-lab": "4.0.0"},
}
NODE_LOCKED = {
    DEV.name: {"leftpad-lab": "1.1.0", "colors-lab": "2.1.0"},
    PROD.name: {"leftpad-lab": "1.1.0", "colors-lab": "2.0.0"},
}


# Node's version: what each project declares (.nvmrc) and what each OS root installed (the
# node_version.h header Node's packages install; the audit reads it, never runs node).
NVMRC = {DEV.name: "20.11.1", PROD.name: "18.19.0"}
NODE_HEADER = {DEV.name: (20, 11, 1), PROD.name: (18, 20, 4)}


def node_version_h(version: tuple) -> str:
    return (
        "#ifndef SRC_NODE_VERSION_H_\n#define SRC_NODE_VERSION_H_\n\n"
        "#define NODE_MAJOR_VERSION %d\n#define NODE_MINOR_VERSION %d\n#define NODE_PATCH_VERSION %d\n\n"
        "#define NODE_VERSION_IS_RELEASE 1\n#endif  // SRC_NODE_VERSION_H_\n" % version
    )


def _node_lock(env: Env) -> dict:
    packages = {"": {"name": "web", "version": "1.0.0", "dependencies": NODE_MANIFEST["dependencies"]}}
    packages.update({"node_modules/%s" % name: {"version": version} for name, version in NODE_LOCKED[env.name].items()})
    lock = {
        "name": "web",
        "version": "1.0.0",
        "lockfileVersion": 3 if env is DEV else 2,
        "requires": True,
        "packages": packages,
    }
    if env is PROD:  # v2 also carries v1's tree for old npm
        lock["dependencies"] = {name: {"version": version} for name, version in NODE_LOCKED[env.name].items()}
    return lock


DPKG = {
    DEV.name: {"libssl3": "3.0.11-1~deb12u2", "curl": "7.88.1-10+deb12u5", "tzdata": "2024a-0+deb12u1"},
    PROD.name: {
        "libssl3": "3.0.9-1",
        "curl": "7.88.1-10+deb12u5",
        "tzdata": "2024a-0+deb12u1",
        "netcat-openbsd": "1.219-1",
    },
}


def _dpkg_status(env: Env) -> str:
    stanzas = [
        "Package: %s\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n"
        "Version: %s\nDescription: lab\n a planted package\n" % (name, version)
        for name, version in sorted(DPKG[env.name].items())
    ]
    return "\n".join(stanzas)


def _write_json(ctx: Ctx, path: Path, data, owner: str) -> None:
    write_file(ctx, path, json.dumps(data, indent=2) + "\n", 0o644, owner)


def _build_env(ctx: Ctx, env: Env, wheels: dict[str, bytes]) -> None:
    base = BASE[env.name]
    for directory in (
        base,
        base / "web",
        base / "web" / "node_modules",
        base / "osroot",
        base / "osroot" / "var",
        base / "osroot" / "var" / "lib",
        base / "osroot" / "var" / "lib" / "dpkg",
        base / "osroot" / "usr",
        base / "osroot" / "usr" / "local",
        base / "osroot" / "usr" / "local" / "include",
        base / "osroot" / "usr" / "local" / "include" / "node",
    ):
        ensure_dir(ctx, directory, 0o755, env.owner)
    write_file(ctx, base / "requirements.txt", REQUIREMENTS, 0o644, env.owner)
    lock = "".join("%s==%s\n" % item for item in sorted(LOCKS[env.name].items()))
    write_file(ctx, base / "requirements.lock", "# pip-compile output (lab)\n" + lock, 0o644, env.owner)
    if env is PROD:
        src = base / "src" / "labapp"
        for directory in (base / "src", src, src / "src", src / "src" / "labapp"):
            ensure_dir(ctx, directory, 0o755, env.owner)
        write_file(ctx, src / "labbackend.py", BACKEND, 0o644, env.owner)
        write_file(ctx, src / "pyproject.toml", PYPROJECT, 0o644, env.owner)
        write_file(ctx, src / "src" / "labapp" / "__init__.py", "VERSION = '0.1.0'\n", 0o644, env.owner)
    _build_venv(ctx, env, wheels)
    web = base / "web"
    _write_json(ctx, web / "package.json", NODE_MANIFEST, env.owner)
    _write_json(ctx, web / "package-lock.json", _node_lock(env), env.owner)
    for name, version in NODE_INSTALLED[env.name].items():
        ensure_dir(ctx, web / "node_modules" / name, 0o755, env.owner)
        _write_json(ctx, web / "node_modules" / name / "package.json", {"name": name, "version": version}, env.owner)
    write_file(ctx, base / "osroot" / "var" / "lib" / "dpkg" / "status", _dpkg_status(env), 0o644, env.owner)
    write_file(ctx, web / ".nvmrc", NVMRC[env.name] + "\n", 0o644, env.owner)
    header = base / "osroot" / "usr" / "local" / "include" / "node" / "node_version.h"
    write_file(ctx, header, node_version_h(NODE_HEADER[env.name]), 0o644, env.owner)


def build(ctx: Ctx) -> None:
    token = ctx.canary("deps.prod.vcs_token", canary_maker("ghp_", 30))
    ctx.save_canaries(CANARY_PREFIX)
    ensure_dir(ctx, WHEELS.parent, 0o755)
    ensure_dir(ctx, WHEELS, 0o755)
    wheels = _wheels(token)
    for name, data in wheels.items():
        write_file(ctx, WHEELS / name, data, 0o644)
    for env in (DEV, PROD):
        _build_env(ctx, env, wheels)


def status() -> list[tuple[str, bool, str]]:
    checks = []
    for env in (DEV, PROD):
        venv = BASE[env.name] / "venv"
        ok = (venv / "pyvenv.cfg").is_file() and (BASE[env.name] / "venv.stamp").is_file()
        checks.append(("%s deps" % env.name, ok, str(venv) if ok else "%s not built" % venv))
    return checks


def purge(ctx: Ctx) -> None:
    path = BASE[PROD.name]
    if path.exists():
        if path != Path("/home/deploy/deps"):
            raise LabError("refusing to delete %s" % path)
        shutil.rmtree(path)
        ctx.changed("deleted %s" % path)


# ---------------------------------------------------------------- a Python image

# lab/python:3.11, built like lab/postgres:15 from this machine's own interpreter, its libraries
# and its standard library, with a few lab distributions installed by pip (--target) in its
# site directory: tests and the benchmark run containers of it to read a real container's Python.
PYTHON_IMAGE = "lab/python:3.11"
PYTHON_BINARY = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
IMAGE_SITE = "usr/local/lib/python3.11/dist-packages"
IMAGE_PACKAGES = {"labcore-utils": "1.4.0", "labhttp": "2.0.1", "labclient": "1.0.0"}
SKIPPED_STDLIB = frozenset(
    {"__pycache__", "config-3.11-x86_64-linux-gnu", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"}
)


def python_rootfs_tar() -> bytes:
    return _python_root().close()


def _python_root():
    root = postgres_area._RootFs()
    for directory in ("dev", "proc", "sys", "etc", "root"):
        root.directory(directory, 0o700 if directory == "root" else 0o755)
    root.directory("tmp", 0o1777)
    root.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    for path in postgres_area._shared_libraries([PYTHON_BINARY]):
        root.host_path(path)
    root.host_path(str(PYTHON_BINARY))
    root.symlink("usr/bin/python3", "python3.11")
    root._tree(STDLIB, skip=SKIPPED_STDLIB)
    with tempfile.TemporaryDirectory() as staging:
        specs = ["%s==%s" % item for item in sorted(IMAGE_PACKAGES.items())]
        run(
            [
                PYTHON,
                "-m",
                "pip",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
                "install",
                "--no-index",
                "--no-deps",
                "--find-links",
                str(WHEELS),
                "--target",
                staging,
                *specs,
            ],
            timeout=300,
        )
        for dirpath, _, filenames in os.walk(staging):
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if "__pycache__" not in path.parts:
                    root.file("%s/%s" % (IMAGE_SITE, path.relative_to(staging)), path.read_bytes())
    return root


# lab/pyapp:1.0: lab/python:3.11's files, and what an application image also holds: this machine's
# own dpkg database and os-release (copied as they are when the image is built: a real status file
# of hundreds of packages) and a Node project in /app (package.json, a v3 lock, node_modules) as dev's.
APP_IMAGE = "lab/pyapp:1.0"
APP_NODE = "/app"


def app_rootfs_tar() -> bytes:
    root = _python_root()
    root.file("var/lib/dpkg/status", Path("/var/lib/dpkg/status").read_bytes())
    root.file("etc/os-release", Path("/etc/os-release").read_bytes())
    app = APP_NODE.strip("/")
    root.file(app + "/package.json", (json.dumps(NODE_MANIFEST, indent=2) + "\n").encode())
    root.file(app + "/package-lock.json", (json.dumps(_node_lock(DEV), indent=2) + "\n").encode())
    for name, version in sorted(NODE_LOCKED[DEV.name].items()):
        root.file(
            "%s/node_modules/%s/package.json" % (app, name), json.dumps({"name": name, "version": version}).encode()
        )
    return root.close()


def docker_images() -> list[tuple]:
    """Images this area contributes to the lab's engine (docker_area imports them when missing)."""
    command = ['CMD ["python3", "-c", "import time; time.sleep(1e9)"]']
    return [(PYTHON_IMAGE, command, python_rootfs_tar), (APP_IMAGE, command, app_rootfs_tar)]


# ---------------------------------------------------------------- a Python service in each environment

# Stack `py` (drift_compose in inventory/lab): one service, api, of lab/python:3.11, declared the
# same in dev and prod (compose files beside the venvs), so the docker area finds nothing on it.
# In prod, someone ran pip inside the running container: a distribution (hotfix 0.1) that its
# image lacks. Compose brings it up (docker_area.compose_up), like the application's stacks.
PY_HEALTH_TEST = ("CMD", "python3", "-I", "-c", "pass")
PY_COMMAND = ("python3", "-I", "-c", "import time; time.sleep(1e9)")


def _python_service(prefix: str, compose: str) -> dict:
    """{env: Stack}: one service, api, in dev and prod, from the compose file `compose`."""
    return {
        env.name: docker_area.Stack(env, "%s_%s" % (prefix, env.name), (str(BASE[env.name] / compose),), None)
        for env in (DEV, PROD)
    }


def container_name(stack) -> str:
    return "%s-api-1" % stack.project


PY_STACKS = _python_service("pyservice", "compose.yml")
# Stack `pyapp` (drift_compose in inventory/lab): one service, api, of lab/pyapp:1.0 (the same in
# dev and prod, compose files beside the venvs), a stack of its own so that the `py` stack stays
# as it is. In prod, someone worked by hand in the running container: apt installed a package (the
# stanza dpkg appends to its status file) and npm installed leftpad-lab 2.0.0 in /app (outside
# package.json's ^1.0.0, not the lock's 1.1.0).
APP_STACKS = _python_service("pyapp", "app-compose.yml")
# Stack `pyarch` (drift_compose in inventory/lab): one service, api, of lab/python:3.11 in prod and
# of lab/python:3.11-arm64 in dev, as a dev on an arm64 Mac builds it. A second architecture cannot
# run on this machine, so that image is a recorded one: lab/python:3.11 saved by the engine and
# loaded again with its config's architecture set to arm64 (variant v8). The engine stores and
# reports the recorded platform; the layers are this machine's files, so its container runs.
ARM_IMAGE = "lab/python:3.11-arm64"
ARM_PLATFORM = {"architecture": "arm64", "variant": "v8"}
ARCH_STACKS = _python_service("pyarch", "arch-compose.yml")


def stack_image(stack) -> str:
    if stack is ARCH_STACKS[DEV.name]:
        return ARM_IMAGE
    return APP_IMAGE if stack in APP_STACKS.values() else PYTHON_IMAGE


def recorded_platform_tar(saved: bytes, ref: str, platform: dict) -> bytes:
    """An image archive (as `docker save` writes it) again, its config's platform fields replaced
    by platform and its one tag by ref; the layers are kept as they are."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(saved)) as source, tarfile.open(fileobj=out, mode="w") as archive:
        manifest = json.loads(source.extractfile("manifest.json").read())
        old = manifest[0]["Config"]
        config = json.loads(source.extractfile(old).read())
        config.update(platform)
        blob = json.dumps(config, sort_keys=True).encode()
        manifest[0]["Config"] = hashlib.sha256(blob).hexdigest() + ".json"
        manifest[0]["RepoTags"] = [ref]
        for member in source.getmembers():
            if member.name not in (old, "manifest.json", "repositories"):
                archive.addfile(member, source.extractfile(member) if member.isfile() else None)
        for name, data in ((manifest[0]["Config"], blob), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _ensure_arm_image(ctx: Ctx) -> None:
    if docker_area._get("/images/%s/json" % docker_area._quote(ARM_IMAGE)) is not None:
        return  # an existing tag is kept, as docker_area keeps its images
    # GET /images/{name}/get answers the archive's bytes (docker_area.api decodes answers as text).
    conn = docker_area._UnixConnection(docker_area.SOCKET, 600)
    try:
        conn.request("GET", "%s/images/%s/get" % (docker_area.API, docker_area._quote(PYTHON_IMAGE)))
        response = conn.getresponse()
        saved = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise LabError("docker save of %s failed (HTTP %s)" % (PYTHON_IMAGE, response.status))
    archive = recorded_platform_tar(saved, ARM_IMAGE, ARM_PLATFORM)
    answer = docker_area._call("POST", "/images/load?quiet=1", archive, content_type="application/x-tar", timeout=600)
    if "error" in str(answer):
        raise LabError("docker load of %s failed: %s" % (ARM_IMAGE, answer))
    ctx.changed("loaded image %s (its platform recorded as linux/arm64/v8)" % ARM_IMAGE)


HOTFIX = "/usr/local/lib/python3.11/dist-packages/hotfix-0.1.dist-info"
PIP_BY_HAND = (
    "import os; d = %r; os.makedirs(d, exist_ok=True); "
    "open(d + '/METADATA', 'w').write('Metadata-Version: 2.1\\nName: hotfix\\nVersion: 0.1\\n'); "
    "open(d + '/INSTALLER', 'w').write('pip\\n')" % HOTFIX
)
# apt-get install by hand: the stanza dpkg appends to its status file (a package the image lacks).
APT_PACKAGE = ("hotfix-tool", "1.0-1")
APT_BY_HAND = (
    "open('/var/lib/dpkg/status', 'a').write('\\nPackage: %s\\nStatus: install ok installed\\nPriority: optional\\n"
    "Architecture: amd64\\nVersion: %s\\nDescription: installed by hand in the container\\n')" % APT_PACKAGE
)
APT_MARKER = "/var/lib/dpkg/status"
NPM_BY_HAND = (
    'open(\'%s/node_modules/leftpad-lab/package.json\', \'w\').write(\'{"name": "leftpad-lab", "version": "2.0.0"}\')'
    % APP_NODE
)


def _compose(stack) -> str:
    return (
        "# A Python service (lab/deps_area.py).\n"
        "name: %s\n"
        "services:\n"
        "  api:\n"
        "    image: %s\n"
        "    command: %s\n"
        "    healthcheck:\n"
        "      test: %s\n"
        "      interval: 5s\n"
        "      timeout: 5s\n"
        "      retries: 2\n"
        "    restart: unless-stopped\n"
        "    deploy:\n"
        "      resources:\n"
        "        limits:\n"
        "          memory: 64M\n"
    ) % (stack.project, stack_image(stack), json.dumps(list(PY_COMMAND)), json.dumps(list(PY_HEALTH_TEST)))


def _by_hand(ctx: Ctx, name: str, marker: str, script: str, what: str) -> None:
    """prod's drift: files written into the running container (as pip, apt or npm would), once
    (marker: a path the container's changes list once it was done)."""
    changes = docker_area._get("/containers/%s/changes" % name) or []
    if any(item.get("Path") == marker for item in changes):
        return
    created = docker_area._call("POST", "/containers/%s/exec" % name, {"Cmd": ["python3", "-I", "-B", "-c", script]})
    docker_area._call("POST", "/exec/%s/start" % created["Id"], {"Detach": True})
    deadline = time.monotonic() + 30
    while (docker_area._get("/exec/%s/json" % created["Id"]) or {}).get("Running") and time.monotonic() < deadline:
        time.sleep(0.1)
    ctx.changed("installed %s by hand in %s" % (what, name))


def _wait_healthy(names) -> None:
    deadline = time.monotonic() + 60
    while any(docker_area.health(name) != "healthy" for name in names):
        if time.monotonic() > deadline:
            raise LabError("the Python service did not become healthy: %s" % ", ".join(names))
        time.sleep(0.5)


def start(ctx: Ctx) -> None:
    _ensure_arm_image(ctx)
    stacks = [*PY_STACKS.values(), *APP_STACKS.values(), *ARCH_STACKS.values()]
    for stack in stacks:
        write_file(ctx, stack.path(stack.files[0]), _compose(stack), 0o644, stack.env.owner)
        docker_area.compose_up(ctx, docker_area.Run(stack, ("api",)))
    _by_hand(ctx, container_name(PY_STACKS[PROD.name]), HOTFIX, PIP_BY_HAND, "hotfix 0.1")
    _by_hand(
        ctx,
        container_name(APP_STACKS[PROD.name]),
        APT_MARKER,
        APT_BY_HAND + "; " + NPM_BY_HAND,
        "%s %s and leftpad-lab 2.0.0" % APT_PACKAGE,
    )
    _wait_healthy([container_name(stack) for stack in stacks])
