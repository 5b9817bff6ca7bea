"""Signed tree heads: RFC 6962 ``get-sth`` JSON and static-ct-api checkpoints, parsed strictly
and verified with the log's key from the log list.

Both forms carry the same signature: a TLS ``DigitallySigned`` over the RFC 6962 section 3.5
``TreeHeadSignature`` (version v1, signature_type tree_hash, timestamp, tree_size, root), made
with ECDSA P-256 / SHA-256 or RSA PKCS#1 v1.5 / SHA-256.

A checkpoint (https://c2sp.org/tlog-checkpoint) is a C2SP signed note
(https://c2sp.org/signed-note) that a static-ct-api log (https://c2sp.org/static-ct-api) signs
with an ``RFC6962NoteSignature``; :mod:`~pinwarden.ct._checkpoint` describes the format.

Hand-written: no maintained Python library parses signed notes or RFC 6962 tree heads (the
reference implementations are Go: golang.org/x/mod/sumdb/note and filippo.io/sunlight).
Parsers raise :class:`~pinwarden.errors.CTFormatError` naming the field or the line; the verify
functions raise :class:`~pinwarden.errors.LogMisbehaviourError` (``bad-signature``,
``wrong-origin``, ``malformed-tree-head``, ``implausible-size``) with what the log served as
evidence.

A validly signed head is still refused when its size is above :data:`MAX_TREE_SIZE`: a log
can sign any size, and a reader that believed 2^63 would spend its memory and bandwidth on
tiles and proofs for a tree that cannot exist.

This module is the public face; the code is in private modules by form:
:mod:`~pinwarden.ct._sth` (the RFC 6962 tree head, its signature and ``get-sth``) and
:mod:`~pinwarden.ct._checkpoint` (checkpoints, which build on it).
"""

from __future__ import annotations

from pinwarden.ct._checkpoint import (
    MAX_CHECKPOINT_BYTES,
    Checkpoint,
    NoteSignature,
    checkpoint_key_id,
    checkpoint_origin,
    expected_origins,
    format_checkpoint,
    parse_checkpoint,
    verify_checkpoint,
)
from pinwarden.ct._checkpoint import MAX_NOTE_SIGNATURES as MAX_NOTE_SIGNATURES
from pinwarden.ct._sth import (
    HASH_SHA256,
    MAX_TREE_SIZE,
    SIG_ECDSA,
    SIG_RSA,
    SignedTreeHead,
    digitally_signed,
    log_name,
    parse_digitally_signed,
    parse_sth,
    tree_head_signature_input,
    verify_sth,
    verify_tree_head_signature,
)
from pinwarden.ct._sth import MAX_STH_BYTES as MAX_STH_BYTES

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
# MAX_STH_BYTES and MAX_NOTE_SIGNATURES stay importable from here too, as before the split.
