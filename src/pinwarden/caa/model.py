"""Value types shared by CAA lookup, evaluation, audit and generation. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "CAALookup",
    "CAARecord",
    "Evaluation",
    "IssueValue",
    "LookupStep",
    "Verdict",
]

CRITICAL = 128
"""The Issuer Critical flag (RFC 8659 §4.1: bit 0 of the flags octet, value 128)."""


@dataclass(frozen=True)
class CAARecord:
    """One CAA resource record as received: the flags octet, the tag exactly as it was
    sent (tags are compared case-insensitively, and a tag may hold characters RFC 8659
    forbids — it is still reported), and the raw value bytes."""

    flags: int
    tag: str
    value: bytes

    @property
    def critical(self) -> bool:
        """The Issuer Critical flag (128)."""
        return bool(self.flags & CRITICAL)

    @property
    def tag_lower(self) -> str:
        return self.tag.lower()


@dataclass(frozen=True)
class IssueValue:
    """A parsed ``issue``/``issuewild``/``issuemail`` value (RFC 8659 §4.2): the issuer
    domain name (None for ``;`` — no CA may issue) and the parameters in order."""

    issuer: str | None
    parameters: tuple[tuple[str, str], ...] = ()

    def parameter(self, tag: str) -> str | None:
        """The value of parameter ``tag`` (compared case-insensitively), or None."""
        for key, value in self.parameters:
            if key.lower() == tag.lower():
                return value
        return None


@dataclass(frozen=True)
class LookupStep:
    """One query of the climb: the name asked, the response code (``NOERROR``,
    ``NXDOMAIN``, ``SERVFAIL``, ``timeout``…), how many CAA records came back, and the
    aliases (CNAME/DNAME targets) the answer followed."""

    name: str
    rcode: str
    records: int
    aliases: tuple[str, ...] = ()
    authenticated: bool = False


@dataclass(frozen=True)
class CAALookup:
    """The result of the RFC 8659 §3 search for ``name`` (for ``*.x``, ``name`` is
    ``x``): the relevant RRset and where it was found (``found_at``; None when no name up
    to the top-level domain has CAA records), the alias chain followed there, its TTL,
    whether the answer was DNSSEC-authenticated (AD bit), and every step.

    ``error`` is set when the search could not complete (SERVFAIL, timeout, bogus
    DNSSEC, a malformed response): then nothing can be concluded from ``records``."""

    name: str
    found_at: str | None
    records: tuple[CAARecord, ...]
    aliases: tuple[str, ...] = ()
    ttl: int | None = None
    authenticated: bool = False
    steps: tuple[LookupStep, ...] = ()
    error: str | None = None
    wildcard: bool = False
    """The search was for ``*.name``: evaluations are then for a wildcard certificate."""


class Verdict(str, Enum):
    """May the CA issue?"""

    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"
    """The DNS lookup failed: a CA must refuse, and nothing is known."""


@dataclass(frozen=True)
class Evaluation:
    """The verdict for one CA and one name, the reasons (one sentence each, in order),
    the record that allowed issuance (if any), and warnings where CAs are known to
    differ from the RFC (e.g. Let's Encrypt's treatment of flag bits).

    ``conditions`` qualifies an ALLOWED verdict that rests on restrictions the caller
    did not let us check (an RFC 8657 ``accounturi`` or ``validationmethods``
    parameter when no account or method was given): each entry is one alternative
    ("only for the account https://…"), any one of which suffices. Empty means the
    verdict holds unconditionally."""

    verdict: Verdict
    reasons: tuple[str, ...]
    matched: CAARecord | None = None
    warnings: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
