"""The CT monitor end to end: :meth:`pinwarden.ct.monitor.Monitor.run` with ``once`` from
position 0 of a local test log, beside the bare ``cryptography`` parse-and-SAN loop over the
same certificates, in one run; and the monitor's memory as the run goes.

The log (:class:`pinwarden.testing.LocalCTLog`, ``entries`` certificates, a quarter of them
precertificates) is built and served by a spawned child process, so that neither building it
nor serving it shares the interpreter lock with the measured monitor. The watch list has
``names`` entries (``.w<k>.bench-monitor.test``); one log entry in ``match_every`` carries a
watched name besides its own, and half the watched names pin the certificates' key
(``expected``), the other half another key (``unexpected``). The monitor fetches every entry,
verifies each batch against the signed tree head, parses, matches, judges the matches, writes
the findings' files, commits every batch to a SQLite state file and delivers one alert per
finding (to a discarded text stream): all it does when it follows real logs.

The bare loop (:func:`bench_ct_parse._bare`: ``x509.load_der_x509_certificate`` and the SAN
dNSNames of each certificate or precertificate) is the least any monitor must do per entry.
The result row gives the monitor's entries/s, and its throughput as a fraction of the bare
loop's; its target, ≥ 10,000 entries/s (about ten times the whole public CT rate), is shown
as the fraction of this machine's bare rate that it means. RSS (resident memory, current not
peak) is read when 25, 50, 75 and 100 % of the entries are committed; it is flat when the
last reading is within 10 % of the second.

Standalone: ``.venv/bin/python benchmarks/bench_ct_monitor.py [entries] [rfc6962|static]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import multiprocessing
import multiprocessing.connection
import os
import resource
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_ct_parse import ParseRatioResult, _bare
from pinwarden.ct.alerts import StdoutChannel
from pinwarden.ct.loglist import load_log_list
from pinwarden.ct.logs import Log
from pinwarden.ct.monitor import Monitor, MonitorConfig
from pinwarden.ct.watch import WatchList

__all__ = ["MonitorThroughputResult", "measure_ct_monitor"]

TARGET_ENTRIES_PER_S = 10_000
FLAT_WITHIN = 0.10
WATCH_NAMES = 10_000
MATCH_EVERY = 1_000
PRECERT_EVERY = 4
MAX_BATCH = 1024  # entries per get-entries answer (RFC 6962 logs serve 256 to 1,024)
_ZONE = "bench-monitor.test"
_START_TIMEOUT = 900.0  # building 200k entries takes about half a minute
_REPLY_TIMEOUT = 10.0
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class MonitorThroughputResult(ParseRatioResult):
    """``concurrent_s`` is the monitor's wall time, ``sequential_s`` the bare loop's over the
    same certificates; ``target`` is the ratio that ``TARGET_ENTRIES_PER_S`` means on this
    machine, so ``met`` holds exactly when the monitor reached that rate."""

    rss_mb: tuple[float, ...] = field(default=())

    @property
    def entries_per_s(self) -> float:
        return self.items / self.concurrent_s

    @property
    def rss_flat(self) -> bool:
        if len(self.rss_mb) < 4:
            return False
        return self.rss_mb[3] <= self.rss_mb[1] * (1 + FLAT_WITHIN)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "throughput",
            "label": self.label,
            "entries": self.items,
            "monitor_s": self.concurrent_s,
            "bare_cryptography_s": self.sequential_s,
            "monitor_entries_per_s": self.entries_per_s,
            "bare_entries_per_s": self.items / self.sequential_s,
            "ratio_to_bare": self.speedup,
            "target_entries_per_s_min": TARGET_ENTRIES_PER_S,
            "met": self.met,
            "rss_mb_at_25_50_75_100_percent": list(self.rss_mb),
            "rss_flat": self.rss_flat,
            **self.settings,
        }

    def note(self) -> str:
        rss = " / ".join(f"{value:.0f}" for value in self.rss_mb)
        cpu = self.settings.get("monitor_cpu_s")
        per_cpu = f", {self.items / cpu:,.0f} per CPU second" if cpu else ""
        return (
            f"CT monitor: {self.entries_per_s:,.0f} entries/s end to end{per_cpu} "
            f"(target ≥ {TARGET_ENTRIES_PER_S:,}/s, shown in the table as the fraction "
            f"{self.target:.2f} of this machine's bare parse rate of "
            f"{self.items / self.sequential_s:,.0f}/s); RSS at 25/50/75/100 % of the run "
            f"{rss} MB, {'flat' if self.rss_flat else 'NOT flat'} (last within "
            f"{FLAT_WITHIN:.0%} of the second); {self.settings.get('findings')} findings."
        )


# -- the log, in a child process -----------------------------------------------------------


def _names(index: int) -> list[str]:
    own = f"host{index}.example.test"
    if index % MATCH_EVERY:
        return [own]
    return [f"www.w{(index // MATCH_EVERY) % WATCH_NAMES}.{_ZONE}", own]


def _serve(
    api: str, entries: int, folder: str, pipe: multiprocessing.connection.Connection
) -> None:
    """Build the log, write its certificates and log list to ``folder``, serve it until told
    to stop."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from pinwarden.pins import Pin
    from pinwarden.testing import LocalCTLog, generate_key
    from pinwarden.testing.ctlog import issue_precertificate

    try:
        log = LocalCTLog("static" if api == "static" else "rfc6962", max_batch=MAX_BATCH)
        key = generate_key("ec-p256")
        with open(Path(folder) / "certificates.bin", "wb") as out:
            for index in range(entries):
                names = _names(index)
                if index % PRECERT_EVERY == PRECERT_EVERY - 1:
                    pair = issue_precertificate(log.ca, *names, key=key)
                    der = pair.precert.cert.public_bytes(Encoding.DER)
                    log.add_precertificate(pair)
                else:
                    issued = log.ca.issue(*names, key=key)
                    der = issued.cert.public_bytes(Encoding.DER)
                    log.add_certificate(issued)
                out.write(_LENGTH.pack(len(der)) + der)
        log.publish()
        log.start()
        log_list = log.write_log_list(Path(folder) / "log_list.json")
        pipe.send(("ready", str(log_list), str(Pin.from_public_key(key.public_key()))))
    except Exception as exc:  # the parent must hear of it rather than time out
        pipe.send((f"error: {exc!r}", "", ""))
        return
    try:
        while pipe.recv() != "stop":
            pass
    except EOFError:
        pass
    finally:
        log.stop()
        pipe.send("stopped")


class LogProcess:
    """A built and published :class:`LocalCTLog` served by a spawned child process."""

    def __init__(self, api: str, entries: int, folder: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(api, entries, str(folder), child_end),
            name="pinwarden-bench-ct-log",
            daemon=True,
        )
        self.folder = folder
        self.log_list = Path()
        self.pin = ""

    def start(self) -> LogProcess:
        self._process.start()
        if not self._pipe.poll(_START_TIMEOUT):
            self._process.terminate()
            raise RuntimeError("the benchmark CT log was not built in time")
        status, log_list, pin = self._pipe.recv()
        if status != "ready":
            self.stop()
            raise RuntimeError(f"the benchmark CT log said {status}")
        self.log_list, self.pin = Path(log_list), pin
        return self

    def stop(self) -> None:
        if self._process.is_alive():
            try:
                self._pipe.send("stop")
                if self._pipe.poll(_REPLY_TIMEOUT):
                    self._pipe.recv()
            except (OSError, EOFError):
                pass
            self._process.join(_REPLY_TIMEOUT)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(_REPLY_TIMEOUT)
        self._pipe.close()


def certificates(path: Path, chunk: int = 10_000) -> Iterator[list[bytes]]:
    """The DER certificates the log child wrote, ``chunk`` at a time (the whole list would
    be a few hundred MB of Python objects)."""
    with open(path, "rb") as stream:
        batch: list[bytes] = []
        while header := stream.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            batch.append(stream.read(length))
            if len(batch) == chunk:
                yield batch
                batch = []
        if batch:
            yield batch


# -- the measurement -----------------------------------------------------------------------


def rss_mb() -> float:
    """Current resident memory of this process in MB (peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1e6 if sys.platform == "darwin" else peak / 1e3


class _MemoryObserver:
    """Reads RSS when the committed entries cross each quarter of ``total``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.readings: list[float] = []

    def log_started(self, log: Log, position: int, tree_size: int) -> None:
        pass

    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
        self.done += entries
        while len(self.readings) < 4 and self.done * 4 >= self.total * (len(self.readings) + 1):
            self.readings.append(rss_mb())

    def finding(self, log: Log, verdict: str, new: bool) -> None:
        pass

    def log_error(self, log: Log, kind: str, message: str) -> None:
        pass

    def alert_delivered(self, channel: str, ok: bool) -> None:
        pass


def watch_text(pin: str, other_pin: str) -> str:
    lines = []
    for k in range(WATCH_NAMES):
        expected = pin if k % 2 == 0 else other_pin
        lines.append(f".w{k}.{_ZONE} pins={expected}")
    return "\n".join(lines) + "\n"


def measure_ct_monitor(
    entries: int = 200_000,
    *,
    api: str = "rfc6962",
    progress: Callable[[str], None] | None = None,
) -> MonitorThroughputResult:
    say = progress or (lambda message: None)
    with tempfile.TemporaryDirectory(prefix="pinwarden-bench-monitor-") as temp:
        folder = Path(temp)
        say(f"CT monitor: building a local {api} log of {entries:,} entries (child process)")
        built = time.perf_counter()
        server = LogProcess(api, entries, folder).start()
        build_s = time.perf_counter() - built
        try:
            # Another key's pin (any valid SPKI pin that is not the certificates').
            other = "sha256/" + "A" * 43 + "="
            watch = WatchList.parse(watch_text(server.pin, other), source="bench watch list")
            now = dt.datetime.now(dt.timezone.utc)
            config = MonitorConfig(
                watch=watch,
                log_list=load_log_list(str(server.log_list), now=now),
                store_url=f"sqlite:///{folder / 'state.sqlite3'}",
                start="start",
                once=True,
                channels=(StdoutChannel(stream=io.StringIO()),),
                output_dir=folder / "certs",
                poll_interval=1.0,
            )
            observer = _MemoryObserver(entries)
            say(f"CT monitor: Monitor.run(once) over {entries:,} entries, {len(watch):,} names")
            before = rss_mb()
            cpu = time.process_time()
            started = time.perf_counter()
            summary = asyncio.run(Monitor(config, observer).run())
            monitor_s = time.perf_counter() - started
            monitor_cpu = time.process_time() - cpu
        finally:
            server.stop()
        matching = len(range(0, entries, MATCH_EVERY))
        if summary.entries != entries or summary.findings_new != matching:
            raise RuntimeError(
                f"the monitor read {summary.entries} entries and found {summary.findings_new} "
                f"certificates; expected {entries} and {matching}"
            )
        if summary.misbehaving_logs or summary.unreachable_logs or summary.alerts_pending:
            raise RuntimeError(f"the monitor run was not clean: {summary}")
        say("CT monitor: the bare cryptography loop over the same certificates")
        bare_s = 0.0
        names = 0
        for chunk in certificates(folder / "certificates.bin"):
            started = time.perf_counter()
            names += _bare(chunk)
            bare_s += time.perf_counter() - started
    return MonitorThroughputResult(
        "ct_monitor",
        f"CT monitor end to end ({api}, {entries:,} entries, {WATCH_NAMES:,} names) vs bare "
        "cryptography parse",
        entries,
        bare_s,
        monitor_s,
        TARGET_ENTRIES_PER_S * bare_s / entries,
        {
            "api": api,
            "log_build_s": build_s,
            "monitor_cpu_s": monitor_cpu,
            "rss_mb_before": before,
            "findings": summary.findings_new,
            "unexpected": summary.unexpected_new,
            "watch_names": WATCH_NAMES,
            "match_every": MATCH_EVERY,
            "precert_every": PRECERT_EVERY,
            "max_batch": MAX_BATCH,
            "bare_dns_names": names,
            "monitor": "Monitor(MonitorConfig(start='start', once=True, SQLite state, "
            "one text alert channel)).run()",
            "bare_loop": "x509.load_der_x509_certificate(cert or precert) + SAN dNSNames",
        },
        tuple(observer.readings),
    )


def main(argv: list[str]) -> int:
    entries = int(argv[0]) if argv else 200_000
    api = argv[1] if len(argv) > 1 else "rfc6962"
    result = measure_ct_monitor(
        entries, api=api, progress=lambda m: print(f"  … {m}", file=sys.stderr, flush=True)
    )
    print(result.note())
    print(
        f"monitor {result.concurrent_s:.1f} s, bare loop {result.sequential_s:.1f} s; "
        f"ratio {result.speedup:.2f}; target met: {'yes' if result.met else 'NO'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
