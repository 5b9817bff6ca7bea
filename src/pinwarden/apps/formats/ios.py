"""``ios-plist``: App Transport Security's ``NSPinnedDomains`` in an Info.plist (iOS 14,
macOS 11 and later).

Each host becomes a domain entry with its pins as ``NSPinnedLeafIdentities`` (keys of
leaf certificates) or ``NSPinnedCAIdentities`` (keys of CA certificates).
``NSIncludesSubdomains`` covers the domain and the names *one label* under it (Apple:
"subdomains ... that have one additional path component"), i.e. pinwarden's ``x`` with
``*.x``; ``**.x`` loses the deeper names.

ATS compares leaf identities only with the leaf and CA identities only with CA
certificates, and requires a match in *each* list that is present, where pinwarden
accepts any pin at any position. So every pin must be classified (declared with
``leaf_pins``/``ca_pins``, else told by the certificates at hand): a pin in the wrong list
never matches, so an unclassified pin refuses the export even when lossy. A rule is exact
only when all its pins are leaf keys or all are CA keys. ATS has no expiry, report-only
mode, reports, ``exclude``, SHA-1 or IP addresses.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from pinwarden.apps.formats import Exported, ExportOptions
from pinwarden.apps.formats._common import (
    Abilities,
    Entry,
    Imported,
    build_policy,
    decode_sha256,
    domain_entry,
    domains_of,
    fail,
    load_plist,
    name_notes,
    rule_label,
    sha256_pins,
    unsupported,
)
from pinwarden.errors import CertificateError, InputError
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


def _refuse_unclassified(unclassified: list[str]) -> InputError:
    what = ", ".join(unclassified)
    verb = "is" if len(unclassified) == 1 else "are each"
    return InputError(
        f"ios-plist: cannot tell whether {what} {verb} the key of a leaf or of a CA "
        "certificate: no certificate at hand has it. ATS compares NSPinnedLeafIdentities "
        "only with the leaf and NSPinnedCAIdentities only with CA certificates, so a pin "
        "in the wrong list never matches (a backup key would fail exactly when it is "
        "needed). Declare it with --leaf-pin (a backup key for a future leaf certificate) "
        "or --ca-pin (the key of a CA you may switch to), or give its certificate with "
        "--chain. A leaf backup works only for a domain whose pins are all leaf keys: with "
        "CA and leaf pins ATS requires a match in each list, so a CA-pinned domain needs a "
        "second CA's key as its backup"
    )


@dataclass
class _Classifier:
    """Leaf or CA for each pin: what the user declared, else the certificates at hand."""

    options: ExportOptions
    found: dict[Pin, set[bool]]
    notes: dict[str, None] = field(default_factory=dict)

    def unknown(self, pin: Pin) -> bool:
        declared = pin in self.options.leaf_pins or pin in self.options.ca_pins
        return not declared and not self.found.get(pin)

    def is_ca(self, pin: Pin, label: str, losses: list[str]) -> bool:
        seen = self.found.get(pin, set())
        if pin in self.options.leaf_pins:
            if True in seen:
                self.notes[
                    f"{pin} is declared a leaf key (--leaf-pin) although a CA certificate at "
                    "hand has it; written as a leaf key"
                ] = None
            return False
        if pin in self.options.ca_pins:
            if False in seen:
                self.notes[
                    f"{pin} is declared a CA key (--ca-pin) although a leaf certificate at "
                    "hand has it; written as a CA key"
                ] = None
            return True
        if seen == {True, False}:
            losses.append(
                f"{label}: {pin} is the key of both a leaf and a CA certificate at hand; "
                "put in NSPinnedCAIdentities (declare it with --leaf-pin or --ca-pin)"
            )
        return True in seen


def _identities(
    index: int, rule: PinRule, classifier: _Classifier, losses: list[str]
) -> dict[str, Any]:
    label = rule_label(index, rule)
    ca: list[Pin] = []
    leaf: list[Pin] = []
    for pin in sha256_pins(rule):
        (ca if classifier.is_ca(pin, label, losses) else leaf).append(pin)
    if ca and leaf:
        losses.append(
            f"{label}: has leaf pins ({', '.join(map(str, leaf))}) and CA pins "
            f"({', '.join(map(str, ca))}): ATS then requires a match in each list "
            "(pinwarden: any one pin), so a connection fails unless its leaf has one of "
            "the leaf pins and a CA certificate one of the CA pins; a leaf backup cannot "
            "stand in for a CA pin on iOS: the backup of a CA-pinned domain must be a "
            "second CA's key"
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
        domain, config = domain_entry(domain, config, DOMAIN_KEYS, source, where)
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
        entries.append(Entry(domain, "exact", both, where))
        if subtree:
            # YES adds the names one label under the domain, not deeper ones.
            entries.append(Entry(domain, "one-label", both, where))
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
        both = options.leaf_pins & options.ca_pins
        if both:
            listed = ", ".join(sorted(map(str, both)))
            raise InputError(f"ios-plist: {listed} declared both a leaf key and a CA key")
        losses: list[str] = []
        for index, rule in enumerate(policy.rules):
            losses.extend(unsupported(index, rule, _CAN))
        domains = domains_of(policy, "ATS", losses, ip_ok=False, one_label=True)
        classifier = _Classifier(options, _classify(options.certificates))
        written = sorted({d.index for d in domains})
        unclassified: dict[Pin, list[str]] = {}
        for index in written:
            for pin in sha256_pins(policy.rules[index]):
                if classifier.unknown(pin):
                    unclassified.setdefault(pin, []).append(f"pin[{index}]")
        if unclassified:
            raise _refuse_unclassified(
                [f"{pin} (of {', '.join(rules)})" for pin, rules in unclassified.items()]
            )
        identities: dict[int, dict[str, Any]] = {}
        pinned: dict[str, Any] = {}
        for domain in domains:
            if domain.index not in identities:
                identities[domain.index] = _identities(
                    domain.index, domain.rule, classifier, losses
                )
            pinned[domain.name] = {_SUBDOMAINS: domain.subtree, **identities[domain.index]}
        document = {"NSAppTransportSecurity": {"NSPinnedDomains": pinned}}
        text = plistlib.dumps(document, sort_keys=False).decode("utf-8")
        used = {p for index in written for p in sha256_pins(policy.rules[index])}
        unused = sorted(map(str, (options.leaf_pins | options.ca_pins) - used))
        notes = [
            "NSPinnedDomains needs iOS 14, macOS 11 or later; copy NSAppTransportSecurity "
            "into the app's Info.plist",
            *classifier.notes,
            *([f"declared but not a pin of the policy: {', '.join(unused)}"] if unused else []),
            *name_notes(policy, "ATS"),
        ]
        return Exported(text, tuple(losses), tuple(notes))

    def read(self, data: bytes, source: str) -> Imported:
        return read_pinned_domains(load_plist(data, source), source)

    def parse(self, data: bytes, source: str) -> Policy:
        return self.read(data, source).policy


FORMAT = IosFormat()
