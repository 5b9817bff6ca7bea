"""The TLS encodings of a log entry: the RFC 6962 section 3.4 ``MerkleTreeLeaf`` and
``TimestampedEntry``, the ``extra_data`` of ``get-entries`` and the static-ct-api
``leaf_index`` extension, read and written.

The reader of a ``TimestampedEntry`` is shared by ``get-entries`` (:mod:`pinwarden.ct.entries`)
and data tiles (:mod:`pinwarden.ct.tiles`); the encoders are the readers' inverse, for the test
log. Separate from :mod:`pinwarden.ct.entries` because this is byte layout only: no certificate
is read here and no :class:`~pinwarden.ct.entries.LogEntry` built. The public names are
re-exported by :mod:`pinwarden.ct.entries`, their documented home.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from pinwarden.ct._wire import Reader, u8, u16, u64, vector
from pinwarden.ct.sct import SignedEntryType
from pinwarden.errors import CTFormatError

_LEAF_VERSION_V1 = 0
_LEAF_TYPE_TIMESTAMPED_ENTRY = 0
_ISSUER_KEY_HASH_SIZE = 32
_LEAF_INDEX_EXTENSION = 0  # static-ct-api ExtensionType leaf_index(0)
_LEAF_INDEX_SIZE = 5  # uint40
_LEAF_INDEX_ONLY = b"\x00\x00\x05"  # leaf_index(0), extension_data of 5 bytes

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_TIMESTAMP_MS = (datetime.max.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(milliseconds=1)
"""The last millisecond a datetime can hold: a larger timestamp is malformed, not a date."""


# -- reading -------------------------------------------------------------------------------


class _TimestampedEntryParts(NamedTuple):
    """The fields of a ``TimestampedEntry``; ``body`` is the certificate (x509_entry) or
    the TBSCertificate (precert_entry). Shared with :mod:`pinwarden.ct.tiles`. (A named
    tuple: built once per entry, it costs a third of a frozen dataclass.)"""

    timestamp_ms: int
    entry_type: SignedEntryType
    body: bytes
    issuer_key_hash: bytes | None
    extensions: bytes


def _read_timestamped_entry(reader: Reader, where: str) -> _TimestampedEntryParts:
    """Read one ``TimestampedEntry`` from ``reader`` (RFC 6962 section 3.4)."""
    timestamp_ms = reader.u64("timestamp")
    if timestamp_ms > MAX_TIMESTAMP_MS:
        raise CTFormatError(f"{where}: timestamp {timestamp_ms} ms is beyond the year 9999")
    raw_type = reader.u16("entry_type")
    issuer_key_hash = None
    if raw_type == SignedEntryType.X509:
        entry_type = SignedEntryType.X509
        body = reader.vector(3, "x509_entry", minimum=1)
    elif raw_type == SignedEntryType.PRECERT:
        entry_type = SignedEntryType.PRECERT
        issuer_key_hash = reader.fixed(_ISSUER_KEY_HASH_SIZE, "issuer_key_hash")
        body = reader.vector(3, "tbs_certificate", minimum=1)
    else:
        raise CTFormatError(
            f"{where}: entry_type {raw_type} is neither x509_entry (0) nor precert_entry (1)"
        )
    extensions = reader.vector(2, "extensions")
    return _TimestampedEntryParts(timestamp_ms, entry_type, body, issuer_key_hash, extensions)


def _read_chain(reader: Reader, field_name: str) -> tuple[bytes, ...]:
    chain = reader.sub(3, field_name)
    certs: list[bytes] = []
    while chain.remaining:
        certs.append(chain.vector(3, f"{field_name}[{len(certs)}]", minimum=1))
    return tuple(certs)


# -- static-ct-api leaf_index extension ------------------------------------------------------


def parse_leaf_index_extension(extensions: bytes) -> int | None:
    """The static-ct-api ``leaf_index`` in a ``CtExtensions`` value, or ``None`` when
    there is none. Lenient by design: RFC 6962 leaves the field opaque, so bytes that are
    not a static-ct-api extension list mean "no leaf index", not a malformed entry."""
    if not extensions:
        return None
    reader = Reader(extensions, "CtExtensions")
    try:
        while reader.remaining:
            kind = reader.u8("extension_type")
            data = reader.vector(2, "extension_data")
            if kind == _LEAF_INDEX_EXTENSION:
                return int.from_bytes(data, "big") if len(data) == _LEAF_INDEX_SIZE else None
    except CTFormatError:
        return None
    return None


def encode_leaf_index_extension(index: int) -> bytes:
    """``CtExtensions`` contents holding only a static-ct-api ``leaf_index`` (8 bytes)."""
    if not 0 <= index < 1 << 40:
        raise ValueError(f"leaf index {index} does not fit in 40 bits")
    return u8(_LEAF_INDEX_EXTENSION) + vector(index.to_bytes(_LEAF_INDEX_SIZE, "big"), 2)


# -- writing (the inverse of the readers, for the test log) ----------------------------------


def encode_timestamped_entry(
    timestamp_ms: int,
    body: bytes,
    *,
    issuer_key_hash: bytes | None = None,
    extensions: bytes = b"",
) -> bytes:
    """A ``TimestampedEntry``: an ``x509_entry`` holding the certificate ``body``, or, when
    ``issuer_key_hash`` is given, a ``precert_entry`` holding the TBSCertificate ``body``.
    ``extensions`` is the ``CtExtensions`` contents (without its length)."""
    if issuer_key_hash is None:
        head = u64(timestamp_ms) + u16(SignedEntryType.X509)
    else:
        if len(issuer_key_hash) != _ISSUER_KEY_HASH_SIZE:
            raise ValueError(f"issuer_key_hash must be 32 bytes, got {len(issuer_key_hash)}")
        head = u64(timestamp_ms) + u16(SignedEntryType.PRECERT) + issuer_key_hash
    return head + vector(body, 3) + vector(extensions, 2)


def encode_merkle_tree_leaf(
    timestamp_ms: int,
    body: bytes,
    *,
    issuer_key_hash: bytes | None = None,
    extensions: bytes = b"",
) -> bytes:
    """A v1 ``MerkleTreeLeaf`` (the ``leaf_input`` of ``get-entries``) around
    :func:`encode_timestamped_entry`; :func:`parse_leaf` reads it back."""
    return (
        u8(_LEAF_VERSION_V1)
        + u8(_LEAF_TYPE_TIMESTAMPED_ENTRY)
        + encode_timestamped_entry(
            timestamp_ms, body, issuer_key_hash=issuer_key_hash, extensions=extensions
        )
    )


def encode_extra_data(chain: Sequence[bytes], *, pre_certificate: bytes | None = None) -> bytes:
    """The ``extra_data`` of ``get-entries``: the ``certificate_chain`` of an x509 entry, or
    with ``pre_certificate`` a ``PrecertChainEntry``."""
    chain_bytes = vector(b"".join(vector(cert, 3) for cert in chain), 3)
    if pre_certificate is None:
        return chain_bytes
    return vector(pre_certificate, 3) + chain_bytes
