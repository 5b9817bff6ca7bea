"""The pin check itself: pure, no I/O, no clock of its own.

:func:`verify` is given the chain that OpenSSL **verified** up to a trust anchor —
never the chain the server sent, which an attacker can pad with any certificate
(OkHttp's CVE-2016-2402) — and says whether the policy accepts it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinwarden.hosts import HostPattern, normalize_host
from pinwarden.pins import Pin, pin_diagnosis, spki_sha256
from pinwarden.policy import Mode, PinRule, Policy, RuleMatch

__all__ = ["Outcome", "Verdict", "evaluate", "verify"]


class Outcome(str, Enum):
    """What the pin check found."""

    MATCHED = "matched"
    """A pin of the applicable rule matched a certificate of the verified chain."""
    MISMATCH = "mismatch"
    """No pin matched: blocked in enforce mode, let through and reported in report-only."""
    NOT_PINNED = "not-pinned"
    """No rule covers the host: CA and hostname validation alone decide."""
    EXPIRED = "expired"
    """The rule is past its expiry date and fails open (not enforced)."""
    NO_CHAIN = "no-chain"
    """There is no verified chain to check: always blocked."""


@dataclass(frozen=True)
class Verdict:
    """The result of :func:`verify`. ``allowed`` says whether the connection may proceed."""

    hostname: str
    outcome: Outcome
    chain: tuple[bytes, ...]
    rule: PinRule | None = None
    pattern: HostPattern | None = None
    matched_pin: Pin | None = None
    matched_position: int | None = None

    @property
    def allowed(self) -> bool:
        if self.outcome is Outcome.MISMATCH:
            return self.rule is not None and self.rule.mode is Mode.REPORT_ONLY
        return self.outcome is not Outcome.NO_CHAIN

    @property
    def violation(self) -> bool:
        """True when the chain broke the rule (whether or not it was let through)."""
        return self.outcome in (Outcome.MISMATCH, Outcome.NO_CHAIN)

    def message(self) -> str:
        """A human explanation. For a mismatch it lists every certificate of the verified
        chain as ``sha256/… subject`` and the expected pins, like OkHttp does."""
        if self.outcome is Outcome.MATCHED:
            assert self.matched_pin is not None and self.matched_position is not None
            where = (
                "leaf" if self.matched_position == 0 else f"chain position {self.matched_position}"
            )
            return f"{self.hostname}: {self.matched_pin} matched the {where}"
        if self.outcome is Outcome.NOT_PINNED:
            return f"{self.hostname}: no pin rule covers this host"
        if self.outcome is Outcome.EXPIRED:
            assert self.rule is not None and self.rule.expires_at is not None
            return (
                f"{self.hostname}: the pin rule for {self.pattern} expired on "
                f"{self.rule.expires_at.isoformat()} and is NOT enforced (fails open); "
                "update the policy"
            )
        if self.outcome is Outcome.NO_CHAIN:
            return f"{self.hostname}: no verified certificate chain to check the pins against"
        assert self.rule is not None
        rule = f"rule {self.pattern}, {self.rule.mode.value}"
        lines = [f"{self.hostname}: no pin matched the verified chain ({rule})"]
        lines.append("  Verified chain:")
        for der in self.chain:
            lines.append(f"    sha256/{Pin('sha256', spki_sha256(der)).base64}: {_subject(der)}")
        lines.append("  Pinned certificates:")
        for pin in self.rule.pins:
            lines.append(f"    {pin}")
            hint = pin_diagnosis(pin, self.chain)
            if hint:
                lines.append(f"      note: {hint}")
        return "\n".join(lines)


def _subject(der: bytes) -> str:
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except Exception:  # ValueError, InvalidVersion...: a message must never fail
        return "<certificate cryptography cannot read>"


def verify(
    policy: Policy,
    hostname: str,
    verified_chain: Sequence[bytes | x509.Certificate],
    *,
    now: dt.datetime,
) -> Verdict:
    """Check a verified chain (leaf first, DER bytes or ``cryptography`` certificates)
    against the rule of ``policy`` that applies to ``hostname`` at time ``now`` (aware).

    Only pass a chain that was verified to a trust anchor for ``hostname``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
    chain = tuple(
        c.public_bytes(serialization.Encoding.DER) if isinstance(c, x509.Certificate) else c
        for c in verified_chain
    )
    name = normalize_host(hostname)
    return evaluate(policy.rule_for_normalized(name), name, chain, now)


def evaluate(
    match: RuleMatch | None, hostname: str, chain: tuple[bytes, ...], now: dt.datetime | None
) -> Verdict:
    """:func:`verify` once the rule for a normalised ``hostname`` is known (the pinned
    context looks it up itself, before fetching the chain). ``now`` may be None only
    when the rule has no expiry."""
    if match is None:
        return Verdict(hostname, Outcome.NOT_PINNED, chain)
    name = hostname
    rule = match.rule
    if rule.expires_at is not None and (now is None or rule.is_expired(now)):
        return Verdict(name, Outcome.EXPIRED, chain, rule, match.pattern)
    if not chain:
        return Verdict(name, Outcome.NO_CHAIN, chain, rule, match.pattern)
    found = rule.match_chain(chain)
    if found is None:
        return Verdict(name, Outcome.MISMATCH, chain, rule, match.pattern)
    return Verdict(name, Outcome.MATCHED, chain, rule, match.pattern, found[0], found[1])
