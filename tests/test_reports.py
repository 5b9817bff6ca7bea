"""Violation reports: the RFC 7469 fields, the background sender and its promises
(off the connection's path, deduplicated, never to the failing host, never through the
pinned context, failures harmless). Reports go to a real HTTPS collector on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import pinwarden
from conftest import World
from pinwarden import PinValidationError, Reporter, build_report, verify
from pinwarden.reports import dedupe_key
from pinwarden.testing import TLSServer
from tls_support import connect, get

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def collector(world: World) -> Iterator[TLSServer]:
    """An HTTPS report collector at 127.0.0.1, certified by the world's root."""
    with TLSServer(world.intermediate.issue("127.0.0.1")) as server:
        yield server


@pytest.fixture
def ticks() -> list[float]:
    """A hand-moved monotonic clock for the reporter's 24 h dedupe."""
    return [1000.0]


@pytest.fixture
def reporter(world: World, ticks: list[float]) -> Iterator[Reporter]:
    sender = Reporter(ssl_context=world.root.client_context(), clock=lambda: ticks[0])
    yield sender
    sender.close()


def _mismatch(world: World, **rule: object) -> pinwarden.Verdict:
    policy = world.policy(world.backup_pin, world.other_root.pin, **rule)
    chain = [world.leaf.cert, world.intermediate.cert, world.root.cert]
    return verify(policy, "localhost", chain, now=NOW)


def _report(world: World, now: dt.datetime = NOW, **rule: object) -> dict[str, object]:
    served = [world.leaf.cert.public_bytes(Encoding.DER)]
    return build_report(_mismatch(world, **rule), port=443, served_chain=served, now=now)


def _received(server: TLSServer) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in server.requests if r.method == "POST"]


def test_report_has_every_rfc7469_field(world: World) -> None:
    verdict = _mismatch(world, hosts=["**.localhost"], expires="2027-06-01")
    served = [c.public_bytes(Encoding.DER) for c in (world.leaf.cert, world.intermediate.cert)]
    report = build_report(verdict, port=8443, served_chain=served, now=NOW)
    assert set(report) == {
        "date-time",
        "hostname",
        "port",
        "effective-expiration-date",
        "include-subdomains",
        "noted-hostname",
        "served-certificate-chain",
        "validated-certificate-chain",
        "known-pins",
        "mode",
        "pinwarden-version",
    }
    assert report["date-time"] == "2026-11-27T12:00:00Z"
    assert report["hostname"] == "localhost"
    assert report["port"] == 8443
    assert report["effective-expiration-date"] == "2027-06-02T00:00:00Z"
    assert report["include-subdomains"] is True
    assert report["noted-hostname"] == "localhost"
    assert report["known-pins"] == [world.backup_pin.hpkp, world.other_root.pin.hpkp]
    assert report["mode"] == "enforce"
    assert report["pinwarden-version"] == pinwarden.__version__
    validated = [
        x509.load_pem_x509_certificate(p.encode()) for p in report["validated-certificate-chain"]
    ]
    assert validated == [world.leaf.cert, world.intermediate.cert, world.root.cert]
    served_back = [
        x509.load_pem_x509_certificate(p.encode()) for p in report["served-certificate-chain"]
    ]
    assert served_back == [world.leaf.cert, world.intermediate.cert]
    assert json.loads(json.dumps(report)) == report


def test_exact_rule_without_expiry(world: World) -> None:
    report = _report(world, mode="report-only")
    assert report["include-subdomains"] is False
    assert report["effective-expiration-date"] is None
    assert report["mode"] == "report-only"


def test_dedupe_key_ignores_only_the_dates(world: World) -> None:
    first = _report(world)
    later = _report(world, now=NOW + dt.timedelta(hours=5), expires="2030-01-01")
    assert first["date-time"] != later["date-time"]
    assert dedupe_key("https://r/", first) == dedupe_key("https://r/", later)
    other_port = {**first, "port": 444}
    assert dedupe_key("https://r/", first) != dedupe_key("https://r/", other_port)
    assert dedupe_key("https://r/", first) != dedupe_key("https://s/", first)


def test_reports_are_sent_once_per_day(
    world: World, collector: TLSServer, reporter: Reporter, ticks: list[float]
) -> None:
    uri = collector.url("127.0.0.1", "/pins")
    assert reporter.submit(uri, _report(world))
    assert not reporter.submit(uri, _report(world, now=NOW + dt.timedelta(minutes=1)))
    ticks[0] += 23 * 3600
    assert not reporter.submit(uri, _report(world))
    ticks[0] += 3600
    assert reporter.submit(uri, _report(world))
    assert reporter.flush()
    received = _received(collector)
    assert len(received) == 2
    assert received[0]["hostname"] == "localhost"
    assert [r.path for r in collector.requests] == ["/pins", "/pins"]
    assert reporter.delivered == 2


def test_never_reported_to_the_host_that_failed(world: World, reporter: Reporter) -> None:
    assert not reporter.submit("https://LOCALHOST:9/pins", _report(world))
    assert reporter.flush()
    assert reporter.delivered == reporter.failed == 0


def test_send_failures_are_counted_not_raised(world: World, reporter: Reporter) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert reporter.submit(f"https://127.0.0.1:{port}/pins", _report(world))
    assert reporter.flush()
    assert reporter.failed == 1
    assert reporter.delivered == 0


def test_a_full_queue_drops_without_blocking(world: World) -> None:
    reporter = Reporter(max_queue=1, clock=lambda: 0.0)
    # The sender thread may take the first item at once; whatever it does, at most
    # two can be accepted and submit never blocks.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    accepted = [reporter.submit(f"http://127.0.0.1:{port}/{i}", _report(world)) for i in range(20)]
    assert 1 <= sum(accepted) <= 2
    assert reporter.dropped == 20 - sum(accepted)
    reporter.close()


def test_violations_are_reported_off_the_pinned_context(
    world: World, collector: TLSServer, reporter: Reporter
) -> None:
    # The policy also pins the collector's address with pins it does not match: had
    # the report gone through the pinned context, it could never arrive.
    uri = collector.url("127.0.0.1", "/pins")
    policy = world.policy(
        world.backup_pin, world.other_root.pin, hosts=["localhost", "127.0.0.1"], report_uri=uri
    )
    context = world.context(policy, reporter=reporter, send_reports=True)
    with TLSServer(world.leaf) as server:
        with pytest.raises(PinValidationError):
            connect(context, server)
        assert reporter.flush()
    received = _received(collector)
    assert len(received) == 1
    assert received[0]["hostname"] == "localhost"
    assert received[0]["port"] == server.port
    assert received[0]["mode"] == "enforce"
    assert len(received[0]["validated-certificate-chain"]) == 3  # type: ignore[arg-type]
    assert len(received[0]["served-certificate-chain"]) == 2  # type: ignore[arg-type]


def test_report_only_connection_passes_and_reports(
    world: World, collector: TLSServer, reporter: Reporter
) -> None:
    uri = collector.url("127.0.0.1", "/pins")
    policy = world.policy(world.backup_pin, mode="report-only", report_uri=uri)
    context = world.context(policy, reporter=reporter, send_reports=True)
    with TLSServer(world.leaf) as server:
        for _ in range(3):
            with connect(context, server) as tls:
                assert b"200 OK" in get(tls)
        assert reporter.flush()
    received = _received(collector)
    assert len(received) == 1, "identical reports are sent once"
    assert received[0]["mode"] == "report-only"


def test_unreachable_collector_never_affects_the_connection(world: World) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    reporter = Reporter(timeout=1.0)
    policy = world.policy(
        world.backup_pin, mode="report-only", report_uri=f"https://127.0.0.1:{port}/"
    )
    context = world.context(policy, reporter=reporter, send_reports=True)
    with TLSServer(world.leaf) as server, connect(context, server) as tls:
        assert b"200 OK" in get(tls)
    assert reporter.flush()
    assert reporter.failed == 1
    reporter.close()


def test_send_reports_false_sends_nothing(world: World, collector: TLSServer) -> None:
    uri = collector.url("127.0.0.1", "/pins")
    policy = world.policy(world.backup_pin, mode="report-only", report_uri=uri)
    context = pinwarden.create_context(policy, cadata=world.cadata, send_reports=False)
    with TLSServer(world.leaf) as server, connect(context, server) as tls:
        assert b"200 OK" in get(tls)
    assert pinwarden.tls._default_reporter().flush()
    assert _received(collector) == []
