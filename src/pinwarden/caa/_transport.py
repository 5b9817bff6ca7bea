"""Sending a CAA query, for :mod:`pinwarden.caa.lookup`: to each server in turn, each
with an equal share of the time left, over UDP (sent again while unanswered, the interval
doubling) and again over TCP when the answer is truncated; and which servers to ask when
none is given (the system resolver's). What the response says is read by
:mod:`pinwarden.caa._dnswire`.

Plain sockets and asyncio rather than dnspython's query functions, which parse the
response (and on a refused CAA record drop its bytes): see :mod:`pinwarden.caa._dnswire`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from typing import Any

import dns.exception
import dns.message
import dns.nameserver
import dns.resolver

from pinwarden.caa._dnswire import (
    Answer,
    Failure,
    MalformedResponse,
    Server,
    interpret,
    server_text,
)
from pinwarden.errors import NetworkError
from pinwarden.resolve import parse_nameserver

__all__ = ["ask_async", "ask_sync", "is_ip", "servers_for"]

_FIRST_RESEND = 1.0  # seconds before an unanswered UDP query is sent again; doubles each time
_RESOLV_CONF = "/etc/resolv.conf"  # read by dnspython (on Windows it reads the registry)


# -- names and servers -------------------------------------------------------------


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (in brackets or not)."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def servers_for(nameserver: str | None) -> tuple[Server, ...]:
    """The servers to ask: ``nameserver`` (``IP``, ``IP:PORT`` or ``[IPv6]:PORT``), or
    else the system resolver's; raises as :func:`~pinwarden.caa.lookup.lookup_caa` says."""
    if nameserver is not None:
        return (parse_nameserver(nameserver),)
    return _system_servers()


def _system_servers() -> tuple[Server, ...]:
    """The plain-DNS servers the system resolver asks, as dnspython reads them."""
    try:
        system = dns.resolver.Resolver(filename=_RESOLV_CONF)
    except (dns.exception.DNSException, OSError) as exc:
        raise NetworkError(
            f"cannot look up CAA records: no DNS server configured ({exc})"
        ) from None
    servers: list[Server] = []
    for entry in system.nameservers:
        if isinstance(entry, dns.nameserver.Do53Nameserver):
            servers.append((entry.address, entry.port))
        elif isinstance(entry, str) and is_ip(entry):
            servers.append((entry, system.nameserver_ports.get(entry, system.port)))
    if not servers:
        raise NetworkError("cannot look up CAA records: the system resolver has no DNS server")
    return tuple(servers)


# -- asking, sync and asyncio ------------------------------------------------------


def _answers(data: bytes, ident: int) -> bool:
    """Is this datagram a response (QR) with our ID? Anything else is not for us."""
    return len(data) >= 12 and int.from_bytes(data[:2], "big") == ident and bool(data[2] & 0x80)


def _truncated(data: bytes) -> bool:
    return bool(data[2] & 0x02)  # TC


def _until(deadline: float, servers_left: int) -> float:
    """An equal share of the time left for each server still to be asked."""
    now = time.monotonic()
    return now + max(deadline - now, 0.0) / servers_left


def _timed_out(server: Server, timeout: float) -> Failure:
    return Failure("timeout", f"no answer from {server_text(server)} ({timeout:g}s for the lookup)")


def _unreachable(server: Server, exc: OSError) -> Failure:
    return Failure("unreachable", f"{server_text(server)} cannot be reached: {exc.strerror or exc}")


# Failures that say nothing about the name, only about that server: try the next one.
_TRY_NEXT = {"timeout", "unreachable", "REFUSED"}


def _combine(failures: list[Failure]) -> Failure:
    """Every server failed: the last one's RCODE, everyone's reason."""
    return Failure(failures[-1].rcode, "; ".join(failure.reason for failure in failures))


def ask_sync(
    servers: tuple[Server, ...], query: dns.message.Message, deadline: float, timeout: float
) -> Answer | Failure:
    """Ask each server in turn until one gives a usable answer."""
    failures: list[Failure] = []
    for index, server in enumerate(servers):
        until = _until(deadline, len(servers) - index)
        wire = query.to_wire()
        reply: bytes | Exception | None
        try:
            reply = _udp_sync(server, wire, query.id, until)
            if reply is not None and _truncated(reply):
                reply = _tcp_sync(server, wire, until)
        except (MalformedResponse, OSError) as exc:
            reply = exc
        outcome = _settle(query, server, timeout, reply)
        if isinstance(outcome, Answer):
            return outcome
        failures.append(outcome)
        if outcome.rcode not in _TRY_NEXT:
            break
    return _combine(failures)


def _settle(
    query: dns.message.Message, server: Server, timeout: float, reply: bytes | Exception | None
) -> Answer | Failure:
    """What one server's reply (or silence, or error) amounts to. After a failure that
    is not in ``_TRY_NEXT`` the search stops: the server answered, and asking another
    resolver instead would hide what it said (a SERVFAIL may be DNSSEC failing)."""
    if isinstance(reply, MalformedResponse):
        return Failure("malformed", f"{server_text(server)} {reply}")
    if isinstance(reply, OSError):
        return _unreachable(server, reply)
    if isinstance(reply, Exception):
        raise reply
    if reply is None:
        return _timed_out(server, timeout)
    if _truncated(reply):
        return Failure("malformed", f"{server_text(server)} sent a truncated answer over TCP too")
    return interpret(query, reply, server)


def _family(server: Server) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in server[0] else socket.AF_INET


def _udp_sync(server: Server, wire: bytes, ident: int, until: float) -> bytes | None:
    """The response to ``wire`` over UDP, sent again while unanswered; None at ``until``."""
    with socket.socket(_family(server), socket.SOCK_DGRAM) as sock:
        sock.connect(server)  # connected: only the server's datagrams arrive
        resend_at, wait = 0.0, _FIRST_RESEND
        while (now := time.monotonic()) < until:
            if now >= resend_at:
                sock.send(wire)
                resend_at, wait = now + wait, wait * 2
            sock.settimeout(min(until, resend_at) - now)
            try:
                data = sock.recv(0xFFFF)
            except TimeoutError:
                continue
            if _answers(data, ident):
                return data
    return None


def _tcp_sync(server: Server, wire: bytes, until: float) -> bytes | None:
    """The response to ``wire`` over TCP (RFC 1035 4.2.2 framing); None at ``until``."""
    try:
        left = max(until - time.monotonic(), 0.001)
        with socket.create_connection(server, timeout=left) as sock:
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
            length = int.from_bytes(_read_sync(sock, 2, until), "big")
            return _read_sync(sock, length, until)
    except TimeoutError:
        return None


def _read_sync(sock: socket.socket, size: int, until: float) -> bytes:
    data = b""
    while len(data) < size:
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise MalformedResponse("closed the TCP connection before the whole answer")
        data += chunk
    return data


async def ask_async(
    servers: tuple[Server, ...], query: dns.message.Message, deadline: float, timeout: float
) -> Answer | Failure:
    """:func:`ask_sync` with asyncio. Plain asyncio rather than dns.asyncquery, whose
    receive functions parse (and on a refused record drop) the bytes we must read."""
    failures: list[Failure] = []
    for index, server in enumerate(servers):
        until = _until(deadline, len(servers) - index)
        wire = query.to_wire()
        reply: bytes | Exception | None
        try:
            reply = await _udp_async(server, wire, query.id, until)
            if reply is not None and _truncated(reply):
                reply = await _tcp_async(server, wire, until)
        except (MalformedResponse, OSError) as exc:
            reply = exc
        outcome = _settle(query, server, timeout, reply)
        if isinstance(outcome, Answer):
            return outcome
        failures.append(outcome)
        if outcome.rcode not in _TRY_NEXT:
            break
    return _combine(failures)


class _Datagrams(asyncio.DatagramProtocol):
    """Queues what a connected UDP endpoint receives, errors (ICMP unreachable) too."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.received.put_nowait(exc if isinstance(exc, OSError) else OSError(str(exc)))


def _left(until: float) -> float:
    return max(until - time.monotonic(), 0.0)


async def _udp_async(server: Server, wire: bytes, ident: int, until: float) -> bytes | None:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Datagrams, remote_addr=server, family=_family(server)
    )
    try:
        resend_at, wait = 0.0, _FIRST_RESEND
        while (now := time.monotonic()) < until:
            if now >= resend_at:
                transport.sendto(wire)
                resend_at, wait = now + wait, wait * 2
            try:
                item = await asyncio.wait_for(protocol.received.get(), min(until, resend_at) - now)
            except asyncio.TimeoutError:
                continue
            if isinstance(item, OSError):
                raise item
            if _answers(item, ident):
                return item
        return None
    finally:
        transport.close()


async def _tcp_async(server: Server, wire: bytes, until: float) -> bytes | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*server), _left(until))
    except asyncio.TimeoutError:
        return None
    try:
        writer.write(len(wire).to_bytes(2, "big") + wire)
        prefix = await asyncio.wait_for(reader.readexactly(2), _left(until))
        length = int.from_bytes(prefix, "big")
        return await asyncio.wait_for(reader.readexactly(length), _left(until))
    except asyncio.TimeoutError:
        return None
    except asyncio.IncompleteReadError:
        raise MalformedResponse("closed the TCP connection before the whole answer") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
