"""``android-nsc``: Android's ``res/xml/network_security_config.xml`` (API 24+).

Each rule becomes a ``<domain-config>`` with one ``<domain>`` per host (``includeSubdomains``
= the name and every name under it, pinwarden's ``**.``) and a ``<pin-set>`` of SHA-256
pins with an optional ``expiration`` date. Android picks the most specific domain, as
pinwarden does, and a ``<domain-config>`` whose effective ``<pin-set>`` is empty unpins its
domains (``NetworkSecurityTrustManager.checkPins`` returns at once on an empty set): that
is how an ``exclude`` is written, as a nested ``<domain-config>`` with ``<pin-set/>``, and
how such a config reads back. A nested ``<domain-config>`` without a ``<pin-set>`` inherits
its parent's (``NetworkSecurityConfig.Builder.getEffectivePinSet``). Android has no ``*.``
one-label wildcard, no SHA-1, no report-only mode and no reports.
"""

from __future__ import annotations

import datetime as dt
import re

# Builds output and names types only; input is parsed by defusedxml.
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree

from pinwarden.apps.formats import Exported, ExportOptions
from pinwarden.apps.formats._common import (
    Abilities,
    Domain,
    Entry,
    Imported,
    build_policy,
    check_size,
    decode_sha256,
    domains_of,
    expiry_date,
    fail,
    name_notes,
    overlap,
    rule_label,
    sha256_pins,
    under,
    unsupported,
)
from pinwarden.pins import Pin
from pinwarden.policy import Policy

__all__ = ["FORMAT", "AndroidFormat"]

_CAN = Abilities("Android", expiry=True, exclude=True)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_MAX_DEPTH = 32
_TIMEZONE_NOTE = (
    "Android reads pin-set expiration dates in the device's time zone, so pins stop "
    "being enforced at 00:00 local time of that date, up to 14 hours before or after "
    "00:00 UTC"
)
_MANIFEST_NOTE = (
    "save as res/xml/network_security_config.xml and reference it from the manifest: "
    '<application android:networkSecurityConfig="@xml/network_security_config">'
    " (Android 7.0, API 24, and later)"
)


def _exclusions(
    policy: Policy, domains: list[Domain], losses: list[str]
) -> dict[int, list[tuple[str, bool]]]:
    """Per rule, the (name, includeSubdomains) of each ``exclude`` that a nested
    ``<domain-config>`` with an empty ``<pin-set/>`` expresses exactly. Android then pins
    those names nowhere (the most specific domain wins, and its pin set is empty), so no
    other rule may cover them: pinwarden would fall back to it. Anything else is a loss."""
    written = {d.name for d in domains}
    out: dict[int, list[tuple[str, bool]]] = {}
    for index, rule in enumerate(policy.rules):
        if not rule.exclude or not sha256_pins(rule):
            continue
        label = rule_label(index, rule)
        mine = [d for d in domains if d.index == index]
        for pattern in rule.exclude:
            name, kind = pattern.base, pattern.kind
            covered = [
                *((h.kind, h.base) for h in rule.hosts),
                *(("subtree" if d.subtree else "exact", d.name) for d in mine),
            ]
            if all(overlap(c, (kind, name)) is None for c in covered):
                continue  # the rule covers none of these names, here or on Android
            exact = (
                kind != "one-label"
                and any(d.subtree and under(name, d.name) for d in mine)
                and name not in written
            )
            if exact and kind == "exact":
                exact = policy.rule_for_normalized(name) is None
            elif exact:
                # Android keeps pinning the domains written under the name (the most
                # specific wins), where pinwarden exempts this rule's hosts there; and
                # pinwarden falls back to another rule covering names there, Android not.
                exact = not any(h.base == name or under(h.base, name) for h in rule.hosts)
                exact = exact and not any(
                    overlap((h.kind, h.base), ("subtree", name)) is not None
                    for n, other in enumerate(policy.rules)
                    if n != index
                    for h in other.hosts
                    if not under(h.base, name)
                )
            if exact:
                written.add(name)
                out.setdefault(index, []).append((name, kind == "subtree"))
                continue
            losses.append(
                f"{label}: exclude {pattern.text}: Android can only unpin a name (or a name "
                "with its subdomains) under one of the rule's includeSubdomains domains that "
                "no other rule covers; left out, so it would be pinned"
            )
    return out


def _render(
    policy: Policy,
    domains: list[Domain],
    exclusions: dict[int, list[tuple[str, bool]]],
    losses: list[str],
) -> tuple[str, bool]:
    root = ET.Element("network-security-config")
    any_expiry = False
    by_rule: dict[int, list[Domain]] = {}
    for domain in domains:
        by_rule.setdefault(domain.index, []).append(domain)
    for index, members in by_rule.items():
        rule = policy.rules[index]
        config = ET.SubElement(root, "domain-config")
        for domain in members:
            element = ET.SubElement(
                config, "domain", includeSubdomains="true" if domain.subtree else "false"
            )
            element.text = domain.name
        pin_set = ET.SubElement(config, "pin-set")
        if rule.expires_at is not None:
            any_expiry = True
            day, exact = expiry_date(rule.expires_at)
            if not exact:
                losses.append(
                    f"{rule_label(index, rule)}: expires {rule.expires_at.isoformat()}: "
                    f"Android takes a date; written as {day.isoformat()}, so pins stop "
                    "being enforced at the start of that day, earlier than the policy says"
                )
            pin_set.set("expiration", day.isoformat())
        for pin in sha256_pins(rule):
            ET.SubElement(pin_set, "pin", digest="SHA-256").text = pin.base64
        if index in exclusions:
            unpinned = ET.SubElement(config, "domain-config")
            for name, deep in exclusions[index]:
                element = ET.SubElement(
                    unpinned, "domain", includeSubdomains="true" if deep else "false"
                )
                element.text = name
            ET.SubElement(unpinned, "pin-set")
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n', any_expiry


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _PinSet:
    pins: tuple[Pin, ...]
    expires_at: dt.datetime | None


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.entries: list[Entry] = []
        self.notes: list[str] = []
        self.seen: dict[str, str] = {}
        self.unpinned: list[tuple[str, bool, str]] = []
        """(name, includeSubdomains, where) of domains whose pin set is empty."""

    def exclusions(self) -> list[tuple[str, str]]:
        """Unpinned domains under a pinned includeSubdomains domain, as exclusions for
        :func:`build_policy`; the others only get a note."""
        parents = [e.host.lower().rstrip(".") for e in self.entries if e.kind == "subtree"]
        out: list[tuple[str, str]] = []
        for name, subtree, where in self.unpinned:
            key = name.lower().rstrip(".")
            if any(under(key, parent) for parent in parents):
                out.append((f"**.{name}" if subtree else name, where))
                self.notes.append(
                    f"{where}: {name}{' and its subdomains' if subtree else ''}: an empty "
                    "pin set unpins what a broader domain pins; read as exclude"
                )
            else:
                self.notes.append(f"{where}: {name}: no pins, so not pinned; left out")
        return out

    def fail(self, where: str, message: str) -> Exception:
        return fail(self.source, where, message)

    def attributes(self, element: ET.Element, where: str, allowed: set[str]) -> None:
        for name in element.attrib:
            # Attributes in a namespace (tools:ignore...) are build-tool annotations.
            if not name.startswith("{") and name not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise self.fail(where, f"unknown attribute {name!r} (allowed: {known})")

    def children(self, element: ET.Element, where: str) -> list[tuple[ET.Element, str]]:
        counts: dict[str, int] = {}
        out = []
        for child in element:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions
            counts[child.tag] = counts.get(child.tag, 0) + 1
            out.append((child, f"{where}/{child.tag}[{counts[child.tag]}]"))
        return out

    def leaf_text(self, element: ET.Element, where: str) -> str:
        if self.children(element, where):
            raise self.fail(where, f"<{element.tag}> holds text only, not elements")
        return (element.text or "").strip()

    def document(self, root: ET.Element) -> None:
        if root.tag != "network-security-config":
            raise self.fail(f"<{root.tag}>", "the root element must be <network-security-config>")
        where = "network-security-config"
        self.attributes(root, where, set())
        for child, path in self.children(root, where):
            if child.tag == "base-config":
                self.attributes(child, path, {"cleartextTrafficPermitted"})
                for grandchild, sub in self.children(child, path):
                    if grandchild.tag == "trust-anchors":
                        self.trust_anchors(grandchild, sub)
                    elif grandchild.tag == "certificateTransparency":
                        self.notes.append(f"{sub}: Certificate Transparency settings ignored")
                    elif grandchild.tag == "pin-set":
                        raise self.fail(sub, "<pin-set> is only allowed in a <domain-config>")
                    else:
                        raise self.fail(sub, f"unknown element <{grandchild.tag}>")
            elif child.tag == "domain-config":
                self.domain_config(child, path, None, 1)
            elif child.tag == "debug-overrides":
                self.notes.append(
                    f"{path}: <debug-overrides> ignored (it only applies to debuggable builds)"
                )
            else:
                raise self.fail(path, f"unknown element <{child.tag}>")

    def trust_anchors(self, element: ET.Element, where: str) -> None:
        self.attributes(element, where, set())
        for child, path in self.children(element, where):
            if child.tag != "certificates":
                raise self.fail(path, f"unknown element <{child.tag}> in <trust-anchors>")
            self.attributes(child, path, {"src", "overridePins"})
            if not child.get("src"):
                raise self.fail(path, "<certificates> needs a src attribute")
            if child.get("overridePins", "false").strip().lower() == "true":
                self.notes.append(
                    f"{path}: overridePins: Android skips pins for chains ending at "
                    f"{child.get('src')!r} anchors; pinwarden never skips them"
                )
        self.notes.append(
            f"{where}: trust anchors ignored; pinwarden checks pins after the platform's "
            "usual CA validation"
        )

    def domain_config(
        self, element: ET.Element, where: str, inherited: _PinSet | None, depth: int
    ) -> None:
        if depth > _MAX_DEPTH:
            raise self.fail(where, f"<domain-config> nested more than {_MAX_DEPTH} deep")
        self.attributes(element, where, {"cleartextTrafficPermitted"})
        domains: list[tuple[str, bool, str]] = []
        pin_set: _PinSet | None = None
        nested: list[tuple[ET.Element, str]] = []
        for child, path in self.children(element, where):
            if child.tag == "domain":
                domains.append(self.domain(child, path))
            elif child.tag == "pin-set":
                if pin_set is not None:
                    raise self.fail(path, "a <domain-config> has at most one <pin-set>")
                pin_set = self.pin_set(child, path)
            elif child.tag == "domain-config":
                nested.append((child, path))
            elif child.tag == "trust-anchors":
                self.trust_anchors(child, path)
            elif child.tag == "certificateTransparency":
                self.notes.append(f"{path}: Certificate Transparency settings ignored")
            else:
                raise self.fail(path, f"unknown element <{child.tag}>")
        if not domains:
            raise self.fail(where, "a <domain-config> needs at least one <domain>")
        # A nested domain-config takes what it does not set from its parent.
        effective = pin_set or inherited
        if effective is None or not effective.pins:
            # Android checks no pins here, even where a broader domain has some.
            self.unpinned.extend(domains)
        else:
            for name, subtree, path in domains:
                self.entries.append(
                    Entry(
                        name,
                        "subtree" if subtree else "exact",
                        effective.pins,
                        path,
                        effective.expires_at,
                    )
                )
        for child, path in nested:
            self.domain_config(child, path, effective, depth + 1)

    def domain(self, element: ET.Element, where: str) -> tuple[str, bool, str]:
        self.attributes(element, where, {"includeSubdomains"})
        name = self.leaf_text(element, where)
        if not name:
            raise self.fail(where, "empty <domain>")
        if "*" in name:
            raise self.fail(
                where, f'{name!r}: Android has no wildcards; use includeSubdomains="true"'
            )
        flag = element.get("includeSubdomains", "false").strip().lower()
        if flag not in ("true", "false"):
            raise self.fail(where, f"includeSubdomains must be true or false, got {flag!r}")
        key = name.lower().rstrip(".")
        if key in self.seen:
            raise self.fail(where, f"domain {name!r} is listed twice (first at {self.seen[key]})")
        self.seen[key] = where
        return name, flag == "true", where

    def pin_set(self, element: ET.Element, where: str) -> _PinSet:
        self.attributes(element, where, {"expiration"})
        expires_at = None
        expiration = element.get("expiration")
        if expiration is not None:
            match = _DATE.fullmatch(expiration.strip())
            try:
                if match is None:
                    raise ValueError
                day = dt.date(*(int(g) for g in match.groups()))
            except ValueError:
                raise self.fail(
                    where, f"expiration {expiration[:40]!r} is not a yyyy-MM-dd date"
                ) from None
            # Android stops enforcing at the start of that day (see expiry_date).
            expires_at = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
            self.notes.append(_TIMEZONE_NOTE)
        pins: list[Pin] = []
        for child, path in self.children(element, where):
            if child.tag != "pin":
                raise self.fail(path, f"unknown element <{child.tag}> in <pin-set>")
            self.attributes(child, path, {"digest"})
            digest = child.get("digest")
            if digest is None:
                raise self.fail(path, 'a <pin> needs digest="SHA-256"')
            if digest.strip() != "SHA-256":
                raise self.fail(path, f"digest {digest[:40]!r}: Android supports SHA-256 only")
            pin = decode_sha256(self.leaf_text(child, path), self.source, path)
            if pin in pins:
                raise self.fail(path, f"{pin} is listed twice")
            pins.append(pin)
        return _PinSet(tuple(pins), expires_at)


class AndroidFormat:
    """Android's network security configuration XML."""

    name = "android-nsc"
    summary = "Android res/xml/network_security_config.xml (<domain-config>, <pin-set>)"
    suffix = ".xml"
    importable = True

    def export(self, policy: Policy, options: ExportOptions) -> Exported:
        losses: list[str] = []
        for index, rule in enumerate(policy.rules):
            losses.extend(unsupported(index, rule, _CAN))
        domains = domains_of(policy, "Android", losses, ip_ok=True)
        exclusions = _exclusions(policy, domains, losses)
        text, any_expiry = _render(policy, domains, exclusions, losses)
        notes = [_MANIFEST_NOTE] + ([_TIMEZONE_NOTE] if any_expiry else [])
        notes.extend(name_notes(policy, "Android"))
        return Exported(text, tuple(losses), tuple(notes))

    def read(self, data: bytes, source: str) -> Imported:
        check_size(data, source)
        try:
            root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
        except defusedxml.DefusedXmlException as exc:
            raise fail(
                source, None, f"DTDs and entities are not allowed in this file ({exc})"
            ) from None
        except ET.ParseError as exc:
            raise fail(source, None, f"not well-formed XML: {exc}") from None
        except (LookupError, ValueError) as exc:
            # An unknown encoding in the XML declaration reaches us as a LookupError.
            raise fail(source, None, f"not readable XML: {exc}") from None
        reader = _Reader(source)
        reader.document(root)
        exclusions = reader.exclusions()
        imported = build_policy(reader.entries, source, exclusions=exclusions)
        notes = dict.fromkeys((*reader.notes, *imported.notes))
        return Imported(imported.policy, tuple(notes))

    def parse(self, data: bytes, source: str) -> Policy:
        return self.read(data, source).policy


FORMAT = AndroidFormat()
