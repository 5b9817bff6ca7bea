"""The SQLite back-end of the monitor's store: the embedded default, for one machine.

WAL journal (readers never block the writer), ``synchronous=FULL`` (a committed batch
survives a power cut, so its alerts are never re-queued), a busy timeout, and every write
in a ``BEGIN IMMEDIATE`` transaction, which takes the database's write lock up front: the
lease check and the update it guards cannot interleave with another process's. Leases work
as in PostgreSQL (a lease row with an expiry), between processes of one machine. Leases
and alert claims run on this machine's clock, whatever ``now`` a caller passes: the SQL
function ``pinwarden_clock()``, this process's clock in the stored unit.

Times are stored as integer microseconds since the epoch (UTC); JSON as text. The calls whose
SQL both back-ends share are in :mod:`pinwarden.ct._store_sql`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pinwarden.ct._store_dialect import _INSERT_ALERT
from pinwarden.ct._store_sql import _SQLStore
from pinwarden.ct._store_types import OutboxEvent, _now
from pinwarden.errors import StoreError

__all__ = ["SQLiteStore"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pinwarden_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE ct_logs (
    log_id BLOB PRIMARY KEY,
    position INTEGER NOT NULL DEFAULT 0,
    tree_size INTEGER,
    root_hash BLOB,
    head BLOB,
    compact_range BLOB,
    lease_owner TEXT,
    lease_expires INTEGER,
    registered_at INTEGER NOT NULL,
    updated_at INTEGER
);
CREATE TABLE ct_findings (
    tbs_hash BLOB PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    reasons TEXT NOT NULL,
    names TEXT NOT NULL,
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_before INTEGER,
    not_after INTEGER,
    cert_sha256 BLOB NOT NULL,
    spki_pin TEXT NOT NULL,
    pem TEXT NOT NULL,
    watch_items TEXT NOT NULL,
    is_precert INTEGER NOT NULL,
    first_log_id BLOB NOT NULL,
    first_index INTEGER NOT NULL
);
CREATE INDEX ct_findings_first_seen ON ct_findings (first_seen);
CREATE TABLE ct_findings_logs (
    tbs_hash BLOB NOT NULL REFERENCES ct_findings (tbs_hash) ON DELETE CASCADE,
    log_id BLOB NOT NULL,
    entry_index INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (tbs_hash, log_id, entry_index)
);
CREATE TABLE ct_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    tbs_hash BLOB,
    log_id BLOB,
    created INTEGER NOT NULL
);
CREATE TABLE ct_alert_deliveries (
    alert_id INTEGER NOT NULL REFERENCES ct_alerts (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    delivered_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error TEXT,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX ct_alert_deliveries_due
    ON ct_alert_deliveries (channel, next_attempt) WHERE delivered_at IS NULL;
"""

# Version 1 to 2: who holds a delivery's claim and until when (the claim no longer moves
# next_attempt), and a de-duplication key for events. A new store is made as version 1 and
# upgraded, so both paths give the same tables.
_UPGRADE_TO_2_SQL = """
ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_until INTEGER;
ALTER TABLE ct_alerts ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX ct_alerts_dedup_key ON ct_alerts (dedup_key);
"""


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICRO


def _statements(script: str) -> tuple[str, ...]:
    # executescript would COMMIT our transaction first; run statement by statement.
    return tuple(statement for statement in script.split(";") if statement.strip())


class SQLiteStore(_SQLStore[sqlite3.Connection]):
    """The store in one SQLite file (``path``; None for a private in-memory database)."""

    _PARAM = "?"
    _CLOCK = "pinwarden_clock()"
    _FOR_UPDATE = ""  # BEGIN IMMEDIATE already holds the database's write lock
    _FINDINGS_ORDER = "rowid"
    _NO_LIMIT = -1
    _CREATE = _statements(_SCHEMA)
    _UPGRADE_TO_2 = _statements(_UPGRADE_TO_2_SQL)

    def __init__(self, path: Path | None, *, busy_timeout: float = 30.0) -> None:
        self.path = path.resolve() if path is not None else None
        self.url = "sqlite:///" + (str(self.path) if self.path is not None else ":memory:")
        self._lock = threading.RLock()
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._conn = sqlite3.connect(
                str(self.path) if self.path is not None else ":memory:",
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,  # calls are serialised by self._lock
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.url}: cannot open the store: {exc}") from None
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # The store's clock for the shared SQL; not deterministic, so never cached.
            self._conn.create_function("pinwarden_clock", 0, lambda: _micros(_now()))
            self._init_schema()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"{self.url}: cannot open the store: {exc}") from None
        except StoreError:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; any error rolls it back, SQLite's own
        errors come out as :class:`StoreError`."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: cannot start a transaction: {exc}") from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.url}: {exc}") from None
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: {exc}") from None

    def _schema_table(self, conn: sqlite3.Connection) -> bool:
        return bool(
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pinwarden_schema'"
            ).fetchone()
        )

    # -- the dialect ---------------------------------------------------------------------

    @staticmethod
    def _to_db(value: datetime) -> int:
        return _micros(value)

    @staticmethod
    def _from_db(value: int) -> datetime:
        return _EPOCH + value * _MICRO

    @staticmethod
    def _span(seconds: float) -> int:
        return round(seconds * 1e6)

    @staticmethod
    def _json_in(value: Any) -> str:
        return json.dumps(value)

    @staticmethod
    def _json_out(value: Any) -> Any:
        return json.loads(value)

    @staticmethod
    def _payload(event: OutboxEvent) -> str:
        return event.payload_json()

    def _insert_alert(self, conn: sqlite3.Connection, params: Sequence[Any]) -> int | None:
        cursor = conn.execute(_INSERT_ALERT, params)
        if cursor.rowcount == 0:
            return None
        alert_id = cursor.lastrowid
        assert alert_id is not None  # an INSERT into a rowid table always sets it
        return alert_id

    def _sightings(self, conn: sqlite3.Connection, tbs_hashes: Sequence[bytes]) -> Iterator[Any]:
        for tbs in tbs_hashes:
            for log_id, index, seen_at in conn.execute(
                "SELECT log_id, entry_index, seen_at FROM ct_findings_logs WHERE tbs_hash = ? "
                "ORDER BY seen_at, log_id, entry_index",
                (tbs,),
            ):
                yield tbs, log_id, index, seen_at

    # -- what SQLite does its own way ----------------------------------------------------

    def _lease_free_log(
        self,
        conn: sqlite3.Connection,
        worker_id: str,
        lease: int,
        among: Collection[bytes] | None,
    ) -> bytes | None:
        # The candidates travel as one JSON array of hex IDs: any number of them in one
        # statement, under SQLite's limit on bound parameters.
        wanted = None if among is None else json.dumps([bytes(i).hex().upper() for i in among])
        now = _micros(_now())
        row = conn.execute(
            "SELECT log_id FROM ct_logs "
            "WHERE (lease_owner IS NULL OR lease_expires <= ?) "
            "AND (? IS NULL OR hex(log_id) IN (SELECT value FROM json_each(?))) "
            "ORDER BY lease_expires IS NOT NULL, lease_expires, log_id LIMIT 1",
            (now, wanted, wanted),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE ct_logs SET lease_owner = ?, lease_expires = ? WHERE log_id = ?",
            (worker_id, now + lease, row[0]),
        )
        return bytes(row[0])

    def _claim_due(
        self,
        conn: sqlite3.Connection,
        channel: str,
        at: int,
        limit: int,
        span: int,
        worker_id: str | None,
    ) -> list[Any]:
        clock = _micros(_now())
        rows: list[Any] = conn.execute(
            "SELECT a.id, a.kind, a.payload, a.created, d.attempts, d.last_error, "
            "a.tbs_hash, a.log_id FROM ct_alert_deliveries d "
            "JOIN ct_alerts a ON a.id = d.alert_id "
            "WHERE d.channel = ? AND d.delivered_at IS NULL AND d.next_attempt <= ? "
            "AND (d.claimed_until IS NULL OR d.claimed_until <= ?) "
            "ORDER BY a.id LIMIT ?",
            (channel, at, clock, limit),
        ).fetchall()
        conn.executemany(
            "UPDATE ct_alert_deliveries SET claimed_by = ?, claimed_until = ? "
            "WHERE alert_id = ? AND channel = ?",
            [(worker_id, clock + span, row[0], channel) for row in rows],
        )
        return rows
