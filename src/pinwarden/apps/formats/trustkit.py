"""``trustkit-plist`` and ``trustkit-swift``: a TrustKit configuration, as the
``TSKConfiguration`` dictionary of an Info.plist or as the Swift dictionary literal
passed to ``TrustKit.initSharedInstance(withConfiguration:)``.

Key names are TrustKit's own (TSKTrustKitConfig.m): ``TSKSwizzleNetworkDelegates``,
``TSKPinnedDomains`` and per domain ``TSKPublicKeyHashes``, ``TSKIncludeSubdomains``,
``TSKEnforcePinning``, ``TSKReportUris``, ``TSKExpirationDate``,
``TSKDisableDefaultReportUri`` and ``kSKExcludeSubdomainFromParentPolicy`` (sic: the
string value of ``kTSKExcludeSubdomainFromParentPolicy`` lacks the T).

TrustKit expresses report-only mode, report URIs and an expiry date; it has no ``*.``
wildcard, no SHA-1, needs two pins per enforced domain, and exempts only exact names
from a parent's ``TSKIncludeSubdomains``. When several ``TSKIncludeSubdomains`` entries
cover a name, TrustKit takes the first its dictionary enumeration yields, not the most
specific (configuration_utils.m): nested entries with different settings are a loss.
"""

from __future__ import annotations

import datetime as dt
import plistlib
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pinwarden.apps.formats import Exported, ExportOptions
from pinwarden.apps.formats._common import (
    Abilities,
    Domain,
    Entry,
    Imported,
    build_policy,
    check_size,
    decode_sha256,
    domain_entry,
    domains_of,
    expiry_date,
    fail,
    load_plist,
    name_notes,
    rule_label,
    sha256_pins,
    unsupported,
)
from pinwarden.apps.formats._swift_literal import read_swift_literal
from pinwarden.policy import Mode, PinRule, Policy

__all__ = ["CONFIG_KEYS", "DOMAIN_KEYS", "FORMATS", "SWIFT_CONSTANTS", "TrustKitFormat"]

Form = Literal["plist", "swift"]

SWIFT_CONSTANTS = {
    "kTSKSwizzleNetworkDelegates": "TSKSwizzleNetworkDelegates",
    "kTSKPinnedDomains": "TSKPinnedDomains",
    "kTSKIgnorePinningForUserDefinedTrustAnchors": "TSKIgnorePinningForUserDefinedTrustAnchors",
    "kTSKPublicKeyHashes": "TSKPublicKeyHashes",
    "kTSKEnforcePinning": "TSKEnforcePinning",
    "kTSKExcludeSubdomainFromParentPolicy": "kSKExcludeSubdomainFromParentPolicy",
    "kTSKIncludeSubdomains": "TSKIncludeSubdomains",
    "kTSKPublicKeyAlgorithms": "TSKPublicKeyAlgorithms",
    "kTSKReportUris": "TSKReportUris",
    "kTSKDisableDefaultReportUri": "TSKDisableDefaultReportUri",
    "kTSKExpirationDate": "TSKExpirationDate",
}
"""TrustKit's Swift/Objective-C constant names and the strings they stand for."""
_NAMES = {value: key for key, value in SWIFT_CONSTANTS.items()}
_ALGORITHMS = {
    "kTSKAlgorithmRsa2048": "TSKAlgorithmRsa2048",
    "kTSKAlgorithmRsa4096": "TSKAlgorithmRsa4096",
    "kTSKAlgorithmEcDsaSecp256r1": "TSKAlgorithmEcDsaSecp256r1",
    "kTSKAlgorithmEcDsaSecp384r1": "TSKAlgorithmEcDsaSecp384r1",
}

_SWIZZLE = "TSKSwizzleNetworkDelegates"
_DOMAINS = "TSKPinnedDomains"
_USER_ANCHORS = "TSKIgnorePinningForUserDefinedTrustAnchors"
_HASHES = "TSKPublicKeyHashes"
_ENFORCE = "TSKEnforcePinning"
_EXCLUDE = "kSKExcludeSubdomainFromParentPolicy"
_SUBDOMAINS = "TSKIncludeSubdomains"
_ALGORITHMS_KEY = "TSKPublicKeyAlgorithms"
_REPORT_URIS = "TSKReportUris"
_NO_DEFAULT_REPORTS = "TSKDisableDefaultReportUri"
_EXPIRATION = "TSKExpirationDate"
CONFIG_KEYS = frozenset({_SWIZZLE, _DOMAINS, _USER_ANCHORS})
DOMAIN_KEYS = frozenset(
    {
        _HASHES,
        _ENFORCE,
        _EXCLUDE,
        _SUBDOMAINS,
        _ALGORITHMS_KEY,
        _REPORT_URIS,
        _NO_DEFAULT_REPORTS,
        _EXPIRATION,
    }
)

_CAN = Abilities("TrustKit", expiry=True, report_only=True, report_uri=True, exclude=True)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_NOTES = (
    "TSKSwizzleNetworkDelegates is false: validate with TSKPinningValidator in your "
    "URLSession delegate (or set it to true for TrustKit's automatic swizzling)",
    "TSKDisableDefaultReportUri is true: TrustKit sends no reports to its default "
    "(Data Theorem) server",
)


def _domain_config(index: int, rule: PinRule, subtree: bool, losses: list[str]) -> dict[str, Any]:
    label = rule_label(index, rule)
    pins = sha256_pins(rule)
    enforce = rule.mode is Mode.ENFORCE
    if enforce and len(pins) < 2:
        enforce = False
        losses.append(
            f"{label}: one SHA-256 pin: TrustKit refuses to start with an enforced domain "
            "of fewer than two pins; written with TSKEnforcePinning = false (report-only)"
        )
    config: dict[str, Any] = {
        _SUBDOMAINS: subtree,
        _ENFORCE: enforce,
        _HASHES: [p.base64 for p in pins],
    }
    if rule.expires_at is not None:
        day, exact = expiry_date(rule.expires_at)
        if not exact:
            losses.append(
                f"{label}: expires {rule.expires_at.isoformat()}: TrustKit takes a date; "
                f"written as {day.isoformat()}, so pins stop being enforced at 00:00 UTC "
                "of that day, earlier than the policy says"
            )
        config[_EXPIRATION] = day.isoformat()
    if rule.report_uri:
        config[_REPORT_URIS] = [rule.report_uri]
    config[_NO_DEFAULT_REPORTS] = True
    return config


def _exclusions(
    policy: Policy, domains: list[Domain], losses: list[str]
) -> dict[str, dict[str, Any]]:
    """Exact names a rule excludes from one of its subdomain entries, and that no other
    rule covers: TrustKit's exclusion entry then means what pinwarden's ``exclude`` does
    (the name is not pinned). Anything else is a loss."""
    written = {d.name for d in domains}
    out: dict[str, dict[str, Any]] = {}
    for index, rule in enumerate(policy.rules):
        if not rule.exclude:
            continue
        label = rule_label(index, rule)
        parents = [d.name for d in domains if d.index == index and d.subtree]
        for pattern in rule.exclude:
            name = pattern.base
            others = any(
                p.matches(name)
                for n, other in enumerate(policy.rules)
                if n != index
                for p in other.hosts
            )
            if (
                pattern.kind == "exact"
                and any(name.endswith("." + parent) for parent in parents)
                and not others
                and name not in written
                and name not in out
            ):
                out[name] = {_EXCLUDE: True}
                continue
            losses.append(
                f"{label}: exclude {pattern.text}: TrustKit can only exempt an exact name "
                "under one of the rule's TSKIncludeSubdomains domains that no other rule "
                "covers; left out, so it would be pinned"
            )
    return out


def _nested_losses(config: dict[str, dict[str, Any]], domains: list[Domain]) -> list[str]:
    losses: list[str] = []
    subtrees = [d for d in domains if d.subtree]
    for outer in subtrees:
        for inner in subtrees:
            if inner.name.endswith("." + outer.name) and config[inner.name] != config[outer.name]:
                losses.append(
                    f"{inner.name} ({rule_label(inner.index, inner.rule)}) lies under "
                    f"{outer.name} ({rule_label(outer.index, outer.rule)}), both with "
                    f"TSKIncludeSubdomains: for names under {inner.name} TrustKit uses "
                    "whichever it finds first, not the more specific one"
                )
    return losses


def _configuration(policy: Policy) -> tuple[dict[str, Any], list[str]]:
    losses: list[str] = []
    for index, rule in enumerate(policy.rules):
        losses.extend(unsupported(index, rule, _CAN))
    domains = domains_of(policy, "TrustKit", losses, ip_ok=True)
    pinned: dict[str, dict[str, Any]] = {}
    for domain in domains:
        pinned[domain.name] = _domain_config(domain.index, domain.rule, domain.subtree, losses)
    losses.extend(_nested_losses(pinned, domains))
    pinned.update(_exclusions(policy, domains, losses))
    return {_SWIZZLE: False, _DOMAINS: pinned}, losses


def _swift_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _swift(value: Any, indent: int, key_names: bool) -> str:
    pad = "    " * (indent + 1)
    end = "    " * indent
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _swift_string(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        items = "".join(f"{pad}{_swift(v, indent + 1, False)},\n" for v in value)
        return f"[\n{items}{end}]"
    if not value:
        return "[:]"
    lines = []
    # Keys are TrustKit constants, except right below TSKPinnedDomains: domain names.
    for key, item in value.items():
        shown = _NAMES[key] if key_names else _swift_string(key)
        child_names = not (key_names and key == _DOMAINS)
        lines.append(f"{pad}{shown}: {_swift(item, indent + 1, child_names)},\n")
    return f"[\n{''.join(lines)}{end}]"


def _render_swift(config: dict[str, Any]) -> str:
    return (
        "import TrustKit\n\n"
        f"let trustKitConfig: [String: Any] = {_swift(config, 0, True)}\n"
        "// TrustKit.initSharedInstance(withConfiguration: trustKitConfig)\n"
    )


# -- reading ---------------------------------------------------------------------------


def _date(value: object, source: str, where: str) -> dt.datetime:
    match = _DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        day = dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise fail(source, where, f"{str(value)[:40]!r} is not a yyyy-MM-dd date") from None
    # TrustKit parses the date in UTC and stops enforcing once it is past.
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc)


def _is_http_url(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:  # "Invalid IPv6 URL" and the like
        return False
    return parts.scheme in ("http", "https")


def _bool(config: dict[str, Any], key: str, default: bool, source: str, where: str) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise fail(source, f"{where}.{key}", f"must be a boolean, got {str(value)[:40]!r}")
    return value


def _strings(config: dict[str, Any], key: str, source: str, where: str) -> list[str]:
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(source, f"{where}.{key}", "must be an array of strings")
    return value


def read_configuration(root: object, source: str) -> Imported:
    """Pins from a TrustKit configuration dictionary (or a plist holding it under
    ``TSKConfiguration``)."""
    if not isinstance(root, dict):
        raise fail(source, None, "the configuration must be a dictionary")
    config = root.get("TSKConfiguration", root)
    if not isinstance(config, dict):
        raise fail(source, "TSKConfiguration", "must be a dictionary")
    unknown = sorted(map(str, set(config) - CONFIG_KEYS))
    if unknown and config is root and _DOMAINS not in config:
        raise fail(source, None, "no TSKConfiguration dictionary and no TSKPinnedDomains")
    if unknown:
        raise fail(
            source,
            "TSKConfiguration",
            f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(CONFIG_KEYS))}",
        )
    notes: list[str] = []
    if _USER_ANCHORS in config:
        notes.append(f"{_USER_ANCHORS} (macOS) ignored")
    _bool(config, _SWIZZLE, False, source, "TSKConfiguration")
    pinned = config.get(_DOMAINS)
    if not isinstance(pinned, dict) or not pinned:
        raise fail(source, "TSKConfiguration", f"{_DOMAINS} must be a non-empty dictionary")
    entries: list[Entry] = []
    exclusions: list[tuple[str, str]] = []
    for domain, settings in pinned.items():
        where = f"{_DOMAINS}.{domain}"
        domain, settings = domain_entry(domain, settings, DOMAIN_KEYS, source, where)
        if "*" in domain:
            raise fail(source, where, "TrustKit has no wildcards; use TSKIncludeSubdomains")
        if _bool(settings, _EXCLUDE, False, source, where):
            if len(settings) > 1:
                raise fail(source, where, f"{_EXCLUDE} allows no other key in its entry")
            exclusions.append((domain, where))
            continue
        if _ALGORITHMS_KEY in settings:
            notes.append(f"{where}.{_ALGORITHMS_KEY} ignored (TrustKit 1.6+ ignores it too)")
        enforce = _bool(settings, _ENFORCE, True, source, where)
        subtree = _bool(settings, _SUBDOMAINS, False, source, where)
        if not _bool(settings, _NO_DEFAULT_REPORTS, False, source, where):
            notes.append(
                f"{domain}: TrustKit also reported to its default (Data Theorem) server; "
                "pinwarden does not"
            )
        hashes = _strings(settings, _HASHES, source, where)
        pins = tuple(
            dict.fromkeys(
                decode_sha256(h, source, f"{where}.{_HASHES}[{n}]") for n, h in enumerate(hashes)
            )
        )
        if len(pins) < (2 if enforce else 1):
            raise fail(
                source,
                f"{where}.{_HASHES}",
                f"{len(pins)} pin(s): TrustKit refuses to start with fewer than "
                f"{2 if enforce else 1} for {'an enforced' if enforce else 'a'} domain",
            )
        uris = _strings(settings, _REPORT_URIS, source, where)
        for n, uri in enumerate(uris):
            if not _is_http_url(uri):
                raise fail(
                    source, f"{where}.{_REPORT_URIS}[{n}]", f"{uri[:80]!r} is not an http(s) URL"
                )
        if len(uris) > 1:
            notes.append(
                f"{domain}: pinwarden keeps one report URI; {', '.join(uris[1:])} left out"
            )
        expires_at = (
            _date(settings[_EXPIRATION], source, f"{where}.{_EXPIRATION}")
            if _EXPIRATION in settings
            else None
        )
        entries.append(
            Entry(
                domain,
                "subtree" if subtree else "exact",
                pins,
                where,
                expires_at,
                Mode.ENFORCE if enforce else Mode.REPORT_ONLY,
                uris[0] if uris else None,
            )
        )
    imported = build_policy(entries, source, exclusions=exclusions)
    return Imported(imported.policy, (*notes, *imported.notes))


class TrustKitFormat:
    """A TrustKit configuration, as an Info.plist dictionary or a Swift literal."""

    importable = True

    def __init__(self, form: Form) -> None:
        self.form: Form = form
        self.name = f"trustkit-{form}"
        if form == "plist":
            self.summary = "TrustKit configuration, Info.plist TSKConfiguration dictionary"
            self.suffix = ".plist"
        else:
            self.summary = "TrustKit configuration, Swift dictionary literal"
            self.suffix = ".swift"

    def export(self, policy: Policy, options: ExportOptions) -> Exported:
        config, losses = _configuration(policy)
        if self.form == "plist":
            document = {"TSKConfiguration": config}
            text = plistlib.dumps(document, sort_keys=False).decode("utf-8")
        else:
            text = _render_swift(config)
        return Exported(text, tuple(losses), (*_NOTES, *name_notes(policy, "TrustKit")))

    def read(self, data: bytes, source: str) -> Imported:
        check_size(data, source)
        if self.form == "plist":
            return read_configuration(load_plist(data, source), source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(source, None, f"not UTF-8 text (byte {exc.start})") from None
        root = read_swift_literal(text, source, keys=SWIFT_CONSTANTS, values=_ALGORITHMS)
        if not isinstance(root, dict):
            raise fail(source, None, "the configuration must be a [String: Any] dictionary")
        return read_configuration(root, source)

    def parse(self, data: bytes, source: str) -> Policy:
        return self.read(data, source).policy


FORMATS = {"trustkit-plist": TrustKitFormat("plist"), "trustkit-swift": TrustKitFormat("swift")}
