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
do not race. The calls whose SQL both back-ends share are in
:mod:`pinwarden.ct._store_sql`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pinwarden.ct._store_dialect import _INSERT_ALERT
from pinwarden.ct._store_sql import _SQLStore
from pinwarden.ct._store_types import OutboxEvent
from pinwarden.ct._store_url import redact_url
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
_UPGRADE_STATEMENTS = (
    "ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_by text",
    "ALTER TABLE ct_alert_deliveries ADD COLUMN claimed_until timestamptz",
    "ALTER TABLE ct_alerts ADD COLUMN dedup_key text",
    "CREATE UNIQUE INDEX ct_alerts_dedup_key ON ct_alerts (dedup_key)",
)


class PostgresStore(_SQLStore["psycopg.Connection[Any]"]):
    """The store in a PostgreSQL database (``url``: any libpq ``postgresql://`` URL)."""

    _PARAM = "%s"
    _CLOCK = "clock_timestamp()"
    _FOR_UPDATE = " FOR UPDATE"
    _FINDINGS_ORDER = "seq"
    _NO_LIMIT = None
    _CREATE = _SCHEMA[1:]
    _UPGRADE_TO_2 = _UPGRADE_STATEMENTS

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

    # Reads take a transaction too: a batch's rows are seen whole or not at all.
    _read = _tx
    _write = _tx

    def _schema_table(self, conn: psycopg.Connection[Any]) -> bool:
        # Workers starting together wait here for the first to create the tables.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(_SCHEMA[0])
        return True

    # -- the dialect ---------------------------------------------------------------------

    @staticmethod
    def _to_db(value: datetime) -> datetime:
        return value

    @staticmethod
    def _from_db(value: datetime) -> datetime:
        return value

    @staticmethod
    def _span(seconds: float) -> timedelta:
        return timedelta(seconds=seconds)

    @staticmethod
    def _json_in(value: Any) -> Jsonb:
        return Jsonb(value)

    @staticmethod
    def _json_out(value: Any) -> Any:
        return value

    @staticmethod
    def _payload(event: OutboxEvent) -> Jsonb:
        event.payload_json()  # refuse a payload that is not JSON before any write
        return Jsonb(event.payload)

    def _insert_alert(self, conn: psycopg.Connection[Any], params: Sequence[Any]) -> int | None:
        row = conn.execute(self._sql(_INSERT_ALERT) + " RETURNING id", params).fetchone()
        return None if row is None else int(row[0])

    def _sightings(self, conn: psycopg.Connection[Any], tbs_hashes: Sequence[bytes]) -> Any:
        return conn.execute(
            "SELECT tbs_hash, log_id, entry_index, seen_at FROM ct_findings_logs "
            "WHERE tbs_hash = ANY(%s) ORDER BY seen_at, log_id, entry_index",
            (list(tbs_hashes),),
        )

    # -- what PostgreSQL does its own way ------------------------------------------------

    def _lease_free_log(
        self,
        conn: psycopg.Connection[Any],
        worker_id: str,
        lease: timedelta,
        among: Collection[bytes] | None,
    ) -> bytes | None:
        wanted = None if among is None else [bytes(log_id) for log_id in among]
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

    def _claim_due(
        self,
        conn: psycopg.Connection[Any],
        channel: str,
        at: datetime,
        limit: int,
        span: timedelta,
        worker_id: str | None,
    ) -> list[Any]:
        return conn.execute(
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
            {"channel": channel, "now": at, "limit": limit, "worker": worker_id, "span": span},
        ).fetchall()


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
