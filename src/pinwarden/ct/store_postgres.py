"""The PostgreSQL back-end of the monitor's store (psycopg 3): several monitor processes, on
several machines, share the logs.

A worker leases a log with ``SELECT … FOR UPDATE SKIP LOCKED`` over the logs whose lease is
free or expired, so two workers asking at once get two different logs instead of waiting on
each other. Lease and alert-claim times are the **server's** clock (``clock_timestamp()``),
so machines with skewed clocks still agree on who holds a log or an alert. ``commit_batch``
locks the log's row (``FOR UPDATE``) and checks the lease inside the same transaction that
advances it.

The tables are those of the SQLite back-end with native types (bytea, bigint, timestamptz,
jsonb). They are created on first use under an advisory lock, so workers starting together
do not race.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    redact_url,
)
from pinwarden.errors import StoreError

try:
    import psycopg
    from psycopg.types.json import Jsonb
except ImportError:  # pragma: no cover - the optional dependency is absent
    psycopg = None  # type: ignore[assignment]

__all__ = ["PostgresStore"]

# Any constant key: pg_advisory_xact_lock serialises schema creation between workers.
_SCHEMA_LOCK = 0x70696E77  # "pinw"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS pinwarden_schema (
        component text PRIMARY KEY,
        version integer NOT NULL
    )""",
    """CREATE TABLE ct_logs (
        log_id bytea PRIMARY KEY,
        position bigint NOT NULL DEFAULT 0,
        tree_size bigint,
        root_hash bytea,
        head bytea,
        compact_range bytea,
        lease_owner text,
        lease_expires timestamptz,
        registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz
    )""",
    """CREATE TABLE ct_findings (
        tbs_hash bytea PRIMARY KEY,
        first_seen timestamptz NOT NULL,
        verdict text NOT NULL,
        reasons jsonb NOT NULL,
        names jsonb NOT NULL,
        issuer text NOT NULL,
        serial text NOT NULL,
        not_before timestamptz,
        not_after timestamptz,
        cert_sha256 bytea NOT NULL,
        spki_pin text NOT NULL,
        pem text NOT NULL,
        watch_items jsonb NOT NULL,
        is_precert boolean NOT NULL,
        first_log_id bytea NOT NULL,
        first_index bigint NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY
    )""",
    "CREATE INDEX ct_findings_first_seen ON ct_findings (first_seen, seq)",
    """CREATE TABLE ct_findings_logs (
        tbs_hash bytea NOT NULL REFERENCES ct_findings (tbs_hash) ON DELETE CASCADE,
        log_id bytea NOT NULL,
        entry_index bigint NOT NULL,
        seen_at timestamptz NOT NULL,
        PRIMARY KEY (tbs_hash, log_id, entry_index)
    )""",
    """CREATE TABLE ct_alerts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind text NOT NULL,
        payload jsonb NOT NULL,
        tbs_hash bytea,
        log_id bytea,
        created timestamptz NOT NULL
    )""",
    """CREATE TABLE ct_alert_deliveries (
        alert_id bigint NOT NULL REFERENCES ct_alerts (id) ON DELETE CASCADE,
        channel text NOT NULL,
        delivered_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt timestamptz NOT NULL,
        last_error text,
        PRIMARY KEY (alert_id, channel)
    )""",
    """CREATE INDEX ct_alert_deliveries_due
        ON ct_alert_deliveries (channel, next_attempt) WHERE delivered_at IS NULL""",
)

# Version 1 to 2 (as in the SQLite back-end): the claiming worker and the claim's end, and
# a de-duplication key for events. A new store is made as version 1 and upgraded.
_UPGRADE_TO_2 = (
    "ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_by text",
    "ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_until timestamptz",
    "ALTER TABLE ct_alerts ADD COLUMN dedup_key text",
    "CREATE UNIQUE INDEX ct_alerts_dedup_key ON ct_alerts (dedup_key)",
)

_LOG_BY_ID = (
    "SELECT log_id, position, tree_size, root_hash, head, compact_range, lease_owner, "
    "lease_expires, updated_at FROM ct_logs WHERE log_id = %s"
)
_ALL_LOGS = (
    "SELECT log_id, position, tree_size, root_hash, head, compact_range, lease_owner, "
    "lease_expires, updated_at FROM ct_logs ORDER BY log_id"
)
_FINDING_BY_HASH = (
    "SELECT tbs_hash, first_seen, verdict, reasons, names, issuer, serial, not_before, "
    "not_after, cert_sha256, spki_pin, pem, watch_items, is_precert, first_log_id, first_index "
    "FROM ct_findings WHERE tbs_hash = %s"
)
_OLDEST_FINDINGS = (
    "SELECT tbs_hash, first_seen, verdict, reasons, names, issuer, serial, not_before, "
    "not_after, cert_sha256, spki_pin, pem, watch_items, is_precert, first_log_id, first_index "
    "FROM ct_findings ORDER BY first_seen, seq LIMIT %s"
)
_INSERT_FINDING = (
    "INSERT INTO ct_findings (tbs_hash, first_seen, verdict, reasons, names, issuer, serial, "
    "not_before, not_after, cert_sha256, spki_pin, pem, watch_items, is_precert, first_log_id, "
    "first_index) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (tbs_hash) DO NOTHING RETURNING tbs_hash"
)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value)


class PostgresStore(Store):
    """The store in a PostgreSQL database (``url``: any libpq ``postgresql://`` URL)."""

    def __init__(self, url: str, *, lock_timeout: float = 30.0) -> None:
        self.url = redact_url(url)
        if psycopg is None:
            raise StoreError(
                f"{self.url}: the PostgreSQL store needs psycopg 3: "
                "pip install 'pinwarden[postgres]'"
            )
        self._conninfo = url
        self._lock_timeout_ms = max(1, round(lock_timeout * 1000))
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._lock:
            self._connection()
            try:
                self._init_schema()
            except BaseException:
                self.close()
                raise

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        extra: dict[str, Any] = {}
        if "connect_timeout" not in parse_qs(urlsplit(self._conninfo).query):
            extra["connect_timeout"] = 10
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, **extra)
            # Waiting for a row lock (another worker's batch) is bounded, never forever.
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false)", (f"{self._lock_timeout_ms}ms",)
            )
        except psycopg.Error as exc:
            raise StoreError(f"{self.url}: cannot connect: {_message(exc)}") from None
        self._conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on the (re)connected connection; psycopg's errors come out as
        :class:`StoreError`, and any error rolls the transaction back."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    yield conn
            except psycopg.Error as exc:
                raise StoreError(f"{self.url}: {_message(exc)}") from None

    def _init_schema(self) -> None:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(_SCHEMA[0])
            row = conn.execute(
                "SELECT version FROM pinwarden_schema WHERE component = %s", (SCHEMA_COMPONENT,)
            ).fetchone()
            if row is None:
                for statement in (*_SCHEMA[1:], *_UPGRADE_TO_2):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO pinwarden_schema (component, version) VALUES (%s, %s)",
                    (SCHEMA_COMPONENT, SCHEMA_VERSION),
                )
            elif row[0] == 1:
                for statement in _UPGRADE_TO_2:
                    conn.execute(statement)
                conn.execute(
                    "UPDATE pinwarden_schema SET version = %s WHERE component = %s",
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
        with self._tx() as conn:
            for log_id in ids:
                row = conn.execute(
                    "INSERT INTO ct_logs (log_id) VALUES (%s) "
                    "ON CONFLICT (log_id) DO NOTHING RETURNING log_id",
                    (log_id,),
                ).fetchone()
                if row is not None:
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
            lease_expires=expires,
            updated_at=updated,
        )

    def progress(self, log_id: bytes) -> LogProgress | None:
        with self._tx() as conn:
            row = conn.execute(
                _LOG_BY_ID,
                (log_id,),
            ).fetchone()
        return None if row is None else self._progress(row)

    def logs(self) -> tuple[LogProgress, ...]:
        with self._tx() as conn:
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
        lease = timedelta(seconds=_seconds(ttl))
        if among is not None and not among:
            return None
        wanted = None if among is None else [bytes(log_id) for log_id in among]
        with self._tx() as conn:
            row = conn.execute(
                """UPDATE ct_logs SET lease_owner = %(worker)s,
                    lease_expires = clock_timestamp() + %(lease)s
                WHERE log_id = (
                    SELECT log_id FROM ct_logs
                    WHERE (lease_owner IS NULL OR lease_expires <= clock_timestamp())
                        AND (%(any)s OR log_id = ANY(%(among)s::bytea[]))
                    ORDER BY lease_expires ASC NULLS FIRST, log_id
                    LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING log_id""",
                {"worker": worker_id, "lease": lease, "any": wanted is None, "among": wanted or []},
            ).fetchone()
        return None if row is None else bytes(row[0])

    def renew_lease(self, worker_id: str, log_id: bytes, ttl: timedelta | float) -> None:
        _check_worker(worker_id)
        lease = timedelta(seconds=_seconds(ttl))
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE ct_logs SET lease_expires = clock_timestamp() + %s "
                "WHERE log_id = %s AND lease_owner = %s AND lease_expires > clock_timestamp() "
                "RETURNING log_id",
                (lease, log_id, worker_id),
            ).fetchone()
        if row is None:
            raise _lease_lost(worker_id, log_id)

    def release_lease(self, worker_id: str, log_id: bytes) -> None:
        _check_worker(worker_id)
        with self._tx() as conn:
            # The release time stays in lease_expires so acquire_log rotates fairly.
            conn.execute(
                "UPDATE ct_logs SET lease_owner = NULL, lease_expires = clock_timestamp() "
                "WHERE log_id = %s AND lease_owner = %s",
                (log_id, worker_id),
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
        stamp = _aware(now, "now") if now is not None else _now()
        payloads = {id(event): Jsonb(event.payload) for event in events}
        for event in events:
            event.payload_json()  # refuse a payload that is not JSON before any write
        with self._tx() as conn:
            row = conn.execute(
                "SELECT position, tree_size, root_hash, lease_owner, "
                "coalesce(lease_expires > clock_timestamp(), false) "
                "FROM ct_logs WHERE log_id = %s FOR UPDATE",
                (log_id,),
            ).fetchone()
            current = None
            if row is not None:
                root = None if row[2] is None else bytes(row[2])
                current = _Current(row[0], row[1], root, row[3], row[3] is not None and row[4])
            _check_batch(log_id, current, position, head, worker_id)
            conn.execute(
                "UPDATE ct_logs SET position = %s, tree_size = %s, root_hash = %s, head = %s, "
                "compact_range = %s, updated_at = %s WHERE log_id = %s",
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
        conn: psycopg.Connection[Any], log_id: bytes, finding: Finding, stamp: datetime
    ) -> bool:
        row = conn.execute(
            _INSERT_FINDING,
            (
                finding.tbs_hash,
                stamp,
                finding.verdict,
                Jsonb(list(finding.reasons)),
                Jsonb(list(finding.names)),
                finding.issuer,
                finding.serial,
                finding.not_before,
                finding.not_after,
                finding.cert_sha256,
                finding.spki_pin,
                finding.pem,
                Jsonb(list(finding.watch_items)),
                finding.is_precert,
                log_id,
                finding.index,
            ),
        ).fetchone()
        conn.execute(
            "INSERT INTO ct_findings_logs (tbs_hash, log_id, entry_index, seen_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (finding.tbs_hash, log_id, finding.index, stamp),
        )
        return row is not None

    @staticmethod
    def _insert_event(
        conn: psycopg.Connection[Any], event: OutboxEvent, payload: Jsonb, stamp: datetime
    ) -> int | None:
        """The new alert's ID, or None when its dedup_key was queued before."""
        row = conn.execute(
            "INSERT INTO ct_alerts (kind, payload, tbs_hash, log_id, created, dedup_key) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            (event.kind, payload, event.tbs_hash, event.log_id, stamp, event.dedup_key),
        ).fetchone()
        if row is None:
            return None
        alert_id: int = row[0]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ct_alert_deliveries (alert_id, channel, next_attempt) "
                "VALUES (%s, %s, %s)",
                [(alert_id, channel, stamp) for channel in event.channels],
            )
        return alert_id

    def enqueue(
        self, events: Sequence[OutboxEvent], *, now: datetime | None = None
    ) -> tuple[int, ...]:
        _check_enqueue(events)
        stamp = _aware(now, "now") if now is not None else _now()
        for event in events:
            event.payload_json()
        with self._tx() as conn:
            ids = [self._insert_event(conn, event, Jsonb(event.payload), stamp) for event in events]
        return tuple(alert_id for alert_id in ids if alert_id is not None)

    # -- findings ------------------------------------------------------------------------

    def _records(
        self, conn: psycopg.Connection[Any], query: str, params: Sequence[Any]
    ) -> tuple[FindingRecord, ...]:
        found = conn.execute(
            query,
            params,
        ).fetchall()
        sightings: dict[bytes, list[FindingLog]] = {}
        if found:
            for tbs, log_id, index, seen_at in conn.execute(
                "SELECT tbs_hash, log_id, entry_index, seen_at FROM ct_findings_logs "
                "WHERE tbs_hash = ANY(%s) ORDER BY seen_at, log_id, entry_index",
                ([bytes(row[0]) for row in found],),
            ):
                sightings.setdefault(bytes(tbs), []).append(
                    FindingLog(bytes(log_id), index, seen_at)
                )
        records = []
        for row in found:
            tbs = bytes(row[0])
            finding = Finding(
                tbs_hash=tbs,
                index=row[15],
                verdict=row[2],
                reasons=_strings(row[3]),
                names=_strings(row[4]),
                issuer=row[5],
                serial=row[6],
                not_before=row[7],
                not_after=row[8],
                cert_sha256=bytes(row[9]),
                spki_pin=row[10],
                pem=row[11],
                watch_items=_strings(row[12]),
                is_precert=row[13],
            )
            records.append(FindingRecord(finding, row[1], tuple(sightings.get(tbs, ()))))
        return tuple(records)

    def finding(self, tbs_hash: bytes) -> FindingRecord | None:
        with self._tx() as conn:
            records = self._records(conn, _FINDING_BY_HASH, (tbs_hash,))
        return records[0] if records else None

    def findings(self, *, limit: int | None = None) -> tuple[FindingRecord, ...]:
        with self._tx() as conn:
            return self._records(conn, _OLDEST_FINDINGS, (limit,))

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
        span = timedelta(seconds=_seconds(claim, "claim"))
        with self._tx() as conn:
            rows = conn.execute(
                """WITH due AS (
                    SELECT alert_id FROM ct_alert_deliveries
                    WHERE channel = %(channel)s AND delivered_at IS NULL
                        AND next_attempt <= %(now)s
                        AND (claimed_until IS NULL OR claimed_until <= clock_timestamp())
                    ORDER BY alert_id LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED)
                UPDATE ct_alert_deliveries d
                SET claimed_by = %(worker)s, claimed_until = clock_timestamp() + %(span)s
                FROM due, ct_alerts a
                WHERE d.alert_id = due.alert_id AND d.channel = %(channel)s
                    AND a.id = d.alert_id
                RETURNING a.id, a.kind, a.payload, a.created, d.attempts, d.last_error,
                    a.tbs_hash, a.log_id""",
                {
                    "channel": channel,
                    "now": at,
                    "limit": limit,
                    "worker": worker_id,
                    "span": span,
                },
            ).fetchall()
        return tuple(
            DueAlert(
                id=row[0],
                channel=channel,
                kind=row[1],
                payload=row[2],
                created=row[3],
                attempts=row[4],
                last_error=row[5],
                tbs_hash=None if row[6] is None else bytes(row[6]),
                log_id=None if row[7] is None else bytes(row[7]),
            )
            for row in sorted(rows, key=lambda r: int(r[0]))
        )

    def mark_delivered(self, alert_id: int, channel: str, *, now: datetime | None = None) -> None:
        stamp = _aware(now, "now") if now is not None else _now()
        with self._tx() as conn:
            found = conn.execute(
                "SELECT delivered_at FROM ct_alert_deliveries "
                "WHERE alert_id = %s AND channel = %s FOR UPDATE",
                (alert_id, channel),
            ).fetchone()
            if found is None:
                raise StoreError(f"no alert {alert_id} for channel {channel!r}")
            if found[0] is None:
                conn.execute(
                    "UPDATE ct_alert_deliveries SET delivered_at = %s, attempts = attempts + 1, "
                    "claimed_by = NULL, claimed_until = NULL "
                    "WHERE alert_id = %s AND channel = %s",
                    (stamp, alert_id, channel),
                )

    def mark_failed(
        self, alert_id: int, channel: str, next_attempt: datetime, *, error: str | None = None
    ) -> None:
        retry = _aware(next_attempt, "next_attempt")
        with self._tx() as conn:
            found = conn.execute(
                "SELECT 1 FROM ct_alert_deliveries WHERE alert_id = %s AND channel = %s",
                (alert_id, channel),
            ).fetchone()
            if found is None:
                raise StoreError(f"no alert {alert_id} for channel {channel!r}")
            conn.execute(
                "UPDATE ct_alert_deliveries SET attempts = attempts + 1, next_attempt = %s, "
                "last_error = %s, claimed_by = NULL, claimed_until = NULL "
                "WHERE alert_id = %s AND channel = %s AND delivered_at IS NULL",
                (retry, error, alert_id, channel),
            )

    def release_claims(self, worker_id: str, *, channel: str | None = None) -> int:
        _check_worker(worker_id)
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE ct_alert_deliveries SET claimed_by = NULL, claimed_until = NULL "
                "WHERE claimed_by = %(worker)s AND delivered_at IS NULL "
                "AND (%(channel)s::text IS NULL OR channel = %(channel)s)",
                {"worker": worker_id, "channel": channel},
            )
            return cursor.rowcount

    def undelivered(self) -> dict[str, int]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT channel, count(*) FROM ct_alert_deliveries "
                "WHERE delivered_at IS NULL GROUP BY channel ORDER BY channel"
            ).fetchall()
        return {str(channel): int(count) for channel, count in rows}


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
