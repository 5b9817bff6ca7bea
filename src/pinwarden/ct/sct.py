"""Signed certificate timestamps (RFC 6962 section 3.2): parsing and verification.

An SCT is a log's signed promise to publish a certificate. We parse SCTs with our own
TLS-structure reader (:mod:`pinwarden.ct._wire`) rather than with cryptography's certificate
extension parser, so one parser covers the three ways SCTs arrive (embedded in a certificate,
in the TLS handshake, in an OCSP response) and malformed bytes give a
:class:`~pinwarden.errors.CTFormatError` naming the field instead of a bare ``ValueError``.
Inside a well-framed list, one SCT that cannot be decoded is kept as a :class:`MalformedSCT`
(a MALFORMED verdict) so that the others are still checked, as Chromium does.

Verification rebuilds the ``digitally-signed`` struct of RFC 6962 section 3.2 and checks it
with the log's key from a log list (ECDSA P-256 or RSA PKCS#1 v1.5, both with SHA-256). See
:func:`verify_sct` for the exact verdict rules.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum, IntEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pinwarden._der import _header, spki_of_certificate
from pinwarden.ct._wire import Reader, u8, u16, u64, vector
from pinwarden.ct.logs import Log, LogList, LogState
from pinwarden.errors import CertificateError, CTFormatError

__all__ = [
    "SCT",
    "MalformedSCT",
    "SCTResult",
    "SCTStatus",
    "SignedEntry",
    "SignedEntryType",
    "embedded_sct_items",
    "embedded_scts",
    "encode_sct",
    "encode_sct_list",
    "entry_of",
    "find_issuer",
    "issuer_key_hash",
    "leaf_index_extension",
    "parse_sct",
    "parse_sct_list",
    "parse_sct_list_items",
    "sct_signature_input",
    "signed_data",
    "verify_embedded",
    "verify_sct",
]


class SignedEntryType(IntEnum):
    """RFC 6962 ``LogEntryType``: what an SCT's signature covers."""

    X509 = 0
    PRECERT = 1


@dataclass(frozen=True)
class SCT:
    """One SCT as the log signed it. ``timestamp_ms`` is milliseconds since the epoch
    (``timestamp`` the same instant, aware UTC); ``extensions`` the raw CtExtensions bytes and
    ``leaf_index`` the static-ct-api ``leaf_index`` extension when present. ``entry_type`` is
    what the SCT was signed over: PRECERT for SCTs embedded in a certificate, X509 for SCTs
    delivered in the TLS handshake or OCSP. ``raw`` is the TLS-encoded SCT."""

    version: int
    log_id: bytes
    timestamp_ms: int
    timestamp: datetime
    extensions: bytes
    hash_algorithm: int
    signature_algorithm: int
    signature: bytes
    entry_type: SignedEntryType
    leaf_index: int | None = None
    raw: bytes = b""


@dataclass(frozen=True)
class MalformedSCT:
    """An SCT that a well-framed SCT list carries but that cannot be decoded: an unknown
    version, malformed or duplicated extensions, trailing bytes. As Chromium does, it is
    skipped (it never counts) while the other SCTs of the list are still checked.

    ``raw`` is its serialized bytes as the list frames them and ``error`` why it could not
    be decoded. ``version``, ``log_id`` and ``timestamp`` are the fields read before the
    error (``None`` when not reached; only a v1 SCT's fields are read past the version), so
    a report can still name the log that seems to have signed it."""

    raw: bytes
    entry_type: SignedEntryType
    error: str
    version: int | None = None
    log_id: bytes | None = None
    timestamp: datetime | None = None


class SCTStatus(str, Enum):
    """The verdict on one SCT; :func:`verify_sct` gives the rules."""

    VALID = "valid"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_LOG = "unknown-log"
    LOG_NOT_TRUSTED = "log-not-trusted-at-time"
    FUTURE_TIMESTAMP = "future-timestamp"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class SCTResult:
    """The verdict on one SCT. ``sct`` is a :class:`MalformedSCT` exactly when ``status``
    is MALFORMED. ``log`` is the log-list entry (``None`` for an unknown log, or a
    malformed SCT whose log ID was not reached); ``operator`` the log's operator at the
    SCT's time (through ``previous_operators``); ``detail`` says why in one sentence."""

    sct: SCT | MalformedSCT
    status: SCTStatus
    log: Log | None
    operator: str | None
    detail: str

    @property
    def valid(self) -> bool:
        return self.status is SCTStatus.VALID


# --- constants of RFC 6962 and RFC 5246 ------------------------------------------------------

SCT_VERSION_V1 = 0
_CERTIFICATE_TIMESTAMP = 0  # SignatureType.certificate_timestamp
HASH_SHA256 = 4  # TLS HashAlgorithm.sha256
SIG_RSA = 1  # TLS SignatureAlgorithm.rsa
SIG_ECDSA = 3  # TLS SignatureAlgorithm.ecdsa
_EXTENSION_LEAF_INDEX = 0  # static-ct-api ExtensionType.leaf_index
_LEAF_INDEX_SIZE = 5  # uint40

_SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
# DER encodings (tag, length, contents) of the two CT extension OIDs, for the TBS walk.
_SCT_LIST_OID_DER = bytes.fromhex("060a2b06010401d679020402")
_POISON_OID_DER = bytes.fromhex("060a2b06010401d679020403")

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


# --- what the log signed ---------------------------------------------------------------------


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


# --- verification ----------------------------------------------------------------------------


def find_issuer(
    cert: x509.Certificate, candidates: Iterable[x509.Certificate], *, by_name: bool = False
) -> x509.Certificate | None:
    """The first candidate whose subject is ``cert``'s issuer and whose key verifies
    ``cert``'s signature, else ``None``.

    With ``by_name``, when no candidate's signature verifies, the first candidate whose
    subject is ``cert``'s issuer: an altered certificate still names its issuer, and
    checking its SCTs against that issuer shows them as bad signatures rather than
    leaving them unverified. A candidate whose name cryptography cannot decode is skipped.
    """
    named = [c for c in candidates if _names_issuer(cert, c)]
    for candidate in named:
        if _issued_by(cert, candidate):
            return candidate
    return named[0] if by_name and named else None


def _names_issuer(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    try:
        return candidate.subject == cert.issuer
    except (ValueError, TypeError):  # a name cryptography decodes lazily and cannot read
        return False


def verify_sct(
    sct: SCT | MalformedSCT,
    cert: x509.Certificate,
    *,
    issuer: x509.Certificate | bytes | None,
    log_list: LogList,
    now: datetime,
) -> SCTResult:
    """The verdict on one SCT for ``cert``.

    ``issuer`` (the issuer's certificate, or its DER SubjectPublicKeyInfo) is needed for a
    PRECERT SCT, whose signature covers the issuer key hash; ``None`` is accepted only for
    X509 SCTs (else :class:`CertificateError`). Rules, in this order:

    0. MALFORMED: ``sct`` is a :class:`MalformedSCT` (no issuer needed); ``log`` is the
       log its log ID names, when that field was read and is in the list.
    1. UNKNOWN_LOG: the SCT's log ID is not in ``log_list``.
    2. BAD_SIGNATURE: the hash algorithm is not SHA-256, the signature algorithm does not
       match the log's key (ECDSA or RSA), the signature does not verify over the entry
       rebuilt from ``cert`` and ``issuer`` (an altered certificate or a wrong issuer), or
       the log's key is unusable: not a key RFC 6962 section 2.1.4 allows (ECDSA on NIST
       P-256, or RSA of at least 2048 bits) or one cryptography cannot load. Such a log
       can sign nothing that counts, so its SCTs are bad rather than unknown.
    3. FUTURE_TIMESTAMP: the SCT's timestamp is after ``now``.
    4. LOG_NOT_TRUSTED: the log was not trusted when it issued the SCT:

       * its state is ``pending`` or ``rejected``;
       * it is ``retired`` and the SCT is not before the retirement time (``state_since``;
         a retired log without a time is never trusted);
       * it is ``readonly`` and the SCT is not before the time it froze (a frozen log
         accepts nothing, so such an SCT cannot be genuine log output);
       * it has a ``temporal_interval`` that does not contain ``cert``'s notAfter.

       ``qualified``, ``usable``, ``readonly`` (SCT before the freeze), ``retired`` (SCT
       before the retirement) and a log without a state count as trusted: as Chrome does,
       a retired log's SCTs issued while it was trusted stay good.
    5. VALID otherwise.
    """
    if isinstance(sct, MalformedSCT):
        return _malformed(sct, log_list)
    log = log_list.by_id(sct.log_id)
    if log is None:
        return SCTResult(
            sct,
            SCTStatus.UNKNOWN_LOG,
            None,
            None,
            f"log {_b64(sct.log_id)} is not in the log list ({log_list.source})",
        )
    operator = log.operator_at(sct.timestamp)

    def result(status: SCTStatus, detail: str) -> SCTResult:
        return SCTResult(sct, status, log, operator, detail)

    key_hash: bytes | None = None
    if sct.entry_type is SignedEntryType.PRECERT:
        if issuer is None:
            raise CertificateError(
                f"{_describe(cert)}: the issuer certificate is needed to verify an embedded "
                "SCT (the log signed the issuer's key hash)"
            )
        key_hash = issuer_key_hash(issuer)
    problem = _signature_problem(sct, log, signed_data(sct, cert, key_hash))
    if problem is not None:
        if problem == _DOES_NOT_VERIFY:
            problem += _why_not(sct, cert, issuer)
        return result(SCTStatus.BAD_SIGNATURE, problem)
    if sct.timestamp > now:
        return result(
            SCTStatus.FUTURE_TIMESTAMP,
            f"the SCT is dated {_iso(sct.timestamp)}, after {_iso(now)}",
        )
    distrust = _trust_problem(sct, log, cert)
    if distrust is not None:
        return result(SCTStatus.LOG_NOT_TRUSTED, distrust)
    return result(SCTStatus.VALID, f"signature by {log.description} verifies")


def verify_embedded(
    cert: x509.Certificate,
    issuer: x509.Certificate | bytes | None,
    log_list: LogList,
    now: datetime,
) -> tuple[SCTResult, ...]:
    """The verdicts on every SCT embedded in ``cert`` (an empty tuple when it has none).
    An SCT that cannot be decoded is a MALFORMED verdict; :class:`CTFormatError` when the
    SCT list itself is malformed (see :func:`embedded_sct_items`)."""
    return tuple(
        verify_sct(sct, cert, issuer=issuer, log_list=log_list, now=now)
        for sct in embedded_sct_items(cert)
    )


def _malformed(sct: MalformedSCT, log_list: LogList) -> SCTResult:
    log = log_list.by_id(sct.log_id) if sct.log_id is not None else None
    operator = (
        log.operator_at(sct.timestamp) if log is not None and sct.timestamp is not None else None
    )
    return SCTResult(sct, SCTStatus.MALFORMED, log, operator, sct.error)


_DOES_NOT_VERIFY = "the signature does not verify"


def _signature_problem(sct: SCT, log: Log, message: bytes) -> str | None:
    if sct.hash_algorithm != HASH_SHA256:
        return f"hash algorithm {sct.hash_algorithm} is not SHA-256 (4), the only one CT allows"
    try:
        key = log.public_key()
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        return f"the log list's key for {log.description} is unusable: {exc}"
    unusable = _key_not_allowed(key)
    if unusable is not None:
        return f"the log list's key for {log.description} is unusable: {unusable}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if sct.signature_algorithm != SIG_ECDSA:
            return _mismatch(sct, "ECDSA")
        try:
            key.verify(sct.signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return _DOES_NOT_VERIFY
        return None
    if sct.signature_algorithm != SIG_RSA:
        return _mismatch(sct, "RSA")
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(sct.signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return _DOES_NOT_VERIFY
    return None


_RFC6962_KEYS = "RFC 6962 section 2.1.4 allows only ECDSA on NIST P-256 or RSA of 2048 bits or more"


def _key_not_allowed(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str | None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            return f"an ECDSA key on {key.curve.name}; {_RFC6962_KEYS}"
    elif key.key_size < 2048:
        return f"an RSA key of {key.key_size} bits; {_RFC6962_KEYS}"
    return None


def _mismatch(sct: SCT, key_kind: str) -> str:
    names = {SIG_RSA: "RSA", SIG_ECDSA: "ECDSA"}
    claimed = names.get(sct.signature_algorithm, f"number {sct.signature_algorithm}")
    return f"the SCT's signature algorithm is {claimed} but the log's key is {key_kind}"


def _why_not(sct: SCT, cert: x509.Certificate, issuer: x509.Certificate | bytes | None) -> str:
    if sct.entry_type is SignedEntryType.X509:
        return " over this certificate: was it altered, or is the SCT for another certificate?"
    if isinstance(issuer, x509.Certificate) and not _issued_by(cert, issuer):
        return (
            f" and {_describe(issuer, 'the issuer')} did not sign this certificate either: "
            "does the issuer match? (or was the certificate altered?)"
        )
    return " over this certificate and issuer: does the issuer match? (or was it altered?)"


def _trust_problem(sct: SCT, log: Log, cert: x509.Certificate) -> str | None:
    state, since = log.state, log.state_since
    if state in (LogState.PENDING, LogState.REJECTED):
        return f"{log.description} is {state.value}: its SCTs do not count"
    if state is LogState.RETIRED and (since is None or sct.timestamp >= since):
        when = f" at {_iso(since)}" if since else " (the list gives no time)"
        return f"{log.description} retired{when}; the SCT is dated {_iso(sct.timestamp)}"
    if state is LogState.READONLY and since is not None and sct.timestamp >= since:
        return (
            f"{log.description} has been read-only since {_iso(since)}; an SCT dated "
            f"{_iso(sct.timestamp)} cannot come from it"
        )
    if log.temporal_interval is not None:
        start, end = log.temporal_interval
        expiry = cert.not_valid_after_utc
        if not start <= expiry < end:
            return (
                f"the certificate expires {_iso(expiry)}, outside {log.description}'s "
                f"temporal interval [{_iso(start)}, {_iso(end)})"
            )
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# --- the DER walk over a TBSCertificate's extensions -----------------------------------------
# Hand-written: cryptography parses the SCT extension itself (failing with a bare ValueError
# on a malformed one) and cannot remove the poison extension; we need the raw extension
# value and a TBS without the poison. The TBS bytes come from cryptography, which has
# already checked their outer structure.

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


# --- formatting ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(cert: x509.Certificate, kind: str = "certificate") -> str:
    try:
        subject = cert.subject.rfc4514_string()
    except (ValueError, TypeError):  # a name cryptography cannot decode must not hide the
        subject = ""  # real error (TypeError: e.g. a BIT STRING where a string belongs)
    return f"{kind} {subject or f'with serial {cert.serial_number:#x}'}"
