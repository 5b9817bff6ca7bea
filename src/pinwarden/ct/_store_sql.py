"""The calls of the monitor's store whose SQL is portable between SQLite and PostgreSQL
(registering and reading logs, leases, the batch, findings), written once in a base class of
both back-ends; the outbox's calls are in its mixin, :mod:`pinwarden.ct._store_outbox`.

Each back-end (:mod:`pinwarden.ct.store_sqlite`, :mod:`pinwarden.ct.store_postgres`) supplies
the dialect (:mod:`pinwarden.ct._store_dialect`). Separate from :mod:`pinwarden.ct.store`
because the interface knows nothing of SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pinwarden.ct._store_checks import (
    _check_batch,
    _check_worker,
    _Current,
    _events_to_queue,
    _lease_lost,
    _new_findings,
)
from pinwarden.ct._store_dialect import _C
from pinwarden.ct._store_outbox import _OutboxSQL
from pinwarden.ct._store_types import (
    SCHEMA_COMPONENT,
    SCHEMA_VERSION,
    Finding,
    FindingLog,
    FindingRecord,
    LogProgress,
    OutboxEvent,
    StoredTreeHead,
    _seconds,
)
from pinwarden.ct.store import Store
from pinwarden.errors import StoreError

__all__: list[str] = []


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
    "FROM ct_findings ORDER BY first_seen, {findings_order} LIMIT ?"
)
_INSERT_FINDING = (
    "INSERT INTO ct_findings (tbs_hash, first_seen, verdict, reasons, names, issuer, serial, "
    "not_before, not_after, cert_sha256, spki_pin, pem, watch_items, is_precert, first_log_id, "
    "first_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tbs_hash) DO NOTHING"
)


def _strings(value: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(item) for item in value)


class _SQLStore(_OutboxSQL[_C], Store):
    """The calls of :class:`~pinwarden.ct.store.Store` written in portable SQL; a subclass
    supplies the dialect (:class:`~pinwarden.ct._store_dialect._Dialect`)."""

    # -- the schema ----------------------------------------------------------------------

    def _init_schema(self) -> None:
        with self._write() as conn:
            row = (
                conn.execute(
                    self._sql("SELECT version FROM pinwarden_schema WHERE component = ?"),
                    (SCHEMA_COMPONENT,),
                ).fetchone()
                if self._schema_table(conn)
                else None
            )
            if row is None:
                for statement in (*self._CREATE, *self._UPGRADE_TO_2):
                    conn.execute(statement)
                conn.execute(
                    self._sql("INSERT INTO pinwarden_schema (component, version) VALUES (?, ?)"),
                    (SCHEMA_COMPONENT, SCHEMA_VERSION),
                )
            elif row[0] == 1:
                for statement in self._UPGRADE_TO_2:
                    conn.execute(statement)
                conn.execute(
                    self._sql("UPDATE pinwarden_schema SET version = ? WHERE component = ?"),
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
        insert = self._sql(
            "INSERT INTO ct_logs (log_id, registered_at) VALUES (?, {clock}) "
            "ON CONFLICT (log_id) DO NOTHING"
        )
        with self._write() as conn:
            for log_id in ids:
                if conn.execute(insert, (log_id,)).rowcount == 1:
                    added.append(log_id)
        return tuple(added)

    def _progress(self, row: Sequence[Any]) -> LogProgress:
        log_id, position, tree_size, root_hash, head, compact, owner, expires, updated = row
        return LogProgress(
            log_id=bytes(log_id),
            position=position,
            head=None
            if tree_size is None
            else StoredTreeHead(tree_size, bytes(root_hash), bytes(head or b"")),
            compact_range=None if compact is None else bytes(compact),
            lease_owner=owner,
            lease_expires=self._time(expires),
            updated_at=self._time(updated),
        )

    def progress(self, log_id: bytes) -> LogProgress | None:
        with self._read() as conn:
            row = conn.execute(self._sql(_LOG_BY_ID), (log_id,)).fetchone()
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
        lease = self._span(_seconds(ttl))
        if among is not None and not among:
            return None
        with self._write() as conn:
            return self._lease_free_log(conn, worker_id, lease, among)

    def renew_lease(self, worker_id: str, log_id: bytes, ttl: timedelta | float) -> None:
        _check_worker(worker_id)
        lease = self._span(_seconds(ttl))
        with self._write() as conn:
            cursor = conn.execute(
                self._sql(
                    "UPDATE ct_logs SET lease_expires = {clock} + ? "
                    "WHERE log_id = ? AND lease_owner = ? AND lease_expires > {clock}"
                ),
                (lease, log_id, worker_id),
            )
            if cursor.rowcount != 1:
                raise _lease_lost(worker_id, log_id)

    def release_lease(self, worker_id: str, log_id: bytes) -> None:
        _check_worker(worker_id)
        with self._write() as conn:
            # The release time stays in lease_expires so acquire_log rotates fairly.
            conn.execute(
                self._sql(
                    "UPDATE ct_logs SET lease_owner = NULL, lease_expires = {clock} "
                    "WHERE log_id = ? AND lease_owner = ?"
                ),
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
        stamp = self._stamp(now)
        payloads = {id(event): self._payload(event) for event in events}
        with self._write() as conn:
            row = conn.execute(
                self._sql(
                    "SELECT position, tree_size, root_hash, lease_owner, "
                    "CASE WHEN lease_expires > {clock} THEN 1 ELSE 0 END "
                    "FROM ct_logs WHERE log_id = ?{for_update}"
                ),
                (log_id,),
            ).fetchone()
            current = None
            if row is not None:
                root = None if row[2] is None else bytes(row[2])
                live = row[3] is not None and bool(row[4])
                current = _Current(row[0], row[1], root, row[3], live)
            _check_batch(log_id, current, position, head, worker_id)
            conn.execute(
                self._sql(
                    "UPDATE ct_logs SET position = ?, tree_size = ?, root_hash = ?, head = ?, "
                    "compact_range = ?, updated_at = ? WHERE log_id = ?"
                ),
                (position, head.tree_size, head.root_hash, head.blob, compact_range, stamp, log_id),
            )
            inserted = [self._insert_finding(conn, log_id, f, stamp) for f in findings]
            new, new_hashes = _new_findings(findings, inserted)
            for event in _events_to_queue(events, findings, new_hashes):
                self._insert_event(conn, event, payloads[id(event)], stamp)
        return new

    def _insert_finding(self, conn: _C, log_id: bytes, finding: Finding, stamp: Any) -> bool:
        cursor = conn.execute(
            self._sql(_INSERT_FINDING),
            (
                finding.tbs_hash,
                stamp,
                finding.verdict,
                self._json_in(list(finding.reasons)),
                self._json_in(list(finding.names)),
                finding.issuer,
                finding.serial,
                None if finding.not_before is None else self._to_db(finding.not_before),
                None if finding.not_after is None else self._to_db(finding.not_after),
                finding.cert_sha256,
                finding.spki_pin,
                finding.pem,
                self._json_in(list(finding.watch_items)),
                finding.is_precert,
                log_id,
                finding.index,
            ),
        )
        conn.execute(
            self._sql(
                "INSERT INTO ct_findings_logs (tbs_hash, log_id, entry_index, seen_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            (finding.tbs_hash, log_id, finding.index, stamp),
        )
        return bool(cursor.rowcount == 1)

    # -- findings ------------------------------------------------------------------------

    def _records(self, conn: _C, query: str, params: Sequence[Any]) -> tuple[FindingRecord, ...]:
        found = conn.execute(self._sql(query), params).fetchall()
        sightings: dict[bytes, list[FindingLog]] = {}
        if found:
            for tbs, log_id, index, seen_at in self._sightings(
                conn, [bytes(row[0]) for row in found]
            ):
                sightings.setdefault(bytes(tbs), []).append(
                    FindingLog(bytes(log_id), index, self._from_db(seen_at))
                )
        records = []
        for row in found:
            tbs = bytes(row[0])
            finding = Finding(
                tbs_hash=tbs,
                index=row[15],
                verdict=row[2],
                reasons=_strings(self._json_out(row[3])),
                names=_strings(self._json_out(row[4])),
                issuer=row[5],
                serial=row[6],
                not_before=self._time(row[7]),
                not_after=self._time(row[8]),
                cert_sha256=bytes(row[9]),
                spki_pin=row[10],
                pem=row[11],
                watch_items=_strings(self._json_out(row[12])),
                is_precert=bool(row[13]),
            )
            records.append(
                FindingRecord(finding, self._from_db(row[1]), tuple(sightings.get(tbs, ())))
            )
        return tuple(records)

    def finding(self, tbs_hash: bytes) -> FindingRecord | None:
        with self._read() as conn:
            records = self._records(conn, _FINDING_BY_HASH, (tbs_hash,))
        return records[0] if records else None

    def findings(self, *, limit: int | None = None) -> tuple[FindingRecord, ...]:
        with self._read() as conn:
            return self._records(
                conn,
                _OLDEST_FINDINGS,
                (self._NO_LIMIT if limit is None else limit,),
            )
