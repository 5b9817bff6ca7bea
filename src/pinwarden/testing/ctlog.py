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

import base64
import datetime as dt
import gzip
import hashlib
import http.server
import ipaddress
import itertools
import json
import re
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, get_args
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import ExtensionOID

from pinwarden.ct._wire import u8, u16, u64, vector
from pinwarden.ct.logs import Log, LogList, LogState, log_id_of
from pinwarden.ct.sct import SCT, SignedEntryType
from pinwarden.testing.ca import CA, Issued, PrivateKey, generate_key

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

CTApi = Literal["rfc6962", "static"]
CTFault = Literal[
    "bad-sth-signature",
    "wrong-root",
    "fork",
    "truncated-entries",
    "malformed-entries",
    "rate-limit",
    "slow",
    "drop",
]
_FAULTS: tuple[str, ...] = get_args(CTFault)
_TRANSPORT_FAULTS = ("slow", "drop", "rate-limit")  # checked in this order per request
GzipMode = Literal["never", "accepted", "always"]

TILE_WIDTH = 256  # static-ct-api: full tiles are always 256 hashes wide
_TILE_HEIGHT = 8  # log2(TILE_WIDTH): tree levels per tile level
_MAX_TILE_LEVEL = 5  # static-ct-api: <L> is between 0 and 5
_MAX_BODY = 1 << 20  # bytes of an add-chain request we are willing to read
_EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962 2.1: MTH({}) = SHA-256()
_HASH_SHA256 = 4  # RFC 5246 HashAlgorithm
_SIG_RSA, _SIG_ECDSA = 1, 3  # RFC 5246 SignatureAlgorithm
_NOTE_TYPE_RFC6962 = b"\x05"  # c2sp.org/signed-note signature type of RFC6962NoteSignature
_CT_PRECERT_SIGNING = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")
# The DER of the precertificate poison extension's OID, 1.3.6.1.4.1.11129.2.4.3.
_POISON_OID_DER = b"\x06\x0a\x2b\x06\x01\x04\x01\xd6\x79\x02\x04\x03"


def _leaf_hash(data: bytes) -> bytes:
    # Hashing written again here on purpose: the log must not share code with the
    # verifiers it is meant to test.
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(count: int) -> int:
    """RFC 6962 2.1: the largest power of two smaller than ``count`` (``count`` > 1)."""
    return 1 << ((count - 1).bit_length() - 1)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _millis(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# -- the Merkle tree -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the log keeps of one entry: the ``MerkleTreeLeaf`` it hashed, the submitted
    precertificate (precert entries only) and the SHA-256 fingerprints of the chain."""

    leaf_input: bytes
    precert: bytes | None
    chain: tuple[bytes, ...]

    @property
    def timestamped_entry(self) -> bytes:
        return self.leaf_input[2:]  # after MerkleTreeLeaf's version and leaf_type


class _Tree:
    """An append-only Merkle tree that stores the hash of every complete subtree:
    ``levels[h][i]`` is MTH(D[i * 2^h : (i + 1) * 2^h]). Any root or proof at any size up
    to the current one is then O(log n) lookups, and the tiles are slices of the levels.

    Appends only ever add to these lists, so readers may use indexes below a size they
    saw published without a lock (list appends and reads are atomic in CPython)."""

    __slots__ = ("entries", "levels", "positions")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.levels: list[list[bytes]] = [[]]
        self.positions: dict[bytes, int] = {}  # leaf hash -> first index

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, entry: _Entry, digest: bytes) -> None:
        levels = self.levels
        self.entries.append(entry)
        self.positions.setdefault(digest, len(levels[0]))
        levels[0].append(digest)
        height, index = 0, len(levels[0]) - 1
        while index % 2 == 1:  # this node completed a pair: its parent is complete too
            if height + 1 == len(levels):
                levels.append([])
            levels[height + 1].append(_node_hash(levels[height][index - 1], levels[height][index]))
            height, index = height + 1, index // 2

    def hash(self, start: int, count: int) -> bytes:
        """MTH(D[start : start + count]) (RFC 6962 2.1)."""
        if count == 0:
            return _EMPTY_ROOT
        height = count.bit_length() - 1
        if count == 1 << height and start % count == 0:
            return self.levels[height][start >> height]
        k = _split(count)
        return _node_hash(self.hash(start, k), self.hash(start + k, count - k))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 6962 2.1.1)."""
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, n: int) -> list[bytes]:
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, k), self.hash(start + k, n - k)]
        return [*self._path(m - k, start + k, n - k), self.hash(start, k)]

    def consistency(self, old: int, new: int) -> list[bytes]:
        """PROOF(old, D[0:new]) (RFC 6962 2.1.2); empty when there is nothing to prove."""
        if old in (0, new):
            return []
        return self._subproof(old, 0, new, complete=True)

    def _subproof(self, m: int, start: int, n: int, *, complete: bool) -> list[bytes]:
        if m == n:
            return [] if complete else [self.hash(start, n)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, k, complete=complete), self.hash(start + k, n - k)]
        return [*self._subproof(m - k, start + k, n - k, complete=False), self.hash(start, k)]

    def forked(self, size: int, index: int, entry: _Entry, digest: bytes) -> _Tree:
        """A copy of the first ``size`` entries with entry ``index`` replaced: another
        tree that a log showing a split view would serve to some clients."""
        fork = _Tree()
        fork.entries = self.entries[:size]
        fork.entries[index] = entry
        fork.levels = [level[: size >> height] for height, level in enumerate(self.levels)]
        fork.levels[0][index] = digest
        for height in range(1, len(fork.levels)):
            parent = index >> height
            if parent < len(fork.levels[height]):
                below = fork.levels[height - 1]
                fork.levels[height][parent] = _node_hash(below[2 * parent], below[2 * parent + 1])
        for position, leaf in enumerate(fork.levels[0]):
            fork.positions.setdefault(leaf, position)
        return fork


# -- public value types ----------------------------------------------------------------


@dataclass(frozen=True)
class TreeHead:
    """A signed tree head as the log published it (before any fault is applied)."""

    size: int
    timestamp_ms: int
    root: bytes

    @property
    def timestamp(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.timezone.utc)


@dataclass(frozen=True)
class LoggedEntry:
    """An entry the log accepted, with the SCT it returned. ``certificate`` is the DER
    certificate or precertificate submitted; ``chain`` the DER issuers, nearest first,
    as the log stored them; ``leaf_input`` the ``MerkleTreeLeaf`` and ``leaf_hash`` its
    hash. A static-ct-api log's SCT carries the ``leaf_index`` extension."""

    index: int
    timestamp_ms: int
    entry_type: SignedEntryType
    certificate: bytes
    chain: tuple[bytes, ...]
    leaf_input: bytes
    leaf_hash: bytes
    sct: SCT


class Precertificate(NamedTuple):
    """A precertificate (with the critical poison extension) and the final certificate
    the CA would issue for it: the same TBSCertificate without the poison (and without
    SCTs), signed."""

    precert: Issued
    final: Issued


def issue_precertificate(
    ca: CA,
    *names: str,
    key: PrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Precertificate:
    """A precertificate for ``names`` signed by ``ca`` directly (no precertificate
    signing certificate), and its final certificate, as :meth:`CA.issue` would issue it."""
    final = ca.issue(*names, key=key, not_before=not_before, not_after=not_after)
    cert = final.cert
    # Same fields and extensions in the same order, with the poison last: its TBS minus
    # the poison is then exactly the final certificate's TBS.
    builder = x509.CertificateBuilder(
        issuer_name=cert.issuer,
        subject_name=cert.subject,
        public_key=cert.public_key(),
        serial_number=cert.serial_number,
        not_valid_before=cert.not_valid_before_utc,
        not_valid_after=cert.not_valid_after_utc,
        extensions=list(cert.extensions),
    ).add_extension(x509.PrecertPoison(), critical=True)
    algorithm = cert.signature_hash_algorithm
    if not isinstance(algorithm, (hashes.SHA256, hashes.SHA384)):
        raise ValueError(f"unexpected signature hash {algorithm!r}")
    precert = builder.sign(ca.key, algorithm)
    return Precertificate(replace(final, cert=precert), final)


# -- DER surgery -------------------------------------------------------------------------
# Hand-written because no library removes an extension from a TBSCertificate and keeps
# the other bytes as they are (cryptography's tbs_precertificate_bytes only removes the
# SCT list, and re-encoding through a builder would not keep a foreign encoding). Only
# definite lengths, as DER requires; anything else raises ValueError.


def _tlv(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the element at ``offset``."""
    if offset + 2 > end:
        raise ValueError(f"DER element truncated at byte {offset}")
    tag, first = data[offset], data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 0 < count <= 4 or position + count > end:
            raise ValueError(f"bad DER length at byte {offset}")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + length > end:
        raise ValueError(f"DER element at byte {offset} overruns its container")
    return tag, position, position + length


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tbs_without_poison(tbs: bytes) -> bytes:
    """RFC 6962 3.2: the precertificate's TBSCertificate without the poison extension
    (and without the [3] field altogether if the poison was its only extension)."""
    tag, start, end = _tlv(tbs, 0, len(tbs))
    if tag != 0x30 or end != len(tbs):
        raise ValueError("TBSCertificate is not one DER SEQUENCE")
    parts: list[bytes] = []
    found = False
    position = start
    while position < end:
        tag, contents, stop = _tlv(tbs, position, end)
        if tag == 0xA3:  # [3] EXPLICIT Extensions
            seq_tag, seq_start, seq_end = _tlv(tbs, contents, stop)
            if seq_tag != 0x30:
                raise ValueError("extensions are not a SEQUENCE")
            kept: list[bytes] = []
            item = seq_start
            while item < seq_end:
                _, ext_start, ext_end = _tlv(tbs, item, seq_end)
                _, _, oid_end = _tlv(tbs, ext_start, ext_end)
                if tbs[ext_start:oid_end] == _POISON_OID_DER:
                    found = True
                else:
                    kept.append(tbs[item:ext_end])
                item = ext_end
            if kept:
                body = b"".join(kept)
                sequence = b"\x30" + _der_length(len(body)) + body
                parts.append(b"\xa3" + _der_length(len(sequence)) + sequence)
        else:
            parts.append(tbs[position:stop])
        position = stop
    if not found:
        raise ValueError("not a precertificate: no poison extension")
    body = b"".join(parts)
    return b"\x30" + _der_length(len(body)) + body


def _is_precert(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_oid(ExtensionOID.PRECERT_POISON)
    except x509.ExtensionNotFound:
        return False
    return True


def _is_precert_signing(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return _CT_PRECERT_SIGNING in list(usage)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- tiles -----------------------------------------------------------------------------

_TILE_INDEX = re.compile(r"((?:x\d{3}/)*)(\d{3})(?:\.p/([1-9]\d{0,2}))?")


def _tile_index_path(index: int) -> str:
    """static-ct-api: 1234067 -> ``x001/x234/067``."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _parse_tile(rest: str) -> tuple[int, int | None] | None:
    """(index, partial width or None) of ``x001/x234/067[.p/W]``, None unless canonical."""
    match = _TILE_INDEX.fullmatch(rest)
    if match is None:
        return None
    index = int((match.group(1) + match.group(2)).replace("x", "").replace("/", ""))
    width = int(match.group(3)) if match.group(3) else None
    if width is not None and width >= TILE_WIDTH:
        return None
    if _tile_index_path(index) != match.group(1) + match.group(2):
        return None  # non-canonical: leading x000 groups
    return index, width


# -- the log -----------------------------------------------------------------------------


@dataclass
class _Active:
    """A switched-on fault: how many more requests it applies to (None: until healed)."""

    remaining: int | None = None
    retry_after: int = 1
    delay: float = 1.0
    only: str | None = None


class _Hit(NamedTuple):
    """The transport faults one request meets: a delay, then "drop", "rate-limit" or None."""

    delay: float
    action: str | None
    retry_after: int


@dataclass(frozen=True)
class _View:
    """What the log serves: a tree and its published head (the honest one, or a fork)."""

    tree: _Tree
    head: TreeHead


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalCTLog:
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
        if not _is_loopback(host):
            raise ValueError(f"the test CT log only listens on loopback, not {host!r}")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if gzip not in get_args(GzipMode):
            raise ValueError(f"gzip must be one of {', '.join(get_args(GzipMode))}")
        self.api: CTApi = api
        self.key: PrivateKey = generate_key(key_type)
        self.key_der = _spki_of_key(self.key)
        self.log_id = log_id_of(self.key_der)
        self.ca = ca or CA("pinwarden CT test root").intermediate("pinwarden CT test issuing CA")
        self.roots: tuple[x509.Certificate, ...] = tuple(
            {_der(c): c for c in (self.ca.root.cert, *roots)}.values()
        )
        self.name = name or f"pinwarden local {api} CT log"
        self.operator = operator
        self.mmd = mmd
        self.state = state
        self.max_batch = max_batch
        self.gzip: GzipMode = gzip
        self.temporal_interval = temporal_interval
        self.clock: Callable[[], dt.datetime] = clock or _utc_now
        self.state_since = state_since or (self.clock() - dt.timedelta(days=30))
        self.prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        self.host = host
        self.requests: list[str] = []
        """The path (with query) of every request received, in order."""

        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._tree = _Tree()
        self._issuers: dict[bytes, bytes] = {}  # SHA-256 fingerprint -> DER
        self._key_hashes: dict[bytes, bytes] = {}  # issuer DER -> issuer_key_hash
        self._last_timestamp = 0
        self._head = self._new_head(self._tree, 0)
        self._fork: _View | None = None
        self._faults: dict[str, _Active] = {}
        self._signatures: dict[tuple[bytes, bool], bytes] = {}
        self._leaf_key: PrivateKey | None = None

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_Server", (_HTTPServer,), {"address_family": family})
        self._httpd: _HTTPServer = server_class((host, port), _Handler, bind_and_activate=True)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

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
        data = self.origin.encode() + b"\n" + _NOTE_TYPE_RFC6962 + self.log_id
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

    # -- the tree ----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The live tree size (entries added, published or not)."""
        return self._tree.size

    @property
    def head(self) -> TreeHead:
        """The last tree head :meth:`publish` signed (what an honest log serves)."""
        return self._head

    def root(self, size: int | None = None) -> bytes:
        """The root of the honest tree at ``size`` (default: the live size)."""
        size = self._tree.size if size is None else size
        self._check_size(size, self._tree.size)
        return self._tree.hash(0, size)

    def leaf_hash(self, index: int) -> bytes:
        self._check_size(index + 1, self._tree.size)
        return self._tree.levels[0][index]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]) in the honest tree."""
        self._check_size(size, self._tree.size)
        if not 0 <= index < size:
            raise ValueError(f"index {index} is not in a tree of size {size}")
        return self._tree.inclusion(index, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 6962 PROOF(old, D[0:new]) in the honest tree."""
        self._check_size(new, self._tree.size)
        if not 0 <= old <= new:
            raise ValueError(f"no consistency proof from size {old} to {new}")
        return self._tree.consistency(old, new)

    @staticmethod
    def _check_size(size: int, limit: int) -> None:
        if not 0 <= size <= limit:
            raise ValueError(f"size {size} is outside the tree (0..{limit})")

    def publish(self) -> TreeHead:
        """Sign a tree head at the live size; the log serves it from now on."""
        with self._lock:
            self._head = self._new_head(self._tree, self._tree.size)
            return self._head

    def _new_head(self, tree: _Tree, size: int) -> TreeHead:
        """A head later than any before it (the lock is held)."""
        self._last_timestamp = max(_millis(self.clock()), self._last_timestamp + 1)
        return TreeHead(size, self._last_timestamp, tree.hash(0, size))

    # -- adding entries ------------------------------------------------------------------

    def add_certificate(
        self, certificate: x509.Certificate | Issued, chain: Sequence[x509.Certificate] = ()
    ) -> LoggedEntry:
        """Log a certificate (an ``x509_entry``). ``chain`` is its issuers, nearest first,
        as the log stores them (RFC 6962 wants them to end at the root); an :class:`Issued`
        brings its own chain and root. Nothing is checked: a test may log anything."""
        cert, issuers = _with_chain(certificate, chain)
        if _is_precert(cert):
            raise ValueError("a precertificate goes through add_precertificate")
        return self._add(SignedEntryType.X509, _der(cert), issuers)

    def add_precertificate(
        self,
        precertificate: x509.Certificate | Issued | Precertificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> LoggedEntry:
        """Log a precertificate (a ``precert_entry``) issued directly by ``chain[0]``
        (precertificate signing certificates are not supported)."""
        if isinstance(precertificate, Precertificate):
            precertificate = precertificate.precert
        cert, issuers = _with_chain(precertificate, chain)
        if not issuers:
            raise ValueError("a precertificate needs its issuer in the chain")
        return self._add(SignedEntryType.PRECERT, _der(cert), issuers)

    def issue(
        self, *names: str, precert: bool = False, key: PrivateKey | None = None
    ) -> LoggedEntry:
        """Issue a certificate (or a precertificate) for ``names`` from :attr:`ca` and log it."""
        if precert:
            return self.add_precertificate(issue_precertificate(self.ca, *names, key=key))
        return self.add_certificate(self.ca.issue(*names, key=key))

    def grow(
        self,
        count: int,
        *,
        names: str | Callable[[int], Sequence[str]] = "host{i}.example.test",
        precert_every: int = 0,
    ) -> range:
        """Issue ``count`` certificates from :attr:`ca` (one reused key, for speed) and log
        them; return their indexes. ``names`` is a template (``{i}`` is the entry index) or
        a function of the index giving the names; with ``precert_every`` N > 0, every Nth
        entry is a precertificate. No SCT is signed: this is bulk filling."""
        if count < 0 or precert_every < 0:
            raise ValueError("count and precert_every must not be negative")
        if self._leaf_key is None:
            self._leaf_key = generate_key("ec-p256")
        key = self._leaf_key
        issuers = (*self.ca.chain, self.ca.root.cert)
        chain_der = tuple(_der(c) for c in issuers)
        first = self._tree.size
        for offset in range(count):
            index = first + offset
            hosts = [names.format(i=index)] if isinstance(names, str) else list(names(index))
            if precert_every and index % precert_every == precert_every - 1:
                precert = issue_precertificate(self.ca, *hosts, key=key).precert.cert
                self._append(SignedEntryType.PRECERT, _der(precert), chain_der)
            else:
                cert = self.ca.issue(*hosts, key=key).cert
                self._append(SignedEntryType.X509, _der(cert), chain_der)
        return range(first, first + count)

    def _add(
        self, entry_type: SignedEntryType, der: bytes, chain: tuple[bytes, ...]
    ) -> LoggedEntry:
        index, timestamp, entry = self._append(entry_type, der, chain)
        extensions = self._extensions(index)
        signed = self._digitally_sign(b"\x00\x00" + entry.timestamped_entry)
        sct = _sct(self.log_id, timestamp, extensions, signed, entry_type, self.api, index)
        return LoggedEntry(
            index,
            timestamp,
            entry_type,
            der,
            chain,
            entry.leaf_input,
            _leaf_hash(entry.leaf_input),
            sct,
        )

    def _issuer_key_hash(self, issuer_der: bytes) -> bytes:
        """PreCert.issuer_key_hash: SHA-256 of the issuer's SubjectPublicKeyInfo."""
        cached = self._key_hashes.get(issuer_der)
        if cached is None:
            issuer = x509.load_der_x509_certificate(issuer_der)
            if _is_precert_signing(issuer):
                raise ValueError("precertificate signing certificates are not supported")
            cached = self._key_hashes.setdefault(issuer_der, hashlib.sha256(_spki(issuer)).digest())
        return cached

    def _extensions(self, index: int) -> bytes:
        """CtExtensions: static-ct-api's leaf_index (type 0, a uint40), else none."""
        if self.api == "static":
            return u8(0) + vector(index.to_bytes(5, "big"), 2)
        return b""

    def _append(
        self, entry_type: SignedEntryType, der: bytes, chain: tuple[bytes, ...]
    ) -> tuple[int, int, _Entry]:
        """Build the entry's MerkleTreeLeaf (RFC 6962 3.4) and add it to the live tree."""
        fingerprints = tuple(hashlib.sha256(c).digest() for c in chain)
        if entry_type is SignedEntryType.PRECERT:
            tbs = _tbs_without_poison(x509.load_der_x509_certificate(der).tbs_certificate_bytes)
            signed_entry = self._issuer_key_hash(chain[0]) + vector(tbs, 3)
        else:
            signed_entry = vector(der, 3)
        with self._lock:
            index = self._tree.size
            self._last_timestamp = max(_millis(self.clock()), self._last_timestamp)
            timestamp = self._last_timestamp
            timestamped = (
                u64(timestamp) + u16(entry_type) + signed_entry + vector(self._extensions(index), 2)
            )
            leaf_input = b"\x00\x00" + timestamped  # version v1, leaf_type timestamped_entry
            entry = _Entry(
                leaf_input, der if entry_type is SignedEntryType.PRECERT else None, fingerprints
            )
            for fingerprint, issuer_der in zip(fingerprints, chain, strict=True):
                self._issuers.setdefault(fingerprint, issuer_der)
            self._tree.append(entry, _leaf_hash(leaf_input))
        return index, timestamp, entry

    # -- signing ---------------------------------------------------------------------------

    def _digitally_sign(self, data: bytes) -> bytes:
        """RFC 5246 DigitallySigned with SHA-256 and the log's key."""
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            signature = self.key.sign(data, ec.ECDSA(hashes.SHA256()))
            algorithm = _SIG_ECDSA
        else:
            signature = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            algorithm = _SIG_RSA
        return u8(_HASH_SHA256) + u8(algorithm) + vector(signature, 2)

    def _tree_head_signature(self, head: TreeHead, *, corrupt: bool) -> bytes:
        """DigitallySigned(TreeHeadSignature) (RFC 6962 3.5). ``corrupt``: a well-formed
        signature over another root, which must not verify."""
        root = bytes([head.root[0] ^ 0xFF]) + head.root[1:] if corrupt else head.root
        data = u8(0) + u8(1) + u64(head.timestamp_ms) + u64(head.size) + root
        with self._lock:
            cached = self._signatures.get((data, corrupt))
        if cached is None:
            cached = self._digitally_sign(data)
            with self._lock:
                # One signature per head, so every client sees the same bytes.
                cached = self._signatures.setdefault((data, corrupt), cached)
        return cached

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
        if fault not in _FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(_FAULTS)}")
        if fault not in _TRANSPORT_FAULTS and (count is not None or only is not None):
            raise ValueError(f"{fault} applies until healed, to every matching answer")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if retry_after < 0 or delay < 0:
            raise ValueError("retry_after and delay must not be negative")
        with self._lock:
            if fault == "fork":
                self._fork = self._make_fork(index, extra)
            self._faults[fault] = _Active(count, retry_after, delay, only)

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
        chain = tuple(_der(c) for c in (*self.ca.chain, self.ca.root.cert))
        cert = self.ca.issue(f"fork{index}.pinwarden.test").cert
        entry, digest = self._detached_entry(index, _der(cert), chain)
        fork = self._tree.forked(size, index, entry, digest)
        for offset in range(extra):
            cert = self.ca.issue(f"fork{size + offset}.pinwarden.test").cert
            fork.append(*self._detached_entry(size + offset, _der(cert), chain))
        return _View(fork, self._new_head(fork, fork.size))

    def _detached_entry(
        self, index: int, der: bytes, chain: tuple[bytes, ...]
    ) -> tuple[_Entry, bytes]:
        """An x509 entry for the fork's tree (the lock is held)."""
        self._last_timestamp = max(_millis(self.clock()), self._last_timestamp)
        timestamped = (
            u64(self._last_timestamp)
            + u16(SignedEntryType.X509)
            + vector(der, 3)
            + vector(self._extensions(index), 2)
        )
        fingerprints = tuple(hashlib.sha256(c).digest() for c in chain)
        for fingerprint, issuer_der in zip(fingerprints, chain, strict=True):
            self._issuers.setdefault(fingerprint, issuer_der)
        leaf_input = b"\x00\x00" + timestamped
        return _Entry(leaf_input, None, fingerprints), _leaf_hash(leaf_input)

    def _transport_fault(self, target: str) -> _Hit | None:
        """What the slow, drop and rate-limit faults do to this request (each counted
        down if it applies): a delay, then maybe a drop or a 429."""
        path = target.partition("?")[0]
        relative = path[len(self.prefix) :] if path.startswith(self.prefix) else ""
        delay, action, retry_after = 0.0, None, 0
        with self._lock:
            for name in _TRANSPORT_FAULTS:
                active = self._faults.get(name)
                if active is None or (active.only and not relative.startswith(active.only)):
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining == 0:
                        del self._faults[name]
                if name == "slow":
                    delay = active.delay
                    continue
                action, retry_after = name, active.retry_after
                break
        if not delay and action is None:
            return None
        return _Hit(delay, action, retry_after)

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

    def _respond(self, method: str, target: str, body: bytes) -> _Response:
        """The answer to one request, whatever the bytes: never an exception."""
        try:
            return self._route(method, target, body)
        except _BadRequest as error:
            return _Response(error.status, f"{error}\n".encode(), "text/plain; charset=utf-8")

    def _route(self, method: str, target: str, body: bytes) -> _Response:
        full_path, _, query_text = target.partition("?")
        if not full_path.startswith(self.prefix):
            raise _BadRequest(404, f"not found: {full_path[:100]}")
        path = full_path[len(self.prefix) :]
        query = parse_qs(query_text, keep_blank_values=True)
        static = self.api == "static"
        gets: dict[str, Callable[[dict[str, list[str]]], _Response]] = {
            "ct/v1/get-roots": self._get_roots,
        }
        if static:
            gets["checkpoint"] = self._checkpoint
        else:
            gets.update(
                {
                    "ct/v1/get-sth": self._get_sth,
                    "ct/v1/get-sth-consistency": self._get_consistency,
                    "ct/v1/get-proof-by-hash": self._get_proof,
                    "ct/v1/get-entries": self._get_entries,
                }
            )
        posts = {"ct/v1/add-chain": False, "ct/v1/add-pre-chain": True}
        if path in gets or (static and path.startswith(("tile/", "issuer/"))):
            if method != "GET":
                raise _BadRequest(405, f"{path} takes GET")
            if path.startswith("tile/"):
                return self._tile(path.removeprefix("tile/"))
            if path.startswith("issuer/"):
                return self._issuer(path.removeprefix("issuer/"))
            return gets[path](query)
        if path in posts:
            if method != "POST":
                raise _BadRequest(405, f"{path} takes POST")
            return self._add_chain(body, precert=posts[path])
        raise _BadRequest(404, f"not found: {full_path[:100]}")

    @staticmethod
    def _json(document: dict[str, Any]) -> _Response:
        return _Response(200, json.dumps(document).encode())

    def _get_sth(self, query: dict[str, list[str]]) -> _Response:
        _, head, signature, _ = self._served_head()
        return self._json(
            {
                "tree_size": head.size,
                "timestamp": head.timestamp_ms,
                "sha256_root_hash": _b64(head.root),
                "tree_head_signature": _b64(signature),
            }
        )

    def _checkpoint(self, query: dict[str, list[str]]) -> _Response:
        _, head, signature, _ = self._served_head()
        text = f"{self.origin}\n{head.size}\n{_b64(head.root)}\n"
        note_signature = self.note_key_id + u64(head.timestamp_ms) + signature
        note = f"{text}\n\u2014 {self.origin} {_b64(note_signature)}\n"
        return _Response(
            200,
            note.encode(),
            "text/plain; charset=utf-8",
            (("Cache-Control", "no-store"),),
        )

    def _get_consistency(self, query: dict[str, list[str]]) -> _Response:
        view, _ = self._view()
        first, second = _int(query, "first"), _int(query, "second")
        if not first <= second <= view.head.size:
            raise _BadRequest(
                400, f"need first <= second <= {view.head.size}, got {first} and {second}"
            )
        proof = view.tree.consistency(first, second)
        return self._json({"consistency": [_b64(h) for h in proof]})

    def _get_proof(self, query: dict[str, list[str]]) -> _Response:
        view, _ = self._view()
        size = _int(query, "tree_size")
        # A "+" sent unescaped arrives as a space: put it back, as base64 has no spaces.
        text = _param(query, "hash").replace(" ", "+")
        try:
            digest = base64.b64decode(text, validate=True)
        except ValueError:
            raise _BadRequest(400, "hash is not base64") from None
        if len(digest) != 32:
            raise _BadRequest(400, "hash is not a SHA-256 hash")
        if not 1 <= size <= view.head.size:
            raise _BadRequest(400, f"tree_size must be in 1..{view.head.size}")
        index = view.tree.positions.get(digest)
        if index is None or index >= size:
            raise _BadRequest(404, f"no leaf with that hash in the tree of size {size}")
        path = view.tree.inclusion(index, size)
        return self._json({"leaf_index": index, "audit_path": [_b64(h) for h in path]})

    def _get_entries(self, query: dict[str, list[str]]) -> _Response:
        view, faults = self._view()
        start, end = _int(query, "start"), _int(query, "end")
        if start > end:
            raise _BadRequest(400, f"start {start} is after end {end}")
        if start >= view.head.size:
            raise _BadRequest(400, f"start {start} is beyond the tree size {view.head.size}")
        end = min(end, view.head.size - 1, start + self.max_batch - 1)
        entries = []
        for entry in view.tree.entries[start : end + 1]:
            if entry.precert is None:
                extra = vector(self._chain_vector(entry), 3)
            else:
                extra = vector(entry.precert, 3) + vector(self._chain_vector(entry), 3)
            entries.append([entry.leaf_input, extra])
        if "truncated-entries" in faults:
            entries[0][0] = entries[0][0][: len(entries[0][0]) // 2]
        if "malformed-entries" in faults:
            entries[0][0] = b"\xff" + entries[0][0][1:]  # no MerkleTreeLeaf version 255
        return self._json(
            {"entries": [{"leaf_input": _b64(leaf), "extra_data": _b64(x)} for leaf, x in entries]}
        )

    def _chain_vector(self, entry: _Entry) -> bytes:
        return b"".join(vector(self._issuers[f], 3) for f in entry.chain)

    def _get_roots(self, query: dict[str, list[str]]) -> _Response:
        return self._json({"certificates": [_b64(_der(c)) for c in self.roots]})

    def _tile(self, rest: str) -> _Response:
        view, faults = self._view()
        level_text, _, index_text = rest.partition("/")
        parsed = _parse_tile(index_text)
        data = level_text == "data"
        if parsed is None or not (
            data or (re.fullmatch(r"0|[1-9]\d*", level_text) and int(level_text) <= _MAX_TILE_LEVEL)
        ):
            raise _BadRequest(404, f"no such tile: {rest}")
        level = 0 if data else int(level_text)
        index, width = parsed
        # Hashes available at this level: complete subtrees of 256^level leaves.
        available = view.head.size >> (_TILE_HEIGHT * level)
        first = index * TILE_WIDTH
        if first + (width or TILE_WIDTH) > available:
            raise _BadRequest(404, f"tile {rest} is not in the tree of size {view.head.size}")
        count = width or TILE_WIDTH
        if not data:
            hashes_ = view.tree.levels[_TILE_HEIGHT * level][first : first + count]
            body = b"".join(hashes_)
        else:
            leaves = [self._tile_leaf(e) for e in view.tree.entries[first : first + count]]
            if "malformed-entries" in faults:
                # entry_type is the two bytes after the timestamp: 0xFFFF is no type
                leaves[0] = leaves[0][:8] + b"\xff\xff" + leaves[0][10:]
            body = b"".join(leaves)
            if "truncated-entries" in faults:
                body = body[: len(body) // 2]
        return _Response(
            200,
            body,
            "application/octet-stream",
            (("Cache-Control", "public, max-age=604800, immutable"),),
        )

    def _tile_leaf(self, entry: _Entry) -> bytes:
        """static-ct-api TileLeaf: TimestampedEntry, [pre_certificate], fingerprints."""
        precert = b"" if entry.precert is None else vector(entry.precert, 3)
        return entry.timestamped_entry + precert + vector(b"".join(entry.chain), 2)

    def _issuer(self, fingerprint: str) -> _Response:
        if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
            raise _BadRequest(404, "an issuer is named by its lowercase hex SHA-256")
        with self._lock:
            der = self._issuers.get(bytes.fromhex(fingerprint))
        if der is None:
            raise _BadRequest(404, f"no issuer {fingerprint}")
        return _Response(
            200,
            der,
            "application/pkix-cert",
            (("Cache-Control", "public, max-age=604800, immutable"),),
        )

    def _add_chain(self, body: bytes, *, precert: bool) -> _Response:
        """RFC 6962 4.1 and 4.2: check the chain reaches an accepted root, log it, return
        the SCT."""
        try:
            document = json.loads(body)
            encoded = document["chain"]
            if not isinstance(encoded, list) or not encoded:
                raise TypeError("chain must be a non-empty list")
            certs = [
                x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in encoded
            ]
        except Exception as error:  # anything a hostile body can make fail: 400
            raise _BadRequest(400, f"bad request body: {error}") from None
        leaf, issuers = certs[0], certs[1:]
        try:
            is_precert = _is_precert(leaf)
        except ValueError as error:  # cryptography could not read the extensions
            raise _BadRequest(400, f"bad certificate: {error}") from None
        if is_precert != precert:
            kind = "a precertificate" if precert else "a certificate without poison"
            raise _BadRequest(400, f"this endpoint takes {kind}")
        issuers = self._to_root(leaf, issuers)
        entry_type = SignedEntryType.PRECERT if precert else SignedEntryType.X509
        try:
            logged = self._add(entry_type, _der(leaf), tuple(_der(c) for c in issuers))
        except ValueError as error:  # a TBS we cannot take the poison out of, and such
            raise _BadRequest(400, str(error)) from None
        sct = logged.sct
        return self._json(
            {
                "sct_version": 0,
                "id": _b64(self.log_id),
                "timestamp": sct.timestamp_ms,
                "extensions": _b64(sct.extensions),
                "signature": _b64(
                    u8(sct.hash_algorithm) + u8(sct.signature_algorithm) + vector(sct.signature, 2)
                ),
            }
        )

    def _to_root(
        self, leaf: x509.Certificate, issuers: list[x509.Certificate]
    ) -> list[x509.Certificate]:
        """The chain checked link by link and completed with the accepted root it ends at."""
        chain = [leaf, *issuers]
        for child, parent in itertools.pairwise(chain):
            try:
                child.verify_directly_issued_by(parent)
            except Exception:  # ValueError, TypeError, InvalidSignature: not a chain
                raise _BadRequest(400, "each certificate must be issued by the next") from None
        roots = {_der(r): r for r in self.roots}
        if _der(chain[-1]) in roots:
            return issuers
        for root in roots.values():
            try:
                chain[-1].verify_directly_issued_by(root)
            except Exception:  # noqa: S112 - try the next root
                continue
            return [*issuers, root]
        raise _BadRequest(400, "the chain does not end at a root this log accepts")

    # -- running -----------------------------------------------------------------------------

    def start(self) -> LocalCTLog:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalCTLog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _record(self, target: str) -> None:
        with self._lock:
            self.requests.append(target)


def _param(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values or len(values) != 1:
        raise _BadRequest(400, f"need exactly one {name} parameter")
    return values[0]


def _int(query: dict[str, list[str]], name: str) -> int:
    text = _param(query, name)
    # Plain decimal only: int() would also take "+5", " 5" and "1_0".
    if not re.fullmatch(r"\d{1,19}", text):
        raise _BadRequest(400, f"{name} is not a non-negative integer: {text[:40]!r}")
    return int(text)


def _spki_of_key(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _with_chain(
    certificate: x509.Certificate | Issued, chain: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, tuple[bytes, ...]]:
    if isinstance(certificate, Issued):
        chain = chain or (*certificate.chain, certificate.root)
        certificate = certificate.cert
    return certificate, tuple(_der(c) for c in chain)


def _sct(
    log_id: bytes,
    timestamp: int,
    extensions: bytes,
    digitally_signed: bytes,
    entry_type: SignedEntryType,
    api: CTApi,
    index: int,
) -> SCT:
    """The SCT (RFC 6962 3.2) and its TLS encoding."""
    signature = digitally_signed[4:]
    raw = u8(0) + log_id + u64(timestamp) + vector(extensions, 2) + digitally_signed
    return SCT(
        version=0,
        log_id=log_id,
        timestamp_ms=timestamp,
        timestamp=dt.datetime.fromtimestamp(timestamp / 1000, dt.timezone.utc),
        extensions=extensions,
        hash_algorithm=digitally_signed[0],
        signature_algorithm=digitally_signed[1],
        signature=signature,
        entry_type=entry_type,
        leaf_index=index if api == "static" else None,
        raw=raw,
    )


# -- log lists -------------------------------------------------------------------------------


def local_log_list(*logs: LocalCTLog, timestamp: dt.datetime | None = None) -> LogList:
    """A Chrome-style log list of local logs (their keys, URLs, operators and states)."""
    return LogList(
        tuple(log.log for log in logs),
        kind="chrome",
        source="<pinwarden.testing.LocalCTLog>",
        version="1.0",
        timestamp=timestamp or _utc_now(),
    )


def write_log_list(path: str | Path, *logs: LocalCTLog) -> Path:
    """Write the v3 JSON log list of ``logs`` to ``path`` and return the path."""
    target = Path(path)
    document = local_log_list(*logs).to_chrome_v3()
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return target


# -- HTTP ------------------------------------------------------------------------------------


def _accepts_gzip(header: str | None) -> bool:
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower().removeprefix("q=")
            return quality == "" or not re.fullmatch(r"0(\.0*)?", quality)
    return False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
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
                self._send(_Response(413, b"need a Content-Length up to 1 MiB\n"), gzip_ok=False)
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
                response = _Response(429, b"rate limited\n", "text/plain", headers)
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

    def _send(self, response: _Response, *, gzip_ok: bool) -> None:
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


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalCTLog

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away is its business; anything else is a bug in this log
        # and gets socketserver's traceback on stderr.
        if not isinstance(sys.exc_info()[1], OSError):
            socketserver.BaseServer.handle_error(self, request, client_address)
