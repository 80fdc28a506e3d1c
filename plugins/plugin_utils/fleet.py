"""Fleets in the Markdown report: the hosts of one environment that agree are one group.

The JSON sidecar keeps one value per host column; the Markdown report shows one column per
environment, where a cell is the environment's value when its hosts agree, and otherwise each
distinct value with the hosts that have it ("49 hosts: `INFO` · prod-17: `DEBUG`"), the largest
group first. Host name lists are folded beyond a few names, so a 50-host environment with the
same drift as one host gives a report of about the same length.
Pure Python; no Ansible imports.
"""

from ansible_collections.envparity.audit.plugins.plugin_utils.findings import SHOWN_NAMES, join_names


def environment_groups(columns):
    """[(environment, [column, ...])] in column order: the report's columns."""
    groups = []
    for column in columns:
        if not groups or groups[-1][0] != column["environment"]:
            groups.append((column["environment"], []))
        groups[-1][1].append(column)
    return groups


def value_groups(shown_values, hosts):
    """[(shown value, [host, ...])], the largest group first, then in host order."""
    groups = {}
    for value, host in zip(shown_values, hosts, strict=True):
        groups.setdefault(value, []).append(host)
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def group_cell(shown_values, hosts):
    """One environment's cell: its value when its hosts agree, else each value with its hosts."""
    groups = value_groups(shown_values, hosts)
    if len(groups) == 1:
        return groups[0][0]
    parts = []
    for value, members in groups:
        who = "%d hosts" % len(members) if len(members) > SHOWN_NAMES else join_names(members)
        parts.append("%s: %s" % (who, value))
    return " · ".join(parts)
