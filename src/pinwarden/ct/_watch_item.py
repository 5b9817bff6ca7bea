"""The watch list's data types: one entry (:class:`WatchItem`) and a certificate's match
of it (:class:`WatchMatch`).

Separate from :mod:`pinwarden.ct.watch` so that the line parser
(:mod:`pinwarden.ct._watch_parse`) can build entries without importing the list that
uses it; :mod:`pinwarden.ct.watch` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pinwarden.hosts import HostPattern
from pinwarden.pins import Pin
from pinwarden.policy import Policy


@dataclass(frozen=True)
class WatchItem:
    """One watch list entry. ``text`` is the name as written; ``domain`` its normalised
    form (``bases`` every A-label form it is watched under); ``subdomains`` whether names
    under it are watched too. The rest are the entry's expectations
    (:mod:`pinwarden.ct.watch`)."""

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
