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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import NamedTuple, TypeVar

import idna
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from pinwarden.ct._wire import Reader, u8, u16, u64, vector
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

POISON_OID = "1.3.6.1.4.1.11129.2.4.3"
"""The precertificate poison extension (RFC 6962 section 3.1)."""
SCT_LIST_OID = "1.3.6.1.4.1.11129.2.4.2"
"""The embedded SCT list extension (RFC 6962 section 3.3)."""

# The DER encodings (tag, length, value) of the two OIDs, to find them without decoding.
_POISON_OID_DER = bytes.fromhex("060a2b06010401d679020403")
_SCT_LIST_OID_DER = bytes.fromhex("060a2b06010401d679020402")

_LEAF_VERSION_V1 = 0
_LEAF_TYPE_TIMESTAMPED_ENTRY = 0
_ISSUER_KEY_HASH_SIZE = 32
_LEAF_INDEX_EXTENSION = 0  # static-ct-api ExtensionType leaf_index(0)
_LEAF_INDEX_SIZE = 5  # uint40
_LEAF_INDEX_ONLY = b"\x00\x00\x05"  # leaf_index(0), extension_data of 5 bytes

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_TIMESTAMP_MS = (datetime.max.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(milliseconds=1)
"""The last millisecond a datetime can hold: a larger timestamp is malformed, not a date."""

# What cryptography raises for a certificate it will not read (its own exception types do
# not derive from ValueError).
_CERTIFICATE_ERRORS = (
    ValueError,
    TypeError,
    x509.DuplicateExtension,
    x509.InvalidVersion,
    x509.UnsupportedGeneralNameType,
)


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


def _read_chain(reader: Reader, field_name: str) -> tuple[bytes, ...]:
    chain = reader.sub(3, field_name)
    certs: list[bytes] = []
    while chain.remaining:
        certs.append(chain.vector(3, f"{field_name}[{len(certs)}]", minimum=1))
    return tuple(certs)


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


# -- DER walks over a TBSCertificate ----------------------------------------------------------
#
# Hand-written, for three reasons. cryptography removes the SCT list from a certificate it
# has parsed (Certificate.tbs_precertificate_bytes) but neither removes the poison nor reads
# a bare TBSCertificate. Asked for one extension, it builds Python objects for all of them
# (policies, AIA, an SCT list...), which costs more than everything else an entry needs: so
# cryptography reads a shell holding the TBS with only its subjectAltName extension(s).
# And the subject's common names are read here rather than through cryptography's Name,
# which would build every attribute. The walks read only headers, on DER that cryptography
# then parses (and refuses when malformed); a common name in a string type other than
# UTF8String, PrintableString or IA5String is left to cryptography.

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
