"""Precertificates for the local CT log: issuing one from the test CA with its final
certificate, and the DER surgery RFC 6962 3.2 needs to log one (its TBSCertificate without
the poison extension). Separate from the log because it is certificate work, not log
work, and is useful on its own (``issue_precertificate``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID

from pinwarden.testing.ca import CA, Issued, PrivateKey

__all__ = [
    "Precertificate",
    "der_of",
    "is_precert",
    "is_precert_signing",
    "issue_precertificate",
    "spki",
    "spki_of_key",
    "tbs_without_poison",
]

_CT_PRECERT_SIGNING = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")
# The DER of the precertificate poison extension's OID, 1.3.6.1.4.1.11129.2.4.3.
_POISON_OID_DER = b"\x06\x0a\x2b\x06\x01\x04\x01\xd6\x79\x02\x04\x03"


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class Precertificate(NamedTuple):
    """A precertificate (with the critical poison extension) and the final certificate
    the CA would issue for it: the same TBSCertificate without the poison (and without
    SCTs), signed."""

    precert: Issued
    final: Issued


def issue_precertificate(
    ca: CA,
    *names: str,
    key: PrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Precertificate:
    """A precertificate for ``names`` signed by ``ca`` directly (no precertificate
    signing certificate), and its final certificate, as :meth:`CA.issue` would issue it."""
    final = ca.issue(*names, key=key, not_before=not_before, not_after=not_after)
    cert = final.cert
    # Same fields and extensions in the same order, with the poison last: its TBS minus
    # the poison is then exactly the final certificate's TBS.
    builder = x509.CertificateBuilder(
        issuer_name=cert.issuer,
        subject_name=cert.subject,
        public_key=cert.public_key(),
        serial_number=cert.serial_number,
        not_valid_before=cert.not_valid_before_utc,
        not_valid_after=cert.not_valid_after_utc,
        extensions=list(cert.extensions),
    ).add_extension(x509.PrecertPoison(), critical=True)
    algorithm = cert.signature_hash_algorithm
    if not isinstance(algorithm, (hashes.SHA256, hashes.SHA384)):
        raise ValueError(f"unexpected signature hash {algorithm!r}")
    precert = builder.sign(ca.key, algorithm)
    return Precertificate(replace(final, cert=precert), final)


# -- DER surgery -------------------------------------------------------------------------
# Hand-written because no library removes an extension from a TBSCertificate and keeps
# the other bytes as they are (cryptography's tbs_precertificate_bytes only removes the
# SCT list, and re-encoding through a builder would not keep a foreign encoding). Only
# definite lengths, as DER requires; anything else raises ValueError.


def _tlv(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the element at ``offset``."""
    if offset + 2 > end:
        raise ValueError(f"DER element truncated at byte {offset}")
    tag, first = data[offset], data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 0 < count <= 4 or position + count > end:
            raise ValueError(f"bad DER length at byte {offset}")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + length > end:
        raise ValueError(f"DER element at byte {offset} overruns its container")
    return tag, position, position + length


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tbs_without_poison(tbs: bytes) -> bytes:
    """RFC 6962 3.2: the precertificate's TBSCertificate without the poison extension
    (and without the [3] field altogether if the poison was its only extension)."""
    tag, start, end = _tlv(tbs, 0, len(tbs))
    if tag != 0x30 or end != len(tbs):
        raise ValueError("TBSCertificate is not one DER SEQUENCE")
    parts: list[bytes] = []
    found = False
    position = start
    while position < end:
        tag, contents, stop = _tlv(tbs, position, end)
        if tag == 0xA3:  # [3] EXPLICIT Extensions
            seq_tag, seq_start, seq_end = _tlv(tbs, contents, stop)
            if seq_tag != 0x30:
                raise ValueError("extensions are not a SEQUENCE")
            kept: list[bytes] = []
            item = seq_start
            while item < seq_end:
                _, ext_start, ext_end = _tlv(tbs, item, seq_end)
                _, _, oid_end = _tlv(tbs, ext_start, ext_end)
                if tbs[ext_start:oid_end] == _POISON_OID_DER:
                    found = True
                else:
                    kept.append(tbs[item:ext_end])
                item = ext_end
            if kept:
                body = b"".join(kept)
                sequence = b"\x30" + _der_length(len(body)) + body
                parts.append(b"\xa3" + _der_length(len(sequence)) + sequence)
        else:
            parts.append(tbs[position:stop])
        position = stop
    if not found:
        raise ValueError("not a precertificate: no poison extension")
    body = b"".join(parts)
    return b"\x30" + _der_length(len(body)) + body


def is_precert(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_oid(ExtensionOID.PRECERT_POISON)
    except x509.ExtensionNotFound:
        return False
    return True


def is_precert_signing(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return _CT_PRECERT_SIGNING in list(usage)


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_of_key(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
