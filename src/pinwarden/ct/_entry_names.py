"""The names a log entry is matched on, read with cryptography from the certificate shell of
:mod:`pinwarden.ct._entry_tbs`: the SAN dNSNames, then the subject common names, as lower-cased
A-labels and their U-label forms; and the quiet reads the names and the entry's lazy details
need (cryptography warns about certificates that break RFC 5280, which the logs are full of).

Separate from :mod:`pinwarden.ct.entries` because it is IDNA and cryptography handling, not
the structure of an entry.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import idna
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from pinwarden.ct._entry_tbs import _common_names, _Layout

# What cryptography raises for a certificate it will not read (its own exception types do
# not derive from ValueError).
_CERTIFICATE_ERRORS = (
    ValueError,
    TypeError,
    x509.DuplicateExtension,
    x509.InvalidVersion,
    x509.UnsupportedGeneralNameType,
)

_T = TypeVar("_T")
_A = TypeVar("_A")


def _quietly(function: Callable[[_A], _T], argument: _A) -> _T:
    """``function(argument)`` without the warnings cryptography gives for certificates
    that break RFC 5280 in ways the logs are full of (a serial number that is not
    positive, a country name that is not two letters): the monitor must read them, not
    warn for each (or raise, under ``-W error``). ``catch_warnings`` swaps the process-wide
    filters, so this stays off the common path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return function(argument)


def _load_quietly(der: bytes) -> x509.Certificate:
    return _quietly(x509.load_der_x509_certificate, der)


def _names(cert: x509.Certificate, tbs: bytes, layout: _Layout) -> list[str]:
    """SAN dNSNames, then the subject common name(s): what a monitor matches on."""
    names: list[str] = []
    if layout[6]:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names.extend(san.value.get_values_for_type(x509.DNSName))
    common_names = _common_names(tbs, layout[3], layout[4])
    if common_names is None:
        subject = _quietly(lambda c: c.subject, cert)
        common_names = [
            attribute.value
            for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if isinstance(attribute.value, str)
        ]
    names.extend(common_names)
    return names


def _normalise(names: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if "".join(names).isascii():  # nearly always: SAN dNSNames are IA5Strings
        a_labels = tuple(dict.fromkeys([name.lower() for name in names if name]))
    else:
        a_labels = tuple(dict.fromkeys([_a_label(name) for name in names if name]))
    if "xn--" not in "".join(a_labels):
        return a_labels, a_labels
    return a_labels, tuple(_u_label(name) if "xn--" in name else name for name in a_labels)


def _a_label(name: str) -> str:
    if name.isascii():
        return name.lower()
    # A U-label where an A-label belongs (common names, broken SANs): encode label by label
    # so that a wildcard or an odd label keeps the rest of the name comparable.
    return ".".join(_encode_label(label) for label in name.split("."))


def _encode_label(label: str) -> str:
    if label.isascii():
        return label.lower()
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return label.lower()


def _u_label(name: str) -> str:
    return ".".join(_decode_label(label) for label in name.split("."))


def _decode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        return label
