"""A rules file's three sections read together: expected differences (rules.py), the team's
policies (policies.py) and tolerances of measured figures (tolerances.py).

A file with one malformed entry in any section is not used at all (its rules would hide findings,
its tolerances silence them): the error names the file, the entry and its line. Pure Python; no
Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils import policies, tolerances
from ansible_collections.envparity.audit.plugins.plugin_utils.rules import (
    SECTIONS,
    RulesError,
    parse_document,
    section_entries,
    validate_rule,
)

# Each section: how its entries are named in messages, and their validator.
VALIDATORS = {
    "rules": ("rule", validate_rule),
    "policies": ("policy", policies.validate_policy),
    "tolerances": ("tolerance", tolerances.validate_tolerance),
}


def parse_sections(text, source):
    """{section: its validated entries} of one file's text; RulesError on the first problem."""
    document = parse_document(text, source)
    return {section: section_entries(document, text, source, section, *VALIDATORS[section]) for section in SECTIONS}


def load_rules(paths):
    """Every section of every file in order ({section: entries}), and the errors of the files that
    could not be used."""
    loaded, errors = {section: [] for section in SECTIONS}, []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                sections = parse_sections(handle.read(), path)
        except OSError as exc:
            errors.append("rules file %s: %s" % (path, exc.strerror))
            continue
        except (RulesError, UnicodeDecodeError) as exc:
            errors.append(str(exc))
            continue
        for section in SECTIONS:
            loaded[section] += sections[section]
    return loaded, errors
