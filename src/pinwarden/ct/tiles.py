"""static-ct-api tiles (https://c2sp.org/static-ct-api): tile paths, hash tiles and data
tiles.

A log serves its Merkle tree as hash tiles ``tile/<L>/<N>[.p/<W>]`` (up to 256 hashes of 32
bytes each; level 0 holds the leaf hashes) and its entries as data tiles
``tile/data/<N>[.p/<W>]``: a sequence of ``TileLeaf`` records, each a ``TimestampedEntry``
(RFC 6962 section 3.4), then for a precertificate the submitted pre-certificate, then the
SHA-256 fingerprints of the submitted chain. The entries of data tile ``N`` are log entries
``256 * N`` onwards, and their leaf hashes are the hashes of level-0 tile ``N``.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pinwarden.ct._wire import Reader, vector
from pinwarden.ct.entries import (
    MAX_TIMESTAMP_MS,
    LogEntry,
    _build_entry,
    _read_timestamped_entry,
    _TimestampedEntryParts,
    encode_timestamped_entry,
)
from pinwarden.ct.sct import SignedEntryType
from pinwarden.errors import CTFormatError

__all__ = [
    "HASH_SIZE",
    "MAX_DATA_TILE_SIZE",
    "MAX_LEVEL",
    "TILE_WIDTH",
    "TileCoordinates",
    "encode_tile_leaf",
    "parse_data_tile",
    "parse_hash_tile",
    "parse_tile_path",
    "tile_index_path",
    "tile_path",
    "tile_url",
]

TILE_WIDTH = 256
"""Hashes in a full hash tile, entries in a full data tile."""
HASH_SIZE = 32
MAX_LEVEL = 5
"""The highest hash-tile level static-ct-api allows (``<L>`` is 0 to 5)."""
MAX_DATA_TILE_SIZE = 64 << 20
"""The most bytes a data tile may decompress to. Real tiles are about 0.5 MiB; the cap keeps
a hostile gzip stream from filling memory."""

_FINGERPRINT_SIZE = 32
_ISSUER_KEY_HASH_SIZE = 32
_TIMESTAMP_AND_TYPE = struct.Struct(">QH")
_GZIP_MAGIC = b"\x1f\x8b"
# A MerkleTreeLeaf is version v1 (0) and leaf_type timestamped_entry (0) before the
# TimestampedEntry a data tile holds.
_MERKLE_TREE_LEAF_PREFIX = b"\x00\x00"
_TILE_PATH = re.compile(
    r"/?tile/(?P<level>data|0|[1-9][0-9]*)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)

Level = int | Literal["data"]


# -- paths ---------------------------------------------------------------------------------


def tile_index_path(index: int) -> str:
    """A tile index in 3-digit path elements, all but the last prefixed with ``x``:
    ``1234067`` is ``x001/x234/067``, ``5`` is ``005``."""
    if index < 0:
        raise ValueError(f"a tile index must not be negative, got {index}")
    path = f"{index % 1000:03d}"
    while index >= 1000:
        index //= 1000
        path = f"x{index % 1000:03d}/{path}"
    return path


def tile_path(level: Level, index: int, width: int | None = None) -> str:
    """The path of a tile below the log's monitoring prefix, as static-ct-api spells it:
    ``tile/<level>/<index>[.p/<width>]`` — ``tile_path(0, 1234067, 10)`` is
    ``tile/0/x001/x234/067.p/10`` and ``tile_path("data", 5)`` is ``tile/data/005``.

    ``level`` is 0 to 5 for hash tiles or ``"data"`` for data tiles. ``width`` is the number
    of hashes or entries of a partial tile (1 to 255); ``None`` or 256 mean a full tile.
    :func:`tile_index_path` gives the bare ``x001/x234/067`` encoding.
    """
    if level != "data" and (
        isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_LEVEL
    ):
        raise ValueError(f"a tile level is 0 to {MAX_LEVEL} or 'data', got {level!r}")
    path = f"tile/{level}/{tile_index_path(index)}"
    if width is None or width == TILE_WIDTH:
        return path
    if not 1 <= width < TILE_WIDTH:
        raise ValueError(f"a partial tile is 1 to {TILE_WIDTH - 1} wide, got {width}")
    return f"{path}.p/{width}"


def tile_url(monitoring_prefix: str, level: Level, index: int, width: int | None = None) -> str:
    """:func:`tile_path` below ``monitoring_prefix`` (a trailing slash is optional)."""
    return f"{monitoring_prefix.rstrip('/')}/{tile_path(level, index, width)}"


@dataclass(frozen=True)
class TileCoordinates:
    """Where a tile sits: ``level`` (0–5 or ``"data"``), ``index`` and ``width`` (the
    number of hashes or entries it holds, :data:`TILE_WIDTH` for a full tile)."""

    level: Level
    index: int
    width: int = TILE_WIDTH

    @property
    def is_partial(self) -> bool:
        return self.width != TILE_WIDTH

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)


def parse_tile_path(path: str) -> TileCoordinates:
    """Read a tile path (``tile/0/x001/234.p/7``, with or without a leading ``/``): the
    inverse of :func:`tile_path`. Only the canonical spelling is accepted (no leading
    zeroes, no ``x000`` elements), so each tile has one path.

    Raises :class:`~pinwarden.errors.CTFormatError` for anything else.
    """
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        raise CTFormatError(f"tile path {path!r}: not tile/<L>/<N>[.p/<W>]")
    level_text, index_text, width_text = match.group("level", "index", "width")
    level: Level = "data" if level_text == "data" else int(level_text)
    if level != "data" and level > MAX_LEVEL:
        raise CTFormatError(f"tile path {path!r}: level {level} is above {MAX_LEVEL}")
    index = int(index_text.replace("x", "").replace("/", ""))
    if tile_index_path(index) != index_text:
        raise CTFormatError(f"tile path {path!r}: index {index} is not written canonically")
    width = TILE_WIDTH if width_text is None else int(width_text)
    if width_text is not None and width >= TILE_WIDTH:
        raise CTFormatError(f"tile path {path!r}: a partial tile is at most 255 wide")
    return TileCoordinates(level, index, width)


# -- hash tiles ------------------------------------------------------------------------------


def parse_hash_tile(
    data: bytes, *, width: int | None = None, source: str = "hash tile"
) -> list[bytes]:
    """The 32-byte hashes of a hash tile (1 to 256 of them; exactly ``width`` when given).

    Hash tiles are not gzip-sniffed: their first bytes are a hash and may be anything
    (HTTP ``Content-Encoding`` is the transport's business).
    """
    size = len(data)
    if size == 0:
        raise CTFormatError(f"{source}: empty (logs must not serve empty tiles)")
    if size % HASH_SIZE:
        raise CTFormatError(f"{source}: {size} bytes is not a whole number of 32-byte hashes")
    count = size // HASH_SIZE
    if count > TILE_WIDTH:
        raise CTFormatError(f"{source}: {count} hashes, a tile holds at most {TILE_WIDTH}")
    if width is not None and count != width:
        raise CTFormatError(f"{source}: {count} hashes, expected {width}")
    raw = bytes(data)
    return [raw[offset : offset + HASH_SIZE] for offset in range(0, size, HASH_SIZE)]


# -- data tiles ------------------------------------------------------------------------------


def parse_data_tile(
    data: bytes,
    start_index: int = 0,
    *,
    width: int | None = None,
    source: str = "data tile",
    max_size: int = MAX_DATA_TILE_SIZE,
) -> list[LogEntry]:
    """The entries of a data tile, gzip-compressed (detected by its magic bytes ``1f 8b``,
    which no valid raw tile starts with: as the first timestamp they would be some 70
    million years from now, past the year 9999 an entry may hold) or not.

    ``start_index`` is the index of the first entry (``256 * N`` for tile ``N``);
    ``width`` the number of entries expected (1 to 256; ``None`` accepts any). Each
    entry's ``leaf_hash`` is that of the ``MerkleTreeLeaf`` rebuilt from its
    ``TimestampedEntry``: compare it with level-0 hash tile ``N``. A static-ct-api client
    should also compare each entry's ``leaf_index`` extension with its ``index``.

    Raises :class:`~pinwarden.errors.CTFormatError` naming ``source``, the entry index and
    the field for a malformed tile (a certificate cryptography refuses is not malformed:
    see :class:`~pinwarden.ct.entries.LogEntry`).
    """
    if start_index < 0:
        raise ValueError(f"start_index must not be negative, got {start_index}")
    raw = bytes(data)
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw, max_size, source)
    if not raw:
        raise CTFormatError(f"{source}: empty (logs must not serve empty tiles)")
    entries: list[LogEntry] = []
    size = len(raw)
    pos = 0
    while pos < size:
        index = start_index + len(entries)
        if len(entries) == TILE_WIDTH:
            raise CTFormatError(
                f"{source}: more than {TILE_WIDTH} entries ({size - pos} bytes left)"
            )
        begin = pos
        leaf = _split_tile_leaf(raw, pos, size) or _read_tile_leaf(raw, pos, index, source)
        parts, leaf_end, pre_certificate, chain, pos = leaf
        entries.append(
            _build_entry(
                index,
                parts,
                _MERKLE_TREE_LEAF_PREFIX + raw[begin:leaf_end],
                certificate_der=pre_certificate,
                chain_fingerprints=tuple(
                    [
                        chain[i : i + _FINGERPRINT_SIZE]
                        for i in range(0, len(chain), _FINGERPRINT_SIZE)
                    ]
                ),
                chain_der=(),
                extra_data=raw[leaf_end:pos],
            )
        )
    if width is not None and len(entries) != width:
        raise CTFormatError(f"{source}: {len(entries)} entries, expected {width}")
    return entries


# One TileLeaf split up: its TimestampedEntry's fields, where the TimestampedEntry ends, the
# pre-certificate (precert entries), the fingerprints, and where the next leaf starts.
_TileLeaf = tuple[_TimestampedEntryParts, int, bytes | None, bytes, int]


def _split_tile_leaf(raw: bytes, pos: int, size: int) -> _TileLeaf | None:
    """The fast path over a well-formed ``TileLeaf`` at ``pos``: plain slicing with every
    length checked, ``None`` at the first thing amiss (then :func:`_read_tile_leaf` reads
    the same bytes field by field and says what is wrong). Measured at a quarter of the
    cost of the field-by-field reader, which matters at a log's millions of entries."""
    if pos + 13 > size:
        return None
    timestamp_ms, raw_type = _TIMESTAMP_AND_TYPE.unpack_from(raw, pos)
    pos += 10
    if raw_type == SignedEntryType.PRECERT:
        entry_type = SignedEntryType.PRECERT
        issuer_key_hash: bytes | None = raw[pos : pos + _ISSUER_KEY_HASH_SIZE]
        pos += _ISSUER_KEY_HASH_SIZE
        if pos + 3 > size:
            return None
    elif raw_type == SignedEntryType.X509:
        entry_type = SignedEntryType.X509
        issuer_key_hash = None
    else:
        return None
    length = int.from_bytes(raw[pos : pos + 3], "big")
    body = raw[pos + 3 : pos + 3 + length]
    pos += 3 + length
    if length == 0 or pos + 2 > size:
        return None
    length = raw[pos] << 8 | raw[pos + 1]
    extensions = raw[pos + 2 : pos + 2 + length]
    pos += 2 + length
    leaf_end = pos
    pre_certificate = None
    if issuer_key_hash is not None:
        if pos + 3 > size:
            return None
        length = int.from_bytes(raw[pos : pos + 3], "big")
        pre_certificate = raw[pos + 3 : pos + 3 + length]
        pos += 3 + length
        if length == 0:
            return None
    if pos + 2 > size:
        return None
    length = raw[pos] << 8 | raw[pos + 1]
    chain = raw[pos + 2 : pos + 2 + length]
    pos += 2 + length
    if pos > size or length % _FINGERPRINT_SIZE or timestamp_ms > MAX_TIMESTAMP_MS:
        return None
    parts = _TimestampedEntryParts(timestamp_ms, entry_type, body, issuer_key_hash, extensions)
    return parts, leaf_end, pre_certificate, chain, pos


def _read_tile_leaf(raw: bytes, pos: int, index: int, source: str) -> _TileLeaf:
    """The ``TileLeaf`` at ``pos`` read field by field: raises
    :class:`~pinwarden.errors.CTFormatError` naming the entry and the field."""
    where = f"{source} entry {index}"
    reader = Reader(raw, f"{where}: TileLeaf")
    reader.fixed(pos, "the entries before")
    parts = _read_timestamped_entry(reader, where)
    leaf_end = reader.offset
    pre_certificate = None
    if parts.entry_type is SignedEntryType.PRECERT:
        pre_certificate = reader.vector(3, "pre_certificate", minimum=1)
    chain = reader.vector(2, "certificate_chain")
    if len(chain) % _FINGERPRINT_SIZE:
        raise CTFormatError(
            f"{where}: certificate_chain is {len(chain)} bytes, "
            "not a whole number of 32-byte fingerprints"
        )
    return parts, leaf_end, pre_certificate, chain, reader.offset


def _gunzip(data: bytes, limit: int, source: str) -> bytes:
    """Decompress one or more gzip members, refusing more than ``limit`` bytes of output."""
    out = bytearray()
    rest = data
    while rest:
        if rest[:2] != _GZIP_MAGIC:
            raise CTFormatError(f"{source}: {len(rest)} bytes after the gzip data")
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += decompressor.decompress(rest, limit - len(out) + 1)
        except zlib.error as exc:
            raise CTFormatError(f"{source}: bad gzip data: {exc}") from None
        if len(out) > limit or decompressor.unconsumed_tail:
            raise CTFormatError(f"{source}: decompresses to more than {limit} bytes")
        if not decompressor.eof:
            raise CTFormatError(f"{source}: truncated gzip data")
        rest = decompressor.unused_data
    return bytes(out)


def encode_tile_leaf(
    timestamp_ms: int,
    body: bytes,
    *,
    issuer_key_hash: bytes | None = None,
    pre_certificate: bytes | None = None,
    chain_fingerprints: Sequence[bytes] = (),
    extensions: bytes = b"",
) -> bytes:
    """One ``TileLeaf``, the inverse of :func:`parse_data_tile` (a data tile is these
    concatenated): an x509 entry for the certificate ``body``, or with ``issuer_key_hash``
    and ``pre_certificate`` a precertificate entry for the TBSCertificate ``body``.
    ``extensions`` is the ``CtExtensions`` contents (see
    :func:`~pinwarden.ct.entries.encode_leaf_index_extension`)."""
    if (issuer_key_hash is None) != (pre_certificate is None):
        raise ValueError("a precertificate entry needs both issuer_key_hash and pre_certificate")
    if any(len(fingerprint) != _FINGERPRINT_SIZE for fingerprint in chain_fingerprints):
        raise ValueError("chain fingerprints are SHA-256 hashes of 32 bytes")
    leaf = encode_timestamped_entry(
        timestamp_ms, body, issuer_key_hash=issuer_key_hash, extensions=extensions
    )
    if pre_certificate is not None:
        leaf += vector(pre_certificate, 3)
    return leaf + vector(b"".join(chain_fingerprints), 2)
