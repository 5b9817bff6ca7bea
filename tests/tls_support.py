"""Helpers for socket-level TLS tests: raw HTTP over an SSLSocket, and an in-memory
TLS handshake between two SSLObjects (real OpenSSL on both ends, no socket)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pinwarden.testing import Issued, TLSServer
from pinwarden.tls import PinnedSSLObject, PinnedSSLSocket
from pinwarden.verify import Verdict

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def connect(
    context: ssl.SSLContext,
    server: TLSServer,
    hostname: str = "localhost",
    **wrap: object,
) -> ssl.SSLSocket:
    sock = socket.create_connection(server.address, timeout=10)
    try:
        return context.wrap_socket(sock, server_hostname=hostname, **wrap)  # type: ignore[arg-type]
    except BaseException:
        sock.close()
        raise


def verdict(conn: ssl.SSLSocket | ssl.SSLObject) -> Verdict:
    """The pin verdict a pinned connection recorded at its handshake."""
    assert isinstance(conn, (PinnedSSLSocket, PinnedSSLObject))
    result = conn.pin_verdict
    assert result is not None, "the connection was not checked"
    return result


def get(tls: ssl.SSLSocket) -> bytes:
    """Send one request and read the whole response (the server closes after it)."""
    tls.sendall(REQUEST)
    data = b""
    while chunk := tls.recv(65536):
        data += chunk
    return data


def memory_handshake(
    client_context: ssl.SSLContext,
    server_context: ssl.SSLContext,
    hostname: str = "localhost",
    session: ssl.SSLSession | None = None,
    created: list[ssl.SSLObject] | None = None,
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake between a client and a server SSLObject through memory
    BIOs, the way asyncio and anyio drive OpenSSL. Raises what the client raises;
    ``created`` receives the client object either way."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(c_in, c_out, server_hostname=hostname, session=session)
    if created is not None:
        created.append(client)
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    client_done = server_done = False
    for _ in range(20):
        if not client_done:
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        if not server_done:
            try:
                server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
        c_in.write(s_out.read())
        if client_done and server_done:
            return client, server
    raise AssertionError("in-memory handshake did not finish")


@contextlib.contextmanager
def two_addresses(first: Issued, second: Issued) -> Iterator[int]:
    """``first`` served on 127.0.0.1 and ``second`` on 127.0.0.2, on one port: one name,
    two addresses, two chains — what a load balancer or CDN can do."""
    for _ in range(10):
        one = TLSServer(first)
        try:
            two = TLSServer(second, host="127.0.0.2", port=one.port)
        except OSError:  # that port is taken on 127.0.0.2: try another
            one.stop()
            continue
        with one, two:
            yield one.port
        return
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PeakCounter:
    """Wraps ``func`` (slowed by ``delay`` seconds) to record the most calls that ran at
    once, in ``peak``: how concurrency bounds are tested."""

    def __init__(self, func: Callable[..., Any], delay: float) -> None:
        self.func = func
        self.delay = delay
        self.peak = 0
        self._running = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._running += 1
            self.peak = max(self.peak, self._running)
        try:
            time.sleep(self.delay)
            return self.func(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1
