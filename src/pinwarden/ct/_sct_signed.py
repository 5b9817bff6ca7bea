"""What a log signed: the ``signed_entry`` of RFC 6962 section 3.2 for a certificate or a
precertificate, and the ``digitally-signed`` struct an SCT's signature covers.

Separate from parsing and verification because both sides use it: the verifier rebuilds
these bytes to check a signature, and the test kit's logs sign them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinwarden._der import spki_of_certificate
from pinwarden.ct._sct_types import _CERTIFICATE_TIMESTAMP, SCT, SignedEntryType
from pinwarden.ct._tbs import (
    _POISON_OID_DER,
    _SCT_LIST_OID_DER,
    _extension_value,
    _remove_extension,
)
from pinwarden.ct._wire import u8, u16, u64, vector


@dataclass(frozen=True)
class SignedEntry:
    """The certificate part of what a log signs (RFC 6962 section 3.2 ``signed_entry``):
    the DER certificate for X509, or the issuer key hash and the TBSCertificate without the
    poison and SCT-list extensions for PRECERT."""

    entry_type: SignedEntryType
    data: bytes
    issuer_key_hash: bytes = b""

    @classmethod
    def x509(cls, cert_der: bytes) -> SignedEntry:
        return cls(SignedEntryType.X509, cert_der)

    @classmethod
    def precert(cls, tbs: bytes, issuer_key_hash: bytes) -> SignedEntry:
        if len(issuer_key_hash) != 32:
            raise ValueError("issuer_key_hash must be a 32-byte SHA-256")
        return cls(SignedEntryType.PRECERT, tbs, issuer_key_hash)

    def encode(self) -> bytes:
        """``entry_type`` followed by ``x509_entry`` or ``precert_entry``."""
        body = vector(self.data, 3)
        if self.entry_type is SignedEntryType.PRECERT:
            body = self.issuer_key_hash + body
        return u16(self.entry_type) + body


def issuer_key_hash(issuer: x509.Certificate | bytes) -> bytes:
    """SHA-256 of the issuer's SubjectPublicKeyInfo as its certificate carries it (``issuer``
    is the issuer's certificate, or its DER SPKI)."""
    if isinstance(issuer, x509.Certificate):
        issuer = spki_of_certificate(issuer.public_bytes(serialization.Encoding.DER))
    return hashlib.sha256(issuer).digest()


def entry_of(
    cert: x509.Certificate, entry_type: SignedEntryType, issuer_key_hash: bytes | None = None
) -> SignedEntry:
    """The entry a log signed for ``cert``: the whole certificate (X509), or the issuer key
    hash and the TBS with the SCT-list extension (a final certificate) or the poison
    extension (a precertificate) removed (PRECERT)."""
    if entry_type is SignedEntryType.X509:
        return SignedEntry.x509(cert.public_bytes(serialization.Encoding.DER))
    if issuer_key_hash is None:
        raise ValueError("a precert_entry needs the issuer key hash")
    tbs = cert.tbs_certificate_bytes
    # Our own DER walk, not cryptography's tbs_precertificate_bytes: that one parses every
    # extension and fails on any duplicated one, which says nothing about the SCTs.
    if _extension_value(tbs, _SCT_LIST_OID_DER) is not None:
        tbs = _remove_extension(tbs, _SCT_LIST_OID_DER)
    elif _extension_value(tbs, _POISON_OID_DER) is not None:
        tbs = _remove_extension(tbs, _POISON_OID_DER)
    return SignedEntry.precert(tbs, issuer_key_hash)


def sct_signature_input(
    entry: SignedEntry, *, timestamp_ms: int, extensions: bytes = b"", version: int = 0
) -> bytes:
    """The ``digitally-signed`` struct of RFC 6962 section 3.2 an SCT's signature covers:
    version, signature_type certificate_timestamp, timestamp, the entry, CtExtensions."""
    return (
        u8(version)
        + u8(_CERTIFICATE_TIMESTAMP)
        + u64(timestamp_ms)
        + entry.encode()
        + vector(extensions, 2)
    )


def signed_data(sct: SCT, cert: x509.Certificate, issuer_key_hash: bytes | None) -> bytes:
    """What ``sct`` must be a signature over, for ``cert`` (``issuer_key_hash`` is needed
    for a PRECERT SCT and ignored for X509)."""
    entry = entry_of(cert, sct.entry_type, issuer_key_hash)
    return sct_signature_input(
        entry, timestamp_ms=sct.timestamp_ms, extensions=sct.extensions, version=sct.version
    )
