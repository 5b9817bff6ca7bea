"""Pin policies: which hosts are pinned to which keys, until when, and how strictly.

Which rule applies when several match a host: the **most specific** one, as on Android
and in TrustKit (not OkHttp's union of every matching pattern). Specificity is the
length of the domain a pattern is anchored on (``a.b.example.com`` beats
``*.b.example.com``, which beats ``**.example.com``); on the same domain an exact name
beats ``*.`` which beats ``**.`` / ``include_subdomains``. Two patterns of equal
specificity in different rules are refused when the policy is loaded, so the choice is
never arbitrary. A host matched by a rule's ``exclude`` is not covered by that rule; the
next most specific rule (if any) applies to it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pinwarden.errors import PinFormatError, PolicyError
from pinwarden.hosts import HostPattern, normalize_host
from pinwarden.pins import Pin, spki_sha256

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Mode", "PinRule", "Policy", "RuleMatch"]

_RULE_KEYS = {
    "hosts",
    "pins",
    "include_subdomains",
    "exclude",
    "expires",
    "mode",
    "report_uri",
    "allow_single_pin",
    "name",
}
_LOCKOUT = (
    "an enforced rule needs pins of at least two distinct keys (two sha256 pins): the "
    "current key and a backup "
    "(a key kept offline, or a second CA). With one pin, losing or rotating that key "
    "locks every client out until it is updated. Add a backup pin, or set "
    "allow_single_pin = true if you accept that risk"
)


class Mode(str, Enum):
    """``enforce`` blocks a connection whose chain matches no pin; ``report-only`` lets
    it through and reports it."""

    ENFORCE = "enforce"
    REPORT_ONLY = "report-only"


@dataclass(frozen=True)
class PinRule:
    """One ``[[pin]]`` entry. Create with :meth:`from_dict` to get validation with
    precise messages; the constructor validates too."""

    hosts: tuple[HostPattern, ...]
    pins: tuple[Pin, ...]
    exclude: tuple[HostPattern, ...] = ()
    expires_at: dt.datetime | None = None
    mode: Mode = Mode.ENFORCE
    report_uri: str | None = None
    allow_single_pin: bool = False
    name: str | None = None
    include_subdomains: bool = False
    """How ``hosts`` were read (the patterns already carry it); kept for :meth:`to_dict`."""
    _sha256: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.hosts:
            raise PolicyError("a rule needs at least one host", key="hosts")
        if not self.pins:
            raise PolicyError("a rule needs pins", key="pins")
        if len(set(self.pins)) != len(self.pins):
            dup = next(p for p in self.pins if self.pins.count(p) > 1)
            raise PolicyError(
                f"{dup} is listed twice; a backup pin must be a different key", key="pins"
            )
        # Two keys, not two hashes: a sha256 and a sha1 pin may well be the same key.
        keys = max(sum(p.algorithm == alg for p in self.pins) for alg in ("sha256", "sha1"))
        if self.mode is Mode.ENFORCE and keys < 2 and not self.allow_single_pin:
            raise PolicyError(_LOCKOUT, key="pins")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise PolicyError(
                "expires must be a date or a datetime with a UTC offset", key="expires"
            )
        object.__setattr__(
            self, "_sha256", tuple(p.digest for p in self.pins if p.algorithm == "sha256")
        )

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str | None = None, key: str = "pin"
    ) -> PinRule:
        """Build a rule from a mapping shaped like a ``[[pin]]`` TOML table."""

        def fail(message: str, sub: str | None = None) -> PolicyError:
            return PolicyError(message, source=source, key=f"{key}.{sub}" if sub else key)

        if not isinstance(data, Mapping):
            raise fail(f"a rule must be a table, got {type(data).__name__}")
        unknown = sorted(map(repr, set(data) - _RULE_KEYS))
        if unknown:
            raise fail(
                f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_RULE_KEYS))}"
            )
        include = data.get("include_subdomains", False)
        if not isinstance(include, bool):
            raise fail("must be true or false", "include_subdomains")
        hosts = _patterns(data.get("hosts"), include, fail, "hosts", required=True)
        exclude = _patterns(data.get("exclude", []), False, fail, "exclude", required=False)
        raw_pins = data.get("pins")
        if not isinstance(raw_pins, list) or not raw_pins:
            raise fail('must be a non-empty list of pins like "sha256/<base64>"', "pins")
        pins: list[Pin] = []
        for i, text in enumerate(raw_pins):
            try:
                pins.append(Pin.parse(text))
            except PinFormatError as exc:
                raise fail(str(exc), f"pins[{i}]") from None
        mode_text = data.get("mode", "enforce")
        try:
            mode = Mode(mode_text)
        except ValueError:
            raise fail(f"{mode_text!r} is not 'enforce' or 'report-only'", "mode") from None
        allow_single = data.get("allow_single_pin", False)
        if not isinstance(allow_single, bool):
            raise fail("must be true or false", "allow_single_pin")
        report_uri = data.get("report_uri")
        if report_uri is not None and not _is_http_url(report_uri):
            raise fail(f"{report_uri!r} is not an http(s) URL", "report_uri")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise fail("must be a string", "name")
        expires_at = _expiry(data.get("expires"), fail)
        try:
            return cls(
                hosts=hosts,
                pins=tuple(pins),
                exclude=exclude,
                expires_at=expires_at,
                mode=mode,
                report_uri=report_uri,
                allow_single_pin=allow_single,
                name=name,
                include_subdomains=include,
            )
        except PolicyError as exc:
            raise fail(exc.detail, exc.key) from None

    def is_expired(self, now: dt.datetime) -> bool:
        """True once ``now`` is past the rule's expiry: the rule then fails open."""
        return self.expires_at is not None and now >= self.expires_at

    def match_chain(self, chain: Sequence[bytes]) -> tuple[Pin, int] | None:
        """The first pin (and its chain position, 0 = leaf) that matches a DER chain."""
        for position, der in enumerate(chain):
            if self._sha256:
                digest = spki_sha256(der)
                for pin in self.pins:
                    if pin.algorithm == "sha256" and hmac.compare_digest(pin.digest, digest):
                        return pin, position
            for pin in self.pins:
                if pin.legacy and pin.matches(der):
                    return pin, position
        return None

    def to_dict(self) -> dict[str, Any]:
        """The ``[[pin]]`` table this rule was (or could have been) written as."""
        out: dict[str, Any] = {
            "hosts": list(dict.fromkeys(p.text for p in self.hosts)),
            "pins": [str(p) for p in self.pins],
        }
        if self.include_subdomains:
            out["include_subdomains"] = True
        if self.exclude:
            out["exclude"] = list(dict.fromkeys(p.text for p in self.exclude))
        if self.expires_at is not None:
            out["expires"] = self.expires_at.isoformat()
        out["mode"] = self.mode.value
        if self.report_uri:
            out["report_uri"] = self.report_uri
        if self.allow_single_pin:
            out["allow_single_pin"] = True
        if self.name is not None:
            out["name"] = self.name
        return out


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _patterns(
    value: object, include: bool, fail: Any, key: str, *, required: bool
) -> tuple[HostPattern, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (required and not value):
        raise fail(
            "must be a non-empty list of host patterns" if required else "must be a list", key
        )
    out: list[HostPattern] = []
    for i, text in enumerate(value):
        try:
            patterns = HostPattern.parse_all(text, include)
        except PolicyError as exc:
            raise fail(str(exc), f"{key}[{i}]") from None
        for pattern in patterns:
            if any(p.base == pattern.base and p.kind == pattern.kind for p in out):
                raise fail(f"{text!r} is listed twice", f"{key}[{i}]")
            out.append(pattern)
    return tuple(out)


_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")


def parse_iso_datetime(text: str) -> dt.datetime:
    """An ISO 8601 datetime read the same way on every Python: a trailing ``Z`` and any
    number of fraction digits are accepted (3.10's ``fromisoformat`` takes only 3 or 6).
    Raises ValueError."""
    value = text.strip()
    value = value[:-1] + "+00:00" if value[-1:] in "zZ" and value else value
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    return dt.datetime.fromisoformat(value)


def _expiry(value: object, fail: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value) if len(value) == 10 else parse_iso_datetime(value)
        except ValueError:
            raise fail(
                f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime", "expires"
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise fail(
                "a datetime needs a UTC offset (e.g. 2027-06-01T00:00:00Z); or give a date",
                "expires",
            )
        try:
            return value.astimezone(dt.timezone.utc)
        except OverflowError:
            raise fail(f"{value.isoformat()} is out of range", "expires") from None
    if isinstance(value, dt.date):
        # "expires = 2027-06-01": enforced through that whole UTC day, open from the next.
        if value == dt.date.max:
            raise fail(f"{value.isoformat()} is out of range", "expires")
        return dt.datetime.combine(value + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    raise fail(f"{value!r} is not a date", "expires")


@dataclass(frozen=True)
class RuleMatch:
    """The rule that applies to a host, and which of its patterns matched."""

    rule: PinRule
    pattern: HostPattern


@dataclass(frozen=True)
class Policy:
    """An immutable set of :class:`PinRule`; safe to share between threads."""

    rules: tuple[PinRule, ...]
    source: str = "<dict>"
    _index: dict[str, list[tuple[HostPattern, PinRule]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[str, list[tuple[HostPattern, PinRule]]] = {}
        for n, rule in enumerate(self.rules):
            for pattern in rule.hosts:
                entries = index.setdefault(pattern.base, [])
                for other, other_rule in entries:
                    if other.rank == pattern.rank and other_rule is not rule:
                        m = self.rules.index(other_rule)
                        raise PolicyError(
                            f"host pattern {pattern.text!r} overlaps {other.text!r} of pin[{m}] "
                            "with the same specificity, so which rule applies would be "
                            "ambiguous; merge the rules or make one pattern more specific",
                            source=self.source,
                            key=f"pin[{n}].hosts",
                        )
                entries.append((pattern, rule))
        for entries in index.values():
            entries.sort(key=lambda e: -e[0].rank)
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Policy:
        """Build from a mapping shaped like the TOML file: ``{"pin": [{...}, ...]}``."""
        if not isinstance(data, Mapping):
            raise PolicyError("a policy must be a table", source=source)
        unknown = sorted(map(repr, set(data) - {"pin", "version"}))
        if unknown:
            raise PolicyError(
                f"unknown top-level key(s) {', '.join(unknown)}; rules go in [[pin]] tables",
                source=source,
            )
        version = data.get("version", 1)
        if type(version) is not int or version != 1:
            raise PolicyError(
                f"unsupported policy version {version!r} (this pinwarden reads 1)",
                source=source,
                key="version",
            )
        rules = data.get("pin")
        if not isinstance(rules, list) or not rules:
            raise PolicyError("no [[pin]] rules", source=source, key="pin")
        parsed = tuple(
            PinRule.from_dict(rule, source=source, key=f"pin[{i}]") for i, rule in enumerate(rules)
        )
        return cls(parsed, source=source)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<toml>") -> Policy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"not valid TOML: {exc}", source=source) from None
        except (ValueError, RecursionError) as exc:
            # Deep nesting or an integer past Python's digit limit.
            raise PolicyError(f"not a readable TOML document: {exc}", source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy file (TOML, format in docs/policy.md)."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise PolicyError(
                f"cannot read policy file: {exc.strerror or exc}", source=str(p)
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"not UTF-8 text (byte {exc.start})", source=str(p)) from None
        return cls.from_toml(text, source=str(p))

    @classmethod
    def of(cls, rules: Iterable[PinRule]) -> Policy:
        return cls(tuple(rules))

    def rule_for(self, host: str) -> RuleMatch | None:
        """The most specific rule covering ``host`` (see the module docstring)."""
        return self.rule_for_normalized(normalize_host(host))

    def rule_for_normalized(self, name: str) -> RuleMatch | None:
        """:meth:`rule_for` for a name already passed through ``normalize_host`` (the
        handshake path normalises once and uses the name twice)."""
        index = self._index
        suffix = name
        depth = 0
        while True:
            entries = index.get(suffix)
            if entries is not None:
                for pattern, rule in entries:
                    if (
                        (depth == 0 and (pattern.kind == "exact" or pattern.include_base))
                        or (depth == 1 and pattern.kind != "exact")
                        or (depth > 1 and pattern.kind == "subtree")
                    ) and not any(ex.matches(name) for ex in rule.exclude):
                        return RuleMatch(rule, pattern)
            dot = suffix.find(".")
            if dot < 0:
                return None
            suffix = suffix[dot + 1 :]
            depth += 1
