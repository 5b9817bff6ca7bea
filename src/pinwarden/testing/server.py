"""A threaded HTTPS server on the loopback interface that serves a chosen chain."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from pinwarden.testing._loopback import Running, ServingThread, bind, is_loopback
from pinwarden.testing.ca import Issued

__all__ = ["ReceivedRequest", "TLSServer"]


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the server read completely (method, path, headers, body)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        owner._record(ReceivedRequest(self.command, self.path, dict(self.headers.items()), body))
        payload = owner.response_body
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer
    do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: TLSServer

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs here, in the connection's own thread, so a client that
        # aborts (as a pinned client does on a mismatch) never stalls the accept loop.
        request.settimeout(10)
        context = self.owner._context
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.owner._count("failed_handshakes")
            return
        self.owner._count("handshakes")
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class TLSServer(Running):
    """An HTTPS/1.1 server on 127.0.0.1 (or another loopback address: ``host``) serving
    ``issued``'s chain, answering every GET, POST or PUT with 200 and ``response_body``,
    and recording what it received.

    Use as a context manager, or :meth:`start` / :meth:`stop`. :meth:`serve` switches the
    chain (and the ``extra`` certificates appended to it) while running.
    """

    def __init__(
        self,
        issued: Issued,
        *,
        extra: Sequence[x509.Certificate | bytes] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        maximum_version: ssl.TLSVersion | None = None,
        response_body: bytes = b"hello from the pinwarden test server\n",
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the test server only listens on loopback, not {host!r}")
        self.host = host
        self.response_body = response_body
        self._maximum_version = maximum_version
        self._lock = threading.Lock()
        self.requests: list[ReceivedRequest] = []
        self.handshakes = 0
        self.failed_handshakes = 0
        self.serve(issued, extra=extra)
        self._httpd = bind(_HTTPServer, host, port, _Handler)
        self._httpd.owner = self
        self._serving = ServingThread(self._httpd)

    def serve(self, issued: Issued, *, extra: Sequence[x509.Certificate | bytes] = ()) -> None:
        """Serve another chain from now on (new connections only)."""
        self.issued = issued
        self._context = issued.server_context(extra=extra, maximum_version=self._maximum_version)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def url(self, hostname: str = "localhost", path: str = "/") -> str:
        """``https://hostname:port/path`` — pick a name the certificate covers."""
        return f"https://{hostname}:{self.port}{path}"

    def start(self) -> TLSServer:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop()

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
