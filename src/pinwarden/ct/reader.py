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

The checks on what the client serves (consistency, prefixes, inclusion proofs, data tiles
against hash tiles) are functions in :mod:`~pinwarden.ct._reader_checks`; here is the reader's
state and the order in which it runs them.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pinwarden.ct._closing import AsyncClosing
from pinwarden.ct._http import HTTPStatusError
from pinwarden.ct._json_text import iso_ms
from pinwarden.ct._reader_checks import _extend as _extend
from pinwarden.ct._reader_checks import _left_siblings as _left_siblings
from pinwarden.ct._reader_checks import (
    check_inclusion,
    fetch_entries,
    fork,
    prove_consistent,
    prove_prefix,
)
from pinwarden.ct.client import RFC6962Client
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.logs import Log
from pinwarden.ct.merkle import EMPTY_ROOT, CompactRange
from pinwarden.ct.static import StaticClient
from pinwarden.ct.tiles import TILE_WIDTH
from pinwarden.ct.treehead import SignedTreeHead
from pinwarden.errors import CTFormatError, InputError, NetworkError

__all__ = ["MAX_CLOCK_SKEW", "LogReader", "ReaderState", "VerifiedBatch", "client_for"]
# _extend and _left_siblings stay importable from here (the tests exercise them).

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


class LogReader(AsyncClosing):
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
                f"the tree head of size {head.tree_size} is dated {iso_ms(head.timestamp)}, "
                f"more than {self.max_clock_skew} after the time here ({iso_ms(current)})",
                {"tree_head": head.to_json(), "now": iso_ms(current)},
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
                raise fork(
                    self.client,
                    previous,
                    head,
                    (),
                    f"two tree heads of size {head.tree_size} have different roots",
                )
            return head if head.timestamp_ms >= previous.timestamp_ms else previous
        if head.tree_size < previous.tree_size:
            await prove_consistent(self.client, head, previous)
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
                f"the tree head of size {head.tree_size} is dated {iso_ms(head.timestamp)}, not "
                f"after the earlier head of size {previous.tree_size} "
                f"({iso_ms(previous.timestamp)}); RFC 6962 section 3.5 requires each new tree "
                "head to be more recent",
                {"first": previous.to_json(), "second": head.to_json()},
            )
        await prove_consistent(self.client, previous, head)
        return head

    # -- compact ranges ------------------------------------------------------------------

    async def check_prefix(self, compact: CompactRange, head: SignedTreeHead) -> None:
        """Prove that the leaves absorbed in ``compact`` are the first ``compact.size``
        leaves of the tree ``head`` signed: equal roots at the head's size, else a
        consistency proof (RFC 6962) or the tiles' subtrees up to the head (static).
        Raises ``wrong-root`` misbehaviour when they are not."""
        await prove_prefix(self.client, compact, head, "wrong-root", "the compact range")

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
            check_inclusion(client, leaf, proof.leaf_index, proof, head)
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
            await prove_prefix(
                self.client, compact, head, "state-mismatch", "the saved compact range"
            )
        position = start
        while position < end:
            stop = position - position % TILE_WIDTH + self.batch_size
            stop = min(end, stop if stop > position else position + self.batch_size)
            batch = await fetch_entries(self.client, position, stop, head)
            for entry in batch:
                compact.append(entry.leaf_hash)
            await self.check_prefix(compact, head)
            position = stop
            yield VerifiedBatch(tuple(batch), ReaderState(position, head, compact.to_bytes()))


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)
