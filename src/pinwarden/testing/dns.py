"""A small DNS server on the loopback interface, with records and faults chosen by the test.

It answers like the recursive resolver a client normally talks to: the records of the name
and type asked for, with any CNAME chain inside the zone followed into the answer section,
and a name below a DNAME answered with that DNAME and the CNAME synthesized from it
(RFC 6672 3.1), followed the same way; NOERROR with an empty answer (NODATA) for a name
that exists without that type; NXDOMAIN for a name the zone does not hold. UDP and TCP
share one port.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import socket
import socketserver
import struct
import sys
import threading
import time
from typing import Any, Literal, NamedTuple, get_args

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.DNAME
import dns.resolver

from pinwarden.testing._loopback import Running, ServingThread, bind

__all__ = ["DNSServer", "Fault", "ReceivedQuery"]

Fault = Literal["SERVFAIL", "REFUSED", "timeout", "truncate"]
_FAULTS: tuple[str, ...] = get_args(Fault)
_Transport = Literal["udp", "tcp"]

_UDP_LIMIT = 512  # RFC 1035 4.2.1: without EDNS a UDP answer is at most 512 bytes
_HEADER = struct.Struct("!HHHHHH")
_POLL = 0.05  # seconds between checks of the stop flag in blocking loops
# (owner, type) -> [(rdata, TTL)], in the order added
_Zone = dict[tuple[dns.name.Name, dns.rdatatype.RdataType], list[tuple[dns.rdata.Rdata, int]]]
# (name, type or None for every type) -> what to do instead of answering from the zone
_Key = tuple[dns.name.Name, dns.rdatatype.RdataType | None]


class _Fault(NamedTuple):
    fault: Fault
    ede: dns.edns.EDEOption | None


class ReceivedQuery(NamedTuple):
    """A question the server received: lower-case name without the final dot, type
    mnemonic (``"A"``, ``"CAA"``), and ``"udp"`` or ``"tcp"``."""

    name: str
    rdtype: str
    transport: _Transport


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)  # absolute: relative names get the root appended


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _formerr(wire: bytes) -> bytes | None:
    """A FORMERR reply to bytes dnspython could not parse, built by hand because dnspython
    only makes responses from messages it has read. Nothing to reply to (no ID) below 12
    bytes, and never reply to a response, which could start a loop between two servers."""
    if len(wire) < _HEADER.size or wire[2] & 0x80:
        return None
    ident = int.from_bytes(wire[:2], "big")
    opcode_and_rd = wire[2] & 0x79  # keep OPCODE and RD, as RFC 1035 4.1.1 asks
    flags = ((0x80 | opcode_and_rd) << 8) | dns.rcode.FORMERR
    return _HEADER.pack(ident, flags, 0, 0, 0, 0)


class DNSServer(Running):
    """A DNS server on 127.0.0.1 (or another loopback ``host``), UDP and TCP on one port,
    serving records added with :meth:`add` / :meth:`add_raw`, with per-name faults
    (:meth:`fail`), an optional AD bit (:meth:`set_ad`) and an optional ``delay`` before
    each answer (queries are answered in parallel). Every question it reads is
    appended to ``queries``.

    Use as a context manager, or :meth:`start` / :meth:`stop`. Point a client at
    :attr:`nameserver` (``"127.0.0.1:PORT"``) or use :meth:`resolver`.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the test DNS server only listens on loopback, not {host!r}")
        if delay < 0:
            raise ValueError("delay must not be negative")
        self.host = host
        self.delay = delay
        """Seconds to wait before each answer: a network's round trip, for benchmarks."""
        self.queries: list[ReceivedQuery] = []
        self._lock = threading.Lock()
        self._records: _Zone = {}
        self._faults: dict[_Key, _Fault] = {}
        self._raw_replies: dict[_Key, bytes] = {}
        self._ad = False
        self._ad_names: dict[dns.name.Name, bool] = {}
        self._stopping = threading.Event()
        self._due: list[tuple[float, int, socket.socket, bytes, Any]] = []
        self._due_lock = threading.Condition()
        self._seq = itertools.count()
        self._sender: threading.Thread | None = None
        self._udp, self._tcp = self._bind(host, port)
        self._serving = (ServingThread(self._udp, _POLL), ServingThread(self._tcp, _POLL))

    def _bind(self, host: str, port: int) -> tuple[_UDPServer, _TCPServer]:
        # A free UDP port may be taken for TCP: try a few until both bind.
        for _ in range(20 if port == 0 else 1):
            udp = bind(_UDPServer, host, port, _UDPHandler)
            try:
                tcp = bind(_TCPServer, host, int(udp.server_address[1]), _TCPHandler)
            except OSError:
                udp.server_close()
                if port:
                    raise
                continue
            udp.owner = tcp.owner = self
            return udp, tcp
        raise OSError(f"no port free for both UDP and TCP on {host}")

    # -- the zone --------------------------------------------------------------

    def add(self, name: str, rdtype: str, value: str, *, ttl: int = 300) -> None:
        """Serve a record given in zone-file text: ``add("a.example", "A", "127.0.0.1")``,
        ``add(name, "CAA", '0 issue "ca.example"')``. Relative names in ``value`` are taken
        from the root (``"target"`` is ``"target."``)."""
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, value, origin=dns.name.root, relativize=False
        )
        self._store(name, rdata, ttl)

    def add_raw(self, name: str, rdtype: str | int, data: bytes, *, ttl: int = 300) -> None:
        """Serve a record's rdata exactly as ``data``, bytes dnspython itself would reject
        (a CAA tag with a '-', a truncated field...): it goes out as a generic rdata, whose
        wire form is the bytes as given (RFC 3597)."""
        if len(data) > 0xFFFF:
            raise ValueError("rdata is at most 65535 bytes")
        rdata = dns.rdata.GenericRdata(
            dns.rdataclass.IN, dns.rdatatype.RdataType.make(rdtype), bytes(data)
        )
        self._store(name, rdata, ttl)

    def _store(self, name: str, rdata: dns.rdata.Rdata, ttl: int) -> None:
        with self._lock:
            self._records.setdefault((_name(name), rdata.rdtype), []).append((rdata, ttl))

    def fail(
        self,
        name: str,
        fault: Fault | None,
        *,
        rdtype: str | None = None,
        ede: int | None = None,
        ede_text: str | None = None,
    ) -> None:
        """From now on answer questions about ``name`` (of type ``rdtype`` only, when
        given) with ``fault``: ``"SERVFAIL"`` or ``"REFUSED"`` (that RCODE), ``"timeout"``
        (no answer at all), or ``"truncate"`` (an empty answer with the TC bit over UDP, so
        the client retries over TCP, where the real answer comes). ``None`` heals.

        ``ede`` adds an Extended DNS Error (RFC 8914) with that INFO-CODE and optional
        ``ede_text`` to a SERVFAIL or REFUSED, as a validating resolver does: 6 "DNSSEC
        Bogus", 7 "Signature Expired"... It goes out only to a query with EDNS, the only
        kind that can carry it."""
        if fault is not None and fault not in _FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(_FAULTS)}")
        if ede is not None and fault not in ("SERVFAIL", "REFUSED"):
            raise ValueError("an Extended DNS Error goes with a SERVFAIL or REFUSED fault")
        key = self._key(name, rdtype)
        option = None if ede is None else dns.edns.EDEOption(dns.edns.EDECode.make(ede), ede_text)
        with self._lock:
            if fault is None:
                self._faults.pop(key, None)
            else:
                self._faults[key] = _Fault(fault, option)

    def respond_raw(self, name: str, data: bytes | None, *, rdtype: str | None = None) -> None:
        """From now on answer questions about ``name`` (of type ``rdtype`` only, when
        given) with ``data`` as it is, over UDP and TCP: any bytes, a broken response for
        a client to survive. Only the first two bytes are replaced by the query's ID, so
        the reply reaches the client's parser. ``None`` goes back to the zone."""
        key = self._key(name, rdtype)
        with self._lock:
            if data is None:
                self._raw_replies.pop(key, None)
            else:
                self._raw_replies[key] = bytes(data)

    def set_ad(self, on: bool = True, *, name: str | None = None) -> None:
        """Set the AD bit (the answer was DNSSEC-authenticated) on every answer, or,
        with ``name``, on answers to questions about that name only (which then follow
        ``on`` whatever the setting for every answer)."""
        with self._lock:
            if name is None:
                self._ad = on
            else:
                self._ad_names[_name(name)] = on

    @staticmethod
    def _key(name: str, rdtype: str | None) -> _Key:
        return _name(name), dns.rdatatype.RdataType.make(rdtype) if rdtype else None

    # -- running ---------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._udp.server_address[1])

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def nameserver(self) -> str:
        """``"127.0.0.1:PORT"`` (``"[::1]:PORT"`` over IPv6), as ``--nameserver`` takes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def resolver(self, *, timeout: float = 5.0) -> dns.resolver.Resolver:
        """A dnspython resolver that asks this server only, without a cache."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.port = self.port  # before nameservers, which take the port when set
        resolver.nameservers = [self.host]
        resolver.lifetime = timeout
        return resolver

    def _send_later(self, sock: socket.socket, reply: bytes, address: Any) -> None:
        with self._due_lock:
            heapq.heappush(
                self._due, (time.monotonic() + self.delay, next(self._seq), sock, reply, address)
            )
            self._due_lock.notify()
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_due, daemon=True)
                self._sender.start()

    def _send_due(self) -> None:
        while not self._stopping.is_set():
            with self._due_lock:
                if not self._due:
                    self._due_lock.wait(_POLL)
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._due_lock.wait(wait)
                    continue
                _, _, sock, reply, address = heapq.heappop(self._due)
            with contextlib.suppress(OSError):  # the server may have closed meanwhile
                sock.sendto(reply, address)

    def start(self) -> DNSServer:
        for serving in self._serving:
            serving.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        # TCP connection threads see _stopping within _POLL seconds, close their socket
        # and end.
        for serving in self._serving:
            serving.stop()

    # -- answering -------------------------------------------------------------

    def _respond(self, wire: bytes, transport: _Transport) -> bytes | None:
        """The reply to one message, or None to stay silent (over TCP the connection then
        stays open and unanswered, like a server that hangs)."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # any bytes dnspython rejects, however it rejects them: FORMERR
            return _formerr(wire)
        if query.flags & dns.flags.QR:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response.to_wire()
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        keys = ((question.name, question.rdtype), (question.name, None))
        with self._lock:
            self.queries.append(
                ReceivedQuery(
                    question.name.to_text(omit_final_dot=True).lower(),
                    dns.rdatatype.to_text(question.rdtype),
                    transport,
                )
            )
            raw = next((self._raw_replies[k] for k in keys if k in self._raw_replies), None)
            fault = next((self._faults[k] for k in keys if k in self._faults), None)
            if raw is None and (
                fault is None or (fault.fault == "truncate" and transport == "tcp")
            ):
                self._fill(response, question.name, question.rdtype, question.rdclass)
            ad = self._ad_names.get(question.name, self._ad)
        if raw is not None:
            return query.id.to_bytes(2, "big") + raw[2:] if len(raw) >= 2 else raw
        if fault is not None and fault.fault == "timeout":
            return None
        if fault is not None and fault.fault in ("SERVFAIL", "REFUSED"):
            response.set_rcode(dns.rcode.from_text(fault.fault))
            if fault.ede is not None and query.edns >= 0:
                response.use_edns(0, 0, response.payload, query.payload, [fault.ede])
            return response.to_wire()
        if ad:
            response.flags |= dns.flags.AD
        if fault is not None and transport == "udp":  # "truncate"
            response.flags |= dns.flags.TC
            return response.to_wire()
        limit = 0xFFFF if transport == "tcp" else max(_UDP_LIMIT, query.payload)
        # Records go out in the order they were added (dnspython would shuffle them), so
        # tests can rely on it; an answer too big for the client's UDP size is truncated
        # with TC set, as RFC 2181 9 asks.
        return response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)

    def _fill(
        self,
        response: dns.message.Message,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        rdclass: dns.rdataclass.RdataClass,
    ) -> None:
        """Answer section and RCODE for a question (the lock is held)."""
        if rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return
        seen: set[dns.name.Name] = set()
        while name not in seen:
            seen.add(name)
            dname = self._dname_above(name)
            if dname is not None:
                # RFC 6672 2.2 and 3.1: everything below a DNAME owner is redirected, and
                # the answer carries the DNAME and the CNAME synthesized from it, whose
                # TTL is the DNAME's.
                owner, redirect, ttl = dname
                self._add(response, owner, [(redirect, ttl)])
                try:
                    target = name.relativize(owner).concatenate(redirect.target)
                except dns.name.NameTooLong:
                    response.set_rcode(dns.rcode.YXDOMAIN)  # RFC 6672 2.2
                    return
                synthesized = dns.rdata.from_text(
                    dns.rdataclass.IN, dns.rdatatype.CNAME, target.to_text()
                )
                self._add(response, name, [(synthesized, ttl)])
                name = target
                continue
            records = self._records.get((name, rdtype))
            cname = self._records.get((name, dns.rdatatype.CNAME))
            if records or cname:
                self._add(response, name, records or cname or [])
            if records or not cname:
                break
            alias = cname[0][0]
            if not isinstance(alias, dns.rdtypes.ANY.CNAME.CNAME):
                break  # a raw (add_raw) CNAME: serve it, but there is no target to follow
            name = alias.target
        if not any(owner.is_subdomain(name) for owner, _ in self._records):
            response.set_rcode(dns.rcode.NXDOMAIN)

    def _dname_above(
        self, name: dns.name.Name
    ) -> tuple[dns.name.Name, dns.rdtypes.ANY.DNAME.DNAME, int] | None:
        """The DNAME that redirects ``name``: one owned by a name strictly above it, the
        highest if several (whatever lies below a DNAME owner is hidden by it, RFC 6672
        2.4). Raw (add_raw) DNAMEs are served when asked for but redirect nothing."""
        for depth in range(1, len(name)):
            owner = name.split(depth)[1]
            for rdata, ttl in self._records.get((owner, dns.rdatatype.DNAME), []):
                if isinstance(rdata, dns.rdtypes.ANY.DNAME.DNAME):
                    return owner, rdata, ttl
        return None

    @staticmethod
    def _add(
        response: dns.message.Message,
        owner: dns.name.Name,
        records: list[tuple[dns.rdata.Rdata, int]],
    ) -> None:
        rdtype = records[0][0].rdtype
        rrset = response.find_rrset(response.answer, owner, dns.rdataclass.IN, rdtype, create=True)
        for rdata, ttl in records:
            rrset.add(rdata, ttl)


def _report_bugs_only(server: socketserver.BaseServer, request: Any, address: Any) -> None:
    """A socket error (a client that went away) is the client's business; anything else is
    a bug in this server and gets socketserver's traceback on stderr."""
    if not isinstance(sys.exc_info()[1], OSError):
        socketserver.BaseServer.handle_error(server, request, address)


class _UDPServer(socketserver.UDPServer):
    owner: DNSServer
    max_packet_size = 0xFFFF

    def handle_error(self, request: Any, client_address: Any) -> None:
        _report_bugs_only(self, request, client_address)


class _UDPHandler(socketserver.BaseRequestHandler):
    server: _UDPServer

    def handle(self) -> None:
        wire, sock = self.request
        owner = self.server.owner
        reply = owner._respond(wire, "udp")
        if reply is None:
            return
        if owner.delay:
            # Sent later by one thread, in due order: delayed answers overlap like
            # round trips on a network, at no cost per query to the server.
            owner._send_later(sock, reply, self.client_address)
            return
        with contextlib.suppress(OSError):  # the server may have closed meanwhile
            sock.sendto(reply, self.client_address)


class _TCPServer(socketserver.ThreadingTCPServer):
    owner: DNSServer
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        _report_bugs_only(self, request, client_address)


class _TCPHandler(socketserver.BaseRequestHandler):
    """Answers length-prefixed messages (RFC 1035 4.2.2) until the client closes or the
    server stops."""

    server: _TCPServer
    request: socket.socket

    def handle(self) -> None:
        owner = self.server.owner
        self.request.settimeout(_POLL)
        while (prefix := self._read(2)) is not None:
            wire = self._read(int.from_bytes(prefix, "big"))
            if wire is None:
                return
            if owner.delay and owner._stopping.wait(owner.delay):
                return
            reply = owner._respond(wire, "tcp")
            if reply is None:
                self._read(-1)
                return
            self.request.sendall(len(reply).to_bytes(2, "big") + reply)

    def _read(self, size: int) -> bytes | None:
        """Exactly ``size`` bytes, or None once the client closes or the server stops
        (``size=-1``: wait for just that)."""
        data = b""
        while size < 0 or len(data) < size:
            if self.server.owner._stopping.is_set():
                return None
            try:
                chunk = self.request.recv(size - len(data) if size > 0 else 1)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk if size >= 0 else b""
        return data
