"""The alerts a session raises about a log itself: ``log-misbehaviour`` (:func:`misbehaved`,
one per kind and episode) and ``log-stalled`` (:func:`check_stall`, one until the log
grows again).

Separate from :mod:`pinwarden.ct.follow` so that the session's failure handling reads as
what happens, and these rules (episodes, dedup keys, payloads) stand on their own.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from pinwarden.ct._alert_text import EVENT_MISBEHAVIOUR, EVENT_STALLED
from pinwarden.ct._follow_state import Context, LogTrack
from pinwarden.ct.dispatch import in_thread
from pinwarden.ct.findings import iso
from pinwarden.ct.store import OutboxEvent
from pinwarden.errors import LogMisbehaviourError, StoreError


def _json_ready(value: object) -> object:
    return json.loads(json.dumps(value, default=str))


async def misbehaved(ctx: Context, track: LogTrack, exc: LogMisbehaviourError) -> None:
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


async def check_stall(ctx: Context, track: LogTrack) -> None:
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
