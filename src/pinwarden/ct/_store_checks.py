"""The invariants the store keeps whatever its caller does, checked in Python the same way by
both back-ends: a batch's position and tree head against the stored row and the lease, which of
a batch's events are queued, and the arguments of the lease and outbox calls.

Separate from the SQL (:mod:`pinwarden.ct._store_sql`) so the rules read in one place,
free of any dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pinwarden.ct._store_types import (
    Finding,
    LeaseLostError,
    OutboxEvent,
    StoredTreeHead,
    _b64,
)
from pinwarden.errors import StoreError


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
