"""The CT monitor's Prometheus metrics: what each observer call records, the HTTP endpoint, and
channel names that must not leak webhook secrets."""

from __future__ import annotations

import re
import socket

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from pinwarden.ct.alerts import EmailChannel, WebhookChannel
from pinwarden.ct.logs import Log, log_id_of
from pinwarden.ct.metrics import MetricsServer, MonitorMetrics, channel_label
from pinwarden.errors import InputError


def _log(description: str, key: bytes = b"key-1") -> Log:
    return Log(description=description, log_id=log_id_of(key), key=key, operator="op")


ARGON = _log("Argon 2026h1")
XENON = _log("Xenon 2026h1", b"key-2")


def samples(text: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    if isinstance(text, bytes):
        text = text.decode()
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics: MonitorMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics.render()).get((name, tuple(sorted(labels.items()))))


def log_labels(log: Log) -> dict[str, str]:
    return {"log": log.description, "log_id": log.log_id_b64}


def test_levels_and_backlog_follow_the_batches() -> None:
    clock = iter([1000.0, 1060.0])
    metrics = MonitorMetrics(clock=lambda: next(clock))
    metrics.log_started(ARGON, 100, 1100)
    labels = log_labels(ARGON)
    assert value(metrics, "pinwarden_ct_log_position", **labels) == 100
    assert value(metrics, "pinwarden_ct_log_tree_size", **labels) == 1100
    assert value(metrics, "pinwarden_ct_log_backlog_entries", **labels) == 1000
    # The counter exists from the start, at zero, so a dashboard sees the log at once.
    assert value(metrics, "pinwarden_ct_entries_processed_total", **labels) == 0
    assert value(metrics, "pinwarden_ct_last_batch_timestamp_seconds", **labels) is None

    metrics.batch_done(ARGON, 612, 1100, 512)
    metrics.batch_done(ARGON, 1200, 1300, 588)  # the head grew meanwhile
    assert value(metrics, "pinwarden_ct_entries_processed_total", **labels) == 1100
    assert value(metrics, "pinwarden_ct_log_position", **labels) == 1200
    assert value(metrics, "pinwarden_ct_log_tree_size", **labels) == 1300
    assert value(metrics, "pinwarden_ct_log_backlog_entries", **labels) == 100
    assert value(metrics, "pinwarden_ct_last_batch_timestamp_seconds", **labels) == 1060.0


def test_logs_are_kept_apart_and_registries_are_private() -> None:
    one, two = MonitorMetrics(), MonitorMetrics()
    one.batch_done(ARGON, 10, 20, 10)
    one.batch_done(XENON, 5, 5, 5)
    two.batch_done(ARGON, 3, 3, 3)
    assert value(one, "pinwarden_ct_entries_processed_total", **log_labels(ARGON)) == 10
    assert value(one, "pinwarden_ct_entries_processed_total", **log_labels(XENON)) == 5
    assert value(two, "pinwarden_ct_entries_processed_total", **log_labels(ARGON)) == 3


def test_odd_values_never_raise() -> None:
    """Observers must never raise into the monitor: no negative increment, no negative
    backlog."""
    metrics = MonitorMetrics()
    metrics.batch_done(ARGON, 50, 40, -3)
    metrics.batch_done(ARGON, 50, 40, 0)
    assert value(metrics, "pinwarden_ct_log_backlog_entries", **log_labels(ARGON)) == 0
    assert value(metrics, "pinwarden_ct_entries_processed_total", **log_labels(ARGON)) == 0


def test_findings_count_new_ones_by_verdict_and_every_match_by_log() -> None:
    metrics = MonitorMetrics()
    metrics.finding(ARGON, "unexpected", True)
    metrics.finding(XENON, "unexpected", False)  # the same certificate, seen in a second log
    metrics.finding(ARGON, "expected", True)
    metrics.finding(ARGON, "expected", True)
    assert value(metrics, "pinwarden_ct_findings_total", verdict="unexpected") == 1
    assert value(metrics, "pinwarden_ct_findings_total", verdict="expected") == 2
    assert (
        value(
            metrics,
            "pinwarden_ct_matching_entries_total",
            **log_labels(XENON),
            verdict="unexpected",
        )
        == 1
    )
    assert (
        value(
            metrics, "pinwarden_ct_matching_entries_total", **log_labels(ARGON), verdict="expected"
        )
        == 2
    )


def test_errors_by_kind_and_deliveries_by_outcome() -> None:
    metrics = MonitorMetrics()
    metrics.log_error(ARGON, "network", "connection refused")
    metrics.log_error(ARGON, "network", "timed out")
    metrics.log_error(ARGON, "bad-sth-signature", "…")
    metrics.alert_delivered("stdout", True)
    metrics.alert_delivered("hook:/usr/local/bin/page-me", False)
    metrics.alert_delivered("hook:/usr/local/bin/page-me", True)
    labels = log_labels(ARGON)
    assert value(metrics, "pinwarden_ct_log_errors_total", **labels, kind="network") == 2
    assert value(metrics, "pinwarden_ct_log_errors_total", **labels, kind="bad-sth-signature") == 1
    deliveries = "pinwarden_ct_alert_deliveries_total"
    assert value(metrics, deliveries, channel="stdout", outcome="delivered") == 1
    hook = "hook:/usr/local/bin/page-me"
    assert value(metrics, deliveries, channel=hook, outcome="failed") == 1
    assert value(metrics, deliveries, channel=hook, outcome="delivered") == 1


def test_webhook_secrets_stay_out_of_the_metrics() -> None:
    # The channel names the monitor really reports, built by the channels themselves.
    metrics = MonitorMetrics()
    secret = "T0000/B0000/XXXXsecretXXXX"
    slack = WebhookChannel(f"https://hooks.slack.com/services/{secret}", slack=True).name
    webhook = WebhookChannel("https://user:pw@alerts.example:8443/in?token=abc").name
    smtp = EmailChannel(
        "mail.example", 587, "m@example.com", ("alice@example.com", "bob@example.com")
    ).name
    metrics.alert_delivered(slack, True)
    metrics.alert_delivered(webhook, False)
    metrics.alert_delivered(smtp, True)
    text = metrics.render().decode()
    assert secret not in text
    assert "token" not in text
    assert "pw" not in text
    assert "alice" not in text
    deliveries = "pinwarden_ct_alert_deliveries_total"
    # A webhook's name is its host and a digest of its URL: shown as it is, so that two
    # webhooks on one host stay apart.
    assert re.fullmatch(r"slack:hooks\.slack\.com#[0-9a-f]{12}", channel_label(slack))
    assert value(metrics, deliveries, channel=slack, outcome="delivered") == 1
    assert channel_label(webhook).startswith("webhook:alerts.example#")
    assert value(metrics, deliveries, channel=webhook, outcome="failed") == 1
    assert value(metrics, deliveries, channel="smtp:mail.example:587", outcome="delivered") == 1
    # A name carrying a URL (as older versions made them) is still cut to its host.
    metrics.alert_delivered(f"slack:https://hooks.slack.com/services/{secret}", True)
    assert secret not in metrics.render().decode()


def test_alerts_for_channels_not_configured_are_a_gauge() -> None:
    metrics = MonitorMetrics()
    old = WebhookChannel("https://hooks.example/old-secret").name
    metrics.alerts_stranded(
        {old: 3, "smtp:mail.example:25:a@x.y": 1, "smtp:mail.example:25:b@x.y": 2}
    )
    assert value(metrics, "pinwarden_ct_alerts_stranded", channel=channel_label(old)) == 3
    assert value(metrics, "pinwarden_ct_alerts_stranded", channel="smtp:mail.example:25") == 3
    assert "old-secret" not in metrics.render().decode()


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("stdout", "stdout"),
        ("stdout-json", "stdout-json"),
        ("hook:/opt/hook", "hook:/opt/hook"),
        ("webhook:http://[::1]:9/x", "webhook:http://::1:9"),
        ("webhook:https://h.example:99999/x", "webhook"),  # an unreadable port
        ("webhook:h.example#0123456789ab", "webhook:h.example#0123456789ab"),
        ("slack:hooks.slack.com#0123456789ab", "slack:hooks.slack.com#0123456789ab"),
        ("smtp:mail.example", "smtp:mail.example"),
    ],
)
def test_channel_labels(name: str, label: str) -> None:
    assert channel_label(name) == label


@given(st.text())
def test_channel_label_never_raises_nor_keeps_a_webhook_path(name: str) -> None:
    label = channel_label(name)
    assert isinstance(label, str)
    for kind in ("webhook:", "slack:"):
        if name.startswith(kind):
            assert "/" not in label.removeprefix(kind).removeprefix("http://").removeprefix(
                "https://"
            )


def test_the_server_serves_the_registry_on_loopback() -> None:
    metrics = MonitorMetrics()
    metrics.batch_done(ARGON, 7, 9, 7)
    with MetricsServer(metrics, 0) as server:
        assert server.port != 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        response = httpx.get(server.url, timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)
        key = ("pinwarden_ct_entries_processed_total", tuple(sorted(log_labels(ARGON).items())))
        assert found[key] == 7
        # The figures are live: a later batch shows in the next scrape.
        metrics.batch_done(ARGON, 9, 9, 2)
        assert samples(httpx.get(server.url, timeout=10).text)[key] == 9
        port = server.port
    # Stopped: nothing listens on the port any more (SO_REUSEADDR: the scrapes' closed
    # connections may linger in TIME_WAIT, a listener may not).
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_a_busy_port_is_an_input_error_naming_the_option() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = MetricsServer(MonitorMetrics(), port)
        with pytest.raises(InputError, match=rf"--metrics-port {port}: cannot listen on 127\.0"):
            server.start()
    server.stop()  # stopping a server that never started is harmless


def test_an_unusable_address_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"cannot listen on 192\.0\.2\.1"):
        MetricsServer(MonitorMetrics(), 0, "192.0.2.1").start()
