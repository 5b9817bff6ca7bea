"""Pin-violation reports (RFC 7469 §3 fields) and the background sender.

A report is sent off the connection's path: the connecting thread only puts it on a
bounded queue; a daemon thread posts it with a timeout. Identical reports (same fields
except the dates) are sent at most once per 24 hours. A report is never sent to the host
whose check failed (it is the server we just refused to trust) and never through a
pinned context. Nothing the sender does can affect the connection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import queue
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pinwarden._version import __version__
from pinwarden.hosts import normalize_host
from pinwarden.verify import Verdict

__all__ = ["Reporter", "Violation", "build_report"]

logger = logging.getLogger("pinwarden")

_DEDUPE_SECONDS = 24 * 3600
_DATE_FIELDS = ("date-time", "effective-expiration-date")


def _pem(der: bytes) -> str:
    # No parsing: a served certificate may be one cryptography refuses to read.
    return ssl.DER_cert_to_PEM_cert(der)


def build_report(
    verdict: Verdict,
    *,
    port: int | None,
    served_chain: Sequence[bytes],
    now: dt.datetime,
) -> dict[str, Any]:
    """The JSON report for a violation: RFC 7469 §3.1 fields plus ``mode`` and
    ``pinwarden-version``. ``port`` is None when the TLS layer does not know it (asyncio
    streams hand OpenSSL memory buffers, not a socket)."""
    rule = verdict.rule
    pattern = verdict.pattern
    expires = rule.expires_at if rule else None
    return {
        "date-time": now.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "hostname": verdict.hostname,
        "port": port,
        "effective-expiration-date": expires.isoformat().replace("+00:00", "Z")
        if expires
        else None,
        "include-subdomains": bool(pattern and pattern.covers_subdomains),
        "noted-hostname": pattern.base if pattern else verdict.hostname,
        "served-certificate-chain": [_pem(der) for der in served_chain],
        "validated-certificate-chain": [_pem(der) for der in verdict.chain],
        "known-pins": [pin.hpkp for pin in rule.pins] if rule else [],
        "mode": rule.mode.value if rule else "enforce",
        "pinwarden-version": __version__,
    }


@dataclass(frozen=True)
class Violation:
    """What an ``on_violation`` callback receives: the verdict, the report that is (or
    would be) sent, and whether the connection was blocked."""

    verdict: Verdict
    report: dict[str, Any]
    blocked: bool


def dedupe_key(uri: str, report: dict[str, Any]) -> str:
    """Reports that differ only in their dates share a key."""
    stable = {k: v for k, v in report.items() if k not in _DATE_FIELDS}
    return hashlib.sha256((uri + "\n" + json.dumps(stable, sort_keys=True)).encode()).hexdigest()


class Reporter:
    """Sends reports from a background thread. Thread-safe; start-up is lazy.

    ``ssl_context`` is used for ``https://`` report URIs (default: the system trust store,
    never a pinned context); ``clock`` returns seconds (monotonic) for the 24 h dedupe.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
        max_queue: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(max_queue)
        self._clock = clock
        self._sent: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, uri: str, report: dict[str, Any]) -> bool:
        """Queue a report; returns False when it was skipped (duplicate within 24 h, the
        failing host itself, or queue full). Never raises, never blocks."""
        try:
            host = normalize_host(urlsplit(uri).hostname or "")
        except Exception:
            host = ""
        if host == report.get("hostname"):
            logger.warning(
                "pinwarden: not sending the pin report for %s to %s: it is the host that "
                "failed its pin check",
                report.get("hostname"),
                uri,
            )
            return False
        key = dedupe_key(uri, report)
        now = self._clock()
        with self._lock:
            last = self._sent.get(key)
            if last is not None and now - last < _DEDUPE_SECONDS:
                return False
            self._sent[key] = now
            self._sent.move_to_end(key)
            while len(self._sent) > 10_000:
                self._sent.popitem(last=False)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="pinwarden-reporter", daemon=True
                )
                self._thread.start()
        try:
            self._queue.put_nowait((uri, report))
        except queue.Full:
            self.dropped += 1
            logger.warning("pinwarden: report queue full, dropped a report for %s", uri)
            return False
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued report was attempted (for tests and clean shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, then stop the background thread."""
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None and thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                return
            thread.join(timeout)

    def _run(self) -> None:
        import httpx  # imported on first report only: keeps `import pinwarden` light

        verify: ssl.SSLContext | bool = self._ssl_context or True
        with httpx.Client(timeout=self._timeout, verify=verify, follow_redirects=False) as client:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    uri, report = item
                    try:
                        response = client.post(uri, json=report)
                        if response.status_code >= 400:
                            raise httpx.HTTPStatusError(
                                f"HTTP {response.status_code}",
                                request=response.request,
                                response=response,
                            )
                        self.delivered += 1
                    except Exception as exc:  # any failure is logged, never propagated
                        self.failed += 1
                        logger.warning("pinwarden: could not send pin report to %s: %s", uri, exc)
                finally:
                    self._queue.task_done()
