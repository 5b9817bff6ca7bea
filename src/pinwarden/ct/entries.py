"""CT log entries: RFC 6962 ``MerkleTreeLeaf`` / ``TimestampedEntry`` (section 3.4) from a
``get-entries`` response, read into one :class:`LogEntry` type that static-ct-api data tiles
(:mod:`pinwarden.ct.tiles`) share.

What a monitor may believe. Only the ``MerkleTreeLeaf`` is covered by the log's Merkle tree
(its :attr:`LogEntry.leaf_hash`); ``extra_data`` (the chain, and for a precertificate the
precertificate itself) is not. So the names, the TBS hash and the certificate details are
taken from the leaf: the certificate of an ``x509_entry``, the ``TBSCertificate`` of a
``precert_entry`` — never from the unauthenticated pre-certificate beside it.

One odd certificate must not stall a monitor. When the leaf structure is valid but
cryptography refuses the certificate in it, the entry is still returned, with its leaf hash,
no names and :attr:`LogEntry.error` saying why; callers report such entries rather than skip
them (fail safe). A malformed leaf structure (a truncated field, a wrong version, trailing
bytes) raises :class:`~pinwarden.errors.CTFormatError` naming the entry index and field.

Performance (``benchmarks/bench_ct_parse.py``): the TBS is read once. cryptography parses a
certificate shell holding the TBS with only its subjectAltName extension(s) — asked for one
extension it would build Python objects for all of them, which costs more than everything
else an entry needs — so "a certificate cryptography refuses" means a TBS whose fields or
subjectAltName it refuses. The names and the leaf hash are computed for every entry; what a
monitor reads only for the entries it keeps (the TBS hash, serial, issuer, validity, SPKI
pin) on first access, from the same parsed shell.

Here are :class:`LogEntry` and the parsers that build it. The byte layout of the leaf
(reading a ``TimestampedEntry``, the leaf_index extension, the encoders) is in
:mod:`~pinwarden.ct._entry_wire`, the DER walks over the TBS in
:mod:`~pinwarden.ct._entry_tbs`, and the names in :mod:`~pinwarden.ct._entry_names`;
their public names are importable from here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TypeVar

from cryptography import x509

from pinwarden.ct._entry_names import (
    _CERTIFICATE_ERRORS,
    _load_quietly,
    _names,
    _normalise,
    _quietly,
)
from pinwarden.ct._entry_names import _a_label as _a_label
from pinwarden.ct._entry_tbs import (
    _VERSION_TAG,
    POISON_OID,
    SCT_LIST_OID,
    _certificate_shell,
    _spki_of_tbs,
    _tbs_fields,
    certificate_tbs,
    strip_ct_extensions,
    tbs_hash,
)
from pinwarden.ct._entry_tbs import _tbs_layout as _tbs_layout
from pinwarden.ct._entry_tbs import _tlv as _tlv
from pinwarden.ct._entry_wire import (
    _EPOCH,
    _LEAF_INDEX_ONLY,
    _LEAF_TYPE_TIMESTAMPED_ENTRY,
    _LEAF_VERSION_V1,
    MAX_TIMESTAMP_MS,
    _read_chain,
    encode_extra_data,
    encode_leaf_index_extension,
    encode_merkle_tree_leaf,
    encode_timestamped_entry,
    parse_leaf_index_extension,
)
from pinwarden.ct._entry_wire import _read_timestamped_entry as _read_timestamped_entry
from pinwarden.ct._entry_wire import _TimestampedEntryParts as _TimestampedEntryParts
from pinwarden.ct._wire import Reader
from pinwarden.ct.merkle import leaf_hash as merkle_leaf_hash
from pinwarden.ct.sct import SignedEntryType
from pinwarden.errors import CTFormatError
from pinwarden.pins import Pin

__all__ = [
    "MAX_TIMESTAMP_MS",
    "POISON_OID",
    "SCT_LIST_OID",
    "LogEntry",
    "certificate_tbs",
    "encode_extra_data",
    "encode_leaf_index_extension",
    "encode_merkle_tree_leaf",
    "encode_timestamped_entry",
    "parse_get_entries",
    "parse_leaf",
    "parse_leaf_index_extension",
    "strip_ct_extensions",
    "tbs_hash",
]
# Also importable from here, as before the split (private, so not in __all__): _a_label,
# _tbs_layout and _tlv, which the tests exercise, and _read_timestamped_entry and
# _TimestampedEntryParts, with which pinwarden.ct.tiles reads a data tile's entries.


@dataclass(frozen=True)
class LogEntry:
    """One log entry, from ``get-entries`` or a static-ct-api data tile.

    ``leaf_input`` is the serialized ``MerkleTreeLeaf`` (for a data tile, rebuilt from its
    ``TimestampedEntry``) and ``leaf_hash`` its RFC 6962 leaf hash, what the log's tree
    commits to. ``extra_data`` is what came beside the leaf, unauthenticated: the
    ``get-entries`` ``extra_data`` as served, or the rest of the ``TileLeaf`` (pre-certificate
    and fingerprints). ``extensions`` is the raw ``CtExtensions``; ``leaf_index`` the
    static-ct-api ``leaf_index`` extension in it, when present (a static-ct-api client checks
    that it equals ``index``).

    ``tbs_der`` is the ``TBSCertificate`` (of the certificate of an ``x509_entry``, or as
    logged in a ``precert_entry``); ``tbs_hash`` is the SHA-256 of it with the poison and SCT
    list extensions removed, equal for a precertificate and its final certificate.
    ``certificate_der`` is the certificate of an ``x509_entry``, or the pre-certificate from
    the extra data of a ``precert_entry`` (``None`` when absent). ``issuer_key_hash`` is set
    for precertificates. ``chain_fingerprints`` are the SHA-256 fingerprints of the submitted
    chain (the tile's list, or computed from ``chain_der``, the chain of a ``get-entries``
    response).

    ``dns_names`` are the SAN dNSNames and the subject common name, lower-cased A-labels in
    certificate order without duplicates; ``unicode_names[i]`` is ``dns_names[i]`` with each
    ``xn--`` label IDNA-decoded (kept as-is when it does not decode).

    ``error`` is ``None``, or why the certificate could not be read: then the names are
    empty, the details below are ``None``, and ``tbs_hash`` is the SHA-256 of ``tbs_der`` as
    logged. Report such entries; do not skip them.
    """

    index: int
    timestamp_ms: int
    entry_type: SignedEntryType
    leaf_input: bytes
    leaf_hash: bytes
    extensions: bytes
    leaf_index: int | None
    tbs_der: bytes
    certificate_der: bytes | None
    issuer_key_hash: bytes | None
    chain_fingerprints: tuple[bytes, ...]
    chain_der: tuple[bytes, ...]
    extra_data: bytes
    dns_names: tuple[str, ...]
    unicode_names: tuple[str, ...]
    error: str | None = None
    # The parsed certificate (for a precertificate: its TBS in a certificate shell with an
    # empty signature, so not a certificate to hand out), kept for the lazy details below.
    _parsed: x509.Certificate | None = field(default=None, repr=False, compare=False)

    @property
    def is_precert(self) -> bool:
        return self.entry_type is SignedEntryType.PRECERT

    @cached_property
    def timestamp(self) -> datetime:
        """``timestamp_ms`` as an aware UTC datetime."""
        return _EPOCH + timedelta(milliseconds=self.timestamp_ms)

    @cached_property
    def tbs_hash(self) -> bytes:
        """SHA-256 of ``tbs_der`` without the poison and SCT list extensions
        (:func:`tbs_hash`): equal for a precertificate and its final certificate, the key to
        de-duplicate them. Computed on first use: a monitor needs it only for the entries
        that match what it watches."""
        if self.error is None:
            try:
                return tbs_hash(self.tbs_der)
            except CTFormatError:
                pass  # an extension list the names did not need to read: hash as logged
        return hashlib.sha256(self.tbs_der).digest()

    @cached_property
    def serial(self) -> int | None:
        """The certificate's serial number (``None`` when it could not be read)."""
        # Read from the DER: cryptography warns on each access to a serial that is not
        # positive, and the walk gives the same integer.
        if self._parsed is None:
            return None
        tbs = self.tbs_der
        start, end = _tbs_fields(tbs)
        tag, serial, pos = _tlv(tbs, start, end, "version or serialNumber")
        if tag == _VERSION_TAG:
            _, serial, pos = _tlv(tbs, pos, end, "serialNumber")
        return int.from_bytes(tbs[serial:pos], "big", signed=True)

    @cached_property
    def issuer(self) -> str | None:
        """The issuer DN as an RFC 4514 string (for a precertificate: the final issuer)."""
        return _detail(self._parsed, lambda c: c.issuer.rfc4514_string())

    @cached_property
    def not_before(self) -> datetime | None:
        return _detail(self._parsed, lambda c: c.not_valid_before_utc)

    @cached_property
    def not_after(self) -> datetime | None:
        return _detail(self._parsed, lambda c: c.not_valid_after_utc)

    @cached_property
    def spki_pin(self) -> Pin | None:
        """The SHA-256 pin of the certificate's exact SubjectPublicKeyInfo bytes."""
        if self._parsed is None:
            return None
        try:
            return Pin.from_spki(_spki_of_tbs(self.tbs_der))
        except CTFormatError:
            return None


_T = TypeVar("_T")


def _detail(parsed: x509.Certificate | None, read: Callable[[x509.Certificate], _T]) -> _T | None:
    if parsed is None:
        return None
    try:
        return _quietly(read, parsed)
    except _CERTIFICATE_ERRORS:
        return None


# -- reading -------------------------------------------------------------------------------


def parse_leaf(
    leaf_input: bytes, extra_data: bytes | None, index: int, *, source: str = "log entry"
) -> LogEntry:
    """One ``get-entries`` entry: ``leaf_input`` (a ``MerkleTreeLeaf``) and its
    ``extra_data`` (``None`` to skip it), decoded from base64 already.

    Raises :class:`~pinwarden.errors.CTFormatError` naming ``source``, the index and the
    field when either structure is malformed.
    """
    where = f"{source} {index}"
    reader = Reader(leaf_input, f"{where}: MerkleTreeLeaf")
    version = reader.u8("version")
    if version != _LEAF_VERSION_V1:
        raise CTFormatError(f"{where}: MerkleTreeLeaf version {version}, only v1 (0) is known")
    leaf_type = reader.u8("leaf_type")
    if leaf_type != _LEAF_TYPE_TIMESTAMPED_ENTRY:
        raise CTFormatError(
            f"{where}: MerkleTreeLeaf leaf_type {leaf_type}, only timestamped_entry (0) is known"
        )
    reader.what = f"{where}: TimestampedEntry"
    parts = _read_timestamped_entry(reader, where)
    reader.end()
    certificate_der: bytes | None = None
    chain: tuple[bytes, ...] = ()
    if extra_data is not None:
        extra = Reader(extra_data, f"{where}: extra_data")
        if parts.entry_type is SignedEntryType.PRECERT:
            certificate_der = extra.vector(3, "pre_certificate", minimum=1)
            chain = _read_chain(extra, "precertificate_chain")
        else:
            chain = _read_chain(extra, "certificate_chain")
        extra.end()
    return _build_entry(
        index,
        parts,
        bytes(leaf_input),
        certificate_der=certificate_der,
        chain_fingerprints=tuple(hashlib.sha256(c).digest() for c in chain),
        chain_der=chain,
        extra_data=bytes(extra_data or b""),
    )


def parse_get_entries(
    response: bytes | str | Mapping[str, object], start: int, *, source: str = "get-entries"
) -> list[LogEntry]:
    """The entries of an RFC 6962 ``get-entries`` response (JSON text or bytes, or the
    decoded object); the first has index ``start``. A log may return fewer entries than
    asked, so the count is the caller's to check. ``source`` (say, the request URL) names
    the response in error messages.

    Raises :class:`~pinwarden.errors.CTFormatError` for invalid JSON, a missing or
    mistyped field, bad base64 or a malformed entry.
    """
    if start < 0:
        raise ValueError(f"start must not be negative, got {start}")
    document: object = response
    if isinstance(response, (bytes, bytearray, memoryview, str)):
        try:
            document = json.loads(bytes(response) if not isinstance(response, str) else response)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise CTFormatError(f"{source}: not JSON: {exc}") from None
    if not isinstance(document, Mapping):
        raise CTFormatError(f"{source}: expected a JSON object, got {_json_type(document)}")
    if "entries" not in document:
        raise CTFormatError(f"{source}: 'entries' is missing")
    items = document["entries"]
    if not isinstance(items, list):
        raise CTFormatError(f"{source}: 'entries' must be a list, got {_json_type(items)}")
    entries = []
    for position, item in enumerate(items):
        index = start + position
        if not isinstance(item, Mapping):
            raise CTFormatError(
                f"{source}: entries[{position}] must be an object, got {_json_type(item)}"
            )
        leaf_input = _base64_field(item, "leaf_input", source, position)
        extra_data = _base64_field(item, "extra_data", source, position)
        entries.append(parse_leaf(leaf_input, extra_data, index, source=f"{source} entry"))
    return entries


def _base64_field(item: Mapping[object, object], key: str, source: str, position: int) -> bytes:
    if key not in item:
        raise CTFormatError(f"{source}: entries[{position}].{key} is missing")
    value = item[key]
    if not isinstance(value, str):
        raise CTFormatError(
            f"{source}: entries[{position}].{key} must be a base64 string, got {_json_type(value)}"
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CTFormatError(f"{source}: entries[{position}].{key} is not valid base64") from None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _build_entry(
    index: int,
    parts: _TimestampedEntryParts,
    leaf_input: bytes,
    *,
    certificate_der: bytes | None,
    chain_fingerprints: tuple[bytes, ...],
    chain_der: tuple[bytes, ...],
    extra_data: bytes,
) -> LogEntry:
    """A :class:`LogEntry` from its parsed parts: reads the TBS once for the names, and
    computes the leaf and TBS hashes. Shared with :mod:`pinwarden.ct.tiles`."""
    body = parts.body
    error = None
    parsed = None
    names: list[str] = []
    tbs = body
    try:
        if parts.entry_type is SignedEntryType.X509:
            certificate_der = body
            tbs = certificate_tbs(body)
        layout = _tbs_layout(tbs)
        shell = _certificate_shell(tbs, layout)
        load = _load_quietly if layout[7] else x509.load_der_x509_certificate
        parsed = load(shell)
        names = _names(parsed, tbs, layout)
    except (CTFormatError, *_CERTIFICATE_ERRORS) as exc:
        error = f"certificate could not be read: {exc}"
        parsed = None
        names = []
    dns_names, unicode_names = _normalise(names)
    extensions = parts.extensions
    if len(extensions) == 8 and extensions[:3] == _LEAF_INDEX_ONLY:  # what static logs write
        leaf_index: int | None = int.from_bytes(extensions[3:], "big")
    else:
        leaf_index = parse_leaf_index_extension(extensions)
    return LogEntry(
        index=index,
        timestamp_ms=parts.timestamp_ms,
        entry_type=parts.entry_type,
        leaf_input=leaf_input,
        leaf_hash=merkle_leaf_hash(leaf_input),
        extensions=extensions,
        leaf_index=leaf_index,
        tbs_der=tbs,
        certificate_der=certificate_der,
        issuer_key_hash=parts.issuer_key_hash,
        chain_fingerprints=chain_fingerprints,
        chain_der=chain_der,
        extra_data=extra_data,
        dns_names=dns_names,
        unicode_names=unicode_names,
        error=error,
        _parsed=parsed,
    )
