"""How the watch list finds entries for a certificate name: the spellings a name is looked
up under (:func:`name_forms`) and the suffix index they are looked up in
(:class:`SuffixIndex`).

Separate from :mod:`pinwarden.ct.watch` because this is the monitor's per-entry hot path,
with its own rules (IDNA 2008 and 2003, the null-prefix attack, wildcards), apart from the
file format; :mod:`pinwarden.ct.watch` re-exports :func:`name_forms`.
"""

from __future__ import annotations

import re

import idna

from pinwarden.ct._watch_item import WatchItem

# Dots that IDNA (UTS #46) maps to "." : ideographic, full-width and half-width full stops.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# C0 and C1 control characters (Unicode category Cc): where a C string, or a careless
# client, ends a name.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def alabel_2008(label: str) -> str | None:
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
            new.append(alabel_2008(label) or lower)
            old.append(_alabel_2003(label) or lower)
    return tuple(dict.fromkeys(".".join(form) for form in (new, old)))


class SuffixIndex:
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
