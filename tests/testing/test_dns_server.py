"""The test kit's DNS server, queried for real with dnspython over UDP and TCP."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.testing import DNSServer, ReceivedQuery

# A CAA record whose tag has a '-': RFC 8659 allows only letters and digits, and dnspython
# refuses to read or build it, but a hostile or broken server can send it.
RAW_CAA = b"\x00\x0aissue-wild" + b"ca.example"


@pytest.fixture
def server() -> Iterator[DNSServer]:
    with DNSServer() as running:
        yield running


def _ask(
    server: DNSServer, name: str, rdtype: str, *, tcp: bool = False, timeout: float = 2
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, server.host, port=server.port, timeout=timeout)
    return dns.query.udp(query, server.host, port=server.port, timeout=timeout)


def _udp_exchange(server: DNSServer, wire: bytes, timeout: float = 2) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(wire, server.address)
        return sock.recv(0xFFFF)


def test_answers_over_udp_in_the_order_added_and_records_the_question(server: DNSServer) -> None:
    server.add("api.example.com", "A", "127.0.0.2", ttl=60)
    server.add("api.example.com", "A", "127.0.0.1", ttl=60)
    for _ in range(5):  # dnspython shuffles records by default; this server must not
        answer = server.resolver().resolve("api.example.com", "A")
        assert [rdata.address for rdata in answer] == ["127.0.0.2", "127.0.0.1"]
    assert answer.rrset is not None
    assert answer.rrset.ttl == 60
    assert server.queries[0] == ReceivedQuery("api.example.com", "A", "udp")
    assert server.queries[0] == ("api.example.com", "A", "udp")
    assert len(server.queries) == 5


def test_answers_over_tcp_on_the_same_port(server: DNSServer) -> None:
    server.add("v6.example.com", "AAAA", "::1")
    server.add("example.com", "TXT", '"v=spf1 -all"')
    response = _ask(server, "v6.example.com", "AAAA", tcp=True)
    assert [rd.address for rd in response.answer[0]] == ["::1"]
    txt = _ask(server, "example.com", "TXT", tcp=True).answer[0]
    assert [rd.strings for rd in txt] == [(b"v=spf1 -all",)]
    assert [q.transport for q in server.queries] == ["tcp", "tcp"]


def test_several_messages_on_one_tcp_connection(server: DNSServer) -> None:
    server.add("a.example.com", "A", "127.0.0.1")
    with socket.create_connection(server.address, timeout=2) as sock:
        for ident in (1, 2):
            query = dns.message.make_query("a.example.com", "A", id=ident)
            dns.query.send_tcp(sock, query)
            response, _ = dns.query.receive_tcp(sock)
            assert response.id == ident
            assert response.answer


def test_follows_cnames_inside_the_zone_into_the_answer(server: DNSServer) -> None:
    server.add("www.example.com", "CNAME", "edge.example.com")
    server.add("edge.example.com", "CNAME", "origin.example.net.")
    server.add("origin.example.net", "A", "127.0.0.3")
    response = _ask(server, "www.example.com", "A")
    assert [(str(r.name), dns.rdatatype.to_text(r.rdtype)) for r in response.answer] == [
        ("www.example.com.", "CNAME"),
        ("edge.example.com.", "CNAME"),
        ("origin.example.net.", "A"),
    ]
    answer = server.resolver().resolve("www.example.com", "A")
    assert [rd.address for rd in answer] == ["127.0.0.3"]
    # Asked for the CNAME itself, the server does not follow it.
    assert [r.rdtype for r in _ask(server, "www.example.com", "CNAME").answer] == [
        dns.rdatatype.CNAME
    ]


def test_a_cname_to_a_missing_name_is_nxdomain_with_the_chain(server: DNSServer) -> None:
    server.add("dangling.example.com", "CNAME", "gone.example.com")
    response = _ask(server, "dangling.example.com", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert [r.rdtype for r in response.answer] == [dns.rdatatype.CNAME]


def test_a_cname_loop_ends(server: DNSServer) -> None:
    server.add("a.example.com", "CNAME", "b.example.com")
    server.add("b.example.com", "CNAME", "a.example.com")
    response = _ask(server, "a.example.com", "A")
    assert len(response.answer) == 2


def test_nodata_nxdomain_and_empty_non_terminals(server: DNSServer) -> None:
    server.add("api.eu.example.com", "A", "127.0.0.1")
    nodata = _ask(server, "api.eu.example.com", "AAAA")
    assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])
    between = _ask(server, "eu.example.com", "A")  # exists: it has a name below it
    assert (between.rcode(), between.answer) == (dns.rcode.NOERROR, [])
    assert _ask(server, "nope.example.com", "A").rcode() == dns.rcode.NXDOMAIN
    assert _ask(server, "x.api.eu.example.com", "A").rcode() == dns.rcode.NXDOMAIN
    with pytest.raises(dns.resolver.NXDOMAIN):
        server.resolver().resolve("nope.example.com", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        server.resolver().resolve("api.eu.example.com", "AAAA")


def test_names_are_case_insensitive_and_may_end_with_a_dot(server: DNSServer) -> None:
    server.add("Mixed.Example.COM.", "A", "127.0.0.1")
    assert _ask(server, "mixed.example.com", "A").answer
    assert server.queries == [("mixed.example.com", "A", "udp")]


@pytest.mark.parametrize("fault", ["SERVFAIL", "REFUSED"])
def test_rcode_faults(server: DNSServer, fault: str) -> None:
    server.add("api.example.com", "A", "127.0.0.1")
    server.fail("api.example.com", fault)  # type: ignore[arg-type]
    response = _ask(server, "api.example.com", "A")
    assert response.rcode() == dns.rcode.from_text(fault)
    assert response.answer == []
    with pytest.raises(dns.resolver.NoNameservers, match=fault):
        server.resolver().resolve("api.example.com", "A")
    server.fail("api.example.com", None)
    assert _ask(server, "api.example.com", "A").rcode() == dns.rcode.NOERROR


def test_a_fault_can_hit_one_type_only(server: DNSServer) -> None:
    server.add("example.com", "A", "127.0.0.1")
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.fail("example.com", "SERVFAIL", rdtype="CAA")
    assert _ask(server, "example.com", "CAA").rcode() == dns.rcode.SERVFAIL
    assert _ask(server, "example.com", "A").answer


def test_unknown_fault_is_refused(server: DNSServer) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        server.fail("x.example", "NXDOMAIN")  # type: ignore[arg-type]


def test_truncation_makes_the_client_retry_over_tcp(server: DNSServer) -> None:
    server.add("api.example.com", "A", "127.0.0.1")
    server.fail("api.example.com", "truncate")
    truncated = _ask(server, "api.example.com", "A")
    assert (truncated.flags & dns.flags.TC, truncated.answer) == (dns.flags.TC, [])
    assert not _ask(server, "api.example.com", "A", tcp=True).flags & dns.flags.TC
    answer = server.resolver().resolve("api.example.com", "A")
    assert [rd.address for rd in answer] == ["127.0.0.1"]
    assert server.queries[-2:] == [
        ("api.example.com", "A", "udp"),
        ("api.example.com", "A", "tcp"),
    ]


def test_an_answer_too_big_for_udp_is_truncated(server: DNSServer) -> None:
    for i in range(40):  # 40 A records: more than 512 bytes
        server.add("big.example.com", "A", f"127.0.1.{i}")
    assert _ask(server, "big.example.com", "A").flags & dns.flags.TC
    assert len(_ask(server, "big.example.com", "A", tcp=True).answer[0]) == 40
    resolver = server.resolver()
    resolver.use_edns(False)
    assert len(resolver.resolve("big.example.com", "A")) == 40
    assert [q.transport for q in server.queries[-2:]] == ["udp", "tcp"]


def test_timeout_never_answers(server: DNSServer) -> None:
    server.add("slow.example.com", "A", "127.0.0.1")
    server.fail("slow.example.com", "timeout")
    started = time.monotonic()
    with pytest.raises(dns.exception.Timeout):
        _ask(server, "slow.example.com", "A", timeout=0.3)
    with pytest.raises(dns.exception.Timeout):
        _ask(server, "slow.example.com", "A", tcp=True, timeout=0.3)
    assert time.monotonic() - started < 2
    assert [q.transport for q in server.queries] == ["udp", "tcp"]


def test_stops_promptly_while_a_tcp_client_waits() -> None:
    server = DNSServer().start()
    server.fail("slow.example.com", "timeout")
    with socket.create_connection(server.address, timeout=2) as sock:
        dns.query.send_tcp(sock, dns.message.make_query("slow.example.com", "A"))
        deadline = time.monotonic() + 2
        while not server.queries and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1
        assert sock.recv(1) == b""  # the server closed the connection, unanswered


def test_ad_bit(server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    assert not _ask(server, "example.com", "CAA").flags & dns.flags.AD
    server.set_ad(True)
    assert _ask(server, "example.com", "CAA").flags & dns.flags.AD
    assert _ask(server, "example.com", "CAA", tcp=True).flags & dns.flags.AD
    server.set_ad(False)
    assert not _ask(server, "example.com", "CAA").flags & dns.flags.AD


def test_raw_rdata_that_dnspython_refuses_arrives_intact(server: DNSServer) -> None:
    with pytest.raises(dns.exception.DNSException):  # why add_raw exists
        dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.CAA, RAW_CAA, 0, len(RAW_CAA))
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.add_raw("example.com", "CAA", RAW_CAA, ttl=10)
    wire = _udp_exchange(server, dns.message.make_query("example.com", "CAA").to_wire())
    # No EDNS in the query, so the raw record is the last thing in the message.
    assert wire.endswith(struct.pack("!HHIH", 257, 1, 10, len(RAW_CAA)) + RAW_CAA)
    response = dns.message.from_wire(wire, continue_on_error=True)
    assert len(response.errors) == 1  # dnspython skips just the broken record
    assert [rd.value for rd in response.answer[0]] == [b"ca.example"]


def test_add_raw_serves_types_dnspython_does_not_know(server: DNSServer) -> None:
    server.add_raw("example.com", 65400, b"\x01\x02\x03")
    response = _ask(server, "example.com", "TYPE65400")
    assert [rd.data for rd in response.answer[0]] == [b"\x01\x02\x03"]


def test_ipv6_loopback() -> None:
    with DNSServer(host="::1") as server:
        server.add("api.example.com", "A", "127.0.0.1")
        assert server.nameserver == f"[::1]:{server.port}"
        response = dns.query.udp(
            dns.message.make_query("api.example.com", "A"), "::1", port=server.port, timeout=2
        )
        assert response.answer


def test_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DNSServer(host="0.0.0.0")


def test_nameserver_spelling(server: DNSServer) -> None:
    assert server.nameserver == f"127.0.0.1:{server.port}"


def test_garbage_gets_formerr_or_silence_and_the_server_lives_on(server: DNSServer) -> None:
    server.add("api.example.com", "A", "127.0.0.1")
    reply = _udp_exchange(server, b"\x12\x34\x01" + b"\xff" * 3 + b"garbage, not DNS")
    assert reply[:2] == b"\x12\x34"
    assert reply[3] & 0x0F == dns.rcode.FORMERR
    assert reply[2] & 0x80  # QR: a response
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00", server.address)  # too short to carry an ID: dropped
    with socket.create_connection(server.address, timeout=2) as sock:
        sock.sendall(b"\x00\x0e" + b"\x56\x78\x00not a query")
        length = int.from_bytes(sock.recv(2), "big")
        reply = sock.recv(length)
        assert (reply[:2], reply[3] & 0x0F) == (b"\x56\x78", dns.rcode.FORMERR)
    assert _ask(server, "api.example.com", "A").answer
    assert _ask(server, "api.example.com", "A", tcp=True).answer
    assert server.queries == [
        ("api.example.com", "A", "udp"),
        ("api.example.com", "A", "tcp"),
    ]


def test_responses_and_other_opcodes(server: DNSServer) -> None:
    query = dns.message.make_query("api.example.com", "A")
    query.flags |= dns.flags.QR  # a response sent to a server: never answer it
    with pytest.raises(TimeoutError):
        _udp_exchange(server, query.to_wire(), timeout=0.3)
    notify = dns.message.make_query("api.example.com", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert _ask_message(server, notify).rcode() == dns.rcode.NOTIMP


def _ask_message(server: DNSServer, query: dns.message.Message) -> dns.message.Message:
    return dns.query.udp(query, server.host, port=server.port, timeout=2)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[DNSServer]:
    # Module-scoped: hypothesis runs every example in one test call.
    with DNSServer() as running:
        running.add("api.example.com", "A", "127.0.0.1")
        yield running


# A header that is not a response (QR clear), then anything.
_HEADERS = st.binary(min_size=12, max_size=12).map(lambda h: h[:2] + bytes([h[2] & 0x7F]) + h[3:])


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), st.tuples(_HEADERS, st.binary()).map(b"".join)))
def test_random_bytes_never_stop_the_server(shared_server: DNSServer, data: bytes) -> None:
    query = dns.message.make_query("api.example.com", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(data, shared_server.address)
        sock.sendto(query.to_wire(), shared_server.address)
        # Anything with a header that is not a response gets a reply with its ID, in
        # order, before the answer to the real query; a server bug would leave it out.
        if len(data) >= 12 and not data[2] & 0x80:
            reply = sock.recv(0xFFFF)
            assert reply[:2] == data[:2]
            assert reply[2] & 0x80
        assert _answers(query, sock.recv(0xFFFF))


def _answers(query: dns.message.Message, wire: bytes) -> bool:
    try:
        return query.is_response(dns.message.from_wire(wire))
    except dns.exception.DNSException:
        return False


# -- DNAME (RFC 6672) ----------------------------------------------------------------


def _answer_types(response: dns.message.Message) -> list[tuple[str, str]]:
    return [(str(r.name), dns.rdatatype.to_text(r.rdtype)) for r in response.answer]


def test_a_name_below_a_dname_gets_the_dname_and_a_synthesized_cname(server: DNSServer) -> None:
    server.add("old.example", "DNAME", "new.example.", ttl=42)
    server.add("www.new.example", "A", "127.0.0.7")
    response = _ask(server, "www.old.example", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert _answer_types(response) == [
        ("old.example.", "DNAME"),
        ("www.old.example.", "CNAME"),
        ("www.new.example.", "A"),
    ]
    cname = response.answer[1]
    assert cname.ttl == 42  # RFC 6672 3.1: the DNAME's TTL
    assert str(cname[0].target) == "www.new.example."
    answer = server.resolver().resolve("www.old.example", "A")
    assert [rd.address for rd in answer] == ["127.0.0.7"]


def test_a_dname_redirects_deeper_names_and_cnames_after_it(server: DNSServer) -> None:
    server.add("old.example", "DNAME", "new.example.")
    server.add("a.b.new.example", "CNAME", "final.example.net.")
    server.add("final.example.net", "CAA", '0 issue "ca.example"')
    response = _ask(server, "a.b.old.example", "CAA")
    assert _answer_types(response) == [
        ("old.example.", "DNAME"),
        ("a.b.old.example.", "CNAME"),
        ("a.b.new.example.", "CNAME"),
        ("final.example.net.", "CAA"),
    ]


def test_the_dname_owner_itself_is_not_redirected(server: DNSServer) -> None:
    server.add("old.example", "DNAME", "new.example.")
    server.add("old.example", "A", "127.0.0.1")
    server.add("new.example", "A", "127.0.0.2")
    assert _answer_types(_ask(server, "old.example", "A")) == [("old.example.", "A")]
    assert _answer_types(_ask(server, "old.example", "DNAME")) == [("old.example.", "DNAME")]


def test_a_dname_to_a_missing_name_is_nxdomain_with_the_chain(server: DNSServer) -> None:
    server.add("old.example", "DNAME", "new.example.")
    server.add("new.example", "A", "127.0.0.2")
    response = _ask(server, "gone.old.example", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert _answer_types(response) == [
        ("old.example.", "DNAME"),
        ("gone.old.example.", "CNAME"),
    ]


def test_the_highest_dname_wins_because_it_hides_what_is_below(server: DNSServer) -> None:
    server.add("example", "DNAME", "example.net.")
    server.add("old.example", "DNAME", "elsewhere.example.org.")  # occluded
    server.add("www.old.example.net", "A", "127.0.0.3")
    response = _ask(server, "www.old.example", "A")
    assert str(response.answer[1][0].target) == "www.old.example.net."
    assert _answer_types(response)[-1] == ("www.old.example.net.", "A")


def test_a_dname_making_a_name_too_long_is_yxdomain(server: DNSServer) -> None:
    long_target = ".".join(["x" * 60] * 3) + "."  # 184 bytes
    server.add("d.example", "DNAME", long_target)
    response = _ask(server, f"{'y' * 60}.{'z' * 60}.d.example", "A")
    assert response.rcode() == dns.rcode.YXDOMAIN
    assert _answer_types(response) == [("d.example.", "DNAME")]


def test_a_dname_loop_ends(server: DNSServer) -> None:
    server.add("a.example", "DNAME", "b.example.")
    server.add("b.example", "DNAME", "a.example.")
    response = _ask(server, "www.a.example", "A")
    assert _answer_types(response) == [
        ("a.example.", "DNAME"),
        ("www.a.example.", "CNAME"),
        ("b.example.", "DNAME"),
        ("www.b.example.", "CNAME"),
    ]


# -- per-name AD, Extended DNS Errors, raw replies ----------------------------------


def test_ad_bit_per_name(server: DNSServer) -> None:
    server.add("example.com", "CAA", '0 issue "ca.example"')
    server.add("www.example.com", "A", "127.0.0.1")
    server.set_ad(True, name="example.com")
    assert _ask(server, "example.com", "CAA").flags & dns.flags.AD
    assert not _ask(server, "www.example.com", "CAA").flags & dns.flags.AD
    server.set_ad(True)
    server.set_ad(False, name="example.com")  # the name's setting wins over the global one
    assert not _ask(server, "example.com", "CAA").flags & dns.flags.AD
    assert _ask(server, "www.example.com", "CAA").flags & dns.flags.AD


def test_extended_dns_error_on_servfail(server: DNSServer) -> None:
    server.fail("example.com", "SERVFAIL", ede=6, ede_text="signature expired")
    query = dns.message.make_query("example.com", "CAA", use_edns=0, want_dnssec=True)
    response = dns.query.udp(query, server.host, port=server.port, timeout=2)
    assert response.rcode() == dns.rcode.SERVFAIL
    errors = response.extended_errors()
    assert [(int(e.code), e.text) for e in errors] == [(6, "signature expired")]
    # Without EDNS in the query there is nowhere to put it.
    plain = _ask(server, "example.com", "CAA")
    assert (plain.rcode(), plain.edns) == (dns.rcode.SERVFAIL, -1)


def test_extended_dns_error_only_with_an_rcode_fault(server: DNSServer) -> None:
    with pytest.raises(ValueError, match="Extended DNS Error"):
        server.fail("example.com", "timeout", ede=6)


def test_raw_replies_go_out_with_the_query_id(server: DNSServer) -> None:
    server.add("example.com", "A", "127.0.0.1")
    server.add("example.com", "AAAA", "::1")
    server.respond_raw("example.com", b"\xff\xff\x81\x80 anything at all", rdtype="A")
    query = dns.message.make_query("example.com", "A", id=0x1234)
    wire = _udp_exchange(server, query.to_wire())
    assert wire == b"\x12\x34\x81\x80 anything at all"
    with socket.create_connection(server.address, timeout=2) as sock:
        dns.query.send_tcp(sock, query)
        length = int.from_bytes(sock.recv(2), "big")
        assert sock.recv(length) == wire
    assert _ask(server, "example.com", "AAAA").answer  # another type: from the zone
    server.respond_raw("example.com", b"\x00")  # every type; too short for an ID: as is
    assert _udp_exchange(server, dns.message.make_query("example.com", "AAAA").to_wire()) == b"\x00"
    server.respond_raw("example.com", None)
    server.respond_raw("example.com", None, rdtype="A")
    assert _ask(server, "example.com", "A").answer
    assert [q.transport for q in server.queries] == ["udp", "tcp", "udp", "udp", "udp"]


def test_a_delay_holds_each_answer_back() -> None:
    import time

    with DNSServer(delay=0.2) as server:
        server.add("a.test", "A", "127.0.0.1")
        for tcp in (False, True):
            started = time.monotonic()
            answer = server.resolver(timeout=5).resolve("a.test", "A", tcp=tcp)
            # A lower bound only: how much parallel delayed answers gain is a benchmark.
            assert time.monotonic() - started >= 0.2
            assert [r.address for r in answer] == ["127.0.0.1"]
