"""The SCT data model: what an SCT is, what a verdict on one is, and the protocol numbers of
RFC 6962 and RFC 5246 that the parser, the signed-data builder, the verifier and the test kit
all share.

Separate from the functions so that each of :mod:`pinwarden.ct._sct_codec`,
:mod:`pinwarden.ct._sct_signed` and :mod:`pinwarden.ct._sct_verify` can import the types
without importing each other; :mod:`pinwarden.ct.sct` re-exports everything public.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, IntEnum

from cryptography import x509

from pinwarden.ct.logs import Log


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


# --- formatting ------------------------------------------------------------------------------
# Shared by the parser (naming a certificate whose SCT list is malformed) and the verifier.


def _describe(cert: x509.Certificate, kind: str = "certificate") -> str:
    try:
        subject = cert.subject.rfc4514_string()
    except (ValueError, TypeError):  # a name cryptography cannot decode must not hide the
        subject = ""  # real error (TypeError: e.g. a BIT STRING where a string belongs)
    return f"{kind} {subject or f'with serial {cert.serial_number:#x}'}"
