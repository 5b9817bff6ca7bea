"""DER walks over the ``TBSCertificate`` of a log entry: its layout, the shell cryptography
parses, the subject's common names, the SPKI, and the TBS without the CT extensions (the key
that pairs a precertificate with its final certificate).

Hand-written, for three reasons. cryptography removes the SCT list from a certificate it
has parsed (Certificate.tbs_precertificate_bytes) but neither removes the poison nor reads
a bare TBSCertificate. Asked for one extension, it builds Python objects for all of them
(policies, AIA, an SCT list...), which costs more than everything else an entry needs: so
cryptography reads a shell holding the TBS with only its subjectAltName extension(s).
And the subject's common names are read here rather than through cryptography's Name,
which would build every attribute. The walks read only headers, on DER that cryptography
then parses (and refuses when malformed); a common name in a string type other than
UTF8String, PrintableString or IA5String is left to cryptography.

Separate from :mod:`pinwarden.ct.entries` because it is DER, not the TLS encoding of the
entry, and pure bytes (no cryptography). Errors are
:class:`~pinwarden.errors.CTFormatError`. The public names are re-exported by
:mod:`pinwarden.ct.entries`, their documented home.
"""

from __future__ import annotations

import hashlib

from pinwarden.errors import CTFormatError

POISON_OID = "1.3.6.1.4.1.11129.2.4.3"
"""The precertificate poison extension (RFC 6962 section 3.1)."""
SCT_LIST_OID = "1.3.6.1.4.1.11129.2.4.2"
"""The embedded SCT list extension (RFC 6962 section 3.3)."""

# The DER encodings (tag, length, value) of the two OIDs, to find them without decoding.
_POISON_OID_DER = bytes.fromhex("060a2b06010401d679020403")
_SCT_LIST_OID_DER = bytes.fromhex("060a2b06010401d679020402")

_SEQUENCE = 0x30
_EXTENSIONS_TAG = 0xA3  # [3] EXPLICIT Extensions
_VERSION_TAG = 0xA0  # [0] EXPLICIT Version
_OID_TAG = 0x06
_COMMON_NAME_OID_DER = b"\x06\x03\x55\x04\x03"  # 2.5.4.3
_SAN_OID_DER = b"\x06\x03\x55\x1d\x11"  # 2.5.29.17
_STRING_ENCODINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii"}
_EMPTY_BIT_STRING = b"\x03\x01\x00"

# Offsets within a TBSCertificate: contents start, signature start and end, subject start
# and end, start of the [3] extensions element (the end when absent); the complete
# subjectAltName Extension elements; whether the serial number is zero or negative.
_Layout = tuple[int, int, int, int, int, int, list[bytes], bool]


def _tlv(data: bytes, offset: int, limit: int, what: str) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at ``offset``."""
    if offset + 2 > limit:
        raise CTFormatError(f"TBSCertificate: truncated {what} header at byte {offset}")
    tag = data[offset]
    length = data[offset + 1]
    pos = offset + 2
    if length >= 0x80:
        count = length - 0x80
        if count == 0 or count > 4 or pos + count > limit:
            raise CTFormatError(f"TBSCertificate: bad length of {what} at byte {offset}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > limit:
        raise CTFormatError(
            f"TBSCertificate: {what} at byte {offset} claims {length} bytes, {limit - pos} remain"
        )
    if tag & 0x1F == 0x1F:
        raise CTFormatError(f"TBSCertificate: multi-byte tag in {what} at byte {offset}")
    return tag, pos, end


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def _element(tag: int, contents: bytes) -> bytes:
    return bytes((tag,)) + _der_length(len(contents)) + contents


def _tbs_fields(tbs: bytes) -> tuple[int, int]:
    """The bounds of the TBSCertificate's contents, checking that it is one SEQUENCE."""
    tag, start, end = _tlv(tbs, 0, len(tbs), "TBSCertificate")
    if tag != _SEQUENCE:
        raise CTFormatError(f"TBSCertificate: expected a SEQUENCE, got tag 0x{tag:02x}")
    if end != len(tbs):
        raise CTFormatError(f"TBSCertificate: {len(tbs) - end} trailing bytes")
    return start, end


def _tbs_layout(tbs: bytes) -> _Layout:
    start, end = _tbs_fields(tbs)
    tag, serial, pos = _tlv(tbs, start, end, "version or serialNumber")
    if tag == _VERSION_TAG:
        _, serial, pos = _tlv(tbs, pos, end, "serialNumber")
    # cryptography warns about a serial number that is not positive (RFC 5280 4.1.2.2 wants
    # one; some certificates in the logs have none).
    odd_serial = serial == pos or tbs[serial] >= 0x80 or tbs[serial:pos].count(0) == pos - serial
    _, _, signature_end = _tlv(tbs, pos, end, "signature")
    _, _, issuer_end = _tlv(tbs, signature_end, end, "issuer")
    _, _, subject_start = _tlv(tbs, issuer_end, end, "validity")
    _, _, subject_end = _tlv(tbs, subject_start, end, "subject")
    extensions_start = end
    san: list[bytes] = []
    cursor = subject_end
    while cursor < end:
        element = cursor
        tag, contents, cursor = _tlv(tbs, cursor, end, "TBSCertificate field")
        if tag == _EXTENSIONS_TAG:
            extensions_start = element
            _, item, items_end = _tlv(tbs, contents, cursor, "Extensions")
            while item < items_end:
                # _tlv inlined for the common short lengths: this loop runs once per
                # extension of every entry of a log.
                length = tbs[item + 1] if item + 4 <= items_end else 0xFF
                if length < 0x80:
                    extension = item + 2
                elif length == 0x81:
                    length = tbs[item + 2]
                    extension = item + 3
                elif length == 0x82:
                    length = tbs[item + 2] << 8 | tbs[item + 3]
                    extension = item + 4
                else:
                    _, extension, extension_end = _tlv(tbs, item, items_end, "Extension")
                    length = extension_end - extension
                extension_end = extension + length
                if extension_end > items_end:
                    raise CTFormatError(f"TBSCertificate: Extension at byte {item} overruns")
                if tbs[extension : extension + 5] == _SAN_OID_DER:
                    san.append(tbs[item:extension_end])
                item = extension_end
    return start, pos, signature_end, subject_start, subject_end, extensions_start, san, odd_serial


def _common_names(tbs: bytes, start: int, end: int) -> list[str] | None:
    """The commonName values of the Name ``tbs[start:end]``, or ``None`` when one is in a
    string type left to cryptography."""
    if tbs.find(_COMMON_NAME_OID_DER, start, end) < 0:
        return []
    names = []
    _, pos, name_end = _tlv(tbs, start, end, "subject")
    while pos < name_end:
        _, attribute_pos, pos = _tlv(tbs, pos, name_end, "RelativeDistinguishedName")
        while attribute_pos < pos:
            _, oid_pos, attribute_end = _tlv(tbs, attribute_pos, pos, "AttributeTypeAndValue")
            if tbs[oid_pos : oid_pos + 5] == _COMMON_NAME_OID_DER:
                tag, value_start, value_end = _tlv(tbs, oid_pos + 5, attribute_end, "commonName")
                encoding = _STRING_ENCODINGS.get(tag)
                if encoding is None:
                    return None
                try:
                    names.append(tbs[value_start:value_end].decode(encoding))
                except UnicodeDecodeError:
                    return None
            attribute_pos = attribute_end
    return names


def _certificate_shell(tbs: bytes, layout: _Layout) -> bytes:
    """``Certificate { tbs', tbs.signature, BIT STRING {} }`` where ``tbs'`` is ``tbs``
    with only its subjectAltName extension(s): what cryptography reads for the names and the
    details. The signature is empty; the shell is never verified or handed out."""
    start, signature_start, signature_end, _, _, extensions_start, san, _ = layout
    contents = tbs[start:extensions_start]
    if san:
        extensions = b"".join(san)
        extensions = b"\x30" + _der_length(len(extensions)) + extensions
        contents += b"\xa3" + _der_length(len(extensions)) + extensions
    contents = b"\x30" + _der_length(len(contents)) + contents
    contents += tbs[signature_start:signature_end] + _EMPTY_BIT_STRING
    return b"\x30" + _der_length(len(contents)) + contents


def _spki_of_tbs(tbs: bytes) -> bytes:
    layout = _tbs_layout(tbs)
    _, _, spki_end = _tlv(tbs, layout[4], layout[5], "subjectPublicKeyInfo")
    return tbs[layout[4] : spki_end]


def strip_ct_extensions(tbs: bytes) -> bytes:
    """``tbs`` (a DER TBSCertificate) without the poison and SCT list extensions: the
    bytes that are equal for a precertificate and its final certificate (RFC 6962 section
    3.2). An extension list left empty is omitted, as the CT tools do. Returns ``tbs``
    itself when it has neither.

    Raises :class:`~pinwarden.errors.CTFormatError` when the DER cannot be walked.
    """
    start, end = _tbs_fields(tbs)
    pos = start
    while pos < end:
        element_start = pos
        tag, contents, pos = _tlv(tbs, pos, end, "TBSCertificate field")
        if tag != _EXTENSIONS_TAG:
            continue
        list_tag, list_start, list_end = _tlv(tbs, contents, pos, "Extensions")
        if list_tag != _SEQUENCE or list_end != pos:
            raise CTFormatError("TBSCertificate: [3] does not hold exactly one SEQUENCE")
        kept = []
        removed = False
        cursor = list_start
        while cursor < list_end:
            ext_tag, ext_start, ext_end = _tlv(tbs, cursor, list_end, "Extension")
            if ext_tag != _SEQUENCE:
                raise CTFormatError(f"TBSCertificate: Extension at byte {cursor} is not a SEQUENCE")
            oid_tag, _, oid_end = _tlv(tbs, ext_start, ext_end, "extnID")
            if oid_tag != _OID_TAG:
                raise CTFormatError(f"TBSCertificate: extnID at byte {ext_start} is not an OID")
            if tbs[ext_start:oid_end] in (_POISON_OID_DER, _SCT_LIST_OID_DER):
                removed = True
            else:
                kept.append(tbs[cursor:ext_end])
            cursor = ext_end
        if not removed:
            return tbs
        replacement = (
            _element(_EXTENSIONS_TAG, _element(_SEQUENCE, b"".join(kept))) if kept else b""
        )
        return _element(_SEQUENCE, tbs[start:element_start] + replacement + tbs[pos:end])
    return tbs


def tbs_hash(tbs: bytes) -> bytes:
    """SHA-256 of :func:`strip_ct_extensions` of ``tbs``: one key for a precertificate and
    its final certificate, to de-duplicate them."""
    if _POISON_OID_DER in tbs or _SCT_LIST_OID_DER in tbs:
        tbs = strip_ct_extensions(tbs)
    return hashlib.sha256(tbs).digest()


def certificate_tbs(certificate_der: bytes) -> bytes:
    """The TBSCertificate bytes of a DER certificate (sliced, not re-encoded).

    Raises :class:`~pinwarden.errors.CTFormatError` when it is not a DER SEQUENCE."""
    tag, start, end = _tlv(certificate_der, 0, len(certificate_der), "Certificate")
    if tag != _SEQUENCE or end != len(certificate_der):
        raise CTFormatError("Certificate: not a single DER SEQUENCE")
    _, _, tbs_end = _tlv(certificate_der, start, end, "TBSCertificate")
    return certificate_der[start:tbs_end]
