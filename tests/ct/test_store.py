"""The monitor's state store: the same behaviour tests against SQLite and a real PostgreSQL
server (started by the test kit), plus what is particular to each back-end."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.ct import store_postgres
from pinwarden.ct.store import (
    SCHEMA_VERSION,
    Finding,
    LeaseLostError,
    OutboxEvent,
    Store,
    StoredTreeHead,
    default_sqlite_path,
    open_store,
    redact_url,
    sqlite_path_of,
)
from pinwarden.ct.store_sqlite import _SCHEMA as SQLITE_V1
from pinwarden.ct.store_sqlite import SQLiteStore
from pinwarden.errors import InputError, StoreError
from pinwarden.testing.postgres import PostgresServer, PostgresUnavailable, find_postgres

LOG_A = hashlib.sha256(b"log a").digest()
LOG_B = hashlib.sha256(b"log b").digest()
LOG_C = hashlib.sha256(b"log c").digest()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def head(size: int, tag: bytes = b"") -> StoredTreeHead:
    return StoredTreeHead(size, hashlib.sha256(b"root %d" % size + tag).digest(), b"sth %d" % size)


def finding(n: int, index: int, **fields: Any) -> Finding:
    defaults: dict[str, Any] = {
        "tbs_hash": hashlib.sha256(b"tbs %d" % n).digest(),
        "index": index,
        "verdict": "unexpected",
        "reasons": ("issuer not allowed by CAA", "key not in the pins"),
        "names": (f"host{n}.example.com", "*.example.com"),
        "issuer": "CN=Test CA,O=Test",
        "serial": f"{n:040x}",
        "not_before": T0,
        "not_after": T0 + timedelta(days=90),
        "cert_sha256": hashlib.sha256(b"cert %d" % n).digest(),
        "spki_pin": "sha256/" + "A" * 43 + "=",
        "pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "watch_items": (".example.com",),
    }
    defaults.update(fields)
    return Finding(**defaults)


def event_for(f: Finding, channels: tuple[str, ...] = ("stdout", "hook")) -> OutboxEvent:
    return OutboxEvent(
        "discovered", {"tbs": f.tbs_hash.hex(), "names": list(f.names)}, channels, f.tbs_hash
    )


# -- back-ends -------------------------------------------------------------------------------


def postgres_or_skip() -> None:
    """Skip without PostgreSQL's binaries, except in CI (PINWARDEN_REQUIRE_VECTORS=1)."""
    try:
        find_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("PINWARDEN_REQUIRE_VECTORS") == "1":
            pytest.fail(f"{exc} (PINWARDEN_REQUIRE_VECTORS=1: the PostgreSQL tests must run)")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    postgres_or_skip()
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each back-end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'monitor.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database("t" + uuid.uuid4().hex[:12])


@pytest.fixture
def opener(url: str) -> Iterator[Callable[[], Store]]:
    """Opens the test's store (again): a restart, or a second worker."""
    opened: list[Store] = []

    def open_() -> Store:
        opened.append(open_store(url))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Callable[[], Store]) -> Store:
    store = opener()
    store.register_logs([LOG_A, LOG_B])
    return store


def count_alerts(store: Store, channel: str = "stdout") -> int:
    """Undelivered alerts of ``channel``, by both ways of asking."""
    counted = store.undelivered().get(channel, 0)
    claimed = store.due_alerts(channel, T0 + timedelta(days=3650), claim=_INSTANT)
    assert len(claimed) == counted
    return counted


# Claims run on the store's clock: one this short has run out by the next call.
_INSTANT = timedelta(microseconds=1)


# -- logs ------------------------------------------------------------------------------------


def test_register_logs_adds_only_new_ones(opener: Callable[[], Store]) -> None:
    store = opener()
    assert store.register_logs([LOG_B, LOG_A, LOG_B]) == (LOG_B, LOG_A)
    assert store.register_logs([LOG_A, LOG_C]) == (LOG_C,)
    assert [p.log_id for p in store.logs()] == sorted([LOG_A, LOG_B, LOG_C])
    fresh = store.progress(LOG_C)
    assert fresh is not None
    assert (fresh.position, fresh.head, fresh.compact_range, fresh.lease_owner) == (
        0,
        None,
        None,
        None,
    )
    assert store.progress(hashlib.sha256(b"unknown").digest()) is None


def test_a_batch_survives_a_restart(store: Store, opener: Callable[[], Store]) -> None:
    found = finding(1, 7)
    new = store.commit_batch(LOG_A, 10, head(12), b"range@10", [found], [event_for(found)])
    assert new == (found,)
    store.close()
    again = opener()
    progress = again.progress(LOG_A)
    assert progress is not None
    assert progress.position == 10
    assert progress.head == head(12)
    assert progress.compact_range == b"range@10"
    assert progress.updated_at is not None
    assert progress.log_id_b64
    record = again.finding(found.tbs_hash)
    assert record is not None
    assert record.finding == found
    assert [(s.log_id, s.index) for s in record.logs] == [(LOG_A, 7)]
    assert count_alerts(again) == 1


def test_findings_round_trip_every_field(store: Store) -> None:
    odd = finding(
        5,
        2**40,
        reasons=(),
        names=("bücher.example", "x"),
        not_before=None,
        not_after=datetime(2030, 1, 1, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=2))),
        is_precert=True,
        watch_items=(".example", "x"),
        pem="",
    )
    store.commit_batch(LOG_A, 1, head(1), b"", [odd], [], now=T0)
    record = store.finding(odd.tbs_hash)
    assert record is not None
    assert record.finding == odd
    assert record.finding.not_after == datetime(2029, 12, 31, 23, 2, 3, 456789, tzinfo=timezone.utc)
    assert record.first_seen == T0
    assert store.finding(b"\x00" * 32) is None


def test_a_certificate_in_two_logs_is_one_finding(store: Store) -> None:
    precert = finding(1, 3, is_precert=True)
    final = finding(1, 4, is_precert=False, pem="final")
    other = finding(2, 5)
    new = store.commit_batch(
        LOG_A,
        6,
        head(6),
        b"",
        [precert, final, other],
        [event_for(precert), event_for(final), event_for(other)],
        now=T0,
    )
    assert new == (precert, other)
    # The same certificate later in another log: a sighting, not a finding, no alert.
    again = finding(1, 99, pem="final")
    later = T0 + timedelta(hours=1)
    assert (
        store.commit_batch(LOG_B, 100, head(100), b"", [again], [event_for(again)], now=later) == ()
    )
    record = store.finding(precert.tbs_hash)
    assert record is not None
    assert record.finding.is_precert and record.finding.index == 3
    assert [(s.log_id, s.index, s.seen_at) for s in record.logs] == [
        (LOG_A, 3, T0),
        (LOG_A, 4, T0),
        (LOG_B, 99, later),
    ]
    assert count_alerts(store) == 2
    assert [r.finding.tbs_hash for r in store.findings()] == [precert.tbs_hash, other.tbs_hash]
    assert len(store.findings(limit=1)) == 1


def test_replaying_a_committed_batch_alerts_nothing(store: Store) -> None:
    # A monitor that crashed after the commit but before noting it re-reads the same
    # entries: the findings exist, so no alert is queued a second time.
    batch = [finding(n, n) for n in range(3)]
    events = [event_for(f) for f in batch]
    assert len(store.commit_batch(LOG_A, 3, head(3), b"r", batch, events)) == 3
    assert store.commit_batch(LOG_A, 3, head(3), b"r", batch, events) == ()
    assert count_alerts(store) == 3
    assert count_alerts(store, "hook") == 3


def test_events_without_a_finding_are_always_queued(store: Store) -> None:
    stalled = OutboxEvent("log-stalled", {"log": "a"}, ("stdout",), log_id=LOG_A)
    store.commit_batch(LOG_A, 0, head(0), b"", [], [stalled])
    store.commit_batch(LOG_A, 0, head(0), b"", [], [stalled])
    due = store.due_alerts("stdout", T0 + timedelta(days=3650))
    assert [(a.kind, a.payload, a.log_id, a.tbs_hash) for a in due] == [
        ("log-stalled", {"log": "a"}, LOG_A, None)
    ] * 2


def test_a_failed_batch_leaves_no_trace(store: Store) -> None:
    store.commit_batch(LOG_A, 1, head(5), b"before", [], [])
    stray = OutboxEvent("discovered", {}, ("stdout",), tbs_hash=b"\x01" * 32)
    with pytest.raises(ValueError, match="not among the batch's findings"):
        store.commit_batch(LOG_A, 4, head(5), b"after", [finding(1, 2)], [stray])
    progress = store.progress(LOG_A)
    assert progress is not None
    assert (progress.position, progress.compact_range) == (1, b"before")
    assert store.findings() == ()
    assert count_alerts(store) == 0
    with pytest.raises(ValueError, match="not JSON-ready"):
        store.commit_batch(
            LOG_A, 4, head(5), b"", [], [OutboxEvent("x", {"a": {1, 2}}, ("stdout",))]
        )


@pytest.mark.parametrize(
    ("position", "new_head", "message"),
    [
        (4, head(10), "position would move back from 5 to 4"),
        (11, head(10), "position 11 is past the verified tree size 10"),
        (5, head(9), "tree head would shrink from 10 to 9"),
        (6, head(10, b"fork"), "a second root hash for tree size 10"),
    ],
)
def test_the_store_refuses_to_break_the_invariants(
    store: Store, position: int, new_head: StoredTreeHead, message: str
) -> None:
    store.commit_batch(LOG_A, 5, head(10), b"r5", [], [])
    with pytest.raises(StoreError, match=message):
        store.commit_batch(LOG_A, position, new_head, b"bad", [finding(1, 1)], [])
    progress = store.progress(LOG_A)
    assert progress is not None
    assert (progress.position, progress.head, progress.compact_range) == (5, head(10), b"r5")
    assert store.findings() == ()


def test_an_unregistered_log_cannot_be_committed(store: Store) -> None:
    with pytest.raises(StoreError, match="not registered"):
        store.commit_batch(LOG_C, 1, head(1), b"", [], [])


# -- leases ----------------------------------------------------------------------------------


def test_leases_give_each_log_to_one_worker(store: Store, opener: Callable[[], Store]) -> None:
    other = opener()
    first = store.acquire_log("w1", 60)
    second = other.acquire_log("w2", timedelta(minutes=1))
    assert {first, second} == {LOG_A, LOG_B}
    assert store.acquire_log("w3", 60) is None
    assert first is not None and second is not None
    progress = store.progress(first)
    assert progress is not None
    assert progress.lease_owner == "w1"
    assert progress.lease_expires is not None
    # Each commits its own log; neither can commit the other's, nor can a leaseless writer.
    store.commit_batch(first, 1, head(1), b"", [], [], worker_id="w1")
    with pytest.raises(StoreError, match="lease lost: worker 'w1' no longer holds"):
        store.commit_batch(second, 1, head(1), b"", [], [], worker_id="w1")
    with pytest.raises(StoreError, match="leased to 'w2'"):
        store.commit_batch(second, 1, head(1), b"", [], [])
    # Released, the log goes to the next worker that asks.
    other.release_lease("w2", second)
    other.release_lease("w2", first)  # not its lease: nothing happens
    assert store.acquire_log("w3", 60) == second
    assert store.acquire_log("w4", 60) is None


def test_an_expired_lease_is_lost(store: Store, opener: Callable[[], Store]) -> None:
    store.register_logs([LOG_C])
    for _ in range(3):
        store.acquire_log("old", 0.5)
    store.renew_lease("old", LOG_A, 60)
    time.sleep(0.7)
    other = opener()
    taken = {other.acquire_log("new", 60), other.acquire_log("new", 60)}
    assert taken == {LOG_B, LOG_C}
    with pytest.raises(StoreError, match="lease lost"):
        store.commit_batch(LOG_B, 1, head(1), b"", [finding(1, 0)], [], worker_id="old")
    with pytest.raises(StoreError, match="lease lost"):
        store.renew_lease("old", LOG_B, 60)
    assert store.findings() == ()
    # The renewed lease is still held.
    store.commit_batch(LOG_A, 1, head(1), b"", [], [], worker_id="old")
    # An expired lease no one took over is lost too: the worker cannot know it is alone.
    other.renew_lease("new", LOG_C, 0.3)
    time.sleep(0.5)
    with pytest.raises(StoreError, match="lease lost"):
        other.commit_batch(LOG_C, 1, head(1), b"", [], [], worker_id="new")


def test_released_logs_rotate_between_workers(store: Store) -> None:
    store.register_logs([LOG_C])
    order = []
    for _ in range(6):
        log_id = store.acquire_log("w", 60)
        assert log_id is not None
        order.append(log_id)
        store.release_lease("w", log_id)
        time.sleep(0.01)
    assert order[:3] == sorted([LOG_A, LOG_B, LOG_C])
    assert order[3:] == order[:3]


def test_concurrent_workers_never_share_a_log(opener: Callable[[], Store]) -> None:
    logs = [hashlib.sha256(b"log %d" % n).digest() for n in range(12)]
    opener().register_logs(logs)
    stores = [opener() for _ in range(4)]
    held: dict[str, list[bytes]] = {}
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def work(n: int, store: Store) -> None:
        try:
            barrier.wait()
            mine = held.setdefault(f"w{n}", [])
            while (log_id := store.acquire_log(f"w{n}", 60)) is not None:
                mine.append(log_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    given = [log_id for mine in held.values() for log_id in mine]
    assert sorted(given) == sorted(logs)


def test_lease_arguments_are_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="worker_id"):
        store.acquire_log("", 60)
    with pytest.raises(ValueError, match="positive duration"):
        store.acquire_log("w", 0)
    with pytest.raises(ValueError, match="positive duration"):
        store.renew_lease("w", LOG_A, float("nan"))


def test_a_worker_leases_only_among_the_logs_it_asks_for(
    store: Store, opener: Callable[[], Store]
) -> None:
    # Many logs in the store that this worker does not follow (other workers' lists,
    # logs gone from its list): one call leases one of the wanted ones, or says none is free.
    others = [hashlib.sha256(b"other %d" % n).digest() for n in range(1500)]
    store.register_logs([*others, LOG_C])
    assert store.acquire_log("w1", 60, among=[LOG_C]) == LOG_C
    assert store.acquire_log("w1", 60, among=[LOG_C]) is None  # leased now
    assert opener().acquire_log("w2", 60, among=[LOG_C, LOG_B]) == LOG_B
    assert store.acquire_log("w1", 60, among=[]) is None
    assert store.acquire_log("w1", 60, among=[b"\x07" * 32]) is None  # unknown: nothing
    wanted = set(others[700:703])
    got = {store.acquire_log("w1", 60, among=[*wanted, LOG_C]) for _ in range(3)}
    assert got == wanted
    assert store.acquire_log("w1", 60, among=[*wanted, LOG_C]) is None
    # A long list of candidates is one statement too.
    assert store.acquire_log("w1", 60, among=others[::-1]) in set(others) - wanted
    leased = [p.log_id for p in store.logs() if p.lease_owner is not None]
    assert len(leased) == 6 and LOG_A not in leased


def test_a_lost_lease_is_its_own_error(store: Store, opener: Callable[[], Store]) -> None:
    assert store.acquire_log("w1", 0.2) is not None
    time.sleep(0.3)
    assert opener().acquire_log("w2", 60) is not None
    for call in (
        lambda: store.renew_lease("w1", LOG_A, 60),
        lambda: store.commit_batch(LOG_A, 1, head(1), b"", [], [], worker_id="w1"),
        lambda: store.commit_batch(LOG_A, 1, head(1), b"", [], []),
    ):
        with pytest.raises(LeaseLostError, match=r"^lease lost"):
            call()
    assert issubclass(LeaseLostError, StoreError)
    # Other refusals are not a lost lease.
    with pytest.raises(StoreError) as refused:
        store.commit_batch(LOG_C, 1, head(1), b"", [], [])
    assert not isinstance(refused.value, LeaseLostError)


# -- the outbox ------------------------------------------------------------------------------


def test_alerts_are_due_per_channel_until_delivered(store: Store) -> None:
    batch = [finding(n, n) for n in range(3)]
    store.commit_batch(LOG_A, 3, head(3), b"", batch, [event_for(f) for f in batch], now=T0)
    due = store.due_alerts("stdout", T0)
    assert [a.payload["tbs"] for a in due] == [f.tbs_hash.hex() for f in batch]
    assert [a.id for a in due] == sorted(a.id for a in due)
    first = due[0]
    assert (first.channel, first.kind, first.created, first.attempts) == (
        "stdout",
        "discovered",
        T0,
        0,
    )
    assert first.tbs_hash == batch[0].tbs_hash
    # Claimed: not due again until the claim runs out.
    assert store.due_alerts("stdout", T0 + timedelta(minutes=1)) == ()
    store.mark_delivered(first.id, "stdout")
    store.mark_delivered(first.id, "stdout")  # idempotent
    store.mark_failed(due[1].id, "stdout", T0 + timedelta(minutes=30), error="timeout")
    # A failure ends the claim; the retry is due at its time. due[2] is still claimed.
    assert store.due_alerts("stdout", T0 + timedelta(minutes=10)) == ()
    retried = store.due_alerts("stdout", T0 + timedelta(minutes=31), claim=_INSTANT)
    assert [(a.id, a.attempts, a.last_error) for a in retried] == [(due[1].id, 1, "timeout")]
    assert store.undelivered() == {"stdout": 2, "hook": 3}
    # The other channel has its own deliveries.
    assert len(store.due_alerts("hook", T0, limit=2)) == 2
    assert len(store.due_alerts("hook", T0)) == 1
    assert store.due_alerts("email", T0) == ()
    # Delivered alerts are never due again, and marks after delivery change nothing.
    store.mark_failed(first.id, "stdout", T0, error="late")
    assert first.id not in [a.id for a in store.due_alerts("stdout", T0 + timedelta(days=1))]


def test_claims_name_the_worker_and_run_on_the_store_clock(
    store: Store, opener: Callable[[], Store]
) -> None:
    batch = [finding(n, n) for n in range(4)]
    store.commit_batch(LOG_A, 4, head(4), b"", batch, [event_for(f) for f in batch], now=T0)
    mine = store.due_alerts("stdout", T0, limit=3, worker_id="w1")
    assert len(mine) == 3
    store.due_alerts("hook", T0, worker_id="w1")
    # However far the caller's clock is ahead, a claim holds for its span of the store's
    # clock: a worker whose clock runs fast cannot take another's claims.
    far = T0 + timedelta(days=3650)
    other = opener()
    (last,) = other.due_alerts("stdout", far, worker_id="w2")
    assert last.id > max(a.id for a in mine)
    assert other.due_alerts("hook", far, worker_id="w2") == ()
    # Settled alerts leave the claim; a worker takes back only its own unsettled claims.
    store.mark_delivered(mine[0].id, "stdout")
    store.mark_failed(mine[1].id, "stdout", T0, error="down")
    assert other.release_claims("w3") == 0
    assert store.release_claims("w1", channel="stdout") == 1  # mine[2]
    assert [a.id for a in other.due_alerts("stdout", far)] == [mine[1].id, mine[2].id]
    assert store.release_claims("w1") == 4  # every hook delivery
    assert len(other.due_alerts("hook", far, claim=timedelta(seconds=0.3))) == 4
    assert other.due_alerts("hook", far) == ()
    time.sleep(0.4)  # an expired claim is free for anyone
    assert len(store.due_alerts("hook", far)) == 4
    with pytest.raises(ValueError, match="worker_id"):
        store.release_claims("")


def test_an_event_with_a_dedup_key_is_queued_once(
    store: Store, opener: Callable[[], Store]
) -> None:
    fork = OutboxEvent(
        "log-misbehaviour", {"n": 1}, ("stdout",), log_id=LOG_A, dedup_key="fork:a:1"
    )
    (first,) = store.enqueue([fork], now=T0)
    # After a restart (another connection), the same episode is not queued again...
    again = opener()
    assert again.enqueue([fork, replace(fork, payload={"n": 2})], now=T0) == ()
    # ... in a batch neither; another episode is.
    other = replace(fork, dedup_key="fork:a:2")
    again.commit_batch(LOG_A, 0, head(0), b"", [], [fork, other], now=T0)
    due = again.due_alerts("stdout", T0 + timedelta(days=1))
    assert len(due) == 2
    assert (due[0].id, due[0].payload) == (first, {"n": 1})
    # Without a key, events are queued every time.
    plain = replace(fork, dedup_key=None)
    assert len(again.enqueue([plain, plain])) == 2
    with pytest.raises(ValueError, match="dedup_key"):
        replace(fork, dedup_key="")


def test_marking_an_unknown_delivery_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no alert 12345"):
        store.mark_delivered(12345, "stdout")
    (alert_id,) = store.enqueue([OutboxEvent("log-stalled", {}, ("stdout",))])
    with pytest.raises(StoreError, match="for channel 'hook'"):
        store.mark_failed(alert_id, "hook", T0)


def test_enqueue_outside_a_batch(store: Store) -> None:
    events = [
        OutboxEvent("log-misbehaviour", {"kind": "fork", "sizes": [1, 2], "ok": None}, ("a", "b")),
        OutboxEvent("log-stalled", {"log": "ünïcode"}, ("a",), log_id=LOG_B),
    ]
    ids = store.enqueue(events, now=T0)
    assert len(ids) == 2 and ids[0] < ids[1]
    due = store.due_alerts("a", T0)
    assert [(a.kind, a.payload) for a in due] == [(e.kind, dict(e.payload)) for e in events]
    assert [a.id for a in store.due_alerts("b", T0)] == [ids[0]]
    with pytest.raises(ValueError, match="queue it with commit_batch"):
        store.enqueue([event_for(finding(1, 1))])


def test_event_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="needs at least one named channel"):
        OutboxEvent("x", {}, ())
    with pytest.raises(ValueError, match="names a channel twice"):
        OutboxEvent("x", {}, ("a", "a"))
    with pytest.raises(ValueError, match="timezone-aware"):
        finding(1, 1, not_before=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="out of range"):
        StoredTreeHead(2**63, b"")


# -- crashes ---------------------------------------------------------------------------------

CRASH_WRITER = """
import hashlib, sys
from pinwarden.ct.store import Finding, OutboxEvent, StoredTreeHead, open_store
store = open_store(sys.argv[1])
log = bytes.fromhex(sys.argv[2])
n = (store.progress(log).position)
print("ready", flush=True)
while True:
    tbs = hashlib.sha256(b"%d" % n).digest()
    f = Finding(tbs_hash=tbs, index=n, verdict="unexpected")
    e = OutboxEvent("discovered", {"n": n}, ("stdout",), tbs)
    store.commit_batch(log, n + 1, StoredTreeHead(n + 1, tbs), b"%d" % (n + 1), [f], [e])
    n += 1
"""


def test_a_killed_writer_leaves_whole_batches(url: str, opener: Callable[[], Store]) -> None:
    # SIGKILL a process committing batches (position n+1, finding n, alert n) at random
    # moments; each time, the store holds exactly the batches that committed, whole.
    opener().register_logs([LOG_A])
    for round_, delay in enumerate((0.05, 0.2, 0.35, 0.6)):
        child = subprocess.Popen(
            [sys.executable, "-c", CRASH_WRITER, url, LOG_A.hex()], stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        store = opener()
        progress = store.progress(LOG_A)
        assert progress is not None
        n = progress.position
        assert progress.compact_range == b"%d" % n if n else progress.compact_range is None
        assert len(store.findings()) == n
        # Each round looks a day later, past the claims of the round before.
        at = T0 + timedelta(days=36500 + round_)
        due = store.due_alerts("stdout", at, limit=1_000_000, claim=_INSTANT)
        assert sorted(a.payload["n"] for a in due) == list(range(n))
        store.close()
    assert n > 0


# -- opening, URLs, versions -----------------------------------------------------------------


def test_a_store_of_another_schema_version_is_refused(
    url: str, opener: Callable[[], Store]
) -> None:
    opener().close()
    if url.startswith("sqlite"):
        path = sqlite_path_of(url)
        assert path is not None
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE pinwarden_schema SET version = 99")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("UPDATE pinwarden_schema SET version = 99")
    with pytest.raises(StoreError, match="schema version 99 of ct-monitor; this pinwarden uses"):
        open_store(url)


def test_a_version_1_store_is_upgraded(url: str) -> None:
    # Version 1's tables, with a finding's alert claimed and one already delivered.
    if url.startswith("sqlite"):
        path = sqlite_path_of(url)
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.executescript(
                "CREATE TABLE pinwarden_schema (component TEXT PRIMARY KEY, version INTEGER);"
                + SQLITE_V1
                + "INSERT INTO pinwarden_schema VALUES ('ct-monitor', 1);"
                "INSERT INTO ct_alerts (kind, payload, created) VALUES ('log-stalled', '{}', 0);"
                "INSERT INTO ct_alert_deliveries (alert_id, channel, next_attempt) "
                "VALUES (1, 'stdout', 0), (1, 'hook', 0);"
                "UPDATE ct_alert_deliveries SET delivered_at = 1 WHERE channel = 'hook';"
            )
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg, pg.transaction():
            pg.execute("CREATE TABLE pinwarden_schema (component text PRIMARY KEY, version int)")
            for statement in store_postgres._SCHEMA[1:]:
                pg.execute(statement)
            pg.execute("INSERT INTO pinwarden_schema VALUES ('ct-monitor', 1)")
            pg.execute(
                "INSERT INTO ct_alerts (kind, payload, created) "
                "VALUES ('log-stalled', '{}', 'epoch')"
            )
            pg.execute(
                "INSERT INTO ct_alert_deliveries (alert_id, channel, next_attempt, delivered_at) "
                "VALUES (1, 'stdout', 'epoch', NULL), (1, 'hook', 'epoch', 'epoch')"
            )
    with open_store(url) as store:
        assert store.undelivered() == {"stdout": 1}
        (due,) = store.due_alerts("stdout", T0, worker_id="w")
        assert due.payload == {} and store.release_claims("w") == 1
        event = OutboxEvent("log-stalled", {}, ("stdout",), dedup_key="k")
        assert len(store.enqueue([event, event], now=T0)) == 1
    with open_store(url) as store:  # opened again: already upgraded
        assert len(store.due_alerts("stdout", T0)) == 2
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(str(sqlite_path_of(url)))) as conn, conn:
            (version,) = conn.execute("SELECT version FROM pinwarden_schema").fetchone()
        conn.close()
        assert version == SCHEMA_VERSION == 2


def test_sqlite_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert sqlite_path_of("sqlite:///rel/x.db") == Path("rel/x.db")
    assert sqlite_path_of("sqlite:////abs/x.db") == Path("/abs/x.db")
    assert sqlite_path_of("sqlite:///~/x.db") == Path.home() / "x.db"
    assert sqlite_path_of("sqlite:///:memory:") is None
    assert sqlite_path_of("sqlite://") == tmp_path / "xdg" / "pinwarden" / "monitor.sqlite3"
    with open_store("sqlite:///rel/x.db") as store:
        assert isinstance(store, SQLiteStore)
        assert store.url == f"sqlite:///{tmp_path}/rel/x.db"
    assert (tmp_path / "rel" / "x.db").is_file()
    with open_store("sqlite:///:memory:") as memory:
        assert memory.register_logs([LOG_A]) == (LOG_A,)
    with open_store() as default:
        assert default.url.endswith("/xdg/pinwarden/monitor.sqlite3")
    assert (tmp_path / "xdg" / "pinwarden" / "monitor.sqlite3").is_file()


def test_default_path_ignores_a_relative_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert default_sqlite_path() == Path.home() / ".local/state/pinwarden/monitor.sqlite3"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_sqlite_path() == Path.home() / ".local/state/pinwarden/monitor.sqlite3"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unknown scheme 'mysql'"),
        ("/var/lib/monitor.sqlite3", "unknown scheme '(none)'"),
        ("redis://user:hunter2@h/0", "'redis://user:***@h/0'"),
        ("sqlite:/x.db", "write sqlite:///relative/path"),
        ("sqlite:///x.db?mode=ro", "no query"),
    ],
)
def test_bad_store_urls(url: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        open_store(url)
    assert "hunter2" not in str(caught.value)


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/s.db"):
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as conn, conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.close()


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store(f"sqlite:///{tmp_path}/junk.db")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store(f"sqlite:///{tmp_path}/dir.db")


def test_redact_url() -> None:
    assert redact_url("postgresql://u:secret@db.example:5433/m?x=1") == (
        "postgresql://u:***@db.example:5433/m?x=1"
    )
    assert redact_url("postgresql://u:s@h:99999/m?PASSWORD=s&a=1") == (
        "postgresql://u:***@h:99999/m?PASSWORD=***&a=1"
    )
    assert redact_url("postgresql://u:p:q@h:x/m") == "postgresql://u:***@h:x/m"
    assert redact_url("postgresql://u:secret@[::1]/m") == "postgresql://u:***@[::1]/m"
    assert redact_url("postgresql://u@h/m") == "postgresql://u@h/m"


def test_postgres_alias_scheme(postgres: PostgresServer) -> None:
    url = postgres.create_database("alias_" + uuid.uuid4().hex[:8])
    with open_store("postgres" + url.removeprefix("postgresql")) as store:
        assert store.register_logs([LOG_A]) == (LOG_A,)
        assert store.url.startswith("postgres://")


def test_postgres_unreachable_is_a_store_error() -> None:
    with pytest.raises(
        StoreError,
        match=re.escape("postgresql://u:***@127.0.0.1:1/x?connect_timeout=2: cannot connect"),
    ):
        open_store("postgresql://u:secret@127.0.0.1:1/x?connect_timeout=2")


def test_postgres_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_postgres, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'pinwarden\[postgres\]'"):
        open_store("postgresql://u@127.0.0.1/x")


def test_postgres_reconnects_after_the_connection_drops(postgres: PostgresServer) -> None:
    import psycopg

    url = postgres.create_database("drop_" + uuid.uuid4().hex[:8])
    with open_store(url) as store:
        store.register_logs([LOG_A])
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (url.rsplit("/", 1)[1],),
            )
        with pytest.raises(StoreError):
            store.logs()
        assert [p.log_id for p in store.logs()] == [LOG_A]


@given(st.text(max_size=80))
def test_any_sqlite_url_gives_a_path_or_an_input_error(rest: str) -> None:
    try:
        path = sqlite_path_of("sqlite:" + rest)
    except InputError:
        return
    assert path is None or isinstance(path, Path)


@settings(max_examples=1000)
@given(
    st.text(alphabet=st.characters(exclude_characters="QZ"), max_size=20),
    st.text(alphabet="QZ", min_size=3, max_size=10),
    st.booleans(),
)
def test_redact_url_hides_any_password(host: str, password: str, in_query: bool) -> None:
    url = (
        f"postgresql://user@{host}/db?sslmode=require&password={password}"
        if in_query
        else f"postgresql://user:{password}@{host}/db"
    )
    assert password not in redact_url(url)
