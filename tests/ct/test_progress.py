"""The CT monitor's progress on stderr: quiet lines off a terminal, a live table on one."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from pinwarden.ct.alerts import WebhookChannel
from pinwarden.ct.logs import Log, log_id_of
from pinwarden.ct.progress import MonitorProgress, format_duration


def _log(description: str, key: bytes) -> Log:
    return Log(description=description, log_id=log_id_of(key), key=key, operator="op")


ARGON = _log("Argon 2026h1", b"k1")
XENON = _log("Xenon 2026h1", b"k2")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines_progress(**kwargs: object) -> tuple[MonitorProgress, io.StringIO, Clock]:
    stream = io.StringIO()
    clock = Clock()
    console = Console(file=stream, force_terminal=False, width=300)
    progress = MonitorProgress(console, clock=clock, interval=60, window=30, **kwargs)  # type: ignore[arg-type]
    return progress, stream, clock


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_off_a_terminal_it_prints_quiet_lines() -> None:
    progress, stream, clock = lines_progress()
    assert not progress.live
    progress.log_started(ARGON, 1000, 101_000)
    assert lines(stream) == [
        "pinwarden: Argon 2026h1: starting at entry 1,000 of 101,000 (backlog 100,000)"
    ]
    # Batches inside the interval print nothing.
    for _ in range(5):
        clock.now += 10
        progress.batch_done(ARGON, 1000 + (_ + 1) * 2000, 101_000, 2000)
    assert len(lines(stream)) == 1
    clock.now += 10  # 60 s after the start
    progress.batch_done(ARGON, 13_000, 101_000, 2000)
    # 30 s window: 6,000 entries in the last 30 s.
    assert lines(stream)[-1] == (
        "pinwarden: Argon 2026h1: entry 13,000 of 101,000 (12.9%), 200 entries/s, "
        "backlog 88,000, 7:20 left"
    )
    clock.now += 30
    progress.batch_done(ARGON, 101_000, 101_000, 88_000)
    assert lines(stream)[-1] == "pinwarden: Argon 2026h1: caught up at entry 101,000"
    # Keeping up prints nothing more: small backlogs that are caught up within an interval.
    for step in range(20):
        clock.now += 30
        size = 101_000 + (step + 1) * 100
        progress.batch_done(ARGON, size - 100, size, 0)
        progress.batch_done(ARGON, size, size, 100)
    assert len(lines(stream)) == 3


def test_an_up_to_date_log_says_so_once() -> None:
    progress, stream, clock = lines_progress()
    progress.log_started(XENON, 500, 500)
    clock.now += 5
    progress.batch_done(XENON, 500, 500, 0)
    assert lines(stream) == ["pinwarden: Xenon 2026h1: following from entry 500 (up to date)"]


def test_errors_are_shown_and_repeats_held_back() -> None:
    progress, stream, clock = lines_progress()
    progress.log_started(ARGON, 0, 10)
    progress.log_error(ARGON, "network", "connection refused")
    for _ in range(3):
        clock.now += 5
        progress.log_error(ARGON, "network", "connection refused")
    progress.log_error(ARGON, "bad-sth-signature", "the STH signature does not verify")
    clock.now += 60
    progress.log_error(ARGON, "network", "timed out")
    assert lines(stream)[1:] == [
        "pinwarden: Argon 2026h1: network: connection refused",
        "pinwarden: Argon 2026h1: bad-sth-signature: the STH signature does not verify",
        "pinwarden: Argon 2026h1: network: timed out (3 more since the last report)",
    ]


def test_an_error_before_the_log_started_is_still_shown() -> None:
    progress, stream, _ = lines_progress()
    progress.log_error(XENON, "network", "no route to host")
    assert lines(stream) == ["pinwarden: Xenon 2026h1: network: no route to host"]


def test_outside_text_cannot_drive_the_terminal() -> None:
    progress, stream, _ = lines_progress()
    evil = _log("Evil\x1b[2J log [bold]x[/bold]\u202e", b"k3")
    progress.log_started(evil, 0, 10)
    progress.log_error(evil, "network", "bad\rline\nbreak" + "x" * 1000)
    text = stream.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    assert "\u202e" not in text
    assert "\\x1b[2J" in text
    assert "[bold]x[/bold]" in text  # shown as written, not taken for markup
    assert len(lines(stream)) == 2
    assert len(lines(stream)[1]) < 400  # long messages are cut


def test_failed_deliveries_name_the_channel_without_its_secret() -> None:
    progress, stream, clock = lines_progress()
    channel = WebhookChannel("https://hooks.slack.com/services/T0/B0/secret", slack=True)
    progress.alert_delivered(channel.name, False)
    progress.alert_delivered(channel.name, False)
    progress.alert_delivered("stdout", True)
    clock.now += 61
    progress.alert_delivered(channel.name, False)
    shown = f"slack:hooks.slack.com#{channel.redacted.partition('#')[2]}"
    assert lines(stream) == [f"pinwarden: alert delivery to {shown} failed; it will be retried"] * 2
    assert "secret" not in stream.getvalue()


def test_alerts_for_channels_not_configured_are_announced_even_when_quiet() -> None:
    progress, stream, _ = lines_progress(quiet=True)
    old = WebhookChannel("https://hooks.example/old-secret")
    progress.alerts_stranded({old.name: 3, "stdout": 1})
    tail = "which this monitor does not have: they are delivered only by a monitor run with"
    assert lines(stream) == [
        f"pinwarden: 1 alert waits for channel stdout, {tail} that --alert",
        f"pinwarden: 3 alerts wait for channel {old.name}, {tail} that --alert",
    ]
    assert "old-secret" not in stream.getvalue()


def test_quiet_shows_errors_only() -> None:
    progress, stream, clock = lines_progress(quiet=True)
    progress.log_started(ARGON, 0, 100_000)
    clock.now += 120
    progress.batch_done(ARGON, 50_000, 100_000, 50_000)
    progress.batch_done(ARGON, 100_000, 100_000, 50_000)
    progress.log_error(ARGON, "fork", "two heads of size 7")
    assert lines(stream) == ["pinwarden: Argon 2026h1: fork: two heads of size 7"]


def test_the_table_puts_the_logs_furthest_behind_first() -> None:
    progress, _, clock = lines_progress(live=True)
    progress.log_started(ARGON, 0, 1000)
    progress.log_started(XENON, 0, 500_000)
    clock.now += 10
    progress.batch_done(ARGON, 1000, 1000, 1000)
    progress.batch_done(XENON, 100_000, 500_000, 100_000)
    progress.finding(XENON, "unexpected", True)
    progress.finding(XENON, "expected", True)
    progress.finding(ARGON, "expected", False)  # already found elsewhere: not counted again
    progress.alert_delivered("stdout", True)
    record = Console(file=io.StringIO(), width=200, force_terminal=False)
    record.print(progress.renderable())
    text = record.file.getvalue()  # type: ignore[attr-defined]
    rows = text.splitlines()
    assert rows[0].split()[:3] == ["log", "position", "tree"]
    assert rows[1].startswith("Xenon 2026h1")
    assert "100,000" in rows[1]
    assert "400,000" in rows[1]  # backlog
    assert "10,000" in rows[1]  # entries/s over the 10 s since the start
    assert "0:40" in rows[1]  # left at that rate
    assert "2 (1!)" in rows[1]
    assert rows[2].startswith("Argon 2026h1")
    assert "caught up" in rows[2]
    assert "2 logs · 101,000 entries" in text
    assert "2 new findings (1 unexpected)" in text
    assert "alerts 1 delivered" in text


def test_thousands_of_logs_show_the_furthest_behind_and_a_line_for_the_rest() -> None:
    # Drawing a row per log took over a second per refresh with 3,000 logs.
    progress, _, _ = lines_progress(live=True, max_rows=10)
    logs = [_log(f"log {n:04d}", b"k%d" % n) for n in range(3000)]
    for n, log in enumerate(logs):
        progress.log_started(log, 0, n)
        progress.batch_done(log, 0, n, 0)
    progress.log_error(logs[5], "network", "reset")  # among the hidden ones
    record = Console(file=io.StringIO(), width=200, height=200, force_terminal=False)
    record.print(progress.renderable())
    rows = record.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(rows) == 1 + 10 + 2
    assert [row.split()[1] for row in rows[1:11]] == [f"{n:04d}" for n in range(2999, 2989, -1)]
    hidden_backlog = sum(range(2990))
    assert rows[11] == f"… and 2,990 more logs (backlog {hidden_backlog:,}; 1 in error)"
    assert rows[12].startswith("3,000 logs · ")
    # A small terminal gets fewer rows still.
    small = Console(file=io.StringIO(), width=200, height=12, force_terminal=False)
    progress.console = small
    assert len(list(Console(width=200).render_lines(progress.renderable()))) <= 12


def test_the_table_shows_a_log_in_error_until_it_reads_again() -> None:
    progress, _, clock = lines_progress(live=True)
    progress.log_started(ARGON, 0, 1000)
    clock.now += 1
    progress.log_error(ARGON, "rate-limit", "HTTP 429")

    def row() -> str:
        record = Console(file=io.StringIO(), width=200, force_terminal=False)
        record.print(progress.renderable())
        return record.file.getvalue().splitlines()[1]  # type: ignore[attr-defined,no-any-return]

    assert "rate-limit: HTTP 429" in row()
    clock.now += 1
    progress.batch_done(ARGON, 500, 1000, 500)
    assert "reading" in row()


def test_live_mode_draws_on_a_terminal_and_leaves_stdout_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    progress = MonitorProgress(console, refresh_per_second=20)
    assert progress.live
    with progress:
        progress.log_started(ARGON, 0, 10)
        progress.batch_done(ARGON, 5, 10, 5)
        print("an alert line")  # stdout is not a terminal here: it must not be captured
        time.sleep(0.2)
        progress.log_error(ARGON, "network", "reset")
    assert capsys.readouterr().out == "an alert line\n"
    drawn = stream.getvalue()
    assert "Argon 2026h1" in drawn
    assert "network: reset" in drawn
    assert "\x1b[" in drawn  # drawn with terminal controls
    assert "starting at entry" not in drawn  # no quiet lines under the table


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0:00"),
        (59.6, "1:00"),
        (3599, "59:59"),
        (3600, "1:00:00"),
        (47 * 3600 + 61, "47:01:01"),
        (3 * 86400, "3 days"),
        (100 * 86400, ">99 days"),
        (-1, "?"),
        (float("nan"), "?"),
        (float("inf"), ">99 days"),
    ],
)
def test_format_duration(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown
