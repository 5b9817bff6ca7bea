"""What a back-end of the monitor's store must supply for the shared SQL of
:mod:`pinwarden.ct._store_sql`: its placeholder, the SQL expression of its clock, how it stores
a time, a duration and JSON, its transactions, and the few statements that cannot be written
once (finding the schema table, inserting an alert, reading sightings, leasing a log, claiming
due alerts).

Separate from :mod:`pinwarden.ct._store_sql` so the list of what a dialect decides reads in one
place, apart from the SQL written once for both.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pinwarden.ct._store_types import OutboxEvent, _aware, _now

__all__: list[str] = []


class _Connection(Protocol):
    """What the shared code needs of a connection (sqlite3's and psycopg's both have it)."""

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...

    def cursor(self) -> Any: ...


_C = TypeVar("_C", bound=_Connection)

_INSERT_ALERT = (
    "INSERT INTO ct_alerts (kind, payload, tbs_hash, log_id, created, dedup_key) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING"
)


class _Dialect(abc.ABC, Generic[_C]):
    """The hooks and settings of one SQL dialect (see the module docstring). The shared SQL
    is written with ``?`` placeholders, ``{clock}`` for the store's clock, ``{for_update}``
    where PostgreSQL locks the rows read and ``{findings_order}`` for the column that orders
    findings first seen at the same time; :meth:`_sql` fills them in."""

    _PARAM: ClassVar[str]
    """The dialect's positional placeholder."""
    _CLOCK: ClassVar[str]
    """An SQL expression for the store's clock (leases and claims run on it)."""
    _FOR_UPDATE: ClassVar[str]
    """What locks the rows a ``SELECT`` reads until the transaction ends ("" when the write
    transaction already excludes every other writer)."""
    _FINDINGS_ORDER: ClassVar[str]
    """The column that breaks ties between findings first seen at the same time."""
    _NO_LIMIT: ClassVar[int | None]
    """The ``LIMIT`` parameter meaning "no limit"."""
    _CREATE: ClassVar[tuple[str, ...]]
    """The statements that make the tables of schema version 1 (beside ``pinwarden_schema``)."""
    _UPGRADE_TO_2: ClassVar[tuple[str, ...]]
    """The statements that upgrade those tables from version 1 to 2."""

    @abc.abstractmethod
    def _write(self) -> contextlib.AbstractContextManager[_C]:
        """One transaction that writes; any error rolls it back and the database's own
        errors come out as :class:`StoreError`."""

    @abc.abstractmethod
    def _read(self) -> contextlib.AbstractContextManager[_C]:
        """One transaction that only reads."""

    @abc.abstractmethod
    def _schema_table(self, conn: _C) -> bool:
        """Prepare to read the schema version (locks, the ``pinwarden_schema`` table) and
        say whether the table is there."""

    @staticmethod
    @abc.abstractmethod
    def _to_db(value: datetime) -> Any:
        """An aware time as the dialect stores it."""

    @staticmethod
    @abc.abstractmethod
    def _from_db(value: Any) -> datetime:
        """A stored time as an aware datetime."""

    @staticmethod
    @abc.abstractmethod
    def _span(seconds: float) -> Any:
        """A duration as the dialect adds it to a stored time."""

    @staticmethod
    @abc.abstractmethod
    def _json_in(value: Any) -> Any:
        """A JSON-ready value as the dialect stores it."""

    @staticmethod
    @abc.abstractmethod
    def _json_out(value: Any) -> Any:
        """A stored JSON value, decoded."""

    @staticmethod
    @abc.abstractmethod
    def _payload(event: OutboxEvent) -> Any:
        """An event's payload as the dialect stores it; a ValueError (from
        :meth:`OutboxEvent.payload_json`) for one that is not JSON-ready, before any write."""

    @abc.abstractmethod
    def _insert_alert(self, conn: _C, params: Sequence[Any]) -> int | None:
        """Insert the row of ``ct_alerts`` (:data:`_INSERT_ALERT`); its ID, or None when its
        dedup_key was queued before."""

    @abc.abstractmethod
    def _sightings(self, conn: _C, tbs_hashes: Sequence[bytes]) -> Iterable[Any]:
        """The rows (tbs_hash, log_id, entry_index, seen_at) of ``ct_findings_logs`` for
        the findings, by seen_at, log_id, entry_index."""

    @abc.abstractmethod
    def _lease_free_log(
        self, conn: _C, worker_id: str, lease: Any, among: Collection[bytes] | None
    ) -> bytes | None:
        """In a write transaction: lease to ``worker_id`` for ``lease`` (a :meth:`_span`) the
        first log no one holds, of ``among`` when not None, in the order of
        :meth:`~pinwarden.ct.store.Store.acquire_log`; its ID, or None when there is none."""

    @abc.abstractmethod
    def _claim_due(
        self, conn: _C, channel: str, at: Any, limit: int, span: Any, worker_id: str | None
    ) -> Iterable[Sequence[Any]]:
        """In a write transaction: claim for ``worker_id`` for ``span`` (a :meth:`_span`) at
        most ``limit`` unclaimed undelivered alerts of ``channel`` due at ``at``, oldest first;
        their rows (id, kind, payload, created, attempts, last_error, tbs_hash, log_id)."""

    def _sql(self, template: str) -> str:
        return template.format(
            clock=self._CLOCK, for_update=self._FOR_UPDATE, findings_order=self._FINDINGS_ORDER
        ).replace("?", self._PARAM)

    def _time(self, value: Any) -> datetime | None:
        return None if value is None else self._from_db(value)

    def _stamp(self, now: datetime | None) -> Any:
        return self._to_db(_aware(now, "now") if now is not None else _now())
