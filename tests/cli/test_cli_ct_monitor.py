"""``pinwarden ct monitor`` end to end: the real CLI against local CT logs (RFC 6962 and
static-ct-api) on 127.0.0.1, with SQLite state files, hook alerts, the metrics endpoint, and
stops by SIGTERM, SIGINT and SIGKILL in a child process."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import pinwarden.cli.ct_monitor  # noqa: F401 - registers the command until cli/__init__ does
from pinwarden.cli import main
from pinwarden.cli.ct_monitor import _parse_from, _WorkerSlot, exit_status, summary_json
from pinwarden.ct import monitor as monitor_engine
from pinwarden.ct.loglist import cache_path
from pinwarden.ct.monitor import MonitorSummary
from pinwarden.ct.store import open_store
from pinwarden.errors import InputError
from pinwarden.pins import Pin
from pinwarden.testing import generate_key
from pinwarden.testing.ctlog import LocalCTLog, write_log_list

APIS = ["rfc6962", "static"]
# The command through the console entry point, in a child process (signals, SIGKILL).
_CHILD = "import pinwarden.cli.ct_monitor; from pinwarden.cli import run; run()"
OTHER_PIN = "sha256/" + "A" * 43 + "="


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads or writes the real cache or state directories."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command in this process retries a failing request after milliseconds, not the
    seconds a real log deserves: the same retries, only sooner."""
    original = monitor_engine._client_kwargs

    def fast(settings: Any, parallel_fetches: int) -> dict[str, Any]:
        kwargs = original(settings, parallel_fetches)
        kwargs["settings"] = replace(
            kwargs["settings"], timeout=5.0, backoff=0.01, max_backoff=0.05
        )
        return kwargs

    monkeypatch.setattr(monitor_engine, "_client_kwargs", fast)


@pytest.fixture(params=APIS)
def log(request: pytest.FixtureRequest) -> Iterator[LocalCTLog]:
    with LocalCTLog(request.param, max_batch=64) as served:
        yield served


class Setup:
    """A watch list (``.example.com`` pinned to ``key``, ``.example.org`` with no
    expectations), a log list file and a state URL in ``tmp``."""

    def __init__(self, tmp: Path, *logs: LocalCTLog) -> None:
        self.tmp = tmp
        self.key = generate_key()
        self.pin = Pin.from_public_key(self.key.public_key())
        self.watch = tmp / "watch.txt"
        self.watch.write_text(
            f"# our domains\n.example.com pins={self.pin}\n.example.org\n", encoding="utf-8"
        )
        self.log_list = write_log_list(tmp / "log_list.json", *logs)
        self.state = tmp / "monitor.sqlite3"

    def args(self, *extra: str) -> list[str]:
        return [
            "ct",
            "monitor",
            "--watch",
            str(self.watch),
            "--log-list",
            str(self.log_list),
            "--state",
            f"sqlite:///{self.state}",
            "--output-dir",
            str(self.tmp / "certs"),
            "--poll",
            "0.2",
            *extra,
        ]


def hook(tmp: Path, delay: float = 0.0) -> tuple[Path, Path]:
    """An executable hook appending one JSON line of its environment per alert."""
    record = tmp / "alerts.jsonl"
    script = tmp / "hook.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        f"time.sleep({delay})\n"
        "keys = ('EVENT', 'ALERT_ID', 'WATCH_ITEM', 'DNS_NAMES', 'VERDICT', 'REASONS',\n"
        "        'TBS_SHA256', 'CERT_SHA256', 'SPKI_PIN', 'SERIAL', 'ISSUER_DN', 'LOGS',\n"
        "        'CERT_FILENAME', 'JSON_FILENAME', 'NOT_BEFORE', 'NOT_AFTER', 'LOG', 'KIND')\n"
        f"with open({str(record)!r}, 'a') as out:\n"
        "    out.write(json.dumps({k: os.environ.get(k) for k in keys}) + '\\n')\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script, record


def sh_hook(tmp: Path, delay: float = 0.0) -> tuple[Path, Path]:
    """A /bin/sh hook appending ``{"DNS_NAMES", "ALERT_ID"}`` per alert: cheaper than
    starting Python for each of dozens of alerts."""
    record = tmp / "alerts.jsonl"
    script = tmp / "hook.sh"
    pause = f"sleep {delay}\n" if delay else ""
    script.write_text(
        f"#!/bin/sh\n{pause}"
        'printf \'{"DNS_NAMES": "%s", "ALERT_ID": "%s"}\\n\' "$DNS_NAMES" "$ALERT_ID" '
        f">> {record}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script, record


def alerts(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("pinwarden: error: ")
    return lines[0]


# -- --once ------------------------------------------------------------------------------------


def test_once_reports_each_finding_with_its_verdict(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(tmp_path, log)
    log.grow(150)
    log.issue("www.example.com", key=setup.key)  # pinned key: expected
    log.grow(20)
    log.issue("shop.example.com")  # another key: unexpected
    log.issue("www.example.org")  # no expectations: found
    log.issue("www.example.net")  # not watched
    log.publish()
    status = main(setup.args("--once", "--from-start"))
    out = capsys.readouterr().out
    assert status == 1, out
    lines = out.splitlines()
    assert sum("UNEXPECTED certificate for shop.example.com" in line for line in lines) == 1
    assert sum("EXPECTED certificate for www.example.com" in line for line in lines) == 1
    assert sum("FOUND certificate for www.example.org" in line for line in lines) == 1
    assert "example.net" not in out
    assert lines[-1] == ("ct monitor: 1 logs, 174 entries read, 3 new findings (1 unexpected)")
    # Each finding's certificate and details are written for the hooks and for people.
    assert len(list((tmp_path / "certs").rglob("*.pem"))) == 3


def test_only_expected_findings_exit_0_and_json_lines(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(tmp_path, log)
    log.issue("a.example.com", key=setup.key)
    log.issue("b.example.org")
    log.grow(30)
    log.publish()
    assert main(setup.args("--once", "--from-start", "--json")) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    found = {tuple(event["names"]): event for event in lines[:-1]}
    assert set(found) == {("a.example.com",), ("b.example.org",)}
    assert found[("a.example.com",)]["verdict"] == "expected"
    assert found[("a.example.com",)]["event"] == "discovered"
    assert found[("a.example.com",)]["spki_pin"] == str(setup.pin)
    assert found[("b.example.org",)]["verdict"] == "found"
    assert lines[-1] == {
        "event": "summary",
        "logs": 1,
        "entries": 32,
        "findings_new": 2,
        "unexpected_new": 0,
        "misbehaving_logs": [],
        "unreachable_logs": [],
        "leased_logs": [],
        "incomplete_logs": [],
        "alerts_pending": 0,
        "alerts_stranded": 0,
        "exit_status": 0,
    }


def test_hook_alerts_get_the_certificate_details(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(tmp_path, log)
    script, record = hook(tmp_path)
    entry = log.issue("api.example.com", "www.example.com", precert=True)
    log.publish()
    status = main(setup.args("--once", "--from-start", "--alert", f"hook:{script}"))
    assert status == 1
    assert "UNEXPECTED" not in capsys.readouterr().out  # the hook replaces stdout
    (event,) = alerts(record)
    assert event["EVENT"] == "discovered"
    assert event["VERDICT"] == "unexpected"
    assert event["WATCH_ITEM"] == ".example.com"
    assert event["DNS_NAMES"] == "api.example.com,www.example.com"
    assert str(setup.pin) not in event["SPKI_PIN"]
    assert f"#{entry.index}" in event["LOGS"]
    assert "key" in event["REASONS"]
    assert Path(event["CERT_FILENAME"]).read_text().startswith("-----BEGIN CERTIFICATE")
    details = json.loads(Path(event["JSON_FILENAME"]).read_text())
    assert details["verdict"] == "unexpected"


def test_the_state_file_is_reused_without_repeating_alerts(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(tmp_path, log)
    script, record = hook(tmp_path)
    log.issue("one.example.org")
    log.grow(10)
    log.publish()
    args = setup.args("--once", "--from-start", "--alert", f"hook:{script}", "--json")
    assert main(args) == 0
    assert [a["DNS_NAMES"] for a in alerts(record)] == ["one.example.org"]
    log.issue("two.example.org")
    log.issue("one.example.org")  # a new certificate for the same name: a new finding
    log.publish()
    capsys.readouterr()
    assert main(args) == 0
    names = [a["DNS_NAMES"] for a in alerts(record)]
    assert names == ["one.example.org", "two.example.org", "one.example.org"]
    assert len({a["TBS_SHA256"] for a in alerts(record)}) == 3
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (summary["entries"], summary["findings_new"]) == (2, 2)
    # A third run with nothing new reads nothing and alerts nothing.
    assert main(args) == 0
    assert len(alerts(record)) == 3


def test_start_at_end_skips_the_history(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(tmp_path, log)
    log.issue("old.example.org")
    log.grow(5)
    log.publish()
    assert main(setup.args("--once")) == 0  # --start-at-end is the default
    assert "old.example.org" not in capsys.readouterr().out
    log.issue("new.example.org")
    log.publish()
    assert main(setup.args("--once", "--start-at-end")) == 0
    out = capsys.readouterr().out
    assert "new.example.org" in out
    assert "old.example.org" not in out


def test_a_misbehaving_log_alerts_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalCTLog("rfc6962") as log:
        setup = Setup(tmp_path, log)
        log.grow(5)
        log.publish()
        log.inject("bad-sth-signature")
        status = main(setup.args("--once", "--from-start"))
    out = capsys.readouterr().out
    assert status == 1
    assert f"CT log {log.name} misbehaved" in out


def test_a_log_that_cannot_be_read_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalCTLog("static") as log:
        setup = Setup(tmp_path, log)
    # The log is gone: nothing listens on its port any more.
    status = main(setup.args("--once", "--json"))
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert status == 3
    assert summary["unreachable_logs"] == [log.name]


def test_exit_status_precedence() -> None:
    def summary(**kwargs: Any) -> MonitorSummary:
        base: dict[str, Any] = {
            "logs": 2,
            "entries": 10,
            "findings_new": 0,
            "unexpected_new": 0,
            "misbehaving_logs": (),
            "unreachable_logs": (),
            "alerts_pending": 0,
        }
        return MonitorSummary(**{**base, **kwargs})

    assert exit_status(summary()) == 0
    assert exit_status(summary(findings_new=3)) == 0
    assert exit_status(summary(unexpected_new=1, unreachable_logs=("x",))) == 1
    assert exit_status(summary(misbehaving_logs=("x",), alerts_pending=2)) == 1
    assert exit_status(summary(unreachable_logs=("x",))) == 3
    assert exit_status(summary(alerts_pending=1)) == 3
    assert exit_status(summary(leased_logs=("x",))) == 3
    assert exit_status(summary(alerts_stranded=2)) == 3
    assert exit_status(summary(incomplete_logs=("x",))) == 3
    assert exit_status(summary(unexpected_new=1, leased_logs=("x",), alerts_stranded=1)) == 1
    assert summary_json(summary(unreachable_logs=("x",)))["exit_status"] == 3
    shown = summary_json(summary(leased_logs=("Log A",), alerts_stranded=2))
    assert (shown["leased_logs"], shown["alerts_stranded"], shown["exit_status"]) == (
        ["Log A"],
        2,
        3,
    )


def test_alerts_queued_for_a_channel_no_longer_given_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalCTLog("rfc6962") as log:
        setup = Setup(tmp_path, log)
        failing = tmp_path / "down.sh"
        failing.write_text("#!/bin/sh\nexit 1\n")
        failing.chmod(0o755)
        log.issue("one.example.org")
        log.publish()
        # The receiver is down: the alert waits in the outbox for the hook channel.
        assert main(setup.args("--once", "--from-start", "--alert", f"hook:{failing}")) == 3
        capsys.readouterr()
        # The next run has another channel: the waiting alert is named, and not "all fine".
        assert main(setup.args("--once", "--json")) == 3
    captured = capsys.readouterr()
    summary = json.loads(captured.out.splitlines()[-1])
    assert (summary["alerts_stranded"], summary["alerts_pending"]) == (1, 0)
    assert f"1 alert waits for channel hook:{failing}" in captured.err


def test_restarts_get_the_same_worker_slot(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    first, second = _WorkerSlot(), _WorkerSlot()
    host = re.escape(socket.gethostname())
    slot0 = first.acquire(url)
    assert re.fullmatch(rf"{host}:0:[0-9a-f]{{8}}", slot0)
    # A second live monitor: another slot, with a token of its own.
    assert re.fullmatch(rf"{host}:1:[0-9a-f]{{8}}", second.acquire(url))
    assert (tmp_path / "m.sqlite3.worker0.lock").exists()
    first.release()  # as the kernel does when a monitor dies, even by SIGKILL
    again = _WorkerSlot()
    assert again.acquire(url) == slot0  # the same ID after a restart
    again.release()
    # Another state file has slots of its own; PostgreSQL's live in the state directory.
    other = _WorkerSlot()
    assert re.fullmatch(rf"{host}:0:[0-9a-f]{{8}}", other.acquire(f"sqlite:///{tmp_path / 'o'}"))
    pg = _WorkerSlot()
    assert re.fullmatch(rf"{host}:0:[0-9a-f]{{8}}", pg.acquire("postgresql://mon:pw@db/ct"))
    workers = tmp_path / "state" / "pinwarden" / "workers"
    assert len(list(workers.glob("*.worker0.lock"))) == 1
    assert not any("pw" in p.name for p in workers.iterdir())
    for slot in (second, other, pg):
        slot.release()


def test_machines_with_one_host_name_get_different_worker_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cloned VMs or containers with a fixed host name, sharing one PostgreSQL store: each
    # has its own state directory, so its own slot files, and must not share an ID (B's
    # start would drop A's live leases, and both would commit the same log).
    url = "postgresql://mon@db.example/ct"
    ids = []
    for machine in ("a", "b"):
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / machine))
        slot = _WorkerSlot()
        ids.append(slot.acquire(url))
        slot.release()
    assert ids[0] != ids[1]
    assert ids[0].rsplit(":", 1)[0] == ids[1].rsplit(":", 1)[0]  # same host, same slot
    # A clone booted from a copy of A's disk has A's slot files, but another boot ID.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "a"))
    monkeypatch.setattr("pinwarden.cli.ct_monitor._boot_id", lambda: "another-boot")
    clone = _WorkerSlot()
    assert clone.acquire(url) not in ids
    clone.release()
    # A damaged lock file gets a new token, not an error.
    (lock,) = (tmp_path / "a" / "pinwarden" / "workers").glob("*.worker0.lock")
    lock.write_bytes(b"\xff\x00 garbage\n")
    damaged = _WorkerSlot()
    assert re.fullmatch(r".*:0:[0-9a-f]{8}", damaged.acquire(url))
    damaged.release()


def test_progress_lines_on_stderr_off_a_terminal(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(tmp_path, log)
    log.grow(100)
    log.publish()
    assert main(setup.args("--once", "--from-start")) == 0
    err = capsys.readouterr().err
    assert f"pinwarden: {log.name}: starting at entry 0 of 100 (backlog 100)" in err
    assert f"pinwarden: {log.name}: caught up at entry 100" in err
    assert main(setup.args("--once", "--quiet")) == 0
    assert capsys.readouterr().err == ""


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--state", "mysql://db/x"], "unknown scheme 'mysql'"),
        (["--state", "sqlite:/x.db"], "sqlite:///relative/path"),
        (["--alert", "pager:now"], "unknown channel 'pager'"),
        (["--alert", "hook:/nonexistent/hook"], "is not an executable file"),
        (["--alert", "webhook:ftp://x"], "http(s) URL"),
        (["--alert", "stdout", "--alert", "text"], "given twice"),
        (["--from-start", "--from", "2026-01-01"], "--from-start and --from cannot be combined"),
        (["--start-at-end", "--from-start"], "cannot be combined"),
        (["--from", "yesterday"], "--from 'yesterday' is not a date"),
        (["--from", "2026-01-01T00:00:00"], "needs a UTC offset"),
        (["--poll", "0"], "--poll 0.0"),
        (["--poll", "nan"], "--poll nan"),
        (["--parallel-logs", "0"], "--parallel-logs 0"),
        (["--metrics-port", "70000"], "--metrics-port 70000"),
        (["--worker-id", " "], "--worker-id ' '"),
        (["--worker-id", "a\nb"], "give a short printable name"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    with LocalCTLog() as log:
        setup = Setup(tmp_path, log)
        assert main([*setup.args("--once"), *extra]) == 2
    assert message in one_line_error(capsys)
    assert not setup.state.exists()  # refused before anything was started


@given(st.text(max_size=40))
def test_from_dates_are_read_or_refused_with_an_input_error(text: str) -> None:
    try:
        when = _parse_from(text)
    except InputError as exc:
        message = str(exc)
    else:
        assert when.tzinfo is dt.timezone.utc
        return
    assert message.startswith(f"--from {text!r}")


def test_from_dates() -> None:
    assert _parse_from("2026-03-01") == dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    assert _parse_from("2026-03-01T12:00:00+02:00") == dt.datetime(
        2026, 3, 1, 10, tzinfo=dt.timezone.utc
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (".example.com\n*.example.net\n", "watch.txt:2: '*.example.net': wildcards are not"),
        ("example.com colour=blue\n", "watch.txt:1: unknown expectation 'colour'"),
        ("example.com pins=sha256/nope\n", "watch.txt:1: pins="),
        ("# nothing but a comment\n", "the watch list has no entry"),
    ],
)
def test_a_bad_watch_list_is_one_line_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    with LocalCTLog() as log:
        setup = Setup(tmp_path, log)
        setup.watch.write_text(text, encoding="utf-8")
        assert main(setup.args("--once")) == 2
    assert message in one_line_error(capsys)


def test_a_missing_watch_file_or_log_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalCTLog() as log:
        setup = Setup(tmp_path, log)
        args = setup.args("--once")
        args[args.index("--watch") + 1] = str(tmp_path / "missing.txt")
        assert main(args) == 2
        assert "missing.txt: cannot read the watch list" in one_line_error(capsys)
        args = setup.args("--once")
        args[args.index("--log-list") + 1] = str(tmp_path / "nolist.json")
        assert main(args) == 2
        assert "nolist.json" in one_line_error(capsys)


def test_without_log_list_the_cached_one_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalCTLog("static") as log:
        setup = Setup(tmp_path, log)
        args = setup.args("--once", "--from-start")
        del args[args.index("--log-list") : args.index("--log-list") + 2]
        assert main(args) == 2
        assert "run `pinwarden ct loglist update`" in one_line_error(capsys)
        cached = cache_path("chrome")  # under the test's XDG_CACHE_HOME
        cached.parent.mkdir(parents=True)
        log.write_log_list(cached)
        log.issue("x.example.org")
        log.publish()
        status = main(args)
        captured = capsys.readouterr()
        assert status == 0, captured.err
        assert "FOUND certificate for x.example.org" in captured.out


def test_a_busy_metrics_port_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LocalCTLog() as log, socket.socket() as busy:
        setup = Setup(tmp_path, log)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(setup.args("--once", "--metrics-port", str(port))) == 2
    assert f"--metrics-port {port}: cannot listen" in one_line_error(capsys)


# -- child processes: signals, metrics, SIGKILL ------------------------------------------------


@contextlib.contextmanager
def running(args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """The command in a child process; whatever happens, killed if still running, waited
    for and its pipes closed (a Popen left behind warns in a later test)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def wait_for(condition: Any, timeout: float = 60.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def metric_values(url: str) -> dict[str, float]:
    """Samples by name, summed over labels."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def read_stderr_until(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no {pattern!r} on stderr: {''.join(seen)}")


@pytest.mark.parametrize("api", APIS)
def test_metrics_are_served_during_a_run_and_sigterm_stops_cleanly(
    api: str, tmp_path: Path
) -> None:
    with LocalCTLog(api, max_batch=64) as log:  # type: ignore[arg-type]
        setup = Setup(tmp_path, log)
        log.grow(1000, names=lambda i: [f"w{i}.example.org" if i % 100 == 0 else f"h{i}.test"])
        log.publish()
        with running(setup.args("--from-start", "--metrics-port", "0", "--json")) as process:
            url = read_stderr_until(process, r"metrics at (http://127\.0\.0\.1:\d+/metrics)")[1]
            values = wait_for(
                lambda: (
                    (v := metric_values(url)).get("pinwarden_ct_entries_processed_total") == 1000
                    and v.get("pinwarden_ct_alert_deliveries_total") == 10
                    and v
                ),
                what="1000 entries and 10 alerts in the metrics",
            )
            assert values["pinwarden_ct_log_tree_size"] == 1000
            assert values["pinwarden_ct_log_backlog_entries"] == 0
            assert values["pinwarden_ct_findings_total"] == 10
            assert values["pinwarden_ct_last_batch_timestamp_seconds"] > 0
            # The log grows while the monitor follows it.
            log.issue("late.example.org")
            log.publish()
            # Committed first, then delivered: wait for the delivery, or SIGTERM may come
            # between the two (the alert would then wait in the state for the next run).
            wait_for(
                lambda: (
                    (v := metric_values(url)).get("pinwarden_ct_findings_total") == 11
                    and v.get("pinwarden_ct_alert_deliveries_total") == 11
                ),
                what="the late finding, delivered",
            )
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopping" in err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "summary"  # printed after a signal too
    names = [event["names"] for event in events[:-1]]
    assert len(names) == 11
    assert ["late.example.org"] in names
    # The metrics server went with it.
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)


def test_sigint_stops_cleanly_and_a_restart_resumes(tmp_path: Path) -> None:
    with LocalCTLog("rfc6962", max_batch=16) as log:
        setup = Setup(tmp_path, log)
        log.grow(2000, names=lambda i: [f"w{i}.example.org" if i % 50 == 0 else f"h{i}.test"])
        log.publish()
        log.inject("slow", delay=0.05, only="ct/v1/get-entries")
        script, record = sh_hook(tmp_path)
        args = setup.args("--from-start", "--alert", f"hook:{script}")
        with running(args) as process:
            wait_for(lambda: len(alerts(record)) >= 3, what="a few alerts")
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        first = len(alerts(record))
        assert first < 40, "the run ended before the signal: nothing was tested"
        log.heal()
        with running([*args, "--once"]) as again:
            _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    names = [a["DNS_NAMES"] for a in alerts(record)]
    assert sorted(names) == sorted(f"w{i}.example.org" for i in range(0, 2000, 50))


def test_sigkill_and_restart_lose_and_repeat_no_finding(tmp_path: Path) -> None:
    with LocalCTLog("static") as log:
        setup = Setup(tmp_path, log)
        log.grow(3000, names=lambda i: [f"w{i}.example.org" if i % 60 == 0 else f"h{i}.test"])
        log.publish()
        log.inject("slow", delay=0.3, only="tile/data/")
        script, record = sh_hook(tmp_path, delay=0.05)
        args = setup.args("--from-start", "--alert", f"hook:{script}", "--parallel-logs", "1")
        with running(args) as process:
            wait_for(lambda: len(alerts(record)) >= 5, what="a few alerts")
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
        assert len(alerts(record)) < 30, "the run ended before the kill: nothing was tested"
        log.heal()
        # The restart has the dead monitor's worker ID (its slot): it takes the log, and the
        # alerts the dead one had claimed but not recorded as delivered, back at once.
        with running([*args, "--once", "--json"]) as again:
            _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "starting at entry 0 " not in err  # it resumed
    wanted = {f"w{i}.example.org" for i in range(0, 3000, 60)}
    with open_store(f"sqlite:///{setup.state}") as store:
        findings = store.findings()
        # Every matching certificate is one finding: none lost, none twice.
        assert sorted(r.finding.names[0] for r in findings) == sorted(wanted)
        assert store.undelivered() == {}  # nothing left waiting for a claim to expire
    delivered = alerts(record)
    # No finding was alerted under two alert IDs, and every one was alerted. Delivery is at
    # least once: a kill between a hook's exit and the record of its delivery may repeat
    # that one alert, under the same ID, so the receiver can tell it is a repeat.
    ids_by_name: dict[str, set[str]] = {}
    for alert in delivered:
        ids_by_name.setdefault(alert["DNS_NAMES"], set()).add(alert["ALERT_ID"])
    assert set(ids_by_name) == wanted
    assert all(len(ids) == 1 for ids in ids_by_name.values())
    assert len(delivered) - len(ids_by_name) <= 1


def test_identities_file_makes_a_ca_known_by_its_key(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ca=`` trusts an issuer by its key: without the test CA's key in an identities file
    its certificate is taken for the CA by name only, hence unexpected; with it, expected."""
    setup = Setup(tmp_path, log)
    (organization,) = log.ca.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    issuer = organization.value
    assert isinstance(issuer, str)
    setup.watch.write_text(".example.com ca=ca.example\n", encoding="utf-8")
    identities = tmp_path / "identities.toml"
    identities.write_text(
        f'[[ca]]\nname = "Test CA"\ncaa = ["ca.example"]\norganizations = ["{issuer}"]\n'
        "common_name_prefixes = []\n",
        encoding="utf-8",
    )
    log.issue("www.example.com")
    log.publish()
    assert main(setup.args("--once", "--from-start", "--identities", str(identities))) == 1
    assert "by its name only" in capsys.readouterr().out

    with_key = identities.read_text(encoding="utf-8") + f'pins = ["{log.ca.pin}"]\n'
    identities.write_text(with_key, encoding="utf-8")
    setup.state = tmp_path / "second.sqlite3"
    assert main(setup.args("--once", "--from-start", "--identities", str(identities))) == 0
    assert "EXPECTED certificate for www.example.com" in capsys.readouterr().out


def test_a_bad_identities_file_is_one_line(
    log: LocalCTLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(tmp_path, log)
    bad = tmp_path / "identities.toml"
    bad.write_text("[[ca]\n", encoding="utf-8")
    assert main(setup.args("--once", "--identities", str(bad))) == 2
    assert str(bad) in one_line_error(capsys)
