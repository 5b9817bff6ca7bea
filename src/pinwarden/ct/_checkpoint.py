"""static-ct-api checkpoints: parsing, verifying and writing the C2SP signed note in which a
static-ct-api log publishes its tree head.

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

Separate from :mod:`pinwarden.ct._sth` because the note is a text format of its own; the
signature inside it is the RFC 6962 one, verified there. :mod:`pinwarden.ct.treehead`
re-exports the public names, their documented home.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pinwarden.ct._json_text import b64
from pinwarden.ct._sth import (
    _HASH_SIZE,
    _MAX_TIMESTAMP_MS,
    _UINT64_LIMIT,
    MAX_TREE_SIZE,
    SignedTreeHead,
    _check_size,
    log_name,
    parse_digitally_signed,
    verify_tree_head_signature,
)
from pinwarden.ct._wire import Reader, u64
from pinwarden.ct.logs import Log
from pinwarden.errors import CTFormatError, LogMisbehaviourError

MAX_CHECKPOINT_BYTES = 1 << 20
"""Larger notes are refused before parsing (a checkpoint is a few hundred bytes)."""
MAX_NOTE_SIGNATURES = 100
"""The signed-note spec asks verifiers to accept at least 16; Go's note.Open caps at 100."""

_NOTE_TYPE_RFC6962 = b"\x05"
_EM_DASH_PREFIX = "\u2014 "
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


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
    body = f"{origin}\n{sth.tree_size}\n{b64(sth.root_hash)}\n"
    signature = checkpoint_key_id(origin, log_id) + u64(sth.timestamp_ms) + sth.signature
    return f"{body}\n{_EM_DASH_PREFIX}{origin} {b64(signature)}\n"


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
