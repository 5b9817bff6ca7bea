"""The local CT log's Merkle tree: every complete subtree's hash kept, so that roots,
inclusion and consistency proofs (RFC 6962 2.1's recursive MTH, PATH and SUBPROOF) and
tiles at any published size are cheap. Separate from the log so that the tree can be
read (and checked against the RFC) on its own."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["EMPTY_ROOT", "Entry", "Tree", "leaf_hash", "node_hash"]

EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962 2.1: MTH({}) = SHA-256()


def leaf_hash(data: bytes) -> bytes:
    # Hashing written again here on purpose: the log must not share code with the
    # verifiers it is meant to test.
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(count: int) -> int:
    """RFC 6962 2.1: the largest power of two smaller than ``count`` (``count`` > 1)."""
    return 1 << ((count - 1).bit_length() - 1)


@dataclass(frozen=True, slots=True)
class Entry:
    """What the log keeps of one entry: the ``MerkleTreeLeaf`` it hashed, the submitted
    precertificate (precert entries only) and the SHA-256 fingerprints of the chain."""

    leaf_input: bytes
    precert: bytes | None
    chain: tuple[bytes, ...]

    @property
    def timestamped_entry(self) -> bytes:
        return self.leaf_input[2:]  # after MerkleTreeLeaf's version and leaf_type


class Tree:
    """An append-only Merkle tree that stores the hash of every complete subtree:
    ``levels[h][i]`` is MTH(D[i * 2^h : (i + 1) * 2^h]). Any root or proof at any size up
    to the current one is then O(log n) lookups, and the tiles are slices of the levels.

    Appends only ever add to these lists, so readers may use indexes below a size they
    saw published without a lock (list appends and reads are atomic in CPython)."""

    __slots__ = ("entries", "levels", "positions")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.levels: list[list[bytes]] = [[]]
        self.positions: dict[bytes, int] = {}  # leaf hash -> first index

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, entry: Entry, digest: bytes) -> None:
        levels = self.levels
        self.entries.append(entry)
        self.positions.setdefault(digest, len(levels[0]))
        levels[0].append(digest)
        height, index = 0, len(levels[0]) - 1
        while index % 2 == 1:  # this node completed a pair: its parent is complete too
            if height + 1 == len(levels):
                levels.append([])
            levels[height + 1].append(node_hash(levels[height][index - 1], levels[height][index]))
            height, index = height + 1, index // 2

    def hash(self, start: int, count: int) -> bytes:
        """MTH(D[start : start + count]) (RFC 6962 2.1)."""
        if count == 0:
            return EMPTY_ROOT
        height = count.bit_length() - 1
        if count == 1 << height and start % count == 0:
            return self.levels[height][start >> height]
        k = _split(count)
        return node_hash(self.hash(start, k), self.hash(start + k, count - k))

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

    def forked(self, size: int, index: int, entry: Entry, digest: bytes) -> Tree:
        """A copy of the first ``size`` entries with entry ``index`` replaced: another
        tree that a log showing a split view would serve to some clients."""
        fork = Tree()
        fork.entries = self.entries[:size]
        fork.entries[index] = entry
        fork.levels = [level[: size >> height] for height, level in enumerate(self.levels)]
        fork.levels[0][index] = digest
        for height in range(1, len(fork.levels)):
            parent = index >> height
            if parent < len(fork.levels[height]):
                below = fork.levels[height - 1]
                fork.levels[height][parent] = node_hash(below[2 * parent], below[2 * parent + 1])
        for position, leaf in enumerate(fork.levels[0]):
            fork.positions.setdefault(leaf, position)
        return fork
