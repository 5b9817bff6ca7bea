"""A verified reader of one CT log, over either API: what the monitor and ``pinwarden ct log``
stand on.

* :meth:`LogReader.latest_verified` fetches the current tree head (signature checked by the
  client) and proves it consistent with the previous verified head: with
  ``get-sth-consistency`` for an RFC 6962 log; for a static-ct-api log by recomputing from tiles
  the compact range at the old size (its root must be the old root) and extending it with the
  subtrees up to the new size (the result must be the new root), so the new root commits to
  the old tree.
* :meth:`LogReader.entries` yields batches of entries only once they are verified: every leaf
  hash is absorbed into a compact range (:class:`~pinwarden.ct.merkle.CompactRange`), whose
  root must be the signed root when it reaches the head's size and, before that, must be
  proved a prefix of the signed tree (a consistency proof, or the tiles' subtrees). For a
  static log each entry of a data tile must also hash to the level-0 tile.

State resumes from ``(position, head, compact range bytes)`` (:class:`ReaderState`), which
every batch carries: the monitor commits it with what it found in the batch. A saved compact
range given to :meth:`LogReader.entries` is checked against the signed tree before the first
entry is fetched; when it is not a prefix of it the error is ``state-mismatch``, not
``wrong-root``: either the saved state is damaged or the log now serves a tree other than the
one the state was built from, and the reader cannot tell which. A monitor should stop reading
that log and alert (state or log inconsistent), not blame the log alone nor silently restart.

Any failed check raises :class:`~pinwarden.errors.LogMisbehaviourError`: ``fork`` (two tree
heads that are not consistent; evidence: both heads and the proof), ``wrong-root`` (entries
or tiles that do not hash to the signed root), ``bad-proof`` (an inclusion proof that does
not verify), ``timestamp-regressed`` (a larger tree head whose timestamp is not later than the
previous head's: RFC 6962 section 3.5 says each new one MUST be more recent; evidence: both
heads), ``future-timestamp`` (a head dated more than ``max_clock_skew`` after the reader's
clock), ``state-mismatch`` (above), and the clients' kinds (``bad-signature``,
``implausible-size``, ``malformed-entry``, ``oversized-response``…).

Why a smaller tree head is not an error by default: logs answer from replicas and caches that
may lag, so a head older than the last one verified is checked for consistency with it and
the newer one kept; an inconsistent one is a ``fork``, and ``allow_older=False`` reports even a
consistent one (``shrunk``).

Where :meth:`LogReader.compact_range_at` starts an RFC 6962 log at a position, it anchors on a
nearby entry the log proves by hash. ``get-proof-by-hash`` may answer another index (the same
leaf logged twice is proved at one copy): that proof must verify at the index claimed, else
``bad-proof``; then the next entry back is tried, as after a 404 for that hash.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, cast

from pinwarden.ct._http import HTTPStatusError
from pinwarden.ct.client import InclusionProof, RFC6962Client, gather
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.logs import Log
from pinwarden.ct.merkle import (
    EMPTY_ROOT,
    CompactRange,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from pinwarden.ct.static import StaticClient, Subtree, tile_width
from pinwarden.ct.tiles import TILE_WIDTH
from pinwarden.ct.treehead import SignedTreeHead
from pinwarden.errors import CTFormatError, InputError, MerkleProofError, NetworkError

__all__ = ["MAX_CLOCK_SKEW", "LogReader", "ReaderState", "VerifiedBatch", "client_for"]

MAX_CLOCK_SKEW = timedelta(hours=1)
"""How far after the reader's clock a tree head's timestamp may be before it is
``future-timestamp`` misbehaviour (clocks drift; an hour is far beyond honest drift)."""

# How far back from a start position to look for an entry the log can prove by hash (a
# duplicate entry is proved at its first index, so that entry cannot anchor the range).
_ANCHOR_TRIES = 8


@dataclass(frozen=True)
class ReaderState:
    """Where a reader is: the next entry to read, the verified head it reads towards and the
    compact range of the entries before ``position`` (:meth:`CompactRange.to_bytes`)."""

    position: int
    head: SignedTreeHead
    compact_range: bytes

    def restore(self) -> CompactRange:
        """The compact range (raises :class:`~pinwarden.errors.CTFormatError` if the saved
        bytes are damaged)."""
        compact = CompactRange.from_bytes(self.compact_range)
        if compact.size != self.position:
            raise CTFormatError(
                f"reader state: compact range of size {compact.size} at position {self.position}"
            )
        return compact


@dataclass(frozen=True)
class VerifiedBatch:
    """Consecutive entries proved to be in the signed tree of ``state.head``, and the state
    after them."""

    entries: tuple[LogEntry, ...]
    state: ReaderState


def client_for(log: Log, **kwargs: Any) -> RFC6962Client | StaticClient:
    """The client that reads ``log``'s API (static-ct-api when the list marks it tiled).
    ``kwargs`` go to the client (``settings``, ``transport``, ``client``…)."""
    if log.tiled:
        return StaticClient(log, **kwargs)
    return RFC6962Client(log, **kwargs)


class LogReader:
    """Verified reading of ``log`` through ``client`` (default: :func:`client_for`).

    ``batch_size`` is the number of entries per verified batch (a multiple of 256 keeps
    static logs' batches aligned to data tiles); each batch costs one proof request on an
    RFC 6962 log. ``clock`` gives the current time (an aware datetime; default: the system
    clock) against which tree-head timestamps are checked, with ``max_clock_skew`` of slack.
    """

    def __init__(
        self,
        log: Log,
        client: RFC6962Client | StaticClient | None = None,
        *,
        batch_size: int = 1024,
        clock: Callable[[], datetime] | None = None,
        max_clock_skew: timedelta = MAX_CLOCK_SKEW,
        **client_kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise InputError("batch_size must be at least 1")
        if max_clock_skew < timedelta(0):
            raise InputError("max_clock_skew must not be negative")
        self.log = log
        self._owns_client = client is None
        self.client = client if client is not None else client_for(log, **client_kwargs)
        self.batch_size = batch_size
        self.clock: Callable[[], datetime] = clock or _utc_now
        self.max_clock_skew = max_clock_skew

    async def __aenter__(self) -> LogReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    # -- tree heads ----------------------------------------------------------------------

    async def latest_verified(
        self,
        previous: SignedTreeHead | None = None,
        *,
        allow_older: bool = True,
        now: datetime | None = None,
    ) -> SignedTreeHead:
        """The log's current tree head, signature verified and proved consistent with
        ``previous`` (a head verified before). A head smaller than ``previous`` that is
        consistent with it returns ``previous`` (see the module docstring), or with
        ``allow_older=False`` raises ``shrunk`` misbehaviour; an inconsistent one is a
        ``fork`` either way. A larger head must be dated later than ``previous``
        (``timestamp-regressed``), and no head more than ``max_clock_skew`` after ``now``
        (default: the reader's clock; ``future-timestamp``)."""
        current = now if now is not None else self.clock()
        if current.tzinfo is None:
            raise InputError("the reader's clock must give aware datetimes (UTC)")
        head = await self.client.latest_head()
        if head.timestamp > current + self.max_clock_skew:
            raise self.client.misbehaviour(
                "future-timestamp",
                f"the tree head of size {head.tree_size} is dated {_iso(head.timestamp)}, "
                f"more than {self.max_clock_skew} after the time here ({_iso(current)})",
                {"tree_head": head.to_json(), "now": _iso(current)},
            )
        if head.tree_size == 0 and not hmac.compare_digest(head.root_hash, EMPTY_ROOT):
            raise self.client.misbehaviour(
                "wrong-root",
                f"the empty tree's root is {EMPTY_ROOT.hex()}, the tree head says "
                f"{head.root_hash.hex()}",
                {"tree_head": head.to_json()},
            )
        if previous is None:
            return head
        if head.tree_size == previous.tree_size:
            if not hmac.compare_digest(head.root_hash, previous.root_hash):
                raise self._fork(
                    previous,
                    head,
                    (),
                    f"two tree heads of size {head.tree_size} have different roots",
                )
            return head if head.timestamp_ms >= previous.timestamp_ms else previous
        if head.tree_size < previous.tree_size:
            await self._prove_consistent(head, previous)
            if not allow_older:
                raise self.client.misbehaviour(
                    "shrunk",
                    f"the log serves a tree head of size {head.tree_size} after one of size "
                    f"{previous.tree_size} (consistent with it: an old head)",
                    {"first": previous.to_json(), "second": head.to_json()},
                )
            return previous
        if head.timestamp_ms <= previous.timestamp_ms:
            raise self.client.misbehaviour(
                "timestamp-regressed",
                f"the tree head of size {head.tree_size} is dated {_iso(head.timestamp)}, not "
                f"after the earlier head of size {previous.tree_size} "
                f"({_iso(previous.timestamp)}); RFC 6962 section 3.5 requires each new tree "
                "head to be more recent",
                {"first": previous.to_json(), "second": head.to_json()},
            )
        await self._prove_consistent(previous, head)
        return head

    async def _prove_consistent(self, old: SignedTreeHead, new: SignedTreeHead) -> None:
        if old.tree_size == 0:
            return
        client = self.client
        if isinstance(client, RFC6962Client):
            proof = await client.get_sth_consistency(old.tree_size, new.tree_size)
            try:
                verify_consistency(
                    old.tree_size, new.tree_size, proof, old.root_hash, new.root_hash
                )
            except MerkleProofError as exc:
                raise self._fork(old, new, proof, str(exc)) from None
            return
        compact = await client.compact_range(old.tree_size, new.tree_size)
        subtrees = await client.subtree_hashes(old.tree_size, new.tree_size, new.tree_size)
        computed = _extend(compact, subtrees)
        if not hmac.compare_digest(computed, new.root_hash):
            raise client.misbehaviour(
                "wrong-root",
                f"the tiles of the tree of size {new.tree_size} give root {computed.hex()}, "
                f"the checkpoint says {new.root_hash.hex()}",
                {"tree_head": new.to_json(), "computed_root": _b64(computed)},
            )
        old_root = compact.root()
        if not hmac.compare_digest(old_root, old.root_hash):
            raise self._fork(
                old,
                new,
                compact.hashes,
                f"the tree of size {new.tree_size} does not contain the tree of size "
                f"{old.tree_size}: its tiles give root {old_root.hex()} at that size, the "
                f"earlier checkpoint says {old.root_hash.hex()}",
            )

    def _fork(
        self, first: SignedTreeHead, second: SignedTreeHead, proof: Sequence[bytes], detail: str
    ) -> Exception:
        return self.client.misbehaviour(
            "fork",
            f"tree heads of sizes {first.tree_size} and {second.tree_size} are not "
            f"consistent: {detail}",
            {
                "first": first.to_json(),
                "second": second.to_json(),
                "proof": [_b64(h) for h in proof],
            },
        )

    # -- compact ranges ------------------------------------------------------------------

    async def check_prefix(self, compact: CompactRange, head: SignedTreeHead) -> None:
        """Prove that the leaves absorbed in ``compact`` are the first ``compact.size``
        leaves of the tree ``head`` signed: equal roots at the head's size, else a
        consistency proof (RFC 6962) or the tiles' subtrees up to the head (static).
        Raises ``wrong-root`` misbehaviour when they are not."""
        await self._check_prefix(compact, head, "wrong-root", "the compact range")

    async def _check_prefix(
        self, compact: CompactRange, head: SignedTreeHead, kind: str, what: str
    ) -> None:
        """:meth:`check_prefix`, failing with ``kind``; ``what`` names the range."""
        size = compact.size
        subject = f"{what} of the first {size} entries"
        if size > head.tree_size:
            raise InputError(f"position {size} is beyond the tree head's size {head.tree_size}")
        evidence: dict[str, object] = {
            "tree_head": head.to_json(),
            "position": size,
            "computed_root": _b64(compact.root()),
        }
        if kind == "state-mismatch":
            evidence["compact_range"] = _b64(compact.to_bytes())
        if size == head.tree_size:
            if not hmac.compare_digest(compact.root(), head.root_hash):
                raise self.client.misbehaviour(
                    kind,
                    f"{subject} hashes to {compact.root().hex()}, the tree head of that "
                    f"size says {head.root_hash.hex()}",
                    evidence,
                )
            return
        if size == 0:
            return
        client = self.client
        if isinstance(client, RFC6962Client):
            proof = await client.get_sth_consistency(size, head.tree_size)
            try:
                verify_consistency(size, head.tree_size, proof, compact.root(), head.root_hash)
            except MerkleProofError as exc:
                evidence["proof"] = [_b64(h) for h in proof]
                raise client.misbehaviour(
                    kind,
                    f"{subject} is not a prefix of the signed tree of size {head.tree_size} "
                    f"(it or the proof is wrong): {exc}",
                    evidence,
                ) from None
            return
        subtrees = await client.subtree_hashes(size, head.tree_size, head.tree_size)
        computed = _extend(compact, subtrees)
        if not hmac.compare_digest(computed, head.root_hash):
            evidence["extended_root"] = _b64(computed)
            raise client.misbehaviour(
                kind,
                f"{subject} extended with the log's tiles gives root "
                f"{computed.hex()}, the checkpoint of size {head.tree_size} says "
                f"{head.root_hash.hex()}",
                evidence,
            )

    async def compact_range_at(self, size: int, head: SignedTreeHead) -> CompactRange:
        """The verified compact range of the first ``size`` leaves of ``head``'s tree,
        without downloading them: from tiles (static), or from the inclusion proof of the
        entry at ``size`` (RFC 6962: the left siblings on a leaf's audit path are exactly
        the compact range before it)."""
        if not 0 <= size <= head.tree_size:
            raise InputError(f"position {size} is outside the tree of size {head.tree_size}")
        client = self.client
        if isinstance(client, StaticClient):
            compact = await client.compact_range(size, head.tree_size)
            await self.check_prefix(compact, head)
            return compact
        if size == 0:
            return CompactRange()
        low = max(0, size - _ANCHOR_TRIES)
        high = min(size + 1, head.tree_size)
        nearby = await client.get_entries(low, high)
        anchors = ([size] if size < head.tree_size else []) + list(range(size - 1, low - 1, -1))
        for anchor in anchors:
            leaf = nearby[anchor - low].leaf_hash
            try:
                proof = await client.get_proof_by_hash(leaf, head.tree_size)
            except HTTPStatusError as exc:
                if exc.status != 404:
                    raise
                continue  # the log does not find this hash: try the entry before
            # Wherever the log says the leaf is, the proof must show it there.
            self._check_inclusion(leaf, proof.leaf_index, proof, head)
            if proof.leaf_index != anchor:
                continue  # a duplicate entry: the log proves another copy
            compact = CompactRange.from_state(
                anchor, _left_siblings(anchor, head.tree_size, proof.audit_path)
            )
            compact.extend(entry.leaf_hash for entry in nearby[anchor - low : size - low])
            if anchor != size:
                await self.check_prefix(compact, head)
            return compact
        raise NetworkError(
            f"log {client.name}: cannot start at entry {size}: the log proves none of entries "
            f"{low}..{min(size, head.tree_size - 1)} at its own index (duplicates, or hashes "
            "it does not find)"
        )

    def _check_inclusion(
        self, leaf: bytes, index: int, proof: InclusionProof, head: SignedTreeHead
    ) -> None:
        try:
            verify_inclusion(leaf, index, head.tree_size, proof.audit_path, head.root_hash)
        except MerkleProofError as exc:
            raise self.client.misbehaviour(
                "bad-proof",
                f"the inclusion proof of entry {index} does not verify: {exc}",
                {
                    "tree_head": head.to_json(),
                    "leaf_index": index,
                    "leaf_hash": _b64(leaf),
                    "audit_path": [_b64(h) for h in proof.audit_path],
                },
            ) from None

    # -- entries -------------------------------------------------------------------------

    async def entries(
        self,
        start: int,
        end: int,
        head: SignedTreeHead,
        compact_range: CompactRange | bytes | None = None,
    ) -> AsyncIterator[VerifiedBatch]:
        """Entries ``start`` to ``end - 1`` of ``head``'s tree, in verified batches.

        ``compact_range`` is the range at ``start`` (saved state; it is copied, never
        changed); None computes it with :meth:`compact_range_at`. A saved range is proved a
        prefix of ``head``'s tree before the first entry is fetched (when there is anything
        to read), else ``state-mismatch`` misbehaviour (see the module docstring). A batch is
        yielded only after its entries are proved part of the signed tree.
        """
        if not 0 <= start <= end <= head.tree_size:
            raise InputError(
                f"entry range {start}..{end} is not inside the tree of size {head.tree_size}"
            )
        if isinstance(compact_range, CompactRange):
            compact = compact_range.copy()
        elif isinstance(compact_range, bytes):
            compact = CompactRange.from_bytes(compact_range)
        else:
            compact = await self.compact_range_at(start, head)
        if compact.size != start:
            raise InputError(f"the compact range has size {compact.size}, not the start {start}")
        if compact_range is not None and start < end:
            # Blame nobody yet: a damaged saved range and a log serving another tree look
            # the same from here.
            await self._check_prefix(compact, head, "state-mismatch", "the saved compact range")
        position = start
        while position < end:
            stop = position - position % TILE_WIDTH + self.batch_size
            stop = min(end, stop if stop > position else position + self.batch_size)
            batch = await self._fetch(position, stop, head)
            for entry in batch:
                compact.append(entry.leaf_hash)
            await self.check_prefix(compact, head)
            position = stop
            yield VerifiedBatch(tuple(batch), ReaderState(position, head, compact.to_bytes()))

    async def _fetch(self, start: int, stop: int, head: SignedTreeHead) -> list[LogEntry]:
        client = self.client
        if isinstance(client, RFC6962Client):
            return await client.get_entries(start, stop)
        tiles = range(start // TILE_WIDTH, (stop - 1) // TILE_WIDTH + 1)
        widths = [tile_width(0, tile, head.tree_size) for tile in tiles]
        pairs = list(zip(tiles, widths, strict=True))
        # One gather for both kinds, so a failure cancels every request of the batch.
        results = await gather(
            [
                *(client.data_tile(t, w) for t, w in pairs),
                *(client.hash_tile(0, t, w) for t, w in pairs),
            ]
        )
        data_tiles = cast("list[list[LogEntry]]", results[: len(pairs)])
        hash_tiles = cast("list[tuple[bytes, ...]]", results[len(pairs) :])
        entries: list[LogEntry] = []
        for tile, tile_entries, tile_hashes in zip(tiles, data_tiles, hash_tiles, strict=True):
            for entry, expected in zip(tile_entries, tile_hashes, strict=True):
                if not start <= entry.index < stop:
                    continue
                if not hmac.compare_digest(entry.leaf_hash, expected):
                    raise client.misbehaviour(
                        "malformed-entry",
                        f"entry {entry.index} of data tile {tile} hashes to "
                        f"{entry.leaf_hash.hex()}, the level-0 tile says {expected.hex()}",
                        {
                            "tree_head": head.to_json(),
                            "index": entry.index,
                            "leaf_hash": _b64(entry.leaf_hash),
                            "tile_hash": _b64(expected),
                        },
                    )
                entries.append(entry)
        return entries


def _left_siblings(index: int, size: int, path: Sequence[bytes]) -> list[bytes]:
    """The audit-path hashes that are left siblings (RFC 9162 section 2.1.3.2's walk), largest
    first: the subtrees covering the leaves before ``index``, i.e. its compact range."""
    fn, sn = index, size - 1
    lefts = []
    for sibling in path:
        if fn & 1 or fn == sn:
            lefts.append(sibling)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        fn, sn = fn >> 1, sn >> 1
    return lefts[::-1]


def _extend(compact: CompactRange, subtrees: Sequence[Subtree]) -> bytes:
    """The root of the tree made of ``compact``'s leaves followed by ``subtrees`` (aligned,
    left to right, as :meth:`StaticClient.subtree_hashes` gives them)."""
    heights = [
        bit for bit in range(compact.size.bit_length() - 1, -1, -1) if compact.size >> bit & 1
    ]
    stack = list(zip(heights, compact.hashes, strict=True))
    for height, _start, digest in subtrees:
        stack.append((height, digest))
        # Two equal subtrees side by side are siblings: the same merge as CompactRange.append.
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (level, right), (_, left) = stack.pop(), stack.pop()
            stack.append((level + 1, node_hash(left, right)))
    if not stack:
        return CompactRange().root()
    root = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
