"""What the sessions of :mod:`pinwarden.ct.follow` share and keep: the per-run
:class:`Context`, each log's :class:`LogTrack` across sessions, the run's :class:`Tally`,
and the observer they report to.

Separate from :mod:`pinwarden.ct.follow` so that the session, the batch commit
(:mod:`pinwarden.ct._follow_batch`), the start position (:mod:`pinwarden.ct._follow_start`)
and the log alerts (:mod:`pinwarden.ct._follow_alerts`) can each import them;
:mod:`pinwarden.ct.follow` re-exports the public names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from pinwarden.ct.logs import Log, LogState
from pinwarden.ct.reader import LogReader
from pinwarden.ct.store import Store, StoredTreeHead
from pinwarden.ct.treehead import SignedTreeHead, log_name
from pinwarden.ct.verdicts import Judge
from pinwarden.ct.watch import WatchList

FROZEN_STATES = frozenset({LogState.READONLY, LogState.RETIRED})
# Beyond this a session hands its log back so that other logs get a turn (daemon mode).
SESSION_SECONDS = 60.0


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


def final_size(log: Log) -> int | None:
    if log.state in FROZEN_STATES and log.final_tree_head is not None:
        return log.final_tree_head.tree_size
    return None
