"""Where the monitor starts reading a log it has never seen (:func:`start`): at its end, at
entry 0, or at a date found by bisecting verified timestamps (:func:`position_at`).

Separate from :mod:`pinwarden.ct.follow` because it runs once per log, before the first
session reads anything; :mod:`pinwarden.ct.follow` re-exports :func:`position_at`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from typing import cast

from pinwarden.ct._follow_state import Context, LogTrack, final_size
from pinwarden.ct.dispatch import in_thread
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.reader import LogReader, VerifiedBatch
from pinwarden.ct.static import StaticClient
from pinwarden.ct.tiles import TILE_WIDTH
from pinwarden.ct.treehead import SignedTreeHead


async def start(
    ctx: Context, track: LogTrack, reader: LogReader
) -> tuple[SignedTreeHead, int, bytes]:
    """Where a log never seen before starts; the state is committed at once, so that a
    restart resumes there instead of choosing again."""
    head = await reader.latest_verified(None)
    final = final_size(track.log)
    end = head.tree_size if final is None else min(final, head.tree_size)
    if ctx.start == "start":
        position = 0
    elif ctx.start == "end":
        position = end
    else:
        assert isinstance(ctx.start, datetime)
        position = min(end, await position_at(reader, head, ctx.start, track.log.mmd))
    compact = (await reader.compact_range_at(position, head)).to_bytes()
    now = ctx.clock()
    await in_thread(
        ctx.store.commit_batch,
        track.log.log_id,
        position,
        track.stored_head(head),
        compact,
        (),
        (),
        worker_id=ctx.worker_id,
        now=now,
    )
    track.last_size = head.tree_size
    track.last_growth = now
    return head, position, compact


async def position_at(reader: LogReader, head: SignedTreeHead, when: datetime, mmd: int) -> int:
    """The first index whose entry timestamp is at least ``when - mmd`` seconds, by
    bisection. Why ``- mmd``: a log gives an entry its index when it integrates it, at
    most MMD after its timestamp. Bisection ends at an index ``i`` whose predecessor it
    read with a timestamp before ``when - mmd``: that entry was integrated before ``when``,
    so every entry timestamped ``when`` or later (integrated after ``when``) comes after it.
    That holds however unordered the timestamps are, if the log keeps its MMD.

    Every entry read is first proved to be in ``head``'s tree (:meth:`LogReader.entries`:
    one entry of an RFC 6962 log, the whole data tile of a static one), so the timestamps
    are the ones the log signed; a log serving others raises its misbehaviour."""
    target_ms = int((when - timedelta(seconds=mmd)).timestamp() * 1000)
    static = isinstance(reader.client, StaticClient)
    verified: dict[int, list[LogEntry]] = {}

    async def timestamp(index: int) -> int:
        start = index - index % TILE_WIDTH if static else index
        if start not in verified:
            end = min(start + TILE_WIDTH, head.tree_size) if static else index + 1
            batches = cast("AsyncGenerator[VerifiedBatch, None]", reader.entries(start, end, head))
            async with contextlib.aclosing(batches):
                verified[start] = [entry async for batch in batches for entry in batch.entries]
        return verified[start][index - start].timestamp_ms

    low, high = 0, head.tree_size
    while low < high:
        middle = (low + high) // 2
        if await timestamp(middle) < target_ms:
            low = middle + 1
        else:
            high = middle
    return low
