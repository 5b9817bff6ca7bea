"""The CT monitor's files and matching in a run: each finding's files are written atomically,
once, as its alert described them; a file that cannot be written is a retried error, not the
end of the daemon; odd certificate names are found end to end; a static log's certificate is
judged by its issuer's key; and ``--from DATE`` bisects only entries the log signed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pinwarden.caa.identities import CAIdentity
from pinwarden.ct import findings
from pinwarden.ct._http import HTTPSettings
from pinwarden.ct.client import RFC6962Client
from pinwarden.ct.entries import LogEntry, encode_merkle_tree_leaf, parse_leaf
from pinwarden.ct.follow import position_at
from pinwarden.ct.logs import Log
from pinwarden.ct.monitor import Monitor, MonitorConfig, MonitorSummary
from pinwarden.ct.reader import LogReader
from pinwarden.ct.store import FindingRecord, open_store
from pinwarden.ct.watch import WatchList
from pinwarden.errors import LogMisbehaviourError
from pinwarden.testing import CA, DNSServer, LocalCTLog, local_log_list

FAST = HTTPSettings(timeout=5.0, attempts=2, backoff=0.01, max_backoff=0.02)


def identity(ca: CA) -> CAIdentity:
    """The test kit's CA, recognised by the key of its issuing intermediate."""
    return CAIdentity(
        name="pinwarden test CA",
        caa=("ca.pinwarden.test",),
        organizations=("pinwarden test kit",),
        pins=(ca.pin,),
    )


@dataclass
class Collect:
    """An alert channel that keeps what it is given."""

    name: str = "collect"
    events: list[dict[str, Any]] = field(default_factory=list)

    async def deliver(self, event: Any) -> None:
        self.events.append(event.to_dict())


@dataclass
class Errors:
    """A MonitorObserver that keeps the log errors."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def log_started(self, log: Log, position: int, tree_size: int) -> None:
        pass

    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
        pass

    def finding(self, log: Log, verdict: str, new: bool) -> None:
        pass

    def log_error(self, log: Log, kind: str, message: str) -> None:
        self.calls.append((kind, message))

    def alert_delivered(self, channel: str, ok: bool) -> None:
        pass

    def alerts_stranded(self, channels: Mapping[str, int]) -> None:
        pass


def config(
    tmp_path: Path, logs: tuple[LocalCTLog, ...], watch: str, **fields: Any
) -> MonitorConfig:
    settings: dict[str, Any] = {
        "store_url": f"sqlite:///{tmp_path}/monitor.sqlite3",
        "start": "start",
        "once": True,
        "poll_interval": 0.05,
        "output_dir": tmp_path / "certs",
        "client_settings": FAST,
    }
    settings.update(fields)
    return MonitorConfig(WatchList.parse(watch), local_log_list(*logs), **settings)


def run(cfg: MonitorConfig) -> MonitorSummary:
    return asyncio.run(Monitor(cfg).run())


def stored(cfg: MonitorConfig) -> tuple[FindingRecord, ...]:
    with open_store(cfg.store_url) as store:
        return store.findings()


# -- writing the files ---------------------------------------------------------------------------


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path: Path) -> None:
    # Two sessions (two logs) may find one certificate at the same moment: the temporary
    # file was once named after the process, so one rename found the other's gone.
    target = tmp_path / "ab" / "abcd.json"
    target.parent.mkdir()
    errors: list[OSError] = []
    barrier = threading.Barrier(2)

    def writer(text: str) -> None:
        barrier.wait()
        for _ in range(300):
            try:
                findings._atomic_write(target, text)
            except OSError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(c * 5000,)) for c in "xy"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_text() in ("x" * 5000, "y" * 5000)
    assert [p.name for p in target.parent.iterdir()] == ["abcd.json"]  # no temporary left


def test_a_file_that_cannot_be_written_is_an_error_the_daemon_retries(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        log.issue("www.example.com")
        log.publish()
        blocker = tmp_path / "certs"
        blocker.write_text("a file where the output directory should be")
        errors = Errors()
        cfg = config(tmp_path, (log,), ".example.com", once=False, output_dir=blocker)

        async def main() -> None:
            monitor = Monitor(cfg, errors)
            task = asyncio.ensure_future(monitor.run())
            await until(lambda: any(kind == "files" for kind, _ in errors.calls), task)
            assert stored(cfg) == ()  # nothing committed without its files
            blocker.unlink()  # the operator fixes it: the next session writes and commits
            await until(lambda: len(stored(cfg)) == 1, task)
            monitor.stop()
            await task

        asyncio.run(main())
    message = next(m for kind, m in errors.calls if kind == "files")
    assert message.startswith("cannot write the certificate files: ")
    (record,) = stored(cfg)
    json_file = (
        blocker / record.finding.tbs_hash.hex()[:2] / f"{record.finding.tbs_hash.hex()}.json"
    )
    assert json.loads(json_file.read_text())["names"] == ["www.example.com"]


def test_a_once_run_that_cannot_write_the_files_leaves_the_log_unprocessed(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        log.issue("www.example.com")
        log.publish()
        blocker = tmp_path / "certs"
        blocker.write_text("in the way")
        errors = Errors()
        monitor = Monitor(config(tmp_path, (log,), ".example.com", output_dir=blocker), errors)
        summary = asyncio.run(monitor.run())
        assert (summary.findings_new, summary.entries) == (0, 0)
        assert [kind for kind, _ in errors.calls] == ["files"] * 3  # once mode: three tries
        # For the run's summary (MonitorSummary does not show it yet: see follow.Tally).
        assert monitor._ctx is not None
        assert monitor._ctx.tally.incomplete == {log.name}


async def until(condition: Callable[[], bool], task: asyncio.Future[Any]) -> None:
    for _ in range(1500):
        if condition():
            return
        assert not task.done(), f"the monitor ended: {task.exception()!r}"
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_the_details_file_keeps_the_verdict_its_alert_had(tmp_path: Path) -> None:
    ca = CA("shared").intermediate("shared issuing")
    with (
        DNSServer() as dns,
        LocalCTLog("rfc6962", ca=ca) as first,
        LocalCTLog("static", ca=ca) as second,
    ):
        issued = ca.issue("shop.example.test")
        first.add_certificate(issued)
        first.publish()
        dns.add("shop.example.test", "CAA", '0 issue "other.example"')
        collect = Collect()
        common: dict[str, Any] = {
            "caa_nameservers": (dns.nameserver,),
            "ca_identities": (identity(ca),),
            "channels": (collect,),
        }
        run(config(tmp_path, (first,), ".example.test ca=caa", **common))
        (alert,) = collect.events
        assert alert["verdict"] == "unexpected"
        details = Path(alert["json_file"]).read_text()
        # The owner fixes CAA; the certificate turns up in another log.
        dns.add("shop.example.test", "CAA", '0 issue "ca.pinwarden.test"')
        second.add_certificate(issued)
        second.publish()
        cfg = config(tmp_path, (first, second), ".example.test ca=caa", **common)
        run(cfg)
    assert len(collect.events) == 1
    assert Path(alert["json_file"]).read_text() == details
    (record,) = stored(cfg)
    assert record.finding.verdict == "unexpected"
    assert len(record.logs) == 2


def test_files_left_by_a_batch_that_was_not_committed_are_replaced(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        entry = log.issue("www.example.com")
        log.publish()
        cfg = config(tmp_path, (log,), ".example.com")
        tbs = parse_leaf(entry.leaf_input, None, 0).tbs_hash.hex()
        stale = tmp_path / "certs" / tbs[:2] / f"{tbs}.json"
        stale.parent.mkdir(parents=True)
        stale.write_text('{"verdict": "from a batch that crashed before its commit"}')
        run(cfg)
    assert json.loads(stale.read_text())["verdict"] == "found"


# -- odd names, end to end ---------------------------------------------------------------------


def test_null_prefix_and_idna_2003_names_are_found(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962") as log:
        null_prefix = "www.example.com\x00.evil.org"
        log.add_certificate(log.ca.issue(null_prefix, common_name=null_prefix))
        log.issue("xn--fa-hia.example.de")  # faß.example.de: fass.example.de to IDNA 2003
        log.issue("unrelated.example.net")
        log.publish()
        collect = Collect()
        cfg = config(tmp_path, (log,), ".example.com\nfass.example.de", channels=(collect,))
        summary = run(cfg)
    assert summary.findings_new == 2
    matched = sorted(tuple(event["matched_names"]) for event in collect.events)
    assert matched == [(null_prefix,), ("xn--fa-hia.example.de",)]


# -- a static log's x509 entries -----------------------------------------------------------------


def test_a_static_log_s_certificate_is_judged_by_its_issuer_s_key(tmp_path: Path) -> None:
    # A data tile carries only the fingerprint of the issuing certificate: the monitor
    # fetches it to prove who signed the certificate.
    with LocalCTLog("static") as log:
        log.issue("www.example.test")
        log.issue("pre.example.test", precert=True)
        log.publish()
        collect = Collect()
        cfg = config(
            tmp_path,
            (log,),
            ".example.test ca=ca.pinwarden.test",
            ca_identities=(identity(log.ca),),
            channels=(collect,),
        )
        run(cfg)
        issuer_requests = [r for r in log.requests if "issuer/" in r]
    assert {e["names"][0]: (e["verdict"], e["reasons"]) for e in collect.events} == {
        "www.example.test": ("expected", []),
        "pre.example.test": ("expected", []),
    }
    assert len(issuer_requests) == 1


# -- where --from DATE starts ----------------------------------------------------------------------


def clocked_log(days: int) -> tuple[LocalCTLog, dt.datetime]:
    """A log whose entry i is timestamped day i after a start date."""
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    now = [start]
    log = LocalCTLog("rfc6962", clock=lambda: now[0], mmd=0)
    log.start()
    for day in range(days):
        now[0] = start + dt.timedelta(days=day)
        log.issue(f"host{day}.example.org")
    log.publish()
    return log, start


async def bisect(log: LocalCTLog, when: dt.datetime, lie: bool) -> int:
    async with LogReader(
        log.log, settings=FAST, clock=lambda: when + dt.timedelta(days=400)
    ) as reader:
        head = await reader.latest_verified(None)
        if lie:
            client = reader.client
            assert isinstance(client, RFC6962Client)
            honest = client.get_entries

            async def lying(start: int, end: int) -> list[LogEntry]:
                entries = await honest(start, end)
                if end - start != 1:
                    return entries
                # One entry asked for (what a bisection asks): a timestamp far in the past,
                # so that the bisection would skip every entry after it.
                fake = encode_merkle_tree_leaf(0, entries[0].certificate_der or b"")
                return [parse_leaf(fake, None, start)]

            client.get_entries = lying  # type: ignore[method-assign]
        return await position_at(reader, head, when, log.mmd)


def test_position_at_finds_the_first_entry_of_a_date() -> None:
    log, start = clocked_log(40)
    try:
        assert asyncio.run(bisect(log, start + dt.timedelta(days=25), lie=False)) == 25
    finally:
        log.stop()


def test_position_at_reads_only_entries_proved_in_the_signed_tree() -> None:
    # A log that serves made-up timestamps to single-entry requests could steer --from
    # DATE past the certificates it wants unseen.
    log, start = clocked_log(40)
    try:
        with pytest.raises(LogMisbehaviourError):
            asyncio.run(bisect(log, start + dt.timedelta(days=25), lie=True))
    finally:
        log.stop()
