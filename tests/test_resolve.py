"""Address resolution for checks: against the test kit's DNS server, and through the
system resolver (getaddrinfo) — the sync and async functions run the same cases."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinwarden.errors import InputError, NetworkError
from pinwarden.resolve import parse_nameserver, resolve_addresses, resolve_addresses_async
from pinwarden.testing import DNSServer, loopback_names

Resolve = Callable[..., list[str]]


def _run_async(name: str, **kwargs: Any) -> list[str]:
    return asyncio.run(resolve_addresses_async(name, **kwargs))


@pytest.fixture(params=["sync", "async"])
def resolve(request: pytest.FixtureRequest) -> Resolve:
    return resolve_addresses if request.param == "sync" else _run_async


@pytest.fixture
def server() -> Iterator[DNSServer]:
    with DNSServer() as running:
        running.add("api.example.com", "A", "127.0.0.1")
        running.add("api.example.com", "A", "127.0.0.2")
        running.add("dual.example.com", "AAAA", "::1")  # AAAA first: the answer is still v4 first
        running.add("dual.example.com", "A", "127.0.0.9")
        running.add("v6.example.com", "AAAA", "::2")
        running.add("www.example.com", "CNAME", "edge.example.com")
        running.add("edge.example.com", "CNAME", "api.example.com")
        running.add("text.example.com", "TXT", '"no addresses here"')
        yield running


def test_every_a_record(resolve: Resolve, server: DNSServer) -> None:
    ns = server.nameserver
    assert resolve("api.example.com", nameserver=ns) == ["127.0.0.1", "127.0.0.2"]
    assert {q[1] for q in server.queries} == {"A", "AAAA"}  # both families asked


def test_ipv4_first_then_ipv6(resolve: Resolve, server: DNSServer) -> None:
    assert resolve("dual.example.com", nameserver=server.nameserver) == ["127.0.0.9", "::1"]


def test_ipv6_only(resolve: Resolve, server: DNSServer) -> None:
    assert resolve("v6.example.com", nameserver=server.nameserver) == ["::2"]


def test_cname_chain(resolve: Resolve, server: DNSServer) -> None:
    assert resolve("www.example.com.", nameserver=server.nameserver) == [
        "127.0.0.1",
        "127.0.0.2",
    ]


def test_a_truncated_answer_is_fetched_over_tcp(resolve: Resolve, server: DNSServer) -> None:
    server.fail("api.example.com", "truncate")
    assert resolve("api.example.com", nameserver=server.nameserver) == ["127.0.0.1", "127.0.0.2"]
    assert "tcp" in {q.transport for q in server.queries}


def test_nxdomain(resolve: Resolve, server: DNSServer) -> None:
    with pytest.raises(NetworkError, match=r"cannot resolve nope\.example\.com: no such name"):
        resolve("nope.example.com", nameserver=server.nameserver)


def test_no_address_records(resolve: Resolve, server: DNSServer) -> None:
    with pytest.raises(NetworkError, match=r"text\.example\.com: no A or AAAA records"):
        resolve("text.example.com", nameserver=server.nameserver)


@pytest.mark.parametrize("fault", ["SERVFAIL", "REFUSED"])
def test_server_failure(resolve: Resolve, server: DNSServer, fault: str) -> None:
    server.fail("api.example.com", fault)  # type: ignore[arg-type]
    with pytest.raises(NetworkError, match=rf"api\.example\.com: .*answered {fault}"):
        resolve("api.example.com", nameserver=server.nameserver)


def test_a_failure_of_one_family_fails_the_lookup(resolve: Resolve, server: DNSServer) -> None:
    # The A records are there, but the AAAA ones could not be learnt: checking only the
    # IPv4 addresses would report "every address is fine" about a partial list.
    server.fail("api.example.com", "SERVFAIL", rdtype="AAAA")
    with pytest.raises(NetworkError, match="SERVFAIL"):
        resolve("api.example.com", nameserver=server.nameserver)


def test_timeout_within_the_timeout(resolve: Resolve, server: DNSServer) -> None:
    server.fail("api.example.com", "timeout")
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"api\.example\.com: timed out after 0\.5s"):
        resolve("api.example.com", nameserver=server.nameserver, timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_a_slow_second_family_shares_the_timeout(resolve: Resolve, server: DNSServer) -> None:
    server.fail("api.example.com", "timeout", rdtype="AAAA")
    started = time.monotonic()
    with pytest.raises(NetworkError, match="timed out"):
        resolve("api.example.com", nameserver=server.nameserver, timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_no_server_listening(resolve: Resolve) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Refused at once where the ICMP "port unreachable" reaches the socket, else a timeout.
    with pytest.raises(
        NetworkError, match=r"api\.example\.com: (the name server failed|timed out)"
    ):
        resolve("api.example.com", nameserver=f"127.0.0.1:{port}", timeout=0.5)


def test_ip_literals_resolve_to_themselves_without_a_query(
    resolve: Resolve, server: DNSServer
) -> None:
    assert resolve("127.0.0.1", nameserver=server.nameserver) == ["127.0.0.1"]
    assert resolve("0:0::1", nameserver=server.nameserver) == ["::1"]
    assert resolve("192.0.2.7") == ["192.0.2.7"]
    assert server.queries == []


def test_unicode_names_are_asked_in_a_label_form(resolve: Resolve, server: DNSServer) -> None:
    server.add("xn--bcher-kva.example", "A", "127.0.0.5")
    assert resolve("bücher.example", nameserver=server.nameserver) == ["127.0.0.5"]


@pytest.mark.parametrize("name", ["", ".", "a..b.example", "x" * 64 + ".example", "a\u200db.test"])
def test_malformed_names_are_input_errors(resolve: Resolve, server: DNSServer, name: str) -> None:
    with pytest.raises(InputError, match="not a valid host name"):
        resolve(name, nameserver=server.nameserver)


@pytest.mark.parametrize("name", ["", ".", "a..b.example", "x" * 64 + ".example"])
def test_malformed_names_are_input_errors_for_the_system_resolver(
    resolve: Resolve, name: str
) -> None:
    with pytest.raises(InputError, match="not a valid host name"):
        resolve(name)


# -- the system resolver -------------------------------------------------------------


def test_localhost_through_getaddrinfo(resolve: Resolve) -> None:
    addresses = resolve("localhost")
    assert addresses[0] == "127.0.0.1"
    assert len(set(addresses)) == len(addresses)


def test_getaddrinfo_sees_patched_names(resolve: Resolve) -> None:
    with loopback_names(["api.pinwarden.test"]):
        assert resolve("api.pinwarden.test") == ["127.0.0.1"]


def _fake_getaddrinfo(
    result: list[tuple[Any, ...]] | BaseException, delay: float = 0
) -> Callable[..., list[tuple[Any, ...]]]:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        time.sleep(delay)
        if isinstance(result, BaseException):
            raise result
        return result

    return getaddrinfo


def _info(address: str) -> tuple[Any, ...]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, 0, 0, 0) if ":" in address else (address, 0)
    return (family, socket.SOCK_STREAM, 6, "", sockaddr)


def test_getaddrinfo_order_and_duplicates(
    resolve: Resolve, monkeypatch: pytest.MonkeyPatch
) -> None:
    infos = [
        _info(a) for a in ["2001:db8::1", "192.0.2.2", "192.0.2.1", "192.0.2.2", "2001:db8::1"]
    ]
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo(infos))
    assert resolve("multi.example") == ["192.0.2.2", "192.0.2.1", "2001:db8::1"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (socket.EAI_NONAME, "no such name"),
        (socket.EAI_AGAIN, "temporary failure"),
        (socket.EAI_FAIL, "the name server failed"),
    ],
)
def test_getaddrinfo_errors(
    resolve: Resolve, monkeypatch: pytest.MonkeyPatch, error: int, reason: str
) -> None:
    failure = socket.gaierror(error, "system message")
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo(failure))
    with pytest.raises(NetworkError, match=rf"cannot resolve gone\.example: {reason}"):
        resolve("gone.example")


def test_getaddrinfo_without_addresses(resolve: Resolve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo([]))
    with pytest.raises(NetworkError, match="no A or AAAA records"):
        resolve("empty.example")


def test_getaddrinfo_timeout(resolve: Resolve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo([_info("192.0.2.1")], 0.6))
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"slow\.example: timed out after 0\.2s"):
        resolve("slow.example", timeout=0.2)
    # asyncio.run waits for the executor's thread on exit; the sync call leaves it behind.
    assert time.monotonic() - started < 1.5


# -- name server specifications ------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        (" 192.0.2.1:53 ", ("192.0.2.1", 53)),
        ("::1", ("::1", 53)),
        ("[::1]", ("::1", 53)),
        ("[2001:db8::0001]:853", ("2001:db8::1", 853)),
    ],
)
def test_nameserver_specs(spec: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "dns.google",
        "dns.google:53",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:port",
        "[127.0.0.1]:53",
        "[::1",
        "[::1]:",
        "[::1]:99999",
        "1.2.3.4.5",
    ],
)
def test_bad_nameserver_specs(resolve: Resolve, spec: str) -> None:
    with pytest.raises(InputError, match="invalid name server"):
        parse_nameserver(spec)
    with pytest.raises(InputError, match="invalid name server"):
        resolve("127.0.0.1", nameserver=spec)  # checked even when no query is needed


@given(st.text(max_size=60))
def test_parse_nameserver_accepts_or_raises_input_error(spec: str) -> None:
    try:
        ip, port = parse_nameserver(spec)
    except InputError:
        return
    assert 0 < port < 65536
    spelled = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    assert parse_nameserver(spelled) == (ip, port)  # what it gives back reads the same


# -- async specifics ----------------------------------------------------------------


async def test_async_lookups_run_together(server: DNSServer) -> None:
    server.fail("v6.example.com", "timeout")
    started = time.monotonic()
    slow, fast = await asyncio.gather(
        resolve_addresses_async("v6.example.com", nameserver=server.nameserver, timeout=0.5),
        resolve_addresses_async("api.example.com", nameserver=server.nameserver),
        return_exceptions=True,
    )
    assert isinstance(slow, NetworkError)
    assert fast == ["127.0.0.1", "127.0.0.2"]
    assert time.monotonic() - started < 1.5
