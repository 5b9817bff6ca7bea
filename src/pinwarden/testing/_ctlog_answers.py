"""What the local CT log answers: one method per endpoint of RFC 6962 (``/ct/v1/...``) and
static-ct-api (checkpoint, tiles, issuers), each turning a request into a response or a
:class:`BadRequest`. Separate from the log's state (:mod:`pinwarden.testing.ctlog`) and
from HTTP framing (:mod:`pinwarden.testing._ctlog_http`): this is the API surface."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from cryptography import x509

from pinwarden.ct._wire import u8, u64, vector
from pinwarden.ct.sct import SignedEntryType
from pinwarden.testing._ctlog_http import BadRequest, Response, int_param, param
from pinwarden.testing._ctlog_tree import Entry
from pinwarden.testing._ctlog_wire import (
    MAX_TILE_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    b64,
    parse_tile,
    tile_leaf,
)
from pinwarden.testing._precert import der_of, is_precert

if TYPE_CHECKING:
    from pinwarden.testing.ctlog import LocalCTLog

__all__ = ["Answers"]


class Answers:
    """``log``'s endpoints: each reads the view the log serves (honest or forked), and
    add-chain / add-pre-chain add to the log."""

    def __init__(self, log: LocalCTLog) -> None:
        self.log = log

    def respond(self, method: str, target: str, body: bytes) -> Response:
        """The answer to one request, whatever the bytes: never an exception."""
        try:
            return self._route(method, target, body)
        except BadRequest as error:
            return Response(error.status, f"{error}\n".encode(), "text/plain; charset=utf-8")

    def _route(self, method: str, target: str, body: bytes) -> Response:
        full_path, _, query_text = target.partition("?")
        if not full_path.startswith(self.log.prefix):
            raise BadRequest(404, f"not found: {full_path[:100]}")
        path = full_path[len(self.log.prefix) :]
        query = parse_qs(query_text, keep_blank_values=True)
        static = self.log.api == "static"
        gets: dict[str, Callable[[dict[str, list[str]]], Response]] = {
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
                raise BadRequest(405, f"{path} takes GET")
            if path.startswith("tile/"):
                return self._tile(path.removeprefix("tile/"))
            if path.startswith("issuer/"):
                return self._issuer(path.removeprefix("issuer/"))
            return gets[path](query)
        if path in posts:
            if method != "POST":
                raise BadRequest(405, f"{path} takes POST")
            return self._add_chain(body, precert=posts[path])
        raise BadRequest(404, f"not found: {full_path[:100]}")

    @staticmethod
    def _json(document: dict[str, Any]) -> Response:
        return Response(200, json.dumps(document).encode())

    def _get_sth(self, query: dict[str, list[str]]) -> Response:
        _, head, signature, _ = self.log._served_head()
        return self._json(
            {
                "tree_size": head.size,
                "timestamp": head.timestamp_ms,
                "sha256_root_hash": b64(head.root),
                "tree_head_signature": b64(signature),
            }
        )

    def _checkpoint(self, query: dict[str, list[str]]) -> Response:
        _, head, signature, _ = self.log._served_head()
        text = f"{self.log.origin}\n{head.size}\n{b64(head.root)}\n"
        note_signature = self.log.note_key_id + u64(head.timestamp_ms) + signature
        note = f"{text}\n\u2014 {self.log.origin} {b64(note_signature)}\n"
        return Response(
            200,
            note.encode(),
            "text/plain; charset=utf-8",
            (("Cache-Control", "no-store"),),
        )

    def _get_consistency(self, query: dict[str, list[str]]) -> Response:
        view, _ = self.log._view()
        first, second = int_param(query, "first"), int_param(query, "second")
        if not first <= second <= view.head.size:
            raise BadRequest(
                400, f"need first <= second <= {view.head.size}, got {first} and {second}"
            )
        proof = view.tree.consistency(first, second)
        return self._json({"consistency": [b64(h) for h in proof]})

    def _get_proof(self, query: dict[str, list[str]]) -> Response:
        view, _ = self.log._view()
        size = int_param(query, "tree_size")
        # A "+" sent unescaped arrives as a space: put it back, as base64 has no spaces.
        text = param(query, "hash").replace(" ", "+")
        try:
            digest = base64.b64decode(text, validate=True)
        except ValueError:
            raise BadRequest(400, "hash is not base64") from None
        if len(digest) != 32:
            raise BadRequest(400, "hash is not a SHA-256 hash")
        if not 1 <= size <= view.head.size:
            raise BadRequest(400, f"tree_size must be in 1..{view.head.size}")
        index = view.tree.positions.get(digest)
        if index is None or index >= size:
            raise BadRequest(404, f"no leaf with that hash in the tree of size {size}")
        path = view.tree.inclusion(index, size)
        return self._json({"leaf_index": index, "audit_path": [b64(h) for h in path]})

    def _get_entries(self, query: dict[str, list[str]]) -> Response:
        view, faults = self.log._view()
        start, end = int_param(query, "start"), int_param(query, "end")
        if start > end:
            raise BadRequest(400, f"start {start} is after end {end}")
        if start >= view.head.size:
            raise BadRequest(400, f"start {start} is beyond the tree size {view.head.size}")
        end = min(end, view.head.size - 1, start + self.log.max_batch - 1)
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
            {"entries": [{"leaf_input": b64(leaf), "extra_data": b64(x)} for leaf, x in entries]}
        )

    def _chain_vector(self, entry: Entry) -> bytes:
        return b"".join(vector(self.log._issuers[f], 3) for f in entry.chain)

    def _get_roots(self, query: dict[str, list[str]]) -> Response:
        return self._json({"certificates": [b64(der_of(c)) for c in self.log.roots]})

    def _tile(self, rest: str) -> Response:
        view, faults = self.log._view()
        level_text, _, index_text = rest.partition("/")
        parsed = parse_tile(index_text)
        data = level_text == "data"
        if parsed is None or not (
            data or (re.fullmatch(r"0|[1-9]\d*", level_text) and int(level_text) <= MAX_TILE_LEVEL)
        ):
            raise BadRequest(404, f"no such tile: {rest}")
        level = 0 if data else int(level_text)
        index, width = parsed
        # Hashes available at this level: complete subtrees of 256^level leaves.
        available = view.head.size >> (TILE_HEIGHT * level)
        first = index * TILE_WIDTH
        if first + (width or TILE_WIDTH) > available:
            raise BadRequest(404, f"tile {rest} is not in the tree of size {view.head.size}")
        count = width or TILE_WIDTH
        if not data:
            hashes_ = view.tree.levels[TILE_HEIGHT * level][first : first + count]
            body = b"".join(hashes_)
        else:
            leaves = [tile_leaf(e) for e in view.tree.entries[first : first + count]]
            if "malformed-entries" in faults:
                # entry_type is the two bytes after the timestamp: 0xFFFF is no type
                leaves[0] = leaves[0][:8] + b"\xff\xff" + leaves[0][10:]
            body = b"".join(leaves)
            if "truncated-entries" in faults:
                body = body[: len(body) // 2]
        return Response(
            200,
            body,
            "application/octet-stream",
            (("Cache-Control", "public, max-age=604800, immutable"),),
        )

    def _issuer(self, fingerprint: str) -> Response:
        if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
            raise BadRequest(404, "an issuer is named by its lowercase hex SHA-256")
        with self.log._lock:
            der = self.log._issuers.get(bytes.fromhex(fingerprint))
        if der is None:
            raise BadRequest(404, f"no issuer {fingerprint}")
        return Response(
            200,
            der,
            "application/pkix-cert",
            (("Cache-Control", "public, max-age=604800, immutable"),),
        )

    def _add_chain(self, body: bytes, *, precert: bool) -> Response:
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
            raise BadRequest(400, f"bad request body: {error}") from None
        leaf, issuers = certs[0], certs[1:]
        try:
            poisoned = is_precert(leaf)
        except ValueError as error:  # cryptography could not read the extensions
            raise BadRequest(400, f"bad certificate: {error}") from None
        if poisoned != precert:
            kind = "a precertificate" if precert else "a certificate without poison"
            raise BadRequest(400, f"this endpoint takes {kind}")
        issuers = self._to_root(leaf, issuers)
        entry_type = SignedEntryType.PRECERT if precert else SignedEntryType.X509
        try:
            logged = self.log._add(entry_type, der_of(leaf), tuple(der_of(c) for c in issuers))
        except ValueError as error:  # a TBS we cannot take the poison out of, and such
            raise BadRequest(400, str(error)) from None
        sct = logged.sct
        return self._json(
            {
                "sct_version": 0,
                "id": b64(self.log.log_id),
                "timestamp": sct.timestamp_ms,
                "extensions": b64(sct.extensions),
                "signature": b64(
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
                raise BadRequest(400, "each certificate must be issued by the next") from None
        roots = {der_of(r): r for r in self.log.roots}
        if der_of(chain[-1]) in roots:
            return issuers
        for root in roots.values():
            try:
                chain[-1].verify_directly_issued_by(root)
            except Exception:  # noqa: S112 - try the next root
                continue
            return [*issuers, root]
        raise BadRequest(400, "the chain does not end at a root this log accepts")
