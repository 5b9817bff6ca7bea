"""Host names and host patterns: how pinwarden spells a name so that no spelling of a
pinned host escapes its rule (case, trailing dot, IDNA 2008 and 2003, IP addresses)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

import idna

from pinwarden.errors import PolicyError

__all__ = ["HostPattern", "PatternKind", "canonical_ip", "is_plain_host", "normalize_host"]

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# A DNS name as pinwarden compares them: LDH labels (and '_'), the last one not all
# digits (else a verifier may read the name as an IPv4 address).
_DNS_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]*[a-z_-][a-z0-9_-]*")
# OpenSSL decides whether a server_hostname is an IP address with its own reader
# (a2i_IPADDRESS -> ipv4_from_asc: sscanf "%d.%d.%d.%d", then the end or any whitespace),
# which takes signs, extra leading zeros, inner whitespace and trailing text. Read
# IPv4 the same way, so that every spelling OpenSSL verifies as an address maps to it.
_OPENSSL_IPV4 = re.compile(
    r"\s*([+-]?\d+)\.\s*([+-]?\d+)\.\s*([+-]?\d+)\.\s*([+-]?\d+)(?:\s.*)?", re.DOTALL
)


def _openssl_ipv4(text: str) -> str | None:
    match = _OPENSSL_IPV4.fullmatch(text)
    if match is None:
        return None
    octets = [int(group) for group in match.groups()]
    if all(0 <= octet <= 255 for octet in octets):
        return ".".join(map(str, octets))
    return None


def canonical_ip(text: str) -> str | None:
    """The canonical form of ``text`` when it is an IP address in any spelling OpenSSL
    accepts for a server_hostname (``127.000.0.1``, ``0:0::1``, ``[::1]``), else None."""
    v4 = _openssl_ipv4(text)
    if v4 is not None:
        return v4
    if ":" not in text:
        return None
    candidate = text.strip().strip("[]")
    head, _, tail = candidate.rpartition(":")
    if "." in tail:
        tail_v4 = _openssl_ipv4(tail)
        if tail_v4 is not None:
            candidate = f"{head}:{tail_v4}"
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def is_plain_host(name: str) -> bool:
    """Whether a normalised name is a canonical IP address or an ordinary DNS name —
    nothing a verifier could read one way and a rule lookup another."""
    return _DNS_NAME.fullmatch(name) is not None or canonical_ip(name) == name


def normalize_host(host: str) -> str:
    """Lower-case A-label form without a trailing dot, as TLS clients send in SNI; IP
    addresses in their canonical form (``0:0::1`` is ``::1``), so that no spelling of an
    address escapes the rule written for it."""
    if ":" in host or host[:1].isdigit() or host[:1] in "+-" or host[:1].isspace():
        canonical = canonical_ip(host)
        if canonical is not None:
            return canonical
    if host.isascii():
        return host.lower().rstrip(".")
    forms = _a_labels(host)
    if not forms:
        raise PolicyError(f"host {host!r} is not a valid internationalised name")
    return forms[0]


def _a_labels(host: str) -> list[str]:
    """The A-label forms of a Unicode name: IDNA 2008 with UTS #46 (what requests,
    urllib3 and httpx send) first, then IDNA 2003 (what the ssl module itself makes of a
    Unicode server_hostname) when it differs, e.g. for 'ß'."""
    name = host.rstrip(".")
    forms: list[str] = []
    with contextlib.suppress(idna.IDNAError):
        forms.append(idna.encode(name, uts46=True).decode("ascii").lower())
    try:
        legacy = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        legacy = None
    if legacy and legacy not in forms:
        forms.append(legacy)
    return forms


PatternKind = Literal["exact", "one-label", "subtree"]
_RANK: dict[str, int] = {"exact": 3, "one-label": 2, "subtree": 1}


@dataclass(frozen=True)
class HostPattern:
    """A host pattern: ``api.example.com`` (that name), ``*.example.com`` (exactly one
    label under example.com), ``**.example.com`` (example.com and every name under it).
    With ``include_subdomains``, a plain name also covers every name under it, and
    ``*.x`` covers every depth under x."""

    text: str
    base: str
    kind: PatternKind
    include_base: bool

    @classmethod
    def parse(cls, text: str, include_subdomains: bool = False) -> HostPattern:
        """Read one pattern (for a Unicode name, its IDNA 2008 form; see :meth:`parse_all`)."""
        return cls.parse_all(text, include_subdomains)[0]

    @classmethod
    def parse_all(cls, text: str, include_subdomains: bool = False) -> tuple[HostPattern, ...]:
        """Read a pattern; a Unicode name whose IDNA 2008 and IDNA 2003 encodings differ
        gives one pattern for each, so the rule covers whichever a client sends."""
        if not isinstance(text, str) or not text.strip():
            raise PolicyError(f"host pattern must be a non-empty string, got {text!r}")
        raw = text.strip()
        if raw.startswith("**."):
            kind: PatternKind = "subtree"
            include_base = True
            rest = raw[3:]
        elif raw.startswith("*."):
            kind = "subtree" if include_subdomains else "one-label"
            include_base = False
            rest = raw[2:]
        else:
            kind = "subtree" if include_subdomains else "exact"
            include_base = True
            rest = raw
        if any(c.isspace() for c in rest):
            raise PolicyError(f"host pattern {raw!r} contains whitespace")
        address = canonical_ip(rest)
        if address is not None:
            if kind != "exact":
                raise PolicyError(f"host pattern {raw!r}: an IP address cannot have subdomains")
            return (cls(raw, address, kind, include_base),)
        if "*" in rest:
            raise PolicyError(
                f"host pattern {raw!r}: '*' is only allowed as a whole first label "
                "('*.example.com' or '**.example.com')"
            )
        bases = [rest.lower().rstrip(".")] if rest.isascii() else _a_labels(rest)
        if not bases:
            raise PolicyError(f"host pattern {raw!r} is not a valid internationalised name")
        for base in bases:
            for label in base.split("."):
                if not _LABEL.match(label):
                    raise PolicyError(f"host pattern {raw!r}: {label!r} is not a valid DNS label")
            if _DNS_NAME.fullmatch(base) is None:
                raise PolicyError(
                    f"host pattern {raw!r}: its last label is all digits, so clients may "
                    "read it as an IP address; write the address in full (a.b.c.d) or a name"
                )
        return tuple(cls(raw, base, kind, include_base) for base in bases)

    @property
    def rank(self) -> int:
        return _RANK[self.kind]

    @property
    def covers_subdomains(self) -> bool:
        return self.kind != "exact"

    def matches(self, host: str) -> bool:
        """Whether a normalised host name matches this pattern."""
        if host == self.base:
            return self.kind == "exact" or (self.kind == "subtree" and self.include_base)
        if self.kind == "exact" or not host.endswith("." + self.base):
            return False
        if self.kind == "subtree":
            return True
        return "." not in host[: -len(self.base) - 1]

    def __str__(self) -> str:
        return self.text
