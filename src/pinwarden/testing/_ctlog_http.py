"""The local CT log's HTTP side: the request handler (body limits, transport faults,
gzip) and the threaded server, plus the small request and response types its answers
use. Separate from the log so that HTTP framing and what the log answers stay apart."""

from __future__ import annotations

import gzip
import http.server
import re
import socketserver
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinwarden.testing.ctlog import LocalCTLog

__all__ = ["BadRequest", "HTTPServer", "Handler", "Response", "int_param", "param"]

_MAX_BODY = 1 << 20  # bytes of an add-chain request we are willing to read


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def param(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values or len(values) != 1:
        raise BadRequest(400, f"need exactly one {name} parameter")
    return values[0]


def int_param(query: dict[str, list[str]], name: str) -> int:
    text = param(query, name)
    # Plain decimal only: int() would also take "+5", " 5" and "1_0".
    if not re.fullmatch(r"\d{1,19}", text):
        raise BadRequest(400, f"{name} is not a non-negative integer: {text[:40]!r}")
    return int(text)


def _accepts_gzip(header: str | None) -> bool:
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower().removeprefix("q=")
            return quality == "" or not re.fullmatch(r"0(\.0*)?", quality)
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPServer
    timeout = 30  # an idle keep-alive connection ends its thread after this
    # Headers and body go out in two writes: with Nagle's algorithm and the client's
    # delayed ACK, every keep-alive request would wait 40 ms for the second.
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        owner = self.server.owner
        owner._record(self.path)
        body = b""
        if self.command == "POST":
            length = self.headers.get("Content-Length") or ""
            if not length.isdigit() or int(length) > _MAX_BODY:
                self.close_connection = True
                self._send(Response(413, b"need a Content-Length up to 1 MiB\n"), gzip_ok=False)
                return
            body = self.rfile.read(int(length))
        fault = owner._transport_fault(self.path)
        if fault is not None:
            if fault.delay and owner._stopping.wait(fault.delay):
                self.close_connection = True
                return
            if fault.action == "drop":
                self.close_connection = True  # handle() ends and the socket is closed
                return
            if fault.action == "rate-limit":
                headers = (("Retry-After", str(fault.retry_after)),)
                response = Response(429, b"rate limited\n", "text/plain", headers)
                self._send(response, gzip_ok=False)
                return
        response = owner._respond(self.command, self.path, body)
        self._send(
            response,
            gzip_ok=owner.gzip == "always"
            or (owner.gzip == "accepted" and _accepts_gzip(self.headers.get("Accept-Encoding"))),
        )

    do_GET = _answer
    do_POST = _answer
    do_PUT = _answer
    do_DELETE = _answer

    def _send(self, response: Response, *, gzip_ok: bool) -> None:
        body = response.body
        compressed = gzip_ok and response.status == 200 and bool(body)
        if compressed:
            body = gzip.compress(body, compresslevel=1, mtime=0)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        if compressed:
            self.send_header("Content-Encoding", "gzip")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


class HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalCTLog

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away is its business; anything else is a bug in this log
        # and gets socketserver's traceback on stderr.
        if not isinstance(sys.exc_info()[1], OSError):
            socketserver.BaseServer.handle_error(self, request, client_address)
