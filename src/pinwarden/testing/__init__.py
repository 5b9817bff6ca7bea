"""The pinwarden test kit: certificate hierarchies, a local TLS server, a local DNS
server, loopback host names, CT logs (signing SCTs, and a real log over HTTP with fault
injection) and pytest fixtures, for testing pinned clients without a network.

>>> from pinwarden.testing import CA, TLSServer
>>> root = CA()
>>> leaf = root.intermediate().issue("localhost")
>>> with TLSServer(leaf) as server:
...     pass  # point a client at server.url()

See docs/testing.md.
"""

from pinwarden.testing.ca import CA, Issued, KeyType, PrivateKey, generate_key, pem
from pinwarden.testing.ct import CTIssued, TestLog, issue_with_scts, log_list_of
from pinwarden.testing.ctlog import (
    LocalCTLog,
    LoggedEntry,
    Precertificate,
    TreeHead,
    issue_precertificate,
    local_log_list,
    write_log_list,
)
from pinwarden.testing.dns import DNSServer, ReceivedQuery
from pinwarden.testing.hosts import loopback_names
from pinwarden.testing.postgres import PostgresServer, PostgresUnavailable
from pinwarden.testing.server import ReceivedRequest, TLSServer

__all__ = [
    "CA",
    "CTIssued",
    "DNSServer",
    "Issued",
    "KeyType",
    "LocalCTLog",
    "LoggedEntry",
    "PostgresServer",
    "PostgresUnavailable",
    "Precertificate",
    "PrivateKey",
    "ReceivedQuery",
    "ReceivedRequest",
    "TLSServer",
    "TestLog",
    "TreeHead",
    "generate_key",
    "issue_precertificate",
    "issue_with_scts",
    "local_log_list",
    "log_list_of",
    "loopback_names",
    "pem",
    "write_log_list",
]
