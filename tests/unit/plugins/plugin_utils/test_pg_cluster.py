"""Server settings and roles compared across environments (pg_cluster), on hand-built catalogs."""

import json

from tests.pg_facts import (
    CANARY,
    assign,
    checks,
    pair,
    record,
    setting,
)

# --- secrets ---------------------------------------------------------------------------------------------


def test_secret_setting_and_role_config_are_never_shown():
    def plant(fp):
        def mutate(db):
            db["catalog"]["settings"]["app.api_key"] = setting("x" * 32, secret=True, fp=fp)
            db["catalog"]["roles"]["app"]["config"]["app.api_key"] = record("y" * 40, secret=True, fp=fp + "-role")

        return mutate

    found = pair(mutate_dev=plant("hmac-sha256:dev-" + CANARY), mutate_prod=plant("hmac-sha256:prod-" + CANARY))
    assert checks(found) == [
        ("roles.app.config.app.api_key", "changed", "postgres.role_changed"),
        ("settings.app.api_key", "changed", "postgres.setting_changed"),
    ]
    by_check = {f["check"]: f for f in found}
    assert by_check["postgres.setting_changed"]["values"] == {
        "dev": "‹secret A, 32 chars›",
        "prod": "‹secret B, 32 chars›",
    }
    assert by_check["postgres.role_changed"]["values"] == {
        "dev": "‹secret A, 40 chars›",
        "prod": "‹secret B, 40 chars›",
    }
    assert all(f["severity"] == "info" and "fingerprint" in f["message"] for f in found)
    assert CANARY not in json.dumps(found)


def test_equal_secrets_are_not_drift_and_an_unset_one_shows_as_default():
    same = "hmac-sha256:same-" + CANARY
    assert (
        pair(
            mutate_dev=assign(setting("z" * 20, secret=True, fp=same), "settings", "app.token"),
            mutate_prod=assign(setting("z" * 20, secret=True, fp=same), "settings", "app.token"),
        )
        == []
    )
    found = pair(mutate_dev=assign(setting("z" * 20, secret=True, fp=same), "settings", "app.token"))
    assert found[0]["values"] == {"dev": "‹secret A, 20 chars›", "prod": "default"}
    assert CANARY not in json.dumps(found)
