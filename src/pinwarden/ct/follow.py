"""One CT log, followed by the monitor: a *session* reads the log's verified tree head, the
verified entries up to it, and commits each batch with what it found.

The invariant: the store's position for a log only moves with a batch the reader proved
to be in a signed tree (:class:`~pinwarden.ct.reader.LogReader`), and only in the one
transaction that also records the batch's findings and their alerts
(:meth:`~pinwarden.ct.store.Store.commit_batch`). A crash anywhere replays at most the
batch in progress; the store keeps one finding per TBS hash and queues its alert only
when the finding is new, so a replay neither repeats nor loses an alert.

Where a new log starts (``start``): ``"end"`` at the size of its verified tree head
(nothing before is read); ``"start"`` at entry 0; a datetime ``D`` at the position found
by bisecting the entries' timestamps for ``D - MMD`` (:func:`position_at`). Each entry the
bisection reads is proved part of the verified tree head first (the reader's verified
batches), so a log cannot steer the start with made-up timestamps; it can still give its
real entries timestamps that are out of order, which only MMD bounds.

The certificate files of a finding (:func:`~pinwarden.ct.findings.write_files`) are written
before the batch is committed, so that an alert never names a file that is not there. A
file that cannot be written (a full disk, an output directory that is a file) fails the
session as a ``files`` error: reported, the position not moved, retried later like a log
that could not be read. Files are written once per certificate: a later sighting (another
log, a replay) leaves them as the alert described them.

What a session does with failures: a :class:`~pinwarden.errors.LogMisbehaviourError`
(bad signature, wrong root, fork, bad proof, malformed entry) queues one
``log-misbehaviour`` alert per kind and *episode* (until the log is read successfully
again), with the evidence of the first failure; the log's position is not moved and the
log is retried later. A :class:`~pinwarden.errors.NetworkError` is retried with backoff.
A log whose tree head has not grown (or that could not be read) for ``stall_after``
raises one ``log-stalled`` alert until it grows again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from typing import cast

from pinwarden.ct._alert_text import EVENT_DISCOVERED as EVENT_DISCOVERED
from pinwarden.ct._alert_text import EVENT_MISBEHAVIOUR as EVENT_MISBEHAVIOUR
from pinwarden.ct._alert_text import EVENT_STALLED as EVENT_STALLED
from pinwarden.ct._follow_alerts import check_stall, misbehaved
from pinwarden.ct._follow_batch import commit
from pinwarden.ct._follow_start import position_at, start
from pinwarden.ct._follow_state import FROZEN_STATES as FROZEN_STATES
from pinwarden.ct._follow_state import SESSION_SECONDS as SESSION_SECONDS
from pinwarden.ct._follow_state import (
    Context,
    FilesError,
    LogTrack,
    Observer,
    Tally,
    final_size,
)
from pinwarden.ct.dispatch import in_thread
from pinwarden.ct.merkle import CompactRange
from pinwarden.ct.reader import VerifiedBatch
from pinwarden.ct.store import LeaseLostError
from pinwarden.ct.treehead import SignedTreeHead
from pinwarden.errors import (
    InputError,
    LogMisbehaviourError,
    NetworkError,
    StoreError,
)

__all__ = ["Context", "LogTrack", "Observer", "Tally", "follow_once", "position_at"]

_MAX_FAILURE_DELAY = 900.0
# Once mode: sessions tried on a log that cannot be read (each with the client's retries).
_ONCE_TRIES = 3


async def follow_once(ctx: Context, track: LogTrack, *, deadline: float | None) -> None:
    """One session on ``track``'s log (module docstring). Sets ``track.next_due`` (and
    ``done`` in once mode, or for a frozen log at its end). Raises only
    :class:`~pinwarden.errors.StoreError` (not for a lost lease), and only in once mode."""
    log = track.log
    succeeded = False
    try:
        more = await _session(ctx, track, deadline)
        succeeded = True
    except LogMisbehaviourError as exc:
        await misbehaved(ctx, track, exc)
        # Once mode: what a log served is not retried in the same run (a retry would
        # mostly see the same thing); the daemon retries after the backoff.
        track.done = track.done or ctx.once
    except NetworkError as exc:
        track.network_failing = True
        ctx.observer.log_error(log, "network", str(exc))
    except InputError as exc:
        # Saved state that no longer reads (a damaged store), or an impossible position.
        ctx.tally.incomplete.add(track.name)
        ctx.observer.log_error(log, "state", str(exc))
    except FilesError as exc:
        # Nothing committed: the batch is read again once the files can be written.
        ctx.tally.incomplete.add(track.name)
        ctx.observer.log_error(log, "files", str(exc))
    except LeaseLostError:
        # Another worker has the log now (this one was too slow to renew): leave it.
        track.next_due = time.monotonic() + ctx.poll_interval
        return
    except StoreError as exc:
        if ctx.once:
            raise  # the run cannot complete: let the caller report it
        # The daemon rides out a store that is down for a while (PostgreSQL restarting).
        ctx.observer.log_error(log, "store", str(exc))
    finally:
        await check_stall(ctx, track)
    if succeeded:
        ctx.tally.incomplete.discard(track.name)
        track.failures = 0
        track.network_failing = False
        track.alerted.clear()
        track.next_due = time.monotonic() + (0.0 if more else ctx.poll_interval)
        if ctx.once and not more:
            track.done = True
        return
    track.failures += 1
    if ctx.once and track.failures >= _ONCE_TRIES:
        track.done = True
    delay = ctx.poll_interval * 2 ** min(track.failures - 1, 10)
    if ctx.once:
        delay = min(delay, 2.0 ** (track.failures - 1))
    track.next_due = time.monotonic() + min(delay, max(ctx.poll_interval, _MAX_FAILURE_DELAY))


async def _session(ctx: Context, track: LogTrack, deadline: float | None) -> bool:
    """Returns whether the log has more to read (the deadline passed)."""
    log = track.log
    store = ctx.store
    progress = await in_thread(store.progress, log.log_id)
    if progress is None:
        await in_thread(store.register_logs, [log.log_id])
        progress = await in_thread(store.progress, log.log_id)
        assert progress is not None
    final = final_size(log)
    if final is not None and progress.head is not None and progress.position >= final:
        track.done = True  # read to the end the list froze it at: never contact it again
        return False
    if track.reader is None:
        track.reader = ctx.new_reader(log)
    reader = track.reader
    if progress.head is None:
        head, position, compact = await start(ctx, track, reader)
    elif progress.compact_range is None:
        raise InputError(f"the saved state of log {track.name} has no compact range")
    else:
        head = SignedTreeHead.from_json(progress.head.blob, source=f"saved head of {track.name}")
        position, compact = progress.position, progress.compact_range
        if track.last_size is None:
            # The stall clock survives restarts: the last commit is the last growth seen.
            track.last_size = head.tree_size
            track.last_growth = progress.updated_at or ctx.clock()
    latest = await reader.latest_verified(head)
    if track.last_size is None or latest.tree_size > track.last_size:
        track.last_growth = ctx.clock()
        track.last_size = latest.tree_size
        track.stalled = False
    target = latest.tree_size if final is None else min(final, latest.tree_size)
    ctx.observer.log_started(log, position, target)
    if position < target:
        batches = cast(
            "AsyncGenerator[VerifiedBatch, None]",
            reader.entries(position, target, latest, compact),
        )
        async with contextlib.aclosing(batches):
            async for batch in batches:
                if final is not None and batch.state.position == final:
                    # Before the commit: a log that does not end where the list froze it
                    # must not be marked as read to its end.
                    _check_final(track, batch.state.compact_range, final, latest)
                await commit(ctx, track, batch, target)
                position, compact = batch.state.position, batch.state.compact_range
                if deadline is not None and position < target and time.monotonic() > deadline:
                    return True
    if final is not None and position >= final:
        track.done = True
    elif track.frozen and final is None:
        track.done = True  # frozen without a final head in the list: read to today's head
    return False


def _check_final(track: LogTrack, compact: bytes, final: int, head: SignedTreeHead) -> None:
    frozen = track.log.final_tree_head
    assert frozen is not None
    root = CompactRange.from_bytes(compact).root()
    if root != frozen.sha256_root_hash:
        raise LogMisbehaviourError(
            "wrong-root",
            track.name,
            f"the first {final} entries hash to {root.hex()}, the log list's final tree head "
            f"says {frozen.sha256_root_hash.hex()}",
            {"tree_head": head.to_json(), "final_tree_size": final},
        )
