"""The DER walk over a TBSCertificate's extensions that SCT handling needs: the raw value of
the SCT-list extension, and the TBS re-encoded without the SCT-list or poison extension
(what a log signed for a precertificate).

Hand-written: cryptography parses the SCT extension itself (failing with a bare ValueError
on a malformed one) and cannot remove the poison extension; we need the raw extension
value and a TBS without the poison. The TBS bytes come from cryptography, which has
already checked their outer structure. Separate from the SCT code because it is DER, not
TLS encoding, and reads certificates rather than SCTs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pinwarden._der import _header
from pinwarden.errors import CertificateError, CTFormatError

# DER encodings (tag, length, contents) of the two CT extension OIDs, for the TBS walk.
_SCT_LIST_OID_DER = bytes.fromhex("060a2b06010401d679020402")
_POISON_OID_DER = bytes.fromhex("060a2b06010401d679020403")

_EXTENSIONS_TAG = 0xA3  # [3] EXPLICIT Extensions


def _children(data: bytes, what: str) -> list[tuple[int, int, int, int]]:
    """(tag, start of element, start of contents, end) of each element in ``data``."""
    found = []
    offset = 0
    while offset < len(data):
        tag, start, end = _header(data, offset, what)
        found.append((tag, offset, start, end))
        offset = end
    return found


@dataclass(frozen=True)
class _Extensions:
    """Offsets in a TBSCertificate: its contents, its [3] field and the Extension elements."""

    contents: tuple[int, int]
    field: tuple[int, int]
    sequence: tuple[int, int]
    items: tuple[tuple[int, int], ...]


def _extension_list(tbs: bytes) -> _Extensions | None:
    _, tbs_start, tbs_end = _header(tbs, 0, "TBSCertificate")
    for tag, element, start, end in _children(tbs[tbs_start:tbs_end], "TBSCertificate field"):
        if tag == _EXTENSIONS_TAG:
            _, seq_start, seq_end = _header(tbs, tbs_start + start, "Extensions")
            items = _children(tbs[seq_start:seq_end], "Extension")
            return _Extensions(
                (tbs_start, tbs_end),
                (tbs_start + element, tbs_start + end),
                (seq_start, seq_end),
                tuple((seq_start + s, seq_start + e) for _, s, _, e in items),
            )
    return None


_CT_EXTENSION_NAMES = {
    _SCT_LIST_OID_DER: "SCT list extension (1.3.6.1.4.1.11129.2.4.2)",
    _POISON_OID_DER: "precertificate poison extension (1.3.6.1.4.1.11129.2.4.3)",
}


def _find_extension(tbs: bytes, oid_der: bytes) -> tuple[int, int, bytes] | None:
    """(start, end, extnValue contents) of the extension ``oid_der`` in ``tbs``. Raises
    :class:`CTFormatError` when it appears twice (RFC 5280 section 4.2 forbids it, and
    which one a log signed over would be a guess)."""
    located = _extension_list(tbs)
    if located is None:
        return None
    found: tuple[int, int, bytes] | None = None
    for start, end in located.items:
        _, contents, _ = _header(tbs, start, "Extension")
        if tbs[contents : contents + len(oid_der)] != oid_der:
            continue
        if found is not None:
            name = _CT_EXTENSION_NAMES.get(oid_der, "extension")
            raise CTFormatError(
                f"the {name} appears twice in the certificate (RFC 5280 allows one)"
            )
        fields = _children(tbs[contents:end], "Extension field")
        tag, _, value_start, value_end = fields[-1]
        if tag != 0x04:
            raise CertificateError("DER: extnValue is not an OCTET STRING")
        found = start, end, tbs[contents + value_start : contents + value_end]
    return found


def _extension_value(tbs: bytes, oid_der: bytes) -> bytes | None:
    found = _find_extension(tbs, oid_der)
    return None if found is None else found[2]


def _remove_extension(tbs: bytes, oid_der: bytes) -> bytes:
    """``tbs`` re-encoded without the extension ``oid_der`` (RFC 6962 section 3.2: the
    precertificate's TBS without the poison); the [3] field goes when it was the only one."""
    located = _extension_list(tbs)
    found = _find_extension(tbs, oid_der)
    if located is None or found is None:
        return tbs
    start, end, _ = found
    extensions = tbs[located.sequence[0] : start] + tbs[end : located.sequence[1]]
    field = _tlv(_EXTENSIONS_TAG, _tlv(0x30, extensions)) if extensions else b""
    before = tbs[located.contents[0] : located.field[0]]
    after = tbs[located.field[1] : located.contents[1]]
    return _tlv(0x30, before + field + after)


def _tlv(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes((tag, size)) + contents
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + contents
