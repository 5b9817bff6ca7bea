"""Alert delivery for the CT monitor: the store's outbox to the alert channels.

Each channel has its own loop (a slow or failing webhook never holds back stdout):
:meth:`~pinwarden.ct.store.Store.due_alerts` claims a few due alerts, each is delivered,
and the outcome is recorded at once — :meth:`~pinwarden.ct.store.Store.mark_delivered`,
or :meth:`~pinwarden.ct.store.Store.mark_failed` with the next attempt after
:func:`~pinwarden.ct.alerts.backoff` — so an alert is retried until it is delivered,
across restarts.

Delivery is **at least once**, with a stable alert ID (the store's, payload ``id``, hook
``ALERT_ID``) so that receivers can drop repeats. The one window for a repeat is between a
channel finishing its send and ``mark_delivered`` committing (one small transaction: a few
milliseconds). The record is started as soon as the channel returns, before anything else
is awaited, and a cancelled monitor waits for it to commit. If the process dies inside the
window, or while a channel is still sending, the alert stays claimed and is then sent
again: at once by this monitor restarted under the same worker ID (the monitor releases
its own claims on start, :meth:`~pinwarden.ct.store.Store.release_claims`), or by another
worker once the claim expires after ``claim``; so are the few alerts claimed with it (at
most ten per channel) that it had not tried yet. A monitor that stops cleanly hands those
back at once instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pinwarden.ct.alerts import AlertEvent, Channel, backoff
from pinwarden.ct.client import gather
from pinwarden.ct.store import DueAlert, Store
from pinwarden.errors import StoreError

__all__ = ["Dispatcher", "in_thread"]

_T = TypeVar("_T")
_BATCH = 10  # alerts claimed at once per channel: small, so claims rarely outlive a batch
_ERROR_CHARS = 500


async def in_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run a blocking store call in a worker thread. If the caller is cancelled meanwhile,
    the call still completes (a commit is never left with an unknown outcome) before the
    cancellation goes on."""
    future = asyncio.ensure_future(asyncio.to_thread(function, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


class Dispatcher:
    """Delivers the outbox of ``store`` to ``channels`` (see the module docstring).

    Alerts are claimed in the name of ``worker_id``. ``on_delivery(channel, ok)`` is
    called after each attempt; ``poll`` is how often an idle channel looks for alerts
    queued by other workers or due for a retry (:meth:`wake` makes it look at once)."""

    def __init__(
        self,
        store: Store,
        channels: Sequence[Channel],
        *,
        worker_id: str,
        clock: Callable[[], datetime],
        on_delivery: Callable[[str, bool], None],
        claim: timedelta,
        poll: float = 2.0,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.channels = tuple(channels)
        self.clock = clock
        self.on_delivery = on_delivery
        self.claim = claim
        self.poll = poll
        self.failed: set[tuple[int, str]] = set()
        """Alerts (ID, channel) whose last attempt in this process failed."""
        self.delivered = 0
        self._closing = False
        self._events = {channel.name: asyncio.Event() for channel in self.channels}

    def wake(self) -> None:
        """New alerts were queued: look now."""
        for event in self._events.values():
            event.set()

    def close(self) -> None:
        """Ask :meth:`run` to return once each channel has settled the alert it is
        sending; alerts it claimed but did not try yet are handed back at once."""
        self._closing = True
        self.wake()

    async def run(self) -> None:
        """Deliver until :meth:`close` (or cancelled)."""
        self._closing = False
        await gather(self._loop(channel) for channel in self.channels)

    async def drain(self) -> None:
        """Try every alert due now once on every channel (what ``--once`` ends with)."""
        await asyncio.gather(*(self._drain(channel) for channel in self.channels))

    async def _drain(self, channel: Channel) -> None:
        seen: set[int] = set()
        while True:
            try:
                due = await self._due(channel)
            except StoreError:
                return
            fresh = [alert for alert in due if alert.id not in seen]
            if not fresh:
                return
            for alert in fresh:
                seen.add(alert.id)
                await self._deliver(channel, alert)

    async def _loop(self, channel: Channel) -> None:
        event = self._events[channel.name]
        while not self._closing:
            event.clear()
            due: tuple[DueAlert, ...] = ()
            try:
                due = await self._due(channel)
                for alert in due:
                    if self._closing:
                        await self._hand_back(channel)
                        return
                    await self._deliver(channel, alert)
            except StoreError:
                due = ()  # the store is unreachable: try again after a pause
            if len(due) < _BATCH and not self._closing:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), self.poll)

    async def _hand_back(self, channel: Channel) -> None:
        """Make the alerts this channel claimed and did not try due again now (every
        earlier one of its batch is settled: this channel sends one at a time)."""
        await in_thread(self.store.release_claims, self.worker_id, channel=channel.name)

    async def _due(self, channel: Channel) -> tuple[DueAlert, ...]:
        return await in_thread(
            self.store.due_alerts,
            channel.name,
            self.clock(),
            limit=_BATCH,
            claim=self.claim,
            worker_id=self.worker_id,
        )

    async def _deliver(self, channel: Channel, alert: DueAlert) -> None:
        event = AlertEvent(alert.id, alert.kind, alert.payload)
        key = (alert.id, channel.name)
        try:
            await channel.deliver(event)
        except Exception as exc:  # any failure of a channel is retried later
            message = (str(exc) or type(exc).__name__)[:_ERROR_CHARS]
            retry = self.clock() + backoff(alert.attempts)
            await in_thread(self.store.mark_failed, alert.id, channel.name, retry, error=message)
            self.failed.add(key)
            self.on_delivery(channel.name, False)
            return
        # Record at once: this is the window in which a crash would send the alert again.
        await in_thread(self.store.mark_delivered, alert.id, channel.name, now=self.clock())
        self.failed.discard(key)
        self.delivered += 1
        self.on_delivery(channel.name, True)
