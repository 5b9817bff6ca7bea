"""The RFC 8659 §3 CAA search against the test kit's DNS server over real UDP and TCP;
the sync and asyncio functions run the same cases."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.caa import _dnswire, _transport
from pinwarden.caa.lookup import lookup_caa, lookup_caa_async
from pinwarden.caa.model import CAALookup, CAARecord, LookupStep
from pinwarden.errors import InputError, NetworkError
from pinwarden.testing import DNSServer

Lookup = Callable[..., CAALookup]

ISSUE = CAARecord(0, "issue", b"ca.example")


def _run_async(name: str, **kwargs: Any) -> CAALookup:
    return asyncio.run(lookup_caa_async(name, **kwargs))


@pytest.fixture(params=["sync", "async"])
def lookup(request: pytest.FixtureRequest) -> Lookup:
    return lookup_caa if request.param == "sync" else _run_async


@pytest.fixture
def server() -> Iterator[DNSServer]:
    with DNSServer() as running:
        yield running


def _asked(server: DNSServer) -> list[str]:
    assert {q.rdtype for q in server.queries} == {"CAA"}
    return [q.name for q in server.queries]


# -- the climb ----------------------------------------------------------------------


def test_found_at_the_name(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"', ttl=120)
    server.add("example.com", "CAA", '0 iodef "mailto:sec@example.com"', ttl=120)
    result = lookup("example.com", nameserver=server.nameserver)
    assert result.error is None
    assert result.name == result.found_at == "example.com"
    assert result.records == (ISSUE, CAARecord(0, "iodef", b"mailto:sec@example.com"))
    assert (result.ttl, result.aliases, result.authenticated) == (120, (), False)
    assert result.steps == (LookupStep("example.com", "NOERROR", 2),)
    assert _asked(server) == ["example.com"]


def test_climbs_two_labels_to_a_parent(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.add("a.b.example.com", "A", "127.0.0.1")  # b.example.com: a name with no records
    result = lookup("a.b.example.com", nameserver=server.nameserver)
    assert result.found_at == "example.com"
    assert result.records == (ISSUE,)
    assert [(s.name, s.rcode, s.records) for s in result.steps] == [
        ("a.b.example.com", "NOERROR", 0),
        ("b.example.com", "NOERROR", 0),
        ("example.com", "NOERROR", 1),
    ]
    assert _asked(server) == ["a.b.example.com", "b.example.com", "example.com"]


def test_nothing_anywhere_stops_at_the_tld_without_asking_the_root(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("www.example.org", "A", "127.0.0.1")
    result = lookup("www.example.org", nameserver=server.nameserver)
    assert result.error is None
    assert (result.found_at, result.records, result.ttl) == (None, (), None)
    # RFC 8659 §3: "up to but not including the DNS root".
    assert _asked(server) == ["www.example.org", "example.org", "org"]
    assert [s.records for s in result.steps] == [0, 0, 0]


def test_a_wildcard_starts_at_its_base(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issuewild ";"')
    result = lookup("*.shop.example.com", nameserver=server.nameserver)
    assert result.name == "shop.example.com"
    assert result.found_at == "example.com"
    assert result.records == (CAARecord(0, "issuewild", b";"),)
    assert _asked(server) == ["shop.example.com", "example.com"]


def test_nxdomain_is_no_error_and_the_climb_goes_on(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    result = lookup("gone.example.com", nameserver=server.nameserver)
    assert result.error is None
    assert [(s.name, s.rcode) for s in result.steps] == [
        ("gone.example.com", "NXDOMAIN"),
        ("example.com", "NOERROR"),
    ]
    assert result.found_at == "example.com"


def test_names_are_reported_in_lower_case_without_the_final_dot(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    result = lookup("WWW.Example.COM.", nameserver=server.nameserver)
    assert (result.name, result.found_at) == ("www.example.com", "example.com")


def test_a_unicode_name_is_asked_as_its_a_label(lookup: Lookup, server: DNSServer) -> None:
    server.add("xn--bcher-kva.example", "CAA", '0 issue "ca.example"')
    result = lookup("*.Bücher.example", nameserver=server.nameserver)
    assert result.name == result.found_at == "xn--bcher-kva.example"
    assert result.records == (ISSUE,)


# -- aliases --------------------------------------------------------------------------


def test_cname_to_a_name_with_caa(lookup: Lookup, server: DNSServer) -> None:
    server.add("www.example.com", "CNAME", "edge.cdn.example.net")
    server.add("edge.cdn.example.net", "CAA", '0 issue "cdn-ca.example"', ttl=60)
    server.add("example.com", "CAA", '0 issue "ca.example"')
    result = lookup("www.example.com", nameserver=server.nameserver)
    # The relevant RRset is the target's, but it is relevant to the name asked.
    assert result.found_at == "www.example.com"
    assert result.aliases == ("edge.cdn.example.net",)
    assert result.records == (CAARecord(0, "issue", b"cdn-ca.example"),)
    assert result.ttl == 60
    assert result.steps == (LookupStep("www.example.com", "NOERROR", 1, ("edge.cdn.example.net",)),)
    assert _asked(server) == ["www.example.com"]


def test_cname_chain_is_reported_in_order(lookup: Lookup, server: DNSServer) -> None:
    server.add("www.example.com", "CNAME", "a.example.net")
    server.add("a.example.net", "CNAME", "b.example.org")
    server.add("b.example.org", "CAA", '0 issue "ca.example"')
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.aliases == ("a.example.net", "b.example.org")
    assert result.records == (ISSUE,)


def test_cname_to_a_name_without_caa_climbs_from_the_name_asked(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("www.shop.example.com", "CNAME", "edge.cdn.example.net")
    server.add("edge.cdn.example.net", "A", "127.0.0.1")
    server.add("cdn.example.net", "CAA", '0 issue "cdn-ca.example"')
    server.add("example.com", "CAA", '0 issue "ca.example"')
    result = lookup("www.shop.example.com", nameserver=server.nameserver)
    # RFC 8659 §3: Parent(X) of the name asked; RFC 6844 climbed from the alias target,
    # which would have found cdn.example.net.
    assert result.found_at == "example.com"
    assert result.records == (ISSUE,)
    assert result.aliases == ()
    assert result.steps[0].aliases == ("edge.cdn.example.net",)
    assert _asked(server) == ["www.shop.example.com", "shop.example.com", "example.com"]


def test_a_dangling_cname_is_nxdomain_and_the_climb_goes_on(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("www.example.com", "CNAME", "gone.example.net")
    server.add("example.com", "CAA", '0 issue "ca.example"')
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.steps[0] == LookupStep("www.example.com", "NXDOMAIN", 0, ("gone.example.net",))
    assert result.found_at == "example.com"


def test_dname_redirects_the_names_below_its_owner(lookup: Lookup, server: DNSServer) -> None:
    server.add("old.example", "DNAME", "new.example.")
    server.add("www.new.example", "CAA", '0 issue "ca.example"')
    result = lookup("www.old.example", nameserver=server.nameserver)
    assert result.found_at == "www.old.example"
    assert result.aliases == ("www.new.example",)
    assert result.records == (ISSUE,)


def test_dname_owner_itself_is_not_redirected(lookup: Lookup, server: DNSServer) -> None:
    server.add("old.example", "DNAME", "new.example.")
    server.add("old.example", "CAA", '0 issue "old-ca.example"')
    server.add("new.example", "CAA", '0 issue "new-ca.example"')
    server.add("api.new.example", "A", "127.0.0.1")
    result = lookup("api.old.example", nameserver=server.nameserver)
    # api.old.example -> api.new.example has no CAA; the climb goes to old.example,
    # which a DNAME does not redirect (RFC 6672 2.3), not to new.example.
    assert result.steps[0].aliases == ("api.new.example",)
    assert result.found_at == "old.example"
    assert result.records == (CAARecord(0, "issue", b"old-ca.example"),)


def test_dname_alone_without_the_synthesized_cname_is_followed(
    lookup: Lookup, server: DNSServer
) -> None:
    # Some resolvers answer with the DNAME only; the client synthesizes (RFC 6672 3.4).
    reply = dns.message.make_response(dns.message.make_query("www.old.example", "CAA"))
    reply.answer.append(dns.rrset.from_text("old.example.", 300, "IN", "DNAME", "new.example."))
    reply.answer.append(
        dns.rrset.from_text("www.new.example.", 300, "IN", "CAA", '0 issue "ca.example"')
    )
    server.respond_raw("www.old.example", reply.to_wire())
    result = lookup("www.old.example", nameserver=server.nameserver)
    assert (result.aliases, result.records) == (("www.new.example",), (ISSUE,))


# -- records dnspython refuses ----------------------------------------------------


@pytest.mark.parametrize(
    ("rdata", "record"),
    [
        (
            b"\x80\x0eissue-critical" + b"ca.example",
            CAARecord(128, "issue-critical", b"ca.example"),
        ),
        (b"\x00\x02\xc3\x84" + b"value", CAARecord(0, "\\xc3\\x84", b"value")),  # tag "Ä"
        (b"\x00\x05issue", CAARecord(0, "issue", b"")),
    ],
)
def test_records_dnspython_refuses_are_read_and_reported(
    lookup: Lookup, server: DNSServer, rdata: bytes, record: CAARecord
) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.add_raw("example.com", "CAA", rdata)
    started = time.monotonic()
    result = lookup("www.example.com", nameserver=server.nameserver, timeout=3)
    assert time.monotonic() - started < 1  # read, not taken for a timeout
    assert result.error is None
    assert result.found_at == "example.com"
    assert result.records == (ISSUE, record)


def test_the_answer_of_another_owner_is_ignored(lookup: Lookup, server: DNSServer) -> None:
    reply = dns.message.make_response(dns.message.make_query("www.example.com", "CAA"))
    reply.answer.append(
        dns.rrset.from_text("evil.example.", 300, "IN", "CAA", '0 issue "evil.example"')
    )
    server.respond_raw("www.example.com", reply.to_wire())
    server.add("example.com", "CAA", '0 issue "ca.example"')
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.steps[0].records == 0
    assert (result.found_at, result.records) == ("example.com", (ISSUE,))


# -- failures -----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["SERVFAIL", "REFUSED"])
def test_failure_at_the_relevant_name_is_an_error(
    lookup: Lookup, server: DNSServer, fault: str
) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.fail("example.com", fault)  # type: ignore[arg-type]
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert (result.found_at, result.records) == (None, ())
    assert result.error is not None
    assert "example.com" in result.error
    assert fault in result.error
    assert server.nameserver in result.error
    assert result.steps[-1] == LookupStep("example.com", fault, 0)


def test_servfail_above_with_nothing_below_is_an_error_not_no_caa(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("www.example.com", "A", "127.0.0.1")
    server.fail("com", "SERVFAIL")
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.found_at is None
    assert result.error is not None
    assert result.error.startswith("CAA query for com failed")


def test_servfail_below_stops_the_climb(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.fail("www.example.com", "SERVFAIL")
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.error is not None
    assert result.records == ()
    assert _asked(server) == ["www.example.com"]  # nothing after a failure counts


def test_servfail_above_the_relevant_name_does_not_matter(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("www.example.com", "CAA", '0 issue "ca.example"')
    server.fail("example.com", "SERVFAIL")
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.error is None
    assert result.found_at == "www.example.com"


def test_dnssec_bogus_is_reported_from_extended_dns_errors(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.fail("example.com", "SERVFAIL", ede=6, ede_text="RRSIG expired on example.com/CAA")
    result = lookup("example.com", nameserver=server.nameserver)
    assert result.error is not None
    assert "SERVFAIL" in result.error
    assert "DNSSEC validation failed" in result.error
    assert "RRSIG expired on example.com/CAA" in result.error


def test_other_extended_dns_errors_are_reported_without_blaming_dnssec(
    lookup: Lookup, server: DNSServer
) -> None:
    server.fail("example.com", "SERVFAIL", ede=22)
    result = lookup("example.com", nameserver=server.nameserver)
    assert result.error is not None
    assert "EDE 22" in result.error
    assert "DNSSEC" not in result.error


def test_timeout_fails_within_its_bound(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.fail("example.com", "timeout")
    started = time.monotonic()
    result = lookup("www.example.com", nameserver=server.nameserver, timeout=0.4)
    assert time.monotonic() - started < 1.2
    assert result.error is not None
    assert "no answer" in result.error
    assert result.steps[-1] == LookupStep("example.com", "timeout", 0)


def test_an_unanswered_udp_query_is_sent_again(
    lookup: Lookup, server: DNSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_transport, "_FIRST_RESEND", 0.05)
    server.fail("example.com", "timeout")
    result = lookup("example.com", nameserver=server.nameserver, timeout=0.5)
    assert result.error is not None
    # Sent at 0, 0.05, 0.15 and 0.35 s: the interval doubles (a fixed one would send 10).
    assert {q.transport for q in server.queries} == {"udp"}
    assert 3 <= len(server.queries) <= 4


def test_truncated_answer_is_asked_again_over_tcp(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.fail("example.com", "truncate")
    result = lookup("example.com", nameserver=server.nameserver)
    assert result.records == (ISSUE,)
    assert [(q.name, q.transport) for q in server.queries] == [
        ("example.com", "udp"),
        ("example.com", "tcp"),
    ]


def test_an_answer_too_big_for_udp_comes_over_tcp(lookup: Lookup, server: DNSServer) -> None:
    for i in range(60):  # about 1.8 kB: more than the 1232 bytes asked for over UDP
        server.add("example.com", "CAA", f'0 issue "ca{i}.example"')
    result = lookup("example.com", nameserver=server.nameserver)
    assert len(result.records) == 60
    assert [q.transport for q in server.queries] == ["udp", "tcp"]


def test_a_server_that_is_not_there(lookup: Lookup) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = lookup("example.com", nameserver=f"127.0.0.1:{port}", timeout=3)
    assert time.monotonic() - started < 1  # ICMP port unreachable, not a timeout
    assert result.error is not None
    assert "cannot be reached" in result.error
    assert result.steps == (LookupStep("example.com", "unreachable", 0),)


def _answer_to(name: str) -> bytes:
    """A correct reply to a CAA question about ``name``, to break."""
    return dns.message.make_response(dns.message.make_query(name, "CAA")).to_wire()


def _with_answer(name: str, records: list[bytes]) -> bytes:
    wire = bytearray(_answer_to(name))
    wire[6:8] = len(records).to_bytes(2, "big")
    return bytes(wire) + b"".join(records)


_POINTER_TO_QNAME = b"\xc0\x0c"  # compression pointer to offset 12: the question's name


def _announcing_one_more() -> bytes:
    wire = bytearray(_answer_to("example.com"))
    wire[6:8] = b"\x00\x01"  # ANCOUNT 1, but nothing follows
    return bytes(wire)


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        pytest.param(_announcing_one_more(), "answer record 1", id="announced-record-missing"),
        pytest.param(
            _with_answer(
                "example.com", [_POINTER_TO_QNAME + struct.pack("!HHIH", 257, 1, 300, 50) + b"x"]
            ),
            "past the end",
            id="rdata-past-the-end",
        ),
        pytest.param(
            _with_answer("example.com", [_POINTER_TO_QNAME + struct.pack("!HHIH", 257, 1, 300, 9)]),
            "past the end",
            id="rdata-missing",
        ),
        pytest.param(
            _with_answer("example.com", [_POINTER_TO_QNAME + struct.pack("!HHIH", 257, 1, 300, 0)]),
            "CAA rdata of 0 bytes",
            id="empty-caa-rdata",
        ),
        pytest.param(
            _with_answer(
                "example.com",
                [_POINTER_TO_QNAME + struct.pack("!HHIH", 5, 1, 300, 2) + _POINTER_TO_QNAME],
            ),
            "loop",
            id="cname-to-itself",
        ),
        pytest.param(
            _with_answer(
                "example.com",
                [_POINTER_TO_QNAME + struct.pack("!HHIH", 5, 1, 300, 3) + _POINTER_TO_QNAME + b"!"],
            ),
            "not one name",
            id="cname-with-extra-bytes",
        ),
        pytest.param(
            _with_answer("example.com", [b"\xc0\xff" + struct.pack("!HHIH", 257, 1, 300, 0)]),
            "malformed name",
            id="pointer-forwards",
        ),
        pytest.param(_answer_to("other.example"), "another question", id="other-question"),
        pytest.param(b"\x00\x00\x80\x00" + b"\xff" * 40, "not a DNS message", id="garbage"),
    ],
)
def test_a_broken_answer_is_an_error(
    lookup: Lookup, server: DNSServer, reply: bytes, fragment: str
) -> None:
    server.add("com", "CAA", '0 issue "ca.example"')
    server.respond_raw("example.com", reply)
    result = lookup("example.com", nameserver=server.nameserver, timeout=3)
    assert result.error is not None, result
    assert fragment in result.error
    assert result.error.startswith("CAA query for example.com failed")
    assert server.nameserver in result.error
    assert result.steps == (LookupStep("example.com", "malformed", 0),)
    assert result.records == ()


def test_trailing_bytes_after_the_answer_are_not_an_error(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("com", "CAA", '0 issue "ca.example"')
    server.respond_raw("example.com", _answer_to("example.com") + b"\x00")
    result = lookup("example.com", nameserver=server.nameserver)
    assert result.error is None
    assert result.found_at == "com"


def test_a_reply_too_short_to_be_ours_is_ignored(lookup: Lookup, server: DNSServer) -> None:
    server.respond_raw("example.com", b"\x00\x00\x80")
    result = lookup("example.com", nameserver=server.nameserver, timeout=0.3)
    assert result.error is not None
    assert result.steps[-1].rcode == "timeout"


# -- DNSSEC: the AD bit ----------------------------------------------------------


def test_authenticated_when_the_answer_holding_the_rrset_has_ad(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.set_ad(True, name="example.com")
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.authenticated is True
    assert [s.authenticated for s in result.steps] == [False, True]


def test_not_authenticated_when_that_answer_lacks_ad(lookup: Lookup, server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.set_ad(True)
    server.set_ad(False, name="example.com")
    result = lookup("www.example.com", nameserver=server.nameserver)
    assert result.authenticated is False
    assert [s.authenticated for s in result.steps] == [True, False]


def test_no_caa_is_authenticated_only_when_every_step_was(
    lookup: Lookup, server: DNSServer
) -> None:
    server.add("www.example.com", "A", "127.0.0.1")
    server.set_ad(True)
    assert lookup("www.example.com", nameserver=server.nameserver).authenticated is True
    server.set_ad(False, name="com")
    assert lookup("www.example.com", nameserver=server.nameserver).authenticated is False


def test_queries_ask_for_recursion_and_dnssec(
    server: DNSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dns.message.Message] = []
    original = _dnswire.interpret

    def spy(query: dns.message.Message, wire: bytes, where: tuple[str, int]) -> Any:
        seen.append(query)
        return original(query, wire, where)

    monkeypatch.setattr(_transport, "interpret", spy)
    lookup_caa("example.com", nameserver=server.nameserver)
    query = seen[0]
    assert query.flags & dns.flags.RD
    assert query.ednsflags & dns.flags.DO
    assert query.question[0].rdtype == dns.rdatatype.CAA


# -- where the queries go ------------------------------------------------------------


def test_system_servers_come_from_resolv_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n")
    monkeypatch.setattr(_transport, "_RESOLV_CONF", str(conf))
    assert _transport._system_servers() == (("192.0.2.53", 53), ("2001:db8::53", 53))


@pytest.mark.parametrize("content", [None, "search example.com\n"])
def test_no_system_server_is_a_network_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    conf = tmp_path / "resolv.conf"
    if content is not None:
        conf.write_text(content)
    monkeypatch.setattr(_transport, "_RESOLV_CONF", str(conf))
    with pytest.raises(NetworkError, match="no DNS server"):
        lookup_caa("example.com")


def test_without_nameserver_the_system_servers_are_asked_in_turn(
    lookup: Lookup, server: DNSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    with DNSServer() as dead:
        dead.fail("example.com", "timeout")
        servers = (dead.address, server.address)
        monkeypatch.setattr(_transport, "_system_servers", lambda: servers)
        started = time.monotonic()
        result = lookup("example.com", timeout=1.0)
        # The first server had its share of the time (half), the second answered.
        assert 0.4 < time.monotonic() - started < 1.0
        assert result.records == (ISSUE,)
        assert [q.name for q in dead.queries] == ["example.com"]


def test_when_every_server_fails_each_reason_is_given(
    lookup: Lookup, server: DNSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.fail("example.com", "REFUSED")
    with DNSServer() as other:
        other.fail("example.com", "SERVFAIL")
        servers = (server.address, other.address)
        monkeypatch.setattr(_transport, "_system_servers", lambda: servers)
        result = lookup("example.com")
    assert result.error is not None
    assert f"{server.nameserver} answered REFUSED" in result.error
    assert f"{other.nameserver} answered SERVFAIL" in result.error
    assert result.steps[-1].rcode == "SERVFAIL"


def test_ipv6_name_server(lookup: Lookup) -> None:
    with DNSServer(host="::1") as server:
        server.add("example.com", "CAA", '0 issue "ca.example"')
        server.fail("example.com", "truncate")
        result = lookup("example.com", nameserver=server.nameserver)
    assert result.records == (ISSUE,)


# -- input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "not a domain name"),
        (".", "not a domain name"),
        ("*.", "not a domain name"),
        ("a..example", "not a domain name"),
        ("bad name.example", "not a domain name"),
        ("x" * 64 + ".example", "not a domain name"),
        ("a.*.example", "first label"),
        ("**.example", "first label"),
        ("192.0.2.1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("xn--.example\u00e9", "not a domain name"),
    ],
)
def test_names_that_are_not_domain_names(lookup: Lookup, name: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment) as caught:
        lookup(name, nameserver="127.0.0.1:9")
    assert repr(name) in str(caught.value)


def test_bad_nameserver_and_timeout(lookup: Lookup) -> None:
    with pytest.raises(InputError, match="invalid name server"):
        lookup("example.com", nameserver="dns.example")
    with pytest.raises(InputError, match="timeout"):
        lookup("example.com", nameserver="127.0.0.1", timeout=0)


# -- asyncio: many at once -------------------------------------------------------


async def test_concurrent_lookups(server: DNSServer) -> None:
    for i in range(0, 40, 2):
        server.add(f"n{i}.example.com", "CAA", f'0 issue "ca{i}.example"')
    server.add("example.com", "CAA", '0 issue "ca.example"')
    names = [f"n{i}.example.com" for i in range(40)]
    results = await asyncio.gather(
        *(lookup_caa_async(name, nameserver=server.nameserver) for name in names)
    )
    for i, result in enumerate(results):
        expected = f"ca{i}.example" if i % 2 == 0 else "ca.example"
        assert result.records == (CAARecord(0, "issue", expected.encode()),)


# -- hostile answers -----------------------------------------------------------------


def _fuzz_base() -> bytes:
    query = dns.message.make_query("fuzz.example", "CAA")
    reply = dns.message.make_response(query)
    reply.answer.append(
        dns.rrset.from_text("fuzz.example.", 300, "IN", "CNAME", "target.fuzz.example.")
    )
    reply.answer.append(
        dns.rrset.from_text(
            "target.fuzz.example.", 300, "IN", "CAA", '0 issue "ca.example"', '0 iodef "x"'
        )
    )
    return reply.to_wire()


_FUZZ_BASE = _fuzz_base()


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[DNSServer]:
    # Module-scoped: hypothesis runs every example in one test call.
    with DNSServer() as running:
        yield running


@settings(max_examples=120, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(3, len(_FUZZ_BASE) - 1), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.just(len(_FUZZ_BASE)), st.integers(12, len(_FUZZ_BASE))),
    tail=st.binary(max_size=20),
)
def test_any_broken_answer_gives_a_result_never_an_exception(
    fuzz_server: DNSServer, edits: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    wire = bytearray(_FUZZ_BASE)
    for position, value in edits:
        wire[position] = value
    wire[2] = 0x81  # QR and RD, no TC: the reply stays a reply to our query
    fuzz_server.respond_raw("fuzz.example", bytes(wire[:cut]) + tail)
    result = lookup_caa("fuzz.example", nameserver=fuzz_server.nameserver, timeout=2)
    assert result.steps[0].name == "fuzz.example"
    # A reply with our ID is always judged, never ignored until the time runs out.
    assert all(step.rcode != "timeout" for step in result.steps)
    if result.error is not None:
        assert (result.found_at, result.records) == (None, ())
        assert result.error.startswith("CAA query for fuzz.example failed")
    else:
        assert result.found_at in (None, "fuzz.example")
        assert all(isinstance(record, CAARecord) for record in result.records)


def test_a_servfail_is_not_hidden_by_the_next_server(
    lookup: Lookup, server: DNSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A validating resolver says the answer is bogus; a second resolver that does not
    # validate must not turn that into "no CAA" (anyone may issue).
    server.fail("example.com", "SERVFAIL", ede=6, ede_text="bogus")
    with DNSServer() as lax:
        servers = (server.address, lax.address)
        monkeypatch.setattr(_transport, "_system_servers", lambda: servers)
        result = lookup("example.com")
        assert lax.queries == []
    assert result.error is not None
    assert "DNSSEC validation failed" in result.error
    assert result.found_at is None


def test_a_truncated_answer_over_tcp_too_is_an_error(lookup: Lookup, server: DNSServer) -> None:
    reply = dns.message.make_response(dns.message.make_query("example.com", "CAA"))
    reply.flags |= dns.flags.TC
    server.respond_raw("example.com", reply.to_wire())
    result = lookup("example.com", nameserver=server.nameserver)
    assert result.error is not None
    assert "truncated" in result.error


def test_an_extended_rcode_in_the_opt_record_is_a_failure(
    lookup: Lookup, server: DNSServer
) -> None:
    # BADVERS (16): the header's 4 bits say NOERROR, the OPT record's upper bits do not.
    query = dns.message.make_query("example.com", "CAA", use_edns=0)
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.BADVERS)
    server.respond_raw("example.com", reply.to_wire())
    result = lookup("example.com", nameserver=server.nameserver)
    assert result.error is not None
    assert "BADVERS" in result.error
    assert result.found_at is None


def test_a_name_with_characters_no_host_name_has_is_refused() -> None:
    for name in ("alice@example.com", "ex ample.com", "a;b.example"):
        with pytest.raises(InputError):
            lookup_caa(name, nameserver="127.0.0.1:1")
