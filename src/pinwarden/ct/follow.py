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

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

from pinwarden.ct._http import HTTPStatusError
from pinwarden.ct.dispatch import in_thread
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.findings import build_finding, iso, write_files
from pinwarden.ct.logs import Log, LogState
from pinwarden.ct.merkle import CompactRange
from pinwarden.ct.reader import LogReader, VerifiedBatch
from pinwarden.ct.static import StaticClient
from pinwarden.ct.store import Finding, LeaseLostError, OutboxEvent, Store, StoredTreeHead
from pinwarden.ct.tiles import TILE_WIDTH
from pinwarden.ct.treehead import SignedTreeHead, log_name
from pinwarden.ct.verdicts import UNEXPECTED, Judge, names_in_unreadable
from pinwarden.ct.watch import WatchList, WatchMatch
from pinwarden.errors import (
    InputError,
    LogMisbehaviourError,
    NetworkError,
    StoreError,
)

__all__ = ["Context", "LogTrack", "Observer", "Tally", "follow_once", "position_at"]

# The alert kinds (AlertEvent.kind; the hook's EVENT).
EVENT_DISCOVERED = "discovered"
EVENT_MISBEHAVIOUR = "log-misbehaviour"
EVENT_STALLED = "log-stalled"
FROZEN_STATES = frozenset({LogState.READONLY, LogState.RETIRED})
# Beyond this a session hands its log back so that other logs get a turn (daemon mode).
SESSION_SECONDS = 60.0
_MAX_FAILURE_DELAY = 900.0
# Once mode: sessions tried on a log that cannot be read (each with the client's retries).
_ONCE_TRIES = 3
# An unreadable entry bigger than this is searched for names (and matched) in a worker
# thread: a log entry may be 16 MiB, and the event loop serves every log.
_INLINE_SCAN_BYTES = 1 << 16
_ISSUER_CACHE = 64


class FilesError(Exception):
    """A finding's certificate files could not be written (the batch is not committed)."""


class Observer(Protocol):
    """What a session reports to (the monitor's guarded wrapper of its observer)."""

    def log_started(self, log: Log, position: int, tree_size: int) -> None: ...
    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None: ...
    def finding(self, log: Log, verdict: str, new: bool) -> None: ...
    def log_error(self, log: Log, kind: str, message: str) -> None: ...


@dataclass
class Tally:
    """What this run did, for :class:`~pinwarden.ct.monitor.MonitorSummary`.
    ``incomplete``: the logs (by name) whose last session failed on this side, with a
    ``files`` or ``state`` error: their entries were read but not processed."""

    entries: int = 0
    findings_new: int = 0
    unexpected_new: int = 0
    misbehaving: set[str] = field(default_factory=set)
    incomplete: set[str] = field(default_factory=set)


@dataclass
class Context:
    """What every session shares."""

    store: Store
    watch: WatchList
    judge: Judge
    observer: Observer
    channels: tuple[str, ...]
    worker_id: str
    output_dir: Path
    start: str | datetime
    once: bool
    poll_interval: float
    stall_after: timedelta
    clock: Callable[[], datetime]
    new_reader: Callable[[Log], LogReader]
    wake: Callable[[], None]
    tally: Tally = field(default_factory=Tally)


@dataclass
class LogTrack:
    """One log as this process follows it, across sessions."""

    log: Log
    reader: LogReader | None = None
    next_due: float = 0.0
    failures: int = 0
    done: bool = False
    network_failing: bool = False
    alerted: set[str] = field(default_factory=set)
    stalled: bool = False
    last_size: int | None = None
    last_growth: datetime | None = None
    issuers: dict[bytes, bytes] = field(default_factory=dict)
    _head_blob: tuple[SignedTreeHead, bytes] | None = None

    @property
    def name(self) -> str:
        return log_name(self.log)

    @property
    def frozen(self) -> bool:
        return self.log.state in FROZEN_STATES

    def stored_head(self, head: SignedTreeHead) -> StoredTreeHead:
        if self._head_blob is None or self._head_blob[0] != head:
            blob = json.dumps(head.to_json(), sort_keys=True).encode()
            self._head_blob = (head, blob)
        return StoredTreeHead(head.tree_size, head.root_hash, self._head_blob[1])


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
        await _misbehaved(ctx, track, exc)
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
        await _check_stall(ctx, track)
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


def _final_size(log: Log) -> int | None:
    if log.state in FROZEN_STATES and log.final_tree_head is not None:
        return log.final_tree_head.tree_size
    return None


async def _session(ctx: Context, track: LogTrack, deadline: float | None) -> bool:
    """Returns whether the log has more to read (the deadline passed)."""
    log = track.log
    store = ctx.store
    progress = await in_thread(store.progress, log.log_id)
    if progress is None:
        await in_thread(store.register_logs, [log.log_id])
        progress = await in_thread(store.progress, log.log_id)
        assert progress is not None
    final = _final_size(log)
    if final is not None and progress.head is not None and progress.position >= final:
        track.done = True  # read to the end the list froze it at: never contact it again
        return False
    if track.reader is None:
        track.reader = ctx.new_reader(log)
    reader = track.reader
    if progress.head is None:
        head, position, compact = await _start(ctx, track, reader)
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
                await _commit(ctx, track, batch, target)
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


async def _start(
    ctx: Context, track: LogTrack, reader: LogReader
) -> tuple[SignedTreeHead, int, bytes]:
    """Where a log never seen before starts; the state is committed at once, so that a
    restart resumes there instead of choosing again."""
    head = await reader.latest_verified(None)
    final = _final_size(track.log)
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


# -- a verified batch ------------------------------------------------------------------------


async def _commit(ctx: Context, track: LogTrack, batch: VerifiedBatch, target: int) -> None:
    log = track.log
    watch = ctx.watch
    hits: list[tuple[LogEntry, tuple[WatchMatch, ...]]] = []
    # The hot loop: names were read when the entry was parsed; most entries match nothing.
    for entry in batch.entries:
        names = entry.dns_names
        if names:
            # Both spellings: IDNA 2003 maps some Unicode names (faß) where 2008 does not.
            found = watch.matches(names, entry.unicode_names)
        elif entry.error is not None:
            if len(entry.tbs_der) > _INLINE_SCAN_BYTES:
                found = await in_thread(_match_unreadable, watch, entry)
            else:
                found = _match_unreadable(watch, entry)
        else:
            continue
        if found:
            hits.append((entry, found))
    if hits:
        await _complete_chains(track, hits)
    now = ctx.clock()
    findings: list[Finding] = []
    events: list[OutboxEvent] = []
    files: list[tuple[Finding, dict[str, Any]]] = []
    # Concurrently: ca=caa expectations wait on DNS (the judge bounds the lookups).
    judgements = await asyncio.gather(*(ctx.judge.judge(e, f, now) for e, f in hits))
    for (entry, found), judgement in zip(hits, judgements, strict=True):
        finding, payload = build_finding(
            entry,
            found,
            judgement,
            output_dir=ctx.output_dir,
            log_name=track.name,
            log_id=log.log_id_b64,
        )
        findings.append(finding)
        files.append((finding, payload))
        if ctx.channels:
            events.append(
                OutboxEvent(EVENT_DISCOVERED, payload, ctx.channels, finding.tbs_hash, log.log_id)
            )
    state = batch.state
    new, unwritten = await in_thread(
        _write_and_commit,
        ctx.store,
        files,
        log.log_id,
        state.position,
        track.stored_head(state.head),
        state.compact_range,
        findings,
        events,
        ctx.worker_id,
        now,
    )
    if unwritten:
        ctx.observer.log_error(log, "files", unwritten)
    tally = ctx.tally
    tally.entries += len(batch.entries)
    new_hashes = {f.tbs_hash for f in new}
    tally.findings_new += len(new)
    tally.unexpected_new += sum(1 for f in new if f.verdict == UNEXPECTED)
    ctx.observer.batch_done(log, state.position, target, len(batch.entries))
    for finding in findings:
        ctx.observer.finding(log, finding.verdict, finding.tbs_hash in new_hashes)
    if new and events:
        ctx.wake()


def _match_unreadable(watch: WatchList, entry: LogEntry) -> tuple[WatchMatch, ...]:
    return watch.matches(names_in_unreadable(entry))


async def _complete_chains(
    track: LogTrack, hits: list[tuple[LogEntry, tuple[WatchMatch, ...]]]
) -> None:
    """Give the x509 entries of a static log that a CA expectation will judge their
    issuing certificate (a data tile holds only its fingerprint): the judge recognises
    an issuer by its key, checked against that certificate. A log that does not have it
    (a 404) leaves the entry without one: its issuer is then unproven, never assumed."""
    client = track.reader.client if track.reader is not None else None
    if not isinstance(client, StaticClient):
        return
    for position, (entry, found) in enumerate(hits):
        if entry.is_precert or entry.chain_der or not entry.chain_fingerprints:
            continue
        if entry.error is not None or not any(m.item.cas or m.item.ca_from_caa for m in found):
            continue
        fingerprint = entry.chain_fingerprints[0]
        der = track.issuers.get(fingerprint)
        if der is None:
            try:
                der = await client.issuer(fingerprint)  # checked against the fingerprint
            except HTTPStatusError:
                continue
            if len(track.issuers) >= _ISSUER_CACHE:
                track.issuers.clear()
            track.issuers[fingerprint] = der
        hits[position] = (replace(entry, chain_der=(der,)), found)


def _write_and_commit(
    store: Store,
    files: Sequence[tuple[Finding, dict[str, Any]]],
    log_id: bytes,
    position: int,
    head: StoredTreeHead,
    compact: bytes,
    findings: Sequence[Finding],
    events: Sequence[OutboxEvent],
    worker_id: str,
    now: datetime,
) -> tuple[tuple[Finding, ...], str]:
    """Commit the batch; the findings new in it, and why some of their files could not be
    rewritten after the commit ("" when all were)."""
    # Files first: an alert committed with the batch may name them. Only where absent: a
    # certificate seen before keeps the files its alert described.
    kept: set[bytes] = set()
    try:
        for finding, payload in files:
            if not write_files(finding, payload):
                kept.add(finding.tbs_hash)
    except OSError as exc:
        raise FilesError(f"cannot write the certificate files: {exc}") from exc
    new = store.commit_batch(
        log_id, position, head, compact, findings, events, worker_id=worker_id, now=now
    )
    # A finding new in this commit whose files were already there (written by a batch
    # that crashed before its commit): make them say what the committed alert says.
    pending = {finding.tbs_hash for finding in new} & kept
    try:
        for finding, payload in files:
            if finding.tbs_hash in pending:
                pending.discard(finding.tbs_hash)  # the first of several is the one stored
                write_files(finding, payload, replace=True)
    except OSError as exc:
        return new, f"cannot rewrite the certificate files of a new finding: {exc}"
    return new, ""


# -- failures ---------------------------------------------------------------------------------


def _json_ready(value: object) -> object:
    return json.loads(json.dumps(value, default=str))


async def _misbehaved(ctx: Context, track: LogTrack, exc: LogMisbehaviourError) -> None:
    log = track.log
    ctx.tally.misbehaving.add(track.name)
    ctx.observer.log_error(log, exc.kind, str(exc))
    if exc.kind in track.alerted:
        return  # this episode was alerted already: report it, do not repeat it
    if ctx.channels:
        try:
            await _queue_misbehaviour(ctx, track, exc)
        except StoreError:
            return  # not queued: the next failure tries again
    track.alerted.add(exc.kind)


async def _queue_misbehaviour(ctx: Context, track: LogTrack, exc: LogMisbehaviourError) -> None:
    log = track.log
    progress = await in_thread(ctx.store.progress, log.log_id)
    payload = {
        "log": track.name,
        "log_id": log.log_id_b64,
        "kind": exc.kind,
        "message": str(exc),
        "evidence": _json_ready(exc.evidence),
        "position": progress.position if progress is not None else None,
        "verified_tree_size": (
            progress.head.tree_size if progress is not None and progress.head else None
        ),
    }
    # One alert per episode across restarts too: a restarted monitor that meets the same
    # failure at the same stored state does not queue it again.
    key = (
        f"{EVENT_MISBEHAVIOUR}:{log.log_id_b64}:{exc.kind}:"
        f"{payload['position']}:{payload['verified_tree_size']}"
    )
    event = OutboxEvent(EVENT_MISBEHAVIOUR, payload, ctx.channels, log_id=log.log_id, dedup_key=key)
    await in_thread(ctx.store.enqueue, [event], now=ctx.clock())
    ctx.wake()


async def _check_stall(ctx: Context, track: LogTrack) -> None:
    if track.frozen or track.done:
        return
    now = ctx.clock()
    if track.last_growth is None:
        track.last_growth = now
        return
    idle = now - track.last_growth
    if idle < ctx.stall_after or track.stalled:
        return
    how = "could not be read" if track.network_failing else "has not grown"
    message = (
        f"the log {how} for {_duration(idle)} (since {iso(track.last_growth)}; "
        f"last verified tree size {track.last_size if track.last_size is not None else '?'})"
    )
    if ctx.channels:
        try:
            await _queue_stall(ctx, track, message, now)
        except StoreError:
            return  # not queued: the next session tries again
    track.stalled = True
    ctx.observer.log_error(track.log, "stalled", message)


async def _queue_stall(ctx: Context, track: LogTrack, message: str, now: datetime) -> None:
    payload = {
        "log": track.name,
        "log_id": track.log.log_id_b64,
        "kind": "stalled",
        "message": message,
        "since": iso(track.last_growth),
        "tree_size": track.last_size,
    }
    key = f"{EVENT_STALLED}:{track.log.log_id_b64}:{payload['since']}"
    event = OutboxEvent(
        EVENT_STALLED, payload, ctx.channels, log_id=track.log.log_id, dedup_key=key
    )
    await in_thread(ctx.store.enqueue, [event], now=now)
    ctx.wake()


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
