"""``ios-plist``: App Transport Security's ``NSPinnedDomains`` in an Info.plist (iOS 14,
macOS 11 and later).

Each host becomes a domain entry with ``NSIncludesSubdomains`` (the name and every name
under it, pinwarden's ``**.``) and its pins as ``NSPinnedLeafIdentities`` (keys of leaf
certificates) or ``NSPinnedCAIdentities`` (keys of CA certificates). Apple requires a
match in *each* list that is present, where pinwarden accepts any pin at any position;
so a rule is exact only when all its pins are leaf keys or all are CA keys, which export
tells apart with the certificates given (``--chain``). ATS has no expiry, report-only
mode, reports, ``exclude``, ``*.`` wildcard, SHA-1 or IP addresses.
"""

from __future__ import annotations

import plistlib
from typing import Any

from cryptography import x509

from pinwarden.apps.formats import Exported, ExportOptions
from pinwarden.apps.formats._common import (
    Abilities,
    Entry,
    Imported,
    build_policy,
    decode_sha256,
    domains_of,
    fail,
    load_plist,
    name_notes,
    rule_label,
    sha256_pins,
    unsupported,
)
from pinwarden.errors import CertificateError
from pinwarden.pins import Pin
from pinwarden.policy import PinRule, Policy

__all__ = ["DOMAIN_KEYS", "FORMAT", "IosFormat"]

_CAN = Abilities("iOS ATS")
_SPKI = "SPKI-SHA256-BASE64"
_CA = "NSPinnedCAIdentities"
_LEAF = "NSPinnedLeafIdentities"
_SUBDOMAINS = "NSIncludesSubdomains"
DOMAIN_KEYS = frozenset({_SUBDOMAINS, _CA, _LEAF})
"""The keys Apple documents for an ``NSPinnedDomains`` entry."""


def _classify(certificates: tuple[bytes, ...]) -> dict[Pin, set[bool]]:
    """Pin -> {True if a CA certificate has that key, False if a leaf has it}."""
    found: dict[Pin, set[bool]] = {}
    for number, der in enumerate(certificates, start=1):
        try:
            cert = x509.load_der_x509_certificate(der)
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            pin = Pin.from_certificate(der)
        except CertificateError as exc:
            raise CertificateError(f"certificate #{number} (to tell leaf from CA): {exc}") from None
        except ValueError as exc:
            raise CertificateError(
                f"certificate #{number} (to tell leaf from CA): not a readable certificate: {exc}"
            ) from None
        found.setdefault(pin, set()).add(is_ca)
    return found


def _identities(
    index: int, rule: PinRule, kinds: dict[Pin, set[bool]], losses: list[str]
) -> dict[str, Any]:
    label = rule_label(index, rule)
    ca: list[Pin] = []
    leaf: list[Pin] = []
    for pin in sha256_pins(rule):
        seen = kinds.get(pin, set())
        if seen == {False}:
            leaf.append(pin)
            continue
        ca.append(pin)
        if not seen:
            losses.append(
                f"{label}: {pin}: cannot tell leaf from CA without its certificate "
                "(give it with --chain); put in NSPinnedCAIdentities"
            )
        elif seen == {True, False}:
            losses.append(
                f"{label}: {pin} is the key of both a leaf and a CA certificate at hand; "
                "put in NSPinnedCAIdentities"
            )
    if ca and leaf:
        losses.append(
            f"{label}: has leaf pins ({', '.join(map(str, leaf))}) and CA pins "
            f"({', '.join(map(str, ca))}): ATS then requires a match in each list, "
            "pinwarden one pin of either"
        )
    entry: dict[str, Any] = {}
    if ca:
        entry[_CA] = [{_SPKI: p.base64} for p in ca]
    if leaf:
        entry[_LEAF] = [{_SPKI: p.base64} for p in leaf]
    return entry


def _text(value: object) -> str:
    return repr(value) if not isinstance(value, str) else repr(value[:60])


def _read_identities(value: object, source: str, where: str) -> list[Pin]:
    if not isinstance(value, list):
        raise fail(source, where, "must be an array of dictionaries")
    pins: list[Pin] = []
    for number, item in enumerate(value):
        path = f"{where}[{number}]"
        if not isinstance(item, dict) or set(item) != {_SPKI}:
            raise fail(source, path, f"must be a dictionary with the one key {_SPKI}")
        pin = decode_sha256(item[_SPKI], source, f"{path}.{_SPKI}")
        if pin in pins:
            raise fail(source, path, f"{pin} is listed twice")
        pins.append(pin)
    return pins


def read_pinned_domains(root: object, source: str) -> Imported:
    """Pins from an ``NSPinnedDomains`` plist (or the ``NSAppTransportSecurity`` dict)."""
    if not isinstance(root, dict):
        raise fail(source, None, "the plist's root must be a dictionary")
    notes: list[str] = []
    ats = root.get("NSAppTransportSecurity", root if "NSPinnedDomains" in root else None)
    if not isinstance(ats, dict):
        raise fail(source, None, "no NSAppTransportSecurity dictionary")
    for key in ats:
        if key != "NSPinnedDomains":
            notes.append(f"NSAppTransportSecurity.{key} ignored")
    pinned = ats.get("NSPinnedDomains")
    if not isinstance(pinned, dict):
        raise fail(source, "NSAppTransportSecurity", "no NSPinnedDomains dictionary")
    entries: list[Entry] = []
    for domain, config in pinned.items():
        where = f"NSPinnedDomains.{domain}"
        if not isinstance(domain, str):
            raise fail(source, where, "a domain name must be a string")
        if not isinstance(config, dict):
            raise fail(source, where, "must be a dictionary")
        unknown = sorted(map(str, set(config) - DOMAIN_KEYS))
        if unknown:
            raise fail(
                source,
                where,
                f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(DOMAIN_KEYS))}",
            )
        if "*" in domain:
            raise fail(source, where, "ATS has no wildcards; use NSIncludesSubdomains")
        subtree = config.get(_SUBDOMAINS, False)
        if not isinstance(subtree, bool):
            raise fail(source, f"{where}.{_SUBDOMAINS}", f"must be a boolean, got {_text(subtree)}")
        ca = _read_identities(config.get(_CA, []), source, f"{where}.{_CA}")
        leaf = _read_identities(config.get(_LEAF, []), source, f"{where}.{_LEAF}")
        if not ca and not leaf:
            raise fail(source, where, f"needs {_CA} or {_LEAF} (or both)")
        if ca and leaf:
            notes.append(
                f"{domain}: ATS required a match in both NSPinnedCAIdentities and "
                "NSPinnedLeafIdentities; pinwarden accepts any one of the pins"
            )
        both = tuple(dict.fromkeys(ca + leaf))
        entries.append(Entry(domain, "subtree" if subtree else "exact", both, where))
    if entries:
        notes.append(
            "leaf and CA identities both became plain pins: pinwarden matches a pin at any "
            "position of the verified chain"
        )
    imported = build_policy(entries, source)
    return Imported(imported.policy, (*notes, *imported.notes))


class IosFormat:
    """App Transport Security's ``NSPinnedDomains`` in an Info.plist."""

    name = "ios-plist"
    summary = "iOS/macOS Info.plist NSAppTransportSecurity > NSPinnedDomains"
    suffix = ".plist"
    importable = True

    def export(self, policy: Policy, options: ExportOptions) -> Exported:
        losses: list[str] = []
        for index, rule in enumerate(policy.rules):
            losses.extend(unsupported(index, rule, _CAN))
        domains = domains_of(policy, "ATS", losses, ip_ok=False)
        kinds = _classify(options.certificates)
        identities: dict[int, dict[str, Any]] = {}
        pinned: dict[str, Any] = {}
        for domain in domains:
            if domain.index not in identities:
                identities[domain.index] = _identities(domain.index, domain.rule, kinds, losses)
            pinned[domain.name] = {_SUBDOMAINS: domain.subtree, **identities[domain.index]}
        document = {"NSAppTransportSecurity": {"NSPinnedDomains": pinned}}
        text = plistlib.dumps(document, sort_keys=False).decode("utf-8")
        notes = [
            "NSPinnedDomains needs iOS 14, macOS 11 or later; copy NSAppTransportSecurity "
            "into the app's Info.plist",
            *name_notes(policy, "ATS"),
        ]
        return Exported(text, tuple(losses), tuple(notes))

    def read(self, data: bytes, source: str) -> Imported:
        return read_pinned_domains(load_plist(data, source), source)

    def parse(self, data: bytes, source: str) -> Policy:
        return self.read(data, source).policy


FORMAT = IosFormat()
