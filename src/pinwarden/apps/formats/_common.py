"""What the format modules share: naming rules in loss messages, fitting host patterns
into the one-entry-per-domain model of Android, iOS, TrustKit and HPKP, and rebuilding a
policy from the pinned names another tool's config lists."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import plistlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pinwarden.errors import FormatError, PolicyError
from pinwarden.hosts import HostPattern, PatternKind, canonical_ip
from pinwarden.pins import Pin
from pinwarden.policy import Mode, PinRule, Policy

__all__ = [
    "MAX_INPUT_BYTES",
    "Abilities",
    "Domain",
    "Entry",
    "Imported",
    "build_policy",
    "check_size",
    "decode_sha256",
    "domains_of",
    "expiry_date",
    "fail",
    "is_ip",
    "load_plist",
    "name_notes",
    "overlap",
    "pattern_text",
    "rule_label",
    "sha256_pins",
    "under",
    "unsupported",
    "utc",
]

MAX_INPUT_BYTES = 4 * 1024 * 1024
"""A pin config is a few kilobytes; refusing more bounds what hostile input can cost."""


@dataclass(frozen=True)
class Imported:
    """A policy read from another tool's config, and what the user should know about
    the translation (semantics that differ, settings that were ignored)."""

    policy: Policy
    notes: tuple[str, ...] = ()


def fail(source: str, where: str | None, message: str) -> FormatError:
    """A :class:`FormatError` naming the file, the place in it, and the problem."""
    return FormatError(": ".join(part for part in (source, where, message) if part))


def domain_entry(
    domain: object, config: object, known: Iterable[str], source: str, where: str
) -> tuple[str, dict[str, Any]]:
    """A plist/dictionary domain entry checked: a string name, a dictionary of known
    keys only (iOS NSPinnedDomains and TrustKit TSKPinnedDomains)."""
    if not isinstance(domain, str):
        raise fail(source, where, "a domain name must be a string")
    if not isinstance(config, dict):
        raise fail(source, where, "must be a dictionary")
    allowed = sorted(known)
    unknown = sorted(map(str, set(config) - set(allowed)))
    if unknown:
        raise fail(
            source, where, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(allowed)}"
        )
    return domain, config


def check_size(data: bytes, source: str) -> None:
    if len(data) > MAX_INPUT_BYTES:
        raise fail(
            source, None, f"{len(data)} bytes is too large for a pin configuration (limit 4 MiB)"
        )


def load_plist(data: bytes, source: str) -> object:
    """A property list (XML or binary), or a :class:`FormatError`."""
    check_size(data, source)
    if data.startswith(b"bplist00"):
        # plistlib sizes its object table from the trailer before reading it: refuse
        # counts the file cannot hold rather than let it allocate them.
        if len(data) < 40:
            raise fail(source, None, "binary plist too short for its trailer")
        offset_size, _, count, _, table = struct.unpack(">6xBBQQQ", data[-32:])
        if count > len(data) or table > len(data) or offset_size * count > len(data):
            raise fail(source, None, "binary plist trailer points outside the file")
    try:
        return plistlib.loads(data)
    except Exception as exc:
        # plistlib raises InvalidFileException, ExpatError, ValueError, TypeError,
        # struct.error, OverflowError, RecursionError... on hostile input: all mean
        # "not a readable plist".
        raise fail(source, None, f"not a readable property list: {exc}") from None


def decode_sha256(text: object, source: str, where: str) -> Pin:
    """A bare base64 SHA-256 SPKI digest, as Android, iOS and TrustKit write pins."""
    if not isinstance(text, str):
        raise fail(source, where, f"a pin must be a base64 string, got {type(text).__name__}")
    value = text.strip()
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise fail(source, where, f"{value[:60]!r} is not valid base64") from None
    if len(digest) != 32:
        raise fail(
            source,
            where,
            f"{value[:60]!r} decodes to {len(digest)} bytes; a SHA-256 pin has 32",
        )
    return Pin("sha256", digest)


def utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc)


def expiry_date(expires_at: dt.datetime) -> tuple[dt.date, bool]:
    """The ``yyyy-MM-dd`` date for Android's ``expiration`` and TrustKit's
    ``TSKExpirationDate``, and whether it is exact.

    Both tools stop enforcing at 00:00 *of* that date (Android's XmlConfigSource parses
    it with SimpleDateFormat and skips pins once ``currentTimeMillis() > expirationTime``;
    TrustKit parses it in UTC and skips once the date is past), so the exact date of an
    expiry at 00:00 UTC is that day. Any other instant is rounded down to the day it
    falls on: pins stop earlier, never later.
    """
    moment = utc(expires_at)
    return moment.date(), moment.time() == dt.time(0)


def rule_label(index: int, rule: PinRule) -> str:
    """``pin[0] 'name' (api.example.com, **.example.com)``: how messages name a rule."""
    hosts = ", ".join(dict.fromkeys(p.text for p in rule.hosts))
    name = f" {rule.name!r}" if rule.name else ""
    return f"pin[{index}]{name} ({hosts})"


def pattern_text(kind: PatternKind, base: str) -> str:
    """The pinwarden/OkHttp spelling of a pattern: ``x``, ``*.x`` or ``**.x``."""
    return {"exact": base, "one-label": f"*.{base}", "subtree": f"**.{base}"}[kind]


def is_ip(base: str) -> bool:
    return canonical_ip(base) == base


def under(name: str, parent: str) -> bool:
    """Whether ``name`` lies strictly under ``parent`` (both normalised)."""
    return name.endswith("." + parent)


def _one_below(name: str, parent: str) -> bool:
    return under(name, parent) and "." not in name[: -len(parent) - 1]


def overlap(a: tuple[PatternKind, str], b: tuple[PatternKind, str]) -> str | None:
    """A name (or ``*.name`` for "any one label under name") that both patterns match,
    or None when no name matches both. Patterns are (kind, base); ``subtree`` here covers
    its base too, as OkHttp's ``**.`` does."""
    rank = {"exact": 0, "one-label": 1, "subtree": 2}
    if rank[a[0]] > rank[b[0]]:
        a, b = b, a
    (ka, na), (kb, nb) = a, b
    if ka == "exact":
        if kb == "exact":
            return na if na == nb else None
        if kb == "one-label":
            return na if _one_below(na, nb) else None
        return na if na == nb or under(na, nb) else None
    if ka == "one-label":
        if kb == "one-label":
            return f"*.{na}" if na == nb else None
        if na == nb or under(na, nb):
            return f"*.{na}"
        return nb if _one_below(nb, na) else None
    if na == nb or under(na, nb):
        return na
    return nb if under(nb, na) else None


@dataclass(frozen=True)
class Abilities:
    """What a tool can express besides host patterns (see :func:`unsupported`)."""

    tool: str
    expiry: bool = False
    report_only: bool = False
    report_uri: bool = False
    exclude: bool = False
    sha1: bool = False


def unsupported(index: int, rule: PinRule, can: Abilities) -> list[str]:
    """The losses of writing ``rule`` for a tool lacking some of pinwarden's settings."""
    label = rule_label(index, rule)
    tool = can.tool
    losses: list[str] = []
    if rule.expires_at is not None and not can.expiry:
        losses.append(
            f"{label}: expires {utc(rule.expires_at).isoformat()}: {tool} has no expiry, "
            "so these pins would be enforced with no end date (an app nobody updates "
            "locks itself out once the keys change)"
        )
    if rule.mode is Mode.REPORT_ONLY and not can.report_only:
        losses.append(
            f"{label}: report-only mode: {tool} always enforces pins, so a mismatch would "
            "block the connection instead of only being reported"
        )
    if rule.report_uri and not can.report_uri:
        losses.append(
            f"{label}: report_uri {rule.report_uri}: {tool} cannot send violation reports; left out"
        )
    if rule.exclude and not can.exclude:
        names = ", ".join(p.text for p in rule.exclude)
        losses.append(
            f"{label}: exclude {names}: {tool} cannot exempt names from a rule, so they "
            "would be pinned too"
        )
    if not can.sha1:
        for pin in rule.pins:
            if pin.algorithm != "sha256":
                losses.append(f"{label}: {pin}: {tool} takes SHA-256 pins only; left out")
        if not any(p.algorithm == "sha256" for p in rule.pins):
            losses.append(
                f"{label}: no SHA-256 pin is left, so the rule is left out and its hosts "
                "would not be pinned"
            )
    return losses


def name_notes(policy: Policy, tool: str) -> list[str]:
    """Rule names label rules for people; other tools have nowhere to keep them."""
    named = [rule_label(i, r) for i, r in enumerate(policy.rules) if r.name]
    if not named:
        return []
    return [f"{tool} has no place for rule names; not kept: {'; '.join(named)}"]


def sha256_pins(rule: PinRule) -> tuple[Pin, ...]:
    return tuple(p for p in rule.pins if p.algorithm == "sha256")


@dataclass(frozen=True)
class Domain:
    """One domain entry of a one-entry-per-domain format, and the rule it comes from."""

    name: str
    subtree: bool
    index: int
    rule: PinRule


def domains_of(
    policy: Policy, tool: str, losses: list[str], *, ip_ok: bool, one_label: bool = False
) -> list[Domain]:
    """Fit every rule's patterns into entries of (domain, includeSubdomains), in order.

    Such formats have no ``*.`` one-label wildcard and no "under x but not x itself":
    those are widened to x with its subdomains (a loss, unless the same rule covers what
    the widening adds). ``one_label``: the format's flag covers x and the names one label
    under it only (Apple's ``NSIncludesSubdomains``), so ``x`` with ``*.x`` is exact and
    ``**.x`` loses the deeper names. A domain name can appear once: a second rule's
    pattern on the same name is left out (a loss). Rules without a SHA-256 pin are
    skipped (their loss comes from :func:`unsupported`)."""
    found: dict[str, Domain] = {}
    for index, rule in enumerate(policy.rules):
        if not sha256_pins(rule):
            continue
        label = rule_label(index, rule)
        by_base: dict[str, list[HostPattern]] = {}
        for pattern in rule.hosts:
            by_base.setdefault(pattern.base, []).append(pattern)
        for base, patterns in by_base.items():
            texts = ", ".join(p.text for p in patterns)
            if is_ip(base) and not ip_ok:
                losses.append(
                    f"{label}: {texts}: {tool} pins domain names, not IP addresses; left out"
                )
                continue
            covers_base = any(p.include_base for p in patterns)
            covers_one = any(p.kind != "exact" for p in patterns)
            covers_deep = any(p.kind == "subtree" for p in patterns)
            subtree = covers_one
            if one_label:
                if subtree and not covers_base:
                    losses.append(
                        f"{label}: {texts}: {tool} has no such wildcard; written as {base} "
                        f"with its subdomains, which also pins {base}"
                    )
                if covers_deep:
                    losses.append(
                        f"{label}: {texts}: {tool}'s subdomain flag covers only the names "
                        f"one label under {base}; written so, names two or more labels "
                        f"below {base} stay unpinned"
                    )
            elif subtree and not (covers_base and covers_deep):
                extra = " and ".join(
                    what
                    for what, missing in (
                        (base, not covers_base),
                        (f"names more than one label under {base}", not covers_deep),
                    )
                    if missing
                )
                losses.append(
                    f"{label}: {texts}: {tool} has no such wildcard; written as {base} "
                    f"with its subdomains, which also pins {extra}"
                )
            existing = found.get(base)
            if existing is not None:
                losses.append(
                    f"{label}: {texts}: {tool} has one entry per domain name and {base} is "
                    f"already written for {rule_label(existing.index, existing.rule)}; "
                    "left out"
                )
                continue
            found[base] = Domain(base, subtree, index, rule)
    return list(found.values())


@dataclass(frozen=True)
class Entry:
    """One pinned name as another tool's config writes it, before rules are rebuilt."""

    host: str
    """The name as written (no wildcard prefix)."""
    kind: PatternKind
    pins: tuple[Pin, ...]
    where: str
    """Where it is in the file, for messages ("line 4", "domain-config[2]/domain[1]")."""
    expires_at: dt.datetime | None = None
    mode: Mode = Mode.ENFORCE
    report_uri: str | None = None


def _pin_keys(pins: Sequence[Pin]) -> int:
    # As PinRule counts them: a sha256 and a sha1 pin may be the same key.
    return max(sum(p.algorithm == alg for p in pins) for alg in ("sha256", "sha1"))


def build_policy(
    entries: Iterable[Entry],
    source: str,
    notes: Sequence[str] = (),
    *,
    merge_same_pattern: bool = False,
    exclusions: Sequence[tuple[str, str]] = (),
) -> Imported:
    """Rebuild a policy from pinned names: one rule per distinct set of pins and
    settings, its hosts in the order they were first seen.

    ``merge_same_pattern``: a pattern given twice adds up its pins (OkHttp's
    ``add()``); otherwise it is an error. ``exclusions`` are (pattern, where) pairs of
    names the tool pins nowhere although an entry with subdomains covers them: a name
    (TrustKit's exclusion entry, Android's empty ``<pin-set/>``) or ``**.name`` for the
    name and everything under it (Android, ``includeSubdomains``)."""
    merged: dict[tuple[str, PatternKind], Entry] = {}
    for entry in entries:
        text = pattern_text(entry.kind, entry.host.strip())
        try:
            patterns = HostPattern.parse_all(text)
        except PolicyError as exc:
            raise fail(source, entry.where, exc.detail) from None
        key = (patterns[0].base, entry.kind)
        previous = merged.get(key)
        if previous is None:
            merged[key] = replace(
                entry, host=entry.host.strip(), pins=tuple(dict.fromkeys(entry.pins))
            )
        elif merge_same_pattern:
            merged[key] = replace(previous, pins=tuple(dict.fromkeys(previous.pins + entry.pins)))
        else:
            raise fail(source, entry.where, f"{text} is listed twice (first at {previous.where})")
    if not merged:
        raise fail(source, None, "no pinned hosts found")

    # An exempted name leaves every rule with an entry covering it: the tool then pins
    # it nowhere, which is what pinwarden's exclude means.
    exempt: list[tuple[HostPattern, str]] = []
    for written, where in exclusions:
        try:
            exempt.append((HostPattern.parse(written), where))
        except PolicyError as exc:
            raise fail(source, where, exc.detail) from None
    subtrees = [p.base for p, _ in exempt if p.kind == "subtree"]

    groups: dict[tuple[object, ...], list[tuple[str, Entry]]] = {}
    for (base, _), entry in merged.items():
        # A rule's exclude applies to all its hosts: an entry under an exempted subtree
        # (pinned on its own, being more specific) must not share a rule with the entry
        # the subtree is exempted from.
        shield = frozenset(t for t in subtrees if base == t or under(base, t))
        settings = (frozenset(entry.pins), entry.expires_at, entry.mode, entry.report_uri, shield)
        groups.setdefault(settings, []).append((base, entry))
    members_of = list(groups.values())

    excluded: dict[int, list[str]] = {}
    for pattern, where in exempt:
        name = pattern.base
        covering = [
            n
            for n, members in enumerate(members_of)
            if any(
                (e.kind == "one-label" and _one_below(name, base))
                or (e.kind == "subtree" and under(name, base))
                for base, e in members
            )
        ]
        if not covering:
            raise fail(source, where, f"{name} is excluded, but no entry with subdomains covers it")
        exempted = name if pattern.kind == "exact" else pattern_text(pattern.kind, name)
        for n in covering:
            excluded.setdefault(n, []).append(exempted)

    all_notes = list(notes)
    rules: list[PinRule] = []
    for n, members in enumerate(members_of):
        first = members[0][1]
        subtree_only = all(e.kind == "subtree" for _, e in members)
        data: dict[str, object] = {
            "hosts": [e.host if subtree_only else pattern_text(e.kind, e.host) for _, e in members],
            "pins": [str(p) for p in first.pins],
        }
        if subtree_only:
            data["include_subdomains"] = True
        if n in excluded:
            data["exclude"] = list(dict.fromkeys(excluded[n]))
        if first.expires_at is not None:
            data["expires"] = utc(first.expires_at).isoformat()
        data["mode"] = first.mode.value
        if first.report_uri is not None:
            data["report_uri"] = first.report_uri
        if first.mode is Mode.ENFORCE and _pin_keys(first.pins) < 2:
            data["allow_single_pin"] = True
            shown = ", ".join(pattern_text(e.kind, e.host) for _, e in members)
            all_notes.append(
                f"{shown}: one pin ({first.pins[0]}) and no backup; the source config "
                "allowed it, so the rule gets allow_single_pin = true (lint flags it)"
            )
        try:
            rules.append(PinRule.from_dict(data, source=source, key=first.where))
        except PolicyError as exc:
            raise fail(source, first.where, exc.detail) from None
    try:
        policy = Policy(tuple(rules), source=source)
    except PolicyError as exc:
        raise fail(source, None, exc.detail) from None
    return Imported(policy, tuple(all_notes))
