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

* ``ca=ID,…``: the issuer must be a CA whose CAA identities include one of them.
  Who the issuer is comes from its *key* where the log entry proves it
  (:func:`check_issuer`): a precertificate's ``issuer_key_hash`` (the SHA-256 of the
  issuer's SPKI, covered by the log's signature), or the SPKI of the first certificate of
  an ``x509_entry``'s chain once that certificate is checked to have signed it. A key
  among an identity's pins identifies that CA. Otherwise the issuer's *name* (the O= and
  CN= the issuing CA chose itself) only says who the issuer claims to be, and a claim
  never makes a certificate ``expected``: for a CA whose identity has pins, an issuer
  whose key is not among them is unexpected ("claims to be X but its key is not a known
  X key"); for a CA without pins, a name match is unexpected too, with a reason that says
  so and how to fix it (add the SPKI pins of the CA's issuing intermediates to the CA
  identities table; :func:`pinwarden.caa.identities.load_identities` reads an extra
  file). An issuer the table does not know at all is unexpected.
* ``ca=caa``: the CAA records of each matched name are looked up *now* (at detection
  time) and evaluated for the issuer's identities (RFC 8659; ``*.x`` as a wildcard
  request). A DNS failure is reported as "unknown", never as allowed. A record that
  allows the CA only for an ACME account or with certain validation methods (RFC 8657
  ``accounturi``/``validationmethods``) cannot be checked from a certificate: unexpected,
  saying so. The issuer is recognised as for ``ca=``; an issuer known by name only is
  unexpected even where CAA allows the CA it claims to be.
* ``pins=``/``policy=``: the certificate's SPKI pin must be one of the entry's pins or
  of the pins the policy's rule gives each matched name. A rule that has *expired*
  (docs/policy.md: clients stop enforcing it) still lists the keys its owner expected: a
  key among them is expected, any other key is unexpected with a reason that says the
  rule expired (renew it), never silently allowed.
* ``names=``: every name in the certificate must match one of the patterns.
* ``max-validity=``: notAfter - notBefore must not exceed that many days.

A certificate whose TBS could not be parsed is always ``unexpected``: the monitor
cannot check anything about it (see :func:`names_in_unreadable`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pinwarden.caa.evaluate import evaluate
from pinwarden.caa.identities import CAIdentity, load_identities
from pinwarden.caa.lookup import lookup_caa_async
from pinwarden.caa.model import CAALookup, Verdict
from pinwarden.ct._issuer_check import IssuerCheck, check_issuer, issuer_identity
from pinwarden.ct._unreadable_names import names_in_unreadable
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.watch import WatchItem, WatchMatch
from pinwarden.errors import InputError, NetworkError

__all__ = [
    "EXPECTED",
    "FOUND",
    "UNEXPECTED",
    "IssuerCheck",
    "Judge",
    "Judgement",
    "check_issuer",
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


@dataclass(frozen=True)
class Judgement:
    """A verdict (``expected``, ``unexpected`` or ``found``) and its reasons."""

    verdict: str
    reasons: tuple[str, ...] = ()


# -- the judge --------------------------------------------------------------------------------


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
        issuer = IssuerCheck(None)
        if any(m.item.cas or m.item.ca_from_caa for m in judged):
            issuer = check_issuer(entry, self.identities)
        for match in judged:
            found = await self._check(entry, match, issuer, now)
            reasons.extend(f"{match.item.key}: {r}" if label else r for r in found)
        return Judgement(UNEXPECTED if reasons else EXPECTED, tuple(dict.fromkeys(reasons)))

    async def _check(
        self, entry: LogEntry, match: WatchMatch, issuer: IssuerCheck, now: datetime
    ) -> list[str]:
        item = match.item
        reasons: list[str] = []
        issuer_name = entry.issuer or "(unknown issuer)"
        identity = issuer.identity
        if item.cas:
            if identity is None:
                reasons.append(
                    f"issuer {issuer_name!r} is not a CA pinwarden knows, so it is not one of "
                    f"the allowed CAs ({', '.join(item.cas)})"
                )
            elif not set(identity.caa) & set(item.cas):
                reasons.append(
                    f"issued by {identity.name} ({', '.join(identity.caa)}), not by an allowed "
                    f"CA ({', '.join(item.cas)})"
                )
            elif issuer.doubt is not None:
                reasons.append(issuer.doubt)
        if item.ca_from_caa:
            caa_reasons = await self._check_caa(match.names, identity, issuer_name)
            reasons.extend(caa_reasons)
            if identity is not None and issuer.doubt is not None and not caa_reasons:
                reasons.append(issuer.doubt)
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
            allowed = [e for e in evaluations if e.verdict is Verdict.ALLOWED]
            where = f" (records at {lookup.found_at})" if lookup.found_at else ""
            if any(not e.conditions for e in allowed):
                continue
            if allowed:
                # RFC 8657: the account and the validation method are not in the
                # certificate, so the restriction the owner published cannot be checked.
                conditions = " or ".join(c for e in allowed for c in e.conditions)
                reasons.append(
                    f"CAA of {name}{where} allows {identity.name} "
                    f"({', '.join(identity.caa)}) {conditions}; which account or method "
                    "was used cannot be checked from the certificate"
                )
                continue
            if any(e.verdict is Verdict.UNKNOWN for e in evaluations):
                reasons.append(f"CAA of {name}: unknown ({lookup.error or 'lookup failed'})")
                continue
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
    expired: dict[datetime | None, list[str]] = {}
    for name in match.names:
        allowed = set(item.pins)
        if item.policy is not None:
            rule = item.policy.rule_for_normalized(name)
            if rule is None:
                if not item.pins:
                    uncovered.append(name)
                    continue
            elif rule.rule.is_expired(now):
                # Clients no longer enforce it, but its pins are still the keys the owner
                # listed: another key is a finding, with the reason to renew the rule.
                if pin not in allowed and pin not in rule.rule.pins:
                    expired.setdefault(rule.rule.expires_at, []).append(name)
                continue
            else:
                allowed.update(rule.rule.pins)
        if pin not in allowed:
            missing.append(name)
    reasons = []
    if missing:
        sources = " or ".join(s for s in ("pins=" if item.pins else "", _policy_name(item)) if s)
        reasons.append(f"key {pin} is not among the {sources} pins for {', '.join(missing)}")
    for expires_at, names in expired.items():
        reasons.append(
            f"the rule of {_policy_name(item)} for {', '.join(names)} expired "
            f"{_expiry(expires_at)} and key {pin} is not among its pins (an expired rule "
            "no longer says which keys are expected: renew it)"
        )
    if uncovered:
        reasons.append(
            f"no rule of {_policy_name(item)} covers {', '.join(uncovered)}, so key {pin} "
            "cannot be checked"
        )
    return reasons


def _expiry(expires_at: datetime | None) -> str:
    if expires_at is None:
        return ""  # is_expired() is false without an expiry: never reached
    when = expires_at.astimezone(timezone.utc)
    if when.time() == datetime.min.time():
        # A TOML date D means enforced through day D (docs/policy.md).
        return f"at the end of {(when - timedelta(days=1)):%Y-%m-%d}"
    return f"at {when:%Y-%m-%d %H:%M:%S}Z"


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
