"""Write the report of a run from its run directory alone.

Used by the report action plugin, and by the callback when no host remained in the play to run
the report step (every host unreachable), so that a report is written whenever a run was opened.
Pure Python; no Ansible imports.
"""

import os
import shutil
import time

from ansible_collections.envparity.audit.plugins.plugin_utils import run_dir
from ansible_collections.envparity.audit.plugins.plugin_utils.audit import build_audit
from ansible_collections.envparity.audit.plugins.plugin_utils.report_model import build_document, build_view
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import (
    render_markdown,
    report_name,
    write_report,
)

SETTINGS = (
    "environments",
    "production_environments",
    "groups",
    "rules_files",
    "fail_on",
    "report_dir",
    "template",
    "inventory",
    "keep_run_dir",
)


def write_run_report(run_directory, now=None):
    """Diff, render and write; returns {report: paths, summary, gate}.

    `now` is a POSIX time (default: the current one). Raises AuditConfigError or ReportWriteError."""
    # Collection is over: the key goes first, whatever happens next, and even if the facts stay.
    run_dir.discard_key(run_directory)
    settings = run_dir.load_settings(run_directory)
    audit = build_audit(
        run_directory,
        settings["environments"],
        settings["production_environments"],
        settings["groups"],
        run_dir.load_requests(run_directory),
        settings["rules_files"],
        settings["fail_on"],
        settings.get("areas"),
    )
    now = time.time() if now is None else now
    document = build_document(audit, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), settings["inventory"])
    markdown = render_markdown(settings["template"], build_view(document))
    name = report_name(now, os.path.basename(os.path.normpath(run_directory)))
    paths = write_report(settings["report_dir"], name, markdown, document)
    if not settings["keep_run_dir"]:
        shutil.rmtree(run_directory, ignore_errors=True)
    return {"report": paths, "summary": document["summary"], "gate": document["gate"]}
