"""Serving on the loopback interface from a daemon thread, and being a context manager: the
parts the test kit's servers (TLS, DNS, the local CT log, PostgreSQL) share, kept apart
so that each server module holds only what it answers."""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["Running", "ServingThread", "bind", "is_loopback"]

_Server = TypeVar("_Server", bound=socketserver.BaseServer)
_Running = TypeVar("_Running", bound="Running")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(server_class: type[_Server], host: str, port: int, handler: Any) -> _Server:
    """A ``server_class`` bound to ``(host, port)``, IPv6 when ``host`` is an IPv6 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound: type[_Server] = type("_Server", (server_class,), {"address_family": family})
    return bound((host, port), handler, bind_and_activate=True)  # type: ignore[call-arg]


class ServingThread:
    """``server.serve_forever`` in a daemon thread, started and stopped on demand."""

    def __init__(self, server: socketserver.BaseServer, poll_interval: float = 0.05) -> None:
        self.server = server
        self._poll_interval = poll_interval
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.server.serve_forever,
                kwargs={"poll_interval": self._poll_interval},
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving (when started) and close the listening socket."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server.server_close()


class Running:
    """A server used as a context manager: :meth:`start` on entering, :meth:`stop` on
    leaving."""

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Running) -> _Running:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
