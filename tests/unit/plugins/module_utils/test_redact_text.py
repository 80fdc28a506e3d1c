"""redact_text (free text such as commit subjects and remote URLs) and fingerprint_bytes."""

import random
import string

import pytest

from ansible_collections.envparity.audit.plugins.module_utils.redact import (
    MASK,
    fingerprint,
    fingerprint_bytes,
    redact_text,
)

KEY = b"k" * 32
_RNG = random.Random(4321)
ALNUM = string.ascii_letters + string.digits


def rand(alphabet, size):
    return "".join(_RNG.choice(alphabet) for _ in range(size))


# Token-shaped strings are assembled at run time so that no secret scanner mistakes this file
# for a leak.
TOKENS = {
    "github": "gh" + "p_" + rand(ALNUM, 36),
    "gitlab": "gl" + "pat-" + rand(ALNUM, 20),
    "openai": "s" + "k-" + rand(ALNUM, 40),
    "stripe": "s" + "k_live_" + rand(ALNUM, 24),
    "slack": "xo" + "xb-" + rand(string.digits, 12) + "-" + rand(ALNUM, 24),
    "aws_key_id": "AK" + "IA" + rand(string.ascii_uppercase + string.digits, 16),
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9.ey" + "JzdWIiOiIxMjM0In0." + rand(ALNUM + "_-", 43),
    "random": rand(ALNUM, 40),
    "hex": rand("0123456789abcdef", 40),
}


# ---------------------------------------------------------------- ordinary text is kept


@pytest.mark.parametrize(
    "text",
    [
        "Initial commit",
        "Add the reminders table",
        "Fix: handle None in parse_url()",
        "Merge pull request #12 from team/feature-reminders",
        "Merge branch 'main' of https://github.com/team/app",
        'Revert "Add reminders to the API"',
        "Bump fastapi from 0.110.0 to 0.111.1 in /requirements",
        "Update docker/docker-compose.prod.yml: 2 workers",
        "Read REMINDER_INTERVAL from config/settings.py",
        "Hotfix: give the worker more time per task",
        "WIP on main: 5f4d8b9 Add things",
        "Use postgresql://app@db:5432/ai_assistant in compose",
        "Contact ops@example.com before deploying",
        "Rename SECRET_KEY handling (no value here)",
        "Set password policy to 12 characters",
        "ssh://git@git.example.invalid:2222/team/app.git",
        "git@github.com:team/app.git",
        "https://git.example.invalid/team/ai_assistant.git",
        "/srv/git/ai_assistant.git",
        "",
        "   ",
        "Ünïcödé subject — with dashes…",
    ],
)
def test_ordinary_text_is_unchanged(text):
    assert redact_text(text) == text


def test_none_is_empty_text():
    assert redact_text(None) == ""


# ---------------------------------------------------------------- secrets are masked


@pytest.mark.parametrize("name", sorted(TOKENS))
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{}", MASK),
        ("Rotate the token {}", "Rotate the token " + MASK),
        ("Oops, committed {} by mistake", "Oops, committed " + MASK + " by mistake"),
        ("key ({}) removed", "key (" + MASK + ") removed"),
        ('use "{}" now', 'use "' + MASK + '" now'),
        ("tokens {},{};{}", "tokens " + MASK + "," + MASK + ";" + MASK),
    ],
)
def test_tokens_in_text(name, template, expected):
    token = TOKENS[name]
    out = redact_text(template.format(token, token, token))
    assert out == expected
    assert token not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "https://deploy:{t}@git.example.invalid/team/ai_assistant.git",
            "https://deploy:***@git.example.invalid/team/ai_assistant.git",
        ),
        ("https://deploy:hunter22@git.example.invalid/x.git", "https://deploy:***@git.example.invalid/x.git"),
        ("https://{t}@github.com/team/app.git", "https://***@github.com/team/app.git"),
        ("https://oauth2:{t}@gitlab.example.invalid/a/b.git", "https://oauth2:***@gitlab.example.invalid/a/b.git"),
        (
            "https://git.example.invalid/app.git?private_token={t}&ref=main",
            "https://git.example.invalid/app.git?private_token=***&ref=main",
        ),
        (
            "Pull from https://bot:{t}@git.example.invalid/x.git into main",
            "Pull from https://bot:***@git.example.invalid/x.git into main",
        ),
        ("Set DB_PASSWORD=hunter22 for staging", "Set DB_PASSWORD=*** for staging"),
        ("api_key={t} in settings", "api_key=*** in settings"),
        # A secret found in a URL is masked wherever else it appears.
        ("https://u:hunter22@h/x and again hunter22", "https://u:***@h/x and again ***"),
        # Only the random piece of a path or URL is masked; the host and the path stay.
        (
            "Download https://files.example.invalid/share/{r}/report.pdf",
            "Download https://files.example.invalid/share/***/report.pdf",
        ),
    ],
)
def test_credentials_in_urls_and_assignments(text, expected):
    token, random_piece = TOKENS["github"], TOKENS["random"]
    source = text.format(t=token, r=random_piece)
    out = redact_text(source)
    assert out == expected
    assert token not in out and random_piece not in out and "hunter22" not in out


def test_a_private_key_masks_everything():
    text = "Add -----BEGIN " + "RSA PRIVATE KEY----- MIIEow" + rand(ALNUM, 40)
    assert redact_text(text) == MASK


def test_every_planted_token_disappears_from_a_long_text():
    words = ["Deploy"]
    for token in TOKENS.values():
        words += [token, "and", "https://u:%s@h.example.invalid/x" % token]
    out = redact_text(" ".join(words))
    assert not [name for name, token in TOKENS.items() if token in out]
    assert out.startswith("Deploy *** and https://u:***@h.example.invalid/x")


# ---------------------------------------------------------------- fingerprint_bytes


def test_fingerprint_bytes_matches_fingerprint_of_text():
    for text in ("", "abc", "héllo wörld", "x" * 10000):
        assert fingerprint_bytes(KEY, text.encode("utf-8")) == fingerprint(KEY, text)


def test_fingerprint_bytes_of_chunks_equals_the_whole():
    data = bytes(range(256)) * 1000
    chunks = (data[i : i + 4096] for i in range(0, len(data), 4096))
    assert fingerprint_bytes(KEY, chunks) == fingerprint_bytes(KEY, data)
    assert fingerprint_bytes(KEY, [bytearray(data)]) == fingerprint_bytes(KEY, memoryview(data))
    assert fingerprint_bytes(KEY, []) == fingerprint_bytes(KEY, b"")


def test_fingerprint_bytes_depends_on_key_and_content():
    assert fingerprint_bytes(KEY, b"a") != fingerprint_bytes(KEY, b"b")
    assert fingerprint_bytes(KEY, b"a") != fingerprint_bytes(b"o" * 32, b"a")
    assert fingerprint_bytes(KEY, b"a").startswith("hmac-sha256:")
    assert len(fingerprint_bytes(KEY, b"a")) == len("hmac-sha256:") + 24


@pytest.mark.parametrize("key", [b"", "text-key", None])
def test_fingerprint_bytes_needs_a_bytes_key(key):
    with pytest.raises(ValueError):
        fingerprint_bytes(key, b"a")
