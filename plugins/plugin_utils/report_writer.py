"""Render the Markdown report from its view and write both files, or neither, under a unique name.

Pure Python (jinja2 only); no Ansible imports.
"""

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time

import jinja2

from ansible_collections.envparity.audit.plugins.plugin_utils.junit import LATEST_JUNIT, REPORT_JUNIT

REPORT_MARKDOWN = "report.md"
REPORT_JSON = "report.json"
LATEST = "latest"


def split_header(source):
    """Honour the '#jinja2: trim_blocks: True, ...' first line that Ansible templates use."""
    first, _, rest = source.partition("\n")
    if not first.startswith("#jinja2:"):
        return {}, source
    options = {}
    for pair in first[len("#jinja2:") :].split(","):
        name, _, value = pair.partition(":")
        options[name.strip()] = value.strip().lower() == "true"
    return options, rest


class TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled report templates kept between runs, in Jinja's own per-user cache directory (created
    owner-only; Jinja refuses one that is not): compiling the template is most of the render's
    time (~9 of ~10 ms for the default template), rendering it ~1 ms. A template is recompiled when
    its text, its first-line options, Jinja or Python change. A cache that cannot be read or
    written only costs the compile."""

    def load_bytecode(self, bucket):
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket):
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def template_cache():
    """The cache, or None when Jinja's directory for it cannot be made safely."""
    try:
        return TemplateCache()
    except (OSError, RuntimeError):
        return None


def render_markdown(template_path, view, cache=None):
    """cache: a jinja2 bytecode cache (default: template_cache())."""
    with open(template_path, encoding="utf-8") as handle:
        text = handle.read()
    options, source = split_header(text)
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: source),
        bytecode_cache=cache if cache is not None else template_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=options.get("trim_blocks", False),
        lstrip_blocks=options.get("lstrip_blocks", False),
    )
    # The cache is keyed by name and source: the name carries the options the header line set.
    name = "%s|%s" % (os.path.abspath(template_path), text.partition("\n")[0] if options else "")
    return environment.get_template(name).render(view=view)


class ReportWriteError(Exception):
    """The report could not be written; nothing of this run was left in the report directory."""


def report_name(when, run_id):
    """A name no other run takes: UTC stamp to the microsecond, then the run id (which has a random part)."""
    seconds, microseconds = divmod(round(when * 1000000), 1000000)
    return "%s.%06dZ-%s" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)), microseconds, run_id)


def _write_synced(path, content):
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())  # a full disk shows here, not later, behind a report said written


def _point(link, target):
    """Make `link` a symlink to `target`, replacing what was there in one rename."""
    if os.path.islink(link) and os.readlink(link) == target:
        return
    temporary = os.path.join(os.path.dirname(link), ".tmp-link-%s" % secrets.token_hex(8))
    os.symlink(target, temporary)
    try:
        os.replace(temporary, link)
    except OSError:
        os.unlink(temporary)
        raise


def _unlink_own_link(link, target):
    """Remove `link` when it is the symbolic link to `target` that write_report made (nothing else:
    a file or a link of the user's own stays)."""
    if os.path.islink(link) and os.readlink(link) == target:
        os.unlink(link)


def write_report(report_dir, name, markdown, document, junit=None):
    """Write <report_dir>/<name>/report.md and report.json (and report.junit.xml when `junit` is
    given), then switch <report_dir>/latest to them.

    Both files or neither: they are written into a hidden directory that is renamed to <name>
    only when both are on disk. `latest` is a symlink to the newest pair, replaced in one rename,
    and latest.md and latest.json are fixed symlinks through it, so at any moment they belong to
    the same run. Without `junit`, a latest.junit.xml link left by an earlier run with JUnit on is
    removed before the switch: it would otherwise stand beside the new report as if it were its
    JUnit (a link to a missing file, which a CI's test view reads as no tests or an error).
    Returns the paths; raises ReportWriteError after removing what it wrote."""
    payload = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    final = os.path.join(report_dir, name)
    written = None  # what to remove if a later step fails
    try:
        os.makedirs(report_dir, exist_ok=True)
        written = tempfile.mkdtemp(prefix=".tmp-", dir=report_dir)
        os.chmod(written, 0o755)
        _write_synced(os.path.join(written, REPORT_MARKDOWN), markdown)
        _write_synced(os.path.join(written, REPORT_JSON), payload)
        if junit is not None:
            _write_synced(os.path.join(written, REPORT_JUNIT), junit)
        os.rename(written, final)
        written = final
        _point(os.path.join(report_dir, "latest.md"), os.path.join(LATEST, REPORT_MARKDOWN))
        _point(os.path.join(report_dir, "latest.json"), os.path.join(LATEST, REPORT_JSON))
        if junit is not None:
            _point(os.path.join(report_dir, LATEST_JUNIT), os.path.join(LATEST, REPORT_JUNIT))
        else:
            _unlink_own_link(os.path.join(report_dir, LATEST_JUNIT), os.path.join(LATEST, REPORT_JUNIT))
        _point(os.path.join(report_dir, LATEST), name)  # the switch, last: nothing can fail after it
    except BaseException as exc:
        if written is not None:
            shutil.rmtree(written, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ReportWriteError("cannot write the report in %s: %s" % (report_dir, exc.strerror or exc)) from None
        raise
    paths = {
        "markdown": os.path.join(final, REPORT_MARKDOWN),
        "json": os.path.join(final, REPORT_JSON),
        "latest_markdown": os.path.join(report_dir, "latest.md"),
        "latest_json": os.path.join(report_dir, "latest.json"),
    }
    if junit is not None:
        paths.update(junit=os.path.join(final, REPORT_JUNIT), latest_junit=os.path.join(report_dir, LATEST_JUNIT))
    return paths
