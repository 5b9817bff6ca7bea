"""Parsing one line of a watch list file into a :class:`~pinwarden.ct.watch.WatchItem`:
the name and each ``key=value`` expectation (format in :mod:`pinwarden.ct.watch`).

Separate from :mod:`pinwarden.ct.watch` so that the file format's checks and messages
stand apart from the list and its matching.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from pinwarden.caa.values import is_issuer_domain_name
from pinwarden.ct._watch_item import WatchItem
from pinwarden.ct._watch_names import alabel_2008
from pinwarden.errors import InputError, PinFormatError, PolicyError
from pinwarden.hosts import HostPattern, canonical_ip
from pinwarden.pins import Pin
from pinwarden.policy import Policy

_KEYS = ("ca", "pins", "policy", "names", "max-validity")
_MAX_VALIDITY_DAYS = 100_000


def parse_line(line: str, source: str, number: int, base_dir: Path | None) -> WatchItem | None:
    where = f"{source}:{number}"
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    if not words:
        return None
    name, options = words[0], words[1:]
    domain, subdomains, bases = _parse_name(name, where)
    values: dict[str, str] = {}
    for option in options:
        key, equals, value = option.partition("=")
        key = key.lower()
        if not equals:
            raise InputError(
                f"{where}: {option!r} is not key=value (one entry a line; "
                f"expectations are {', '.join(k + '=' for k in _KEYS)})"
            )
        if key not in _KEYS:
            raise InputError(
                f"{where}: unknown expectation {key!r}; use {', '.join(k + '=' for k in _KEYS)}"
            )
        if key in values:
            raise InputError(f"{where}: {key}= is given twice")
        if not value.strip():
            raise InputError(f"{where}: {key}= has no value")
        values[key] = value.strip()
    item = WatchItem(text=name, domain=domain, subdomains=subdomains, bases=bases)
    cas, from_caa = _parse_cas(values.get("ca"), where)
    pins = _parse_pins(values.get("pins"), where)
    policy_path, policy = _parse_policy(values.get("policy"), where, base_dir)
    patterns = _parse_patterns(values.get("names"), where, item)
    max_days = _parse_days(values.get("max-validity"), where)
    return WatchItem(
        text=name,
        domain=domain,
        subdomains=subdomains,
        bases=bases,
        line=number,
        source=source,
        cas=cas,
        ca_from_caa=from_caa,
        pins=pins,
        policy_path=policy_path,
        policy=policy,
        names=patterns,
        max_validity_days=max_days,
    )


def _parse_name(name: str, where: str) -> tuple[str, bool, tuple[str, ...]]:
    if name.startswith("*") or name.startswith("**."):
        rest = name.lstrip("*").lstrip(".")
        raise InputError(
            f"{where}: {name!r}: wildcards are not watch list syntax; write .{rest} for "
            f"{rest} and every name under it"
        )
    subdomains = name.startswith(".")
    rest = name[1:] if subdomains else name
    if not rest or rest.startswith("."):
        raise InputError(f"{where}: {name!r} is not a domain name")
    if canonical_ip(rest) is not None:
        raise InputError(
            f"{where}: {name!r} is an IP address: the monitor watches DNS names only (it does "
            "not read the IP address entries of certificates), so it would never match"
        )
    try:
        patterns = HostPattern.parse_all(rest)
    except PolicyError as exc:
        raise InputError(f"{where}: {exc.detail.replace('host pattern', 'name')}") from None
    bases = tuple(dict.fromkeys(pattern.base for pattern in patterns))
    return bases[0], subdomains, bases


def _items(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parse_cas(value: str | None, where: str) -> tuple[tuple[str, ...], bool]:
    if value is None:
        return (), False
    names = _items(value)
    if any(name.lower() == "caa" for name in names):
        if len(names) > 1:
            raise InputError(
                f"{where}: ca=caa (the CAs the CAA records allow) cannot be combined with "
                "named CAs; list the CAs, or publish them in CAA"
            )
        return (), True
    cas: list[str] = []
    for name in names:
        folded = name.lower().rstrip(".")
        if not folded.isascii():
            folded = alabel_2008(folded) or folded
        if not is_issuer_domain_name(folded):
            raise InputError(
                f"{where}: ca={name!r} is not a CAA issuer domain name (like letsencrypt.org)"
            )
        cas.append(folded)
    if not cas:
        raise InputError(f"{where}: ca= lists no CA")
    return tuple(dict.fromkeys(cas)), False


def _parse_pins(value: str | None, where: str) -> tuple[Pin, ...]:
    if value is None:
        return ()
    pins: list[Pin] = []
    for text in _items(value):
        try:
            pins.append(Pin.parse(text))
        except PinFormatError as exc:
            raise InputError(f"{where}: pins=: {exc}") from None
    if not pins:
        raise InputError(f"{where}: pins= lists no pin")
    return tuple(dict.fromkeys(pins))


def _parse_policy(
    value: str | None, where: str, base_dir: Path | None
) -> tuple[Path | None, Policy | None]:
    if value is None:
        return None, None
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return path, Policy.load(path)
    except PolicyError as exc:
        raise InputError(f"{where}: policy={value}: {exc}") from None


def _parse_patterns(value: str | None, where: str, item: WatchItem) -> tuple[HostPattern, ...]:
    if value is None:
        return ()
    patterns: list[HostPattern] = []
    for text in _items(value):
        try:
            parsed = HostPattern.parse_all(text)
        except PolicyError as exc:
            raise InputError(f"{where}: names=: {exc.detail}") from None
        for pattern in parsed:
            if not item.covers(pattern.base):
                raise InputError(
                    f"{where}: names={text} is outside the entry {item.text!r}, so no "
                    "certificate matching the entry could carry it"
                )
        patterns.extend(parsed)
    if not patterns:
        raise InputError(f"{where}: names= lists no name")
    return tuple(dict.fromkeys(patterns))


def _parse_days(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    text = value.lower().removesuffix("d")
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _MAX_VALIDITY_DAYS:
        raise InputError(
            f"{where}: max-validity={value!r} is not a number of days (1 to {_MAX_VALIDITY_DAYS})"
        )
    return int(text)
