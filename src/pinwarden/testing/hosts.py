"""Make test host names resolve to the loopback interface, without touching /etc/hosts.

Name-based pin rules (``*.example.com``, ``**.example.com``, exempted subdomains) need
clients to connect to names other than ``localhost``. :func:`loopback_names` answers
``getaddrinfo`` for the given names (and only those) with 127.0.0.1, in this process,
for every client that resolves through the socket module: requests, urllib3, httpx,
aiohttp's default resolver, asyncio, websockets, urllib and http.client.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["loopback_names"]

_lock = threading.Lock()
_names: dict[str, int] = {}
_original = socket.getaddrinfo


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and name.lower().rstrip(".") in _names:
        host = "127.0.0.1"
    return _original(host, port, *args, **kwargs)


@contextlib.contextmanager
def loopback_names(names: Iterable[str]) -> Iterator[None]:
    """Within the block, ``names`` resolve to 127.0.0.1. Nests and is thread-safe."""
    wanted = [n.lower().rstrip(".") for n in names]
    with _lock:
        for name in wanted:
            _names[name] = _names.get(name, 0) + 1
        socket.getaddrinfo = _getaddrinfo
    try:
        yield
    finally:
        with _lock:
            for name in wanted:
                _names[name] -= 1
                if not _names[name]:
                    del _names[name]
            if not _names:
                socket.getaddrinfo = _original
