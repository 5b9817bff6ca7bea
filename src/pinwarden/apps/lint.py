"""Rotation-safety rules for pin policies: what makes a shipped pin set lock users out,
never match, or fail silently.

:func:`lint_policy` is pure: the certificates at hand, the live results and the trust
store are gathered by the caller (the CLI) and passed in as :class:`Evidence`. Rules
that need evidence that was not given are not evaluated (:func:`skipped_rules` says
which), never reported as passing on a guess.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from publicsuffixlist import PublicSuffixList

from pinwarden.apps.lint_rules import RULES, SHORT_LIVED, LintRule, Needs, Severity
from pinwarden.apps.live import AddressResult
from pinwarden.apps.trust import TrustStore
from pinwarden.certs import CertInfo
from pinwarden.errors import InputError
from pinwarden.forms import forms_of_certificate
from pinwarden.pins import Pin
from pinwarden.policy import Mode, PinRule, Policy
from pinwarden.verify import Outcome, verify

__all__ = [
    "RULES",
    "Evidence",
    "Finding",
    "LintRule",
    "Severity",
    "lint_policy",
    "skipped_rules",
]


@dataclass(frozen=True)
class Evidence:
    """What lint may read besides the policy. ``certificates``: a chain at hand, leaf
    first (a ``--chain`` file), and ``chains`` more of them; ``live``: results of
    ``--live`` (None: not asked); ``trust_store``: the store pinned roots must be in
    (None: not checked)."""

    now: dt.datetime
    certificates: tuple[CertInfo, ...] = ()
    live: tuple[AddressResult, ...] | None = None
    trust_store: TrustStore | None = None
    chains: tuple[tuple[CertInfo, ...], ...] = ()
    """More chains at hand (leaf first), one per ``--chain`` file after the first."""


@dataclass(frozen=True)
class Finding:
    """One finding: the rule, a message, where (``source`` file, dotted ``key`` such as
    ``pin[0].pins[1]``, the rule's index)."""

    rule: LintRule
    message: str
    source: str
    key: str
    rule_index: int | None = None
    hosts: tuple[str, ...] = field(default=())

    @property
    def severity(self) -> Severity:
        return self.rule.severity


def skipped_rules(evidence: Evidence) -> list[LintRule]:
    """Rules :func:`lint_policy` cannot evaluate with this evidence."""
    have: set[Needs] = {"policy"}
    chains = (
        bool(evidence.certificates)
        or any(evidence.chains)
        or any(r.verified_chain for r in evidence.live or ())
    )
    if chains:
        have.add("certificates")
    if evidence.live is not None:
        have.add("live")
    if evidence.trust_store is not None and chains:
        have.add("trust-store")
    return [r for r in RULES.values() if r.needs not in have]


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The bundled list takes tens of milliseconds to parse: once, on first use.
    return PublicSuffixList()


def _is_public_suffix(name: str) -> bool:
    return "." not in name or bool(_public_suffixes().is_public(name))


def _matches(pin: Pin, info: CertInfo) -> bool:
    return pin.matches(info.der)


def _is_root(info: CertInfo) -> bool:
    return info.position == "root" or (info.is_ca and info.subject == info.issuer)


class _Linter:
    def __init__(self, policy: Policy, evidence: Evidence) -> None:
        self.policy = policy
        self.evidence = evidence
        self.findings: list[Finding] = []
        files = [evidence.certificates] if evidence.certificates else []
        self.file_chains = [tuple(c) for c in (*files, *evidence.chains) if c]
        self.live_chains = [
            (r.endpoint.host, r.verified_chain)
            for r in evidence.live or ()
            if r.verified_chain is not None
        ]
        every = [c for chain in self.file_chains for c in chain]
        every += [c for _, chain in self.live_chains for c in chain]
        self.at_hand = _unique(every)

    def relevant(self, rule: PinRule) -> list[CertInfo]:
        """The certificates at hand that tell something about ``rule``: chains whose leaf
        covers one of its hosts (or files of CA certificates only), and the chains its
        hosts served live. Evidence about another host proves nothing about this rule."""
        certs: list[CertInfo] = []
        for chain in self.file_chains:
            if chain[0].is_ca or _covers_rule(chain[0], rule):
                certs.extend(chain)
        for host, chain in self.live_chains:
            match = self.policy.rule_for(host)
            if match is not None and match.rule is rule:
                certs.extend(chain)
        return _unique(certs)

    def add(self, rule_id: str, n: int | None, key: str, message: str) -> None:
        rule = RULES[rule_id]
        where = key if n is None else (f"pin[{n}].{key}" if key else f"pin[{n}]")
        hosts = tuple(p.text for p in self.policy.rules[n].hosts) if n is not None else ()
        self.findings.append(Finding(rule, message, self.policy.source, where, n, hosts))

    def run(self) -> list[Finding]:
        for n, rule in enumerate(self.policy.rules):
            self.rule_checks(n, rule)
            if not self.at_hand:
                continue
            self.traps(n, rule)
            relevant = self.relevant(rule)
            if relevant:
                self.chain_checks(n, rule, relevant)
            else:
                self.add(
                    "PW019",
                    n,
                    "hosts",
                    f"{_label(rule)}: no certificate at hand is for its hosts, so "
                    "PW002, PW003, PW006, PW007 and PW010 were not checked for it",
                )
        self.overlaps()
        if self.evidence.live is not None:
            self.live_checks()
        return self.findings

    def rule_checks(self, n: int, rule: PinRule) -> None:
        now = self.evidence.now
        label = _label(rule)
        sha256 = [p for p in rule.pins if p.algorithm == "sha256"]
        if len(sha256) < 2:
            self.add(
                "PW001",
                n,
                "pins",
                f"{label} pins {len(sha256)} sha256 key(s)"
                + (" (allow_single_pin is set)" if rule.allow_single_pin else ""),
            )
        for i, pin in enumerate(rule.pins):
            if pin.legacy:
                self.add("PW008", n, f"pins[{i}]", f"{label}: {pin} is a legacy sha1/ pin")
        if rule.expires_at is None:
            self.add("PW009", n, "", f"{label} has no expiry")
        elif rule.is_expired(now):
            self.add(
                "PW016",
                n,
                "expires",
                f"{label} was enforced through {_last_day(rule.expires_at)} and has expired: "
                "it is not enforced",
            )
        if rule.report_uri:
            self.report_loop(n, rule, label)
        for i, pattern in enumerate(rule.hosts):
            if pattern.kind != "exact" and _is_public_suffix(pattern.base):
                self.add(
                    "PW012",
                    n,
                    f"hosts[{i}]",
                    f"{pattern.text!r} pins subdomains of the public suffix {pattern.base!r}",
                )

    def report_loop(self, n: int, rule: PinRule, label: str) -> None:
        from urllib.parse import urlsplit

        host = urlsplit(rule.report_uri or "").hostname or ""
        try:
            match = self.policy.rule_for(host)
        except InputError:
            return
        if match is None or match.rule.mode is not Mode.ENFORCE:
            return
        other = self.policy.rules.index(match.rule)
        which = "this rule" if other == n else f"pin[{other}]"
        self.add(
            "PW011",
            n,
            "report_uri",
            f"{label}: the report URI's host {host} is pinned by {which} "
            f"({match.pattern.text}); a pin failure there cannot be reported",
        )

    def traps(self, n: int, rule: PinRule) -> None:
        for i, pin in enumerate(rule.pins):
            if not any(_matches(pin, c) for c in self.at_hand):
                self.trap(n, i, pin, _label(rule))

    def chain_checks(self, n: int, rule: PinRule, relevant: list[CertInfo]) -> None:
        now = self.evidence.now
        label = _label(rule)
        matched: dict[int, list[CertInfo]] = {}
        backups = 0
        for i, pin in enumerate(rule.pins):
            matched[i] = [c for c in relevant if _matches(pin, c)]
            # A pin that matches nothing at hand is a backup, unless it is a trap.
            if (
                not matched[i]
                and not self.is_trap(pin)
                and not any(_matches(pin, c) for c in self.at_hand)
            ):
                backups += 1
        in_chain = [c for certs in matched.values() for c in certs]
        if backups == 0:
            self.add(
                "PW002",
                n,
                "pins",
                f"{label}: none of its {len(rule.pins)} pins is a backup outside the current chain",
            )
        if in_chain and all(c.position == "leaf" and not c.is_ca for c in in_chain):
            lifetimes = [life for c in in_chain if (life := _lifetime(c)) is not None]
            if lifetimes and min(lifetimes) <= SHORT_LIVED:
                days = min(lifetimes).days
                self.add(
                    "PW003",
                    n,
                    "pins",
                    f"{label}: only the leaf key is pinned and the leaf is valid for {days} "
                    "days; the next renewal with a new key locks clients out",
                )
        for i, certs in matched.items():
            for cert in certs:
                if not _is_root(cert):
                    continue
                if cert.not_after is not None and cert.not_after <= now:
                    self.add(
                        "PW006",
                        n,
                        f"pins[{i}]",
                        f"{label}: {rule.pins[i]} pins the root {cert.subject!r}, which "
                        f"expired on {cert.not_after:%Y-%m-%d}",
                    )
                store = self.evidence.trust_store
                if store is not None and cert.pin is not None and cert.pin.digest not in store:
                    self.add(
                        "PW007",
                        n,
                        f"pins[{i}]",
                        f"{label}: {rule.pins[i]} pins the root {cert.subject!r}, which is "
                        f"not in the trust store ({store.source})",
                    )
        ends = [c.not_after for c in in_chain if c.not_after is not None]
        if rule.expires_at is not None and ends and rule.expires_at > max(ends):
            self.add(
                "PW010",
                n,
                "expires",
                f"{label} is enforced through {_last_day(rule.expires_at)}, after the last pinned "
                f"certificate at hand expires ({max(ends):%Y-%m-%d})",
            )

    def is_trap(self, pin: Pin) -> bool:
        """Whether ``pin`` is a fingerprint or raw-key hash of a certificate at hand."""
        if pin.algorithm != "sha256":
            return False
        for cert in self.at_hand:
            forms = forms_of_certificate(cert.der)
            for digest in (forms.cert_sha256, forms.raw_key_sha256):
                if digest is not None and hmac.compare_digest(pin.digest, digest):
                    return True
        return False

    def trap(self, n: int, i: int, pin: Pin, label: str) -> bool:
        """Report a pin that is another hash of a certificate at hand; True if it is."""
        if pin.algorithm != "sha256":
            return False
        for cert in self.at_hand:
            forms = forms_of_certificate(cert.der)
            for rule_id, digest, what in (
                ("PW004", forms.cert_sha256, "the SHA-256 fingerprint of"),
                ("PW005", forms.raw_key_sha256, "the SHA-256 of the raw public key of"),
            ):
                if digest is not None and hmac.compare_digest(pin.digest, digest):
                    self.add(
                        rule_id,
                        n,
                        f"pins[{i}]",
                        f"{label}: {pin} is {what} {cert.subject!r}, not an SPKI pin; "
                        f"its SPKI pin is {forms.pin}",
                    )
                    return True
        return False

    def overlaps(self) -> None:
        rules = self.policy.rules
        seen: set[tuple[int, int]] = set()
        for b, narrow in enumerate(rules):
            for pattern in narrow.hosts:
                # A host this pattern covers, to ask the policy which rule applies there.
                probe = pattern.base if pattern.include_base else "pinwarden-lint." + pattern.base
                applied = self.policy.rule_for_normalized(probe)
                if applied is None or applied.rule is not narrow:
                    continue
                for a, broad in enumerate(rules):
                    if a == b or (a, b) in seen or not _disagree(broad, narrow):
                        continue
                    wide = next((w for w in broad.hosts if w.matches(probe)), None)
                    if wide is None or any(ex.matches(probe) for ex in broad.exclude):
                        continue
                    seen.add((a, b))
                    self.add(
                        "PW013",
                        b,
                        "hosts",
                        f"{pattern.text!r} (pin[{b}]) is also covered by {wide.text!r} "
                        f"(pin[{a}]) with different pins or settings; pin[{b}] alone applies "
                        "there (OkHttp would apply both)",
                    )

    def live_checks(self) -> None:
        now = self.evidence.now
        for n, rule in enumerate(self.policy.rules):
            if all(p.kind != "exact" and not p.include_base for p in rule.hosts):
                self.add(
                    "PW017",
                    n,
                    "hosts",
                    f"{_label(rule)} has only wildcard patterns: no host to check live "
                    "(check one with `pinwarden check --policy F HOST`)",
                )
        served: dict[int, list[CertInfo]] = {}
        for result in self.evidence.live or ():
            where = f"{result.endpoint} at {result.address or '(no address)'}"
            host = result.endpoint.host
            match = self.policy.rule_for(host)
            if match is None:
                continue  # a host of another policy linted in the same run
            n = self.policy.rules.index(match.rule)
            if result.network_error is not None or result.verified_chain is None:
                reason = (
                    result.network_error or f"chain does not verify: {result.verification_error}"
                )
                self.add("PW017", n, "hosts", f"{where}: {reason}")
                continue
            served.setdefault(n, []).extend(result.verified_chain)
            verdict = verify(self.policy, host, [c.der for c in result.verified_chain], now=now)
            if verdict.outcome is Outcome.MISMATCH:
                self.add(
                    "PW014" if match.rule.mode is Mode.ENFORCE else "PW018",
                    n,
                    "pins",
                    f"{where} serves a chain matching none of the pins of {_label(match.rule)}",
                )
        for n, certs in served.items():
            rule = self.policy.rules[n]
            for i, pin in enumerate(rule.pins):
                if not any(_matches(pin, c) for c in certs):
                    self.add(
                        "PW015",
                        n,
                        f"pins[{i}]",
                        f"{_label(rule)}: {pin} matches no certificate its live endpoints serve",
                    )


def _covers_rule(leaf: CertInfo, rule: PinRule) -> bool:
    """Whether a leaf certificate is for one of the rule's hosts (by its SAN names)."""
    try:
        cert = x509.load_der_x509_certificate(leaf.der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # no SAN, or a certificate cryptography cannot read: not shown
        return False
    names = [n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    for name in names:
        # A wildcard SAN stands for the names one label under it.
        probe = "pinwarden-lint." + name[2:] if name.startswith("*.") else name
        if any(p.matches(probe) for p in rule.hosts):
            return True
    return False


def _last_day(expires_at: dt.datetime) -> str:
    """The expiry as the policy file writes it: ``expires = D`` is enforced through D."""
    if expires_at.time() == dt.time(0) and expires_at.date() > dt.date.min:
        return (expires_at - dt.timedelta(days=1)).date().isoformat()
    return expires_at.isoformat()


def _label(rule: PinRule) -> str:
    hosts = ", ".join(p.text for p in rule.hosts[:3]) + (", …" if len(rule.hosts) > 3 else "")
    return f"the rule for {hosts}"


def _lifetime(cert: CertInfo) -> dt.timedelta | None:
    if cert.not_before is None or cert.not_after is None:
        return None
    return cert.not_after - cert.not_before


def _unique(certs: Iterable[CertInfo]) -> list[CertInfo]:
    seen: dict[bytes, CertInfo] = {}
    for cert in certs:
        seen.setdefault(cert.der, cert)
    return list(seen.values())


def _disagree(a: PinRule, b: PinRule) -> bool:
    return set(a.pins) != set(b.pins) or a.mode is not b.mode or a.expires_at != b.expires_at


def lint_policy(policy: Policy, evidence: Evidence) -> list[Finding]:
    """Every finding for ``policy`` given ``evidence`` (see :data:`RULES`)."""
    if evidence.now.tzinfo is None:
        raise ValueError("evidence.now must be timezone-aware")
    return _Linter(policy, evidence).run()
