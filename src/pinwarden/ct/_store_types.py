"""The values the monitor's store takes and gives back (tree heads, findings, alerts) and the
small checks on them.

Separate from :mod:`pinwarden.ct.store` so the interface, the back-ends and the shared SQL can
all import them without importing each other. The public names are re-exported by
:mod:`pinwarden.ct.store`, their documented home.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pinwarden.errors import StoreError

__all__ = [
    "DEFAULT_CLAIM",
    "SCHEMA_COMPONENT",
    "SCHEMA_VERSION",
    "DueAlert",
    "Finding",
    "FindingLog",
    "FindingRecord",
    "LeaseLostError",
    "LogProgress",
    "OutboxEvent",
    "StoredTreeHead",
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
    finding is new in the same :meth:`~pinwarden.ct.store.Store.commit_batch` (and at most
    once per kind and finding in it); without it (log misbehaviour, a stalled log) it is
    queued unless its ``dedup_key`` was queued before. ``payload`` must be JSON-ready.
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
