"""RFC 6962 signed tree heads: the ``get-sth`` JSON (section 4.3) and the signature over the
section 3.5 ``TreeHeadSignature`` (version v1, signature_type tree_hash, timestamp, tree_size,
root), a TLS ``DigitallySigned`` made with ECDSA P-256 / SHA-256 or RSA PKCS#1 v1.5 / SHA-256.

A static-ct-api checkpoint carries the same signature (:mod:`pinwarden.ct._checkpoint` reads
the note around it and verifies it with :func:`verify_tree_head_signature`). Separate from the
checkpoint code because it is the base both forms stand on; :mod:`pinwarden.ct.treehead`
re-exports the public names, their documented home.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pinwarden.ct._json_text import b64, first_line, iso_ms, json_object
from pinwarden.ct._wire import Reader, u8, u64, vector
from pinwarden.ct.logs import Log
from pinwarden.errors import CTFormatError, LogListError, LogMisbehaviourError

HASH_SHA256 = 4
"""``HashAlgorithm.sha256`` (RFC 5246 section 7.4.1.4.1)."""
SIG_RSA = 1
"""``SignatureAlgorithm.rsa``."""
SIG_ECDSA = 3
"""``SignatureAlgorithm.ecdsa``."""

MAX_STH_BYTES = 1 << 20
MAX_TREE_SIZE = 1 << 40
"""The largest tree size a verified tree head may have (about 1.1 trillion entries; the
largest logs in 2026 hold a few billion, about 2^32). A larger, validly signed head is
``implausible-size`` misbehaviour."""

_VERSION_V1 = 0
_SIGNATURE_TYPE_TREE_HASH = 1
_HASH_SIZE = 32
_UINT64_LIMIT = 1 << 64
# 9999-12-31T23:59:59.999Z: later timestamps cannot be a real tree head and do not fit datetime.
_MAX_TIMESTAMP_MS = 253_402_300_799_999


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree head as a log signed it.

    ``signature`` is the TLS-encoded ``DigitallySigned`` (hash algorithm, signature algorithm,
    signature) over :func:`tree_head_signature_input`. A head read from a checkpoint also has
    the ``origin`` line and the whole note in ``checkpoint``, kept as evidence.
    """

    tree_size: int
    timestamp_ms: int
    root_hash: bytes
    signature: bytes
    origin: str | None = None
    checkpoint: str | None = None

    @property
    def timestamp(self) -> datetime:
        """``timestamp_ms`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, timezone.utc)

    def signed_data(self) -> bytes:
        """The bytes the signature covers (the RFC 6962 ``TreeHeadSignature``)."""
        return tree_head_signature_input(self.tree_size, self.timestamp_ms, self.root_hash)

    def to_json(self) -> dict[str, Any]:
        """The head as JSON: the four ``get-sth`` fields plus ``timestamp_iso``, and
        ``origin``/``checkpoint`` when it came from a checkpoint. :meth:`from_json` reads it
        back (the monitor stores it this way)."""
        data: dict[str, Any] = {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp_ms,
            "timestamp_iso": iso_ms(self.timestamp),
            "sha256_root_hash": b64(self.root_hash),
            "tree_head_signature": b64(self.signature),
        }
        if self.origin is not None:
            data["origin"] = self.origin
        if self.checkpoint is not None:
            data["checkpoint"] = self.checkpoint
        return data

    @classmethod
    def from_json(
        cls, data: bytes | str | Mapping[str, Any], *, source: str = "tree head"
    ) -> SignedTreeHead:
        """Read :meth:`to_json` output (or a ``get-sth`` response). Raises
        :class:`~pinwarden.errors.CTFormatError`; does not verify the signature."""
        head = parse_sth(data, source=source)
        obj = _json_object(data, source)
        origin = obj.get("origin")
        checkpoint = obj.get("checkpoint")
        if origin is not None and not isinstance(origin, str):
            raise CTFormatError(f"{source}: origin is not a string")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise CTFormatError(f"{source}: checkpoint is not a string")
        return cls(
            head.tree_size, head.timestamp_ms, head.root_hash, head.signature, origin, checkpoint
        )


def log_name(log: Log) -> str:
    """How messages and evidence name a log: its description, else its URL."""
    return log.description or log.base_url or log.log_id_b64


def tree_head_signature_input(tree_size: int, timestamp_ms: int, root_hash: bytes) -> bytes:
    """RFC 6962 section 3.5 ``TreeHeadSignature``: version v1, signature_type tree_hash,
    uint64 timestamp, uint64 tree_size, 32-byte root."""
    return (
        u8(_VERSION_V1)
        + u8(_SIGNATURE_TYPE_TREE_HASH)
        + u64(timestamp_ms)
        + u64(tree_size)
        + bytes(root_hash)
    )


def parse_digitally_signed(data: bytes, what: str) -> tuple[int, int, bytes]:
    """A TLS ``DigitallySigned``: (hash algorithm, signature algorithm, signature). Raises
    :class:`~pinwarden.errors.CTFormatError` on a truncated value or trailing bytes."""
    reader = Reader(data, what)
    hash_algorithm = reader.u8("hash algorithm")
    signature_algorithm = reader.u8("signature algorithm")
    signature = reader.vector(2, "signature")
    reader.end()
    return hash_algorithm, signature_algorithm, signature


def parse_sth(data: bytes | str | Mapping[str, Any], *, source: str = "get-sth") -> SignedTreeHead:
    """Parse a ``get-sth`` response (RFC 6962 section 4.3): the JSON bytes or the decoded
    object. Every field is checked (types, ranges, base64, a 32-byte root, a well-formed
    ``DigitallySigned``); unknown fields are ignored. The signature is not verified here
    (see :func:`verify_sth`)."""
    obj = _json_object(data, source)
    tree_size = _uint64(obj, "tree_size", source)
    timestamp = _uint64(obj, "timestamp", source)
    if timestamp > _MAX_TIMESTAMP_MS:
        raise CTFormatError(f"{source}: timestamp {timestamp} is after the year 9999")
    root = _b64_field(obj, "sha256_root_hash", source)
    if len(root) != _HASH_SIZE:
        raise CTFormatError(
            f"{source}: sha256_root_hash is {len(root)} bytes, a SHA-256 hash is {_HASH_SIZE}"
        )
    signature = _b64_field(obj, "tree_head_signature", source)
    parse_digitally_signed(signature, f"{source}: tree_head_signature")
    return SignedTreeHead(tree_size, timestamp, root, signature)


def verify_tree_head_signature(
    log: Log,
    tree_size: int,
    timestamp_ms: int,
    root_hash: bytes,
    signature: bytes,
    *,
    evidence: dict[str, object] | None = None,
    where: str = "",
) -> None:
    """Verify a ``DigitallySigned`` over the ``TreeHeadSignature`` with ``log``'s key.

    Raises :class:`~pinwarden.errors.LogMisbehaviourError` (``bad-signature``, with
    ``evidence``; ``where`` prefixes the message) when the signature is malformed, uses an
    algorithm that does not match the key, or does not verify;
    :class:`~pinwarden.errors.LogListError` when the log list's key is unusable.
    """

    def bad(message: str) -> LogMisbehaviourError:
        return LogMisbehaviourError("bad-signature", log_name(log), where + message, evidence)

    try:
        hash_algorithm, signature_algorithm, raw = parse_digitally_signed(
            signature, "tree head signature"
        )
    except CTFormatError as exc:
        raise bad(str(exc)) from None
    key = _public_key(log)
    if hash_algorithm != HASH_SHA256:
        raise bad(
            f"tree head signed with hash algorithm {hash_algorithm}, RFC 6962 requires "
            f"SHA-256 ({HASH_SHA256})"
        )
    is_ec = isinstance(key, ec.EllipticCurvePublicKey)
    expected = SIG_ECDSA if is_ec else SIG_RSA
    if signature_algorithm != expected:
        raise bad(
            f"tree head signed with signature algorithm {signature_algorithm}, but the log's "
            f"key is {'ECDSA' if is_ec else 'RSA'} ({expected})"
        )
    data = tree_head_signature_input(tree_size, timestamp_ms, root_hash)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise bad(
            f"the signature of the tree head of size {tree_size} (timestamp {timestamp_ms}) "
            "does not verify with the log's key"
        ) from None


def verify_sth(sth: SignedTreeHead, log: Log, *, max_tree_size: int = MAX_TREE_SIZE) -> None:
    """Verify an RFC 6962 signed tree head with the log's key; on failure raise
    :class:`~pinwarden.errors.LogMisbehaviourError` (``bad-signature``; ``implausible-size``
    for a head larger than ``max_tree_size``) with the head as evidence."""
    evidence: dict[str, object] = {"tree_head": sth.to_json()}
    verify_tree_head_signature(
        log, sth.tree_size, sth.timestamp_ms, sth.root_hash, sth.signature, evidence=evidence
    )
    _check_size(log, sth.tree_size, max_tree_size, evidence)


def _check_size(log: Log, size: int, limit: int, evidence: dict[str, object]) -> None:
    if size > limit:
        raise LogMisbehaviourError(
            "implausible-size",
            log_name(log),
            f"the log signed a tree of {size} entries, more than any log holds (the limit is "
            f"{limit})",
            evidence,
        )


def digitally_signed(hash_algorithm: int, signature_algorithm: int, signature: bytes) -> bytes:
    """Encode a ``DigitallySigned`` (the inverse of :func:`parse_digitally_signed`)."""
    return u8(hash_algorithm) + u8(signature_algorithm) + vector(signature, 2)


# --- helpers -------------------------------------------------------------------------------


def _json_object(data: bytes | str | Mapping[str, Any], source: str) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    if len(data) > MAX_STH_BYTES:
        raise CTFormatError(f"{source}: larger than {MAX_STH_BYTES} bytes")
    return json_object(data, source)


def _uint64(obj: Mapping[str, Any], key: str, source: str) -> int:
    if key not in obj:
        raise CTFormatError(f"{source}: {key} is missing")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise CTFormatError(f"{source}: {key} is not an integer")
    if not 0 <= value < _UINT64_LIMIT:
        raise CTFormatError(f"{source}: {key} {value} is not in 0..2^64-1")
    return value


def _b64_field(obj: Mapping[str, Any], key: str, source: str) -> bytes:
    if key not in obj:
        raise CTFormatError(f"{source}: {key} is missing")
    value = obj[key]
    if not isinstance(value, str):
        raise CTFormatError(f"{source}: {key} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CTFormatError(f"{source}: {key} is not base64") from None


def _public_key(log: Log) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    try:
        return log.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise LogListError(
            f"log {log_name(log)}: the log list's key is not an ECDSA or RSA public key "
            f"({first_line(exc)})"
        ) from None
