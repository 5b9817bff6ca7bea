"""The CT monitor's verdict on a certificate that matched the watch list.

A matching certificate is judged against the expectations of every watch list entry it
matched (:class:`~pinwarden.ct.watch.WatchItem`):

``expected``
    at least one matched entry has expectations, and the certificate meets all of them;
``unexpected``
    it fails at least one; ``reasons`` says which, one sentence each;
``found``
    no matched entry has expectations: there is nothing to tell expected from unexpected,
    so the certificate is reported as found, never silently called ``expected``. (A
    monitor run with a bare list of names is an inventory, not an alarm; the CLI's exit
    code 1 is for ``unexpected`` only.)

The checks, each fail-safe (what cannot be decided is a reason, never a pass):

* ``ca=ID,…``: the issuer must be a CA whose CAA identities include one of them. The
  issuer is recognised with :func:`pinwarden.caa.identities.identify_issuer` (for a
  precertificate first by its ``issuer_key_hash``, which is the SHA-256 of the issuer's
  SPKI, i.e. an SPKI pin of the issuing intermediate); an issuer the identity table does
  not know is unexpected.
* ``ca=caa``: the CAA records of each matched name are looked up *now* (at detection
  time) and evaluated for the issuer's identities (RFC 8659; ``*.x`` as a wildcard
  request). A DNS failure is reported as "unknown", never as allowed.
* ``pins=``/``policy=``: the certificate's SPKI pin must be one of the entry's pins or
  of the pins the policy's rule gives each matched name (an expired rule gives none).
* ``names=``: every name in the certificate must match one of the patterns.
* ``max-validity=``: notAfter - notBefore must not exceed that many days.

A certificate whose TBS could not be parsed is always ``unexpected``: the monitor
cannot check anything about it (see :func:`names_in_unreadable`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pinwarden.caa.evaluate import evaluate
from pinwarden.caa.identities import CAIdentity, identify_issuer, load_identities
from pinwarden.caa.lookup import lookup_caa_async
from pinwarden.caa.model import CAALookup, Verdict
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.watch import WatchItem, WatchMatch
from pinwarden.errors import CertificateError, InputError, NetworkError
from pinwarden.pins import Pin

__all__ = [
    "EXPECTED",
    "FOUND",
    "UNEXPECTED",
    "Judge",
    "Judgement",
    "issuer_identity",
    "names_in_unreadable",
]

EXPECTED = "expected"
UNEXPECTED = "unexpected"
FOUND = "found"

# CAA answers are cached briefly so that a burst of certificates for one name (a backfill)
# costs one lookup; "at detection time" stays true to within this many seconds.
_CAA_CACHE_SECONDS = 60.0
_CAA_CONCURRENCY = 16
# Dotted runs of host-name characters in raw DER: what could be a DNS name.
_DOTTED = re.compile(rb"(?:[A-Za-z0-9_*-]{1,63}\.){1,126}[A-Za-z0-9-]{1,63}")
# dNSName [2] IMPLICIT IA5String, UTF8String, PrintableString, IA5String.
_STRING_TAGS = frozenset({0x82, 0x0C, 0x13, 0x16})


@dataclass(frozen=True)
class Judgement:
    """A verdict (``expected``, ``unexpected`` or ``found``) and its reasons."""

    verdict: str
    reasons: tuple[str, ...] = ()


def names_in_unreadable(entry: LogEntry) -> tuple[str, ...]:
    """Host-name-like strings in the raw bytes of an entry whose certificate could not be
    parsed (fail safe: such an entry has no names, so without this a certificate for a
    watched name that cryptography refuses would go unnoticed).

    Hand-written on purpose: the bytes are exactly what a DER parser refused. Two nets:
    the contents of every string-shaped TLV (a dNSName ``[2]``, UTF8String,
    PrintableString, IA5String with a short length) that look like a name, and every
    dotted run of host-name characters (which may carry a following byte or two: a
    superset only makes more matches, and such a certificate is unexpected anyway)."""
    data = entry.tbs_der
    found: list[str] = []
    for position in range(len(data) - 2):
        if data[position] not in _STRING_TAGS:
            continue
        length = data[position + 1]
        chunk = data[position + 2 : position + 2 + length]
        if 0 < length < 0x80 and len(chunk) == length and _DOTTED.fullmatch(chunk):
            found.append(chunk.decode("ascii").lower())
    found.extend(match.group().decode("ascii").lower() for match in _DOTTED.finditer(data))
    return tuple(dict.fromkeys(found))


def issuer_identity(entry: LogEntry, identities: Sequence[CAIdentity]) -> CAIdentity | None:
    """The CA that issued ``entry``'s certificate, or None when the table does not know it:
    by the precertificate's ``issuer_key_hash`` (an SPKI pin of the issuer), else by the
    first certificate of the submitted chain and the issuer name."""
    if entry.issuer_key_hash is not None:
        pin = Pin("sha256", entry.issuer_key_hash)
        for identity in identities:
            if pin in identity.pins:
                return identity
    if entry.issuer is None:
        return None
    try:
        return identify_issuer(entry.issuer, chain=entry.chain_der[:1], identities=identities)
    except CertificateError:
        return None


class Judge:
    """Judges matching certificates (module docstring). ``nameservers`` are asked for CAA
    records in turn until one answers (empty: the system's resolver); ``identities`` is
    the CA identity table (default: the bundled one)."""

    def __init__(
        self,
        *,
        nameservers: Sequence[str] = (),
        identities: Sequence[CAIdentity] | None = None,
        caa_timeout: float = 5.0,
    ) -> None:
        self.nameservers: tuple[str | None, ...] = tuple(nameservers) or (None,)
        self.identities = tuple(identities) if identities is not None else load_identities()
        self.caa_timeout = caa_timeout
        self._caa: dict[str, tuple[float, CAALookup | str]] = {}
        self._gate = asyncio.Semaphore(_CAA_CONCURRENCY)

    async def judge(
        self, entry: LogEntry, matches: Sequence[WatchMatch], now: datetime
    ) -> Judgement:
        """The verdict on ``entry`` for the watch list entries it matched; ``now`` decides
        which policy rules have expired."""
        if entry.error is not None:
            return Judgement(
                UNEXPECTED,
                (
                    f"{entry.error}; the names found in its bytes match the watch list, "
                    "nothing else could be checked",
                ),
            )
        judged = [m for m in matches if m.item.has_expectations]
        if not judged:
            return Judgement(FOUND)
        reasons: list[str] = []
        label = len(judged) > 1
        identity: CAIdentity | None = None
        if any(m.item.cas or m.item.ca_from_caa for m in judged):
            identity = issuer_identity(entry, self.identities)
        for match in judged:
            found = await self._check(entry, match, identity, now)
            reasons.extend(f"{match.item.key}: {r}" if label else r for r in found)
        return Judgement(UNEXPECTED if reasons else EXPECTED, tuple(dict.fromkeys(reasons)))

    async def _check(
        self, entry: LogEntry, match: WatchMatch, identity: CAIdentity | None, now: datetime
    ) -> list[str]:
        item = match.item
        reasons: list[str] = []
        issuer = entry.issuer or "(unknown issuer)"
        if item.cas:
            if identity is None:
                reasons.append(
                    f"issuer {issuer!r} is not a CA pinwarden knows, so it is not one of the "
                    f"allowed CAs ({', '.join(item.cas)})"
                )
            elif not set(identity.caa) & set(item.cas):
                reasons.append(
                    f"issued by {identity.name} ({', '.join(identity.caa)}), not by an allowed "
                    f"CA ({', '.join(item.cas)})"
                )
        if item.ca_from_caa:
            reasons.extend(await self._check_caa(match.names, identity, issuer))
        if item.pins or item.policy is not None:
            reasons.extend(_check_key(entry, match, now))
        if item.names:
            outside = [
                name
                for name in entry.dns_names
                if not any(pattern.matches(name) for pattern in item.names)
            ]
            if outside:
                reasons.append(
                    f"names outside the expected set ({', '.join(map(str, item.names))}): "
                    + ", ".join(outside)
                )
        if item.max_validity_days is not None:
            reasons.extend(_check_validity(entry, item))
        return reasons

    async def _check_caa(
        self, names: Sequence[str], identity: CAIdentity | None, issuer: str
    ) -> list[str]:
        if identity is None:
            return [
                f"issuer {issuer!r} is not a CA pinwarden knows, so whether CAA allows it "
                "cannot be told (unknown)"
            ]
        lookups = await asyncio.gather(*(self.caa(name) for name in names))
        reasons: list[str] = []
        for name, lookup in zip(names, lookups, strict=True):
            if isinstance(lookup, str):
                reasons.append(f"CAA of {name}: unknown ({lookup})")
                continue
            wildcard = name.startswith("*.")
            evaluations = [evaluate(lookup, ca, wildcard=wildcard) for ca in identity.caa]
            if any(e.verdict is Verdict.ALLOWED for e in evaluations):
                continue
            if any(e.verdict is Verdict.UNKNOWN for e in evaluations):
                reasons.append(f"CAA of {name}: unknown ({lookup.error or 'lookup failed'})")
                continue
            where = f" (records at {lookup.found_at})" if lookup.found_at else ""
            reasons.append(
                f"CAA of {name}{where} does not allow {identity.name} "
                f"({', '.join(identity.caa)}) to issue at detection time"
            )
        return reasons

    async def caa(self, name: str) -> CAALookup | str:
        """The CAA lookup of ``name`` (cached a minute), or why it failed."""
        now = time.monotonic()
        cached = self._caa.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        result: CAALookup | str = "no nameserver answered"
        async with self._gate:
            for server in self.nameservers:
                try:
                    result = await lookup_caa_async(
                        name, nameserver=server, timeout=self.caa_timeout
                    )
                except (InputError, NetworkError) as exc:
                    result = f"cannot look up CAA: {exc}"
                    continue
                if result.error is None:
                    break
        if len(self._caa) > 10_000:
            self._caa.clear()  # a bound, not an LRU: entries live a minute anyway
        self._caa[name] = (time.monotonic() + _CAA_CACHE_SECONDS, result)
        return result


def _check_key(entry: LogEntry, match: WatchMatch, now: datetime) -> list[str]:
    item = match.item
    pin = entry.spki_pin
    if pin is None:
        return ["the certificate's key could not be read, so it matches no pin"]
    missing: list[str] = []
    uncovered: list[str] = []
    for name in match.names:
        allowed = set(item.pins)
        if item.policy is not None:
            rule = item.policy.rule_for_normalized(name)
            if rule is None:
                if not item.pins:
                    uncovered.append(name)
                    continue
            elif rule.rule.is_expired(now):
                if not item.pins:
                    continue  # an expired rule fails open (docs/policy.md): nothing expected
            else:
                allowed.update(rule.rule.pins)
        if pin not in allowed:
            missing.append(name)
    reasons = []
    if missing:
        sources = " or ".join(s for s in ("pins=" if item.pins else "", _policy_name(item)) if s)
        reasons.append(f"key {pin} is not among the {sources} pins for {', '.join(missing)}")
    if uncovered:
        reasons.append(
            f"no rule of {_policy_name(item)} covers {', '.join(uncovered)}, so key {pin} "
            "cannot be checked"
        )
    return reasons


def _policy_name(item: WatchItem) -> str:
    if item.policy is None:
        return ""
    return f"policy {item.policy_path or item.policy.source}"


def _check_validity(entry: LogEntry, item: WatchItem) -> list[str]:
    days = item.max_validity_days
    assert days is not None
    if entry.not_before is None or entry.not_after is None:
        return [f"the validity could not be read, so it is not known to be at most {days} days"]
    length = entry.not_after - entry.not_before
    if length <= timedelta(days=days):
        return []
    return [
        f"valid for {length / timedelta(days=1):.1f} days "
        f"({entry.not_before:%Y-%m-%d} to {entry.not_after:%Y-%m-%d}), longer than "
        f"max-validity={days}"
    ]
