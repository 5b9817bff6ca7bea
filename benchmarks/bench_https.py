"""HTTPS requests on a new TLS connection each, pinned context vs plain context.

Both sides of a pair use the same client library configured the same way, the same
trust anchor (the bench root only), the same server and the same request; the only
difference is the :class:`ssl.SSLContext`: :func:`pinwarden.create_context` vs
:func:`ssl.create_default_context`. Every request opens, uses and closes its own
connection (``Connection: close`` and no keep-alive pool), and the server's handshake
counter is checked after every batch to prove it.
"""

from __future__ import annotations

import gc
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter

import pinwarden
import pinwarden.requests
from bench_pki import HOSTNAME, BenchPKI, ServerProcess

__all__ = [
    "Client",
    "PairSamples",
    "PlainAdapter",
    "check_setup",
    "httpx_client",
    "measure",
    "requests_client",
]

Request = Callable[[], None]
_CLOSE = {"Connection": "close"}
_BODY = b"hello from the pinwarden test server\n"


class BenchmarkError(RuntimeError):
    """The set-up is not measuring what it claims to (reuse, failures, no pinning)."""


@dataclass
class Client:
    """One client library, with a request function per side and how to clean up."""

    name: str
    label: str
    pinned: Request
    plain: Request
    close: Callable[[], None]


@dataclass
class PairSamples:
    """Per-request seconds, one list per round and side."""

    pinned: list[list[float]] = field(default_factory=list)
    plain: list[list[float]] = field(default_factory=list)


def _expect_ok(response: httpx.Response | requests.Response) -> None:
    """Both sides check the answer the same way (and read the whole body)."""
    if response.status_code != 200 or response.content != _BODY:
        raise BenchmarkError(f"unexpected answer: {response.status_code} {response.content[:60]!r}")


def httpx_client(url: str, pinned_context: ssl.SSLContext, plain_context: ssl.SSLContext) -> Client:
    """httpx's sync client; no keep-alive pool and ``Connection: close`` (h11 then closes
    the connection after the response), so every request makes a new connection."""

    def make(context: ssl.SSLContext) -> tuple[httpx.Client, Request]:
        client = httpx.Client(
            verify=context,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

        def request() -> None:
            response = client.get(url, headers=_CLOSE)
            _expect_ok(response)

        return client, request

    pinned_client, pinned = make(pinned_context)
    plain_client, plain = make(plain_context)

    def close() -> None:
        pinned_client.close()
        plain_client.close()

    return Client("httpx", "httpx GET, new TLS connection", pinned, plain, close)


class PlainAdapter(HTTPAdapter):
    """An unpinned :class:`~requests.adapters.HTTPAdapter` whose pools use ``context``,
    configured like :class:`pinwarden.requests.PinnedAdapter`: without the
    ``cert_verify`` override requests would make urllib3 load certifi's bundle into the
    context on every connection, which would slow the plain side down (flattering the
    ratio) and trust other anchors than the pinned side."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self.context = context
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self.context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, False, cert)  # type: ignore[no-untyped-call]
        if url.lower().startswith("https"):
            conn.cert_reqs = "CERT_REQUIRED"


def requests_client(url: str, pki: BenchPKI, plain_context: ssl.SSLContext) -> Client:
    """requests: :func:`pinwarden.requests.pinned_session` vs a session mounting
    :class:`PlainAdapter`. After each request the session's pools are closed (and the
    request says ``Connection: close``), so the next request makes a new connection."""
    pinned_session = pinwarden.requests.pinned_session(pki.policy(), cadata=pki.cadata)
    plain_session = requests.Session()
    plain_session.mount("https://", PlainAdapter(plain_context))

    def make(session: requests.Session) -> Request:
        session.trust_env = False  # no proxies or CA bundles from the environment

        def request() -> None:
            response = session.get(url, headers=_CLOSE)
            _expect_ok(response)
            session.close()

        return request

    def close() -> None:
        pinned_session.close()
        plain_session.close()

    return Client(
        "requests",
        "requests GET, new TLS connection",
        make(pinned_session),
        make(plain_session),
        close,
    )


def _tls_facts(context: ssl.SSLContext, address: tuple[str, int]) -> dict[str, Any]:
    with (
        socket.create_connection(address, timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=HOSTNAME) as tls,
    ):
        cipher = tls.cipher()
        facts: dict[str, Any] = {
            "version": tls.version(),
            "cipher": cipher[0] if cipher else None,
            "context_class": type(context).__name__,
        }
        verdict = getattr(tls, "pin_verdict", None)
        if verdict is not None:
            facts["pin_outcome"] = verdict.outcome.value
            facts["pin_position"] = verdict.matched_position
    return facts


def _chain_of(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        todo.extend(e for e in linked if isinstance(e, BaseException))


def _refused_by_pins(request: Request) -> bool:
    try:
        request()
    except Exception as exc:
        return any(
            isinstance(e, pinwarden.PinValidationError) or "pin check failed" in str(e)
            for e in _chain_of(exc)
        )
    return False


def check_setup(
    pki: BenchPKI,
    server: ServerProcess,
    pinned_context: ssl.SSLContext,
    plain_context: ssl.SSLContext,
) -> dict[str, Any]:
    """Prove that the comparison is fair and the pinned side really pins: both contexts
    negotiate the same protocol and cipher, the pinned one matches the intermediate,
    and a policy with wrong pins is refused through every client library."""
    pinned = _tls_facts(pinned_context, server.address)
    plain = _tls_facts(plain_context, server.address)
    if (pinned["version"], pinned["cipher"]) != (plain["version"], plain["cipher"]):
        raise BenchmarkError(f"the two sides negotiate differently: {pinned} vs {plain}")
    if pinned.get("pin_outcome") != pinwarden.Outcome.MATCHED.value:
        raise BenchmarkError(f"the pinned context did not match its pin: {pinned}")
    wrong = pinwarden.create_context(pki.wrong_policy(), cadata=pki.cadata, send_reports=False)
    url = server.url()
    with httpx.Client(verify=wrong, trust_env=False) as wrong_httpx:
        httpx_refused = _refused_by_pins(lambda: _expect_ok(wrong_httpx.get(url)))
    with pinwarden.requests.pinned_session(wrong) as wrong_requests:
        wrong_requests.trust_env = False
        requests_refused = _refused_by_pins(lambda: _expect_ok(wrong_requests.get(url)))
    refused = {"httpx": httpx_refused, "requests": requests_refused}
    if not all(refused.values()):
        raise BenchmarkError(f"a wrong pin was not refused: {refused}")
    return {"pinned": pinned, "plain": plain, "wrong_pin_refused": refused}


def _interleaved(client: Client, pairs: int, first: int) -> tuple[list[float], list[float]]:
    """``pairs`` pinned and ``pairs`` plain requests, alternating one by one (ABBA: the
    side that goes first alternates from pair to pair), timed one by one."""
    clock = time.perf_counter
    sides = (client.pinned, client.plain)
    times: tuple[list[float], list[float]] = ([], [])
    for number in range(pairs):
        for side in (0, 1) if (number + first) % 2 == 0 else (1, 0):
            request = sides[side]
            start = clock()
            request()
            times[side].append(clock() - start)
    return times


def measure(
    clients: list[Client],
    server: ServerProcess,
    *,
    rounds: int,
    batch: int,
    warmup: int,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, PairSamples]:
    """Rounds of ``batch`` pinned and ``batch`` plain requests per client, interleaved
    request by request (ABBA), so that load from anything else on the machine hits both
    sides alike. The server's handshake counter is checked after every round."""
    for client in clients:
        _interleaved(client, warmup, 0)
    samples = {client.name: PairSamples() for client in clients}
    for number in range(rounds):
        for client in clients:
            before, failed_before = server.handshakes()
            gc.collect()
            pinned, plain = _interleaved(client, batch, number)
            after, failed_after = server.handshakes()
            if after - before != 2 * batch or failed_after != failed_before:
                raise BenchmarkError(
                    f"{client.name}: {2 * batch} requests made {after - before} handshakes "
                    f"({failed_after - failed_before} failed): connections were reused or failed"
                )
            samples[client.name].pinned.append(pinned)
            samples[client.name].plain.append(plain)
        progress(f"round {number + 1}/{rounds}")
    return samples
