"""Merkle hashing, proofs and the compact range: transparency-dev's vectors, a recursive
reference implementation of RFC 6962 section 2.1 written here, and hypothesis properties."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import vectors
from pinwarden.ct.merkle import (
    EMPTY_ROOT,
    CompactRange,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from pinwarden.errors import CTFormatError, MerkleProofError

# --- reference implementation: the recursive definitions of RFC 6962 section 2.1, verbatim ----


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def ref_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(ref_root(leaves[:k]), ref_root(leaves[k:]))


def ref_inclusion(leaves: Sequence[bytes], m: int) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*ref_inclusion(leaves[:k], m), ref_root(leaves[k:])]
    return [*ref_inclusion(leaves[k:], m - k), ref_root(leaves[:k])]


def _subproof(leaves: Sequence[bytes], m: int, whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves[:k], m, whole), ref_root(leaves[k:])]
    return [*_subproof(leaves[k:], m - k, False), ref_root(leaves[:k])]


def ref_consistency(leaves: Sequence[bytes], m: int) -> list[bytes]:
    return _subproof(leaves, m, True)


def _leaves(count: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"{salt}:{i}".encode()) for i in range(count)]


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- the transparency-dev vectors -----------------------------------------------------------


def _vector_files(kind: str) -> list[Path]:
    # Collected at import for the test ids; an absent folder gives one test that skips (or
    # fails under PINWARDEN_REQUIRE_VECTORS=1) through vectors() below.
    bases = [Path(__file__).resolve().parents[2].parent / "shared" / "testdata"]
    bases.append(Path("/work/shared/testdata"))
    if os.environ.get("PINWARDEN_TESTDATA"):
        bases.insert(0, Path(os.environ["PINWARDEN_TESTDATA"]))
    for base in bases:
        folder = base / "ct" / "merkle" / kind
        if folder.is_dir():
            return sorted(folder.rglob("*.json"))
    return []


def _id(path: Path) -> str:
    return "/".join(path.parts[-3:]).removesuffix(".json")


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _load(kind: str, path: Path | None) -> dict[str, Any]:
    folder = vectors("ct/merkle") / kind
    if path is None:
        pytest.fail(f"no vectors found in {folder}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


INCLUSION = _vector_files("inclusion")
CONSISTENCY = _vector_files("consistency")


def test_vector_counts_match_sources() -> None:
    # SOURCES.md lists 98 + 98 files: a lost file would silently shrink the parametrized set.
    vectors("ct/merkle")
    assert (len(INCLUSION), len(CONSISTENCY)) == (98, 98)


@pytest.mark.vectors
@pytest.mark.parametrize("path", INCLUSION or [None], ids=_id if INCLUSION else None)
def test_inclusion_vector(path: Path | None) -> None:
    case = _load("inclusion", path)
    proof = [_b64(p) for p in case["proof"] or []]
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(MerkleProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.vectors
@pytest.mark.parametrize("path", CONSISTENCY or [None], ids=_id if CONSISTENCY else None)
def test_consistency_vector(path: Path | None) -> None:
    case = _load("consistency", path)
    proof = [_b64(p) for p in case["proof"] or []]
    args = (case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(MerkleProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


@pytest.mark.vectors
def test_vector_trees_are_the_rfc_reference_leaves() -> None:
    # The vectors' trees are built from the eight RFC 6962 reference leaves; our MTH must give
    # the vectors' root for them, so the happy paths are not only self-consistent.
    folder = vectors("ct/merkle")
    rfc_leaves = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ]
    case = json.loads((folder / "inclusion" / "1" / "happy-path.json").read_text())
    assert case["treeSize"] == 8
    assert root_from_leaves([leaf_hash(d) for d in rfc_leaves]) == _b64(case["root"])


# --- root_from_leaves and the compact range --------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root_from_leaves([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert CompactRange().root() == EMPTY_ROOT
    assert CompactRange().hashes == ()


def test_small_trees_by_hand() -> None:
    a, b, c = _leaves(3)
    assert root_from_leaves([a]) == a
    assert root_from_leaves([a, b]) == node_hash(a, b)
    assert root_from_leaves([a, b, c]) == node_hash(node_hash(a, b), c)
    compact = CompactRange.from_leaves([a, b, c])
    assert compact.size == 3
    assert compact.hashes == (node_hash(a, b), c)


@settings(max_examples=150)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_compact_range_root_equals_reference_at_every_size(leaves: list[bytes]) -> None:
    compact = CompactRange()
    assert compact.root() == ref_root([])
    for n, value in enumerate(leaves, start=1):
        compact.append(value)
        assert compact.size == n
        assert len(compact.hashes) == n.bit_count()
        assert compact.root() == ref_root(leaves[:n])
    assert root_from_leaves(leaves) == ref_root(leaves)


@settings(max_examples=100)
@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 3))
def test_save_and_restore_midway_gives_the_same_roots(total: int, cut: int, salt: int) -> None:
    leaves = _leaves(total, salt)
    cut = min(cut, total)
    first = CompactRange.from_leaves(leaves[:cut])
    saved = first.to_bytes()
    by_bytes = CompactRange.from_bytes(saved)
    by_state = CompactRange.from_state(first.size, first.hashes)
    assert by_bytes == by_state == first
    for restored in (by_bytes, by_state):
        restored.extend(leaves[cut:])
        assert restored.size == total
        assert restored.root() == ref_root(leaves)
    # Saving is a snapshot: later appends do not change the bytes already written.
    assert CompactRange.from_bytes(saved).size == cut


def test_saved_state_is_small_and_versioned() -> None:
    compact = CompactRange.from_leaves(_leaves(1000))
    data = compact.to_bytes()
    assert data[:5] == b"pwcr\x01"
    assert len(data) == 4 + 1 + 8 + 32 * (1000).bit_count()


def test_verify_root() -> None:
    leaves = _leaves(13)
    compact = CompactRange.from_leaves(leaves)
    compact.verify_root(ref_root(leaves))
    with pytest.raises(MerkleProofError, match="root mismatch: the 13 leaves give"):
        compact.verify_root(ref_root(leaves[:12]))
    with pytest.raises(MerkleProofError, match="root is 31 bytes, not 32"):
        compact.verify_root(b"x" * 31)


def test_copy_is_independent() -> None:
    compact = CompactRange.from_leaves(_leaves(5))
    other = compact.copy()
    other.append(leaf_hash(b"more"))
    assert compact.size == 5
    assert other.size == 6
    assert compact != other


def test_append_refuses_a_hash_of_the_wrong_size() -> None:
    compact = CompactRange.from_leaves(_leaves(2))
    with pytest.raises(MerkleProofError, match="leaf hash 2 is 5 bytes, not 32"):
        compact.append(b"short")
    assert compact.size == 2


@pytest.mark.parametrize(
    ("size", "hashes", "message"),
    [
        (3, [b"a" * 32], "size 3 has 2 edge hashes, got 1"),
        (0, [b"a" * 32], "size 0 has 0 edge hashes, got 1"),
        (2, [b"a" * 31], "edge hash 0 is not 32 bytes"),
        (-1, [], "size -1 is not an integer"),
        (1 << 64, [], "is not an integer in 0..2\\^64-1"),
        (True, [b"a" * 32], "size True is not an integer"),
    ],
)
def test_from_state_validates(size: int, hashes: list[bytes], message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        CompactRange.from_state(size, hashes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated at byte 0: magic"),
        (b"nope\x01" + bytes(8), "wrong magic"),
        (b"pwcr\x02" + bytes(8), "unknown format version 2"),
        (b"pwcr\x01" + (3).to_bytes(8, "big") + bytes(32), "edge hash 1 needs 32 bytes"),
        (b"pwcr\x01" + bytes(8) + b"x", "1 unexpected trailing bytes"),
    ],
)
def test_from_bytes_names_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        CompactRange.from_bytes(data)


@given(st.binary(max_size=200))
def test_from_bytes_of_garbage_raises_only_ct_format_error(data: bytes) -> None:
    try:
        compact = CompactRange.from_bytes(data)
    except CTFormatError:
        return
    assert compact.to_bytes() == data


@given(st.integers(0, 300), st.binary(max_size=120))
def test_from_bytes_of_mangled_state_raises_only_ct_format_error(size: int, tail: bytes) -> None:
    good = CompactRange.from_leaves(_leaves(size)).to_bytes()
    for data in (good[: len(good) // 2], good + tail[:1], good[:13] + tail):
        with contextlib.suppress(CTFormatError):
            CompactRange.from_bytes(data)


@settings(max_examples=60)
@given(st.integers(1, 150), st.integers(0, 3))
def test_start_at_the_head_from_the_last_leaf_proof(size: int, salt: int) -> None:
    leaves = _leaves(size + 5, salt)
    head = leaves[:size]
    compact = CompactRange.from_last_leaf_proof(
        head[-1], size, ref_inclusion(head, size - 1), ref_root(head)
    )
    assert compact == CompactRange.from_leaves(head)
    compact.extend(leaves[size:])
    assert compact.root() == ref_root(leaves)


def test_last_leaf_proof_is_checked() -> None:
    head = _leaves(6)
    proof = ref_inclusion(head, 5)
    with pytest.raises(MerkleProofError, match="root mismatch"):
        CompactRange.from_last_leaf_proof(head[4], 6, proof, ref_root(head))
    with pytest.raises(MerkleProofError, match="size 0 has no last leaf"):
        CompactRange.from_last_leaf_proof(head[0], 0, [], EMPTY_ROOT)


# --- proofs from the reference implementation -----------------------------------------------


@settings(max_examples=150)
@given(st.data())
def test_reference_inclusion_proofs_verify_and_every_bit_flip_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 70), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaves = _leaves(size, data.draw(st.integers(0, 3), label="salt"))
    proof = ref_inclusion(leaves, index)
    root = ref_root(leaves)
    verify_inclusion(leaves[index], index, size, proof, root)

    bit = data.draw(st.integers(0, 255), label="bit")
    target = data.draw(
        st.sampled_from(["leaf", "root", *(f"proof{i}" for i in range(len(proof)))]),
        label="target",
    )
    leaf, bad_proof, bad_root = leaves[index], list(proof), root
    if target == "leaf":
        leaf = _flip(leaf, bit)
    elif target == "root":
        bad_root = _flip(root, bit)
    else:
        i = int(target.removeprefix("proof"))
        bad_proof[i] = _flip(proof[i], bit)
    with pytest.raises(MerkleProofError, match="root mismatch"):
        verify_inclusion(leaf, index, size, bad_proof, bad_root)


@settings(max_examples=150)
@given(st.data())
def test_reference_consistency_proofs_verify_and_every_bit_flip_fails(
    data: st.DataObject,
) -> None:
    size2 = data.draw(st.integers(1, 70), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    leaves = _leaves(size2, data.draw(st.integers(0, 3), label="salt"))
    proof = ref_consistency(leaves, size1)
    root1, root2 = ref_root(leaves[:size1]), ref_root(leaves)
    verify_consistency(size1, size2, proof, root1, root2)

    targets = ["root1", "root2", *(f"proof{i}" for i in range(len(proof)))]
    target = data.draw(st.sampled_from(targets), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    bad_proof, bad1, bad2 = list(proof), root1, root2
    if target == "root1":
        bad1 = _flip(root1, bit)
    elif target == "root2":
        bad2 = _flip(root2, bit)
    else:
        i = int(target.removeprefix("proof"))
        bad_proof[i] = _flip(proof[i], bit)
    with pytest.raises(MerkleProofError, match="mismatch"):
        verify_consistency(size1, size2, bad_proof, bad1, bad2)


@settings(max_examples=100)
@given(st.data())
def test_proofs_for_other_positions_fail(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 70), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
    leaves = _leaves(size)
    proof = ref_inclusion(leaves, index)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[index], other, size, proof, ref_root(leaves))
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaves[other], index, size, proof, ref_root(leaves))


@settings(max_examples=100)
@given(st.data())
def test_a_forked_tree_is_not_consistent(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(2, 70), label="size2")
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    changed = data.draw(st.integers(0, size1 - 1), label="changed")
    leaves = _leaves(size2)
    forked = list(leaves)
    forked[changed] = leaf_hash(b"rewritten history")
    # The log shows the honest old root but proves consistency from its rewritten tree.
    with pytest.raises(MerkleProofError, match="mismatch"):
        verify_consistency(
            size1, size2, ref_consistency(forked, size1), ref_root(leaves[:size1]), ref_root(forked)
        )


# --- precise messages ------------------------------------------------------------------------


def test_inclusion_messages() -> None:
    leaves = _leaves(5)
    proof = ref_inclusion(leaves, 2)
    root = ref_root(leaves)
    with pytest.raises(MerkleProofError, match="leaf index 5 is outside a tree of size 5"):
        verify_inclusion(leaves[2], 5, 5, proof, root)
    with pytest.raises(MerkleProofError, match="leaf index -1 is not an integer"):
        verify_inclusion(leaves[2], -1, 5, proof, root)
    with pytest.raises(MerkleProofError, match=r"wrong proof length .* 2 hashes, expected 3"):
        verify_inclusion(leaves[2], 2, 5, proof[:2], root)
    with pytest.raises(MerkleProofError, match=r"wrong proof length .* 4 hashes, expected 3"):
        verify_inclusion(leaves[2], 2, 5, [*proof, root], root)
    with pytest.raises(MerkleProofError, match="proof hash 1 is 33 bytes, not 32"):
        verify_inclusion(leaves[2], 2, 5, [proof[0], proof[1] + b"x", proof[2]], root)
    with pytest.raises(MerkleProofError, match="leaf hash is 0 bytes"):
        verify_inclusion(b"", 2, 5, proof, root)
    with pytest.raises(MerkleProofError, match="root is 0 bytes"):
        verify_inclusion(leaves[2], 2, 5, proof, b"")


def test_consistency_messages() -> None:
    leaves = _leaves(7)
    proof = ref_consistency(leaves, 3)
    r3, r7 = ref_root(leaves[:3]), ref_root(leaves)
    with pytest.raises(MerkleProofError, match=r"size1 \(7\) is larger than size2 \(3\)"):
        verify_consistency(7, 3, proof, r7, r3)
    with pytest.raises(MerkleProofError, match="size1 is 0: the empty tree"):
        verify_consistency(0, 7, [], EMPTY_ROOT, r7)
    with pytest.raises(MerkleProofError, match="equal size 3 need an empty proof, got 1"):
        verify_consistency(3, 3, proof[:1], r3, r3)
    with pytest.raises(MerkleProofError, match="two trees of size 3 have different roots"):
        verify_consistency(3, 3, [], r3, r7)
    with pytest.raises(MerkleProofError, match=r"root1 .* is not the empty tree's root"):
        verify_consistency(0, 0, [], r3, r3)
    with pytest.raises(MerkleProofError, match=r"wrong proof length for sizes 3 -> 7: 2 hashes"):
        verify_consistency(3, 7, proof[:2], r3, r7)
    with pytest.raises(MerkleProofError, match="root2 is 31 bytes"):
        verify_consistency(3, 7, proof, r3, r7[:31])
    with pytest.raises(MerkleProofError, match="root1 mismatch"):
        verify_consistency(3, 7, proof, r7, r7)
    with pytest.raises(MerkleProofError, match="root2 mismatch"):
        verify_consistency(3, 7, proof, r3, r3)
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(7, 7, [], r7, r7)


@pytest.mark.parametrize(
    ("root1", "root2", "message"),
    [
        ("abc", "abc", "root1 is a str, not bytes"),
        (b"abc", "abc", "root2 is a str, not bytes"),
        (None, None, "root1 is a NoneType, not bytes"),
        (list(bytes(32)), list(bytes(32)), "root1 is a list, not bytes"),
    ],
)
def test_equal_sizes_refuse_roots_that_are_not_bytes(root1: Any, root2: Any, message: str) -> None:
    # compare_digest accepts two equal ASCII strs: without the type check "abc" == "abc"
    # passed as a consistency proof, and None raised a bare TypeError.
    with pytest.raises(MerkleProofError, match=message):
        verify_consistency(5, 5, [], root1, root2)


def test_equal_sizes_still_accept_equal_roots_of_any_length() -> None:
    # A transparency-dev vector compares roots of equal sizes without checking their length.
    roots: list[Any] = [b"", b"abc", bytes(33), bytearray(b"xy"), memoryview(b"xy")]
    for root in roots:
        verify_consistency(5, 5, [], root, bytes(root))
    with pytest.raises(MerkleProofError, match="different roots 616263 and 616264"):
        verify_consistency(5, 5, [], b"abc", b"abd")


def test_sizes_beyond_uint64_are_refused() -> None:
    with pytest.raises(MerkleProofError, match="tree size 18446744073709551616 is not"):
        verify_inclusion(bytes(32), 0, 1 << 64, [], bytes(32))
    with pytest.raises(MerkleProofError, match="size2 18446744073709551616 is not"):
        verify_consistency(1, 1 << 64, [], bytes(32), bytes(32))


def test_large_tree_proof_lengths() -> None:
    # A proof for a leaf in a tree of 2^63 + 5 leaves: verification must not depend on the size
    # being small (no per-leaf work), only on the proof length.
    size = (1 << 63) + 5
    index = 12345
    inner = (index ^ (size - 1)).bit_length()
    with pytest.raises(MerkleProofError, match=f"expected {inner}"):
        verify_inclusion(bytes(32), index, size, [], bytes(32))
