"""The CT monitor engine end to end: local CT logs (both APIs), a real store, real alert
channels (a JSON-lines stream and a hook script), a local DNS server for CAA."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import re
import socket
import stat
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinwarden.caa.identities import CAIdentity
from pinwarden.ct._http import HTTPSettings
from pinwarden.ct.alerts import AlertEvent, DeliveryError, HookChannel, StdoutChannel
from pinwarden.ct.logs import FinalTreeHead, Log, LogList, LogState
from pinwarden.ct.monitor import Monitor, MonitorConfig, MonitorSummary, default_output_dir
from pinwarden.ct.store import FindingRecord, open_store
from pinwarden.ct.store_sqlite import SQLiteStore
from pinwarden.ct.watch import WatchList
from pinwarden.errors import InputError
from pinwarden.pins import Pin
from pinwarden.testing import (
    CA,
    DNSServer,
    LocalCTLog,
    generate_key,
    issue_precertificate,
    local_log_list,
)
from pinwarden.testing.postgres import PostgresServer, PostgresUnavailable, find_postgres

FAST = HTTPSettings(timeout=5.0, attempts=3, backoff=0.01, max_backoff=0.05)
NOISE = "noise{i}.unwatched.org"
TEST_CA = CAIdentity(
    name="pinwarden test CA", caa=("ca.pinwarden.test",), organizations=("pinwarden test kit",)
)


@dataclass
class Collect:
    """An alert channel keeping what it delivers; fails the first ``fail`` attempts."""

    name: str = "collect"
    fail: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0

    async def deliver(self, event: AlertEvent) -> None:
        self.attempts += 1
        if self.fail > 0:
            self.fail -= 1
            raise DeliveryError("the receiver is down")
        self.events.append(event.to_dict())


@dataclass
class Recorder:
    """A MonitorObserver that records every call."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def log_started(self, log: Log, position: int, tree_size: int) -> None:
        self.calls.append(("started", log.description, position, tree_size))

    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
        self.calls.append(("batch", log.description, position, tree_size, entries))

    def finding(self, log: Log, verdict: str, new: bool) -> None:
        self.calls.append(("finding", log.description, verdict, new))

    def log_error(self, log: Log, kind: str, message: str) -> None:
        self.calls.append(("error", log.description, kind, message))

    def alert_delivered(self, channel: str, ok: bool) -> None:
        self.calls.append(("alert", channel, ok))

    def alerts_stranded(self, channels: Mapping[str, int]) -> None:
        self.calls.append(("stranded", dict(channels)))


def postgres_or_skip() -> None:
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


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'monitor.sqlite3'}"


def make_config(
    tmp_path: Path,
    logs: LogList | tuple[LocalCTLog, ...],
    watch: str,
    **fields: Any,
) -> MonitorConfig:
    log_list = logs if isinstance(logs, LogList) else local_log_list(*logs)
    settings: dict[str, Any] = {
        "store_url": sqlite_url(tmp_path),
        "start": "start",
        "once": True,
        "poll_interval": 0.05,
        "output_dir": tmp_path / "certs",
        "client_settings": FAST,
        "batch_size": 256,
    }
    settings.update(fields)
    return MonitorConfig(watch=WatchList.parse(watch), log_list=log_list, **settings)


def run(config: MonitorConfig, observer: Recorder | None = None) -> MonitorSummary:
    return asyncio.run(Monitor(config, observer).run())


def stored(url: str) -> tuple[FindingRecord, ...]:
    with open_store(url) as store:
        return store.findings()


def position(url: str, log: LocalCTLog) -> int:
    with open_store(url) as store:
        progress = store.progress(log.log_id)
        return progress.position if progress is not None else -1


def names_of(records: tuple[FindingRecord, ...]) -> list[str]:
    return sorted(name for r in records for name in r.finding.names)


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def in_daemon(
    config: MonitorConfig, body: Callable[[Monitor], Awaitable[None]], observer: Any = None
) -> MonitorSummary:
    """Run the monitor (not once) while ``body`` drives the logs; then stop it."""
    monitor = Monitor(replace(config, once=False), observer)
    task = asyncio.ensure_future(monitor.run())
    try:
        await body(monitor)
    finally:
        monitor.stop()
    return await asyncio.wait_for(task, 30)


HOOK = """#!/bin/sh
printf '%s|%s|%s|%s|%s|%s\\n' "$ALERT_ID" "$EVENT" "$VERDICT" "$TBS_SHA256" \
    "$CERT_FILENAME" "$DNS_NAMES" >> "$(dirname "$0")/hook.log"
"""


def hook(tmp_path: Path) -> HookChannel:
    path = tmp_path / "hook.sh"
    path.write_text(HOOK, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return HookChannel(path)


# -- end to end ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "backend"), [("rfc6962", "sqlite"), ("static", "sqlite"), ("rfc6962", "postgresql")]
)
def test_a_growing_log_end_to_end(
    api: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = sqlite_url(tmp_path)
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database("m" + uuid.uuid4().hex[:12])
    stream = io.StringIO()
    channels = (StdoutChannel(json_lines=True, stream=stream), hook(tmp_path))
    recorder = Recorder()
    with LocalCTLog(api) as log:  # type: ignore[arg-type]
        log.grow(300, names=NOISE)
        log.issue("www.example.test")
        log.grow(10, names="noise{i}.example.org")
        log.issue("a.b.example.test", "other.example.org", precert=True)
        log.publish()
        config = make_config(
            tmp_path, (log,), ".example.test\nexact.example.net", store_url=url, channels=channels
        )
        precert = issue_precertificate(log.ca, "pre.example.test")

        async def body(monitor: Monitor) -> None:
            await until(lambda: stream.getvalue().count("\n") >= 2, "the first two alerts")
            log.add_precertificate(precert)
            log.grow(300, names=NOISE)
            log.add_certificate(precert.final)  # the same TBS: no new finding
            log.issue("exact.example.net")
            log.issue("sub.exact.example.net")  # not watched: exact entry only
            log.publish()
            await until(lambda: stream.getvalue().count("\n") >= 4, "two more alerts")
            log.issue("*.example.test")
            log.publish()
            await until(lambda: stream.getvalue().count("\n") >= 5, "the wildcard's alert")
            await until(lambda: position(url, log) == log.size, "the end of the log")

        summary = asyncio.run(in_daemon(config, body, recorder))

    assert summary.findings_new == 5
    assert summary.entries == log.size
    assert summary.unexpected_new == 0
    assert summary.misbehaving_logs == summary.unreachable_logs == ()
    records = stored(url)
    assert names_of(records) == sorted(
        [
            "www.example.test",
            "a.b.example.test",
            "other.example.org",
            "pre.example.test",
            "exact.example.net",
            "*.example.test",
        ]
    )
    assert all(r.finding.verdict == "found" for r in records)
    pre = next(r for r in records if r.finding.names == ("pre.example.test",))
    assert pre.finding.is_precert
    assert len(pre.logs) == 2  # the precertificate and its final certificate
    alerts = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len({a["id"] for a in alerts}) == len(alerts) == 5
    assert {a["tbs_sha256"] for a in alerts} == {r.finding.tbs_hash.hex() for r in records}
    assert all(a["event"] == "discovered" and a["verdict"] == "found" for a in alerts)
    hooked = (tmp_path / "hook.log").read_text().splitlines()
    assert sorted(int(line.split("|")[0]) for line in hooked) == sorted(a["id"] for a in alerts)
    for line in hooked:
        alert_id, event, verdict, tbs, cert_file, names = line.split("|")
        alert = next(a for a in alerts if a["id"] == int(alert_id))
        assert (event, verdict, tbs) == ("discovered", "found", alert["tbs_sha256"])
        assert names == ",".join(alert["names"])
        pem = Path(cert_file).read_bytes()
        assert Path(cert_file).parent.parent == tmp_path / "certs"
        # The PEM is the certificate whose TBS was found, as its alert described it (for
        # pre.example.test the precertificate: the final certificate, a later sighting,
        # does not rewrite the files).
        cert = x509.load_pem_x509_certificate(pem)
        assert names.split(",")[0] in str(cert.extensions)
    first = x509.load_pem_x509_certificate(Path(pre_file(alerts, "pre.example.test")).read_bytes())
    assert first == precert.precert.cert
    details = json.loads(Path(alerts[0]["json_file"]).read_text())
    assert details["tbs_sha256"] == alerts[0]["tbs_sha256"]
    kinds = {call[0] for call in recorder.calls}
    assert {"started", "batch", "finding", "alert"} <= kinds
    assert ("alert", "stdout-json", True) in recorder.calls
    assert sum(1 for c in recorder.calls if c[0] == "finding" and c[3]) == 5
    assert sum(c[4] for c in recorder.calls if c[0] == "batch") == log.size


def pre_file(alerts: list[dict[str, Any]], name: str) -> str:
    return str(next(a for a in alerts if a["names"] == [name])["cert_file"])


def test_the_same_certificate_in_two_logs_is_one_finding_with_both_logs(tmp_path: Path) -> None:
    ca = CA("shared root").intermediate("shared issuing CA")
    collect = Collect()
    with LocalCTLog("rfc6962", ca=ca) as first, LocalCTLog("static", ca=ca) as second:
        issued = ca.issue("twice.example.test")
        first.grow(20, names=NOISE)
        first.add_certificate(issued)
        second.grow(300, names=NOISE)
        second.add_certificate(issued)
        first.publish()
        second.publish()
        config = make_config(tmp_path, (first, second), ".example.test", channels=(collect,))
        summary = run(config)
    assert summary.logs == 2
    assert summary.entries == 322
    assert summary.findings_new == 1
    (record,) = stored(config.store_url)
    assert {(s.log_id, s.index) for s in record.logs} == {
        (first.log_id, 20),
        (second.log_id, 300),
    }
    assert len(collect.events) == 1


def test_verdict_reasons_end_to_end(tmp_path: Path) -> None:
    other_key = Pin.from_private_key(generate_key())
    with DNSServer() as dns, LocalCTLog("rfc6962") as log:
        dns.add("caa-ok.example.test", "CAA", '0 issue "ca.pinwarden.test"')
        dns.add("caa-no.example.test", "CAA", '0 issue "other.example"')
        dns.fail("caa-fail.example.test", "SERVFAIL", rdtype="CAA")
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
        pinned = log.ca.issue("pinned.example.net")
        log.add_certificate(pinned)
        for name in ("caa-ok.example.test", "caa-no.example.test", "caa-fail.example.test"):
            log.issue(name)
        log.issue("wrongkey.example.net")
        log.add_certificate(
            log.ca.issue("long.example.org", not_before=start, not_after=start + dt.timedelta(400))
        )
        log.issue("www.example.com", "evil.example.com")
        log.issue("bare.example.info")
        log.publish()
        watch = "\n".join(
            [
                ".example.test ca=caa",
                f"pinned.example.net pins={pinned.pin}",
                f"wrongkey.example.net pins={other_key}",
                ".example.org max-validity=90",
                ".example.com names=www.example.com",
                "bare.example.info",
            ]
        )
        collect = Collect()
        config = make_config(
            tmp_path,
            (log,),
            watch,
            channels=(collect,),
            caa_nameservers=(dns.nameserver,),
            # The test CA, known by its issuing key: a name alone is only a claim.
            ca_identities=(replace(TEST_CA, pins=(log.ca.pin,)),),
        )
        summary = run(config)
    verdicts = {a["names"][0]: (a["verdict"], a["reasons"]) for a in collect.events}
    assert verdicts["caa-ok.example.test"] == ("expected", [])
    assert verdicts["pinned.example.net"] == ("expected", [])
    assert verdicts["bare.example.info"] == ("found", [])
    no = verdicts["caa-no.example.test"]
    assert no[0] == "unexpected" and "does not allow pinwarden test CA" in no[1][0]
    failed = verdicts["caa-fail.example.test"]
    assert failed[0] == "unexpected" and failed[1][0].startswith(
        "CAA of caa-fail.example.test: unknown ("
    )
    key = verdicts["wrongkey.example.net"]
    assert key[0] == "unexpected" and "is not among the pins= pins" in key[1][0]
    long = verdicts["long.example.org"]
    assert long[0] == "unexpected" and "longer than max-validity=90" in long[1][0]
    outside = verdicts["www.example.com"]
    assert outside[0] == "unexpected" and outside[1][0].endswith(": evil.example.com")
    assert summary.unexpected_new == 5
    assert {r.finding.verdict for r in stored(config.store_url)} == {
        "expected",
        "unexpected",
        "found",
    }


def test_a_certificate_that_cannot_be_parsed_is_still_found(tmp_path: Path) -> None:
    """Fail safe: an entry whose certificate cryptography refuses has no names; the
    monitor still finds the watched name in its bytes and reports it as unexpected."""
    with LocalCTLog("static") as log:
        der = log.ca.issue("secret.example.test").cert.public_bytes(serialization.Encoding.DER)
        at = der.index(b"secret.example.test") - 2  # the subject CN's UTF8String tag
        broken = x509.load_der_x509_certificate(der[:at] + b"\x80" + der[at + 1 :])
        log.grow(5, names=NOISE)
        log.add_certificate(broken)
        log.publish()
        collect = Collect()
        summary = run(make_config(tmp_path, (log,), ".example.test", channels=(collect,)))
    assert summary.unexpected_new == 1
    (alert,) = collect.events
    assert alert["names"] == ["secret.example.test"] and alert["logs"][0]["index"] == 5
    assert alert["reasons"][0].startswith("certificate could not be read")
    assert Path(alert["cert_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


# -- where to start -----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["rfc6962", "static"])
def test_start_at_end_skips_history_and_from_start_reads_it(api: str, tmp_path: Path) -> None:
    with LocalCTLog(api) as log:  # type: ignore[arg-type]
        log.grow(300, names=NOISE)
        log.issue("old.example.test")
        log.publish()
        at_end = make_config(tmp_path / "end", (log,), ".example.test", start="end")
        first = run(at_end)
        assert (first.entries, first.findings_new) == (0, 0)
        assert position(at_end.store_url, log) == log.size
        log.issue("new.example.test")
        log.grow(5, names=NOISE)
        log.publish()
        second = run(at_end)
        assert (second.entries, second.findings_new) == (6, 1)
        assert names_of(stored(at_end.store_url)) == ["new.example.test"]
        from_start = make_config(tmp_path / "start", (log,), ".example.test", start="start")
        everything = run(from_start)
        assert everything.entries == log.size
        assert names_of(stored(from_start.store_url)) == ["new.example.test", "old.example.test"]


@pytest.mark.parametrize("api", ["rfc6962", "static"])
def test_from_a_date_starts_before_the_first_entry_of_that_date(api: str, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    times = iter([now - dt.timedelta(days=20), now - dt.timedelta(days=10), now])
    clock = [next(times)]
    with LocalCTLog(api, mmd=3600, clock=lambda: clock[0]) as log:  # type: ignore[arg-type]
        for label in ("old", "middle", "new"):
            log.grow(260, names=NOISE)
            log.issue(f"{label}.example.test")
            clock[0] = next(times, clock[0])
        log.publish()
        config = make_config(tmp_path, (log,), ".example.test", start=now - dt.timedelta(days=11))
        summary = run(config)
    # The first entry of the middle group is the first one at or after the date minus MMD.
    assert summary.entries == log.size - 261
    assert names_of(stored(config.store_url)) == ["middle.example.test", "new.example.test"]


def test_once_mode_terminates_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    with LocalCTLog("static") as log:
        log.grow(600, names=lambda i: [f"h{i}.example.test"] if i % 100 == 0 else ["x.org"])
        log.publish()
        config = make_config(tmp_path, (log,), ".example.test")
        assert run(config).findings_new == 6
        again = run(config)
        assert (again.entries, again.findings_new) == (0, 0)
        log.grow(100, names="h{i}.example.test")
        log.publish()
        assert (run(config).entries, run(config).entries) == (100, 0)
    assert len(stored(config.store_url)) == 106


def test_a_watch_list_of_10000_names(tmp_path: Path) -> None:
    watched = [f"host{i}.customer{i % 97}.example" for i in range(10_000)]
    text = "\n".join(watched)
    hits = set(range(0, 2000, 97))
    with LocalCTLog("static") as log:
        log.grow(
            2000,
            names=lambda i: [watched[i * 5]] if i in hits else [f"host{i}.elsewhere.example"],
        )
        log.publish()
        config = make_config(tmp_path, (log,), text, batch_size=1024)
        started = time.perf_counter()
        summary = run(config)
        elapsed = time.perf_counter() - started
    assert summary.findings_new == len(hits)
    assert names_of(stored(config.store_url)) == sorted(watched[i * 5] for i in hits)
    assert elapsed < 30, elapsed  # generous: the benchmark measures speed, this is a smoke check


# -- several logs, several workers ------------------------------------------------------------


def test_two_workers_sharing_postgres_split_the_logs(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database("split" + uuid.uuid4().hex[:8])
    with LocalCTLog("rfc6962") as a, LocalCTLog("static") as b, LocalCTLog("rfc6962") as c:
        for log in (a, b, c):
            log.grow(400, names=lambda i: [f"n{i}.example.test"] if i % 50 == 0 else ["x.org"])
            log.publish()
        first, second = Collect("collect"), Collect("collect")
        configs = [
            make_config(
                tmp_path,
                (a, b, c),
                ".example.test",
                store_url=url,
                channels=(channel,),
                worker_id=worker,
                parallel_logs=1,
            )
            for channel, worker in ((first, "worker-1"), (second, "worker-2"))
        ]

        async def both() -> list[MonitorSummary]:
            return list(await asyncio.gather(*(Monitor(cfg).run() for cfg in configs)))

        summaries = asyncio.run(both())
    assert all(s.entries > 0 for s in summaries), summaries  # both worked
    assert sum(s.entries for s in summaries) == 1200  # every entry read once, by one worker
    assert sum(s.findings_new for s in summaries) == 24
    assert len(stored(url)) == 24
    delivered = [e["tbs_sha256"] for e in first.events + second.events]
    assert len(delivered) == len(set(delivered)) == 24
    with open_store(url) as store:
        assert all(p.lease_owner is None for p in store.logs())


def test_the_log_list_is_reloaded(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as a, LocalCTLog("static") as b:
        a.issue("a1.example.test")
        a.publish()
        b.issue("b1.example.test")
        b.publish()
        lists = {"current": local_log_list(a)}
        config = make_config(
            tmp_path,
            lists["current"],
            ".example.test",
            reload_log_list=lambda: lists["current"],
            log_list_reload=0.05,
        )
        url = config.store_url

        async def body(monitor: Monitor) -> None:
            await until(lambda: names_of(stored(url)) == ["a1.example.test"], "log a")
            lists["current"] = local_log_list(b)  # a is gone, b is new
            await until(lambda: len(stored(url)) == 2, "log b")
            a.issue("a2.example.test")
            a.publish()
            await asyncio.sleep(0.5)

        summary = asyncio.run(in_daemon(config, body))
    assert names_of(stored(url)) == ["a1.example.test", "b1.example.test"]
    assert summary.logs == 1


def test_a_frozen_log_is_read_to_its_final_tree_head_only(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962", state=LogState.READONLY) as log:
        log.grow(300, names="f{i}.example.test")
        final = FinalTreeHead(300, log.root(300))
        log.grow(50, names="late{i}.example.test")
        log.publish()
        frozen = replace(log.log, final_tree_head=final)
        config = make_config(tmp_path, LogList((frozen,)), ".example.test")
        summary = run(config)
        assert (summary.entries, summary.findings_new) == (300, 300)
        assert position(config.store_url, log) == 300
        requests = len(log.requests)
        assert run(config).entries == 0
        assert len(log.requests) == requests  # done: the log is not even asked any more
        wrong = replace(log.log, final_tree_head=FinalTreeHead(320, b"\x01" * 32))
        collect = Collect()
        bad = run(replace(config, log_list=LogList((wrong,)), channels=(collect,)))
    assert bad.misbehaving_logs == (log.name,)
    assert [e["kind"] for e in collect.events if e["event"] == "log-misbehaviour"] == ["wrong-root"]
    assert position(config.store_url, log) == 300  # the batch up to 320 was not committed


def test_once_waits_for_a_leased_log_then_names_it_unread(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        log.issue("evil.example.test")
        log.publish()
        config = make_config(tmp_path, (log,), ".example.test", lease_ttl=0.6)
        with open_store(config.store_url) as store:
            store.register_logs([log.log_id])
            # Another worker's lease, live (or dead, but long): this run cannot read the log.
            assert store.acquire_log("crashed-host:7:0badf00d", 3600) == log.log_id
        recorder = Recorder()
        started = time.monotonic()
        summary = run(config, recorder)
        waited = time.monotonic() - started
        assert (summary.entries, summary.leased_logs) == (0, (log.name,))
        assert waited >= 0.6  # it waited for the lease to run out, up to its lease time
        errors = [c for c in recorder.calls if c[0] == "error"]
        assert [c[2] for c in errors] == ["leased", "leased"]
        assert "'crashed-host:7:0badf00d'" in errors[0][3]
        # A dead worker's lease shorter than the wait runs out: the log is read.
        with open_store(config.store_url) as store:
            store.release_lease("crashed-host:7:0badf00d", log.log_id)
            assert store.acquire_log("crashed-host:8:0badf00d", 0.3) == log.log_id
        again = run(replace(config, lease_ttl=10))
    assert (again.entries, again.findings_new, again.leased_logs) == (1, 1, ())


def test_a_worker_asks_the_store_only_for_its_due_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store holds 2,000 logs this monitor does not follow (another worker's list, logs
    # dropped from the list): leasing each to find the one due log cost a transaction each.
    calls: list[str] = []
    for method in ("acquire_log", "release_lease"):
        original = getattr(SQLiteStore, method)

        def counted(
            self: SQLiteStore, *args: Any, _o: Any = original, _m: str = method, **kw: Any
        ) -> Any:
            calls.append(_m)
            return _o(self, *args, **kw)

        monkeypatch.setattr(SQLiteStore, method, counted)
    with LocalCTLog("rfc6962") as log:
        log.grow(10, names=NOISE)
        log.publish()
        config = make_config(tmp_path, (log,), ".example.test")
        with open_store(config.store_url) as store:
            store.register_logs([n.to_bytes(32, "big") for n in range(2000)])
        calls.clear()
        summary = run(config)
    assert summary.entries == 10
    assert calls.count("acquire_log") <= 2
    with open_store(config.store_url) as store:
        assert all(p.lease_owner is None for p in store.logs())


def test_default_worker_ids_differ_between_monitors_on_one_host(tmp_path: Path) -> None:
    config = make_config(tmp_path, LogList(()), ".example.test")
    first, second = Monitor(config).worker_id, Monitor(config).worker_id
    assert first != second
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{8}}", first)
    assert Monitor(replace(config, worker_id="named")).worker_id == "named"


# -- alerts -------------------------------------------------------------------------------------


def test_alerts_claimed_by_a_dead_process_are_sent_at_once_by_its_successor(
    tmp_path: Path,
) -> None:
    with LocalCTLog("rfc6962") as log:
        log.issue("a.example.test")
        log.issue("b.example.test")
        log.publish()
        nobody = Collect("collect", fail=100)
        config = make_config(
            tmp_path, (log,), ".example.test", channels=(nobody,), stall_after=dt.timedelta(days=9)
        )
        assert run(config).alerts_pending == 2
        # A process killed while sending: its claims stay behind, for the claim's span.
        with open_store(config.store_url) as store:
            far = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
            assert len(store.due_alerts("collect", far, worker_id="host:0:0123abcd")) == 2
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
        other = Collect()
        summary = run(
            replace(config, channels=(other,), worker_id="host:1:4567cdef", clock=lambda: later)
        )
        assert other.events == [] and summary.alerts_pending == 0  # another worker's claims
        successor = Collect()
        run(
            replace(config, channels=(successor,), worker_id="host:0:0123abcd", clock=lambda: later)
        )
    assert sorted(e["names"][0] for e in successor.events) == ["a.example.test", "b.example.test"]


def test_alerts_for_a_channel_no_longer_given_are_reported(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        log.issue("evil.example.test")
        log.publish()
        old = Collect("webhook:hooks.example#0000000000aa", fail=100)
        config = make_config(
            tmp_path, (log,), ".example.test", channels=(old,), stall_after=dt.timedelta(days=9)
        )
        assert run(config).alerts_stranded == 0
        new = Collect("webhook:hooks.example#0000000000bb")
        recorder = Recorder()
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
        summary = run(replace(config, channels=(new,), clock=lambda: later), recorder)
    assert (summary.alerts_pending, summary.alerts_stranded) == (0, 1)
    assert ("stranded", {old.name: 1}) in recorder.calls
    assert new.events == []  # the finding's alert was queued for the old channel only


def test_alerts_are_retried_until_delivered_across_restarts(tmp_path: Path) -> None:
    now = [dt.datetime.now(dt.timezone.utc)]
    with LocalCTLog("rfc6962") as log:
        log.issue("a.example.test")
        log.issue("b.example.test")
        log.publish()
        down = Collect(fail=10)
        config = make_config(
            tmp_path, (log,), ".example.test", channels=(down,), clock=lambda: now[0]
        )
        first = run(config)
        assert (first.findings_new, first.alerts_pending) == (2, 2)
        assert down.events == [] and down.attempts == 2
        up = Collect()
        again = run(replace(config, channels=(up,)))
        assert again.alerts_pending == 0 and up.events == []  # not due yet: backoff
        now[0] += dt.timedelta(hours=2)
        last = run(replace(config, channels=(up,)))
    assert (last.findings_new, last.alerts_pending) == (0, 0)
    assert sorted(e["names"][0] for e in up.events) == ["a.example.test", "b.example.test"]
    assert sorted(e["id"] for e in up.events) == [1, 2]


def test_a_stalled_log_alerts_once_per_stall(tmp_path: Path) -> None:
    now = [dt.datetime.now(dt.timezone.utc)]
    collect = Collect()
    with LocalCTLog("static") as log:
        log.grow(10, names=NOISE)
        log.publish()
        config = make_config(
            tmp_path,
            (log,),
            ".example.test",
            channels=(collect,),
            clock=lambda: now[0],
            stall_after=dt.timedelta(hours=1),
        )

        def stalled() -> int:
            return sum(1 for e in collect.events if e["event"] == "log-stalled")

        async def body(monitor: Monitor) -> None:
            await asyncio.sleep(0.3)
            assert stalled() == 0
            now[0] += dt.timedelta(hours=2)
            await until(lambda: stalled() == 1, "the stall alert")
            await asyncio.sleep(0.3)  # more polls: no second alert for the same stall
            assert stalled() == 1
            log.grow(1, names=NOISE)
            log.publish()
            await until(lambda: position(config.store_url, log) == 11, "growth")
            await asyncio.sleep(0.2)
            now[0] += dt.timedelta(hours=2)
            await until(lambda: stalled() == 2, "the second stall")

        asyncio.run(in_daemon(config, body))
    alert = next(e for e in collect.events if e["event"] == "log-stalled")
    assert alert["log"] == log.name and "has not grown for 2.0 hours" in alert["message"]


def test_leases_are_renewed_while_a_long_session_works(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        log.grow(600, names="n{i}.example.test")
        log.publish()
        log.inject("slow", delay=0.02)
        config = make_config(tmp_path, (log,), ".example.test", batch_size=32, lease_ttl=0.3)
        recorder = Recorder()
        started = time.monotonic()
        summary = run(config, recorder)
    assert time.monotonic() - started > 0.6  # the session outlived two lease periods
    assert (summary.entries, summary.findings_new) == (600, 600)
    # One session did it all: its commits were never refused for a lost lease.
    assert [c[0] for c in recorder.calls].count("started") == 1


def test_more_logs_than_parallel_sessions_take_turns(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as a, LocalCTLog("static") as b, LocalCTLog("rfc6962") as c:
        for log in (a, b, c):
            log.issue(f"first.{log.port}.example.test")
            log.publish()
        config = make_config(tmp_path, (a, b, c), ".example.test", parallel_logs=1)
        url = config.store_url

        async def body(monitor: Monitor) -> None:
            await until(lambda: len(stored(url)) == 3, "every log")
            for log in (a, b, c):
                log.issue(f"second.{log.port}.example.test")
                log.publish()
            await until(lambda: len(stored(url)) == 6, "every log again")

        summary = asyncio.run(in_daemon(config, body))
    assert (summary.logs, summary.entries, summary.findings_new) == (3, 6, 6)


def test_stop_commits_and_releases_the_leases(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        log.grow(2000, names=NOISE)
        log.publish()
        log.inject("slow", delay=0.05)
        config = make_config(tmp_path, (log,), ".example.test", batch_size=64)

        async def body(monitor: Monitor) -> None:
            await until(lambda: position(config.store_url, log) > 0, "the first batch")

        summary = asyncio.run(in_daemon(config, body))
    done = position(config.store_url, log)
    assert 0 < done < 2000 and done % 64 == 0
    assert summary.entries == done
    with open_store(config.store_url) as store:
        assert all(p.lease_owner is None for p in store.logs())


def test_cancelling_run_cleans_up_and_reraises(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        log.grow(10, names=NOISE)
        log.publish()
        config = make_config(tmp_path, (log,), ".example.test", once=False)
        monitor = Monitor(config)

        async def main() -> None:
            task = asyncio.ensure_future(monitor.run())
            await until(lambda: position(config.store_url, log) == 10, "the log")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
    assert monitor.summary().entries == 10
    with open_store(config.store_url) as store:
        assert all(p.lease_owner is None for p in store.logs())


def test_an_observer_that_raises_does_not_stop_the_monitor(tmp_path: Path) -> None:
    class Broken(Recorder):
        def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
            raise RuntimeError("display bug")

    with LocalCTLog("rfc6962") as log:
        log.issue("a.example.test")
        log.publish()
        summary = run(make_config(tmp_path, (log,), ".example.test"), Broken())
    assert summary.findings_new == 1


def test_configuration_errors() -> None:
    watch = WatchList.parse("example.test")
    empty = LogList(())
    with pytest.raises(InputError, match="same name"):
        MonitorConfig(watch, empty, "sqlite://", channels=(Collect(), Collect()))
    with pytest.raises(InputError, match="start"):
        MonitorConfig(watch, empty, "sqlite://", start="middle")
    with pytest.raises(InputError, match="parallel_logs"):
        MonitorConfig(watch, empty, "sqlite://", parallel_logs=0)
    naive = MonitorConfig(watch, empty, "sqlite://", start=dt.datetime(2025, 1, 1))
    assert naive.start == dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    assert default_output_dir("sqlite:////srv/ct/monitor.sqlite3") == Path("/srv/ct/certs")
    assert default_output_dir("postgresql://db/m").name == "certs"
