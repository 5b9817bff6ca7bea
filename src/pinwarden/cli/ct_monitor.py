"""``pinwarden ct monitor``: follow the CT logs for certificates for the watched names and alert
on each one, with a verdict (expected, unexpected or found), once across restarts."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import signal
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from pinwarden.caa.identities import load_identities
from pinwarden.cli._app import JSON_HELP
from pinwarden.cli._ct_monitor_options import (
    alert_channels,
    check_positive,
    check_state,
    parse_from,
    start_position,
)
from pinwarden.cli._ct_monitor_summary import exit_status, show_summary, summary_json
from pinwarden.cli._output import err, printable
from pinwarden.cli.ct import ct_app
from pinwarden.cli.ct_loglist import LOG_LIST_HELP, load_for_cli
from pinwarden.ct.logs import Log, LogList
from pinwarden.ct.metrics import MetricsServer, MonitorMetrics
from pinwarden.ct.monitor import Monitor, MonitorConfig, MonitorObserver, MonitorSummary
from pinwarden.ct.progress import MonitorProgress
from pinwarden.ct.store import (
    default_sqlite_path,
    default_store_url,
    redact_url,
    sqlite_path_of,
)
from pinwarden.ct.watch import WatchList
from pinwarden.errors import InputError

__all__ = ["exit_status", "monitor_command", "summary_json"]

_STATE_HELP = (
    "Where the monitor keeps its positions, findings and alert outbox: "
    "sqlite:///relative/path, sqlite:////absolute/path, or postgresql://user@host/db "
    "(several monitors share the logs). Default: "
    "sqlite:///~/.local/state/pinwarden/monitor.sqlite3 ($XDG_STATE_HOME honoured)."
)
_ALERT_HELP = (
    "Where alerts go (repeatable): stdout, json (JSON lines on stdout), hook:PROGRAM "
    "(run with certspotter-style environment variables), webhook:URL (JSON POST), "
    "slack:URL, smtp://[user:pass@]host[:port]?from=…&to=…[&starttls=1]. "
    "Default: stdout (json with --json)."
)
_MAX_PARALLEL_LOGS = 1000
_MAX_SLOTS = 64
_parse_from = parse_from  # the name the tests have always imported it by


class _Observers:
    """Every observer, called in turn (the progress display and the metrics)."""

    def __init__(self, *observers: MonitorObserver) -> None:
        self._observers = observers

    def log_started(self, log: Log, position: int, tree_size: int) -> None:
        for observer in self._observers:
            observer.log_started(log, position, tree_size)

    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
        for observer in self._observers:
            observer.batch_done(log, position, tree_size, entries)

    def finding(self, log: Log, verdict: str, new: bool) -> None:
        for observer in self._observers:
            observer.finding(log, verdict, new)

    def log_error(self, log: Log, kind: str, message: str) -> None:
        for observer in self._observers:
            observer.log_error(log, kind, message)

    def alert_delivered(self, channel: str, ok: bool) -> None:
        for observer in self._observers:
            observer.alert_delivered(channel, ok)

    def alerts_stranded(self, channels: Mapping[str, int]) -> None:
        for observer in self._observers:
            method = getattr(observer, "alerts_stranded", None)  # optional for observers
            if method is not None:
                method(channels)


def _note(message: str) -> None:
    err().print(f"pinwarden: {printable(message)}", markup=False, soft_wrap=True)


class _WorkerSlot:
    """A worker ID that is the same after a restart, so that a monitor killed without
    notice takes its logs and alert claims back at once (the engine releases those of its
    own ID on start) instead of waiting for them to expire. The ID is ``host:N:TOKEN`` for
    the lowest slot N whose lock file this process can lock: the kernel drops the lock of a
    dead process, and two live monitors on one host never share a slot. TOKEN is random,
    kept in the slot's lock file: machines with the same host name (cloned VMs, containers
    with a fixed host name) sharing a PostgreSQL store get different IDs. It is drawn anew
    when the machine's boot ID changes, so a clone booted from a copied disk does not keep
    its original's. For SQLite state the lock files sit beside the database; for
    PostgreSQL, in the pinwarden state directory."""

    def __init__(self) -> None:
        self.worker_id = ""
        self._handle: Any = None

    def acquire(self, store_url: str) -> str:
        """The slot's worker ID, or "" (the engine's ``host:pid:random``) where files
        cannot be locked here."""
        try:
            import fcntl
        except ImportError:  # not POSIX
            return ""
        try:
            folder, stem = self._where(store_url)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for slot in range(_MAX_SLOTS):
                handle = open(folder / f"{stem}.worker{slot}.lock", "a+b")  # noqa: SIM115
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    handle.close()
                    continue
                try:
                    token = self._token(handle)
                except OSError:
                    handle.close()
                    raise
                self._handle = handle
                self.worker_id = f"{socket.gethostname()}:{slot}:{token}"
                return self.worker_id
        except OSError:
            pass  # an unwritable folder: fall back to the engine's default
        return ""

    @staticmethod
    def _token(handle: Any) -> str:
        """The slot's random token, kept in its lock file (which this process holds) with
        the boot ID it was drawn under; a new one for a new boot ID or a damaged file."""
        boot = _boot_id()
        handle.seek(0)
        saved = handle.read(200).decode("ascii", "replace").split()
        if (
            len(saved) == 2
            and saved[1] == boot
            and len(saved[0]) == 8
            and all(c in "0123456789abcdef" for c in saved[0])
        ):
            return str(saved[0])
        token = uuid.uuid4().hex[:8]
        handle.seek(0)
        handle.truncate()
        handle.write(f"{token} {boot}\n".encode("ascii"))
        handle.flush()
        return token

    @staticmethod
    def _where(store_url: str) -> tuple[Path, str]:
        if store_url.partition(":")[0].lower() == "sqlite":
            path = sqlite_path_of(store_url)
            if path is not None:
                path = path.expanduser().resolve()
                return path.parent, path.name
        key = hashlib.sha256(redact_url(store_url).encode()).hexdigest()[:16]
        return default_sqlite_path().parent / "workers", key

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


def _boot_id() -> str:
    """This boot's ID (Linux), or "-" where there is none to read."""
    try:
        text = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "-"
    return text if text and len(text) <= 64 and text.isprintable() and " " not in text else "-"


async def _run(monitor: Monitor) -> tuple[MonitorSummary, bool]:
    """Run the monitor until it returns or SIGTERM/SIGINT stops it, and say whether a signal
    did. After a signal the monitor commits the batches in progress, releases its leases
    and returns its summary; a second signal leaves at once (the state is transactional: a
    hard stop loses nothing, see the SIGKILL tests)."""
    loop = asyncio.get_running_loop()
    stopping: list[int] = []

    def on_signal(signum: int) -> None:
        if stopping:
            os._exit(128 + signum)
        stopping.append(signum)
        _note("stopping: finishing the current batches (signal again to stop at once)")
        monitor.stop()

    installed: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for wanted in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(wanted, on_signal, int(wanted))
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not on this platform or thread: the default handling stays
            installed.append(int(wanted))
    try:
        return await monitor.run(), bool(stopping)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


@ct_app.command("monitor")
def monitor_command(
    watch: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            help="The watch list: one name a line (`.example.com` for a domain and every name "
            "under it), with optional expectations (ca=, pins=, policy=, names=, max-validity=).",
        ),
    ],
    log_list: Annotated[
        str | None, typer.Option("--log-list", metavar="FILE|URL", help=LOG_LIST_HELP)
    ] = None,
    state: Annotated[str | None, typer.Option(metavar="URL", help=_STATE_HELP)] = None,
    start_at_end: Annotated[
        bool,
        typer.Option(
            "--start-at-end", help="Start a log new to the state at its current head (default)."
        ),
    ] = False,
    from_start: Annotated[
        bool,
        typer.Option("--from-start", help="Start a log new to the state at its first entry."),
    ] = False,
    from_date: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DATE",
            help="Start a log new to the state at its first entry logged on or after DATE "
            "(YYYY-MM-DD, UTC, or ISO 8601 with an offset).",
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Read every log up to its current tree head, deliver the alerts, print a "
            "summary and exit. A log another monitor holds is waited for up to the lease "
            "time (two minutes), then reported as not read.",
        ),
    ] = False,
    alert: Annotated[
        list[str] | None, typer.Option("--alert", metavar="SPEC", help=_ALERT_HELP)
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            help="Serve Prometheus metrics at http://ADDRESS:PORT/metrics (0: any free port).",
        ),
    ] = None,
    metrics_address: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address the metrics are served on.")
    ] = "127.0.0.1",
    output_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Where each finding's certificate (PEM) and details (JSON) are written; "
            "default: beside the SQLite state, or ~/.local/state/pinwarden/certs.",
        ),
    ] = None,
    poll: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds between tree-head polls per log.")
    ] = 30.0,
    parallel_logs: Annotated[
        int, typer.Option(metavar="N", help="Logs followed at the same time.")
    ] = 8,
    nameserver: Annotated[
        str | None,
        typer.Option(
            metavar="IP[:PORT]",
            help="DNS server for the CAA lookups of ca=caa entries; default: the system's.",
        ),
    ] = None,
    identities: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="More CA identities for ca= entries (TOML, the shape of the bundled table; "
            "docs/caa.md): give the SPKI pins of your CAs' issuing intermediates, since an "
            "issuer is trusted by its key, never by its name.",
        ),
    ] = None,
    worker_id: Annotated[
        str | None,
        typer.Option(
            metavar="ID",
            help="This monitor's name among those sharing the state (unique among running "
            "monitors). Default: the host name, a per-host slot number and a random token "
            "kept with the slot, the same after a restart, so that a restarted monitor "
            "takes its logs back at once.",
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No progress on stderr (errors are still shown)."),
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Follow every usable, qualified and read-only CT log (RFC 6962 and static-ct-api) for
    certificates for the watched names, and alert on each with a verdict: `expected`, or
    `unexpected` with the reasons (CA not allowed, key not pinned, name outside the expected
    set, validity too long). Log misbehaviour and stalled logs raise their own alerts.

    Every batch is verified against the log's signed tree head and committed with its
    findings in one transaction: after a crash or a restart the monitor resumes where it
    stopped, and each certificate is one finding, alerted once (a crash between sending an
    alert and recording it can repeat that alert, with the same id). SIGTERM or Ctrl-C stop it
    cleanly. Progress is a live table on a terminal, quiet lines otherwise.

    Exit status: 0 ok; 1 an unexpected certificate was found in this run or a log
    misbehaved; 2 bad input; 3 a log could not be read at all, stayed leased by another
    monitor or stopped on this side (state, files), or an alert is still undelivered or
    queued for a channel not given (with --once).
    """
    started = start_position(start_at_end, from_start, from_date)
    check_positive(poll, "--poll", 86400)
    if not 1 <= parallel_logs <= _MAX_PARALLEL_LOGS:
        raise InputError(f"--parallel-logs {parallel_logs}: give 1 to {_MAX_PARALLEL_LOGS}")
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise InputError(f"--metrics-port {metrics_port}: a port is a number from 0 to 65535")
    store_url = state if state is not None else default_store_url()
    check_state(store_url)
    channels = alert_channels(alert or [], json_)
    watch_list = WatchList.load(watch)
    if not watch_list.items:
        raise InputError(f"{watch}: the watch list has no entry")

    def now() -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def reload_log_list() -> LogList:
        return load_for_cli(log_list, now())

    if worker_id is not None and (
        not worker_id.strip() or not worker_id.isprintable() or len(worker_id) > 200
    ):
        raise InputError(f"--worker-id {worker_id!r}: give a short printable name")
    config = MonitorConfig(
        watch=watch_list,
        log_list=reload_log_list(),
        store_url=store_url,
        start=started,
        once=once,
        channels=channels,
        poll_interval=poll,
        reload_log_list=reload_log_list,
        parallel_logs=parallel_logs,
        output_dir=output_dir,
        caa_nameservers=(nameserver,) if nameserver else (),
        ca_identities=load_identities(identities) if identities is not None else None,
    )
    observers: list[MonitorObserver] = []
    server: MetricsServer | None = None
    slot = _WorkerSlot()
    try:
        if worker_id is None:
            worker_id = slot.acquire(store_url)
        config = replace(config, worker_id=worker_id)
        if metrics_port is not None:
            metrics = MonitorMetrics()
            server = MetricsServer(metrics, metrics_port, metrics_address).start()
            observers.append(metrics)
            _note(f"metrics at {server.url}")
        progress = MonitorProgress(err(), quiet=quiet)
        observers.append(progress)
        with progress:
            summary, signalled = asyncio.run(_run(Monitor(config, _Observers(*observers))))
    finally:
        if server is not None:
            server.stop()
        slot.release()
    show_summary(summary, json_)
    if signalled:
        _note("stopped")
        return
    raise typer.Exit(exit_status(summary))
