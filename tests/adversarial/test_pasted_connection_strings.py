"""A careless user pastes a connection string, password included, into the host or the dbname of
a drift_postgres entry. The audit must say the database could not be read, and never show the
password: not in the report, the JSON, the terminal (even at -vvvv) or the runner's events.
Nothing listens where the strings point (a closed loopback port), so no server is involved."""

import json
import secrets

import pytest

from tests.adversarial.conftest import two_local_hosts

PASSWORD = "PastedPw" + secrets.token_hex(6)
CLOSED_PORT = 2999  # nothing listens there: 127.0.0.1 only

# dev pastes a URL into dbname, prod a libpq keyword string into host; both point nowhere.
DEV_DATABASE = {
    "name": "app",
    "dbname": "postgresql://app:%s@127.0.0.1:%d/app" % (PASSWORD, CLOSED_PORT),
    "user": "app",
    "host": "127.0.0.1",
    "port": CLOSED_PORT,
}
PROD_DATABASE = {
    "name": "app",
    "dbname": "app",
    "user": "app",
    "host": "host=127.0.0.1 port=%d password=%s" % (CLOSED_PORT, PASSWORD),
}


@pytest.mark.parametrize("verbosity", [0, 4])
def test_a_pasted_password_is_never_shown(tmp_path, audit, verbosity):
    inventory = two_local_hosts(
        tmp_path / "hosts.yml", {"drift_postgres": [DEV_DATABASE]}, {"drift_postgres": [PROD_DATABASE]}
    )
    result = audit(cmdline="-i %s --tags postgres" % inventory, verbosity=verbosity)
    report = result.report
    statuses = {
        label: finding["values"][label]
        for finding in report["findings"]
        if finding["check"] == "postgres.database_status"
        for label in ("dev", "prod")
    }
    # Both databases are reported as not read (never as the same, never silently).
    assert set(statuses) == {"dev", "prod"}, report["findings"]
    assert all(value not in (None, "ok") for value in statuses.values()), statuses
    places = {"latest.md": result.markdown, "latest.json": json.dumps(report), "stdout": result.stdout}
    places.update(
        {
            str(path): path.read_text(errors="replace")
            for root in (result.report_dir, result.private_dir)
            for path in root.rglob("*")
            if path.is_file() and not path.is_symlink() and path.name != "command"
        }
    )
    assert [place for place, text in places.items() if PASSWORD in text] == []
    # Control: the strings did reach the reasons, masked there (their other parts still shown).
    assert "postgresql://app:***@127.0.0.1:%d/app" % CLOSED_PORT in json.dumps(report)
    assert "host=127.0.0.1 port=%d password=***" % CLOSED_PORT in json.dumps(report)
