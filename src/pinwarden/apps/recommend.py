"""Recommend a pin set for a verified chain: which level to pin, why, and a backup.

The choice follows the article's advice and the lockout arithmetic:

* a **leaf** pin breaks at the first renewal with a new key — every 90 days (or fewer)
  with today's CAs — so it is never proposed;
* an **intermediate** pin breaks when the CA issues from another intermediate (some
  rotate among several on purpose) or when the intermediate expires;
* a **root** pin survives both, at the cost of trusting every intermediate of that
  root for the host (CT monitoring and CAA cover that gap);
* and there is always at least one **backup** pin outside the current chain — a key
  kept offline, or a second CA — or the first incident locks every client out.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from pinwarden.certs import CertInfo
from pinwarden.errors import InputError, PolicyError
from pinwarden.pins import Pin
from pinwarden.policy import Policy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "KnownCA",
    "Level",
    "Recommendation",
    "RecommendedPin",
    "load_known_cas",
    "recommend",
]

Level = Literal["intermediate", "root"]

LEAF_PIN_MIN_LIFETIME = dt.timedelta(days=397)
"""A leaf valid for less than this is renewed too often to pin (397 days is the longest
lifetime browsers accept today)."""
INTERMEDIATE_MIN_REMAINING = dt.timedelta(days=730)
"""An intermediate expiring sooner than this will be replaced while apps pinned to it
are still in use (apps stay installed for years)."""
DEFAULT_POLICY_LIFETIME = dt.timedelta(days=365)


@dataclass(frozen=True)
class KnownCA:
    """A CA whose issuing habits matter for pinning (``apps/data/ca_intermediates.toml``)."""

    name: str
    match: tuple[str, ...]
    rotating_intermediates: bool
    intermediates: tuple[str, ...]
    roots: tuple[str, ...]
    note: str
    source: str

    def matches(self, issuer: str) -> bool:
        folded = issuer.casefold()
        return any(m.casefold() in folded for m in self.match)


_CA_KEYS = {"name", "match", "rotating_intermediates", "intermediates", "roots", "note", "source"}


def _known_ca(entry: Any, source: str, n: int) -> KnownCA:
    where = f"ca[{n}]"
    if not isinstance(entry, Mapping):
        raise PolicyError("must be a table", source=source, key=where)

    def strings(key: str) -> tuple[str, ...]:
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyError("must be a list of strings", source=source, key=f"{where}.{key}")
        return tuple(value)

    unknown = sorted(map(repr, set(entry) - _CA_KEYS))
    if unknown:
        raise PolicyError(
            f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_CA_KEYS))}",
            source=source,
            key=where,
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError("needs a name", source=source, key=f"{where}.name")
    match = strings("match")
    if not match:
        raise PolicyError("needs at least one match string", source=source, key=f"{where}.match")
    rotating = entry.get("rotating_intermediates", False)
    if not isinstance(rotating, bool):
        raise PolicyError(
            "must be true or false", source=source, key=f"{where}.rotating_intermediates"
        )
    return KnownCA(
        name=name,
        match=match,
        rotating_intermediates=rotating,
        intermediates=strings("intermediates"),
        roots=strings("roots"),
        note=str(entry.get("note", "")),
        source=str(entry.get("source", "")),
    )


def load_known_cas(extra: str | None = None, *, extra_source: str = "<ca-data>") -> list[KnownCA]:
    """The bundled table, with the entries of ``extra`` (TOML text of the same shape)
    added or replacing bundled entries of the same name."""
    bundled = resources.files("pinwarden.apps").joinpath("data/ca_intermediates.toml")
    tables = [(bundled.read_text(encoding="utf-8"), "pinwarden/apps/data/ca_intermediates.toml")]
    if extra is not None:
        tables.append((extra, extra_source))
    found: dict[str, KnownCA] = {}
    for text, source in tables:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
            raise PolicyError(f"not valid TOML: {exc}", source=source) from None
        entries = data.get("ca", [])
        if not isinstance(entries, list):
            raise PolicyError("[[ca]] entries expected", source=source, key="ca")
        for n, entry in enumerate(entries):
            ca = _known_ca(entry, source, n)
            found[ca.name] = ca
    return list(found.values())


@dataclass(frozen=True)
class RecommendedPin:
    """A pin of the recommendation: ``role`` is ``current`` (in the chain served now) or
    ``backup`` (outside it); ``label`` says what it is the key of."""

    pin: Pin
    role: Literal["current", "backup"]
    label: str


@dataclass(frozen=True)
class Recommendation:
    """What to pin, why, and the policy that does it."""

    hosts: tuple[str, ...]
    level: Level
    reasons: tuple[str, ...]
    pins: tuple[RecommendedPin, ...]
    expires: dt.date
    warnings: tuple[str, ...]
    known_ca: KnownCA | None

    def policy_dict(self) -> dict[str, Any]:
        """The policy as a mapping shaped like the TOML file."""
        return {
            "version": 1,
            "pin": [
                {
                    "hosts": list(self.hosts),
                    "pins": [str(p.pin) for p in self.pins],
                    "expires": self.expires.isoformat(),
                    "mode": "enforce",
                }
            ],
        }

    def policy(self) -> Policy:
        """The policy, validated as the loader would."""
        return Policy.from_dict(self.policy_dict(), source="<recommendation>")


def _choose(
    chain: Sequence[CertInfo], now: dt.datetime, ca: KnownCA | None
) -> tuple[Level, list[str]]:
    leaf = chain[0]
    reasons: list[str] = []
    lifetime = (
        leaf.not_after - leaf.not_before
        if leaf.not_after is not None and leaf.not_before is not None
        else None
    )
    if lifetime is not None and lifetime >= LEAF_PIN_MIN_LIFETIME:
        reasons.append(
            f"the leaf is valid for {lifetime.days} days, but each renewal with a new key "
            "would still lock clients out: pinning the CA is safer"
        )
    else:
        days = f"{lifetime.days}-day" if lifetime is not None else "short-lived"
        reasons.append(
            f"not the leaf: a {days} certificate is renewed (with a new key, by default) "
            "before most users update the app, so a leaf pin is a lockout"
        )
    if len(chain) < 3:
        reasons.append("the chain has no intermediate: the root is the CA level to pin")
        return "root", reasons
    intermediate = chain[1]
    if ca is not None and ca.rotating_intermediates:
        reasons.append(
            f"not the intermediate: {ca.name} issues from several intermediates in rotation"
            + (f" ({', '.join(ca.intermediates)})" if ca.intermediates else "")
            + f". {ca.note}"
        )
        return "root", reasons
    remaining = (
        intermediate.not_after - now if intermediate.not_after is not None else dt.timedelta()
    )
    if remaining < INTERMEDIATE_MIN_REMAINING:
        reasons.append(
            f"not the intermediate: {intermediate.subject} expires in {remaining.days} days, "
            "while app versions stay in use for years"
        )
        return "root", reasons
    reasons.append(
        f"the intermediate {intermediate.subject} is valid for {remaining.days} more days "
        "and the CA is not known to rotate intermediates: pinning it trusts only what this "
        "intermediate issues. Add the root too if the CA may switch intermediates."
    )
    return "intermediate", reasons


def recommend(
    hosts: Sequence[str],
    chains: Sequence[Sequence[CertInfo]],
    backups: Sequence[tuple[str, Pin]],
    *,
    now: dt.datetime,
    known_cas: Sequence[KnownCA] = (),
    lifetime: dt.timedelta = DEFAULT_POLICY_LIFETIME,
) -> Recommendation:
    """A recommendation for ``hosts`` served with the verified ``chains`` (one per
    distinct chain seen; leaf first, trust anchor last), with ``backups`` as
    (label, pin) of keys kept outside the chain. Raises InputError without a backup."""
    if not chains or not all(chains):
        raise InputError("no verified chain to recommend pins for")
    in_chain = {c.pin for chain in chains for c in chain if c.pin is not None}
    outside = [(label, pin) for label, pin in backups if pin not in in_chain]
    warnings = [
        f"{label}: {pin} is a key of the current chain, not a backup; it is left out"
        for label, pin in backups
        if pin in in_chain
    ]
    if not outside:
        raise InputError(
            "a pin set needs at least one backup pin outside the current chain: give "
            "--backup-key or --backup-csr (make one with `pinwarden keygen --out backup.key`) "
            "or --backup-cert with a second CA's certificate"
        )
    # Judge every distinct chain; the safest level wins (root when any chain needs it),
    # so the answer never depends on which address answered first.
    ca: KnownCA | None = None
    level: Level = "intermediate"
    reasons: list[str] = []
    for chain in chains:
        chain_ca = next((k for k in known_cas if k.matches(chain[0].issuer)), None)
        chain_level, chain_reasons = _choose(chain, now, chain_ca)
        ca = ca or chain_ca
        if chain_level == "root":
            level = "root"
        reasons.extend(r for r in chain_reasons if r not in reasons)
    intermediates = {chain[1].pin for chain in chains if len(chain) > 2}
    if level == "intermediate" and len(intermediates) > 1:
        level = "root"
        reasons.append(
            f"not an intermediate: the host's addresses serve {len(intermediates)} different "
            "intermediates, so they are rotated (by the CA or the CDN); one more would lock "
            "clients out"
        )
    if level == "root":
        # Reasons for an intermediate pin no longer apply.
        reasons = [r for r in reasons if not r.startswith("the intermediate ")]
    if len(chains) > 1:
        reasons.append(
            f"the addresses of the host serve {len(chains)} different chains: the pins cover "
            "each of them"
        )
    pins: list[RecommendedPin] = []
    ends: list[dt.datetime] = []
    for chain in chains:
        cert = chain[-1] if level == "root" else chain[1]
        if cert.pin is None:
            raise InputError(f"the public key of {cert.subject} cannot be read")
        if all(p.pin != cert.pin for p in pins):
            pins.append(RecommendedPin(cert.pin, "current", f"{cert.position} {cert.subject}"))
        if cert.not_after is not None:
            ends.append(cert.not_after)
        if level == "root" and cert.not_after is not None and cert.not_after - now < lifetime:
            warnings.append(
                f"the root {cert.subject} expires on {cert.not_after:%Y-%m-%d}: plan its "
                "successor's pin"
            )
    for label, pin in outside:
        if all(p.pin != pin for p in pins):
            pins.append(RecommendedPin(pin, "backup", label))
    # Enforced through the chosen day; never past the pinned certificates (lint PW010).
    try:
        last_day = min([now + lifetime, *ends]) - dt.timedelta(days=1)
    except OverflowError:
        raise InputError(f"{now:%Y-%m-%d} is too close to the end of the calendar") from None
    return Recommendation(
        hosts=tuple(hosts),
        level=level,
        reasons=tuple(reasons),
        pins=tuple(pins),
        expires=last_day.date(),
        warnings=tuple(warnings),
        known_ca=ca,
    )
