"""The CT monitor under injected log faults: each gives the right alert or a retry, and the
store's position never moves past data that was not verified."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pinwarden.ct._http import HTTPSettings
from pinwarden.ct.alerts import AlertEvent
from pinwarden.ct.monitor import Monitor, MonitorConfig, MonitorSummary
from pinwarden.ct.store import open_store
from pinwarden.ct.watch import WatchList
from pinwarden.testing import LocalCTLog, local_log_list
from pinwarden.testing.ctlog import CTFault

FAST = HTTPSettings(timeout=5.0, attempts=2, backoff=0.01, max_backoff=0.02)
APIS = ["rfc6962", "static"]


@dataclass
class Collect:
    name: str = "collect"
    events: list[dict[str, Any]] = field(default_factory=list)

    async def deliver(self, event: AlertEvent) -> None:
        self.events.append(event.to_dict())

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events if e["event"] == "log-misbehaviour"]

    def found(self) -> int:
        return sum(1 for e in self.events if e["event"] == "discovered")


def setup(api: str, tmp_path: Path, **fields: Any) -> tuple[LocalCTLog, MonitorConfig, Collect]:
    """A log with 300 entries read and committed, and 300 more published."""
    log = LocalCTLog(api).start()  # type: ignore[arg-type]
    log.grow(300, names="old{i}.example.test")
    log.publish()
    collect = Collect()
    settings: dict[str, Any] = {
        "store_url": f"sqlite:///{tmp_path / 'monitor.sqlite3'}",
        "start": "start",
        "once": True,
        "channels": (collect,),
        "client_settings": FAST,
        "output_dir": tmp_path / "certs",
        "batch_size": 256,
        "poll_interval": 0.05,
    }
    settings.update(fields)
    config = MonitorConfig(WatchList.parse(".example.test"), local_log_list(log), **settings)
    first = run(config)
    assert (first.entries, first.findings_new) == (300, 300)
    log.grow(300, names="new{i}.example.test")
    log.publish()
    return log, config, collect


def run(config: MonitorConfig) -> MonitorSummary:
    return asyncio.run(Monitor(config).run())


def position(config: MonitorConfig, log: LocalCTLog) -> tuple[int, int]:
    """The stored position and verified tree size."""
    with open_store(config.store_url) as store:
        progress = store.progress(log.log_id)
        assert progress is not None and progress.head is not None
        return progress.position, progress.head.tree_size


@pytest.fixture
def logs() -> Any:
    opened: list[LocalCTLog] = []
    yield opened
    for log in opened:
        log.stop()


MISBEHAVIOUR: dict[tuple[str, str], str] = {
    ("rfc6962", "bad-sth-signature"): "bad-signature",
    ("static", "bad-sth-signature"): "bad-signature",
    # RFC 6962: a head whose root is not the tree's fails its consistency proof with the
    # verified head; static: its root is recomputed from the tiles.
    ("rfc6962", "wrong-root"): "fork",
    ("static", "wrong-root"): "wrong-root",
    ("rfc6962", "fork"): "fork",
    ("static", "fork"): "fork",
    ("rfc6962", "malformed-entries"): "malformed-entry",
    ("static", "malformed-entries"): "malformed-entry",
    ("rfc6962", "truncated-entries"): "malformed-entry",
    ("static", "truncated-entries"): "malformed-entry",
}


@pytest.mark.parametrize(("api", "fault"), sorted(MISBEHAVIOUR))
def test_misbehaviour_is_alerted_and_the_position_stays(
    api: str, fault: CTFault, tmp_path: Path, logs: list[LocalCTLog]
) -> None:
    log, config, collect = setup(api, tmp_path)
    logs.append(log)
    if fault == "fork":
        log.inject("fork", index=5, extra=10)
    else:
        log.inject(fault)
    summary = run(config)
    assert summary.misbehaving_logs == (log.name,)
    assert summary.findings_new == 0 and summary.entries == 0
    assert collect.kinds() == [MISBEHAVIOUR[api, fault]]
    alert = next(e for e in collect.events if e["event"] == "log-misbehaviour")
    assert alert["log"] == log.name and alert["evidence"] and alert["position"] == 300
    assert position(config, log) == (300, 300)
    log.heal()
    healed = run(config)
    assert (healed.entries, healed.findings_new, healed.misbehaving_logs) == (300, 300, ())
    assert position(config, log) == (600, 600)


@pytest.mark.parametrize("api", APIS)
def test_entries_that_do_not_hash_to_a_fresh_head_are_a_wrong_root(
    api: str, tmp_path: Path
) -> None:
    with LocalCTLog(api) as log:  # type: ignore[arg-type]
        log.grow(300, names="n{i}.example.test")
        log.publish()
        log.inject("wrong-root")
        collect = Collect()
        config = MonitorConfig(
            WatchList.parse(".example.test"),
            local_log_list(log),
            f"sqlite:///{tmp_path / 'm.sqlite3'}",
            start="start",
            once=True,
            channels=(collect,),
            client_settings=FAST,
            output_dir=tmp_path,
        )
        summary = run(config)
    assert collect.kinds() == ["wrong-root"] and collect.found() == 0
    assert summary.findings_new == 0
    assert position(config, log)[0] == 0  # the start was committed, nothing after it


@pytest.mark.parametrize("api", APIS)
def test_a_fork_is_reported_once_not_at_every_poll(
    api: str, tmp_path: Path, logs: list[LocalCTLog]
) -> None:
    log, config, collect = setup(api, tmp_path)
    logs.append(log)
    log.inject("fork", index=7, extra=3)
    errors: list[str] = []

    class Errors:
        def log_error(self, log: object, kind: str, message: str) -> None:
            errors.append(kind)

    async def daemon() -> None:
        monitor = Monitor(replace(config, once=False), Errors())  # type: ignore[arg-type]
        task = asyncio.ensure_future(monitor.run())
        deadline = time.monotonic() + 20
        while errors.count("fork") < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        monitor.stop()
        await task

    asyncio.run(daemon())
    assert errors.count("fork") >= 4  # retried and seen again at each poll...
    assert collect.kinds() == ["fork"]  # ...but alerted once
    assert position(config, log) == (300, 300)


RECOVERABLE: list[tuple[str, Callable[[LocalCTLog], None]]] = [
    ("rate-limit", lambda log: log.inject("rate-limit", count=3, retry_after=0)),
    ("slow", lambda log: log.inject("slow", count=3, delay=0.3)),
    ("drop", lambda log: log.inject("drop", count=3)),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("name", "inject"), RECOVERABLE, ids=[r[0] for r in RECOVERABLE])
def test_transient_faults_are_retried(
    api: str,
    name: str,
    inject: Callable[[LocalCTLog], None],
    tmp_path: Path,
    logs: list[LocalCTLog],
) -> None:
    log, config, collect = setup(api, tmp_path, client_settings=replace(FAST, attempts=5))
    logs.append(log)
    inject(log)
    summary = run(config)
    assert log.faults == frozenset()  # every injected failure was met
    assert summary.misbehaving_logs == summary.unreachable_logs == ()
    assert (summary.entries, summary.findings_new) == (300, 300)
    assert position(config, log) == (600, 600)
    assert collect.kinds() == []


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "inject",
    [
        lambda log: log.inject("drop"),
        lambda log: log.inject("rate-limit", retry_after=0),
        lambda log: log.inject("slow", delay=1.0),
    ],
    ids=["drop", "rate-limit", "slow"],
)
def test_a_log_that_stays_unreachable_is_reported_and_not_advanced(
    api: str, inject: Callable[[LocalCTLog], None], tmp_path: Path, logs: list[LocalCTLog]
) -> None:
    log, config, collect = setup(api, tmp_path)
    logs.append(log)
    inject(log)
    started = time.monotonic()
    summary = run(replace(config, client_settings=replace(FAST, timeout=0.3)))
    assert time.monotonic() - started < 30  # once mode gives up after a few tries
    assert summary.unreachable_logs == (log.name,)
    assert summary.misbehaving_logs == ()
    assert summary.entries == 0
    assert position(config, log) == (300, 300)
    assert collect.kinds() == []


def test_one_misbehaving_log_does_not_hold_back_the_others(
    tmp_path: Path, logs: list[LocalCTLog]
) -> None:
    bad, config, collect = setup("rfc6962", tmp_path)
    logs.append(bad)
    good = LocalCTLog("static").start()
    logs.append(good)
    good.grow(300, names="good{i}.example.test")
    good.publish()
    bad.inject("bad-sth-signature")
    summary = run(replace(config, log_list=local_log_list(bad, good)))
    assert summary.misbehaving_logs == (bad.name,)
    assert (summary.entries, summary.findings_new) == (300, 300)
    assert position(config, good) == (300, 300)
    assert position(config, bad) == (300, 300)
    assert collect.kinds() == ["bad-signature"]
