"""The psql transport (pg_psql) without a server: what psql's and docker's failures mean, and how
psql is given the connection.  The collector's tests run the same code against a real server."""

import pytest

from ansible_collections.envparity.audit.plugins.module_utils import pg_psql

DB = {"name": "app", "dbname": "appdb", "user": "auditor", "host": "db.internal", "port": 5433, "container": None}
IN_CONTAINER = dict(DB, host=None, port=None, container="app-db-1")
REQUEST = {"docker_host": "unix:///run/docker.sock", "lock_timeout_ms": 1234, "statement_timeout_ms": 5678}


@pytest.mark.parametrize(
    ("db", "code", "stderr", "status", "phrase"),
    [
        (DB, 2, 'psql: error: FATAL:  password authentication failed for user "auditor"', "auth_failed", "rejected"),
        (DB, 2, "fe_sendauth: no password supplied", "auth_failed", "none was given"),
        (DB, 2, 'FATAL:  role "auditor" does not exist', "auth_failed", "user auditor"),
        (DB, 2, 'FATAL:  database "appdb" does not exist', "unknown_database", "db.internal:5433"),
        (DB, 3, "ERROR:  55P03: canceling statement due to lock timeout", "lock_timeout", "1234 ms"),
        (DB, 3, "ERROR:  57014: canceling statement due to statement timeout", "timeout", "5678 ms"),
        (DB, 2, "connection to server failed: Connection refused", "unreachable", "database appdb at db.internal"),
        (DB, 3, "ERROR:  42501: permission denied for table x", "failed", "permission denied"),
        (DB, 9, "something else", "failed", "exit code 9"),
        (IN_CONTAINER, 1, "Error response from daemon: No such container: app-db-1", "container_not_running", ""),
        (IN_CONTAINER, 1, "Error response from daemon: Container abc is not running", "container_not_running", ""),
        (IN_CONTAINER, 127, 'exec: "psql": executable file not found in $PATH', "psql_missing", "app-db-1"),
        (IN_CONTAINER, 1, "Cannot connect to the Docker daemon at unix:///x", "unreachable", "/run/docker.sock"),
    ],
)
def test_classify(db, code, stderr, status, phrase):
    error = pg_psql.classify(code, stderr, db, REQUEST)
    assert (error.status, phrase in error.reason) == (status, True), error.reason
    assert "FATAL" not in error.reason and "ERROR" not in error.reason


def test_the_password_travels_in_the_environment_and_only_names_on_docker_s_command_line():
    env = pg_psql.pg_environment(IN_CONTAINER, "s3cret-Pw", 60)
    argv, full = pg_psql.command(IN_CONTAINER, REQUEST, env)
    assert full["PGPASSWORD"] == "s3cret-Pw" and not any("s3cret" in arg for arg in argv)
    assert argv[argv.index("-H") + 1] == "unix:///run/docker.sock"
    assert argv[argv.index("PGPASSWORD") - 1 : argv.index("PGPASSWORD") + 1] == ["-e", "PGPASSWORD"]


@pytest.mark.parametrize("port", ["54x32", True, 0, 70000])
def test_a_bad_port_is_refused(port):
    with pytest.raises(pg_psql.PgError) as raised:
        pg_psql.pg_environment(dict(DB, port=port), None, 60)
    assert raised.value.status == "failed"
