"""Would every shipped pin set accept this chain on this date?

The lockout the article warns about happens when the server changes and the apps in
the field do not: each app version carries its own pin policy, and users update late
or never. :func:`simulate` evaluates a chain against each version's policy for each
host, exactly as the pinned context would (:func:`pinwarden.verify.verify`), so that a
certificate, key or CDN change can be gated in CI before it is deployed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from pinwarden.hosts import normalize_host
from pinwarden.policy import Policy
from pinwarden.verify import Outcome, Verdict, verify

__all__ = ["Cell", "Status", "Target", "build_verified_chain", "names_for_chain", "simulate"]


class Status(str, Enum):
    """What a version's users see for a host."""

    PASSES = "passes"
    """The chain verifies and a pin matches."""
    LOCKED_OUT = "locked-out"
    """The chain verifies but no pin matches: an enforcing app refuses to connect."""
    REPORTED = "reported"
    """No pin matches, but the rule is report-only: the app connects and reports."""
    FAILS_OPEN = "fails-open"
    """The rule has expired: the app accepts any valid chain (pins no longer protect)."""
    NOT_PINNED = "not-pinned"
    """No rule of this version covers the host."""
    INVALID_CHAIN = "invalid-chain"
    """The chain does not verify for this host: every client refuses it, pinned or not."""
    UNKNOWN = "unknown"
    """The host could not be reached: nothing is known."""

    @property
    def blocks(self) -> bool:
        """Whether users of this version cannot connect."""
        return self in (Status.LOCKED_OUT, Status.INVALID_CHAIN)


@dataclass(frozen=True)
class Target:
    """A host (and the address it was reached at, for live chains) with its verified
    chain (DER, leaf first), or why there is none."""

    host: str
    chain: tuple[bytes, ...] | None
    problem: str | None = None
    address: str | None = None
    unreachable: bool = False

    @property
    def label(self) -> str:
        return f"{self.host} ({self.address})" if self.address else self.host


@dataclass(frozen=True)
class Cell:
    """One version × one target."""

    version: str
    target: Target
    status: Status
    detail: str
    verdict: Verdict | None = None


def _status(verdict: Verdict) -> Status:
    outcome = verdict.outcome
    if outcome is Outcome.MATCHED:
        return Status.PASSES
    if outcome is Outcome.EXPIRED:
        return Status.FAILS_OPEN
    if outcome is Outcome.NOT_PINNED:
        return Status.NOT_PINNED
    if outcome is Outcome.MISMATCH and verdict.allowed:
        return Status.REPORTED
    return Status.LOCKED_OUT


def simulate(
    versions: Sequence[tuple[str, Policy]], targets: Sequence[Target], *, now: dt.datetime
) -> list[Cell]:
    """Every (version, target) cell, versions in the order given."""
    cells: list[Cell] = []
    for name, policy in versions:
        for target in targets:
            if target.chain is None:
                status = Status.UNKNOWN if target.unreachable else Status.INVALID_CHAIN
                cells.append(Cell(name, target, status, target.problem or "no chain"))
                continue
            verdict = verify(policy, target.host, target.chain, now=now)
            status = _status(verdict)
            detail = verdict.message().splitlines()[0]
            cells.append(Cell(name, target, status, detail, verdict))
    return cells


def names_for_chain(leaf: x509.Certificate, policies: Sequence[Policy]) -> list[str]:
    """The names to simulate a chain for: the leaf's SAN names and addresses, and for
    a wildcard SAN the policies' exact host names it covers."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    exact = [
        p.base
        for policy in policies
        for rule in policy.rules
        for p in rule.hosts
        if p.kind == "exact"
    ]
    for dns in san.get_values_for_type(x509.DNSName):
        name = dns.lower().rstrip(".")
        if name.startswith("*."):
            base = name[2:]
            names.extend(
                h for h in exact if h.endswith("." + base) and "." not in h[: -len(base) - 1]
            )
        else:
            names.append(normalize_host(name))
    names.extend(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return list(dict.fromkeys(names))


def build_verified_chain(
    certificates: Sequence[x509.Certificate],
    host: str,
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
) -> tuple[tuple[bytes, ...] | None, str | None]:
    """The chain a client would verify for ``host``: the first certificate is the leaf,
    the others are offered as intermediates, ``anchors`` is the trust store. Returns
    (chain DER leaf first, None) or (None, why it does not verify).

    Built with cryptography's RFC 5280 path builder (``x509.verification``), which is
    stricter than OpenSSL in places; a chain it rejects is reported, never pinned."""
    if not certificates:
        return None, "no certificate"
    if not anchors:
        return None, "the trust store is empty"
    try:
        subject: verification.Subject
        try:
            subject = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            subject = x509.DNSName(host)
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(list(anchors)))
            .time(now)
            .build_server_verifier(subject)
        )
        chain = verifier.verify(certificates[0], list(certificates[1:]))
    except verification.VerificationError as exc:
        return None, f"does not verify for {host}: {exc}"
    except ValueError as exc:
        return None, f"cannot verify for {host}: {exc}"
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in chain), None
