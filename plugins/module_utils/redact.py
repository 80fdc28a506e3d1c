"""Decide on the host whether a value is secret, and redact it.

Standard library only: this module runs on the audited hosts.  A secret leaves
the host only as a keyed fingerprint (HMAC-SHA256 with a per-run key) or as a
display in which the secret part is replaced by ``***``.  Nothing here logs,
prints or raises with a value in the message.
"""

import hashlib
import hmac
import math
import re
from collections import Counter

MASK = "***"
# Secrets at least this long are also masked wherever else they appear.
MIN_ECHO_LENGTH = 4

# --- secret-looking names -------------------------------------------------

# Name parts, after splitting on "_", "-", "." and camelCase humps.  Matched
# as whole parts, so KEY matches API_KEY but not MONKEY or KEYBOARD_LAYOUT.
_SECRET_PARTS = frozenset(
    {
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PWD",
        "PASS",
        "PASSPHRASE",
        "SECRET",
        "SECRETS",
        "TOKEN",
        "TOKENS",
        "KEY",
        "KEYS",
        "APIKEY",
        "PRIVKEY",
        "DSN",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "PRIVATE",
        "AUTH",
        "AUTHORIZATION",
        "SALT",
        "PEPPER",
        "COOKIE",
        "COOKIES",
        "SIGNATURE",
        "SIG",
    }
)
# Names written as one word (PGPASSWORD, CLIENTSECRET, ACCESSTOKEN).  Only
# suffixes that do not end ordinary words: not PASS (COMPASS) nor KEY (MONKEY).
_SECRET_SUFFIXES = (
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "SECRETKEY",
    "PRIVATEKEY",
    "ACCESSKEY",
    "AUTHKEY",
    "MASTERKEY",
    "SIGNINGKEY",
    "ENCRYPTIONKEY",
)
# Splits a name into parts; separators are simply not matched.
_NAME_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def is_secret_name(key):
    """True when a variable or parameter name says its value is secret."""
    parts = [part.upper() for part in _NAME_PART.findall(key or "")]
    return any(part in _SECRET_PARTS or part.endswith(_SECRET_SUFFIXES) for part in parts)


# --- token-looking values -------------------------------------------------

# Known token shapes.  Each starts after a character that cannot belong to
# the token (lookbehind), so a search scans every run of characters once.
_TOKEN_SHAPES = re.compile(
    r"""
      -----BEGIN[A-Z0-9 ]{0,40}PRIVATE\ KEY
    | (?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.  # JWT
    | (?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])         # AWS key id
    | (?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{30,}                        # GitHub
    | (?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{30,}
    | (?<![A-Za-z0-9_])glpat-[A-Za-z0-9_-]{20,}                          # GitLab
    | (?<![A-Za-z0-9-])xox[abposr]-[A-Za-z0-9-]{10,}                     # Slack
    | (?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}                            # OpenAI & co
    | (?<![A-Za-z0-9_])[rs]k_(?:live|test)_[A-Za-z0-9]{16,}              # Stripe
    | (?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}                            # Google API
    | (?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}                               # npm
    """,
    re.VERBOSE,
)

# High entropy: a random string of 24+ characters.  Entropy alone cannot tell
# "MyVeryLongApplicationName" (4.2 bits/char) from a 24-character random
# base64 string (3.9 to 4.3), so a string must also break into short
# letter/digit runs (camelCase-aware): random strings average under 3
# characters per run, identifiers and words 4 or more.  Hex gets its own
# rule: 32+ hex digits (a 128-bit value; 24-digit MongoDB ids stay visible)
# mixing letters and digits, so a bare git commit hash counts as secret.
# Measured on 2000 random strings per alphabet and length (24 to 64): base62
# and base64 are caught 98-100% of the time, 32+ hex digits always,
# single-case alphanumerics about 90% (the name usually catches the rest).
HIGH_ENTROPY_MIN_LENGTH = 24
HIGH_ENTROPY_MIN_BITS = 3.5
HIGH_ENTROPY_MAX_RUN = 3.5
HEX_MIN_LENGTH = 32
HEX_MIN_BITS = 3.0

_RUN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_WORD_SPLIT = re.compile(r"[\s,;]+")
_PIECE_SPLIT = re.compile(r"[/\\?&=#:@;]+")
_BASE64ISH = re.compile(r"[A-Za-z0-9+/=_-]+")
# Ordinary shapes that are never secret on their own.
_ORDINARY = re.compile(
    r"""
      [+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?                      # number
    | [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}
    | v?[0-9]+(?:\.[0-9]+){1,3}(?:[-+][0-9A-Za-z.+-]*)?                  # semver
    | (?:[A-Za-z0-9._%+-]+@)?(?:[A-Za-z0-9_-]+\.)+[A-Za-z]{2,63}\.?      # host, email
    | (?:md5|sha1|sha224|sha256|sha384|sha512):[0-9a-fA-F]+              # digest
    """,
    re.VERBOSE,
)
_PATH_START = re.compile(r"(?:/|~/|\./|\.\./|[A-Za-z]:\\)")
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.:-]*://")


def _entropy(text):
    """Shannon entropy in bits per character."""
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def _is_random(piece):
    if len(piece) < HIGH_ENTROPY_MIN_LENGTH or _ORDINARY.fullmatch(piece):
        return False
    if _HEX.fullmatch(piece):
        # Digits only is a number; letters only is a word.
        return (
            len(piece) >= HEX_MIN_LENGTH
            and not piece.isdigit()
            and not piece.isalpha()
            and _entropy(piece) >= HEX_MIN_BITS
        )
    runs = _RUN.findall(piece)
    if not runs or sum(map(len, runs)) / len(runs) > HIGH_ENTROPY_MAX_RUN:
        return False
    return _entropy(piece) >= HIGH_ENTROPY_MIN_BITS


def _pieces(word):
    """The parts of a word to test: a URL or path is tested segment by segment."""
    if _URL_START.match(word) or _PATH_START.match(word):
        return _PIECE_SPLIT.split(word)
    if "/" in word and not _BASE64ISH.fullmatch(word):
        # "registry.example.com/team/app:1.2" or "text/html": not base64.
        return _PIECE_SPLIT.split(word)
    return [word]


def looks_like_token(value):
    """True when a value has a known token shape or looks random."""
    if not value:
        return False
    if _TOKEN_SHAPES.search(value):
        return True
    for raw in _WORD_SPLIT.split(value):
        word = raw.strip("\"'()[]{}<>")
        if len(word) >= HIGH_ENTROPY_MIN_LENGTH and any(_is_random(piece) for piece in _pieces(word)):
            return True
    return False


# --- URLs and inline assignments ------------------------------------------

# A URL runs from its scheme to the next blank or quote.  The lookbehind makes
# the search start only at the beginning of a run of scheme characters.
_URL = re.compile(r"(?<![A-Za-z0-9+.:-])([A-Za-z][A-Za-z0-9+.-]*(?::[A-Za-z][A-Za-z0-9+.-]*)*://)([^\s\"'<>`]*)")
# "name=value" after a URL query/parameter separator.
_URL_PARAM = re.compile(r"([?&;#])([^=&;#?]*)=([^&;#]*)")
# "name=value" in a connection string or option list (Password=x;  -Dpw=x).
_ASSIGNMENT = re.compile(r"(^|[\s?&;#,])(-{0,2}[A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*([^&;#,\s]*)")


def _mask_userinfo(rest, found):
    """Mask the password in the authority of a URL (after "scheme://")."""
    cut = len(rest)
    for sep in "/?#":
        index = rest.find(sep)
        if index != -1:
            cut = min(cut, index)
    authority = rest[:cut]
    at = authority.rfind("@")
    if at == -1 and "@" in rest[cut:] and not authority.startswith("["):
        host, colon, port = authority.partition(":")
        # "user:pa/ss@host": a raw "/", "?" or "#" in the password.  A digit
        # port ("host:8080/@x") is an ordinary URL.
        if colon and host and not port.isdigit():
            at = rest.rfind("@")
    if at == -1:
        return rest
    user, colon, password = rest[:at].partition(":")
    if colon and password:
        found.append(password)
        return user + ":" + MASK + rest[at:]
    if not colon and looks_like_token(user):
        # "https://TOKEN@host": the user name is the credential.
        found.append(user)
        return MASK + rest[at:]
    return rest


def _mask_pairs(regex, text, found):
    """Mask the values of secret-named "name=value" pairs matched by regex."""

    def replace(match):
        name, value = match.group(2, 3)
        if value and value != MASK and is_secret_name(name):
            found.append(value)
            return match.group()[: match.start(3) - match.start()] + MASK
        return match.group()

    return regex.sub(replace, text)


def _redact(value, assignments):
    """Return (display, secret) or None; see split_url_password."""
    found = []

    def replace_url(match):
        scheme, rest = match.groups()
        rest = _mask_userinfo(rest, found)
        if not assignments:
            rest = _mask_pairs(_URL_PARAM, rest, found)
        return scheme + rest

    display = _URL.sub(replace_url, value)
    if assignments:
        display = _mask_pairs(_ASSIGNMENT, display, found)
    if not found:
        return None
    # A secret that also appears elsewhere (user == password) is masked there
    # too.  Shorter ones are left alone: "pw" inside "pwa" reveals nothing.
    long_secrets = [secret for secret in found if len(secret) >= MIN_ECHO_LENGTH]
    for secret in long_secrets:
        display = display.replace(secret, MASK)
    if any(secret in display for secret in long_secrets):
        display = MASK
    return display, "\n".join(found)


def split_url_password(value):
    """Split a URL carrying a password into (display, password), else None.

    The display keeps scheme, user, host, port, path and query, with the
    password and secret-named query parameters (password=, token=, key=...)
    replaced by ``***``.  Any scheme is accepted (jdbc:postgresql:// too), as
    are URLs inside a longer value.  A user name that is itself a token
    (https://TOKEN@host) counts as the password.  When several parts are
    masked, the second item holds them joined by newlines.
    """
    if not value or "://" not in value:
        return None
    return _redact(value, assignments=False)


# --- fingerprints and the description of a value ---------------------------

# The exact length of a short secret narrows a brute force of its fingerprint (a 4-digit PIN
# falls at once), so a length leaves the host only as one of these classes: (label, first
# length above it).  The bound at 16 keeps "shorter than 16 characters" decidable.
LENGTH_CLASSES = (("1-7", 8), ("8-15", 16), ("16-31", 32), ("32-63", 64))
LONGEST_LENGTH_CLASS = "64+"


def length_class(length):
    """The class of a length: "empty", "1-7", "8-15", "16-31", "32-63" or "64+"."""
    if not length:
        return "empty"
    for label, above in LENGTH_CLASSES:
        if length < above:
            return label
    return LONGEST_LENGTH_CLASS


# Fingerprints paired with their baseline twins per host run at most: a bound on what a hostile
# or huge host adds to its facts (the lab's hosts make a few thousand).
MAX_BASELINE_PAIRS = 200000


class BaselineKey(bytes):
    """The run key (it is the bytes), carrying a second, persistent baseline key.

    Every fingerprint made with it is also made with the baseline key, and the pair (run
    fingerprint -> baseline fingerprint) is kept in ``pairs``: the controller then stores a
    baseline's facts with baseline fingerprints only, and maps a stored baseline back onto this
    run's fingerprints, with no collector knowing about baselines. Dict assignment is atomic, so
    the areas' collector threads may share one.
    """

    def __new__(cls, run_key, baseline_key):
        if not isinstance(baseline_key, bytes) or not baseline_key:
            raise ValueError("baseline_key must be non-empty bytes")
        made = super().__new__(cls, run_key)
        made.baseline_key = baseline_key
        made.pairs = {}
        made.truncated = False
        return made


def _pair(hmac_key, run_fp, mac):
    if isinstance(hmac_key, BaselineKey):
        if len(hmac_key.pairs) < MAX_BASELINE_PAIRS:
            hmac_key.pairs[run_fp] = "hmac-sha256:" + mac.hexdigest()[:24]
        else:
            hmac_key.truncated = True
    return run_fp


def fingerprint(hmac_key, value):
    """Keyed fingerprint: "hmac-sha256:" + 24 hex characters (paired with its baseline twin when
    hmac_key is a BaselineKey)."""
    if not isinstance(hmac_key, bytes) or not hmac_key:
        raise ValueError("hmac_key must be non-empty bytes")
    # surrogatepass: a stray surrogate must not make fingerprinting fail.
    data = value.encode("utf-8", "surrogatepass")
    run_fp = "hmac-sha256:" + hmac.new(hmac_key, data, hashlib.sha256).hexdigest()[:24]
    if isinstance(hmac_key, BaselineKey):
        return _pair(hmac_key, run_fp, hmac.new(hmac_key.baseline_key, data, hashlib.sha256))
    return run_fp


def describe_value(key, value, hmac_key):
    """Describe a value in the only form that may leave the host.

    Returns ``secret``, ``display`` (clear value, a redacted form, or None),
    ``fp`` (fingerprint of the whole value), ``secret_fp`` (fingerprint of
    the secret part, for reuse detection; None when not secret),
    ``length_class`` (see length_class; never the exact length) and ``empty``.
    """
    text = "" if value is None else value
    redacted = _redact(text, assignments=True) if text else None
    secret = bool(is_secret_name(key) or redacted is not None or looks_like_token(text))
    display = None
    if not secret:
        display = value
    elif redacted is not None and not looks_like_token(redacted[0]):
        display = redacted[0]
    secret_part = redacted[1] if redacted is not None else text
    return {
        "secret": secret,
        "display": display,
        "fp": fingerprint(hmac_key, text),
        "secret_fp": fingerprint(hmac_key, secret_part) if secret else None,
        "length_class": length_class(len(text)),
        "empty": not text,
    }


def fingerprint_bytes(hmac_key, data):
    """fingerprint() of raw bytes, or of an iterable of byte chunks (a file
    read piece by piece, so that a large file is never held whole).

    For UTF-8 text, fingerprint_bytes(key, text.encode()) equals
    fingerprint(key, text).
    """
    if not isinstance(hmac_key, bytes) or not hmac_key:
        raise ValueError("hmac_key must be non-empty bytes")
    macs = [hmac.new(hmac_key, digestmod=hashlib.sha256)]
    if isinstance(hmac_key, BaselineKey):
        macs.append(hmac.new(hmac_key.baseline_key, digestmod=hashlib.sha256))
    chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    for chunk in chunks:
        for mac in macs:
            mac.update(chunk)
    run_fp = "hmac-sha256:" + macs[0].hexdigest()[:24]
    return _pair(hmac_key, run_fp, macs[1]) if len(macs) > 1 else run_fp


# --- free text ---------------------------------------------------------------

# A word of free text: what lies between blanks, commas and semicolons.
_TEXT_WORD = re.compile(r"[^\s,;]+")
# Punctuation around a word that belongs to the sentence, not to the word.
_WORD_EDGES = "\"'()[]{}<>.:!?`*"
# The separators inside a URL or a path, kept when its pieces are masked.
_PIECE_SEPARATORS = re.compile(r"([/\\?&=#:@;]+)")
_PRIVATE_KEY = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY")


def _mask_word(match):
    word = match.group()
    start = len(word) - len(word.lstrip(_WORD_EDGES))
    end = len(word.rstrip(_WORD_EDGES))
    core = word[start:end]
    if len(core) < 8:
        return word
    if _TOKEN_SHAPES.search(core):
        return word[:start] + MASK + word[end:]
    if len(core) < HIGH_ENTROPY_MIN_LENGTH:
        return word
    if len(_pieces(core)) > 1:
        # A URL or a path: mask only its random pieces, keep host and path.
        parts = _PIECE_SEPARATORS.split(core)
        masked = [MASK if index % 2 == 0 and _is_random(part) else part for index, part in enumerate(parts)]
        return word[:start] + "".join(masked) + word[end:]
    if _is_random(core):
        return word[:start] + MASK + word[end:]
    return word


def redact_text(text):
    """Free text (a commit subject, a remote URL) with every secret replaced
    by ``***``: passwords in URLs (``user:***@``, or ``***@`` when the user
    name is itself a token), secret-named query parameters and ``name=value``
    assignments, token-shaped and random-looking words.  Everything else is
    kept as it is.  A private key header masks the whole text.
    """
    if not text:
        return "" if text is None else text
    if _PRIVATE_KEY.search(text):
        return MASK
    found = []

    def replace_url(match):
        scheme, rest = match.groups()
        rest = _mask_userinfo(rest, found)
        return scheme + _mask_pairs(_URL_PARAM, rest, found)

    display = _URL.sub(replace_url, text)
    display = _mask_pairs(_ASSIGNMENT, display, found)
    display = _TEXT_WORD.sub(_mask_word, display)
    # A secret found once is masked wherever else it appears.
    for secret in sorted({s for s in found if len(s) >= MIN_ECHO_LENGTH}, key=len, reverse=True):
        display = display.replace(secret, MASK)
    return display
