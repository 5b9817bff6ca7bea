"""Every address of a host name, for checking each one (sync and async, the same API).

Without a name server the system resolver answers (``getaddrinfo``), so /etc/hosts,
nsswitch and split-horizon setups give the addresses the user's own clients would connect
to. With ``nameserver="IP[:PORT]"`` one name server answers, A and AAAA asked separately.

A failure is a :class:`~pinwarden.errors.NetworkError` naming the name and the reason,
never an empty list: checking "every address" of a name that did not resolve would pass
vacuously. A missing family (NXDOMAIN or no records for A, or for AAAA) is fine when the
other has addresses; any other failure of either family (SERVFAIL, REFUSED, timeout) fails
the whole lookup, since the addresses it hid would go unchecked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import idna

from pinwarden.errors import InputError, NetworkError

__all__ = ["parse_nameserver", "resolve_addresses", "resolve_addresses_async"]

_FAMILIES = (dns.rdatatype.A, dns.rdatatype.AAAA)
# "[v6]" or "[v6]:port", else "v4" or "v4:port" (a bare IPv6 address has several colons).
_BRACKETED = re.compile(r"\[([^\]]*)\](?::(\d{1,5}))?")
_WITH_PORT = re.compile(r"([^:]*):(\d{1,5})")
_AddrInfo = list[tuple[Any, ...]]


def parse_nameserver(spec: str) -> tuple[str, int]:
    """``"IP"``, ``"IP:PORT"``, ``"[IPv6]"`` or ``"[IPv6]:PORT"`` as ``(ip, port)``
    (port 53 when absent); anything else raises :class:`InputError`."""
    text = spec.strip()
    port = "53"
    if match := _BRACKETED.fullmatch(text):
        host, port = match.group(1), match.group(2) or port
    elif (match := _WITH_PORT.fullmatch(text)) is not None:
        host, port = match.groups()
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(
            f"invalid name server {spec!r}: expected IP, IP:PORT or [IPv6]:PORT"
        ) from None
    if text.startswith("[") and address.version != 6:
        raise InputError(f"invalid name server {spec!r}: brackets are for IPv6 addresses")
    if not 0 < int(port) < 65536:
        raise InputError(f"invalid name server {spec!r}: port {port} is not 1-65535")
    return str(address), int(port)


def resolve_addresses(
    name: str, *, nameserver: str | None = None, timeout: float = 5.0
) -> list[str]:
    """Every A and AAAA address of ``name``: IPv4 first, each family in the order the
    resolver gave, without duplicates. An IP address resolves to itself. ``timeout`` bounds
    the whole lookup.

    Raises :class:`NetworkError` when the name does not resolve (no such name, no A/AAAA
    records, SERVFAIL, timeout...) and :class:`InputError` for a malformed name or
    ``nameserver``.
    """
    server = parse_nameserver(nameserver) if nameserver is not None else None
    literal = _ip_literal(name)
    if literal is not None:
        return [literal]
    if server is None:
        return _from_addrinfo(name, _getaddrinfo_within(name, timeout))
    ip, port = server
    qname = _dns_name(name)
    resolver = _configure(dns.resolver.Resolver(configure=False), ip, port)
    deadline = time.monotonic() + timeout
    outcomes: list[list[str] | Exception] = []
    for rdtype in _FAMILIES:
        # The deadline is shared; once it has passed dnspython times out at once.
        lifetime = max(deadline - time.monotonic(), 0.001)
        try:
            answer = resolver.resolve(qname, rdtype, search=False, lifetime=lifetime)
            outcomes.append([rdata.address for rdata in answer])
        except dns.exception.DNSException as exc:
            outcomes.append(exc)
    return _combine(name, nameserver, timeout, outcomes)


async def resolve_addresses_async(
    name: str, *, nameserver: str | None = None, timeout: float = 5.0
) -> list[str]:
    """:func:`resolve_addresses` for asyncio: the same arguments, result and errors."""
    server = parse_nameserver(nameserver) if nameserver is not None else None
    literal = _ip_literal(name)
    if literal is not None:
        return [literal]
    if server is None:
        loop = asyncio.get_running_loop()
        lookup = loop.getaddrinfo(_ascii(name), None, type=socket.SOCK_STREAM)
        try:
            infos = await asyncio.wait_for(lookup, timeout)
        except asyncio.TimeoutError:
            raise _timed_out(name, None, timeout) from None
        except socket.gaierror as exc:
            raise _gai_error(name, exc) from None
        except UnicodeError:
            raise _bad_name(name) from None
        return _from_addrinfo(name, infos)
    ip, port = server
    qname = _dns_name(name)
    resolver = _configure(dns.asyncresolver.Resolver(configure=False), ip, port)
    # Both families at once, each within the whole timeout: the same bound as the
    # sync version's shared deadline.
    results = await asyncio.gather(
        *(resolver.resolve(qname, rdtype, search=False, lifetime=timeout) for rdtype in _FAMILIES),
        return_exceptions=True,
    )
    outcomes: list[list[str] | Exception] = []
    for result in results:
        if isinstance(result, dns.exception.DNSException):
            outcomes.append(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            outcomes.append([rdata.address for rdata in result])
    return _combine(name, nameserver, timeout, outcomes)


def _ip_literal(name: str) -> str | None:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return None


def _bad_name(name: str) -> InputError:
    return InputError(f"cannot resolve {name!r}: not a valid host name")


def _ascii(name: str) -> str:
    """The A-label form (IDNA 2008 with UTS #46, as requests and httpx send) of a Unicode
    name; ASCII names as given."""
    if name.isascii():
        if not name.strip("."):
            raise _bad_name(name)
        return name
    try:
        return idna.encode(name.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError:
        raise _bad_name(name) from None


def _dns_name(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(_ascii(name))  # absolute: no search list applies
    except dns.exception.DNSException:
        raise _bad_name(name) from None


_Resolver = TypeVar("_Resolver", bound=dns.resolver.BaseResolver)


def _configure(resolver: _Resolver, ip: str, port: int) -> _Resolver:
    resolver.port = port  # before nameservers, which take the port when they are set
    resolver.nameservers = [ip]
    resolver.cache = None
    return resolver


def _where(nameserver: str | None) -> str:
    return f" (asked {nameserver})" if nameserver else ""


def _timed_out(name: str, nameserver: str | None, timeout: float) -> NetworkError:
    return NetworkError(f"cannot resolve {name}: timed out after {timeout:g}s{_where(nameserver)}")


def _combine(
    name: str,
    nameserver: str | None,
    timeout: float,
    outcomes: Sequence[list[str] | Exception],
) -> list[str]:
    """The addresses of both families (A first), or the error that stops the lookup."""
    addresses: list[str] = []
    absent: list[Exception] = []
    for outcome in outcomes:
        if isinstance(outcome, list):
            addresses.extend(outcome)
        elif isinstance(outcome, (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)):
            absent.append(outcome)
        elif isinstance(outcome, dns.exception.Timeout):
            raise _timed_out(name, nameserver, timeout)
        elif isinstance(outcome, dns.resolver.NoNameservers):
            raise NetworkError(
                f"cannot resolve {name}: {_server_failure(outcome)}{_where(nameserver)}"
            )
        else:
            raise NetworkError(f"cannot resolve {name}: {outcome}{_where(nameserver)}")
    if addresses:
        return _unique(addresses)
    if any(isinstance(exc, dns.resolver.NXDOMAIN) for exc in absent):
        raise NetworkError(f"cannot resolve {name}: no such name (NXDOMAIN){_where(nameserver)}")
    raise NetworkError(f"cannot resolve {name}: no A or AAAA records{_where(nameserver)}")


def _server_failure(exc: dns.resolver.NoNameservers) -> str:
    """What the name server did, from dnspython's error trace: an RCODE it answered
    (as text) or the exception that stopped the exchange."""
    errors = exc.kwargs.get("errors") or []
    if not errors:
        return "the name server failed to answer"
    problem = errors[-1][3]
    if isinstance(problem, str):
        return f"the name server answered {problem}"
    return f"the name server failed to answer: {problem}"


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


def _getaddrinfo_within(name: str, timeout: float) -> _AddrInfo:
    """``socket.getaddrinfo`` bounded by ``timeout``. The system resolver has no timeout
    of its own we can set, so it runs in a daemon thread that is left behind if it is
    late (it ends when the system resolver gives up)."""
    host = _ascii(name)
    future: concurrent.futures.Future[_AddrInfo] = concurrent.futures.Future()

    def work() -> None:
        try:
            # Looked up at call time, so a patched getaddrinfo (pinwarden.testing's
            # loopback_names) applies here too.
            future.set_result(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))
        except Exception as exc:  # handed to the caller below
            future.set_exception(exc)

    threading.Thread(target=work, name=f"getaddrinfo {host}", daemon=True).start()
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        raise _timed_out(name, None, timeout) from None
    except socket.gaierror as exc:
        raise _gai_error(name, exc) from None
    except UnicodeError:  # the idna codec refuses empty or over-long labels
        raise _bad_name(name) from None


def _gai_error(name: str, exc: socket.gaierror) -> NetworkError:
    reasons = {
        socket.EAI_NONAME: "no such name",
        socket.EAI_AGAIN: "temporary failure in name resolution (no answer from DNS)",
        socket.EAI_FAIL: "the name server failed (SERVFAIL or REFUSED)",
    }
    # EAI_NODATA ("no address associated with hostname") is glibc's, absent elsewhere.
    nodata = getattr(socket, "EAI_NODATA", None)
    if nodata is not None:
        reasons[nodata] = "no A or AAAA records"
    reason = reasons.get(exc.errno or 0) or exc.strerror or str(exc)
    return NetworkError(f"cannot resolve {name}: {reason}")


def _from_addrinfo(name: str, infos: _AddrInfo) -> list[str]:
    v4 = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET]
    v6 = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET6]
    addresses = _unique(v4 + v6)
    if not addresses:
        raise NetworkError(f"cannot resolve {name}: no A or AAAA records")
    return addresses
