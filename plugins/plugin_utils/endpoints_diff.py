"""Diff rules of the endpoints area: each named endpoint's answer compared across environments
(status, redirects, headers, cookies, JSON body, TLS), plus production policies (certificate
expiry and trust, hostname, HSTS, https redirect, status, response time against the baseline);
the Prometheus service-level metrics are endpoints_metrics.py's, with the same tolerances.

Input per column: the host's endpoints facts ({"endpoints": {name: record}, "policy": {...}}, see
module_utils/endpoints_collect.py), an unknown marker, or None (not configured there).
Response times are volatile: never compared as values, only by the slower-than-baseline policy,
with an absolute and a relative tolerance on both the median and the p95 (noise is no finding).
Pure Python; no Ansible imports.
"""

from urllib.parse import urlsplit

from ansible_collections.envparity.audit.plugins.module_utils.endpoints_collect import POLICY_DEFAULTS
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_probe import SECURITY_HEADERS, VERSION_HEADERS
from ansible_collections.envparity.audit.plugins.module_utils.endpoints_prometheus import SUBJECT
from ansible_collections.envparity.audit.plugins.plugin_utils import endpoints_metrics
from ansible_collections.envparity.audit.plugins.plugin_utils.compare import compare_key, union_keys
from ansible_collections.envparity.audit.plugins.plugin_utils.endpoints_tls import (
    chain_facts,
    hostname_matches,
    read_certificate,
    relative_names,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.findings import (
    SubjectColumns,
    by_value,
    join_names,
    subject_names,
)
from ansible_collections.envparity.audit.plugins.plugin_utils.tolerances import tolerance

AREA = "endpoints"
VERSION_FIELDS = ("version", "commit", "sha", "git_sha", "revision", "build", "release")
LEGACY_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")
# What a changed key is called and how severe it is: (check, severity, what).
KEY_CHECKS = {
    "status": ("endpoints.status_changed", "high", "answers a different status"),
    "redirects": ("endpoints.redirects_changed", "medium", "redirects differently"),
    "scheme": ("endpoints.scheme_changed", "medium", "is served over a different scheme"),
    "content_type": ("endpoints.content_type_changed", "low", "answers a different content type"),
    "body": ("endpoints.body_kind_changed", "medium", "answers a different kind of body"),
    "tls.protocol": ("endpoints.tls_changed", "medium", "negotiates a different TLS protocol"),
    "tls.legacy": ("endpoints.tls_changed", "medium", "offers different legacy TLS protocols"),
    "tls.cipher": ("endpoints.tls_changed", "low", "negotiates a different cipher"),
    "tls.issuer": ("endpoints.cert_issuer_changed", "medium", "has a certificate from a different issuer"),
    "tls.key": ("endpoints.cert_key_changed", "low", "has a certificate with a different key type or size"),
    "tls.signature": ("endpoints.cert_key_changed", "low", "has a certificate signed with a different algorithm"),
    "tls.trust": ("endpoints.cert_trust_changed", "medium", "has a certificate trusted differently"),
    "tls.hostname": ("endpoints.cert_hostname_changed", "medium", "has a certificate matching its host differently"),
    "tls.ocsp": ("endpoints.ocsp_changed", "medium", "staples OCSP differently"),
    "tls.chain": ("endpoints.chain_changed", "medium", "sends its certificate chain differently"),
    "tls.intermediates": ("endpoints.chain_changed", "low", "has different intermediate certificates"),
}
# Read only by the controller's own handshake (endpoints_chain.py): compared among the columns
# whose chain was read (an endpoint probed from the host has none: not checked, never different).
CHAIN_KEYS = ("tls.ocsp", "tls.chain", "tls.intermediates")


def subjects(request):
    names = [item["name"] for item in (request or {}).get("endpoints") or []]
    if (request or {}).get("prometheus"):
        names.append(SUBJECT)
    return sorted(names)


def _text(value, limit=300):
    return value[:limit] if isinstance(value, str) else None


def _dict(value):
    return value if isinstance(value, dict) else {}


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _redirects(http):
    hops = [hop for hop in http.get("redirects") or [] if isinstance(hop, dict)]
    parts = []
    for hop in hops:
        location = _text(hop.get("location")) or ""
        scheme = location.split("://", 1)[0] if "://" in location else "same origin"
        parts.append("%s to %s" % (hop.get("status"), scheme))
    return "; ".join(parts) or "none"


NONE_OFFERED = "none offered"


def _legacy_text(legacy):
    """'TLSv1, TLSv1.1 offered', 'none offered', or 'not testable from the prober'."""
    offered = [name for name in sorted(legacy) if legacy[name] is True]
    if offered:
        return "%s offered" % ", ".join(offered)
    if any(legacy.get(name) is None for name in ("TLSv1", "TLSv1.1")):
        return "not testable from the prober"
    return NONE_OFFERED


def _tls_view(tls, hostname):
    """{key: text} of the TLS facts that are compared, and the certificate read (or None)."""
    cert = read_certificate(tls.get("cert_der"))
    verified = tls.get("verified")
    error = _text(tls.get("verify_error"), 120)
    view = {
        "tls.legacy": _legacy_text(_dict(tls.get("legacy"))),
        "tls.protocol": _text(tls.get("protocol")) or "unknown",
        "tls.cipher": _text(tls.get("cipher")) or "unknown",
        "tls.trust": "trusted" if verified else "not trusted (%s)" % (error or "unverified"),
    }
    if cert is None:
        view["tls.issuer"] = "certificate not readable"
        return view, None
    view["tls.issuer"] = "self-signed" if cert["self_signed"] else cert["issuer"]
    view["tls.key"] = cert["key"]
    view["tls.signature"] = cert["signature"]
    view["tls.hostname"] = "matches" if hostname_matches(hostname, cert["sans"], cert["subject"]) else "mismatch"
    for name in relative_names(hostname, cert["sans"]):
        view["tls.san." + name] = "present"
    return view, cert


def endpoint_view(record):
    """{key: text} of one probed endpoint's compared facts, and what the policies read."""
    http = _dict(record.get("http"))
    url = _text(record.get("url")) or ""
    try:
        parts = urlsplit(url)
        scheme, hostname = parts.scheme, parts.hostname
    except ValueError:
        scheme, hostname = "", None
    view = {
        "scheme": scheme,
        "status": str(http.get("status")),
        "redirects": _redirects(http),
        "content_type": (_text(http.get("content_type")) or "none").split(";")[0].strip().lower(),
    }
    headers = _dict(http.get("headers"))
    for name in SECURITY_HEADERS + VERSION_HEADERS:
        if isinstance(headers.get(name), str):
            view["headers." + name] = headers[name][:300]
    for name, given in _dict(http.get("cookies")).items():
        flags = _dict(given)
        view["cookies." + str(name)[:120]] = ", ".join(
            [flag for flag in ("secure", "httponly") if flags.get(flag) is True]
            + ["samesite=%s" % _text(flags.get("samesite"), 20) if flags.get("samesite") else "no samesite"]
        )
    body = _dict(http.get("body"))
    view["body"] = _text(body.get("kind")) or "unknown"
    for key, given in _dict(body.get("fields")).items():
        field = _dict(given)
        if field.get("secret"):
            view["body." + str(key)[:120]] = "secret %s" % (_text(field.get("fp"), 40) or "")
        else:
            view["body." + str(key)[:120]] = "%s" % (
                _text(field.get("value")) if field.get("value") is not None else "null"
            )
    cert = chain = None
    tls = record.get("tls")
    if isinstance(tls, dict):
        tls_view, cert = _tls_view(tls, hostname)
        view.update(tls_view)
        chain = chain_facts(tls.get("chain"), tls.get("cert_der"))
    if chain is not None:
        view.update(_chain_view(chain))
    return {
        "view": view,
        "http": http,
        "cert": cert,
        "chain": chain,
        "timing": _dict(record.get("timing")),
        "scheme": scheme,
    }


def _chain_view(chain):
    if not chain["verified"]:
        state = "not verified"
    elif chain["missing"]:
        state = "incomplete: %s not sent" % ", ".join(chain["missing"])
    else:
        state = "complete"
    described = [
        "%s (%s, %s)" % (facts["subject"], facts["key"], facts["signature"]) for facts in chain["intermediates"]
    ]
    return {"tls.ocsp": chain["ocsp"], "tls.chain": state, "tls.intermediates": "; ".join(described) or "none"}


SECRET_PREFIX = "secret hmac-sha256:"


def _shown_values(key, records, labels):
    """{label: value as shown}: a secret body field is named A, B, … in column order (as the other
    areas name secrets, secret_text.secret_letters), never by its per-run fingerprint."""
    letters = {}
    for label in labels:
        text = records[label]
        if key.startswith("body.") and text is not None and text.startswith(SECRET_PREFIX) and text not in letters:
            letters[text] = chr(ord("A") + len(letters) % 26)
    return {
        label: ("‹secret %s›" % letters[records[label]] if records[label] in letters else records[label])
        for label in labels
    }


def _key_check(key):
    if key in KEY_CHECKS:
        return KEY_CHECKS[key]
    if key.startswith("headers."):
        version = key[len("headers.") :] in VERSION_HEADERS
        return ("endpoints.header_changed", "low" if version else "medium", "sends header %s differently" % key[8:])
    if key.startswith("cookies."):
        return ("endpoints.cookie_changed", "medium", "sets cookie %s with different flags" % key[8:])
    if key.startswith("tls.san."):
        return ("endpoints.cert_names_changed", "medium", "has a certificate naming %s differently" % key[8:])
    leaf = key.rsplit(".", 1)[-1].lower()
    if key.startswith("body.") and leaf in VERSION_FIELDS:
        return ("endpoints.version_changed", "medium", "reports a different %s" % key[5:])
    return ("endpoints.body_changed", "low", "answers a different %s" % key[5:])


class _Subject(SubjectColumns):
    AREA = AREA

    def __init__(self, name, columns, cells, context):
        super().__init__(name, "endpoints", columns, cells, context)
        self.views = {
            label: endpoint_view(record)
            for label, record in self.records.items()
            if record.get("status") == "ok" and isinstance(record.get("http"), dict)
        }
        self.policy = {label: _policy(cells.get(label)) for label in self.views}


def _policy(cell):
    given = _dict(_dict(cell).get("policy"))
    return {field: _number(given.get(field)) or default for field, default in POLICY_DEFAULTS.items()}


def _probe_findings(subject):
    failed = [label for label, record in subject.records.items() if label not in subject.views]
    if not failed:
        return []
    values = {label: "answered" for label in subject.views}
    for label in failed:
        record = subject.records[label]
        values[label] = "%s: %s" % (_text(record.get("status"), 40), _text(record.get("reason"), 200) or "no reason")
    production = subject.production(failed)
    return [
        subject.finding(
            "probe",
            "unknown",
            "endpoints.probe_failed",
            "high" if production else "medium",
            values,
            failed,
            "Endpoint %s could not be probed on %s (%s); it was not compared there."
            % (subject.name, join_names(failed), by_value(((label, values[label]) for label in failed), " ")),
            "Check that %s answers from where it is probed (from: controller or host, connect_to, ca_file)."
            % subject.name,
        )
    ]


def _withheld_findings(subject):
    """Credentials configured but not sent (the certificate did not verify): the answer compared
    may not be the one the endpoint gives an authenticated client."""
    withheld = [label for label in subject.views if subject.records[label].get("credentials_withheld") is True]
    if not withheld:
        return []
    return [
        subject.finding(
            "credentials",
            "unknown",
            "endpoints.credentials_withheld",
            "medium",
            {label: "not sent (certificate not verified)" for label in withheld},
            withheld,
            "Endpoint %s on %s: the configured credentials were not sent, since its certificate did not verify; "
            "its answer may not be the one an authenticated client gets." % (subject.name, join_names(withheld)),
            "Give the probe the CA that signs %s's certificate (ca_file), or fix the certificate." % subject.name,
        )
    ]


def _compare_findings(subject):
    labels = [label for label in subject.columns if label in subject.views]
    if len(labels) < 2:
        return []
    findings = []
    tls_labels = [
        label
        for label in labels
        if subject.views[label]["cert"] is not None or "tls.trust" in subject.views[label]["view"]
    ]
    chain_labels = [label for label in labels if subject.views[label]["chain"] is not None]
    for key in union_keys([subject.views[label]["view"] for label in labels]):
        among = chain_labels if key in CHAIN_KEYS else tls_labels if key.startswith("tls.") else labels
        if len(among) < 2:
            continue
        records = {label: subject.views[label]["view"].get(key) for label in among}
        outcome = compare_key(records, among)
        if outcome is None:
            continue
        kind, about = outcome
        check, severity, what = _key_check(key)
        values = _shown_values(key, records, among)
        if kind == "changed":
            message = "Endpoint %s %s on %s: %s." % (
                subject.name,
                what,
                join_names(about),
                by_value(((label, values[label]) for label in among), ": "),
            )
        else:
            having = [label for label in among if records[label] is not None]
            message = "Endpoint %s: %s is present on %s but not on %s." % (
                subject.name,
                key,
                join_names(having),
                join_names([label for label in among if records[label] is None]),
            )
        findings.append(
            subject.finding(
                key,
                kind,
                check,
                severity,
                values,
                about,
                message,
                "Make %s answer the same everywhere, or record the difference as expected in the rules file."
                % subject.name,
            )
        )
    return findings


def _policy_finding(subject, key, check, severity, labels, values, message, recommendation, measured=False):
    return subject.finding(key, "policy", check, severity, values, labels, message, recommendation, measured=measured)


def _expiry_findings(subject, label, cert, key="tls.expiry", what="certificate", prefix="endpoints.cert"):
    """Expired, expiring or not yet valid: the leaf certificate, or an intermediate (key, what, prefix)."""
    policy = subject.policy[label]
    days = cert["days_left"]
    value = {label: "%d days left (%d%% of its lifetime), until %s" % (days, cert["lifetime_left"], cert["not_after"])}
    if cert["not_yet_valid"]:
        return [
            _policy_finding(
                subject,
                key,
                prefix + "_not_yet_valid",
                "critical",
                [label],
                {label: "valid from %s" % cert["not_before"]},
                "Endpoint %s's %s on %s is not valid yet (from %s)." % (subject.name, what, label, cert["not_before"]),
                "Install a %s valid now." % what,
            )
        ]
    if days < 0:
        severity, check, message = "critical", prefix + "_expired", "expired on %s" % cert["not_after"]
    elif days < policy["expiry_critical_days"]:
        severity, check, message = "critical", prefix + "_expiring", "expires in %d days" % days
    elif days < policy["expiry_high_days"]:
        severity, check, message = "high", prefix + "_expiring", "expires in %d days" % days
    else:
        return []
    return [
        _policy_finding(
            subject,
            key,
            check,
            severity,
            [label],
            value,
            "Endpoint %s's %s on %s %s." % (subject.name, what, label, message),
            "Renew the %s of %s on %s (and check its automatic renewal)." % (what, subject.name, label),
        )
    ]


def _tls_policies(subject, label, view, cert):
    findings = []
    if view.get("tls.trust", "").startswith("not trusted") or (cert is not None and cert["self_signed"]):
        findings.append(
            _policy_finding(
                subject,
                "tls.trust",
                "endpoints.cert_untrusted",
                "critical",
                [label],
                {label: "self-signed" if cert is not None and cert["self_signed"] else view["tls.trust"]},
                "Endpoint %s's certificate on %s is not trusted (%s)." % (subject.name, label, view["tls.trust"]),
                "Serve a certificate from a trusted CA with its full chain on %s." % label,
            )
        )
    if view.get("tls.hostname") == "mismatch":
        findings.append(
            _policy_finding(
                subject,
                "tls.hostname",
                "endpoints.cert_hostname_mismatch",
                "critical",
                [label],
                {label: "mismatch"},
                "Endpoint %s's certificate on %s does not name the URL's host." % (subject.name, label),
                "Issue the certificate for the host the URL names (subjectAltName).",
            )
        )
    offered = view["tls.legacy"].endswith(" offered") and view["tls.legacy"] != NONE_OFFERED
    if view.get("tls.protocol") in LEGACY_PROTOCOLS or offered:
        legacy = view["tls.legacy"] if offered else view["tls.protocol"]
        findings.append(
            _policy_finding(
                subject,
                "tls.legacy",
                "endpoints.legacy_tls",
                "high",
                [label],
                {label: legacy},
                "Endpoint %s on %s accepts a legacy TLS protocol (%s)." % (subject.name, label, legacy),
                "Turn TLS 1.0 and 1.1 off in production; offer TLS 1.2 and 1.3 only.",
            )
        )
    if cert is not None:
        findings += _expiry_findings(subject, label, cert)
    return findings


def _chain_policies(subject, label, chain):
    """Production: an incomplete chain, an intermediate expiring, a stapled response revoked or stale."""
    findings = []
    if chain["missing"]:
        missing = ", ".join(chain["missing"])
        findings.append(
            _policy_finding(
                subject,
                "tls.chain",
                "endpoints.chain_incomplete",
                "high",
                [label],
                {label: "not sent: %s" % missing},
                "Endpoint %s on %s does not send its intermediate certificate(s) %s: clients without them "
                "in their store cannot verify it." % (subject.name, label, missing),
                "Serve the full chain (leaf and intermediates) on %s." % label,
            )
        )
    for facts in chain["intermediates"]:
        findings += _expiry_findings(
            subject,
            label,
            facts,
            key="tls.intermediate." + facts["subject"][:120],
            what="intermediate certificate %s" % facts["subject"][:120],
            prefix="endpoints.intermediate",
        )
    if chain["ocsp"] == "stapled, revoked" or chain["stale"]:
        revoked = chain["ocsp"] == "stapled, revoked"
        findings.append(
            _policy_finding(
                subject,
                "tls.ocsp",
                "endpoints.ocsp_revoked" if revoked else "endpoints.ocsp_stale",
                "critical" if revoked else "high",
                [label],
                {label: chain["ocsp"] + ("" if revoked else " (past its next update)")},
                "Endpoint %s on %s staples an OCSP response that %s."
                % (subject.name, label, "says its certificate is revoked" if revoked else "is out of date"),
                "Replace the certificate on %s." % label
                if revoked
                else "Check that %s's server refreshes its stapled OCSP response." % label,
            )
        )
    return findings


def _http_policies(subject, label, entry, expect):
    view, http = entry["view"], entry["http"]
    status = _number(http.get("status"))
    findings = []
    if status is not None and (
        (expect is not None and status != expect) or (expect is None and not 200 <= status < 300)
    ):
        findings.append(
            _policy_finding(
                subject,
                "status",
                "endpoints.status_unexpected",
                "high",
                [label],
                {label: str(status)},
                "Endpoint %s answers %d on %s (expected %s)." % (subject.name, status, label, expect or "2xx"),
                "Check %s on %s: it does not answer as a healthy endpoint should." % (subject.name, label),
            )
        )
    final_https = str(http.get("final_url") or "").startswith("https://")
    if entry["scheme"] == "http" and not final_https:
        findings.append(
            _policy_finding(
                subject,
                "redirects",
                "endpoints.no_https_redirect",
                "high",
                [label],
                {label: view["redirects"]},
                "Endpoint %s is served over plain http on %s without a redirect to https." % (subject.name, label),
                "Redirect http to https on %s (301 to the same path over https)." % label,
            )
        )
    if final_https and "headers.strict-transport-security" not in view:
        findings.append(
            _policy_finding(
                subject,
                "headers.strict-transport-security",
                "endpoints.hsts_missing",
                "high",
                [label],
                {label: "absent"},
                "Endpoint %s sends no Strict-Transport-Security header on %s." % (subject.name, label),
                "Send Strict-Transport-Security (e.g. max-age=31536000) on %s." % label,
            )
        )
    for name in VERSION_HEADERS:
        value = view.get("headers." + name)
        if value and any(char.isdigit() for char in value):
            findings.append(
                _policy_finding(
                    subject,
                    "headers." + name,
                    "endpoints.version_leak",
                    "low",
                    [label],
                    {label: value},
                    "Endpoint %s on %s tells its software version in %s." % (subject.name, label, name),
                    "Hide version numbers from the %s header in production." % name,
                )
            )
    for key, flags in view.items():
        if key.startswith("cookies.") and final_https and ("secure" not in flags or "httponly" not in flags):
            findings.append(
                _policy_finding(
                    subject,
                    key,
                    "endpoints.cookie_flags",
                    "medium",
                    [label],
                    {label: flags},
                    "Endpoint %s on %s sets cookie %s without Secure or HttpOnly." % (subject.name, label, key[8:]),
                    "Set Secure and HttpOnly on cookie %s in production." % key[8:],
                )
            )
    return findings


def slower(base, other, policy):
    """Whether `other`'s times exceed the baseline's by both tolerances, on the median and the p95."""
    for field in ("median_ms", "p95_ms"):
        reference, value = _number(base.get(field)), _number(other.get(field))
        if reference is None or value is None:
            return False
        if value - reference <= policy["slower_ms"] or value <= reference * (1 + policy["slower_percent"] / 100.0):
            return False
    return True


def slower_tolerances(subject, label):
    """The column's slower-than-baseline tolerances: the rules file's for this endpoint, else the inventory's."""
    policy = subject.policy[label]
    return {
        name: tolerance(subject.context, AREA, subject.name, label, name, policy[name])
        for name in ("slower_ms", "slower_percent")
    }


def _timing_text(timing):
    if not _number(timing.get("samples")):
        return "no timed sample answered"
    return "median %s ms, p95 %s ms, max %s ms over %d samples" % (
        timing.get("median_ms"),
        timing.get("p95_ms"),
        timing.get("max_ms"),
        timing["samples"],
    )


def _timing_findings(subject, production):
    baseline = subject.context["baseline"]
    if baseline not in subject.views:
        return []
    base = subject.views[baseline]["timing"]
    slow = [
        label
        for label in production
        if label != baseline and slower(base, subject.views[label]["timing"], slower_tolerances(subject, label))
    ]
    if not slow:
        return []
    values = {label: _timing_text(subject.views[label]["timing"]) for label in [baseline] + slow}
    return [
        _policy_finding(
            subject,
            "timing",
            "endpoints.slower",
            "medium",
            slow,
            values,
            "Endpoint %s is slower on %s than on %s (%s)."
            % (subject.name, join_names(slow), baseline, by_value(((label, values[label]) for label in values), ": ")),
            "Find what slows %s on %s (tolerances: drift_endpoints_slower_ms and drift_endpoints_slower_percent)."
            % (subject.name, join_names(slow)),
            measured=True,
        )
    ]


COMMIT_FIELDS = ("commit", "sha", "git_sha", "revision")
HEX = frozenset("0123456789abcdef")


def _running_commits(view):
    """{body key: value} of the body's commit fields that hold a commit id (7 to 40 hex digits)."""
    return {
        key: value.lower()
        for key, value in view.items()
        if key.startswith("body.")
        and key.rsplit(".", 1)[-1].lower() in COMMIT_FIELDS
        and 7 <= len(value) <= 40
        and set(value.lower()) <= HEX
    }


def _checkout_heads(context, repo):
    """{label: HEAD commit} of the git area's repository `repo` in the columns where it was read."""
    cells_of = context.get("area_cells")
    git_cells = cells_of("git") if cells_of is not None else {}
    heads = {}
    for label, cell in git_cells.items():
        record = (_dict(cell).get("repos") or {}).get(repo) if isinstance(cell, dict) else None
        if isinstance(record, dict) and record.get("status") == "ok" and isinstance(record.get("head"), str):
            heads[label] = record["head"].lower()
    return heads


def _checkout_findings(subject):
    """A commit the endpoint says it runs that is not the HEAD of the environment's checkout."""
    repos = {label: subject.records[label].get("git_repo") for label in subject.views}
    findings = []
    for repo in sorted({name for name in repos.values() if isinstance(name, str) and name}):
        heads = _checkout_heads(subject.context, repo)
        for label in subject.columns:
            if repos.get(label) != repo or label not in heads:
                continue
            for key, value in sorted(_running_commits(subject.views[label]["view"]).items()):
                if heads[label].startswith(value):
                    continue
                findings.append(
                    _policy_finding(
                        subject,
                        key,
                        "endpoints.commit_not_checkout",
                        "high" if subject.production([label]) else "medium",
                        [label],
                        {label: "%s (checkout %s at %s)" % (value, repo, heads[label][:10])},
                        "%s's %s says %s, %s's checkout %s is at %s: the code that runs is not the code on disk."
                        % (label, subject.name, value, label, repo, heads[label][:10]),
                        "Deploy %s's checkout %s (or check out what runs) on %s, then audit again."
                        % (label, repo, label),
                    )
                )
    return findings


def diff(labels, cells, context):
    findings = []
    for name in subject_names(cells, "endpoints"):
        subject = _Subject(name, labels, cells, context)
        findings += _probe_findings(subject)
        findings += _withheld_findings(subject)
        findings += _compare_findings(subject)
        production = subject.production(list(subject.views))
        for label in production:
            entry = subject.views[label]
            expect = _number(subject.records[label].get("expect_status"))
            findings += _http_policies(subject, label, entry, expect)
            if "tls.trust" in entry["view"]:
                findings += _tls_policies(subject, label, entry["view"], entry["cert"])
            if entry["chain"] is not None:
                findings += _chain_policies(subject, label, entry["chain"])
        findings += _timing_findings(subject, production)
        findings += _checkout_findings(subject)
    return findings + endpoints_metrics.findings(labels, cells, context, _policy, slower)
