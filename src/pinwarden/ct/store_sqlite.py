"""The SQLite back-end of the monitor's store: the embedded default, for one machine.

WAL journal (readers never block the writer), ``synchronous=FULL`` (a committed batch
survives a power cut, so its alerts are never re-queued), a busy timeout, and every write
in a ``BEGIN IMMEDIATE`` transaction, which takes the database's write lock up front: the
lease check and the update it guards cannot interleave with another process's. Leases work
as in PostgreSQL (a lease row with an expiry), between processes of one machine. Leases
and alert claims run on this machine's clock, whatever ``now`` a caller passes.

Times are stored as integer microseconds since the epoch (UTC); JSON as text.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pinwarden.ct.store import (
    DEFAULT_CLAIM,
    SCHEMA_COMPONENT,
    SCHEMA_VERSION,
    DueAlert,
    Finding,
    FindingLog,
    FindingRecord,
    LogProgress,
    OutboxEvent,
    Store,
    StoredTreeHead,
    _aware,
    _check_batch,
    _check_enqueue,
    _check_worker,
    _Current,
    _events_to_queue,
    _lease_lost,
    _new_findings,
    _now,
    _seconds,
)
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
_UPGRADE_TO_2 = """
ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_until INTEGER;
ALTER TABLE ct_alerts ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX ct_alerts_dedup_key ON ct_alerts (dedup_key);
"""

_LOG_BY_ID = (
    "SELECT log_id, position, tree_size, root_hash, head, compact_range, lease_owner, "
    "lease_expires, updated_at FROM ct_logs WHERE log_id = ?"
)
_ALL_LOGS = (
    "SELECT log_id, position, tree_size, root_hash, head, compact_range, lease_owner, "
    "lease_expires, updated_at FROM ct_logs ORDER BY log_id"
)
_FINDING_BY_HASH = (
    "SELECT tbs_hash, first_seen, verdict, reasons, names, issuer, serial, not_before, "
    "not_after, cert_sha256, spki_pin, pem, watch_items, is_precert, first_log_id, first_index "
    "FROM ct_findings WHERE tbs_hash = ?"
)
_OLDEST_FINDINGS = (
    "SELECT tbs_hash, first_seen, verdict, reasons, names, issuer, serial, not_before, "
    "not_after, cert_sha256, spki_pin, pem, watch_items, is_precert, first_log_id, first_index "
    "FROM ct_findings ORDER BY first_seen, rowid LIMIT ?"
)
_INSERT_FINDING = (
    "INSERT INTO ct_findings (tbs_hash, first_seen, verdict, reasons, names, issuer, serial, "
    "not_before, not_after, cert_sha256, spki_pin, pem, watch_items, is_precert, first_log_id, "
    "first_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tbs_hash) DO NOTHING"
)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICRO


def _time(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + value * _MICRO


def _json_list(text: str) -> tuple[str, ...]:
    return tuple(str(item) for item in json.loads(text))


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript would COMMIT our transaction first; run statement by statement.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


class SQLiteStore(Store):
    """The store in one SQLite file (``path``; None for a private in-memory database)."""

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

    def _init_schema(self) -> None:
        with self._write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pinwarden_schema'"
            ).fetchone()
            row = (
                conn.execute(
                    "SELECT version FROM pinwarden_schema WHERE component = ?",
                    (SCHEMA_COMPONENT,),
                ).fetchone()
                if exists
                else None
            )
            if row is None:
                _run_script(conn, _SCHEMA)
                _run_script(conn, _UPGRADE_TO_2)
                conn.execute(
                    "INSERT INTO pinwarden_schema (component, version) VALUES (?, ?)",
                    (SCHEMA_COMPONENT, SCHEMA_VERSION),
                )
            elif row[0] == 1:
                _run_script(conn, _UPGRADE_TO_2)
                conn.execute(
                    "UPDATE pinwarden_schema SET version = ? WHERE component = ?",
                    (SCHEMA_VERSION, SCHEMA_COMPONENT),
                )
            elif row[0] != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.url}: the store has schema version {row[0]} of {SCHEMA_COMPONENT}; "
                    f"this pinwarden uses version {SCHEMA_VERSION}"
                )

    # -- logs and leases -----------------------------------------------------------------

    def register_logs(self, log_ids: Iterable[bytes]) -> tuple[bytes, ...]:
        ids = list(dict.fromkeys(bytes(log_id) for log_id in log_ids))
        added: list[bytes] = []
        stamp = _micros(_now())
        with self._write() as conn:
            for log_id in ids:
                cursor = conn.execute(
                    "INSERT INTO ct_logs (log_id, registered_at) VALUES (?, ?) "
                    "ON CONFLICT (log_id) DO NOTHING",
                    (log_id, stamp),
                )
                if cursor.rowcount == 1:
                    added.append(log_id)
        return tuple(added)

    @staticmethod
    def _progress(row: Sequence[Any]) -> LogProgress:
        log_id, position, tree_size, root_hash, head, compact, owner, expires, updated = row
        return LogProgress(
            log_id=bytes(log_id),
            position=position,
            head=None
            if tree_size is None
            else StoredTreeHead(tree_size, bytes(root_hash), bytes(head or b"")),
            compact_range=None if compact is None else bytes(compact),
            lease_owner=owner,
            lease_expires=_time(expires),
            updated_at=_time(updated),
        )

    def progress(self, log_id: bytes) -> LogProgress | None:
        with self._read() as conn:
            row = conn.execute(_LOG_BY_ID, (log_id,)).fetchone()
        return None if row is None else self._progress(row)

    def logs(self) -> tuple[LogProgress, ...]:
        with self._read() as conn:
            rows = conn.execute(_ALL_LOGS).fetchall()
        return tuple(self._progress(row) for row in rows)

    def acquire_log(
        self,
        worker_id: str,
        ttl: timedelta | float,
        *,
        among: Collection[bytes] | None = None,
    ) -> bytes | None:
        _check_worker(worker_id)
        seconds = _seconds(ttl)
        if among is not None and not among:
            return None
        # The candidates travel as one JSON array of hex IDs: any number of them in one
        # statement, under SQLite's limit on bound parameters.
        wanted = None if among is None else json.dumps([bytes(i).hex().upper() for i in among])
        with self._write() as conn:
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
                (worker_id, now + round(seconds * 1e6), row[0]),
            )
            return bytes(row[0])

    def renew_lease(self, worker_id: str, log_id: bytes, ttl: timedelta | float) -> None:
        _check_worker(worker_id)
        seconds = _seconds(ttl)
        with self._write() as conn:
            now = _micros(_now())
            cursor = conn.execute(
                "UPDATE ct_logs SET lease_expires = ? "
                "WHERE log_id = ? AND lease_owner = ? AND lease_expires > ?",
                (now + round(seconds * 1e6), log_id, worker_id, now),
            )
            if cursor.rowcount != 1:
                raise _lease_lost(worker_id, log_id)

    def release_lease(self, worker_id: str, log_id: bytes) -> None:
        _check_worker(worker_id)
        with self._write() as conn:
            # The release time stays in lease_expires so acquire_log rotates fairly.
            conn.execute(
                "UPDATE ct_logs SET lease_owner = NULL, lease_expires = ? "
                "WHERE log_id = ? AND lease_owner = ?",
                (_micros(_now()), log_id, worker_id),
            )

    # -- the batch -----------------------------------------------------------------------

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
        if worker_id is not None:
            _check_worker(worker_id)
        stamp = _micros(_aware(now, "now") if now is not None else _now())
        payloads = {id(event): event.payload_json() for event in events}
        with self._write() as conn:
            row = conn.execute(
                "SELECT position, tree_size, root_hash, lease_owner, lease_expires "
                "FROM ct_logs WHERE log_id = ?",
                (log_id,),
            ).fetchone()
            current = None
            if row is not None:
                live = row[3] is not None and row[4] is not None and row[4] > _micros(_now())
                root = None if row[2] is None else bytes(row[2])
                current = _Current(row[0], row[1], root, row[3], live)
            _check_batch(log_id, current, position, head, worker_id)
            conn.execute(
                "UPDATE ct_logs SET position = ?, tree_size = ?, root_hash = ?, head = ?, "
                "compact_range = ?, updated_at = ? WHERE log_id = ?",
                (
                    position,
                    head.tree_size,
                    head.root_hash,
                    head.blob,
                    compact_range,
                    stamp,
                    log_id,
                ),
            )
            inserted = [self._insert_finding(conn, log_id, f, stamp) for f in findings]
            new, new_hashes = _new_findings(findings, inserted)
            for event in _events_to_queue(events, findings, new_hashes):
                self._insert_event(conn, event, payloads[id(event)], stamp)
        return new

    @staticmethod
    def _insert_finding(
        conn: sqlite3.Connection, log_id: bytes, finding: Finding, stamp: int
    ) -> bool:
        cursor = conn.execute(
            _INSERT_FINDING,
            (
                finding.tbs_hash,
                stamp,
                finding.verdict,
                json.dumps(list(finding.reasons)),
                json.dumps(list(finding.names)),
                finding.issuer,
                finding.serial,
                None if finding.not_before is None else _micros(finding.not_before),
                None if finding.not_after is None else _micros(finding.not_after),
                finding.cert_sha256,
                finding.spki_pin,
                finding.pem,
                json.dumps(list(finding.watch_items)),
                int(finding.is_precert),
                log_id,
                finding.index,
            ),
        )
        conn.execute(
            "INSERT INTO ct_findings_logs (tbs_hash, log_id, entry_index, seen_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (finding.tbs_hash, log_id, finding.index, stamp),
        )
        return cursor.rowcount == 1

    @staticmethod
    def _insert_event(
        conn: sqlite3.Connection, event: OutboxEvent, payload: str, stamp: int
    ) -> int | None:
        """The new alert's ID, or None when its dedup_key was queued before."""
        cursor = conn.execute(
            "INSERT INTO ct_alerts (kind, payload, tbs_hash, log_id, created, dedup_key) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING",
            (event.kind, payload, event.tbs_hash, event.log_id, stamp, event.dedup_key),
        )
        if cursor.rowcount == 0:
            return None
        alert_id = cursor.lastrowid
        assert alert_id is not None  # an INSERT into a rowid table always sets it
        conn.executemany(
            "INSERT INTO ct_alert_deliveries (alert_id, channel, next_attempt) VALUES (?, ?, ?)",
            [(alert_id, channel, stamp) for channel in event.channels],
        )
        return alert_id

    def enqueue(
        self, events: Sequence[OutboxEvent], *, now: datetime | None = None
    ) -> tuple[int, ...]:
        _check_enqueue(events)
        stamp = _micros(_aware(now, "now") if now is not None else _now())
        payloads = [event.payload_json() for event in events]
        with self._write() as conn:
            ids = [
                self._insert_event(conn, event, payload, stamp)
                for event, payload in zip(events, payloads, strict=True)
            ]
        return tuple(alert_id for alert_id in ids if alert_id is not None)

    # -- findings ------------------------------------------------------------------------

    def _records(
        self, conn: sqlite3.Connection, query: str, params: Sequence[Any]
    ) -> tuple[FindingRecord, ...]:
        rows = conn.execute(query, params)
        found = rows.fetchall()
        sightings: dict[bytes, list[FindingLog]] = {}
        for row in found:
            for log_id, index, seen_at in conn.execute(
                "SELECT log_id, entry_index, seen_at FROM ct_findings_logs WHERE tbs_hash = ? "
                "ORDER BY seen_at, log_id, entry_index",
                (row[0],),
            ):
                sightings.setdefault(bytes(row[0]), []).append(
                    FindingLog(bytes(log_id), index, _EPOCH + seen_at * _MICRO)
                )
        records = []
        for row in found:
            tbs = bytes(row[0])
            finding = Finding(
                tbs_hash=tbs,
                index=row[15],
                verdict=row[2],
                reasons=_json_list(row[3]),
                names=_json_list(row[4]),
                issuer=row[5],
                serial=row[6],
                not_before=_time(row[7]),
                not_after=_time(row[8]),
                cert_sha256=bytes(row[9]),
                spki_pin=row[10],
                pem=row[11],
                watch_items=_json_list(row[12]),
                is_precert=bool(row[13]),
            )
            records.append(
                FindingRecord(finding, _EPOCH + row[1] * _MICRO, tuple(sightings.get(tbs, ())))
            )
        return tuple(records)

    def finding(self, tbs_hash: bytes) -> FindingRecord | None:
        with self._read() as conn:
            records = self._records(conn, _FINDING_BY_HASH, (tbs_hash,))
        return records[0] if records else None

    def findings(self, *, limit: int | None = None) -> tuple[FindingRecord, ...]:
        with self._read() as conn:
            return self._records(conn, _OLDEST_FINDINGS, (-1 if limit is None else limit,))

    # -- the outbox ----------------------------------------------------------------------

    def due_alerts(
        self,
        channel: str,
        now: datetime,
        *,
        limit: int = 100,
        claim: timedelta = DEFAULT_CLAIM,
        worker_id: str | None = None,
    ) -> tuple[DueAlert, ...]:
        at = _aware(now, "now")
        span = round(_seconds(claim, "claim") * 1e6)
        with self._write() as conn:
            clock = _micros(_now())
            rows = conn.execute(
                "SELECT a.id, a.kind, a.payload, a.created, d.attempts, d.last_error, "
                "a.tbs_hash, a.log_id FROM ct_alert_deliveries d "
                "JOIN ct_alerts a ON a.id = d.alert_id "
                "WHERE d.channel = ? AND d.delivered_at IS NULL AND d.next_attempt <= ? "
                "AND (d.claimed_until IS NULL OR d.claimed_until <= ?) "
                "ORDER BY a.id LIMIT ?",
                (channel, _micros(at), clock, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE ct_alert_deliveries SET claimed_by = ?, claimed_until = ? "
                "WHERE alert_id = ? AND channel = ?",
                [(worker_id, clock + span, row[0], channel) for row in rows],
            )
        return tuple(
            DueAlert(
                id=row[0],
                channel=channel,
                kind=row[1],
                payload=json.loads(row[2]),
                created=_EPOCH + row[3] * _MICRO,
                attempts=row[4],
                last_error=row[5],
                tbs_hash=None if row[6] is None else bytes(row[6]),
                log_id=None if row[7] is None else bytes(row[7]),
            )
            for row in rows
        )

    def mark_delivered(self, alert_id: int, channel: str, *, now: datetime | None = None) -> None:
        stamp = _micros(_aware(now, "now") if now is not None else _now())
        with self._write() as conn:
            found = conn.execute(
                "SELECT delivered_at FROM ct_alert_deliveries WHERE alert_id = ? AND channel = ?",
                (alert_id, channel),
            ).fetchone()
            if found is None:
                raise StoreError(f"no alert {alert_id} for channel {channel!r}")
            if found[0] is None:
                conn.execute(
                    "UPDATE ct_alert_deliveries SET delivered_at = ?, attempts = attempts + 1, "
                    "claimed_by = NULL, claimed_until = NULL WHERE alert_id = ? AND channel = ?",
                    (stamp, alert_id, channel),
                )

    def mark_failed(
        self, alert_id: int, channel: str, next_attempt: datetime, *, error: str | None = None
    ) -> None:
        retry = _micros(_aware(next_attempt, "next_attempt"))
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE ct_alert_deliveries SET attempts = attempts + 1, next_attempt = ?, "
                "last_error = ?, claimed_by = NULL, claimed_until = NULL "
                "WHERE alert_id = ? AND channel = ? AND delivered_at IS NULL",
                (retry, error, alert_id, channel),
            )
            if cursor.rowcount == 0:
                exists = conn.execute(
                    "SELECT 1 FROM ct_alert_deliveries WHERE alert_id = ? AND channel = ?",
                    (alert_id, channel),
                ).fetchone()
                if exists is None:
                    raise StoreError(f"no alert {alert_id} for channel {channel!r}")

    def release_claims(self, worker_id: str, *, channel: str | None = None) -> int:
        _check_worker(worker_id)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE ct_alert_deliveries SET claimed_by = NULL, claimed_until = NULL "
                "WHERE claimed_by = ? AND delivered_at IS NULL AND (? IS NULL OR channel = ?)",
                (worker_id, channel, channel),
            )
            return cursor.rowcount

    def undelivered(self) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT channel, count(*) FROM ct_alert_deliveries "
                "WHERE delivered_at IS NULL GROUP BY channel ORDER BY channel"
            ).fetchall()
        return {str(channel): int(count) for channel, count in rows}
