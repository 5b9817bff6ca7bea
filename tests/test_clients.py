"""Every client × every pinning scenario, for real, against local servers.

Each client gets a :func:`pinwarden.create_context` context (or, for requests, the
session of :func:`pinwarden.requests.pinned_session`) and talks to a server of the test
kit on 127.0.0.1: :class:`pinwarden.testing.TLSServer` for the HTTP clients, a real
``websockets`` server for the WebSocket clients. Host names other than ``localhost``
resolve to the loopback interface through :func:`pinwarden.testing.loopback_names`.

* ``test_allowed``: the connection goes through, the server's body comes back, the
  request arrived and no violation was reported.
* ``test_blocked``: the client raises its own error type, a
  :class:`pinwarden.PinValidationError` is in its cause chain, and the server received
  no request at all (the pin check runs before any application byte is sent).
* ``test_report_only``: the connection goes through and ``on_violation`` gets a
  non-blocking :class:`pinwarden.Violation`.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import httpx
import pytest
import requests
import urllib3
import websockets.asyncio.client
import websockets.sync.client
import websockets.sync.server
from websockets.http11 import Request, Response

import pinwarden
from conftest import World
from pinwarden.requests import pinned_session
from pinwarden.testing import Issued, ReceivedRequest, TLSServer, loopback_names

BODY = b"pinned hello from the test server\n"
PATH = "/pinwarden-matrix"
TIMEOUT = 10.0
# Names of the name-based scenarios: all on one leaf, all resolved to 127.0.0.1.
PINNED_NAMES = (
    "pinned.test",
    "api.pinned.test",
    "www.pinned.test",
    "status.pinned.test",
    "a.b.pinned.test",
)
# How long a blocked test waits for a request that should not come: TLSServer handles
# each connection in a daemon thread that nothing can join.
SETTLE_SECONDS = 0.05


# --- servers -------------------------------------------------------------------------


class RecordingServer(Protocol):
    """What a test needs from a server: where it listens and what it received."""

    @property
    def port(self) -> int: ...

    @property
    def requests(self) -> Sequence[ReceivedRequest]: ...


class WebSocketServer:
    """A ``websockets`` (sync) server on 127.0.0.1 serving ``issued`` over TLS. It records
    every opening-handshake request and answers each message with ``BODY``."""

    def __init__(self, issued: Issued) -> None:
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        context = issued.server_context()
        # No TLS 1.3 session tickets: websockets' sync client reads the socket in a
        # background thread while its main thread writes the upgrade request, and
        # OpenSSL processing a NewSessionTicket in SSL_read concurrently with SSL_write
        # loses the request about once in a hundred connections ("timed out while
        # waiting for handshake response", or "[SSL] internal error") — with a plain
        # ssl.create_default_context() just as with a pinned one. Without tickets
        # nothing arrives before the response, so the two never overlap.
        context.num_tickets = 0
        self._server = websockets.sync.server.serve(
            self._handle, "127.0.0.1", 0, ssl=context, process_request=self._record
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.socket.getsockname()[1])

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def _record(
        self, connection: websockets.sync.server.ServerConnection, request: Request
    ) -> Response | None:
        received = ReceivedRequest("GET", request.path, dict(request.headers.raw_items()), b"")
        with self._lock:
            self._requests.append(received)
        return None

    def _handle(self, connection: websockets.sync.server.ServerConnection) -> None:
        for _message in connection:
            connection.send(BODY)

    def __enter__(self) -> WebSocketServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # shutdown() waits for every connection handler, so what was received is final.
        self._server.shutdown()
        self._thread.join(TIMEOUT)


def https_server(issued: Issued) -> TLSServer:
    return TLSServer(issued, response_body=BODY)


# --- clients -------------------------------------------------------------------------

Fetch = Callable[[pinwarden.PinnedSSLContext, str, int], bytes]


def _sync(fetch: Callable[[pinwarden.PinnedSSLContext, str, int], Awaitable[bytes]]) -> Fetch:
    """Run an async client in its own event loop (closed afterwards)."""

    def run(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
        async def main() -> bytes:
            return await fetch(context, host, port)

        return asyncio.run(main())

    return run


def _url(host: str, port: int, scheme: str = "https") -> str:
    return f"{scheme}://{host}:{port}{PATH}"


def fetch_requests(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    with pinned_session(context) as session:
        response = session.get(_url(host, port), timeout=TIMEOUT)
        response.raise_for_status()
        return response.content


def fetch_urllib3(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    with urllib3.PoolManager(ssl_context=context) as pool:
        response = pool.request("GET", _url(host, port), timeout=TIMEOUT)
        assert response.status == 200
        return response.data


def fetch_httpx_sync(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    with httpx.Client(verify=context, timeout=TIMEOUT) as client:
        response = client.get(_url(host, port))
        response.raise_for_status()
        return response.content


async def fetch_httpx_async(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    async with httpx.AsyncClient(verify=context, timeout=TIMEOUT) as client:
        response = await client.get(_url(host, port))
        response.raise_for_status()
        return response.content


async def fetch_aiohttp_request_ssl(
    context: pinwarden.PinnedSSLContext, host: str, port: int
) -> bytes:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(_url(host, port), ssl=context) as response,
    ):
        response.raise_for_status()
        return await response.read()


async def fetch_aiohttp_connector_ssl(
    context: pinwarden.PinnedSSLContext, host: str, port: int
) -> bytes:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        session.get(_url(host, port)) as response,
    ):
        response.raise_for_status()
        return await response.read()


def fetch_urllib(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    with urllib.request.urlopen(_url(host, port), context=context, timeout=TIMEOUT) as response:
        body: bytes = response.read()
        return body


def fetch_http_client(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=TIMEOUT)
    try:
        connection.request("GET", PATH)
        response = connection.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        connection.close()


async def fetch_asyncio_streams(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context), TIMEOUT
    )
    try:
        writer.write(f"GET {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        status, *lines = head.decode("latin-1").split("\r\n")
        assert status.startswith("HTTP/1.1 200 "), status
        headers = dict(line.split(":", 1) for line in lines if line)
        length = int({k.lower(): v for k, v in headers.items()}["content-length"])
        return await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
    finally:
        writer.close()
        await writer.wait_closed()


def fetch_websockets_sync(context: pinwarden.PinnedSSLContext, host: str, port: int) -> bytes:
    with websockets.sync.client.connect(
        _url(host, port, "wss"), ssl=context, open_timeout=TIMEOUT
    ) as ws:
        ws.send("hello")
        reply = ws.recv(timeout=TIMEOUT)
        assert isinstance(reply, bytes)
        return reply


async def fetch_websockets_asyncio(
    context: pinwarden.PinnedSSLContext, host: str, port: int
) -> bytes:
    async with websockets.asyncio.client.connect(
        _url(host, port, "wss"), ssl=context, open_timeout=TIMEOUT
    ) as ws:
        await ws.send("hello")
        reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert isinstance(reply, bytes)
        return reply


@dataclass(frozen=True)
class Client:
    """A client: how it fetches ``BODY``, the error type it raises when the pin check
    fails, and the kind of server it talks to."""

    name: str
    fetch: Fetch
    error: type[BaseException]
    server: Callable[[Issued], AbstractContextManager[RecordingServer]] = https_server


CLIENTS = [
    Client("requests", fetch_requests, requests.exceptions.SSLError),
    Client("urllib3", fetch_urllib3, urllib3.exceptions.MaxRetryError),
    Client("httpx_sync", fetch_httpx_sync, httpx.ConnectError),
    Client("httpx_async", _sync(fetch_httpx_async), httpx.ConnectError),
    Client(
        "aiohttp_request_ssl",
        _sync(fetch_aiohttp_request_ssl),
        aiohttp.ClientConnectorCertificateError,
    ),
    Client(
        "aiohttp_connector_ssl",
        _sync(fetch_aiohttp_connector_ssl),
        aiohttp.ClientConnectorCertificateError,
    ),
    Client("urllib", fetch_urllib, urllib.error.URLError),
    # The standard library's own TLS users raise the ssl error itself.
    Client("http_client", fetch_http_client, ssl.SSLCertVerificationError),
    Client("asyncio_streams", _sync(fetch_asyncio_streams), ssl.SSLCertVerificationError),
    Client("websockets_sync", fetch_websockets_sync, ssl.SSLCertVerificationError, WebSocketServer),
    Client(
        "websockets_asyncio",
        _sync(fetch_websockets_asyncio),
        ssl.SSLCertVerificationError,
        WebSocketServer,
    ),
]


# --- scenarios -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A pin rule (``pins`` plus extra rule keys) and the host a client connects to."""

    id: str
    host: str
    pins: Callable[[World], Sequence[pinwarden.Pin]]
    rule: Mapping[str, Any] = field(default_factory=dict)

    def policy(self, world: World) -> pinwarden.Policy:
        return world.policy(*self.pins(world), **self.rule)

    def served(self, world: World) -> Issued:
        """The leaf the server presents: the world's localhost leaf, or one leaf for
        every name of the name-based scenarios, from the same intermediate."""
        if self.host == "localhost":
            return world.leaf
        return world.intermediate.issue(*PINNED_NAMES)


def _root(w: World) -> Sequence[pinwarden.Pin]:
    return (w.root.pin, w.backup_pin)


def _intermediate(w: World) -> Sequence[pinwarden.Pin]:
    return (w.intermediate.pin, w.backup_pin)


def _leaf(w: World) -> Sequence[pinwarden.Pin]:
    return (w.leaf.pin, w.backup_pin)


def _only_backup_in_chain(w: World) -> Sequence[pinwarden.Pin]:
    # The first pin is of a key in no chain; only the second one, the backup, matches.
    return (w.backup_pin, w.leaf.pin)


def _wrong(w: World) -> Sequence[pinwarden.Pin]:
    # Neither key is in the served chain (the other root is trusted, but not this
    # chain's anchor).
    return (w.backup_pin, w.other_root.pin)


ONE_LABEL = {"hosts": ["*.pinned.test"]}
SUBTREE = {"hosts": ["**.pinned.test"]}
SUBTREE_EXCEPT_STATUS = {"hosts": ["**.pinned.test"], "exclude": ["status.pinned.test"]}

ALLOWED = [
    Case("pin-on-root", "localhost", _root),
    Case("pin-on-intermediate", "localhost", _intermediate),
    Case("pin-on-leaf", "localhost", _leaf),
    Case("only-backup-pin-in-chain", "localhost", _only_backup_in_chain),
    Case("expired-rule-fails-open", "localhost", _wrong, {"expires": "2020-01-01"}),
    Case("one-label-wildcard-matches", "api.pinned.test", _intermediate, ONE_LABEL),
    Case("one-label-wildcard-not-two-deep", "a.b.pinned.test", _wrong, ONE_LABEL),
    Case("subtree-wildcard-matches", "a.b.pinned.test", _root, SUBTREE),
    Case("excluded-subdomain", "status.pinned.test", _wrong, SUBTREE_EXCEPT_STATUS),
]

BLOCKED = [
    Case("wrong-pins", "localhost", _wrong),
    Case("one-label-wildcard-wrong-pins", "api.pinned.test", _wrong, ONE_LABEL),
    Case("subtree-wildcard-base-name", "pinned.test", _wrong, SUBTREE),
    Case("subtree-wildcard-two-deep", "a.b.pinned.test", _wrong, SUBTREE),
    Case("sibling-of-excluded-subdomain", "www.pinned.test", _wrong, SUBTREE_EXCEPT_STATUS),
]

REPORT_ONLY = Case("report-only-wrong-pins", "localhost", _wrong, {"mode": "report-only"})


# --- helpers -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's proxy variables out of the clients: no request may leave
    through a proxy. (CA-bundle variables stay: the pinned session ignores them.)"""
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: ``__cause__``, ``__context__``, exceptions
    among its ``args`` (URLError, aiohttp's certificate error), ``reason`` (urllib3's
    MaxRetryError) and ``exceptions`` (exception groups)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped: list[object] = [current.__cause__, current.__context__, *current.args]
        wrapped.append(getattr(current, "reason", None))
        wrapped.extend(getattr(current, "exceptions", ()))
        stack.extend(e for e in wrapped if isinstance(e, BaseException))


def pin_error_in(exc: BaseException) -> pinwarden.PinValidationError:
    found = [e for e in causes(exc) if isinstance(e, pinwarden.PinValidationError)]
    assert found, f"no PinValidationError in the cause chain of {exc!r}"
    return found[0]


def matrix(cases: Sequence[Case]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        ("client", "case"),
        [
            pytest.param(client, case, id=f"{client.name}-{case.id}")
            for client in CLIENTS
            for case in cases
        ],
    )


# --- the matrix ----------------------------------------------------------------------


@matrix(ALLOWED)
def test_allowed(
    client: Client, case: Case, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    violations: list[pinwarden.Violation] = []
    context = world.context(case.policy(world), on_violation=violations.append)
    caplog.set_level(logging.WARNING, logger="pinwarden")
    with loopback_names(["localhost", *PINNED_NAMES]), client.server(case.served(world)) as server:
        body = client.fetch(context, case.host, server.port)
        assert body == BODY
        assert [r.path for r in server.requests] == [PATH]
    assert violations == []
    expired_warnings = [r for r in caplog.records if "expired" in r.getMessage()]
    if "expires" in case.rule:
        # Fails open, but says so.
        assert expired_warnings, "an expired rule that is not enforced must log a warning"
    else:
        assert expired_warnings == []


@matrix(BLOCKED)
def test_blocked(client: Client, case: Case, world: World) -> None:
    violations: list[pinwarden.Violation] = []
    context = world.context(case.policy(world), on_violation=violations.append)
    with loopback_names(["localhost", *PINNED_NAMES]), client.server(case.served(world)) as server:
        with pytest.raises(client.error) as raised:
            client.fetch(context, case.host, server.port)
        time.sleep(SETTLE_SECONDS)
    assert server.requests == [], "a request reached the server before the pin check"
    error = pin_error_in(raised.value)
    assert error.verdict is not None
    assert error.verdict.outcome is pinwarden.Outcome.MISMATCH
    assert error.verdict.hostname == case.host
    assert violations, "on_violation was not called"
    assert all(v.blocked and v.verdict.hostname == case.host for v in violations)


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: f"{c.name}-{REPORT_ONLY.id}")
def test_report_only(client: Client, world: World) -> None:
    case = REPORT_ONLY
    violations: list[pinwarden.Violation] = []
    context = world.context(case.policy(world), on_violation=violations.append)
    with loopback_names(["localhost", *PINNED_NAMES]), client.server(case.served(world)) as server:
        body = client.fetch(context, case.host, server.port)
        assert body == BODY
        assert [r.path for r in server.requests] == [PATH]
    assert len(violations) == 1
    (violation,) = violations
    assert isinstance(violation, pinwarden.Violation)
    assert violation.blocked is False
    assert violation.verdict.outcome is pinwarden.Outcome.MISMATCH
    assert violation.verdict.hostname == "localhost"
    assert violation.report["mode"] == "report-only"
