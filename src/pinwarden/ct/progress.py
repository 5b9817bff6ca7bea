"""What the CT monitor shows on stderr while it runs (``pinwarden ct monitor``).

:class:`MonitorProgress` is a monitor observer with two faces:

* on a terminal, a live table redrawn a few times a second: per log its position, tree size,
  share done, entries/s, backlog (tree size − position), time left at the current rate,
  findings and state, for the logs furthest behind (as many as fit, at most ``max_rows``;
  a line sums up the others);
* elsewhere (a pipe, a file, a service's journal), quiet lines: when a log starts; while a
  log has been behind for a whole ``interval``, a line per ``interval``, and one when it has
  caught up; and errors (each kind at most once per log per ``interval``, with the number
  held back). A monitor that keeps up writes nothing between errors.

Log descriptions and error messages come from outside (the log list, the logs): they are
printed as plain text with control characters escaped, never as rich markup.
"""

from __future__ import annotations

import contextlib
import heapq
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pinwarden.ct.logs import Log
from pinwarden.ct.metrics import channel_label

__all__ = ["MonitorProgress", "format_duration"]

_MESSAGE_LIMIT = 300
_COLUMNS = (
    "log",
    "position",
    "tree size",
    "done",
    "entries/s",
    "backlog",
    "left",
    "found",
    "state",
)


def _printable(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """One line of outside text: control and format characters escaped, cut to ``limit``."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def format_duration(seconds: float) -> str:
    """``1:02:03`` for an hour and a bit, ``4:05`` under an hour, ``>99 days`` beyond."""
    if seconds != seconds or seconds < 0:  # NaN or negative: nothing sensible to show
        return "?"
    if seconds >= 99 * 86400:
        return ">99 days"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class _LogState:
    name: str
    position: int
    tree_size: int
    processed: int = 0
    # (time, entries processed): the newest sample at or before the rate window's start,
    # then every sample inside it.
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    findings: int = 0
    unexpected: int = 0
    last_batch: float | None = None
    last_error: tuple[float, str, str] | None = None
    last_line: float | None = None
    behind_since: float | None = None
    behind_reported: bool = False
    error_lines: dict[str, tuple[float, int]] = field(default_factory=dict)

    @property
    def backlog(self) -> int:
        return max(0, self.tree_size - self.position)

    def rate(self, now: float) -> float:
        if not self.samples:
            return 0.0
        then, count = self.samples[0]
        return (self.processed - count) / (now - then) if now > then else 0.0


class MonitorProgress:
    """A monitor observer printing progress on ``console`` (default: a stderr console).
    ``live`` chooses the live table (default: when the console is a terminal); ``quiet``
    shows errors only; ``interval`` spaces the quiet lines, ``window`` is the span the rates
    are measured over, in seconds of ``clock``; ``max_rows`` caps the logs the table shows
    (a list of thousands of logs would take a second to draw). Call :meth:`start` and
    :meth:`stop` (or use ``with``) around the run."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        live: bool | None = None,
        quiet: bool = False,
        interval: float = 60.0,
        window: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        refresh_per_second: float = 2.0,
        max_rows: int = 30,
    ) -> None:
        self.console = console or Console(stderr=True, highlight=False, emoji=False)
        self.quiet = quiet
        self.live = not quiet and (self.console.is_terminal if live is None else live)
        self.interval = interval
        self.window = window
        self._clock = clock
        self._refresh = refresh_per_second
        self.max_rows = max(1, max_rows)
        # The live display renders from its own thread; the observer methods run on the
        # monitor's event loop.
        self._lock = threading.Lock()
        self._logs: dict[bytes, _LogState] = {}
        self._started = clock()
        self._delivered = 0
        self._failed = 0
        self._channel_lines: dict[str, float] = {}
        self._display: Live | None = None

    # -- the display -------------------------------------------------------------------

    def start(self) -> MonitorProgress:
        if self.live and self._display is None:
            self._display = Live(
                console=self.console,
                get_renderable=self.renderable,
                refresh_per_second=self._refresh,
                # Alerts printed on a terminal stdout go above the table; stdout piped
                # elsewhere must not be captured into the stderr display.
                redirect_stdout=self._stdout_is_terminal(),
                redirect_stderr=False,
            )
            self._display.start()
        return self

    def stop(self) -> None:
        display, self._display = self._display, None
        if display is not None:
            display.stop()

    def __enter__(self) -> MonitorProgress:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _stdout_is_terminal() -> bool:
        try:
            return sys.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    # -- the observer ------------------------------------------------------------------

    def log_started(self, log: Log, position: int, tree_size: int) -> None:
        now = self._clock()
        with self._lock:
            state = self._state(log, position, tree_size, now)
            state.position, state.tree_size = position, tree_size
            state.samples.clear()
            state.samples.append((now, state.processed))
            state.behind_since = now if state.backlog else None
            state.behind_reported = bool(state.backlog)
        if state.backlog:
            self._line(
                f"{state.name}: starting at entry {position:,} of {tree_size:,} "
                f"(backlog {state.backlog:,})"
            )
        else:
            self._line(f"{state.name}: following from entry {position:,} (up to date)")

    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
        now = self._clock()
        line = None
        with self._lock:
            state = self._state(log, position, tree_size, now)
            state.position, state.tree_size = position, tree_size
            state.processed += max(0, entries)
            state.last_batch = now
            samples = state.samples
            samples.append((now, state.processed))
            while len(samples) > 1 and samples[1][0] <= now - self.window:
                samples.popleft()
            # A log that keeps up is briefly behind after each new tree head: only a log
            # behind for a whole interval gets progress lines, and then a caught-up line.
            if state.backlog == 0:
                state.behind_since = None
                if state.behind_reported:
                    state.behind_reported = False
                    line = f"{state.name}: caught up at entry {position:,}"
            else:
                if state.behind_since is None:
                    state.behind_since = now
                last = state.last_line
                if now - state.behind_since >= self.interval and (
                    last is None or now - last >= self.interval
                ):
                    state.last_line = now
                    state.behind_reported = True
                    line = self._progress_line(state, now)
        if line is not None:
            self._line(line)

    def finding(self, log: Log, verdict: str, new: bool) -> None:
        if not new:
            return
        with self._lock:
            state = self._logs.get(log.log_id)
            if state is not None:
                state.findings += 1
                state.unexpected += verdict == "unexpected"

    def log_error(self, log: Log, kind: str, message: str) -> None:
        now = self._clock()
        line = None
        with self._lock:
            state = self._logs.get(log.log_id)
            if state is None:
                state = self._state(log, 0, 0, now)
            state.last_error = (now, kind, message)
            last, held = state.error_lines.get(kind, (None, 0))
            if last is None or now - last >= self.interval:
                state.error_lines[kind] = (now, 0)
                more = f" ({held} more since the last report)" if held else ""
                line = f"{state.name}: {_printable(kind, 40)}: {_printable(message)}{more}"
            else:
                state.error_lines[kind] = (last, held + 1)
        if line is not None:
            self._line(line, style="red")

    def alert_delivered(self, channel: str, ok: bool) -> None:
        now = self._clock()
        line = None
        with self._lock:
            if ok:
                self._delivered += 1
                return
            self._failed += 1
            label = _printable(channel_label(channel), 120)
            last = self._channel_lines.get(label)
            if last is None or now - last >= self.interval:
                self._channel_lines[label] = now
                line = f"alert delivery to {label} failed; it will be retried"
        if line is not None:
            self._line(line, style="yellow")

    def alerts_stranded(self, channels: Mapping[str, int]) -> None:
        for channel, count in sorted(channels.items()):
            label = _printable(channel_label(channel), 120)
            alerts = "alert waits" if count == 1 else "alerts wait"
            self._line(
                f"{count:,} {alerts} for channel {label}, which this monitor does not have: "
                "they are delivered only by a monitor run with that --alert",
                style="yellow",
            )

    # -- helpers -----------------------------------------------------------------------

    def _state(self, log: Log, position: int, tree_size: int, now: float) -> _LogState:
        """The log's state (the lock is held), created when the monitor reports a log it
        never announced."""
        state = self._logs.get(log.log_id)
        if state is None:
            state = _LogState(_printable(log.description, 80), position, tree_size)
            state.samples.append((now, 0))
            self._logs[log.log_id] = state
        return state

    def _progress_line(self, state: _LogState, now: float) -> str:
        rate = state.rate(now)
        share = state.position / state.tree_size * 100 if state.tree_size else 100.0
        left = f", {format_duration(state.backlog / rate)} left" if rate > 0 else ""
        return (
            f"{state.name}: entry {state.position:,} of {state.tree_size:,} ({share:.1f}%), "
            f"{rate:,.0f} entries/s, backlog {state.backlog:,}{left}"
        )

    def _line(self, text: str, style: str | None = None) -> None:
        """A quiet line (lines mode), or a line above the table (live mode, errors only)."""
        if (self.live or self.quiet) and style is None:
            return
        # A closed or broken stderr must not stop the monitor: progress is a courtesy.
        with contextlib.suppress(OSError, ValueError):
            self.console.print(
                Text("pinwarden: " + text, style=style or ""), soft_wrap=True, highlight=False
            )

    def renderable(self) -> RenderableType:
        """What the live display shows now: the logs furthest behind, a line for the
        others, and a line of totals."""
        now = self._clock()
        # Header, the line for the others, the totals, and a line or two above the table.
        fit = max(3, min(self.max_rows, self.console.height - 5))
        with self._lock:
            states = list(self._logs.values())
            shown = heapq.nsmallest(fit, states, key=lambda s: (-s.backlog, s.name))
            rows = [self._row(state, now) for state in shown]
            shown_ids = {id(state) for state in shown}
            others = [state for state in states if id(state) not in shown_ids]
            others_backlog = sum(s.backlog for s in others)
            others_failing = sum(1 for s in others if self._in_error(s))
            processed = sum(s.processed for s in states)
            rate = sum(s.rate(now) for s in states)
            findings = sum(s.findings for s in states)
            unexpected = sum(s.unexpected for s in states)
            delivered, failed = self._delivered, self._failed
        table = Table(box=None, pad_edge=False, header_style="bold")
        for title in _COLUMNS:
            justify: JustifyMethod = "left" if title in ("log", "state") else "right"
            table.add_column(title, justify=justify, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        parts: list[RenderableType] = [table]
        if others:
            failing = f"; {others_failing:,} in error" if others_failing else ""
            parts.append(
                Text(
                    f"… and {len(others):,} more logs (backlog {others_backlog:,}{failing})",
                    style="dim",
                )
            )
        alerts = f"alerts {delivered:,} delivered" + (f", {failed:,} failed" if failed else "")
        parts.append(
            Text(
                f"{len(states):,} logs · {processed:,} entries ({rate:,.0f}/s) · {findings:,} "
                f"new findings ({unexpected:,} unexpected) · {alerts} · running "
                f"{format_duration(now - self._started)}",
                style="dim",
            )
        )
        return Group(*parts)

    @staticmethod
    def _in_error(state: _LogState) -> bool:
        """Whether the log's last news is an error (it has not read since)."""
        error = state.last_error
        return error is not None and (state.last_batch is None or error[0] >= state.last_batch)

    def _row(self, state: _LogState, now: float) -> tuple[RenderableType, ...]:
        rate = state.rate(now)
        share = state.position / state.tree_size * 100 if state.tree_size else 100.0
        left = format_duration(state.backlog / rate) if rate > 0 and state.backlog else ""
        found = f"{state.findings:,}" + (f" ({state.unexpected:,}!)" if state.unexpected else "")
        error = state.last_error
        if error is not None and self._in_error(state):
            status = Text(f"{error[1]}: {_printable(error[2], 60)}", style="red")
        elif state.backlog == 0:
            status = Text("caught up", style="green")
        else:
            status = Text("reading")
        return (
            Text(state.name),
            f"{state.position:,}",
            f"{state.tree_size:,}",
            f"{share:.1f}%",
            f"{rate:,.0f}",
            f"{state.backlog:,}",
            left,
            found,
            status,
        )
