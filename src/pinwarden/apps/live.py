"""Handshakes with every address of live endpoints, concurrently and bounded.

Load balancers and CDNs may serve different chains from different addresses of one
name, so a name is checked at each of its A and AAAA addresses, with its own SNI.
A name that does not resolve or an address that does not answer is reported as such
(the caller turns it into "unknown"), never skipped.
"""

from __future__ import annotations

import concurrent.futures
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pinwarden.certs import CertInfo
from pinwarden.errors import CertificateError, NetworkError
from pinwarden.probe import probe
from pinwarden.resolve import resolve_addresses

__all__ = ["AddressResult", "Endpoint", "probe_endpoints"]


@dataclass(frozen=True)
class Endpoint:
    """A name (sent in SNI and verified) and a port."""

    host: str
    port: int = 443

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class AddressResult:
    """What one address of an endpoint served. ``network_error`` is set when the name did
    not resolve (``address`` is then empty) or no handshake completed; otherwise
    ``verified_chain`` is the chain OpenSSL verified, or None with
    ``verification_error`` when the served chain did not verify."""

    endpoint: Endpoint
    address: str
    verified_chain: tuple[CertInfo, ...] | None = None
    served_chain: tuple[CertInfo, ...] = ()
    verification_error: str | None = None
    network_error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.network_error is None


def _probe_address(
    endpoint: Endpoint, address: str, cafile: str | None, cadata: str | None, timeout: float
) -> AddressResult:
    try:
        result = probe(
            endpoint.host,
            endpoint.port,
            servername=endpoint.host,
            connect=address,
            cafile=cafile,
            cadata=cadata,
            timeout=timeout,
        )
    except NetworkError as exc:
        return AddressResult(endpoint, address, network_error=str(exc))
    verified = tuple(result.verified_chain) if result.verified_chain is not None else None
    return AddressResult(
        endpoint,
        address,
        verified_chain=verified,
        served_chain=tuple(result.served_chain),
        verification_error=result.verification_error,
    )


def probe_endpoints(
    endpoints: Sequence[Endpoint],
    *,
    nameserver: str | None = None,
    cafile: str | None = None,
    cadata: str | None = None,
    timeout: float = 10.0,
    concurrency: int = 16,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[AddressResult]:
    """Resolve every endpoint (through ``nameserver``, or the system resolver) and
    handshake with each of its addresses, at most ``concurrency`` at a time.
    ``on_progress(done, total)`` is called as results arrive. Results are ordered by
    endpoint, then address. A bad ``cafile`` raises CertificateError before any work."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    endpoints = list(dict.fromkeys(endpoints))
    if cafile is not None or cadata is not None:
        _check_trust(cafile, cadata)
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        resolved = list(
            pool.map(lambda e: _resolve(e, nameserver, timeout), endpoints)  # keeps order
        )
        jobs: list[tuple[Endpoint, str]] = []
        results: dict[tuple[int, int], AddressResult] = {}
        for n, (endpoint, addresses) in enumerate(zip(endpoints, resolved, strict=True)):
            if isinstance(addresses, str):
                results[(n, 0)] = AddressResult(endpoint, "", network_error=addresses)
                continue
            jobs.extend((endpoint, a) for a in addresses)
        total = len(jobs) + len(results)
        done = len(results)
        if on_progress is not None:
            on_progress(done, total)
        futures = {}
        positions: dict[Endpoint, int] = {e: n for n, e in enumerate(endpoints)}
        counters: dict[Endpoint, int] = {}
        for endpoint, address in jobs:
            slot = counters.get(endpoint, 0)
            counters[endpoint] = slot + 1
            future = pool.submit(_probe_address, endpoint, address, cafile, cadata, timeout)
            futures[future] = (positions[endpoint], slot)
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
            done += 1
            if on_progress is not None:
                on_progress(done, total)
    return [results[key] for key in sorted(results)]


def _resolve(endpoint: Endpoint, nameserver: str | None, timeout: float) -> list[str] | str:
    try:
        return resolve_addresses(endpoint.host, nameserver=nameserver, timeout=timeout)
    except NetworkError as exc:
        return str(exc)


def _check_trust(cafile: str | None, cadata: str | None) -> None:
    try:
        ssl.create_default_context(cafile=cafile, cadata=cadata)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(f"cannot load CA certificates {cafile or ''}: {exc}") from None
