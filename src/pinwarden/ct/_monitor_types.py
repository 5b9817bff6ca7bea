"""What a monitor run is given and gives back: :class:`MonitorConfig`, the
:class:`MonitorObserver` it reports to (guarded so that a display cannot stop it), and the
:class:`MonitorSummary` it returns; with which logs it follows and where it writes.

Separate from :mod:`pinwarden.ct.monitor` so that the engine module holds only the run
loop and its lease handling; :mod:`pinwarden.ct.monitor` re-exports the public names.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from pinwarden.caa.identities import CAIdentity
from pinwarden.ct.alerts import Channel
from pinwarden.ct.logs import Log, LogList, LogState
from pinwarden.ct.store import DEFAULT_CLAIM, default_sqlite_path, sqlite_path_of
from pinwarden.ct.watch import WatchList
from pinwarden.errors import InputError

FOLLOWED_STATES = frozenset(
    {LogState.QUALIFIED, LogState.USABLE, LogState.READONLY, LogState.RETIRED, None}
)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def default_worker() -> str:
    # Host name and PID alone collide across machines (cloned VMs, containers with a fixed
    # host name and PID 1): a random part keeps two monitors from sharing one ID.
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class MonitorConfig:
    """What to monitor and how; see the module docstring. ``start`` applies to logs the
    store has no position for: ``"end"``, ``"start"``, or a datetime (naive = UTC).
    ``alert_claim`` is how long a delivery attempt holds an alert before another worker
    (or this one after a crash) may send it again; ``ca_identities`` replaces the CA
    identity table used for ``ca=`` expectations."""

    watch: WatchList
    log_list: LogList
    store_url: str
    start: str | datetime = "end"
    once: bool = False
    channels: tuple[Channel, ...] = ()
    worker_id: str = ""
    poll_interval: float = 30.0
    log_list_reload: float = 3600.0
    reload_log_list: Callable[[], LogList] | None = None
    batch_size: int = 1024
    parallel_logs: int = 8
    parallel_fetches: int = 4
    stall_after: timedelta = timedelta(hours=24)
    output_dir: Path | None = None
    lease_ttl: float = 120.0
    client_settings: Any = None
    caa_nameservers: tuple[str, ...] = ()
    clock: Callable[[], datetime] = now_utc
    alert_claim: timedelta = DEFAULT_CLAIM
    ca_identities: tuple[CAIdentity, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.start, datetime):
            if self.start.tzinfo is None:
                object.__setattr__(self, "start", self.start.replace(tzinfo=timezone.utc))
        elif self.start not in ("end", "start"):
            raise InputError(f"start must be 'end', 'start' or a date, not {self.start!r}")
        for name in ("batch_size", "parallel_logs", "parallel_fetches"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1")
        for name in ("poll_interval", "log_list_reload", "lease_ttl"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"{name} must be a positive number of seconds, not {value}")
        if self.stall_after <= timedelta(0) or self.alert_claim <= timedelta(0):
            raise InputError("stall_after and alert_claim must be positive")
        names = [channel.name for channel in self.channels]
        if len(set(names)) != len(names):
            raise InputError(f"two alert channels have the same name: {names}")


class MonitorObserver(Protocol):
    """Progress display and metrics: every method must be cheap and never raise. An
    observer may also have ``alerts_stranded(channels: Mapping[str, int])``, called once
    on start with the undelivered alerts queued for channels this monitor does not have
    (by channel name), if there are any."""

    def log_started(self, log: Log, position: int, tree_size: int) -> None: ...
    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None: ...
    def finding(self, log: Log, verdict: str, new: bool) -> None: ...
    def log_error(self, log: Log, kind: str, message: str) -> None: ...
    def alert_delivered(self, channel: str, ok: bool) -> None: ...


@dataclass(frozen=True)
class MonitorSummary:
    """What a run did: logs followed, entries processed, new findings (and how many of
    them ``unexpected``), the logs that misbehaved or could not be read (by name), and the
    alerts whose last delivery attempt in this run failed. ``leased_logs``: logs left
    unread because another worker held them (once mode); ``alerts_stranded``: undelivered
    alerts queued for channels this run does not have; ``incomplete_logs``: logs whose last
    session stopped on this side (saved state that does not read, finding files that
    could not be written), their position kept for the next run."""

    logs: int
    entries: int
    findings_new: int
    unexpected_new: int
    misbehaving_logs: tuple[str, ...]
    unreachable_logs: tuple[str, ...]
    alerts_pending: int
    leased_logs: tuple[str, ...] = ()
    alerts_stranded: int = 0
    incomplete_logs: tuple[str, ...] = ()


class GuardedObserver:
    """The observer, with any exception it raises dropped: a display must not stop the
    monitor."""

    def __init__(self, observer: MonitorObserver | None) -> None:
        self._observer = observer

    def _call(self, method: str, *args: Any) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                getattr(self._observer, method)(*args)

    def log_started(self, log: Log, position: int, tree_size: int) -> None:
        self._call("log_started", log, position, tree_size)

    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
        self._call("batch_done", log, position, tree_size, entries)

    def finding(self, log: Log, verdict: str, new: bool) -> None:
        self._call("finding", log, verdict, new)

    def log_error(self, log: Log, kind: str, message: str) -> None:
        self._call("log_error", log, kind, message)

    def alert_delivered(self, channel: str, ok: bool) -> None:
        self._call("alert_delivered", channel, ok)

    def alerts_stranded(self, channels: Mapping[str, int]) -> None:
        self._call("alerts_stranded", channels)


def is_followed(log: Log) -> bool:
    """Whether the monitor follows ``log`` (module docstring)."""
    return log.state in FOLLOWED_STATES and bool(log.base_url)


def default_output_dir(store_url: str) -> Path:
    """``certs/`` beside the SQLite file, else ``~/.local/state/pinwarden/certs``."""
    if store_url.partition(":")[0].lower() == "sqlite":
        path = sqlite_path_of(store_url)
        if path is not None:
            return path.expanduser().resolve().parent / "certs"
    return default_sqlite_path().parent / "certs"
