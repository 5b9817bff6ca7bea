"""Merkle tree hashing and proof verification (RFC 6962 section 2.1, RFC 9162 section 2.1).

Hand-written: the maintained implementations are in Go (transparency-dev/merkle) and no Python
library on our index verifies both proof kinds. The verifiers follow the algorithms of RFC 9162
sections 2.1.3.2 and 2.1.4.2; the proof length is checked first so that a short or long proof
gets a precise message instead of a generic root mismatch.

:class:`CompactRange` is the right edge of a tree (one subtree root per set bit of the size): it
absorbs leaf hashes in order and gives the root at the current size in O(log n) memory, so a
monitor can recompute every signed root from the entries it downloaded and resume after a
restart from a few hundred bytes of saved state.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from pinwarden.ct._wire import Reader, u8, u64
from pinwarden.errors import CTFormatError, MerkleProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "leaf_hash",
    "node_hash",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

HASH_SIZE = 32
"""Bytes in every leaf, node and root hash (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree: ``SHA-256()`` of nothing (RFC 6962 section 2.1)."""

# Tree sizes and indices are uint64 on the wire (RFC 6962 section 3.5, static-ct-api).
_MAX_SIZE = (1 << 64) - 1


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf (a serialized ``MerkleTreeLeaf``)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """The Merkle tree hash (RFC 6962 ``MTH``) of the tree whose leaves have these hashes,
    in order; :data:`EMPTY_ROOT` for no leaves. Memory is O(log n) (see :class:`CompactRange`)."""
    return CompactRange.from_leaves(leaf_hashes).root()


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf with hash ``leaf_hash`` is at ``index`` in the tree of ``tree_size``
    leaves whose root is ``root`` (RFC 9162 section 2.1.3.2).

    Raises :class:`~pinwarden.errors.MerkleProofError` naming what failed: an index outside the
    tree, a proof of the wrong length, a hash that is not 32 bytes, or a root mismatch.
    """
    _check_size(tree_size, "tree size")
    _check_size(index, "leaf index")
    if index >= tree_size:
        raise MerkleProofError(f"leaf index {index} is outside a tree of size {tree_size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    path = _check_proof(proof)
    inner, border = _decompose(index, tree_size)
    if len(path) != inner + border:
        raise MerkleProofError(
            f"wrong proof length for leaf {index} in a tree of size {tree_size}: "
            f"{len(path)} hashes, expected {inner + border}"
        )

    fn, sn = index, tree_size - 1
    computed = leaf_hash
    for sibling in path:
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            computed = node_hash(computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    # With the length checked above this cannot fail; keep the RFC's final check anyway.
    if sn != 0:
        raise MerkleProofError(f"inclusion proof for leaf {index} does not reach the root")
    if not hmac.compare_digest(computed, root):
        raise MerkleProofError(
            f"root mismatch: the inclusion proof for leaf {index} in a tree of size {tree_size} "
            f"gives {computed.hex()}, the expected root is {root.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size1`` leaves with root ``root1`` is a prefix of the tree of
    ``size2`` leaves with root ``root2`` (RFC 9162 section 2.1.4.2).

    Equal sizes need an empty proof and equal roots. ``size1 == 0 < size2`` is refused: the
    empty tree is a prefix of every tree, so such a "proof" checks nothing (a caller that saw
    an empty tree has nothing to compare). Raises :class:`~pinwarden.errors.MerkleProofError`
    naming what failed.
    """
    _check_size(size1, "size1")
    _check_size(size2, "size2")
    if size1 > size2:
        raise MerkleProofError(f"size1 ({size1}) is larger than size2 ({size2})")
    if size1 == size2:
        if proof:
            raise MerkleProofError(
                f"wrong proof length: trees of equal size {size1} need an empty proof, "
                f"got {len(proof)} hashes"
            )
        if size1 == 0:
            _check_empty_root(root1, "root1")
            _check_empty_root(root2, "root2")
            return
        # The transparency-dev vectors accept equal roots of any length here; nothing is
        # hashed, so a wrong-length root can only match an equally wrong one. The type is
        # still checked: compare_digest would accept two equal ASCII strs.
        _check_bytes(root1, "root1")
        _check_bytes(root2, "root2")
        if not hmac.compare_digest(root1, root2):
            raise MerkleProofError(
                f"root mismatch: two trees of size {size1} have different roots "
                f"{root1.hex()} and {root2.hex()}"
            )
        return
    if size1 == 0:
        raise MerkleProofError(
            f"size1 is 0: the empty tree is a prefix of every tree, so a consistency proof "
            f"to size {size2} proves nothing"
        )
    _check_hash(root1, "root1")
    _check_hash(root2, "root2")
    path = _check_proof(proof)
    expected = _consistency_proof_length(size1, size2)
    if len(path) != expected:
        raise MerkleProofError(
            f"wrong proof length for sizes {size1} -> {size2}: {len(path)} hashes, "
            f"expected {expected}"
        )

    if size1 & (size1 - 1) == 0:
        # size1 is a power of two: the old root is itself a node of the new tree.
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first = second = path[0]
    for node in path[1:]:
        if fn & 1 or fn == sn:
            first = node_hash(node, first)
            second = node_hash(node, second)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            second = node_hash(second, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise MerkleProofError(f"consistency proof {size1} -> {size2} does not reach the root")
    if not hmac.compare_digest(first, root1):
        raise MerkleProofError(
            f"root1 mismatch: the consistency proof {size1} -> {size2} gives {first.hex()} "
            f"for size {size1}, the expected root is {root1.hex()}"
        )
    if not hmac.compare_digest(second, root2):
        raise MerkleProofError(
            f"root2 mismatch: the consistency proof {size1} -> {size2} gives {second.hex()} "
            f"for size {size2}, the expected root is {root2.hex()}"
        )


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SIZE:
        raise MerkleProofError(f"{what} {value!r} is not an integer in 0..2^64-1")


def _check_bytes(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise MerkleProofError(f"{what} is a {type(value).__name__}, not bytes")


def _check_hash(value: bytes, what: str) -> None:
    _check_bytes(value, what)
    if len(value) != HASH_SIZE:
        raise MerkleProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_empty_root(value: bytes, what: str) -> None:
    _check_hash(value, what)
    if not hmac.compare_digest(value, EMPTY_ROOT):
        raise MerkleProofError(
            f"root mismatch: {what} {value.hex()} is not the empty tree's root {EMPTY_ROOT.hex()}"
        )


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    path = list(proof)
    for position, node in enumerate(path):
        _check_hash(node, f"proof hash {position}")
    return [bytes(node) for node in path]


def _decompose(index: int, size: int) -> tuple[int, int]:
    """The inclusion proof of ``index`` in a tree of ``size`` leaves: ``inner`` hashes below the
    point where the leaf's path leaves the right edge, then ``border`` hashes of the left
    subtrees along that edge."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _consistency_proof_length(size1: int, size2: int) -> int:
    # The proof is the inclusion proof of the last old leaf, minus the levels below the largest
    # perfect subtree that ends at size1, plus that subtree's root unless it is root1 itself.
    shift = (size1 & -size1).bit_length() - 1
    inner, border = _decompose(size1 - 1, size2)
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner - shift + border


_STATE_MAGIC = b"pwcr"
_STATE_VERSION = 1


class CompactRange:
    """The right edge of a Merkle tree built from leaf hashes appended in order.

    ``hashes`` holds one subtree root per set bit of ``size``, largest (leftmost) subtree first;
    that is all that is needed to compute the root now and after further appends. Save it with
    :meth:`to_bytes` (or ``size`` + ``hashes``) and restore it with :meth:`from_bytes`
    (:meth:`from_state`). Not thread-safe: one owner appends.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_leaves(cls, leaf_hashes: Iterable[bytes]) -> CompactRange:
        """The range of a tree with these leaf hashes, in order."""
        compact = cls()
        compact.extend(leaf_hashes)
        return compact

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Restore a saved range; raises :class:`~pinwarden.errors.CTFormatError` when the
        state is impossible (a size out of range, hashes not 32 bytes, or a number of hashes
        other than the number of set bits of ``size``)."""
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_SIZE:
            raise CTFormatError(f"compact range: size {size!r} is not an integer in 0..2^64-1")
        hashes = list(hashes)
        if len(hashes) != size.bit_count():
            raise CTFormatError(
                f"compact range: a tree of size {size} has {size.bit_count()} edge hashes, "
                f"got {len(hashes)}"
            )
        for position, value in enumerate(hashes):
            if not isinstance(value, bytes | bytearray | memoryview) or len(value) != HASH_SIZE:
                raise CTFormatError(f"compact range: edge hash {position} is not {HASH_SIZE} bytes")
        compact = cls()
        compact._size = size
        compact._hashes = [bytes(value) for value in hashes]
        return compact

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """Read what :meth:`to_bytes` wrote; anything else raises
        :class:`~pinwarden.errors.CTFormatError`."""
        reader = Reader(data, "compact range")
        if reader.fixed(len(_STATE_MAGIC), "magic") != _STATE_MAGIC:
            raise CTFormatError("compact range: not a saved compact range (wrong magic bytes)")
        version = reader.u8("version")
        if version != _STATE_VERSION:
            raise CTFormatError(f"compact range: unknown format version {version}")
        size = reader.u64("size")
        hashes = [reader.fixed(HASH_SIZE, f"edge hash {i}") for i in range(size.bit_count())]
        reader.end()
        return cls.from_state(size, hashes)

    @classmethod
    def from_last_leaf_proof(
        cls, leaf_hash: bytes, tree_size: int, proof: Sequence[bytes], root: bytes
    ) -> CompactRange:
        """The range at ``tree_size`` from the hash of its last leaf and that leaf's inclusion
        proof, after checking both against ``root``: how a monitor starts at the head of a
        log without downloading it (the proof of the last leaf is the right edge of the tree
        before it; certspotter starts the same way)."""
        _check_size(tree_size, "tree size")
        if tree_size < 1:
            raise MerkleProofError(f"a tree of size {tree_size} has no last leaf")
        verify_inclusion(leaf_hash, tree_size - 1, tree_size, proof, root)
        compact = cls.from_state(tree_size - 1, list(reversed(proof)))
        compact.append(leaf_hash)
        return compact

    @property
    def size(self) -> int:
        """The number of leaves absorbed."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree roots along the right edge, largest subtree first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Absorb the next leaf (its leaf hash, see :func:`leaf_hash`)."""
        _check_hash(leaf_hash, f"leaf hash {self._size}")
        if self._size == _MAX_SIZE:
            raise MerkleProofError("compact range is full (2^64-1 leaves)")
        self._hashes.append(bytes(leaf_hash))
        self._size += 1
        # Each trailing zero bit of the new size is a pair of equal-sized subtrees to merge.
        merges = (self._size & -self._size).bit_length() - 1
        for _ in range(merges):
            right = self._hashes.pop()
            left = self._hashes.pop()
            self._hashes.append(node_hash(left, right))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Absorb leaves in order (see :meth:`append`)."""
        for value in leaf_hashes:
            self.append(value)

    def root(self) -> bytes:
        """The root of the tree of the leaves absorbed so far."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            result = node_hash(left, result)
        return result

    def verify_root(self, root: bytes) -> None:
        """Raise :class:`~pinwarden.errors.MerkleProofError` unless ``root`` is the root of
        the tree at the current size (e.g. the root of a signed tree head of that size)."""
        _check_hash(root, "root")
        computed = self.root()
        if not hmac.compare_digest(computed, root):
            raise MerkleProofError(
                f"root mismatch: the {self._size} leaves give {computed.hex()}, "
                f"the expected root is {root.hex()}"
            )

    def to_bytes(self) -> bytes:
        """``"pwcr" || version (1 byte) || size (uint64) || edge hashes``."""
        return _STATE_MAGIC + u8(_STATE_VERSION) + u64(self._size) + b"".join(self._hashes)

    def copy(self) -> CompactRange:
        """An independent range at the same size (to look ahead without committing)."""
        return CompactRange.from_state(self._size, self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"
