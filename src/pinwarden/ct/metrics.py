"""Prometheus metrics of the CT monitor (``pinwarden ct monitor --metrics-port N``).

:class:`MonitorMetrics` is a monitor observer: the monitor calls it after each committed batch,
finding, log error and alert delivery, and it keeps the figures below in its own
:class:`prometheus_client.CollectorRegistry` (so several monitors in one process, or tests,
never share counters). :class:`MetricsServer` serves them over HTTP, on 127.0.0.1 unless told
otherwise: the figures name the logs followed and the alert channels, which is nobody else's
business.

=================================================  =======  =====================================
metric                                             type     labels
=================================================  =======  =====================================
``pinwarden_ct_entries_processed_total``           counter  ``log``, ``log_id``
``pinwarden_ct_log_position``                      gauge    ``log``, ``log_id``
``pinwarden_ct_log_tree_size``                     gauge    ``log``, ``log_id``
``pinwarden_ct_log_backlog_entries``               gauge    ``log``, ``log_id``
``pinwarden_ct_last_batch_timestamp_seconds``      gauge    ``log``, ``log_id``
``pinwarden_ct_findings_total``                    counter  ``verdict``
``pinwarden_ct_matching_entries_total``            counter  ``log``, ``log_id``, ``verdict``
``pinwarden_ct_log_errors_total``                  counter  ``log``, ``log_id``, ``kind``
``pinwarden_ct_alert_deliveries_total``            counter  ``channel``, ``outcome``
``pinwarden_ct_alerts_stranded``                   gauge    ``channel``
=================================================  =======  =====================================

``position`` is the index of the next entry to process and ``backlog`` is tree size − position
(what is left to read of the verified tree head). ``findings_total`` counts findings new to the
store (each certificate once), ``matching_entries_total`` every matching log entry, including a
certificate already found in another log. ``kind`` is a misbehaviour kind, ``network``,
``stalled``, ``state``, ``store`` or ``leased`` (once mode: another worker holds the log);
``outcome`` is ``delivered`` or ``failed`` (a failed delivery is retried).
``alerts_stranded`` counts, at start, the alerts queued for a channel this monitor does not
have, which it will never deliver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import start_wsgi_server

from pinwarden.ct.logs import Log
from pinwarden.errors import InputError

__all__ = ["MetricsServer", "MonitorMetrics", "channel_label"]

_LOG = ("log", "log_id")


def channel_label(name: str) -> str:
    """An alert channel's name fit for display and metrics. A webhook channel's name is
    already free of its URL (``webhook:host#digest``) and is kept; should a name carry a
    URL, which is often its own secret (Slack's are), only its scheme, host and port are
    kept. An SMTP channel keeps its server, not its recipients."""
    kind, _, rest = name.partition(":")
    if kind in ("webhook", "slack") and "://" in rest:
        try:
            parts = urlsplit(rest)
            host = parts.hostname or "?"
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return kind
        return f"{kind}:{parts.scheme}://{host}{port}"
    if kind == "smtp":
        host, _, rest = rest.partition(":")
        port = rest.partition(":")[0]
        return f"smtp:{host}:{port}" if port else f"smtp:{host}"
    return name


class MonitorMetrics:
    """A monitor observer keeping the module's metrics in :attr:`registry` (a new registry
    unless one is given). ``clock`` gives the Unix time of a batch (for tests)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._clock = clock
        r = self.registry
        self.entries = Counter(
            "pinwarden_ct_entries_processed",
            "Log entries fetched, verified, matched and committed.",
            _LOG,
            registry=r,
        )
        self.position = Gauge(
            "pinwarden_ct_log_position", "Index of the next entry to process.", _LOG, registry=r
        )
        self.tree_size = Gauge(
            "pinwarden_ct_log_tree_size",
            "Size of the log's last verified tree head.",
            _LOG,
            registry=r,
        )
        self.backlog = Gauge(
            "pinwarden_ct_log_backlog_entries",
            "Entries of the verified tree head not processed yet (tree size - position).",
            _LOG,
            registry=r,
        )
        self.last_batch = Gauge(
            "pinwarden_ct_last_batch_timestamp_seconds",
            "Unix time of the log's last committed batch.",
            _LOG,
            registry=r,
        )
        self.findings = Counter(
            "pinwarden_ct_findings",
            "Certificates for watched names new to the store, by verdict.",
            ("verdict",),
            registry=r,
        )
        self.matches = Counter(
            "pinwarden_ct_matching_entries",
            "Log entries for watched names, including certificates already found elsewhere.",
            (*_LOG, "verdict"),
            registry=r,
        )
        self.errors = Counter(
            "pinwarden_ct_log_errors",
            "Errors reading a log, by kind (misbehaviour kinds, network, stalled, ...).",
            (*_LOG, "kind"),
            registry=r,
        )
        self.deliveries = Counter(
            "pinwarden_ct_alert_deliveries",
            "Alert delivery attempts by channel and outcome (delivered, failed).",
            ("channel", "outcome"),
            registry=r,
        )
        self.stranded = Gauge(
            "pinwarden_ct_alerts_stranded",
            "Undelivered alerts queued for a channel this monitor does not have (at start).",
            ("channel",),
            registry=r,
        )

    # The observer methods: called by the monitor on its event loop; cheap, and they never
    # raise (prometheus_client only raises on negative increments, which are skipped).

    def log_started(self, log: Log, position: int, tree_size: int) -> None:
        self._levels(log, position, tree_size)
        # Create the counters at zero, so that a scrape shows every followed log at once.
        self.entries.labels(log.description, log.log_id_b64)

    def batch_done(self, log: Log, position: int, tree_size: int, entries: int) -> None:
        labels = (log.description, log.log_id_b64)
        counter = self.entries.labels(*labels)
        if entries > 0:
            counter.inc(entries)
        self._levels(log, position, tree_size)
        self.last_batch.labels(*labels).set(self._clock())

    def finding(self, log: Log, verdict: str, new: bool) -> None:
        self.matches.labels(log.description, log.log_id_b64, verdict).inc()
        if new:
            self.findings.labels(verdict).inc()

    def log_error(self, log: Log, kind: str, message: str) -> None:
        self.errors.labels(log.description, log.log_id_b64, kind).inc()

    def alert_delivered(self, channel: str, ok: bool) -> None:
        self.deliveries.labels(channel_label(channel), "delivered" if ok else "failed").inc()

    def alerts_stranded(self, channels: Mapping[str, int]) -> None:
        totals: dict[str, int] = {}
        for channel, count in channels.items():  # two SMTP channels may share one label
            label = channel_label(channel)
            totals[label] = totals.get(label, 0) + count
        for label, count in totals.items():
            self.stranded.labels(label).set(count)

    def _levels(self, log: Log, position: int, tree_size: int) -> None:
        labels = (log.description, log.log_id_b64)
        self.position.labels(*labels).set(position)
        self.tree_size.labels(*labels).set(tree_size)
        self.backlog.labels(*labels).set(max(0, tree_size - position))

    def render(self) -> bytes:
        """The metrics in the Prometheus text format (what the server sends)."""
        return generate_latest(self.registry)


class MetricsServer:
    """Serve ``metrics`` at ``http://address:port/metrics`` from a daemon thread (port 0: any
    free port, see :attr:`port`). Use as a context manager, or :meth:`start` / :meth:`stop`."""

    def __init__(self, metrics: MonitorMetrics, port: int, address: str = "127.0.0.1") -> None:
        self.metrics = metrics
        self.address = address
        self._requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        """Listen; a port in use or an address that cannot be bound is an
        :class:`~pinwarden.errors.InputError` (the options were wrong)."""
        if self._server is not None:
            return self
        try:
            self._server, self._thread = start_wsgi_server(
                self._requested_port, addr=self.address, registry=self.metrics.registry
            )
        except (OSError, OverflowError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError(
                f"--metrics-port {self._requested_port}: cannot listen on "
                f"{self.address}:{self._requested_port}: {detail}"
            ) from None
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
