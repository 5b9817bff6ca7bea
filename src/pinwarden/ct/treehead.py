"""Signed tree heads: RFC 6962 ``get-sth`` JSON and static-ct-api checkpoints, parsed strictly
and verified with the log's key from the log list.

Both forms carry the same signature: a TLS ``DigitallySigned`` over the RFC 6962 section 3.5
``TreeHeadSignature`` (version v1, signature_type tree_hash, timestamp, tree_size, root), made
with ECDSA P-256 / SHA-256 or RSA PKCS#1 v1.5 / SHA-256.

A checkpoint (https://c2sp.org/tlog-checkpoint) is a C2SP signed note
(https://c2sp.org/signed-note)::

    <origin>
    <tree size>
    <base64 root hash>

    — <key name> <base64(key ID[4] || signature)>

and a static-ct-api log (https://c2sp.org/static-ct-api) signs it with an
``RFC6962NoteSignature``: key name = origin = the log's submission prefix without scheme and
trailing slash, key ID = ``SHA-256(name || 0x0A || 0x05 || LogID)[:4]`` where LogID is the
SHA-256 of the log's DER SubjectPublicKeyInfo, signature = ``uint64 timestamp ||
DigitallySigned``. Signature lines by other keys (witnesses, other key types) are ignored, as
the signed-note spec requires; the note is rejected when the log's own signature is missing or
does not verify.

Hand-written: no maintained Python library parses signed notes or RFC 6962 tree heads (the
reference implementations are Go: golang.org/x/mod/sumdb/note and filippo.io/sunlight).
Parsers raise :class:`~pinwarden.errors.CTFormatError` naming the field or the line; the verify
functions raise :class:`~pinwarden.errors.LogMisbehaviourError` (``bad-signature``,
``wrong-origin``, ``malformed-tree-head``, ``implausible-size``) with what the log served as
evidence.

A validly signed head is still refused when its size is above :data:`MAX_TREE_SIZE`: a log
can sign any size, and a reader that believed 2^63 would spend its memory and bandwidth on
tiles and proofs for a tree that cannot exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pinwarden.ct._wire import Reader, u8, u64, vector
from pinwarden.ct.logs import Log
from pinwarden.errors import CTFormatError, LogListError, LogMisbehaviourError

__all__ = [
    "HASH_SHA256",
    "MAX_CHECKPOINT_BYTES",
    "MAX_TREE_SIZE",
    "SIG_ECDSA",
    "SIG_RSA",
    "Checkpoint",
    "NoteSignature",
    "SignedTreeHead",
    "checkpoint_key_id",
    "checkpoint_origin",
    "digitally_signed",
    "expected_origins",
    "format_checkpoint",
    "log_name",
    "parse_checkpoint",
    "parse_digitally_signed",
    "parse_sth",
    "tree_head_signature_input",
    "verify_checkpoint",
    "verify_sth",
    "verify_tree_head_signature",
]

HASH_SHA256 = 4
"""``HashAlgorithm.sha256`` (RFC 5246 section 7.4.1.4.1)."""
SIG_RSA = 1
"""``SignatureAlgorithm.rsa``."""
SIG_ECDSA = 3
"""``SignatureAlgorithm.ecdsa``."""

MAX_CHECKPOINT_BYTES = 1 << 20
"""Larger notes are refused before parsing (a checkpoint is a few hundred bytes)."""
MAX_STH_BYTES = 1 << 20
MAX_NOTE_SIGNATURES = 100
"""The signed-note spec asks verifiers to accept at least 16; Go's note.Open caps at 100."""
MAX_TREE_SIZE = 1 << 40
"""The largest tree size a verified tree head may have (about 1.1 trillion entries; the
largest logs in 2026 hold a few billion, about 2^32). A larger, validly signed head is
``implausible-size`` misbehaviour."""

_VERSION_V1 = 0
_SIGNATURE_TYPE_TREE_HASH = 1
_NOTE_TYPE_RFC6962 = b"\x05"
_EM_DASH_PREFIX = "\u2014 "
_HASH_SIZE = 32
_UINT64_LIMIT = 1 << 64
# 9999-12-31T23:59:59.999Z: later timestamps cannot be a real tree head and do not fit datetime.
_MAX_TIMESTAMP_MS = 253_402_300_799_999
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


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
            "timestamp_iso": _iso(self.timestamp),
            "sha256_root_hash": _b64(self.root_hash),
            "tree_head_signature": _b64(self.signature),
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


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note; ``line`` is its 1-based line number."""

    name: str
    key_id: bytes
    signature: bytes
    line: int


@dataclass(frozen=True)
class Checkpoint:
    """A parsed, not yet verified, checkpoint. ``text`` is the signed note text (the body with
    its final newline); ``extensions`` the optional lines after the root hash."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    signatures: tuple[NoteSignature, ...]
    text: str
    raw: str


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


def checkpoint_origin(url: str) -> str:
    """The checkpoint origin of a log prefix: the URL without scheme and trailing slashes
    (``https://rome.ct.example.com/2024h1/`` → ``rome.ct.example.com/2024h1``)."""
    parts = urlsplit(url.strip())
    rest = parts.netloc + parts.path if parts.scheme and parts.netloc else url.strip()
    return rest.rstrip("/")


def expected_origins(log: Log) -> tuple[str, ...]:
    """The origins a checkpoint of ``log`` may carry.

    static-ct-api says the origin is the *submission* prefix without scheme; the origin line is
    not covered by the RFC 6962 signature (only the key ID binds it), so the monitoring prefix
    is accepted too, for logs and list entries that use it (same prefix for both is common).
    """
    found: list[str] = []
    for url in (log.submission_url, log.monitoring_url, log.url):
        if url:
            origin = checkpoint_origin(url)
            if origin and origin not in found:
                found.append(origin)
    return tuple(found)


def checkpoint_key_id(name: str, log_id: bytes) -> bytes:
    """static-ct-api: ``SHA-256(key name || 0x0A || 0x05 || LogID)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _NOTE_TYPE_RFC6962 + log_id).digest()[:4]


def parse_checkpoint(data: bytes | str, *, source: str = "checkpoint") -> Checkpoint:
    """Parse a checkpoint (a C2SP signed note with a tlog-checkpoint body) without verifying
    it. Strict: valid UTF-8, no control characters but newline, a final newline, a blank line
    before the signatures, signature lines ``— <name> <base64>`` with a name free of spaces
    and ``+`` and at least 4 key-ID bytes, at most :data:`MAX_NOTE_SIGNATURES` of them; a body
    of origin, decimal tree size (no leading zeros), base64 32-byte root and non-empty
    extension lines. Errors name the line."""
    if isinstance(data, str):
        text = data
        if len(text) > MAX_CHECKPOINT_BYTES:
            raise CTFormatError(f"{source}: larger than {MAX_CHECKPOINT_BYTES} characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CTFormatError(
                f"{source}: not valid Unicode text (character {exc.start})"
            ) from None
    else:
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise CTFormatError(f"{source}: larger than {MAX_CHECKPOINT_BYTES} bytes")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CTFormatError(f"{source}: not UTF-8 (byte {exc.start})") from None
    control = _CONTROL.search(text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        raise CTFormatError(
            f"{source}: line {line}: control character {control.group()!r} (only newlines "
            "are allowed in a signed note)"
        )
    if not text.endswith("\n"):
        raise CTFormatError(f"{source}: does not end with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise CTFormatError(f"{source}: no blank line between the checkpoint and its signatures")
    body = text[: split + 1]
    signature_block = text[split + 2 :]
    body_lines = body[:-1].split("\n")
    first_signature_line = len(body_lines) + 2
    signatures = _parse_signature_lines(signature_block, first_signature_line, source)
    origin, tree_size, root, extensions = _parse_checkpoint_body(body_lines, source)
    return Checkpoint(origin, tree_size, root, extensions, signatures, body, text)


def verify_checkpoint(
    data: bytes | str,
    log: Log,
    *,
    origin: str | None = None,
    source: str | None = None,
    max_tree_size: int = MAX_TREE_SIZE,
) -> SignedTreeHead:
    """Parse and verify a static-ct-api checkpoint with ``log``'s key; return its tree head.

    ``origin`` overrides the expected origin (default: :func:`expected_origins`). Raises
    :class:`~pinwarden.errors.CTFormatError` when the note cannot be parsed, and
    :class:`~pinwarden.errors.LogMisbehaviourError` when its origin is not the log's
    (``wrong-origin``), when it has no signature by the log's key or one that does not verify
    (``bad-signature``), when an RFC 6962 note signature comes with extension lines it
    cannot cover (``malformed-tree-head``), or when its verified size is larger than
    ``max_tree_size`` (``implausible-size``).
    """
    name = log_name(log)
    checkpoint = parse_checkpoint(data, source=source or f"{name}: checkpoint")
    evidence: dict[str, object] = {"checkpoint": checkpoint.raw}
    allowed = (origin,) if origin is not None else expected_origins(log)
    if checkpoint.origin not in allowed:
        raise LogMisbehaviourError(
            "wrong-origin",
            name,
            f"checkpoint origin {checkpoint.origin!r} is not this log's "
            f"({' or '.join(repr(o) for o in allowed) or 'no URL in the log list'})",
            evidence,
        )
    key_id = checkpoint_key_id(checkpoint.origin, log.log_id)
    ours = [s for s in checkpoint.signatures if s.name == checkpoint.origin and s.key_id == key_id]
    if not ours:
        raise LogMisbehaviourError(
            "bad-signature",
            name,
            f"the checkpoint has no signature by the log's key (name {checkpoint.origin!r}, "
            f"key ID {key_id.hex()}) among its {len(checkpoint.signatures)} signature line(s)",
            evidence,
        )
    if checkpoint.extensions:
        raise LogMisbehaviourError(
            "malformed-tree-head",
            name,
            "the checkpoint has extension lines, which an RFC 6962 note signature does not "
            "cover (static-ct-api forbids them)",
            evidence,
        )
    heads: list[SignedTreeHead] = []
    # Every signature by the log's key must verify (signed-note: a failed known-key
    # signature rejects the whole note), not just the first.
    for signature in ours:
        try:
            reader = Reader(signature.signature, f"line {signature.line}: RFC6962NoteSignature")
            timestamp = reader.u64("timestamp")
            rest = reader.fixed(reader.remaining, "signature")
            parse_digitally_signed(rest, f"line {signature.line}: RFC6962NoteSignature")
        except CTFormatError as exc:
            raise LogMisbehaviourError("bad-signature", name, str(exc), evidence) from None
        if timestamp > _MAX_TIMESTAMP_MS:
            raise LogMisbehaviourError(
                "bad-signature",
                name,
                f"line {signature.line}: timestamp {timestamp} is after the year 9999",
                evidence,
            )
        verify_tree_head_signature(
            log,
            checkpoint.tree_size,
            timestamp,
            checkpoint.root_hash,
            rest,
            evidence=evidence,
            where=f"line {signature.line}: ",
        )
        heads.append(
            SignedTreeHead(
                checkpoint.tree_size,
                timestamp,
                checkpoint.root_hash,
                rest,
                checkpoint.origin,
                checkpoint.raw,
            )
        )
    _check_size(log, checkpoint.tree_size, max_tree_size, {"tree_head": heads[0].to_json()})
    return heads[0]


def format_checkpoint(sth: SignedTreeHead, origin: str, log_id: bytes) -> str:
    """The checkpoint of ``sth`` signed by the log with ``log_id`` (no private key needed:
    static-ct-api notes that a ``get-sth`` response converts to a checkpoint and back)."""
    body = f"{origin}\n{sth.tree_size}\n{_b64(sth.root_hash)}\n"
    signature = checkpoint_key_id(origin, log_id) + u64(sth.timestamp_ms) + sth.signature
    return f"{body}\n{_EM_DASH_PREFIX}{origin} {_b64(signature)}\n"


def digitally_signed(hash_algorithm: int, signature_algorithm: int, signature: bytes) -> bytes:
    """Encode a ``DigitallySigned`` (the inverse of :func:`parse_digitally_signed`)."""
    return u8(hash_algorithm) + u8(signature_algorithm) + vector(signature, 2)


# --- helpers -------------------------------------------------------------------------------


def _parse_signature_lines(block: str, first_line: int, source: str) -> tuple[NoteSignature, ...]:
    if not block:
        raise CTFormatError(f"{source}: no signature lines after the blank line")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise CTFormatError(
            f"{source}: {len(lines)} signature lines, at most {MAX_NOTE_SIGNATURES} accepted"
        )
    signatures: list[NoteSignature] = []
    for offset, line in enumerate(lines):
        number = first_line + offset
        if not line.startswith(_EM_DASH_PREFIX):
            raise CTFormatError(
                f"{source}: line {number}: a signature line starts with an em dash (U+2014) "
                "and a space"
            )
        fields = line[len(_EM_DASH_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise CTFormatError(
                f"{source}: line {number}: a signature line is '— <key name> <base64>'"
            )
        name, encoded = fields
        if not name or "+" in name or any(c.isspace() for c in name):
            raise CTFormatError(
                f"{source}: line {number}: key name {name!r} is empty or has a space or '+'"
            )
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CTFormatError(f"{source}: line {number}: signature is not base64") from None
        if len(raw) < 5:
            raise CTFormatError(
                f"{source}: line {number}: signature is {len(raw)} bytes, shorter than a key "
                "ID and a signature"
            )
        signatures.append(NoteSignature(name, raw[:4], raw[4:], number))
    return tuple(signatures)


def _parse_checkpoint_body(
    lines: list[str], source: str
) -> tuple[str, int, bytes, tuple[str, ...]]:
    if len(lines) < 3:
        raise CTFormatError(
            f"{source}: the checkpoint body has {len(lines)} line(s); origin, tree size and "
            "root hash are required"
        )
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise CTFormatError(f"{source}: line 1: the origin is empty")
    if not _DECIMAL.fullmatch(size_text) or len(size_text) > 20:
        raise CTFormatError(
            f"{source}: line 2: tree size {size_text[:40]!r} is not a decimal number without "
            "leading zeros"
        )
    tree_size = int(size_text)
    if tree_size >= _UINT64_LIMIT:
        raise CTFormatError(f"{source}: line 2: tree size {tree_size} does not fit 64 bits")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise CTFormatError(f"{source}: line 3: root hash is not base64") from None
    if len(root) != _HASH_SIZE:
        raise CTFormatError(
            f"{source}: line 3: root hash is {len(root)} bytes, a SHA-256 hash is {_HASH_SIZE}"
        )
    for offset, extension in enumerate(extensions):
        if not extension:
            raise CTFormatError(f"{source}: line {4 + offset}: empty extension line")
    return origin, tree_size, root, tuple(extensions)


def _json_object(data: bytes | str | Mapping[str, Any], source: str) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    if len(data) > MAX_STH_BYTES:
        raise CTFormatError(f"{source}: larger than {MAX_STH_BYTES} bytes")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CTFormatError(f"{source}: not JSON ({_first_line(exc)})") from None
    if not isinstance(obj, dict):
        raise CTFormatError(f"{source}: not a JSON object")
    return obj


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
            f"({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
