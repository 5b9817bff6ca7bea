"""The bytes the local CT log signs and serves: RFC 6962 MerkleTreeLeaf, TimestampedEntry,
CtExtensions, DigitallySigned and SCT encodings, static-ct-api tile paths and TileLeaf.
Separate from the log's state and its HTTP answers so that each encoding is written once
and can be read next to the specification it follows."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from pinwarden.ct._wire import u8, u16, u64, vector
from pinwarden.ct.sct import SCT, SignedEntryType
from pinwarden.testing._ctlog_tree import Entry
from pinwarden.testing.ca import PrivateKey

__all__ = [
    "MAX_TILE_LEVEL",
    "NOTE_TYPE_RFC6962",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "CTApi",
    "b64",
    "ct_extensions",
    "digitally_sign",
    "leaf_input",
    "make_sct",
    "millis",
    "parse_tile",
    "tile_index_path",
    "tile_leaf",
    "tree_head_input",
    "utc_now",
]

CTApi = Literal["rfc6962", "static"]

TILE_WIDTH = 256  # static-ct-api: full tiles are always 256 hashes wide
TILE_HEIGHT = 8  # log2(TILE_WIDTH): tree levels per tile level
MAX_TILE_LEVEL = 5  # static-ct-api: <L> is between 0 and 5
NOTE_TYPE_RFC6962 = b"\x05"  # c2sp.org/signed-note signature type of RFC6962NoteSignature
_HASH_SHA256 = 4  # RFC 5246 HashAlgorithm
_SIG_RSA, _SIG_ECDSA = 1, 3  # RFC 5246 SignatureAlgorithm


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def millis(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


# -- entries and signatures -------------------------------------------------------------


def ct_extensions(api: CTApi, index: int) -> bytes:
    """CtExtensions: static-ct-api's leaf_index (type 0, a uint40), else none."""
    if api == "static":
        return u8(0) + vector(index.to_bytes(5, "big"), 2)
    return b""


def leaf_input(
    timestamp: int, entry_type: SignedEntryType, signed_entry: bytes, extensions: bytes
) -> bytes:
    """The ``MerkleTreeLeaf`` (RFC 6962 3.4) of a TimestampedEntry: ``signed_entry`` is the
    ASN.1Cert, or the PreCert's issuer_key_hash and TBSCertificate, already encoded."""
    timestamped = u64(timestamp) + u16(entry_type) + signed_entry + vector(extensions, 2)
    return b"\x00\x00" + timestamped  # version v1, leaf_type timestamped_entry


def digitally_sign(key: PrivateKey, data: bytes) -> bytes:
    """RFC 5246 DigitallySigned with SHA-256 and ``key``."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
        algorithm = _SIG_ECDSA
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        algorithm = _SIG_RSA
    return u8(_HASH_SHA256) + u8(algorithm) + vector(signature, 2)


def tree_head_input(timestamp_ms: int, size: int, root: bytes) -> bytes:
    """The TreeHeadSignature a tree head's signature covers (RFC 6962 3.5)."""
    return u8(0) + u8(1) + u64(timestamp_ms) + u64(size) + root


def make_sct(
    log_id: bytes,
    timestamp: int,
    extensions: bytes,
    digitally_signed: bytes,
    entry_type: SignedEntryType,
    api: CTApi,
    index: int,
) -> SCT:
    """The SCT (RFC 6962 3.2) and its TLS encoding."""
    signature = digitally_signed[4:]
    raw = u8(0) + log_id + u64(timestamp) + vector(extensions, 2) + digitally_signed
    return SCT(
        version=0,
        log_id=log_id,
        timestamp_ms=timestamp,
        timestamp=dt.datetime.fromtimestamp(timestamp / 1000, dt.timezone.utc),
        extensions=extensions,
        hash_algorithm=digitally_signed[0],
        signature_algorithm=digitally_signed[1],
        signature=signature,
        entry_type=entry_type,
        leaf_index=index if api == "static" else None,
        raw=raw,
    )


# -- tiles -----------------------------------------------------------------------------

_TILE_INDEX = re.compile(r"((?:x\d{3}/)*)(\d{3})(?:\.p/([1-9]\d{0,2}))?")


def tile_index_path(index: int) -> str:
    """static-ct-api: 1234067 -> ``x001/x234/067``."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def parse_tile(rest: str) -> tuple[int, int | None] | None:
    """(index, partial width or None) of ``x001/x234/067[.p/W]``, None unless canonical."""
    match = _TILE_INDEX.fullmatch(rest)
    if match is None:
        return None
    index = int((match.group(1) + match.group(2)).replace("x", "").replace("/", ""))
    width = int(match.group(3)) if match.group(3) else None
    if width is not None and width >= TILE_WIDTH:
        return None
    if tile_index_path(index) != match.group(1) + match.group(2):
        return None  # non-canonical: leading x000 groups
    return index, width


def tile_leaf(entry: Entry) -> bytes:
    """static-ct-api TileLeaf: TimestampedEntry, [pre_certificate], fingerprints."""
    precert = b"" if entry.precert is None else vector(entry.precert, 3)
    return entry.timestamped_entry + precert + vector(b"".join(entry.chain), 2)
