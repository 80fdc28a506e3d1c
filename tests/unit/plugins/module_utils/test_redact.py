"""Secret detection, URL redaction and fingerprints."""

import base64
import random
import string

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    describe_value,
    fingerprint,
    fingerprint_bytes,
    is_secret_name,
    length_class,
    looks_like_token,
    split_url_password,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
_RNG = random.Random(1234)


def rand(alphabet, size):
    return "".join(_RNG.choice(alphabet) for _ in range(size))


ALNUM = string.ascii_letters + string.digits
# Token-shaped strings are assembled at run time so that no secret scanner
# mistakes this file for a leak.
FAKE = {
    "github": "gh" + "p_" + rand(ALNUM, 36),
    "github_pat": "github" + "_pat_" + rand(ALNUM + "_", 60),
    "slack": "xo" + "xb-" + rand(string.digits, 12) + "-" + rand(ALNUM, 24),
    "openai": "s" + "k-" + rand(ALNUM, 40),
    "openai_project": "s" + "k-proj-" + rand(ALNUM + "_-", 60),
    "stripe": "s" + "k_live_" + rand(ALNUM, 24),
    "aws_key_id": "AK" + "IA" + rand(string.ascii_uppercase + string.digits, 16),
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9.ey" + "JzdWIiOiIxMjM0In0." + rand(ALNUM + "_-", 43),
    "pem": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow" + rand(ALNUM, 40) + "\n-----END RSA PRIVATE KEY-----",
    "openssh": "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
    "gitlab": "gl" + "pat-" + rand(ALNUM, 20),
    "google": "AI" + "za" + rand(ALNUM + "_-", 35),
}


# --- names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "PASSWORD",
        "DB_PASSWORD",
        "db_password",
        "dbPassword",
        "PGPASSWORD",
        "MYSQL_PWD",
        "SMTP_PASS",
        "PASSWD",
        "GPG_PASSPHRASE",
        "SECRET",
        "SECRET_KEY",
        "SESSION_SECRET",
        "CLIENTSECRET",
        "clientSecret",
        "GITHUB_TOKEN",
        "accessToken",
        "OAuthToken",
        "API_KEY",
        "apiKey",
        "APIKey",
        "x-api-key",
        "APIKEY",
        "CERT_KEY",
        "STRIPE_KEYS",
        "SENTRY_DSN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AWS_CREDENTIAL",
        "PRIVATE_KEY_PATH",
        "AUTH",
        "BASIC_AUTH",
        "auth.header",
        "PASSWORD_SALT",
        "SESSION_COOKIE",
        "WEBHOOK_SIGNATURE",
        "db.password",
    ],
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "DEBUG",
        "PORT",
        "DATABASE_URL",
        "DB_HOST",
        "KEYBOARD_LAYOUT",
        "MONKEY",
        "MONKEY_PATCH",
        "HOCKEY_TEAM",
        "TURKEY",
        "AUTHOR",
        "AUTHORS",
        "AUTHOR_EMAIL",
        "COMPASS_DIR",
        "BYPASS_CACHE",
        "OAUTH_CLIENT_ID",
        "LOG_LEVEL",
        "TZ",
        "SALTSTACK_MASTER",
        "TOKENIZER_MODEL",
        "SECRETARY_NAME",
    ],
)
def test_ordinary_names(name):
    assert not is_secret_name(name)


# --- token shapes and entropy --------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FAKE))
def test_token_shapes(kind):
    assert looks_like_token(FAKE[kind])


@pytest.mark.parametrize("kind", ["github", "jwt", "aws_key_id", "openai"])
def test_token_shapes_inside_longer_values(kind):
    assert looks_like_token("Bearer " + FAKE[kind])
    assert looks_like_token("--token=" + FAKE[kind] + " --verbose")


@pytest.mark.parametrize(
    "value",
    [
        base64.b64encode(bytes(_RNG.getrandbits(8) for _ in range(24))).decode(),
        base64.b64encode(bytes(_RNG.getrandbits(8) for _ in range(32))).decode(),
        base64.urlsafe_b64encode(bytes(_RNG.getrandbits(8) for _ in range(32))).decode(),
        rand(ALNUM, 32),
        rand(ALNUM, 40),
        rand(ALNUM, 64),
        rand("0123456789abcdef", 32),
        rand("0123456789abcdef", 64),
        rand("0123456789ABCDEF", 40),
        rand(string.ascii_lowercase + string.digits + "!@#$%^&*(-_=+)", 50),
        "django-insecure-" + rand(string.ascii_lowercase + string.digits + "!@#$%^&*(-_=+)", 50),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ],
)
def test_high_entropy_values(value):
    assert looks_like_token(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "true",
        "False",
        "yes",
        "0",
        "8080",
        "3.14159",
        "12345678901234567890123456789012345",
        "DEBUG",
        "warning",
        "1.2.3",
        "v10.20.30-rc.1+build.20240101",
        "0b7a3c1e-8d2f-4e6a-9b1c-2d3e4f5a6b7c",
        "550E8400-E29B-41D4-A716-446655440000",
        "https://example.com/path?q=1&page=2",
        "http://localhost:8000",
        "postgres://app@db.internal:5432/app?sslmode=require",
        "s3://my-bucket/backups/2024/01/15/db.sql.gz",
        "/var/lib/postgresql/14/main/pg_hba.conf",
        "./config/settings/production.py",
        "~/projects/envparity/.env",
        "C:\\Users\\deploy\\AppData\\Local\\app.ini",
        "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin",
        "db-primary.eu-west-1.rds.amazonaws.com",
        "ip-10-0-1-23.eu-west-1.compute.internal",
        "firstname.lastname@example.com",
        "my_application_name_production",
        "MyVeryLongApplicationNameForTesting",
        "NEXT_PUBLIC_GOOGLE_ANALYTICS_MEASUREMENT_ID",
        "com.example.MyApplicationServerConfig",
        "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        "America/Argentina/Buenos_Aires",
        "2024-01-15T10:30:00.000Z",
        "registry.example.com/team/app:1.2.3",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "localhost,127.0.0.1,0.0.0.0,example.com,api.example.com",
        "en,fr,de,es,it,pt,nl,sv,da,fi,pl,cs,ru,ja,zh,ko,ar,he,tr,el",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "507f1f77bcf86cd799439011",
        "main.3f2a9c1b8e7d6f5a.chunk.js",
        "user-service-deployment-canary-v2-eu-west-1",
        "The quick brown fox jumps over the lazy dog many times",
        "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
        "%(asctime)s %(levelname)s [%(name)s] %(message)s",
        "-Xmx2g -XX:+UseG1GC -Dfile.encoding=UTF-8",
        "0 */5 * * * /usr/bin/backup.sh",
    ],
)
def test_ordinary_values_are_not_tokens(value):
    assert not looks_like_token(value)


def test_random_path_segment_is_caught():
    # A webhook URL without a password still carries its secret in the path.
    assert looks_like_token("https://hooks.example.com/services/T000/B000/" + rand(ALNUM, 24))


# --- URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "display", "password"),
    [
        ("postgresql://user:s3cretpw@host:5432/db?x=1", "postgresql://user:***@host:5432/db?x=1", "s3cretpw"),
        ("redis://:r3dispw@host/0", "redis://:***@host/0", "r3dispw"),
        ("mysql://app:pa%40ss@db.internal/app", "mysql://app:***@db.internal/app", "pa%40ss"),
        ("amqp://guest:gu3stpw@rabbit:5672/vhost", "amqp://guest:***@rabbit:5672/vhost", "gu3stpw"),
        ("mongodb+srv://u:m0ngopw@cluster0.example.net/db", "mongodb+srv://u:***@cluster0.example.net/db", "m0ngopw"),
        ("postgres://u:pw@[::1]:5432/db", "postgres://u:***@[::1]:5432/db", "pw"),
        # a raw @, / or ? in the password is still hidden
        ("mysql://u:p@ssw0rd@host/db", "mysql://u:***@host/db", "p@ssw0rd"),
        ("postgres://u:pa/ss?w0rd@host/db", "postgres://u:***@host/db", "pa/ss?w0rd"),
        # secret-named query parameters
        (
            "postgres://u:dbpass1@h/db?sslmode=require&sslpassword=k3ypass",
            "postgres://u:***@h/db?sslmode=require&sslpassword=***",
            "dbpass1\nk3ypass",
        ),
        (
            "https://api.example.com/v1?token=t0kenvalue&page=2",
            "https://api.example.com/v1?token=***&page=2",
            "t0kenvalue",
        ),
        ("https://example.com/cb?api_key=abcd1234#top", "https://example.com/cb?api_key=***#top", "abcd1234"),
        ("jdbc:postgresql://h/db?user=u&password=jdbcpw1", "jdbc:postgresql://h/db?user=u&password=***", "jdbcpw1"),
        # user name == password: masked wherever it appears
        ("postgres://admin:admin@host/db", "postgres://***:***@host/db", "admin"),
        # a token as the user name
        (
            "https://" + FAKE["github"] + "@github.com/org/repo.git",
            "https://***@github.com/org/repo.git",
            FAKE["github"],
        ),
        # a URL inside a longer value
        ("--db postgres://u:inl1nepw@h/d --verbose", "--db postgres://u:***@h/d --verbose", "inl1nepw"),
    ],
)
def test_split_url_password(url, display, password):
    assert split_url_password(url) == (display, password)
    for part in password.split("\n"):
        assert part not in split_url_password(url)[0]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not a url",
        "https://example.com/",
        "postgres://app@db:5432/app",
        "redis://:@host/0",
        "http://host:8080/@alice",
        "https://medium.com/@alice/post",
        "https://example.com/?page=2&sort=name",
        "s3://bucket/key=value",
    ],
)
def test_split_url_password_none(value):
    assert split_url_password(value) is None


# --- fingerprints ----------------------------------------------------------------


# Known vectors, computed once outside this code with
#   printf 'value' | openssl dgst -sha256 -hmac kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
# (KEY is 32 times "k"; the text is UTF-8): the first 24 hex digits of the HMAC-SHA256.
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("value", "hmac-sha256:1a88f3d1425c95a565ef0c28"),
        ("é🚀", "hmac-sha256:846bb8c8d2747de57ba9b6a9"),
    ],
)
def test_fingerprint_format_and_stability(value, expected):
    assert fingerprint(KEY, value) == expected
    assert fingerprint_bytes(KEY, value.encode("utf-8")) == expected


def test_fingerprint_is_keyed():
    assert fingerprint(KEY, "value") != fingerprint(OTHER_KEY, "value")
    assert fingerprint(KEY, "value") != fingerprint(KEY, "value2")


def test_fingerprint_handles_any_text():
    assert fingerprint(KEY, "é🚀\udcff").startswith("hmac-sha256:")


@pytest.mark.parametrize("bad_key", [b"", "text-key", None])
def test_fingerprint_rejects_missing_key(bad_key):
    with pytest.raises(ValueError) as info:
        fingerprint(bad_key, "canary-value-123")
    assert "canary-value-123" not in str(info.value)


# --- describe_value ----------------------------------------------------------------

FIELDS = {"secret", "display", "fp", "secret_fp", "length_class", "empty"}


@pytest.mark.parametrize(
    ("key", "value", "secret", "display", "secret_part"),
    [
        ("DEBUG", "false", False, "false", None),
        ("APP_URL", "https://example.com/", False, "https://example.com/", None),
        ("EMPTY", "", False, "", None),
        ("DB_PASSWORD", "hunter2-canary", True, None, "hunter2-canary"),
        ("DB_PASSWORD", "", True, None, ""),
        ("NOTES", FAKE["github"], True, None, FAKE["github"]),
        ("DATABASE_URL", "postgres://u:canarypw@db/app", True, "postgres://u:***@db/app", "canarypw"),
        ("DB_DSN", "postgres://u:canarypw@db/app", True, "postgres://u:***@db/app", "canarypw"),
        ("SENTRY_DSN", "https://sentry.example.com/12", True, None, "https://sentry.example.com/12"),
        (
            "CONNECTION",
            "Server=db;Database=app;User Id=sa;Password=Canary123;",
            True,
            "Server=db;Database=app;User Id=sa;Password=***;",
            "Canary123",
        ),
        ("JAVA_OPTS", "-Xmx1g -Ddb.password=canarypw", True, "-Xmx1g -Ddb.password=***", "canarypw"),
        # the redacted URL still carries a token elsewhere: no display at all
        ("HOOK", "https://u:canarypw@h/" + FAKE["github"], True, None, "canarypw"),
    ],
)
def test_describe_value(key, value, secret, display, secret_part):
    described = describe_value(key, value, KEY)
    assert set(described) == FIELDS
    assert described["secret"] is secret
    assert described["display"] == display
    assert described["fp"] == fingerprint(KEY, value)
    assert described["length_class"] == length_class(len(value))
    assert described["empty"] is (value == "")
    if secret:
        assert described["secret_fp"] == fingerprint(KEY, secret_part)
    else:
        assert described["secret_fp"] is None


def test_describe_none_value():
    described = describe_value("FLAG", None, KEY)
    assert described == {
        "secret": False,
        "display": None,
        "fp": fingerprint(KEY, ""),
        "secret_fp": None,
        "length_class": "empty",
        "empty": True,
    }
    assert describe_value("API_TOKEN", None, KEY)["secret"] is True


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, "empty"), (1, "1-7"), (4, "1-7"), (7, "1-7"), (8, "8-15"), (15, "8-15"), (16, "16-31")]
    + [(31, "16-31"), (32, "32-63"), (63, "32-63"), (64, "64+"), (5000, "64+")],
)
def test_length_class(length, expected):
    assert length_class(length) == expected


def test_a_pin_and_its_neighbours_share_one_length_class():
    # The exact length never leaves the host: a 4-digit PIN looks like any 1-7 character secret.
    described = [describe_value("PIN_SECRET", value, KEY) for value in ("7", "4821", "4821937")]
    assert [d["length_class"] for d in described] == ["1-7"] * 3
    assert all(set(d) == FIELDS and 4 not in d.values() for d in described)


def test_same_password_in_different_urls_has_same_secret_fp():
    dev = describe_value("DATABASE_URL", "postgres://app:reused-pw@dev-db/app", KEY)
    prod = describe_value("DATABASE_URL", "postgres://app:reused-pw@prod-db/app", KEY)
    assert dev["fp"] != prod["fp"]
    assert dev["secret_fp"] == prod["secret_fp"]


@pytest.mark.parametrize(
    "value",
    [
        "canary-" + rand(ALNUM, 40),
        "postgres://u:canary-" + rand(ALNUM, 12) + "@h/db",
        "Password=canary-" + rand(ALNUM, 12) + ";Server=x",
        FAKE["pem"],
        FAKE["jwt"],
    ],
)
@pytest.mark.parametrize("key", ["SECRET_KEY", "PLAIN_SETTING"])
def test_secret_never_in_the_description(key, value):
    described = describe_value(key, value, KEY)
    assert described["secret"] is True
    rendered = repr(described)
    secret = value.split("canary-")[1][:12] if "canary-" in value else value
    assert secret not in rendered
