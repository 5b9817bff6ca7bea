"""The one DER walk pinwarden does by hand: slicing the SubjectPublicKeyInfo out of a
certificate.

cryptography can re-encode a certificate's public key, but only for key types it can
load (not RSA-PSS keys, for instance), and a re-encoding is not guaranteed to be the
exact bytes the certificate carries — which are what OkHttp, Android, TrustKit and HPKP
hash. The walk is also what keeps a warm pin check in the microseconds: it reads a few
headers and never builds a certificate object.
"""

from __future__ import annotations

from pinwarden.errors import CertificateError

_SEQUENCE = 0x30
_VERSION = 0xA0  # [0] EXPLICIT Version, present unless v1


def _header(data: bytes, offset: int, what: str) -> tuple[int, int, int]:
    """Return (tag, start of contents, end of contents) of the TLV at ``offset``."""
    if offset + 2 > len(data):
        raise CertificateError(f"DER: truncated {what} header at byte {offset}")
    tag = data[offset]
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise CertificateError(f"DER: bad length of {what} at byte {offset}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise CertificateError(
            f"DER: {what} at byte {offset} claims {length} bytes, only {len(data) - pos} remain"
        )
    return tag, pos, end


def first_element(data: bytes) -> bytes:
    """The first complete DER element of ``data`` (OpenSSL's TRUSTED CERTIFICATE PEM
    blocks append trust settings after the certificate)."""
    _, _, end = _header(data, 0, "element")
    return data[:end]


def spki_of_certificate(der: bytes) -> bytes:
    """The exact SubjectPublicKeyInfo bytes (tag and length included) of a DER certificate."""
    tag, start, _ = _header(der, 0, "Certificate")
    if tag != _SEQUENCE:
        raise CertificateError("DER: a certificate must start with a SEQUENCE")
    tag, pos, _ = _header(der, start, "TBSCertificate")
    if tag != _SEQUENCE:
        raise CertificateError("DER: TBSCertificate is not a SEQUENCE")
    tag, _, end = _header(der, pos, "TBSCertificate field")
    if tag == _VERSION:
        pos = end
    # serialNumber, signature, issuer, validity, subject: skip five fields.
    for field in ("serialNumber", "signature", "issuer", "validity", "subject"):
        _, _, pos = _header(der, pos, field)
    tag, _, end = _header(der, pos, "subjectPublicKeyInfo")
    if tag != _SEQUENCE:
        raise CertificateError("DER: subjectPublicKeyInfo is not a SEQUENCE")
    return der[pos:end]
