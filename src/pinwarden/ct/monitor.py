"""The CT monitor engine: follows every usable log of a log list, finds the certificates
for the watched names, judges them and alerts — without ever losing or repeating one.

>>> monitor = Monitor(MonitorConfig(watch=WatchList.load("watch.txt"), log_list=logs,
...                                 store_url="sqlite:///monitor.sqlite3", once=True))
>>> summary = asyncio.run(monitor.run())

**Which logs.** Those whose state is qualified, usable, read-only or retired (and logs
without a state, as a custom list has them); read-only and retired logs only up to the
final tree head the list gives (its root is checked), or, without one, up to their tree
head at the first session of this process. Pending and rejected logs are not followed.
The list is reloaded every ``log_list_reload`` seconds through ``reload_log_list``: new
logs are registered and followed, logs gone or rejected stop.

**How.** Each log is worked on in *sessions* (:mod:`pinwarden.ct.follow`), at most
``parallel_logs`` at once, each with up to ``parallel_fetches`` requests in flight
(the log client's ``concurrency``; it overrides that field of ``client_settings``). A
session first leases its log from the store, so that monitors sharing a PostgreSQL store
split the logs; leases are renewed every ``lease_ttl / 3`` and released when the session
ends. A session reads up to the log's current verified head (the daemon hands the log
back after a minute of reading, so that other logs get their turn), then the log is polled
again ``poll_interval`` later. On start the monitor releases the leases and the alert
claims its own ``worker_id`` still holds from an earlier life (so ``worker_id`` must be
unique among running monitors; the default, ``host:pid:random``, is unique but not kept
across restarts). A due log leased by another worker is asked for again a few seconds
later; in once mode the monitor waits for it up to ``lease_ttl``, then gives up on it and
names it in :attr:`MonitorSummary.leased_logs`.

**Stranded alerts.** Alerts queued for a channel this monitor does not have (the
``--alert`` options changed, a webhook URL was rotated) are never delivered by it: they
are counted on start, reported to the observer (``alerts_stranded``) and in
:attr:`MonitorSummary.alerts_stranded`.

**Findings and alerts.** Each verified batch is matched against the watch list on the
names read when the entries were parsed; each match is judged
(:mod:`pinwarden.ct.verdicts`), its certificate PEM and a JSON details file are written
to ``output_dir/<tbs[:2]>/<tbs>.pem|.json``, and the batch is committed with its findings
and their alerts in one transaction; then the :class:`~pinwarden.ct.dispatch.Dispatcher`
delivers (at least once, with a stable alert ID). The CLI's exit codes follow
:class:`MonitorSummary`.

**Observer calls** (:class:`MonitorObserver`): ``log_started`` at the start of each
session (every poll) with the position and the tree size it reads to; ``batch_done`` after
each commit; ``finding`` for each finding of a committed batch (``new``: first seen, so
alerted); ``log_error`` with a misbehaviour kind, ``network``, ``stalled``, ``state`` (the
saved state of the log does not read), ``store`` (the store failed; daemon mode goes on) or
``leased`` (once mode: another worker holds the log); ``alert_delivered`` after each
delivery attempt; ``alerts_stranded`` (optional) on start.

**Stopping.** :meth:`Monitor.stop` (from a signal handler) makes :meth:`Monitor.run`
return its summary after the batches in progress are committed and the leases released;
cancelling ``run()`` does the same cleanup and re-raises the cancellation
(:meth:`Monitor.summary` still reads the counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, cast

from pinwarden.ct._http import HTTPSettings
from pinwarden.ct._monitor_types import (
    FOLLOWED_STATES,
    GuardedObserver,
    MonitorConfig,
    MonitorObserver,
    MonitorSummary,
    default_output_dir,
    default_worker,
    is_followed,
    now_utc,
)
from pinwarden.ct.dispatch import Dispatcher, in_thread
from pinwarden.ct.follow import SESSION_SECONDS, Context, LogTrack, follow_once
from pinwarden.ct.logs import Log, LogList
from pinwarden.ct.reader import LogReader
from pinwarden.ct.store import Store, open_store
from pinwarden.ct.verdicts import Judge
from pinwarden.errors import InputError, PinwardenError

__all__ = [
    "FOLLOWED_STATES",
    "Monitor",
    "MonitorConfig",
    "MonitorObserver",
    "MonitorSummary",
    "default_output_dir",
    "is_followed",
    "now_utc",
]

_MAX_WAIT = 5.0
_SETTLE_SECONDS = 10.0


def _client_kwargs(settings: Any, parallel_fetches: int) -> dict[str, Any]:
    if settings is None:
        kwargs: dict[str, Any] = {}
    elif isinstance(settings, HTTPSettings):
        kwargs = {"settings": settings}
    elif isinstance(settings, Mapping):
        kwargs = dict(settings)
    else:
        raise InputError(
            f"client_settings must be HTTPSettings or a mapping of client arguments, not "
            f"{type(settings).__name__}"
        )
    base = kwargs.get("settings") or HTTPSettings()
    kwargs["settings"] = replace(base, concurrency=parallel_fetches)
    return kwargs


class Monitor:
    """Runs the monitor described by ``config``, reporting to ``observer``."""

    def __init__(self, config: MonitorConfig, observer: MonitorObserver | None = None) -> None:
        self.config = config
        self.worker_id = config.worker_id or default_worker()
        self.output_dir = config.output_dir or default_output_dir(config.store_url)
        self._observer = GuardedObserver(observer)
        self._client_kwargs = _client_kwargs(config.client_settings, config.parallel_fetches)
        self._tracks: dict[bytes, LogTrack] = {}
        self._sessions: dict[asyncio.Task[None], LogTrack] = {}
        self._ctx: Context | None = None
        self._dispatcher: Dispatcher | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._logs_followed: set[bytes] = set()
        # Once mode: since when each due log has been found leased by another worker, and
        # the logs given up on.
        self._lease_waits: dict[bytes, float] = {}
        self._leased: set[bytes] = set()
        self._stranded: dict[str, int] = {}

    # -- control ------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to finish: batches in progress are committed, leases released,
        and ``run()`` returns the summary. Safe to call from a signal handler."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    def summary(self) -> MonitorSummary:
        ctx = self._ctx
        tally = ctx.tally if ctx is not None else None
        unreachable = sorted(
            t.name
            for t in self._tracks.values()
            if t.network_failing and t.log.log_id in self._logs_followed
        )
        return MonitorSummary(
            logs=len(self._logs_followed),
            entries=tally.entries if tally else 0,
            findings_new=tally.findings_new if tally else 0,
            unexpected_new=tally.unexpected_new if tally else 0,
            misbehaving_logs=tuple(sorted(tally.misbehaving)) if tally else (),
            unreachable_logs=tuple(unreachable),
            alerts_pending=len(self._dispatcher.failed) if self._dispatcher else 0,
            leased_logs=tuple(
                sorted(
                    t.name
                    for log_id, t in self._tracks.items()
                    if log_id in self._leased and log_id in self._logs_followed
                )
            ),
            alerts_stranded=sum(self._stranded.values()),
            incomplete_logs=tuple(sorted(tally.incomplete)) if tally else (),
        )

    # -- the run ------------------------------------------------------------------------

    async def run(self) -> MonitorSummary:
        config = self.config
        self._tracks, self._sessions, self._logs_followed = {}, {}, set()
        self._lease_waits, self._leased, self._stranded = {}, set(), {}
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        opening = asyncio.ensure_future(asyncio.to_thread(open_store, config.store_url))
        try:
            store = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # Stopped while the store was opening: close it once it is open, never leak it.
            with contextlib.suppress(Exception):
                (await opening).close()
            raise
        try:
            # Before the dispatcher claims anything in this worker's name.
            await self._release_own(store)
            await self._count_stranded(store)
        except BaseException:
            with contextlib.suppress(Exception):
                await in_thread(store.close)
            raise
        dispatcher = Dispatcher(
            store,
            config.channels,
            worker_id=self.worker_id,
            clock=config.clock,
            on_delivery=self._observer.alert_delivered,
            claim=config.alert_claim,
        )
        self._dispatcher = dispatcher
        self._ctx = Context(
            store=store,
            watch=config.watch,
            judge=Judge(nameservers=config.caa_nameservers, identities=config.ca_identities),
            observer=self._observer,
            channels=tuple(channel.name for channel in config.channels),
            worker_id=self.worker_id,
            output_dir=self.output_dir,
            start=config.start,
            once=config.once,
            poll_interval=config.poll_interval,
            stall_after=config.stall_after,
            clock=config.clock,
            new_reader=self._new_reader,
            wake=dispatcher.wake,
        )
        delivering = asyncio.ensure_future(dispatcher.run())
        renewing = asyncio.ensure_future(self._renew())
        try:
            await self._apply(config.log_list)
            await self._schedule()
            if config.once and not self._stop.is_set():
                dispatcher.close()
                await delivering
                await dispatcher.drain()
        finally:
            await self._shutdown(store, delivering, renewing)
            self._stop_requested = False
        return self.summary()

    def _new_reader(self, log: Log) -> LogReader:
        return LogReader(log, batch_size=self.config.batch_size, **self._client_kwargs)

    async def _release_own(self, store: Store) -> None:
        """Leases and alert claims this worker ID still holds from a process that died."""
        for progress in await in_thread(store.logs):
            if progress.lease_owner == self.worker_id:
                await in_thread(store.release_lease, self.worker_id, progress.log_id)
        await in_thread(store.release_claims, self.worker_id)

    async def _count_stranded(self, store: Store) -> None:
        """Alerts waiting for channels this monitor does not have: no one here will ever
        deliver them."""
        configured = {channel.name for channel in self.config.channels}
        waiting = await in_thread(store.undelivered)
        self._stranded = {name: n for name, n in waiting.items() if name not in configured}
        if self._stranded:
            self._observer.alerts_stranded(dict(self._stranded))

    async def _apply(self, log_list: LogList) -> None:
        """Follow the logs of ``log_list``: register new ones, stop the ones gone."""
        assert self._ctx is not None
        wanted = {log.log_id: log for log in log_list.logs if is_followed(log)}
        added = [log_id for log_id in wanted if log_id not in self._tracks]
        if added:
            await in_thread(self._ctx.store.register_logs, added)
        for log_id, log in wanted.items():
            track = self._tracks.get(log_id)
            if track is None:
                self._tracks[log_id] = LogTrack(log)
            elif track.log != log and not self._running(track):
                # A new state, URL or final tree head: a new reader, and a frozen log that
                # was done may have more to read.
                await self._close_reader(track)
                if log.state != track.log.state or log.final_tree_head != track.log.final_tree_head:
                    track.done = False
                track.log = log
        for log_id in [i for i in self._tracks if i not in wanted]:
            track = self._tracks.pop(log_id)
            for task, running in list(self._sessions.items()):
                if running is track:
                    task.cancel()
            await self._close_reader(track)
        self._logs_followed.update(wanted)
        self._logs_followed.intersection_update(wanted)

    def _running(self, track: LogTrack) -> bool:
        return any(running is track for running in self._sessions.values())

    @staticmethod
    async def _close_reader(track: LogTrack) -> None:
        reader, track.reader = track.reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.aclose()

    async def _schedule(self) -> None:
        config = self.config
        assert self._stop is not None
        stopping: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        next_reload = time.monotonic() + config.log_list_reload
        try:
            while not self._stop.is_set():
                if config.reload_log_list is not None and time.monotonic() >= next_reload:
                    next_reload = time.monotonic() + config.log_list_reload
                    await self._reload(config.reload_log_list)
                started, retrying = await self._fill()
                if config.once and not self._sessions and not started and not retrying:
                    return
                wait = self._wait_time(next_reload)
                done, _ = await asyncio.wait(
                    {*self._sessions, stopping},
                    timeout=wait,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    if task is not stopping:
                        await self._finish(cast("asyncio.Task[None]", task))
        finally:
            stopping.cancel()

    async def _reload(self, reload: Callable[[], LogList]) -> None:
        try:
            log_list = await in_thread(reload)
        except (PinwardenError, OSError):
            return  # keep following the list we have; the next reload may work
        await self._apply(log_list)

    def _wait_time(self, next_reload: float) -> float:
        now = time.monotonic()
        due = [t.next_due for t in self._tracks.values() if not t.done and not self._running(t)]
        if self.config.reload_log_list is not None:
            due.append(next_reload)
        wait = min(due, default=now + _MAX_WAIT) - now
        return min(max(wait, 0.01), _MAX_WAIT)

    async def _fill(self) -> tuple[bool, bool]:
        """Start sessions on due logs while slots are free. Returns whether one started,
        and whether a log waits to be retried after a failure."""
        ctx = self._ctx
        assert ctx is not None
        now = time.monotonic()
        pending = [t for t in self._tracks.values() if not t.done and not self._running(t)]
        due = [t for t in pending if t.next_due <= now]
        retrying = len(pending) > len(due)
        if not due or len(self._sessions) >= self.config.parallel_logs:
            return False, retrying
        # Only the due logs are asked for: the store may hold many more (other workers'
        # lists, logs gone from this one).
        wanted = {track.log.log_id: track for track in due}
        started = False
        taken_elsewhere = False
        while wanted and len(self._sessions) < self.config.parallel_logs:
            log_id = await in_thread(
                ctx.store.acquire_log, self.worker_id, self.config.lease_ttl, among=tuple(wanted)
            )
            if log_id is None:
                taken_elsewhere = True  # every due log left is another worker's now
                break
            track = wanted.pop(log_id, None)
            if track is None:  # not one asked for: cannot happen, but never keep it
                await in_thread(ctx.store.release_lease, self.worker_id, log_id)
                continue
            self._lease_waits.pop(log_id, None)
            deadline = None if self.config.once else time.monotonic() + SESSION_SECONDS
            task = asyncio.ensure_future(follow_once(ctx, track, deadline=deadline))
            self._sessions[task] = track
            started = True
        waiting = False
        if taken_elsewhere and wanted:
            waiting = await self._leased_elsewhere(list(wanted.values()))
        return started, retrying or waiting

    async def _leased_elsewhere(self, tracks: list[LogTrack]) -> bool:
        """Due logs another worker holds: ask again a little later, not in a tight loop.
        In once mode, wait for a log up to ``lease_ttl`` (a dead worker's lease runs out),
        then leave it unread and say so. Returns whether a log is still waited for."""
        config = self.config
        now = time.monotonic()
        later = now + min(config.poll_interval, 1.0 if config.once else _MAX_WAIT)
        waiting = False
        for track in tracks:
            log_id = track.log.log_id
            if config.once:
                since = self._lease_waits.setdefault(log_id, now)
                if since == now:
                    owner = await self._lease_owner(log_id)
                    self._observer.log_error(
                        track.log,
                        "leased",
                        f"leased by another worker{owner}: waiting up to "
                        f"{config.lease_ttl:g}s for it",
                    )
                if now - since >= config.lease_ttl:
                    track.done = True
                    self._leased.add(log_id)
                    self._observer.log_error(
                        track.log,
                        "leased",
                        f"not read: still leased by another worker after {config.lease_ttl:g}s",
                    )
                    continue
                waiting = True
            track.next_due = max(track.next_due, later)
        return waiting

    async def _lease_owner(self, log_id: bytes) -> str:
        assert self._ctx is not None
        with contextlib.suppress(PinwardenError):
            progress = await in_thread(self._ctx.store.progress, log_id)
            if progress is not None and progress.lease_owner:
                return f" ({progress.lease_owner!r})"
        return ""

    async def _finish(self, task: asyncio.Task[None]) -> None:
        ctx = self._ctx
        assert ctx is not None
        track = self._sessions.pop(task)
        try:
            if not task.cancelled():
                task.result()  # re-raises a store failure: the monitor cannot go on
        finally:
            await in_thread(ctx.store.release_lease, self.worker_id, track.log.log_id)

    async def _renew(self) -> None:
        """Keep the leases of running sessions; a session whose lease is lost is stopped
        (its next commit would be refused anyway)."""
        interval = self.config.lease_ttl / 3
        while True:
            await asyncio.sleep(interval)
            ctx = self._ctx
            if ctx is None:
                continue
            for task, track in list(self._sessions.items()):
                try:
                    await in_thread(
                        ctx.store.renew_lease,
                        self.worker_id,
                        track.log.log_id,
                        self.config.lease_ttl,
                    )
                except PinwardenError:
                    task.cancel()

    def _dispatcher_stop(self, delivering: asyncio.Task[None]) -> None:
        if self._dispatcher is not None and not delivering.done():
            self._dispatcher.close()

    async def _shutdown(
        self, store: Store, delivering: asyncio.Task[None], renewing: asyncio.Task[None]
    ) -> None:
        try:
            await self._stop_everything(store, delivering, renewing)
        finally:
            await in_thread(store.close)

    async def _stop_everything(
        self, store: Store, delivering: asyncio.Task[None], renewing: asyncio.Task[None]
    ) -> None:
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        # Each session finishes the commit it is in (in_thread shields it), then stops.
        await asyncio.gather(*sessions, return_exceptions=True)
        for task in sessions:
            track = self._sessions.pop(task)
            with contextlib.suppress(PinwardenError):
                await in_thread(store.release_lease, self.worker_id, track.log.log_id)
        self._dispatcher_stop(delivering)
        renewing.cancel()
        with contextlib.suppress(Exception):
            # Let each channel settle the alert in flight; a channel stuck longer than
            # this is cancelled (its alert is sent again once its claim expires).
            await asyncio.wait_for(asyncio.shield(delivering), _SETTLE_SECONDS)
        delivering.cancel()
        await asyncio.gather(delivering, renewing, return_exceptions=True)
        for track in self._tracks.values():
            await self._close_reader(track)
