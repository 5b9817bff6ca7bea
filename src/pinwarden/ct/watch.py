"""The CT monitor's watch list: which names to look for in the logs, and what to expect of the
certificates issued for them.

The file has one entry a line; ``#`` starts a comment (a whole line, or after a space);
blank lines are ignored::

    # name              expectations (all optional)
    example.com                                       # example.com only
    .example.com                                      # example.com and every name under it
    .example.com        ca=letsencrypt.org,digicert.com pins=sha256/AAAA…=,sha256/BBBB…=
    shop.example.net    ca=caa policy=pins.toml max-validity=90
    .example.org        names=www.example.org,*.api.example.org

A name is written as in DNS, Unicode or A-labels, any case, with or without a final dot; it
is stored IDNA-normalised (lower-case A-labels; a Unicode name whose IDNA 2008 and IDNA 2003
encodings differ is watched under both). A leading ``.`` means the name and every name under
it. Wildcards are not entry syntax: ``.example.com`` already covers ``*.example.com``. IP
addresses are refused: the monitor reads certificates' DNS names, not their IP address
entries, so an IP entry would never match.

Expectations are ``key=value``, lists comma-separated, each key at most once; a value with
spaces is quoted with shell rules (``policy="/etc/my pins.toml"``):

``ca=ID[,ID…]``
    CAA issuer domain names of the CAs allowed to issue (``letsencrypt.org``, ``digicert.com``).
``ca=caa``
    The CAs the name's CAA records allow *at detection time*. The entry only records the
    wish (:attr:`WatchItem.ca_from_caa`); the monitor does the lookup when it finds a
    certificate. It cannot be combined with named CAs.
``pins=PIN[,PIN…]``
    SPKI pins (``sha256/<base64>``, any form :meth:`pinwarden.Pin.parse` reads) the
    certificate's key must match.
``policy=FILE``
    A pinwarden policy (docs/policy.md) whose rule for each name gives the allowed keys;
    a relative path is relative to the watch file. Read when the watch list is read.
    With ``pins=`` too, a key matching either is allowed.
``names=PATTERN[,…]``
    The names certificates are expected to carry (host patterns: ``a.example.com``,
    ``*.example.com`` one label, ``**.example.com`` any depth); a certificate that matches
    the entry but also names anything else is unexpected. Each pattern must lie inside the
    entry.
``max-validity=DAYS``
    The longest validity (notAfter - notBefore) expected, in days.

Matching (:meth:`WatchList.match`) is fail-safe: a certificate name matches when any client
could take it for a watched name. Names are normalised (case, final dot, empty labels,
full-width dots, U-labels to A-labels by IDNA 2008 and by IDNA 2003), and a name that cannot
be normalised is still compared label by label, never dropped. A name with a NUL or another
control character (``www.example.com\x00.evil.org``, the null-prefix attack) is also looked up
as the part before it, which is what a C client reads. A certificate's names are matched in
both spellings the monitor has for them (:meth:`WatchList.matches` ``spellings``): the
A-labels of the certificate and their Unicode form, so that a name only IDNA 2003 maps to the
watched one (``faß.example.de`` for ``fass.example.de``) is found. A wildcard name
``*.example.com`` matches ``.example.com`` (and every ``.x`` above it) and also the entries
one label below it (``x.example.com`` or ``.x.example.com``), since the certificate is valid
for them. A wildcard anywhere but in the first label, or a label that only contains a ``*``
(``w*.example.com``), is taken as broadly as possible: every entry at or under the part of
the name to the right of it.

Lookups go through dictionaries keyed by domain suffix, so matching costs a few dictionary
lookups per certificate name whatever the size of the list.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import idna

from pinwarden.caa.values import is_issuer_domain_name
from pinwarden.errors import InputError, PinFormatError, PolicyError
from pinwarden.hosts import HostPattern, canonical_ip
from pinwarden.pins import Pin
from pinwarden.policy import Policy

__all__ = ["WatchItem", "WatchList", "WatchMatch", "name_forms"]

_KEYS = ("ca", "pins", "policy", "names", "max-validity")
_MAX_VALIDITY_DAYS = 100_000
# Dots that IDNA (UTS #46) maps to "." : ideographic, full-width and half-width full stops.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# C0 and C1 control characters (Unicode category Cc): where a C string, or a careless
# client, ends a name.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class WatchItem:
    """One watch list entry. ``text`` is the name as written; ``domain`` its normalised
    form (``bases`` every A-label form it is watched under); ``subdomains`` whether names
    under it are watched too. The rest are the entry's expectations (module docstring)."""

    text: str
    domain: str
    subdomains: bool
    bases: tuple[str, ...]
    line: int = 0
    source: str = "<string>"
    cas: tuple[str, ...] = ()
    ca_from_caa: bool = False
    pins: tuple[Pin, ...] = ()
    policy_path: Path | None = None
    policy: Policy | None = field(default=None, compare=False, repr=False)
    names: tuple[HostPattern, ...] = ()
    max_validity_days: int | None = None

    @property
    def key(self) -> str:
        """The entry's stable name: ``.example.com`` or ``example.com`` (normalised)."""
        return f".{self.domain}" if self.subdomains else self.domain

    def __str__(self) -> str:
        return self.key

    @property
    def has_expectations(self) -> bool:
        return bool(
            self.cas
            or self.ca_from_caa
            or self.pins
            or self.policy is not None
            or self.names
            or self.max_validity_days is not None
        )

    def covers(self, name: str) -> bool:
        """Whether a normalised (A-label, lower-case) name is watched by this entry."""
        for base in self.bases:
            if name == base or (self.subdomains and name.endswith("." + base)):
                return True
        return False


@dataclass(frozen=True)
class WatchMatch:
    """A watch list entry and the certificate names (as given) that matched it."""

    item: WatchItem
    names: tuple[str, ...]


def _alabel_2008(label: str) -> str | None:
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None


def _alabel_2003(label: str) -> str | None:
    try:
        return label.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def name_forms(name: str) -> tuple[str, ...]:
    """The spellings of a certificate name that are looked up: lower-case, no final dot or
    empty labels, each Unicode label as its IDNA 2008 and as its IDNA 2003 A-label (or
    itself, lower-cased, when an encoding refuses it); for a name with a control
    character, also the forms of the part before the first one (the null-prefix attack).
    Printable ASCII names have one form."""
    if name.isprintable():
        if name.isascii():  # nearly always: the hot path of the monitor's matching
            return (".".join(label for label in name.strip().split(".") if label).lower(),)
        return _forms(name)
    forms = _forms(name)
    before = _CONTROL.split(name, 1)[0]
    if before == name or not before.strip():
        return forms
    return tuple(dict.fromkeys(forms + _forms(before)))


def _forms(name: str) -> tuple[str, ...]:
    if name.isascii():
        return (".".join(label for label in name.strip().split(".") if label).lower(),)
    labels = [label for label in name.translate(_DOTS).strip().split(".") if label]
    new: list[str] = []
    old: list[str] = []
    for label in labels:
        lower = label.lower()
        if label.isascii():
            new.append(lower)
            old.append(lower)
        else:
            new.append(_alabel_2008(label) or lower)
            old.append(_alabel_2003(label) or lower)
    return tuple(dict.fromkeys(".".join(form) for form in (new, old)))


class _Index:
    """Entry positions by domain: exact entries, subtree entries, entries by the parent of
    their base (for a wildcard's one label), and by every proper ancestor of their base
    (for a wildcard deeper in the name)."""

    def __init__(self, items: tuple[WatchItem, ...]) -> None:
        self.exact: dict[str, list[int]] = {}
        self.subtree: dict[str, list[int]] = {}
        self.children: dict[str, list[int]] = {}
        self.under: dict[str, list[int]] = {}
        for position, item in enumerate(items):
            for base in item.bases:
                (self.subtree if item.subdomains else self.exact).setdefault(base, []).append(
                    position
                )
                labels = base.split(".")
                self.children.setdefault(".".join(labels[1:]), []).append(position)
                for depth in range(1, len(labels) + 1):
                    self.under.setdefault(".".join(labels[depth:]), []).append(position)

    def lookup(self, form: str, found: set[int]) -> None:
        labels = form.split(".")
        wildcard = -1
        for i in range(len(labels) - 1, -1, -1):
            if "*" in labels[i]:
                wildcard = i
                break
        fixed = labels[wildcard + 1 :]
        # A name (or everything a wildcard stands for) under .x is under every .x above it.
        for i in range(len(fixed)):
            found.update(self.subtree.get(".".join(fixed[i:]), ()))
        if wildcard < 0:
            found.update(self.exact.get(form, ()))
        elif wildcard == 0:
            found.update(self.children.get(".".join(fixed), ()))
        else:
            found.update(self.under.get(".".join(fixed), ()))


@dataclass(frozen=True)
class WatchList:
    """The parsed watch list: ``items`` in file order. Build with :meth:`load` or
    :meth:`parse`; immutable and safe to share between threads."""

    items: tuple[WatchItem, ...]
    source: str = "<string>"
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _Index(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[WatchItem]:
        return iter(self.items)

    @classmethod
    def load(cls, path: str | Path) -> WatchList:
        """Read a watch list file (UTF-8)."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise InputError(f"{p}: cannot read the watch list: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{p}: the watch list is not UTF-8 text (byte {exc.start})") from None
        return cls.parse(text, source=str(p), base_dir=p.parent)

    @classmethod
    def parse(
        cls, text: str, *, source: str = "<string>", base_dir: Path | None = None
    ) -> WatchList:
        """Read watch list text; ``base_dir`` resolves relative ``policy=`` paths
        (default: the current directory). Errors are :class:`InputError` naming
        ``source:line``."""
        items: list[WatchItem] = []
        first_line: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            item = _parse_line(line, source, number, base_dir)
            if item is None:
                continue
            if item.key in first_line:
                raise InputError(
                    f"{source}:{number}: {item.text!r} is already watched "
                    f"(line {first_line[item.key]}); put all its expectations on one line"
                )
            first_line[item.key] = number
            items.append(item)
        return cls(tuple(items), source)

    def matches(
        self, names: Sequence[str], spellings: Sequence[str] = ()
    ) -> tuple[WatchMatch, ...]:
        """The entries matching any of a certificate's names, in file order, each with the
        names that matched it. ``spellings[i]``, when given, is another spelling of
        ``names[i]`` (a log entry's ``unicode_names`` beside its ``dns_names``): it is
        looked up too, and a match is reported under ``names[i]``."""
        by_item: dict[int, list[str]] = {}
        # The same tuple when the certificate has no xn-- label (nearly always).
        other = spellings if spellings is not names else ()
        for i, name in enumerate(names):
            found: set[int] = set()
            for form in name_forms(name):
                self._index.lookup(form, found)
            if other and i < len(other) and other[i] != name:
                for form in name_forms(other[i]):
                    self._index.lookup(form, found)
            for position in found:
                by_item.setdefault(position, []).append(name)
        return tuple(
            WatchMatch(self.items[position], tuple(dict.fromkeys(by_item[position])))
            for position in sorted(by_item)
        )

    def match(self, names: Iterable[str]) -> list[WatchItem]:
        """The entries matching any of a certificate's names (DNS names, wildcards, odd
        spellings; see the module docstring), in file order, each once."""
        found: set[int] = set()
        for name in names:
            for form in name_forms(name):
                self._index.lookup(form, found)
        return [self.items[position] for position in sorted(found)]


# -- parsing one line ------------------------------------------------------------------------


def _parse_line(line: str, source: str, number: int, base_dir: Path | None) -> WatchItem | None:
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
            folded = _alabel_2008(folded) or folded
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
