"""A verifying async client for static-ct-api ("tiled") CT logs
(https://c2sp.org/static-ct-api): ``<monitoring prefix>/checkpoint``, hash tiles
``tile/<L>/<N>[.p/<W>]``, data tiles ``tile/data/<N>[.p/<W>]`` and ``issuer/<sha256 hex>``.

The checkpoint is verified with the log-list key on receipt. Tiles are returned parsed and
their shape checked (width, leaf indices, an issuer hashing to its fingerprint); whether they
hash to a signed root is checked by :mod:`pinwarden.ct.reader`, which uses
:meth:`StaticClient.subtree_hashes` to compute any subtree of the tree from the fewest tiles
(a static log serves no proofs: clients compute them from tiles).

A partial tile that is gone (404) is replaced by the full tile's prefix, as the spec allows
logs to delete partial tiles once the full one exists. Hash tiles are immutable, so recent
ones are cached.

Work is bounded: checkpoints above :data:`~pinwarden.ct.treehead.MAX_TREE_SIZE` are refused
(``implausible-size``), and one :meth:`StaticClient.subtree_hashes` call fetches at most
:data:`MAX_SUBTREE_TILES` tiles (below that size any range needs at most one tile per
subtree, about 80).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from typing import Any

from pinwarden.ct._http import HTTPStatusError
from pinwarden.ct.client import LogClient, gather
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.logs import Log
from pinwarden.ct.merkle import CompactRange
from pinwarden.ct.tiles import MAX_LEVEL, TILE_WIDTH, parse_data_tile, parse_hash_tile, tile_path
from pinwarden.ct.treehead import MAX_TREE_SIZE, SignedTreeHead, verify_checkpoint
from pinwarden.errors import CTFormatError, InputError

__all__ = ["MAX_SUBTREE_TILES", "StaticClient", "Subtree", "tile_width"]

MAX_SUBTREE_TILES = 256
"""The most hash tiles one :meth:`StaticClient.subtree_hashes` call fetches. In a tree of up
to :data:`~pinwarden.ct.treehead.MAX_TREE_SIZE` leaves each aligned subtree lies in one tile,
so a range needs at most about 80; without a bound, a validly signed checkpoint of size 2^63
would make one consistency check fetch 32768 level-5 tiles."""

Subtree = tuple[int, int, bytes]
"""``(height, start, hash)``: the perfect subtree of ``2**height`` leaves from ``start``."""

_TileKey = tuple[int, int, int]


def tile_width(level: int, index: int, tree_size: int) -> int:
    """How many hashes tile ``index`` of ``level`` holds in a tree of ``tree_size`` leaves
    (256 for a full tile); 0 when the tree has no such tile."""
    count = tree_size >> (8 * level)
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def _decompose(start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` as maximal aligned perfect subtrees ``(height, start)``, left to
    right: the nodes a compact range or a consistency check needs."""
    parts = []
    position = start
    while position < end:
        height = (end - position).bit_length() - 1
        if position:
            height = min(height, (position & -position).bit_length() - 1)
        parts.append((height, position))
        position += 1 << height
    return parts


class StaticClient(LogClient):
    """A static-ct-api log read below its monitoring prefix.

    ``origin`` overrides the checkpoint origin expected (default: the submission prefix,
    or the monitoring prefix, without scheme; see
    :func:`~pinwarden.ct.treehead.expected_origins`). ``tile_cache`` is the number of hash
    tiles kept.
    """

    api = "static"

    def __init__(
        self, log: Log, *, origin: str | None = None, tile_cache: int = 512, **kwargs: Any
    ) -> None:
        super().__init__(log, **kwargs)
        self.origin = origin
        self._cache: OrderedDict[_TileKey, tuple[bytes, ...]] = OrderedDict()
        self._cache_size = tile_cache

    async def latest_head(self) -> SignedTreeHead:
        return await self.checkpoint()

    async def checkpoint(self) -> SignedTreeHead:
        """The current checkpoint as a tree head, its signature verified."""
        path = "checkpoint"
        fetched = await self.fetch(path)
        try:
            return verify_checkpoint(
                fetched.body, self.log, origin=self.origin, source="checkpoint"
            )
        except CTFormatError as exc:
            raise self.malformed(
                "malformed-tree-head", exc, path, fetched.body, url=fetched.url
            ) from exc

    async def hash_tile(
        self, level: int, index: int, width: int | None = None
    ) -> tuple[bytes, ...]:
        """The hashes of hash tile ``index`` at ``level`` (``width`` of them for a partial
        tile, 256 by default)."""
        full = width is None or width == TILE_WIDTH
        want = TILE_WIDTH if width is None else width
        key = (level, index, want)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        path = tile_path(level, index, None if full else want)
        try:
            fetched = await self.fetch(path)
        except HTTPStatusError as exc:
            if full or exc.status != 404:
                raise
            path = tile_path(level, index)
            fetched = await self.fetch(path)
            want_full = True
        else:
            want_full = full
        try:
            hashes = parse_hash_tile(
                fetched.body, width=TILE_WIDTH if want_full else want, source=path
            )
        except CTFormatError as exc:
            raise self.malformed("malformed-tile", exc, path, b"", url=fetched.url) from exc
        result = tuple(hashes[:want])
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    async def data_tile(self, index: int, width: int | None = None) -> list[LogEntry]:
        """The entries of data tile ``index`` (log entries ``256 * index`` onwards; ``width``
        of them for a partial tile). Each entry's ``leaf_index`` extension, when present,
        must equal its index."""
        full = width is None or width == TILE_WIDTH
        want = TILE_WIDTH if width is None else width
        path = tile_path("data", index, None if full else want)
        try:
            fetched = await self.fetch(path)
        except HTTPStatusError as exc:
            if full or exc.status != 404:
                raise
            path = tile_path("data", index)
            fetched = await self.fetch(path)
            full = True
        start = index * TILE_WIDTH
        try:
            entries = parse_data_tile(
                fetched.body,
                start,
                width=TILE_WIDTH if full else want,
                source=path,
            )
        except CTFormatError as exc:
            raise self.malformed(
                "malformed-entry", exc, path, b"", url=fetched.url, index=index
            ) from exc
        entries = entries[:want]
        for entry in entries:
            if entry.leaf_index is not None and entry.leaf_index != entry.index:
                raise self.misbehaviour(
                    "malformed-entry",
                    f"entry {entry.index} of {path} says it is leaf {entry.leaf_index}",
                    {"url": fetched.url, "index": entry.index},
                )
        return entries

    async def issuer(self, fingerprint: bytes) -> bytes:
        """The DER issuer certificate with this SHA-256 fingerprint (checked)."""
        path = f"issuer/{fingerprint.hex()}"
        fetched = await self.fetch(path)
        body = fetched.body
        if not hmac.compare_digest(hashlib.sha256(body).digest(), fingerprint):
            raise self.misbehaviour(
                "bad-issuer",
                f"{path} serves a certificate whose SHA-256 is {hashlib.sha256(body).hexdigest()}",
                {"url": fetched.url},
            )
        return body

    async def subtree_hashes(self, start: int, end: int, tree_size: int) -> list[Subtree]:
        """The hashes of the maximal aligned perfect subtrees covering leaves
        ``[start, end)`` of the tree of ``tree_size`` leaves, from its tiles (a size for which
        a checkpoint was verified: its partial tiles exist). Not verified here: combine them
        and compare with a signed root. Raises :class:`~pinwarden.errors.InputError` for a
        tree larger than :data:`~pinwarden.ct.treehead.MAX_TREE_SIZE` or a range needing more
        than :data:`MAX_SUBTREE_TILES` tiles, before any request."""
        if not 0 <= start <= end <= tree_size:
            raise InputError(f"subtree range {start}..{end} is not inside a tree of {tree_size}")
        if tree_size > MAX_TREE_SIZE:
            raise InputError(
                f"tree size {tree_size} is larger than pinwarden reads ({MAX_TREE_SIZE})"
            )
        plan = []
        needed: dict[_TileKey, None] = {}
        for height, position in _decompose(start, end):
            level = min(height // 8, MAX_LEVEL)
            first = position >> (8 * level)
            count = 1 << (height - 8 * level)
            plan.append((height, position, level, first, count))
            for tile in range(first // TILE_WIDTH, (first + count - 1) // TILE_WIDTH + 1):
                needed[(level, tile, tile_width(level, tile, tree_size))] = None
                if len(needed) > MAX_SUBTREE_TILES:
                    raise InputError(
                        f"subtree range {start}..{end} of a tree of {tree_size} needs more "
                        f"than {MAX_SUBTREE_TILES} tiles"
                    )
        tiles = dict(
            zip(
                needed,
                await gather(self.hash_tile(lv, ix, w) for lv, ix, w in needed),
                strict=True,
            )
        )
        result: list[Subtree] = []
        for height, position, level, first, count in plan:
            hashes: list[bytes] = []
            for tile in range(first // TILE_WIDTH, (first + count - 1) // TILE_WIDTH + 1):
                content = tiles[(level, tile, tile_width(level, tile, tree_size))]
                low = max(first, tile * TILE_WIDTH) - tile * TILE_WIDTH
                high = min(first + count, (tile + 1) * TILE_WIDTH) - tile * TILE_WIDTH
                hashes.extend(content[low:high])
            # count is a power of two, so the "root" of these hashes is the subtree's hash.
            result.append((height, position, CompactRange.from_leaves(hashes).root()))
        return result

    async def compact_range(self, size: int, tree_size: int) -> CompactRange:
        """The compact range at ``size`` built from the tiles of the tree of ``tree_size``
        leaves (unverified: check it against a signed root)."""
        subtrees = await self.subtree_hashes(0, size, tree_size)
        return CompactRange.from_state(size, [digest for _, _, digest in subtrees])
