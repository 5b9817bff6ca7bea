"""The numbered rules of ``pinwarden lint``: id, name, severity, what each finds and
how to fix it (documented in docs/lint.md, which a test keeps equal to this table)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

__all__ = ["RULES", "SHORT_LIVED", "LintRule", "Needs", "Severity"]

Severity = Literal["error", "warning", "note"]
Needs = Literal["policy", "certificates", "live", "trust-store"]

SHORT_LIVED = dt.timedelta(days=100)
"""Leaf certificates valid this long or less are renewed (with a new key, by default)
too often for a leaf pin to survive an app's update cycle: Let's Encrypt's 90 days,
and the 47-day maximum browsers require from 2029."""


@dataclass(frozen=True)
class LintRule:
    """A numbered rule: ``id`` (``PW001``), a short ``name``, its ``severity``, a one-line
    ``summary`` and how to ``fix`` a finding. ``needs`` is the evidence it reads."""

    id: str
    name: str
    severity: Severity
    summary: str
    fix: str
    needs: Needs = "policy"


def _rules(*rules: LintRule) -> dict[str, LintRule]:
    return {r.id: r for r in rules}


RULES = _rules(
    LintRule(
        "PW001",
        "single-key",
        "error",
        "A rule pins fewer than two keys: losing or rotating that key locks every client out.",
        "Add a backup pin: `pinwarden keygen --out backup.key` and ship its pin now.",
    ),
    LintRule(
        "PW002",
        "no-backup-pin",
        "error",
        "Every pin of a rule is a key of the current chain: no backup outside it.",
        "Add the pin of a key kept offline (`pinwarden keygen`) or of a second CA's root.",
        "certificates",
    ),
    LintRule(
        "PW003",
        "leaf-pin-short-lived",
        "error",
        "Only the leaf key is pinned and the leaf is short-lived (at most 100 days): the "
        "next renewal with a new key locks clients out.",
        "Pin the intermediate or root key instead (`pinwarden recommend`), or renew with "
        "the same key and keep a backup pin.",
        "certificates",
    ),
    LintRule(
        "PW004",
        "certificate-fingerprint",
        "error",
        "A pin is the SHA-256 fingerprint of a certificate, not the hash of its public key: "
        "it never matches.",
        "Replace it with the SPKI pin given in the message (`pinwarden identify VALUE`).",
        "certificates",
    ),
    LintRule(
        "PW005",
        "raw-key-hash",
        "error",
        "A pin is the SHA-256 of a raw public key (iOS SecKeyCopyExternalRepresentation), "
        "not of its SubjectPublicKeyInfo: it never matches.",
        "Replace it with the SPKI pin given in the message (`pinwarden identify VALUE`).",
        "certificates",
    ),
    LintRule(
        "PW006",
        "pinned-root-expired",
        "error",
        "A pinned root certificate has expired: chains through it no longer verify.",
        "Pin the root (or intermediate) the CA issues from now.",
        "certificates",
    ),
    LintRule(
        "PW007",
        "pinned-root-untrusted",
        "error",
        "A pinned root is not in the trust store (removed from the bundle, or never in it): "
        "chains through it do not verify.",
        "Pin a root that the clients' trust store contains.",
        "trust-store",
    ),
    LintRule(
        "PW008",
        "sha1-pin",
        "warning",
        "A sha1/ pin: only OkHttp 2 and 3 read them; SHA-1 is obsolete.",
        "Replace it with the sha256/ pin of the same key (`pinwarden pin`).",
    ),
    LintRule(
        "PW009",
        "no-expiry",
        "warning",
        "A rule has no expiry: an app that is never updated stays pinned forever and is "
        "locked out once every pinned key is gone.",
        "Set `expires` a few months ahead and update it with each app release.",
    ),
    LintRule(
        "PW010",
        "expiry-after-certificates",
        "warning",
        "A rule's expiry is after every pinned certificate at hand has expired: from then "
        "on only keys not at hand (backups) can match.",
        "Set `expires` before the last pinned certificate expires, or pin its successor.",
        "certificates",
    ),
    LintRule(
        "PW011",
        "report-loop",
        "error",
        "The report URI is on a pinned host: when pins fail there, the report fails too.",
        "Send reports to a host that is not pinned.",
    ),
    LintRule(
        "PW012",
        "public-suffix-subdomains",
        "error",
        "Subdomains of a public suffix are pinned (e.g. **.co.uk, *.github.io): that "
        "covers other people's sites.",
        "Pin your registered domain (example.co.uk) and its subdomains instead.",
    ),
    LintRule(
        "PW013",
        "overlapping-rules-disagree",
        "warning",
        "Rules cover overlapping hosts with different pins or settings: pinwarden, Android "
        "and TrustKit apply the most specific one; OkHttp applies both.",
        "Make sure the more specific rule is meant to replace the broader one there, or "
        "add `exclude` to the broader rule.",
    ),
    LintRule(
        "PW014",
        "live-lockout",
        "error",
        "A live endpoint serves a chain that matches none of its rule's pins: an enforcing "
        "client is locked out now.",
        "Add the pin of a key in the served chain, or fix the deployment.",
        "live",
    ),
    LintRule(
        "PW015",
        "pin-not-served",
        "note",
        "A pin matches no certificate any live endpoint of its rule serves: fine for a "
        "backup key you hold, stale otherwise.",
        "Keep it if it is your backup; remove it if that key is gone.",
        "live",
    ),
    LintRule(
        "PW016",
        "rule-expired",
        "warning",
        "A rule has expired: it is no longer enforced (fails open).",
        "Renew the rule with the current pins, or remove it.",
    ),
    LintRule(
        "PW017",
        "live-unknown",
        "note",
        "A live endpoint could not be checked (DNS or network failure, or a chain that "
        "does not verify): its pins are unknown, not OK.",
        "Check the address and run again.",
        "live",
    ),
    LintRule(
        "PW018",
        "live-mismatch-report-only",
        "warning",
        "A live endpoint serves a chain that matches none of its report-only rule's pins: "
        "enforcing this rule would lock clients out.",
        "Add the pin of a key in the served chain before switching the rule to enforce.",
        "live",
    ),
    LintRule(
        "PW019",
        "no-evidence-for-rule",
        "note",
        "No certificate at hand is for this rule's hosts: the certificate rules were not "
        "checked for it.",
        "Give the chain its hosts serve (`--chain FILE`) or use `--live`.",
        "certificates",
    ),
)
