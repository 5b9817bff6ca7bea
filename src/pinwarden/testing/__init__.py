"""The pinwarden test kit: certificate hierarchies, a local TLS server, a local DNS
server, loopback host names and pytest fixtures, for testing pinned clients without a network.

>>> from pinwarden.testing import CA, TLSServer
>>> root = CA()
>>> leaf = root.intermediate().issue("localhost")
>>> with TLSServer(leaf) as server:
...     pass  # point a client at server.url()

See docs/testing.md.
"""

from pinwarden.testing.ca import CA, Issued, KeyType, PrivateKey, generate_key, pem
from pinwarden.testing.dns import DNSServer, ReceivedQuery
from pinwarden.testing.hosts import loopback_names
from pinwarden.testing.server import ReceivedRequest, TLSServer

__all__ = [
    "CA",
    "DNSServer",
    "Issued",
    "KeyType",
    "PrivateKey",
    "ReceivedQuery",
    "ReceivedRequest",
    "TLSServer",
    "generate_key",
    "loopback_names",
    "pem",
]
