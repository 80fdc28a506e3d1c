"""Render the Markdown report from its view and write both files atomically.

Pure Python (jinja2 only); no Ansible imports.
"""

import json
import os

import jinja2

from ansible_collections.envparity.audit.plugins.plugin_utils.run_dir import atomic_write


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


def render_markdown(template_path, view):
    with open(template_path, encoding="utf-8") as handle:
        options, source = split_header(handle.read())
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=options.get("trim_blocks", False),
        lstrip_blocks=options.get("lstrip_blocks", False),
    )
    return environment.from_string(source).render(view=view)


def write_report(report_dir, stamp, markdown, document):
    """reports/<stamp>-envparity.{md,json} plus stable latest.{md,json}; returns the paths."""
    payload = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    paths = {
        "markdown": os.path.join(report_dir, "%s-envparity.md" % stamp),
        "json": os.path.join(report_dir, "%s-envparity.json" % stamp),
        "latest_markdown": os.path.join(report_dir, "latest.md"),
        "latest_json": os.path.join(report_dir, "latest.json"),
    }
    for name, content in (
        ("markdown", markdown),
        ("json", payload),
        ("latest_markdown", markdown),
        ("latest_json", payload),
    ):
        atomic_write(paths[name], content)
    return paths
