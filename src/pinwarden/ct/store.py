"""The CT monitor's state: one interface, two back-ends (SQLite, PostgreSQL).

What survives a restart, per log (keyed by its log ID): the **position** (the index of the
next entry to process), the last **verified tree head** and the **compact range** of the tree
at ``position``. Beside them: the **findings** (one per TBS hash, so a precertificate and its
final certificate, or one certificate in several logs, are one finding with a list of
``(log, index)`` sightings) and an **alert outbox** (each event with a delivery row per
channel: delivered_at, attempts, next_attempt, last error).

:meth:`Store.commit_batch` writes a batch's position, head, compact range, findings and events
in **one transaction** and returns the findings that were new. An event tied to a finding
(``OutboxEvent.tbs_hash``) is queued only when that finding is new in this transaction, so
however often a batch is replayed after a crash, each finding is queued for alerting exactly
once. Delivery is then at least once per channel: :meth:`Store.due_alerts` claims what is
due, :meth:`Store.mark_delivered` / :meth:`Store.mark_failed` settle it; a crash between a
send and its ``mark_delivered`` resends that one alert after the claim expires.

An event may carry a **de-duplication key** (``OutboxEvent.dedup_key``): an event whose key
was queued before, in any run, is not queued again (a log's misbehaviour episode seen anew
after a restart is not alerted twice).

Delivery claims record the claiming worker: :meth:`Store.release_claims` lets a worker
restarted under the same ID take its own unsettled claims back at once instead of waiting
for them to expire. Claims, like leases, run on the store's clock (the database server's
for PostgreSQL), never the caller's, so workers with skewed clocks agree on them.

Several workers share the logs through **leases** (:meth:`Store.acquire_log`): a log is
worked on by the one worker whose lease is live, and ``commit_batch`` with a ``worker_id``
fails with :class:`LeaseLostError` (a :class:`~pinwarden.errors.StoreError`) once that
worker no longer holds it, so two workers never both advance a log. A commit without
``worker_id`` (a single monitor that does not lease) is refused while another worker holds
a live lease.

The store also refuses what would break the monitor's invariants, whatever the caller:
moving a log's position back, a position past the verified tree size (state never advances
past verified data), a tree head smaller than the stored one, or one of the same size with
another root.

The store keeps the tree head as ``tree_size`` + ``root_hash`` + an opaque ``blob`` (the log
client's own encoding of the verified STH or checkpoint), and the compact range as opaque
bytes, so it depends on neither the clients' nor the Merkle module's types.

URLs (:func:`open_store`): ``sqlite:///relative/path``, ``sqlite:////absolute/path`` (the
SQLAlchemy convention), ``sqlite:///~/path``, ``sqlite://`` for the default file
(:func:`default_sqlite_path`), ``sqlite:///:memory:``; ``postgresql://user@host/db`` (or
``postgres://``; any libpq URL, psycopg 3 needed: ``pip install 'pinwarden[postgres]'``).
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType

# Not in __all__, but imported from here: the "as" marks them re-exported.
from pinwarden.ct._store_types import DEFAULT_CLAIM as DEFAULT_CLAIM
from pinwarden.ct._store_types import SCHEMA_COMPONENT as SCHEMA_COMPONENT
from pinwarden.ct._store_types import (
    SCHEMA_VERSION,
    DueAlert,
    Finding,
    FindingLog,
    FindingRecord,
    LeaseLostError,
    LogProgress,
    OutboxEvent,
    StoredTreeHead,
)
from pinwarden.ct._store_url import (
    default_sqlite_path,
    default_store_url,
    redact_url,
    sqlite_path_of,
)
from pinwarden.errors import InputError

__all__ = [
    "SCHEMA_VERSION",
    "DueAlert",
    "Finding",
    "FindingLog",
    "FindingRecord",
    "LeaseLostError",
    "LogProgress",
    "OutboxEvent",
    "Store",
    "StoredTreeHead",
    "default_sqlite_path",
    "default_store_url",
    "open_store",
    "redact_url",
    "sqlite_path_of",
]


# -- the interface ----------------------------------------------------------------------------


class Store(abc.ABC):
    """The monitor's state store (see the module docstring). Thread-safe: calls are
    serialised on the store's one connection. Use as a context manager or call
    :meth:`close`."""

    url: str
    """Where the store is, without any password."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None: ...

    # logs and leases

    @abc.abstractmethod
    def register_logs(self, log_ids: Iterable[bytes]) -> tuple[bytes, ...]:
        """Add logs not yet known (position 0, no head); returns those added."""

    @abc.abstractmethod
    def progress(self, log_id: bytes) -> LogProgress | None:
        """A log's state, or None when it was never registered."""

    @abc.abstractmethod
    def logs(self) -> tuple[LogProgress, ...]:
        """Every registered log, by log ID."""

    @abc.abstractmethod
    def acquire_log(
        self,
        worker_id: str,
        ttl: timedelta | float,
        *,
        among: Collection[bytes] | None = None,
    ) -> bytes | None:
        """Lease a log no one holds (or whose lease expired) to ``worker_id`` for ``ttl``
        (seconds or a timedelta), one of ``among`` when given; None when every such log is
        taken. Never-leased logs come first, then the longest-released, so workers rotate
        over all logs."""

    @abc.abstractmethod
    def renew_lease(self, worker_id: str, log_id: bytes, ttl: timedelta | float) -> None:
        """Extend a live lease; :class:`LeaseLostError` when ``worker_id`` no longer holds
        it."""

    @abc.abstractmethod
    def release_lease(self, worker_id: str, log_id: bytes) -> None:
        """Give a lease back (nothing happens if ``worker_id`` does not hold it)."""

    # the batch

    @abc.abstractmethod
    def commit_batch(
        self,
        log_id: bytes,
        position: int,
        head: StoredTreeHead,
        compact_range: bytes,
        findings: Sequence[Finding],
        events: Sequence[OutboxEvent],
        *,
        worker_id: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Finding, ...]:
        """In one transaction: move ``log_id`` to ``position`` with its verified ``head``
        and the ``compact_range`` at ``position``, record ``findings`` (sightings in this
        log) and queue ``events``. Returns the findings whose TBS hash was not stored
        before, in the order given (the first of several with one TBS hash)."""

    @abc.abstractmethod
    def enqueue(
        self, events: Sequence[OutboxEvent], *, now: datetime | None = None
    ) -> tuple[int, ...]:
        """Queue events outside a batch (e.g. a log misbehaved: its position must not
        move); events tied to a finding are refused here. Returns the IDs of the alerts
        queued: an event whose ``dedup_key`` was queued before is left out."""

    # findings

    @abc.abstractmethod
    def finding(self, tbs_hash: bytes) -> FindingRecord | None: ...

    @abc.abstractmethod
    def findings(self, *, limit: int | None = None) -> tuple[FindingRecord, ...]:
        """Findings, oldest first."""

    # the outbox

    @abc.abstractmethod
    def due_alerts(
        self,
        channel: str,
        now: datetime,
        *,
        limit: int = 100,
        claim: timedelta = DEFAULT_CLAIM,
        worker_id: str | None = None,
    ) -> tuple[DueAlert, ...]:
        """Undelivered, unclaimed alerts of ``channel`` whose next attempt is due at
        ``now``, oldest first, at most ``limit``. They are claimed for ``worker_id`` for
        ``claim`` on the store's clock: no one sees them again until this worker delivers
        or fails them, releases its claims (:meth:`release_claims`), or the claim expires."""

    @abc.abstractmethod
    def release_claims(self, worker_id: str, *, channel: str | None = None) -> int:
        """Drop the claims ``worker_id`` holds on undelivered alerts (of ``channel``, or
        of every channel): they are due again at once. Returns how many. For a worker
        restarted under the same ID, and for one stopping with claimed alerts it did not
        try."""

    @abc.abstractmethod
    def undelivered(self) -> dict[str, int]:
        """How many alerts wait for delivery, by channel name (only channels with some)."""

    @abc.abstractmethod
    def mark_delivered(self, alert_id: int, channel: str, *, now: datetime | None = None) -> None:
        """Record a delivery (idempotent); :class:`StoreError` if there is no such
        alert on that channel."""

    @abc.abstractmethod
    def mark_failed(
        self, alert_id: int, channel: str, next_attempt: datetime, *, error: str | None = None
    ) -> None:
        """Record a failed attempt and when to try again (the claim ends)."""


# -- opening --------------------------------------------------------------------------------


def open_store(url: str | None = None, *, busy_timeout: float = 30.0) -> Store:
    """Open (creating if needed) the store at ``url`` (None: the default SQLite file).

    Raises :class:`~pinwarden.errors.InputError` for a URL of an unknown scheme and
    :class:`~pinwarden.errors.StoreError` when the store cannot be opened or holds tables
    of another schema version.
    """
    if url is None:
        url = default_store_url()
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from pinwarden.ct.store_sqlite import SQLiteStore

        return SQLiteStore(sqlite_path_of(url), busy_timeout=busy_timeout)
    if scheme in ("postgresql", "postgres"):
        from pinwarden.ct.store_postgres import PostgresStore

        return PostgresStore(url, lock_timeout=busy_timeout)
    raise InputError(
        f"store URL {redact_url(url)!r}: unknown scheme {scheme or '(none)'!r}; use "
        "sqlite:///path/to/file.sqlite3 or postgresql://user@host/database"
    )
