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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pinwarden.ct._watch_item import WatchItem, WatchMatch
from pinwarden.ct._watch_names import SuffixIndex, name_forms
from pinwarden.ct._watch_parse import parse_line
from pinwarden.errors import InputError

__all__ = ["WatchItem", "WatchList", "WatchMatch", "name_forms"]


@dataclass(frozen=True)
class WatchList:
    """The parsed watch list: ``items`` in file order. Build with :meth:`load` or
    :meth:`parse`; immutable and safe to share between threads."""

    items: tuple[WatchItem, ...]
    source: str = "<string>"
    _index: SuffixIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", SuffixIndex(self.items))

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
            item = parse_line(line, source, number, base_dir)
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
