"""``pinwarden.apps.live``: a handshake with every address of a name, bounded and in a
stable order, and every failure reported, never skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinwarden.apps.live import AddressResult, Endpoint, probe_endpoints
from pinwarden.errors import CertificateError
from pinwarden.probe import probe as real_probe
from pinwarden.testing import CA, DNSServer, TLSServer
from tls_support import PeakCounter, closed_port, two_addresses


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


@pytest.fixture(scope="module")
def root() -> CA:
    return CA("live root")


@pytest.fixture
def cafile(root: CA, tmp_path: Path) -> str:
    path = tmp_path / "root.pem"
    path.write_bytes(root.cert_pem)
    return str(path)


def _pins(result: AddressResult) -> list[str]:
    return [str(c.pin) for c in result.verified_chain or ()]


def test_each_address_of_a_name_gets_its_own_handshake(
    root: CA, cafile: str, dns: DNSServer
) -> None:
    one, two = root.intermediate("one"), root.intermediate("two")
    dns.add("app.test", "A", "127.0.0.1")
    dns.add("app.test", "A", "127.0.0.2")
    with two_addresses(one.issue("app.test"), two.issue("app.test")) as port:
        results = probe_endpoints(
            [Endpoint("app.test", port)], nameserver=dns.nameserver, cafile=cafile, timeout=5
        )
    assert [r.address for r in results] == ["127.0.0.1", "127.0.0.2"]
    assert all(r.reachable and r.verification_error is None for r in results)
    assert [_pins(r)[1] for r in results] == [str(one.pin), str(two.pin)]
    assert [_pins(r)[2] for r in results] == [str(root.pin)] * 2


def test_failures_are_results_in_endpoint_order(root: CA, cafile: str, dns: DNSServer) -> None:
    leaf = root.intermediate().issue("good.test")
    dns.add("good.test", "A", "127.0.0.1")
    dns.add("closed.test", "A", "127.0.0.1")
    dns.add("broken.test", "A", "127.0.0.1")
    dns.fail("broken.test", "SERVFAIL")
    closed = closed_port()
    with TLSServer(leaf) as server:
        endpoints = [
            Endpoint("missing.test", server.port),
            Endpoint("good.test", server.port),
            Endpoint("closed.test", closed),
            Endpoint("broken.test", server.port),
            Endpoint("good.test", server.port),  # a duplicate is checked once
        ]
        results = probe_endpoints(endpoints, nameserver=dns.nameserver, cafile=cafile, timeout=5)
    assert [(r.endpoint.host, r.address) for r in results] == [
        ("missing.test", ""),
        ("good.test", "127.0.0.1"),
        ("closed.test", "127.0.0.1"),
        ("broken.test", ""),
    ]
    missing, good, refused, servfail = results
    assert good.reachable and good.verified_chain is not None
    for failed in (missing, refused, servfail):
        assert not failed.reachable
        assert failed.verified_chain is None
    assert missing.network_error is not None and "NXDOMAIN" in missing.network_error
    assert refused.network_error is not None and f"127.0.0.1:{closed}" in refused.network_error
    assert servfail.network_error is not None and "SERVFAIL" in servfail.network_error


def test_a_chain_that_does_not_verify_is_reachable_but_unverified(
    cafile: str, dns: DNSServer
) -> None:
    stranger = CA("not in the trust store").intermediate().issue("app.test")
    dns.add("app.test", "A", "127.0.0.1")
    with TLSServer(stranger) as server:
        [result] = probe_endpoints(
            [Endpoint("app.test", server.port)], nameserver=dns.nameserver, cafile=cafile
        )
    assert result.reachable
    assert result.verified_chain is None
    assert result.verification_error
    # What was served is still shown, for display.
    assert result.served_chain[0].pin == stranger.pin


def test_concurrency_bound_is_respected_and_used(
    monkeypatch: pytest.MonkeyPatch, root: CA, cafile: str
) -> None:
    counter = PeakCounter(real_probe, 0.15)
    monkeypatch.setattr("pinwarden.apps.live.probe", counter)
    progress: list[tuple[int, int]] = []
    leaf = root.intermediate().issue("127.0.0.1")
    with TLSServer(leaf) as server:
        endpoints = [Endpoint("127.0.0.1", server.port)] + [
            Endpoint("127.0.0.1", closed_port()) for _ in range(5)
        ]
        results = probe_endpoints(
            endpoints,
            cafile=cafile,
            timeout=5,
            concurrency=2,
            on_progress=lambda done, total: progress.append((done, total)),
        )
    assert len(results) == 6
    assert results[0].verified_chain is not None
    assert counter.peak == 2
    assert progress[0] == (0, 6)
    assert progress[-1] == (6, 6)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_dns_timeout_is_bounded(dns: DNSServer) -> None:
    dns.fail("slow.test", "timeout")
    start = time.monotonic()
    [result] = probe_endpoints([Endpoint("slow.test", 443)], nameserver=dns.nameserver, timeout=1)
    assert time.monotonic() - start < 5
    assert result.network_error is not None and "timed out" in result.network_error


def test_bad_trust_store_fails_before_any_work(tmp_path: Path, dns: DNSServer) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(CertificateError, match=r"ca\.pem"):
        probe_endpoints([Endpoint("app.test", 443)], nameserver=dns.nameserver, cafile=str(bad))
    assert dns.queries == []


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        probe_endpoints([Endpoint("app.test")], concurrency=0)


def test_endpoint_text_brackets_ipv6() -> None:
    assert str(Endpoint("app.test", 8443)) == "app.test:8443"
    assert str(Endpoint("::1", 443)) == "[::1]:443"
