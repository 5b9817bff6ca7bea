"""A real Certificate Transparency log on the loopback interface, for testing CT clients
and monitors: a Merkle tree of certificates and precertificates the test kit issues, real
signatures, served over HTTP as RFC 6962 (``/ct/v1/...``) or static-ct-api (checkpoint,
tiles, data tiles, issuers), with faults switched on and off while it runs.

>>> from pinwarden.testing import LocalCTLog
>>> with LocalCTLog("static") as log:
...     log.grow(300)
...     log.publish()  # a log serves its last signed tree head, not its live size
...     # point a client at log.url; trust log.log (or log.write_log_list(path))

Everything here is written from the specifications (RFC 6962 sections 2.1 and 3-4,
https://c2sp.org/static-ct-api, https://c2sp.org/tlog-tiles, https://c2sp.org/signed-note)
independently of the verifying side in :mod:`pinwarden.ct`, so that each side tests the
other: the tree and its proofs follow RFC 6962's recursive definitions (MTH, PATH,
SUBPROOF) where the verifiers follow RFC 9162's iterative algorithms.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509

from pinwarden.ct._wire import vector
from pinwarden.ct.logs import Log, LogList, LogState
from pinwarden.ct.sct import SignedEntryType
from pinwarden.testing._ctlog_answers import Answers
from pinwarden.testing._ctlog_core import LogCore, LoggedEntry, TreeHead
from pinwarden.testing._ctlog_faults import Active, CTFault, Hit, check_fault, transport_hit
from pinwarden.testing._ctlog_http import Handler, HTTPServer, Response
from pinwarden.testing._ctlog_tree import Entry, Tree, leaf_hash
from pinwarden.testing._ctlog_wire import NOTE_TYPE_RFC6962, CTApi, utc_now
from pinwarden.testing._ctlog_wire import TILE_WIDTH as TILE_WIDTH
from pinwarden.testing._loopback import Running, ServingThread, bind, is_loopback
from pinwarden.testing._precert import Precertificate, der_of, issue_precertificate
from pinwarden.testing.ca import CA

__all__ = [
    "CTFault",
    "LocalCTLog",
    "LoggedEntry",
    "Precertificate",
    "TreeHead",
    "issue_precertificate",
    "local_log_list",
    "write_log_list",
]

GzipMode = Literal["never", "accepted", "always"]


# -- the log -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    """What the log serves: a tree and its published head (the honest one, or a fork)."""

    tree: Tree
    head: TreeHead


class LocalCTLog(LogCore, Running):
    """A CT log on 127.0.0.1 (HTTP, an ephemeral port) speaking ``api`` ``"rfc6962"``
    (``/ct/v1/get-sth`` ...) or ``"static"`` (static-ct-api: ``/checkpoint``,
    ``/tile/...``, ``/issuer/...``); both take submissions (``add-chain``,
    ``add-pre-chain``, ``get-roots``). It signs with a new ``key_type`` key
    (``"ec-p256"`` or ``"rsa-2048"``), accepts chains to ``ca``'s root (and ``roots``),
    and issues from ``ca`` in :meth:`issue` and :meth:`grow` (a new root and
    intermediate when ``ca`` is None).

    Entries are added at once (the live tree) but served only once :meth:`publish` signs
    a tree head covering them, as a real log serves its last STH. ``get-entries`` returns
    at most ``max_batch`` entries. ``gzip`` compresses responses: ``"accepted"`` when the
    client's Accept-Encoding allows it, ``"always"`` even when not asked (static-ct-api
    allows that), ``"never"``. ``clock`` replaces the current time (aware datetimes).

    Use as a context manager, or :meth:`start` / :meth:`stop`. Every request's path is
    appended to ``requests``; :meth:`inject` and :meth:`heal` switch faults at runtime.
    """

    def __init__(
        self,
        api: CTApi = "rfc6962",
        *,
        key_type: Literal["ec-p256", "rsa-2048"] = "ec-p256",
        ca: CA | None = None,
        roots: Sequence[x509.Certificate] = (),
        name: str | None = None,
        operator: str = "pinwarden test operator",
        mmd: int = 86400,
        state: LogState | None = LogState.USABLE,
        state_since: dt.datetime | None = None,
        temporal_interval: tuple[dt.datetime, dt.datetime] | None = None,
        max_batch: int = 256,
        gzip: GzipMode = "accepted",
        prefix: str = "/",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if api not in get_args(CTApi):
            raise ValueError(f"unknown CT API {api!r}; one of {', '.join(get_args(CTApi))}")
        if key_type not in ("ec-p256", "rsa-2048"):
            raise ValueError(f"a CT log key is ec-p256 or rsa-2048, not {key_type!r}")
        if not is_loopback(host):
            raise ValueError(f"the test CT log only listens on loopback, not {host!r}")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if gzip not in get_args(GzipMode):
            raise ValueError(f"gzip must be one of {', '.join(get_args(GzipMode))}")
        clock = clock or utc_now
        # Before the first tree head: a test clock is read in the same order as ever.
        self.state_since = state_since or (clock() - dt.timedelta(days=30))
        super().__init__(api, key_type, ca, roots, clock)
        self.name = name or f"pinwarden local {api} CT log"
        self.operator = operator
        self.mmd = mmd
        self.state = state
        self.max_batch = max_batch
        self.gzip: GzipMode = gzip
        self.temporal_interval = temporal_interval
        self.prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        self.host = host
        self.requests: list[str] = []
        """The path (with query) of every request received, in order."""

        self._stopping = threading.Event()
        self._fork: _View | None = None
        self._faults: dict[str, Active] = {}

        self._answers = Answers(self)
        self._httpd = bind(HTTPServer, host, port, Handler)
        self._httpd.owner = self
        self._serving = ServingThread(self._httpd)

    # -- identity ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The log's base URL (submission and monitoring prefix), ending in ``/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    @property
    def origin(self) -> str:
        """The checkpoint origin and note key name: the submission prefix without the
        scheme and trailing slash (static-ct-api), e.g. ``127.0.0.1:8080``."""
        return self.url.removeprefix("http://").rstrip("/")

    @property
    def note_key_id(self) -> bytes:
        """static-ct-api: SHA-256(origin || 0x0A || 0x05 || LogID)[:4]."""
        data = self.origin.encode() + b"\n" + NOTE_TYPE_RFC6962 + self.log_id
        return hashlib.sha256(data).digest()[:4]

    @property
    def log(self) -> Log:
        """This log as a log list describes it."""
        tiled = self.api == "static"
        return Log(
            description=self.name,
            log_id=self.log_id,
            key=self.key_der,
            operator=self.operator,
            mmd=self.mmd,
            state=self.state,
            state_since=self.state_since if self.state is not None else None,
            url=None if tiled else self.url,
            submission_url=self.url if tiled else None,
            monitoring_url=self.url if tiled else None,
            tiled=tiled,
            temporal_interval=self.temporal_interval,
        )

    def log_list(self) -> LogList:
        return local_log_list(self)

    def write_log_list(self, path: str | Path) -> Path:
        return write_log_list(path, self)

    # -- faults ----------------------------------------------------------------------------

    @property
    def faults(self) -> frozenset[str]:
        """The names of the faults switched on."""
        with self._lock:
            return frozenset(self._faults)

    def inject(
        self,
        fault: CTFault,
        *,
        count: int | None = None,
        retry_after: int = 1,
        delay: float = 1.0,
        only: str | None = None,
        index: int = 0,
        extra: int = 0,
    ) -> None:
        """Switch a fault on, until :meth:`heal`:

        * ``bad-sth-signature``: tree heads (get-sth, checkpoint) carry a signature that
          does not verify (a real signature over another root).
        * ``wrong-root``: tree heads, validly signed, whose root is not the entries' root.
        * ``fork``: from now on serve another tree: the published entries with entry
          ``index`` replaced by another certificate, plus ``extra`` more entries, under a
          validly signed head of the same (or, with ``extra``, bigger) size. Entries,
          proofs and tiles all come from the fork, so only consistency with an earlier
          head shows it.
        * ``truncated-entries``: the first entry of each get-entries answer has its
          leaf_input cut in half; data tiles are cut in the middle.
        * ``malformed-entries``: the first entry of each get-entries answer or data tile
          has an invalid version / entry_type.
        * ``rate-limit``: answer 429 with ``Retry-After: retry_after``.
        * ``slow``: wait ``delay`` seconds before answering.
        * ``drop``: close the connection without an answer.

        The last three apply to the next ``count`` requests (default: every request until
        healed) whose path, relative to the log's URL, starts with ``only`` (e.g.
        ``"ct/v1/get-entries"`` or ``"tile/data/"``).
        """
        check_fault(fault, count, retry_after, delay, only)
        with self._lock:
            if fault == "fork":
                self._fork = self._make_fork(index, extra)
            self._faults[fault] = Active(count, retry_after, delay, only)

    def heal(self, fault: CTFault | None = None) -> None:
        """Switch ``fault`` off (every fault when None); a fork ends: the honest tree again."""
        with self._lock:
            if fault is None:
                self._faults.clear()
            else:
                self._faults.pop(fault, None)
            if "fork" not in self._faults:
                self._fork = None

    def _make_fork(self, index: int, extra: int) -> _View:
        """The lock is held."""
        size = self._head.size
        if not 0 <= index < size:
            raise ValueError(f"cannot fork at entry {index} of a published tree of size {size}")
        if extra < 0:
            raise ValueError("extra must not be negative")
        chain = tuple(der_of(c) for c in (*self.ca.chain, self.ca.root.cert))
        cert = self.ca.issue(f"fork{index}.pinwarden.test").cert
        entry, digest = self._detached_entry(index, der_of(cert), chain)
        fork = self._tree.forked(size, index, entry, digest)
        for offset in range(extra):
            cert = self.ca.issue(f"fork{size + offset}.pinwarden.test").cert
            fork.append(*self._detached_entry(size + offset, der_of(cert), chain))
        return _View(fork, self._new_head(fork, fork.size))

    def _detached_entry(
        self, index: int, der: bytes, chain: tuple[bytes, ...]
    ) -> tuple[Entry, bytes]:
        """An x509 entry for the fork's tree (the lock is held)."""
        _, entry = self._entry(index, SignedEntryType.X509, der, vector(der, 3), chain)
        return entry, leaf_hash(entry.leaf_input)

    def _transport_fault(self, target: str) -> Hit | None:
        """What the slow, drop and rate-limit faults do to this request (each counted
        down if it applies): a delay, then maybe a drop or a 429."""
        path = target.partition("?")[0]
        relative = path[len(self.prefix) :] if path.startswith(self.prefix) else ""
        with self._lock:
            return transport_hit(self._faults, relative)

    # -- answering ---------------------------------------------------------------------------

    def _view(self) -> tuple[_View, frozenset[str]]:
        with self._lock:
            return self._fork or _View(self._tree, self._head), frozenset(self._faults)

    def _served_head(self) -> tuple[_View, TreeHead, bytes, frozenset[str]]:
        view, faults = self._view()
        head = view.head
        if "wrong-root" in faults:
            head = replace(head, root=hashlib.sha256(b"pinwarden wrong root" + head.root).digest())
        signature = self._tree_head_signature(head, corrupt="bad-sth-signature" in faults)
        return view, head, signature, faults

    def _respond(self, method: str, target: str, body: bytes) -> Response:
        """The answer to one request, whatever the bytes: never an exception."""
        return self._answers.respond(method, target, body)

    # -- running -----------------------------------------------------------------------------

    def start(self) -> LocalCTLog:
        self._stopping.clear()
        self._serving.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._serving.stop()

    def _record(self, target: str) -> None:
        with self._lock:
            self.requests.append(target)


# -- log lists -------------------------------------------------------------------------------


def local_log_list(*logs: LocalCTLog, timestamp: dt.datetime | None = None) -> LogList:
    """A Chrome-style log list of local logs (their keys, URLs, operators and states)."""
    return LogList(
        tuple(log.log for log in logs),
        kind="chrome",
        source="<pinwarden.testing.LocalCTLog>",
        version="1.0",
        timestamp=timestamp or utc_now(),
    )


def write_log_list(path: str | Path, *logs: LocalCTLog) -> Path:
    """Write the v3 JSON log list of ``logs`` to ``path`` and return the path."""
    target = Path(path)
    document = local_log_list(*logs).to_chrome_v3()
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return target
