"""Parsing and encoding SCTs: one SCT, an SCT list, and the SCT list embedded in a
certificate, each TLS structure read with :mod:`pinwarden.ct._wire` so that malformed bytes
give a :class:`~pinwarden.errors.CTFormatError` naming the field; and the encoders that are
their inverse (the test kit and the tests build SCTs with them).

Separate from verification: reading an SCT needs no key, no log list and no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from cryptography import x509

from pinwarden._der import _header
from pinwarden.ct._sct_types import (
    _EXTENSION_LEAF_INDEX,
    _LEAF_INDEX_SIZE,
    SCT,
    SCT_VERSION_V1,
    MalformedSCT,
    SignedEntryType,
    _describe,
)
from pinwarden.ct._tbs import _SCT_LIST_OID_DER, _extension_value
from pinwarden.ct._wire import Reader, u8, u64, vector
from pinwarden.errors import CertificateError, CTFormatError

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The last millisecond a datetime can hold; a uint64 timestamp beyond it is not a time.
_MAX_TIMESTAMP_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - _EPOCH) // (
    timedelta(milliseconds=1)
)


# --- parsing ---------------------------------------------------------------------------------


def parse_sct(data: bytes, *, entry_type: SignedEntryType, what: str = "SCT") -> SCT:
    """Parse one TLS-encoded ``SignedCertificateTimestamp`` (RFC 6962 section 3.2, v1).

    ``entry_type`` says what the SCT was signed over (it is not in the encoding): PRECERT for
    an SCT embedded in a certificate, X509 for one from the TLS handshake or OCSP. ``what``
    names the SCT in error messages. Raises :class:`CTFormatError` on any malformed byte,
    an unknown version, trailing bytes, a malformed or duplicated extension.
    """
    item = _decode_sct(data, SignedEntryType(entry_type), what)
    if isinstance(item, MalformedSCT):
        raise CTFormatError(item.error)
    return item


def _decode_sct(data: bytes, entry_type: SignedEntryType, what: str) -> SCT | MalformedSCT:
    """The SCT in ``data``, or what was read of it and why the rest could not be."""
    reader = Reader(data, what)
    version: int | None = None
    log_id: bytes | None = None
    timestamp: datetime | None = None
    try:
        version = reader.u8("version")
        if version != SCT_VERSION_V1:
            # A later version may lay its fields out differently: reading on would be
            # guessing. (RFC 6962 numbers versions from 0: version 1 is v2.)
            raise CTFormatError(
                f"{what}: version {version} (v{version + 1}) is not supported; only v1 (0)"
            )
        log_id = reader.fixed(32, "log_id")
        timestamp_ms = reader.u64("timestamp")
        if timestamp_ms > _MAX_TIMESTAMP_MS:
            raise CTFormatError(f"{what}: timestamp {timestamp_ms} ms is after the year 9999")
        timestamp = _EPOCH + timedelta(milliseconds=timestamp_ms)
        extensions = reader.vector(2, "extensions")
        hash_algorithm = reader.u8("hash algorithm")
        signature_algorithm = reader.u8("signature algorithm")
        signature = reader.vector(2, "signature")
        reader.end()
        leaf_index = _leaf_index(extensions, what)
    except CTFormatError as exc:
        return MalformedSCT(bytes(data), entry_type, str(exc), version, log_id, timestamp)
    return SCT(
        version=version,
        log_id=log_id,
        timestamp_ms=timestamp_ms,
        timestamp=timestamp,
        extensions=extensions,
        hash_algorithm=hash_algorithm,
        signature_algorithm=signature_algorithm,
        signature=signature,
        entry_type=entry_type,
        leaf_index=leaf_index,
        raw=bytes(data),
    )


def _leaf_index(extensions: bytes, what: str) -> int | None:
    """The static-ct-api ``leaf_index`` from CtExtensions (c2sp.org/static-ct-api: a list of
    ``Extension{uint8 type; opaque data<0..2^16-1>}``, no duplicate types); other types are
    kept in the raw bytes and ignored here."""
    reader = Reader(extensions, f"{what}: extensions")
    seen: set[int] = set()
    index: int | None = None
    while reader.remaining:
        kind = reader.u8("extension type")
        if kind in seen:
            raise CTFormatError(f"{what}: extension type {kind} appears twice")
        seen.add(kind)
        data = reader.vector(2, f"extension {kind} data")
        if kind == _EXTENSION_LEAF_INDEX:
            if len(data) != _LEAF_INDEX_SIZE:
                raise CTFormatError(
                    f"{what}: leaf_index extension is {len(data)} bytes, must be 5 (uint40)"
                )
            index = int.from_bytes(data, "big")
    return index


def parse_sct_list(
    data: bytes, *, entry_type: SignedEntryType, what: str = "SCT list"
) -> tuple[SCT, ...]:
    """Parse a ``SignedCertificateTimestampList`` (RFC 6962 section 3.3): a u16 total length
    and one or more ``opaque SerializedSCT<1..2^16-1>``. Raises :class:`CTFormatError`,
    also when a single SCT cannot be decoded (see :func:`parse_sct_list_items`)."""
    return _all_decoded(parse_sct_list_items(data, entry_type=entry_type, what=what), what)


def parse_sct_list_items(
    data: bytes, *, entry_type: SignedEntryType, what: str = "SCT list"
) -> tuple[SCT | MalformedSCT, ...]:
    """Like :func:`parse_sct_list`, but an SCT that cannot be decoded inside a well-framed
    list becomes a :class:`MalformedSCT` (its ``error`` names it ``SCT #N``) instead of
    failing the list: Chromium skips such an SCT and counts the others. A list whose
    framing is wrong (lengths, an empty list, an empty SCT, trailing bytes) still raises
    :class:`CTFormatError`: then no SCT boundary can be trusted."""
    entry_type = SignedEntryType(entry_type)
    reader = Reader(data, what)
    items = reader.sub(2, "sct_list")
    reader.end()
    if not items.remaining:
        raise CTFormatError(f"{what}: the list is empty (at least one SCT required)")
    found: list[SCT | MalformedSCT] = []
    while items.remaining:
        number = len(found) + 1
        serialized = items.vector(2, f"SCT #{number}", minimum=1)
        found.append(_decode_sct(serialized, entry_type, f"SCT #{number}"))
    return tuple(found)


def _all_decoded(items: tuple[SCT | MalformedSCT, ...], what: str) -> tuple[SCT, ...]:
    scts = []
    for item in items:
        if isinstance(item, MalformedSCT):
            raise CTFormatError(f"{what}: {item.error}")
        scts.append(item)
    return tuple(scts)


_EMBEDDED = "embedded SCT list"


def embedded_scts(cert: x509.Certificate) -> tuple[SCT, ...]:
    """The SCTs embedded in ``cert`` (extension 1.3.6.1.4.1.11129.2.4.2), in their order;
    an empty tuple when it has none. Raises :class:`CTFormatError` when the extension is
    malformed or one of its SCTs cannot be decoded (see :func:`embedded_sct_items`)."""
    items = embedded_sct_items(cert)
    try:
        return _all_decoded(items, _EMBEDDED)
    except CTFormatError as exc:
        raise _named(exc, cert) from None


def embedded_sct_items(cert: x509.Certificate) -> tuple[SCT | MalformedSCT, ...]:
    """The SCTs embedded in ``cert`` in their order, an SCT that cannot be decoded as a
    :class:`MalformedSCT` (see :func:`parse_sct_list_items`); an empty tuple when there is
    no SCT-list extension. Raises :class:`CTFormatError` when the extension appears twice
    or its value or the list's framing is malformed."""
    try:
        value = _extension_value(cert.tbs_certificate_bytes, _SCT_LIST_OID_DER)
        if value is None:
            return ()
        # extnValue holds a DER OCTET STRING whose contents are the TLS-encoded list.
        try:
            tag, start, end = _header(value, 0, "SCT list OCTET STRING")
        except CertificateError as exc:
            raise CTFormatError(f"{_EMBEDDED}: {exc}") from None
        if tag != 0x04 or end != len(value):
            raise CTFormatError(f"{_EMBEDDED}: the extension value is not one DER OCTET STRING")
        return parse_sct_list_items(
            value[start:end], entry_type=SignedEntryType.PRECERT, what=_EMBEDDED
        )
    except CTFormatError as exc:
        raise _named(exc, cert) from None


def _named(exc: CTFormatError, cert: x509.Certificate) -> CTFormatError:
    """``exc`` with the certificate named: described only on error, because decoding a
    subject costs time for every certificate a monitor reads, and can itself fail."""
    detail = str(exc).removeprefix(f"{_EMBEDDED}: ")
    return CTFormatError(f"{_EMBEDDED} of {_describe(cert)}: {detail}")


# --- encoding (the inverse of the parsers; the test kit and the tests use it) ---------------


def encode_sct(sct: SCT) -> bytes:
    """The TLS encoding of ``sct`` from its fields (``raw`` is ignored)."""
    return (
        u8(sct.version)
        + sct.log_id
        + u64(sct.timestamp_ms)
        + vector(sct.extensions, 2)
        + u8(sct.hash_algorithm)
        + u8(sct.signature_algorithm)
        + vector(sct.signature, 2)
    )


def encode_sct_list(scts: Iterable[SCT | bytes]) -> bytes:
    """A ``SignedCertificateTimestampList`` of SCTs (objects, or already-encoded bytes)."""
    items = b"".join(vector(s if isinstance(s, bytes) else encode_sct(s), 2) for s in scts)
    return vector(items, 2)


def leaf_index_extension(index: int) -> bytes:
    """CtExtensions holding only a static-ct-api ``leaf_index`` (8 bytes)."""
    return u8(_EXTENSION_LEAF_INDEX) + vector(index.to_bytes(_LEAF_INDEX_SIZE, "big"), 2)
