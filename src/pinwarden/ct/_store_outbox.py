"""The alert outbox of the monitor's store in SQL portable between SQLite and PostgreSQL:
queueing events with a delivery row per channel, claiming the due ones, settling them.

A mixin of :class:`~pinwarden.ct._store_sql._SQLStore`, separate from it so the outbox's
bookkeeping reads apart from the logs, leases and findings; the dialect comes from
:mod:`pinwarden.ct._store_dialect`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pinwarden.ct._store_checks import _check_enqueue, _check_worker
from pinwarden.ct._store_dialect import _C, _Dialect
from pinwarden.ct._store_types import DEFAULT_CLAIM, DueAlert, OutboxEvent, _aware, _seconds
from pinwarden.errors import StoreError

__all__: list[str] = []


class _OutboxSQL(_Dialect[_C]):
    """The outbox calls of :class:`~pinwarden.ct.store.Store`, and the queueing of one event
    that :meth:`~pinwarden.ct.store.Store.commit_batch` shares."""

    def _insert_event(self, conn: _C, event: OutboxEvent, payload: Any, stamp: Any) -> int | None:
        """The new alert's ID, or None when its dedup_key was queued before."""
        params = (event.kind, payload, event.tbs_hash, event.log_id, stamp, event.dedup_key)
        alert_id = self._insert_alert(conn, params)
        if alert_id is None:
            return None
        with contextlib.closing(conn.cursor()) as cursor:
            cursor.executemany(
                self._sql(
                    "INSERT INTO ct_alert_deliveries (alert_id, channel, next_attempt) "
                    "VALUES (?, ?, ?)"
                ),
                [(alert_id, channel, stamp) for channel in event.channels],
            )
        return alert_id

    def enqueue(
        self, events: Sequence[OutboxEvent], *, now: datetime | None = None
    ) -> tuple[int, ...]:
        _check_enqueue(events)
        stamp = self._stamp(now)
        payloads = [self._payload(event) for event in events]
        with self._write() as conn:
            ids = [
                self._insert_event(conn, event, payload, stamp)
                for event, payload in zip(events, payloads, strict=True)
            ]
        return tuple(alert_id for alert_id in ids if alert_id is not None)

    def due_alerts(
        self,
        channel: str,
        now: datetime,
        *,
        limit: int = 100,
        claim: timedelta = DEFAULT_CLAIM,
        worker_id: str | None = None,
    ) -> tuple[DueAlert, ...]:
        at = self._to_db(_aware(now, "now"))
        span = self._span(_seconds(claim, "claim"))
        with self._write() as conn:
            rows = self._claim_due(conn, channel, at, limit, span, worker_id)
        return tuple(
            DueAlert(
                id=row[0],
                channel=channel,
                kind=row[1],
                payload=self._json_out(row[2]),
                created=self._from_db(row[3]),
                attempts=row[4],
                last_error=row[5],
                tbs_hash=None if row[6] is None else bytes(row[6]),
                log_id=None if row[7] is None else bytes(row[7]),
            )
            for row in sorted(rows, key=lambda r: int(r[0]))
        )

    def mark_delivered(self, alert_id: int, channel: str, *, now: datetime | None = None) -> None:
        stamp = self._stamp(now)
        with self._write() as conn:
            found = conn.execute(
                self._sql(
                    "SELECT delivered_at FROM ct_alert_deliveries "
                    "WHERE alert_id = ? AND channel = ?{for_update}"
                ),
                (alert_id, channel),
            ).fetchone()
            if found is None:
                raise StoreError(f"no alert {alert_id} for channel {channel!r}")
            if found[0] is None:
                conn.execute(
                    self._sql(
                        "UPDATE ct_alert_deliveries SET delivered_at = ?, attempts = attempts + 1, "
                        "claimed_by = NULL, claimed_until = NULL "
                        "WHERE alert_id = ? AND channel = ?"
                    ),
                    (stamp, alert_id, channel),
                )

    def mark_failed(
        self, alert_id: int, channel: str, next_attempt: datetime, *, error: str | None = None
    ) -> None:
        retry = self._to_db(_aware(next_attempt, "next_attempt"))
        with self._write() as conn:
            cursor = conn.execute(
                self._sql(
                    "UPDATE ct_alert_deliveries SET attempts = attempts + 1, next_attempt = ?, "
                    "last_error = ?, claimed_by = NULL, claimed_until = NULL "
                    "WHERE alert_id = ? AND channel = ? AND delivered_at IS NULL"
                ),
                (retry, error, alert_id, channel),
            )
            if cursor.rowcount == 0:
                exists = conn.execute(
                    self._sql(
                        "SELECT 1 FROM ct_alert_deliveries WHERE alert_id = ? AND channel = ?"
                    ),
                    (alert_id, channel),
                ).fetchone()
                if exists is None:
                    raise StoreError(f"no alert {alert_id} for channel {channel!r}")

    def release_claims(self, worker_id: str, *, channel: str | None = None) -> int:
        _check_worker(worker_id)
        with self._write() as conn:
            cursor = conn.execute(
                self._sql(
                    "UPDATE ct_alert_deliveries SET claimed_by = NULL, claimed_until = NULL "
                    "WHERE claimed_by = ? AND delivered_at IS NULL "
                    "AND (CAST(? AS TEXT) IS NULL OR channel = ?)"
                ),
                (worker_id, channel, channel),
            )
            return int(cursor.rowcount)

    def undelivered(self) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT channel, count(*) FROM ct_alert_deliveries "
                "WHERE delivered_at IS NULL GROUP BY channel ORDER BY channel"
            ).fetchall()
        return {str(channel): int(count) for channel, count in rows}
