"""SIGKILL the CT monitor at random points, again and again: on restart it resumes, every
matching certificate ends up in the store exactly once, and every finding gets its alert.

The monitor runs in a subprocess (the small runner below) against two local logs, one of
each API, that grow between kills. Alerts go to a JSON-lines file. Delivery is at least
once: an alert is sent again only if the process died between the channel's write and
the commit of ``mark_delivered`` (or after the write was torn), so duplicates are counted
and must stay at most one per kill (one channel sends one alert at a time). The monitor
keeps its worker ID across the kills, as the CLI's worker slot does: each restart takes
its logs and its unsettled alert claims back at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pinwarden.ct.store import open_store
from pinwarden.testing import LocalCTLog, write_log_list

KILLS = 22
RUNNER = """
import asyncio, dataclasses, json, sys
from pathlib import Path
from pinwarden.ct._http import HTTPSettings
from pinwarden.ct.alerts import StdoutChannel
from pinwarden.ct.loglist import parse_log_list
from pinwarden.ct.monitor import Monitor, MonitorConfig
from pinwarden.ct.watch import WatchList

cfg = json.loads(sys.argv[1])
log_list = parse_log_list(Path(cfg["log_list"]).read_bytes(), source=cfg["log_list"])
with open(cfg["alerts"], "a", encoding="utf-8") as stream:
    config = MonitorConfig(
        watch=WatchList.load(cfg["watch"]),
        log_list=log_list,
        store_url=cfg["store"],
        start="start",
        once=cfg["once"],
        channels=(StdoutChannel(json_lines=True, stream=stream),),
        worker_id="kill-test",
        poll_interval=0.05,
        batch_size=32,
        lease_ttl=30.0,
        output_dir=Path(cfg["certs"]),
        client_settings=HTTPSettings(timeout=5.0, backoff=0.01, max_backoff=0.05),
    )
    summary = asyncio.run(Monitor(config).run())
print(json.dumps(dataclasses.asdict(summary)))
"""


def watched(index: int) -> bool:
    return index % 7 == 3


def names(prefix: str) -> Any:
    return lambda i: [f"{prefix}{i}.watched.test"] if watched(i) else [f"{prefix}{i}.other.org"]


def runner(config: dict[str, Any], *, once: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps({**config, "once": once})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_points_loses_and_repeats_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("PINWARDEN_KILL_SEED", time.time()))
    rng = random.Random(seed)  # the delays; rerun one with PINWARDEN_KILL_SEED
    watch = tmp_path / "watch.txt"
    watch.write_text(".watched.test\n", encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'monitor.sqlite3'}"
    alerts = tmp_path / "alerts.jsonl"
    started = time.monotonic()
    with LocalCTLog("rfc6962") as first, LocalCTLog("static") as second:
        first.grow(1000, names=names("a"), precert_every=5)
        second.grow(1000, names=names("b"), precert_every=4)
        for log in (first, second):
            log.publish()
            # A little latency per request, as a real log has: the monitor is then at
            # work (behind, or sending alerts) when most kills land, not idle.
            log.inject("slow", delay=0.03)
        config = {
            "log_list": str(write_log_list(tmp_path / "logs.json", first, second)),
            "watch": str(watch),
            "store": store,
            "alerts": str(alerts),
            "certs": str(tmp_path / "certs"),
        }
        kills = busy = 0
        for round_ in range(KILLS):
            process = runner(config, once=False)
            time.sleep(rng.uniform(0.3, 1.5))
            process.send_signal(signal.SIGKILL)
            _, stderr = process.communicate(timeout=30)
            assert process.returncode == -signal.SIGKILL, stderr
            kills += 1
            if _busy(store, alerts, first, second):
                busy += 1
            if round_ < KILLS - 2:  # the logs grow while the monitor is down or up
                first.grow(400, names=names("a"), precert_every=5)
                second.grow(400, names=names("b"), precert_every=4)
                first.publish()
                second.publish()
        # The end: run to completion. The last killed process's alert claims (five
        # minutes) are taken back at once: the restart has the same worker ID.
        first.heal()
        second.heal()
        for _ in range(3):
            process = runner(config, once=True)
            stdout, stderr = process.communicate(timeout=60)
            assert process.returncode == 0, stderr
            summary = json.loads(stdout.splitlines()[-1])
            if summary["alerts_pending"] == 0 and _delivered_all(store, alerts):
                break
        expected = {
            f"{prefix}{i}.watched.test"
            for prefix, log in (("a", first), ("b", second))
            for i in range(log.size)
            if watched(i)
        }
        with open_store(store) as state:
            for log in (first, second):
                progress = state.progress(log.log_id)
                assert progress is not None and progress.position == log.size
            records = state.findings()
    elapsed = time.monotonic() - started

    found = [name for record in records for name in record.finding.names]
    assert sorted(found) == sorted(expected)  # every matching certificate, exactly once
    lines, torn = _alert_lines(alerts)
    ids = [line["id"] for line in lines]
    by_tbs = {line["tbs_sha256"] for line in lines}
    assert by_tbs == {record.finding.tbs_hash.hex() for record in records}
    stored_ids = _stored_alert_ids(store)
    assert set(ids) == set(stored_ids)  # every alert the store queued was delivered
    assert len(stored_ids) == len(records)  # and it queued one per finding
    duplicates = len(ids) - len(set(ids))
    print(
        f"\nkill test (seed {seed}): {kills} SIGKILLs, {len(records)} findings, "
        f"{len(ids)} alert lines, {duplicates} duplicates, {torn} torn lines, "
        f"{busy} kills while behind, {elapsed:.1f}s"
    )
    assert duplicates + torn <= kills
    # The kills must have hit a monitor at work (behind the logs or with alerts to send),
    # not only idle ones, for the test to mean anything.
    assert busy >= kills // 2


def _alert_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    lines: list[dict[str, Any]] = []
    torn = 0
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            torn += 1  # a write cut by SIGKILL: never marked delivered, so sent again
    return lines, torn


def _stored_alert_ids(url: str) -> list[int]:
    with (
        contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection,
        connection,
    ):
        rows = connection.execute("SELECT id FROM ct_alerts WHERE kind = 'discovered'")
        return [row[0] for row in rows]


def _busy(url: str, alerts: Path, *logs: LocalCTLog) -> bool:
    """Whether the killed monitor had work left: entries or alerts."""
    if not Path(url.removeprefix("sqlite:///")).exists():
        return False
    with open_store(url) as state:
        for log in logs:
            progress = state.progress(log.log_id)
            if progress is None or progress.position < log.head.size:
                return True
    return alerts.exists() and not _delivered_all(url, alerts)


def _delivered_all(url: str, alerts: Path) -> bool:
    lines, _ = _alert_lines(alerts)
    return set(_stored_alert_ids(url)) <= {line["id"] for line in lines}
