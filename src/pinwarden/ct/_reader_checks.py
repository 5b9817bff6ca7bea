"""The checks :class:`~pinwarden.ct.reader.LogReader` runs on what a log client serves: two tree
heads consistent (else ``fork``), a compact range a prefix of a signed tree, an inclusion proof
that verifies, a static log's data tiles against its level-0 tiles; and the tree arithmetic
they need (the compact range on an audit path, a compact range extended with tile subtrees).

Functions of the client, not of the reader's state (its position, batch size and clock), so
they sit apart from it; the misbehaviour kinds and evidence are described in
:mod:`pinwarden.ct.reader`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import cast

from pinwarden.ct._json_text import b64
from pinwarden.ct.client import InclusionProof, RFC6962Client, gather
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.merkle import CompactRange, node_hash, verify_consistency, verify_inclusion
from pinwarden.ct.static import StaticClient, Subtree, tile_width
from pinwarden.ct.tiles import TILE_WIDTH
from pinwarden.ct.treehead import SignedTreeHead
from pinwarden.errors import InputError, MerkleProofError

Client = RFC6962Client | StaticClient


def fork(
    client: Client,
    first: SignedTreeHead,
    second: SignedTreeHead,
    proof: Sequence[bytes],
    detail: str,
) -> Exception:
    return client.misbehaviour(
        "fork",
        f"tree heads of sizes {first.tree_size} and {second.tree_size} are not "
        f"consistent: {detail}",
        {
            "first": first.to_json(),
            "second": second.to_json(),
            "proof": [b64(h) for h in proof],
        },
    )


async def prove_consistent(client: Client, old: SignedTreeHead, new: SignedTreeHead) -> None:
    """Prove the tree of ``old`` a prefix of the tree of ``new`` (``new`` is the larger)."""
    if old.tree_size == 0:
        return
    if isinstance(client, RFC6962Client):
        proof = await client.get_sth_consistency(old.tree_size, new.tree_size)
        try:
            verify_consistency(old.tree_size, new.tree_size, proof, old.root_hash, new.root_hash)
        except MerkleProofError as exc:
            raise fork(client, old, new, proof, str(exc)) from None
        return
    compact = await client.compact_range(old.tree_size, new.tree_size)
    subtrees = await client.subtree_hashes(old.tree_size, new.tree_size, new.tree_size)
    computed = _extend(compact, subtrees)
    if not hmac.compare_digest(computed, new.root_hash):
        raise client.misbehaviour(
            "wrong-root",
            f"the tiles of the tree of size {new.tree_size} give root {computed.hex()}, "
            f"the checkpoint says {new.root_hash.hex()}",
            {"tree_head": new.to_json(), "computed_root": b64(computed)},
        )
    old_root = compact.root()
    if not hmac.compare_digest(old_root, old.root_hash):
        raise fork(
            client,
            old,
            new,
            compact.hashes,
            f"the tree of size {new.tree_size} does not contain the tree of size "
            f"{old.tree_size}: its tiles give root {old_root.hex()} at that size, the "
            f"earlier checkpoint says {old.root_hash.hex()}",
        )


async def prove_prefix(
    client: Client, compact: CompactRange, head: SignedTreeHead, kind: str, what: str
) -> None:
    """:meth:`LogReader.check_prefix <pinwarden.ct.reader.LogReader.check_prefix>`, failing
    with ``kind``; ``what`` names the range."""
    size = compact.size
    subject = f"{what} of the first {size} entries"
    if size > head.tree_size:
        raise InputError(f"position {size} is beyond the tree head's size {head.tree_size}")
    evidence: dict[str, object] = {
        "tree_head": head.to_json(),
        "position": size,
        "computed_root": b64(compact.root()),
    }
    if kind == "state-mismatch":
        evidence["compact_range"] = b64(compact.to_bytes())
    if size == head.tree_size:
        if not hmac.compare_digest(compact.root(), head.root_hash):
            raise client.misbehaviour(
                kind,
                f"{subject} hashes to {compact.root().hex()}, the tree head of that "
                f"size says {head.root_hash.hex()}",
                evidence,
            )
        return
    if size == 0:
        return
    if isinstance(client, RFC6962Client):
        proof = await client.get_sth_consistency(size, head.tree_size)
        try:
            verify_consistency(size, head.tree_size, proof, compact.root(), head.root_hash)
        except MerkleProofError as exc:
            evidence["proof"] = [b64(h) for h in proof]
            raise client.misbehaviour(
                kind,
                f"{subject} is not a prefix of the signed tree of size {head.tree_size} "
                f"(it or the proof is wrong): {exc}",
                evidence,
            ) from None
        return
    subtrees = await client.subtree_hashes(size, head.tree_size, head.tree_size)
    computed = _extend(compact, subtrees)
    if not hmac.compare_digest(computed, head.root_hash):
        evidence["extended_root"] = b64(computed)
        raise client.misbehaviour(
            kind,
            f"{subject} extended with the log's tiles gives root "
            f"{computed.hex()}, the checkpoint of size {head.tree_size} says "
            f"{head.root_hash.hex()}",
            evidence,
        )


def check_inclusion(
    client: Client, leaf: bytes, index: int, proof: InclusionProof, head: SignedTreeHead
) -> None:
    try:
        verify_inclusion(leaf, index, head.tree_size, proof.audit_path, head.root_hash)
    except MerkleProofError as exc:
        raise client.misbehaviour(
            "bad-proof",
            f"the inclusion proof of entry {index} does not verify: {exc}",
            {
                "tree_head": head.to_json(),
                "leaf_index": index,
                "leaf_hash": b64(leaf),
                "audit_path": [b64(h) for h in proof.audit_path],
            },
        ) from None


async def fetch_entries(
    client: Client, start: int, stop: int, head: SignedTreeHead
) -> list[LogEntry]:
    """Entries ``start`` to ``stop - 1``; from a static log, each checked against its hash in
    the level-0 tile (not yet against the signed root)."""
    if isinstance(client, RFC6962Client):
        return await client.get_entries(start, stop)
    tiles = range(start // TILE_WIDTH, (stop - 1) // TILE_WIDTH + 1)
    widths = [tile_width(0, tile, head.tree_size) for tile in tiles]
    pairs = list(zip(tiles, widths, strict=True))
    # One gather for both kinds, so a failure cancels every request of the batch.
    results = await gather(
        [
            *(client.data_tile(t, w) for t, w in pairs),
            *(client.hash_tile(0, t, w) for t, w in pairs),
        ]
    )
    data_tiles = cast("list[list[LogEntry]]", results[: len(pairs)])
    hash_tiles = cast("list[tuple[bytes, ...]]", results[len(pairs) :])
    entries: list[LogEntry] = []
    for tile, tile_entries, tile_hashes in zip(tiles, data_tiles, hash_tiles, strict=True):
        for entry, expected in zip(tile_entries, tile_hashes, strict=True):
            if not start <= entry.index < stop:
                continue
            if not hmac.compare_digest(entry.leaf_hash, expected):
                raise client.misbehaviour(
                    "malformed-entry",
                    f"entry {entry.index} of data tile {tile} hashes to "
                    f"{entry.leaf_hash.hex()}, the level-0 tile says {expected.hex()}",
                    {
                        "tree_head": head.to_json(),
                        "index": entry.index,
                        "leaf_hash": b64(entry.leaf_hash),
                        "tile_hash": b64(expected),
                    },
                )
            entries.append(entry)
    return entries


def _left_siblings(index: int, size: int, path: Sequence[bytes]) -> list[bytes]:
    """The audit-path hashes that are left siblings (RFC 9162 section 2.1.3.2's walk), largest
    first: the subtrees covering the leaves before ``index``, i.e. its compact range."""
    fn, sn = index, size - 1
    lefts = []
    for sibling in path:
        if fn & 1 or fn == sn:
            lefts.append(sibling)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        fn, sn = fn >> 1, sn >> 1
    return lefts[::-1]


def _extend(compact: CompactRange, subtrees: Sequence[Subtree]) -> bytes:
    """The root of the tree made of ``compact``'s leaves followed by ``subtrees`` (aligned,
    left to right, as :meth:`StaticClient.subtree_hashes` gives them)."""
    heights = [
        bit for bit in range(compact.size.bit_length() - 1, -1, -1) if compact.size >> bit & 1
    ]
    stack = list(zip(heights, compact.hashes, strict=True))
    for height, _start, digest in subtrees:
        stack.append((height, digest))
        # Two equal subtrees side by side are siblings: the same merge as CompactRange.append.
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (level, right), (_, left) = stack.pop(), stack.pop()
            stack.append((level + 1, node_hash(left, right)))
    if not stack:
        return CompactRange().root()
    root = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root
