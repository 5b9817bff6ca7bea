"""The local CT log's entries, tree heads and signatures: what a log is without its HTTP
front or its faults. :class:`~pinwarden.testing.ctlog.LocalCTLog` serves this over HTTP
and adds the faults; keeping the two apart keeps each under a screenful of concerns."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from pinwarden.ct._wire import vector
from pinwarden.ct.logs import log_id_of
from pinwarden.ct.sct import SCT, SignedEntryType
from pinwarden.testing._ctlog_tree import Entry, Tree, leaf_hash
from pinwarden.testing._ctlog_wire import (
    CTApi,
    ct_extensions,
    digitally_sign,
    leaf_input,
    make_sct,
    millis,
    tree_head_input,
)
from pinwarden.testing._precert import (
    Precertificate,
    der_of,
    is_precert,
    is_precert_signing,
    issue_precertificate,
    spki,
    spki_of_key,
    tbs_without_poison,
)
from pinwarden.testing.ca import CA, Issued, PrivateKey, generate_key

__all__ = ["LogCore", "LoggedEntry", "TreeHead"]


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


class LogCore:
    """A CT log's state: its key and identity, the live Merkle tree of entries issued
    from ``ca`` (or added), the last signed tree head, and the signatures over them."""

    def __init__(
        self,
        api: CTApi,
        key_type: Literal["ec-p256", "rsa-2048"],
        ca: CA | None,
        roots: Sequence[x509.Certificate],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.api: CTApi = api
        self.key: PrivateKey = generate_key(key_type)
        self.key_der = spki_of_key(self.key)
        self.log_id = log_id_of(self.key_der)
        self.ca = ca or CA("pinwarden CT test root").intermediate("pinwarden CT test issuing CA")
        self.roots: tuple[x509.Certificate, ...] = tuple(
            {der_of(c): c for c in (self.ca.root.cert, *roots)}.values()
        )
        self.clock: Callable[[], dt.datetime] = clock
        self._lock = threading.RLock()
        self._tree = Tree()
        self._issuers: dict[bytes, bytes] = {}  # SHA-256 fingerprint -> DER
        self._key_hashes: dict[bytes, bytes] = {}  # issuer DER -> issuer_key_hash
        self._last_timestamp = 0
        self._head = self._new_head(self._tree, 0)
        self._signatures: dict[tuple[bytes, bool], bytes] = {}
        self._leaf_key: PrivateKey | None = None

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

    def _new_head(self, tree: Tree, size: int) -> TreeHead:
        """A head later than any before it (the lock is held)."""
        self._last_timestamp = max(millis(self.clock()), self._last_timestamp + 1)
        return TreeHead(size, self._last_timestamp, tree.hash(0, size))

    # -- adding entries ------------------------------------------------------------------

    def add_certificate(
        self, certificate: x509.Certificate | Issued, chain: Sequence[x509.Certificate] = ()
    ) -> LoggedEntry:
        """Log a certificate (an ``x509_entry``). ``chain`` is its issuers, nearest first,
        as the log stores them (RFC 6962 wants them to end at the root); an :class:`Issued`
        brings its own chain and root. Nothing is checked: a test may log anything."""
        cert, issuers = _with_chain(certificate, chain)
        if is_precert(cert):
            raise ValueError("a precertificate goes through add_precertificate")
        return self._add(SignedEntryType.X509, der_of(cert), issuers)

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
        return self._add(SignedEntryType.PRECERT, der_of(cert), issuers)

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
        chain_der = tuple(der_of(c) for c in issuers)
        first = self._tree.size
        for offset in range(count):
            index = first + offset
            hosts = [names.format(i=index)] if isinstance(names, str) else list(names(index))
            if precert_every and index % precert_every == precert_every - 1:
                precert = issue_precertificate(self.ca, *hosts, key=key).precert.cert
                self._append(SignedEntryType.PRECERT, der_of(precert), chain_der)
            else:
                cert = self.ca.issue(*hosts, key=key).cert
                self._append(SignedEntryType.X509, der_of(cert), chain_der)
        return range(first, first + count)

    def _add(
        self, entry_type: SignedEntryType, der: bytes, chain: tuple[bytes, ...]
    ) -> LoggedEntry:
        index, timestamp, entry = self._append(entry_type, der, chain)
        extensions = ct_extensions(self.api, index)
        signed = digitally_sign(self.key, b"\x00\x00" + entry.timestamped_entry)
        sct = make_sct(self.log_id, timestamp, extensions, signed, entry_type, self.api, index)
        return LoggedEntry(
            index,
            timestamp,
            entry_type,
            der,
            chain,
            entry.leaf_input,
            leaf_hash(entry.leaf_input),
            sct,
        )

    def _issuer_key_hash(self, issuer_der: bytes) -> bytes:
        """PreCert.issuer_key_hash: SHA-256 of the issuer's SubjectPublicKeyInfo."""
        cached = self._key_hashes.get(issuer_der)
        if cached is None:
            issuer = x509.load_der_x509_certificate(issuer_der)
            if is_precert_signing(issuer):
                raise ValueError("precertificate signing certificates are not supported")
            cached = self._key_hashes.setdefault(issuer_der, hashlib.sha256(spki(issuer)).digest())
        return cached

    def _append(
        self, entry_type: SignedEntryType, der: bytes, chain: tuple[bytes, ...]
    ) -> tuple[int, int, Entry]:
        """Build the entry's MerkleTreeLeaf (RFC 6962 3.4) and add it to the live tree."""
        if entry_type is SignedEntryType.PRECERT:
            tbs = tbs_without_poison(x509.load_der_x509_certificate(der).tbs_certificate_bytes)
            signed_entry = self._issuer_key_hash(chain[0]) + vector(tbs, 3)
        else:
            signed_entry = vector(der, 3)
        with self._lock:
            index = self._tree.size
            timestamp, entry = self._entry(index, entry_type, der, signed_entry, chain)
            self._tree.append(entry, leaf_hash(entry.leaf_input))
        return index, timestamp, entry

    def _entry(
        self,
        index: int,
        entry_type: SignedEntryType,
        der: bytes,
        signed_entry: bytes,
        chain: tuple[bytes, ...],
    ) -> tuple[int, Entry]:
        """Entry ``index`` timestamped now, its issuers kept to be served (the lock is
        held). ``signed_entry`` is the encoded ASN.1Cert or PreCert."""
        self._last_timestamp = max(millis(self.clock()), self._last_timestamp)
        fingerprints = tuple(hashlib.sha256(c).digest() for c in chain)
        for fingerprint, issuer_der in zip(fingerprints, chain, strict=True):
            self._issuers.setdefault(fingerprint, issuer_der)
        extensions = ct_extensions(self.api, index)
        leaf = leaf_input(self._last_timestamp, entry_type, signed_entry, extensions)
        precert = der if entry_type is SignedEntryType.PRECERT else None
        return self._last_timestamp, Entry(leaf, precert, fingerprints)

    # -- signing ---------------------------------------------------------------------------

    def _tree_head_signature(self, head: TreeHead, *, corrupt: bool) -> bytes:
        """DigitallySigned(TreeHeadSignature) (RFC 6962 3.5). ``corrupt``: a well-formed
        signature over another root, which must not verify."""
        root = bytes([head.root[0] ^ 0xFF]) + head.root[1:] if corrupt else head.root
        data = tree_head_input(head.timestamp_ms, head.size, root)
        with self._lock:
            cached = self._signatures.get((data, corrupt))
        if cached is None:
            cached = digitally_sign(self.key, data)
            with self._lock:
                # One signature per head, so every client sees the same bytes.
                cached = self._signatures.setdefault((data, corrupt), cached)
        return cached


def _with_chain(
    certificate: x509.Certificate | Issued, chain: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, tuple[bytes, ...]]:
    if isinstance(certificate, Issued):
        chain = chain or (*certificate.chain, certificate.root)
        certificate = certificate.cert
    return certificate, tuple(der_of(c) for c in chain)
