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
import base64
import json
import math
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pinwarden.errors import InputError, StoreError

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

SCHEMA_VERSION = 2
"""The version of the tables this pinwarden reads and writes (``pinwarden_schema``, component
``ct-monitor``). A store of version 1 is upgraded on open (version 2 only adds columns: the
claiming worker and a de-duplication key); a store of a newer version is refused."""

SCHEMA_COMPONENT = "ct-monitor"
# Sizes and indices are stored as signed 64-bit integers (SQLite INTEGER, PostgreSQL bigint);
# RFC 6962 allows uint64 tree sizes, but no log comes near 2**63 entries.
_MAX_SIZE = 2**63
DEFAULT_CLAIM = timedelta(minutes=5)


_QUERY_PASSWORD = re.compile(r"((?:^|[&?])password=)[^&]*", re.IGNORECASE)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)


def _seconds(ttl: timedelta | float, what: str = "ttl") -> float:
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a positive duration, got {ttl!r}")
    return seconds


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LeaseLostError(StoreError):
    """The worker no longer holds the log's lease: it expired, or another worker has the
    log now. The message starts with "lease lost"."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class StoredTreeHead:
    """A verified tree head as the store keeps it. ``blob`` is the log client's own
    encoding of it (signature included), opaque to the store."""

    tree_size: int
    root_hash: bytes
    blob: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.tree_size < _MAX_SIZE:
            raise ValueError(f"tree_size {self.tree_size} is out of range")


@dataclass(frozen=True)
class LogProgress:
    """Where the monitor is in one log. ``head`` is None until a tree head was verified
    (so a freshly registered log is told apart from one at position 0)."""

    log_id: bytes
    position: int
    head: StoredTreeHead | None
    compact_range: bytes | None
    lease_owner: str | None
    lease_expires: datetime | None
    updated_at: datetime | None

    @property
    def log_id_b64(self) -> str:
        return _b64(self.log_id)


@dataclass(frozen=True)
class Finding:
    """A certificate matching the watch list, as found at entry ``index`` of the batch's log.

    ``verdict`` is the monitor's (``expected``/``unexpected``...), ``reasons`` why;
    ``serial`` is hex; ``spki_pin`` is ``sha256/<base64>``; ``watch_items`` are the watch
    list entries it matched (their text). The certificate is kept whole in ``pem``.
    """

    tbs_hash: bytes
    index: int
    verdict: str
    reasons: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    issuer: str = ""
    serial: str = ""
    not_before: datetime | None = None
    not_after: datetime | None = None
    cert_sha256: bytes = b""
    spki_pin: str = ""
    pem: str = ""
    watch_items: tuple[str, ...] = ()
    is_precert: bool = False

    def __post_init__(self) -> None:
        if not self.tbs_hash:
            raise ValueError("a finding needs its TBS hash")
        if not 0 <= self.index < _MAX_SIZE:
            raise ValueError(f"entry index {self.index} is out of range")
        for name in ("not_before", "not_after"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _aware(value, name))


@dataclass(frozen=True)
class FindingLog:
    """One sighting of a finding: the log, the entry index, when it was committed."""

    log_id: bytes
    index: int
    seen_at: datetime


@dataclass(frozen=True)
class FindingRecord:
    """A stored finding: the details as first seen (``finding.index`` is its index in the
    log of the first sighting), when, and every sighting in every log, oldest first."""

    finding: Finding
    first_seen: datetime
    logs: tuple[FindingLog, ...]


@dataclass(frozen=True)
class OutboxEvent:
    """An alert to queue, one delivery per channel in ``channels``.

    With ``tbs_hash`` set the event belongs to that finding and is queued only if the
    finding is new in the same :meth:`Store.commit_batch` (and at most once per kind and
    finding in it); without it (log misbehaviour, a stalled log) it is queued unless its
    ``dedup_key`` was queued before. ``payload`` must be JSON-ready.
    """

    kind: str
    payload: Mapping[str, Any]
    channels: tuple[str, ...]
    tbs_hash: bytes | None = None
    log_id: bytes | None = None
    dedup_key: str | None = None

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("an event needs a kind")
        if self.dedup_key == "":
            raise ValueError(f"event {self.kind!r}: a dedup_key must not be empty")
        if not self.channels or any(not c for c in self.channels):
            raise ValueError(f"event {self.kind!r} needs at least one named channel")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"event {self.kind!r} names a channel twice: {self.channels}")

    def payload_json(self) -> str:
        try:
            return json.dumps(self.payload, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload of event {self.kind!r} is not JSON-ready: {exc}") from exc


@dataclass(frozen=True)
class DueAlert:
    """An alert due on one channel. ``attempts`` counts the earlier tries on this channel,
    ``last_error`` the last failure's message."""

    id: int
    channel: str
    kind: str
    payload: dict[str, Any] = field(hash=False)
    created: datetime
    attempts: int = 0
    last_error: str | None = None
    tbs_hash: bytes | None = None
    log_id: bytes | None = None


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


# -- checks shared by the back-ends -----------------------------------------------------------


@dataclass(frozen=True)
class _Current:
    """The stored row of a log, as the back-ends read it inside a batch's transaction."""

    position: int
    tree_size: int | None
    root_hash: bytes | None
    lease_owner: str | None
    lease_live: bool


def _check_batch(
    log_id: bytes,
    current: _Current | None,
    position: int,
    head: StoredTreeHead,
    worker_id: str | None,
) -> None:
    name = _b64(log_id)
    if current is None:
        raise StoreError(f"log {name} is not registered in the store (register_logs first)")
    if worker_id is not None:
        if current.lease_owner != worker_id or not current.lease_live:
            raise LeaseLostError(
                f"lease lost: worker {worker_id!r} no longer holds log {name}"
                + (f" (held by {current.lease_owner!r})" if current.lease_live else "")
            )
    elif current.lease_live:
        raise LeaseLostError(
            f"lease lost: log {name} is leased to {current.lease_owner!r}; "
            "commit with that worker_id"
        )
    if position < current.position:
        raise StoreError(
            f"log {name}: position would move back from {current.position} to {position}"
        )
    if position > head.tree_size:
        raise StoreError(
            f"log {name}: position {position} is past the verified tree size {head.tree_size}"
        )
    if current.tree_size is not None:
        if head.tree_size < current.tree_size:
            raise StoreError(
                f"log {name}: tree head would shrink from {current.tree_size} to {head.tree_size}"
            )
        if head.tree_size == current.tree_size and head.root_hash != current.root_hash:
            raise StoreError(
                f"log {name}: a second root hash for tree size {head.tree_size} "
                "(a fork must be reported, not stored)"
            )


def _new_findings(
    findings: Sequence[Finding], inserted: Sequence[bool]
) -> tuple[tuple[Finding, ...], set[bytes]]:
    new = tuple(f for f, was_new in zip(findings, inserted, strict=True) if was_new)
    return new, {f.tbs_hash for f in new}


def _events_to_queue(
    events: Sequence[OutboxEvent], findings: Sequence[Finding], new_hashes: set[bytes]
) -> list[OutboxEvent]:
    batch = {f.tbs_hash for f in findings}
    queued: list[OutboxEvent] = []
    seen: set[tuple[str, bytes]] = set()
    for event in events:
        if event.tbs_hash is not None:
            if event.tbs_hash not in batch:
                raise ValueError(
                    f"event {event.kind!r} is tied to TBS hash {event.tbs_hash.hex()}, "
                    "which is not among the batch's findings"
                )
            key = (event.kind, event.tbs_hash)
            if event.tbs_hash not in new_hashes or key in seen:
                continue
            seen.add(key)
        queued.append(event)
    return queued


def _check_worker(worker_id: str) -> None:
    if not worker_id:
        raise ValueError("worker_id must be a non-empty string")


def _lease_lost(worker_id: str, log_id: bytes) -> LeaseLostError:
    return LeaseLostError(f"lease lost: worker {worker_id!r} no longer holds log {_b64(log_id)}")


def _check_enqueue(events: Sequence[OutboxEvent]) -> None:
    for event in events:
        if event.tbs_hash is not None:
            raise ValueError(
                f"event {event.kind!r} is tied to a finding: queue it with commit_batch, "
                "which queues it only if the finding is new"
            )


# -- opening --------------------------------------------------------------------------------


def default_sqlite_path() -> Path:
    """``$XDG_STATE_HOME/pinwarden/monitor.sqlite3``, by default
    ``~/.local/state/pinwarden/monitor.sqlite3``."""
    state = os.environ.get("XDG_STATE_HOME")
    # The XDG spec: a relative value is invalid and must be ignored.
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local/state"
    return base / "pinwarden" / "monitor.sqlite3"


def default_store_url() -> str:
    return "sqlite:///" + str(default_sqlite_path())


def redact_url(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter), for
    messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hostport}")
    # A stray "#" in the host moves the query into the fragment: redact both.
    return urlunsplit(
        parts._replace(
            query=_QUERY_PASSWORD.sub(r"\1***", parts.query),
            fragment=_QUERY_PASSWORD.sub(r"\1***", parts.fragment),
        )
    )


def sqlite_path_of(url: str) -> Path | None:
    """The file of a ``sqlite:`` URL (None for ``:memory:``); see the module docstring."""
    rest = url[len("sqlite:") :]
    if "?" in rest or "#" in rest:
        raise InputError(f"store URL {url!r}: sqlite URLs take no query or fragment")
    if rest in ("", "//", "///"):
        return default_sqlite_path()
    if not rest.startswith("///"):
        raise InputError(
            f"store URL {url!r}: write sqlite:///relative/path or sqlite:////absolute/path"
        )
    path = rest[3:]
    if path == ":memory:":
        return None
    return Path(path).expanduser()


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
