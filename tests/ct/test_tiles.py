"""static-ct-api tiles: the real tiles of a production log (Sunlight's navigli2025h2 test
data), tile paths, gzip, malformed tiles, and hypothesis properties."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import vectors
from pinwarden.ct._wire import u16, u64, vector
from pinwarden.ct.entries import (
    MAX_TIMESTAMP_MS,
    LogEntry,
    certificate_tbs,
    encode_leaf_index_extension,
    encode_timestamped_entry,
    strip_ct_extensions,
    tbs_hash,
)
from pinwarden.ct.merkle import root_from_leaves
from pinwarden.ct.sct import SignedEntryType
from pinwarden.ct.tiles import (
    TILE_WIDTH,
    TileCoordinates,
    _read_tile_leaf,
    _split_tile_leaf,
    encode_tile_leaf,
    parse_data_tile,
    parse_hash_tile,
    parse_tile_path,
    tile_index_path,
    tile_path,
    tile_url,
)
from pinwarden.errors import CTFormatError
from pinwarden.pins import Pin

ROOT_1024 = "10c7c61bce6e21d75e397b79ff075018fdc841dd02382aa82e0f50e82b0f2c90"
ROOT_778 = "f969c738c45997f2c6d7aebda1eb246dd2bd6dc3b89e4ad8d5c7d5ca49c2e765"
FULL_TILES = ("000", "001", "002", "003")


@pytest.fixture(scope="module")
def tiles() -> Path:
    return vectors("ct/tiles") / "tile"


@pytest.fixture(scope="module")
def entries(tiles: Path) -> list[LogEntry]:
    out: list[LogEntry] = []
    for n, name in enumerate(FULL_TILES):
        out.extend(parse_data_tile((tiles / "data" / name).read_bytes(), n * TILE_WIDTH))
    return out


def _mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, recursively: an independent check of root_from_leaves."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _names_tile(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


# --- the real tiles --------------------------------------------------------------------------


@pytest.mark.vectors
@pytest.mark.parametrize("name", FULL_TILES)
def test_data_tile_leaf_hashes_equal_the_level_0_tile(tiles: Path, name: str) -> None:
    start = int(name) * TILE_WIDTH
    entries = parse_data_tile((tiles / "data" / name).read_bytes(), start, width=TILE_WIDTH)
    hashes = parse_hash_tile((tiles / "0" / name).read_bytes(), width=TILE_WIDTH)
    assert len(entries) == TILE_WIDTH
    assert [e.leaf_hash for e in entries] == hashes
    assert [e.index for e in entries] == list(range(start, start + TILE_WIDTH))


@pytest.mark.vectors
@pytest.mark.parametrize("name", FULL_TILES)
def test_every_entry_matches_the_names_tile(tiles: Path, name: str) -> None:
    """Sunlight's names tiles list each entry's timestamp, subject CN and SAN DNS names:
    an independent reading of the same certificates."""
    start = int(name) * TILE_WIDTH
    entries = parse_data_tile((tiles / "data" / name).read_bytes(), start)
    expected = _names_tile(tiles / "names" / name)
    assert len(expected) == len(entries)
    for entry, listed in zip(entries, expected, strict=True):
        assert entry.error is None
        assert entry.is_precert  # the whole sample is precert_entry (SOURCES.md)
        assert entry.entry_type is SignedEntryType.PRECERT
        assert entry.timestamp_ms == listed["Timestamp"]
        assert entry.timestamp.timestamp() * 1000 == pytest.approx(listed["Timestamp"])
        assert entry.timestamp.tzinfo is not None
        names = [n.lower() for n in listed["DNS"]]
        common_name = (listed.get("Subject") or {}).get("CommonName")
        if common_name:
            names.append(common_name.lower())
        assert set(entry.dns_names) == set(names)
        assert len(entry.dns_names) == len(set(names))
        assert entry.unicode_names == entry.dns_names  # no IDN in the sample


@pytest.mark.vectors
def test_entries_carry_the_static_ct_leaf_index(entries: list[LogEntry]) -> None:
    assert [e.leaf_index for e in entries] == [e.index for e in entries]


@pytest.mark.vectors
def test_precertificate_beside_each_entry_strips_to_the_logged_tbs(
    entries: list[LogEntry],
) -> None:
    """Removing the poison from each submitted pre-certificate gives exactly the TBS the
    log put in the leaf: real-world evidence for the TBS surgery."""
    for entry in entries:
        assert entry.certificate_der is not None
        assert entry.issuer_key_hash is not None
        assert len(entry.issuer_key_hash) == 32
        pre_tbs = certificate_tbs(entry.certificate_der)
        assert pre_tbs != entry.tbs_der  # it still has its poison
        assert strip_ct_extensions(pre_tbs) == entry.tbs_der
        assert tbs_hash(pre_tbs) == entry.tbs_hash
        assert entry.tbs_hash == hashlib.sha256(entry.tbs_der).digest()
        assert entry.chain_fingerprints
        assert all(len(f) == 32 for f in entry.chain_fingerprints)
        assert entry.chain_der == ()


@pytest.mark.vectors
def test_details_of_a_real_entry(entries: list[LogEntry]) -> None:
    entry = entries[0]
    assert entry.certificate_der is not None
    assert entry.spki_pin == Pin.from_certificate(entry.certificate_der)
    assert entry.issuer is not None
    assert "Let's Encrypt" in entry.issuer
    assert entry.serial is not None
    assert entry.serial > 0
    assert entry.not_before is not None
    assert entry.not_after is not None
    assert entry.not_before < entry.timestamp < entry.not_after
    assert len({e.tbs_hash for e in entries}) == len(entries)


@pytest.mark.vectors
def test_partial_tiles_are_prefixes(tiles: Path, entries: list[LogEntry]) -> None:
    partial = parse_data_tile((tiles / "data" / "003.p" / "10").read_bytes(), 768, width=10)
    assert partial == entries[768:778]
    hashes = parse_hash_tile((tiles / "0" / "003.p" / "10").read_bytes(), width=10)
    assert hashes == [e.leaf_hash for e in partial]
    names = _names_tile(tiles / "names" / "003.p" / "10")
    assert [e.timestamp_ms for e in partial] == [n["Timestamp"] for n in names]


@pytest.mark.vectors
def test_roots_from_the_level_0_tiles(tiles: Path) -> None:
    hashes: list[bytes] = []
    for name in FULL_TILES:
        hashes.extend(parse_hash_tile((tiles / "0" / name).read_bytes()))
    assert root_from_leaves(hashes).hex() == ROOT_1024
    assert _mth(hashes).hex() == ROOT_1024
    partial = hashes[:768] + parse_hash_tile((tiles / "0" / "003.p" / "10").read_bytes())
    assert root_from_leaves(partial).hex() == ROOT_778
    assert _mth(partial).hex() == ROOT_778


@pytest.mark.vectors
def test_gzip_tiles(tiles: Path, entries: list[LogEntry]) -> None:
    raw = (tiles / "data" / "001").read_bytes()
    assert raw[:2] != b"\x1f\x8b"
    assert parse_data_tile(gzip.compress(raw), 256) == entries[256:512]
    # Two gzip members (what concatenated gzip output looks like) are one tile.
    halves = gzip.compress(raw[:1000]) + gzip.compress(raw[1000:])
    assert parse_data_tile(halves, 256) == entries[256:512]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1f\x8b\x08\x00", r"gzip"),
        (gzip.compress(b"\x00" * 100)[:-4], r"truncated gzip|bad gzip"),
        (gzip.compress(u64(1)) + b"xyz", r"3 bytes after the gzip data"),
        (gzip.compress(b""), r"empty"),
    ],
)
def test_bad_gzip(data: bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_data_tile(data)


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\x00" * (4 << 20))
    assert len(bomb) < 10_000
    with pytest.raises(CTFormatError, match=r"decompresses to more than 1048576 bytes"):
        parse_data_tile(bomb, max_size=1 << 20)


# --- malformed data tiles --------------------------------------------------------------------

_CERT = b"\x30\x03\x02\x01\x01"  # a leaf structure needs bytes, not a valid certificate
_FINGERPRINT = hashlib.sha256(b"issuer").digest()


def _x509_leaf(timestamp_ms: int = 1, index: int = 0) -> bytes:
    return encode_tile_leaf(
        timestamp_ms,
        _CERT,
        chain_fingerprints=[_FINGERPRINT],
        extensions=encode_leaf_index_extension(index),
    )


def _precert_leaf(timestamp_ms: int = 1) -> bytes:
    return encode_tile_leaf(
        timestamp_ms,
        _CERT,
        issuer_key_hash=bytes(32),
        pre_certificate=b"\x30\x00",
        chain_fingerprints=[_FINGERPRINT, _FINGERPRINT],
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"my tile: empty"),
        (u64(1), r"my tile entry 512: TileLeaf: truncated at byte 8: entry_type"),
        (_x509_leaf() + u64(1) + u16(9), r"my tile entry 513: entry_type 9"),
        (_x509_leaf()[:-1], r"entry 512: TileLeaf: truncated .* certificate_chain needs 32"),
        (
            encode_timestamped_entry(1, _CERT) + vector(b"x" * 31, 2),
            r"entry 512: certificate_chain is 31 bytes",
        ),
        (
            encode_timestamped_entry(1, _CERT, issuer_key_hash=bytes(32)) + b"\x00\x00\x00",
            r"entry 512: TileLeaf: pre_certificate .* at least 1",
        ),
        (
            u64(MAX_TIMESTAMP_MS + 1) + u16(0),
            r"entry 512: timestamp .* beyond the year 9999",
        ),
        (_x509_leaf() * 257, r"my tile: more than 256 entries"),
    ],
)
def test_malformed_data_tile_names_entry_and_field(data: bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_data_tile(data, 512, source="my tile")


def test_width_is_checked() -> None:
    data = _x509_leaf() + _precert_leaf()
    assert len(parse_data_tile(data, width=2)) == 2
    with pytest.raises(CTFormatError, match=r"2 entries, expected 3"):
        parse_data_tile(data, width=3)


def test_a_full_tile_of_256_is_accepted() -> None:
    entries = parse_data_tile(b"".join(_x509_leaf(index=i) for i in range(256)))
    assert len(entries) == 256
    assert all(e.error is not None for e in entries)  # not certificates: noted, not fatal
    assert [e.leaf_index for e in entries] == list(range(256))


def test_synthetic_entries() -> None:
    x509_entry, precert_entry = parse_data_tile(_x509_leaf(5) + _precert_leaf(6), 10)
    assert (x509_entry.index, precert_entry.index) == (10, 11)
    assert x509_entry.certificate_der == _CERT
    assert x509_entry.chain_fingerprints == (_FINGERPRINT,)
    assert x509_entry.leaf_input == b"\x00\x00" + encode_timestamped_entry(
        5, _CERT, extensions=encode_leaf_index_extension(0)
    )
    assert precert_entry.is_precert
    assert precert_entry.certificate_der == b"\x30\x00"
    assert precert_entry.tbs_der == _CERT
    assert precert_entry.chain_fingerprints == (_FINGERPRINT, _FINGERPRINT)
    assert precert_entry.extra_data == vector(b"\x30\x00", 3) + vector(_FINGERPRINT * 2, 2)


def test_encode_tile_leaf_refuses_inconsistent_arguments() -> None:
    with pytest.raises(ValueError, match="both issuer_key_hash and pre_certificate"):
        encode_tile_leaf(1, _CERT, issuer_key_hash=bytes(32))
    with pytest.raises(ValueError, match="both"):
        encode_tile_leaf(1, _CERT, pre_certificate=b"x")
    with pytest.raises(ValueError, match="32 bytes"):
        encode_tile_leaf(1, _CERT, chain_fingerprints=[b"short"])


# --- hash tiles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "width", "message"),
    [
        (b"", None, r"empty"),
        (bytes(33), None, r"33 bytes is not a whole number"),
        (bytes(32 * 257), None, r"257 hashes, a tile holds at most 256"),
        (bytes(64), 3, r"2 hashes, expected 3"),
    ],
)
def test_bad_hash_tiles(data: bytes, width: int | None, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_hash_tile(data, width=width)


def test_hash_tiles_are_not_gzip_sniffed() -> None:
    data = b"\x1f\x8b" + bytes(30)
    assert parse_hash_tile(data) == [data]


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "path"),
    [
        (0, "000"),
        (5, "005"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (10**9, "x001/x000/x000/000"),
    ],
)
def test_tile_index_path(index: int, path: str) -> None:
    assert tile_index_path(index) == path


def test_tile_path_as_the_spec_writes_it() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(0, 1234067, 10) == "tile/0/x001/x234/067.p/10"
    assert tile_path(5, 3, TILE_WIDTH) == "tile/5/003"
    assert tile_path("data", 1234067) == "tile/data/x001/x234/067"
    assert tile_path("data", 3, 255) == "tile/data/003.p/255"
    assert tile_url("https://log.example/2025h2/", 0, 7, 1) == (
        "https://log.example/2025h2/tile/0/007.p/1"
    )
    assert tile_url("https://log.example", "data", 7) == "https://log.example/tile/data/007"


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(6, 0, None), (-1, 0, None), ("names", 0, None), (True, 0, None), (0, -1, None), (0, 0, 0)],
)
def test_tile_path_refuses_bad_arguments(level: Any, index: int, width: int | None) -> None:
    with pytest.raises(ValueError, match="tile"):
        tile_path(level, index, width)


def test_parse_tile_path() -> None:
    assert parse_tile_path("tile/0/x001/x234/067.p/10") == TileCoordinates(0, 1234067, 10)
    assert parse_tile_path("/tile/data/005") == TileCoordinates("data", 5, TILE_WIDTH)
    coordinates = parse_tile_path("tile/3/x001/000")
    assert coordinates.path == "tile/3/x001/000"
    assert not coordinates.is_partial
    assert parse_tile_path("tile/0/000.p/1").is_partial


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x000/001",  # not canonical: index 1 is 001
        "tile/0/1",
        "tile/00/001",
        "tile/6/001",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/010",
        "tile/0/x1/001",
        "tile/names/001",
        "tile/0/001/",
        "checkpoint",
    ],
)
def test_parse_tile_path_refuses_non_canonical_paths(path: str) -> None:
    with pytest.raises(CTFormatError, match="tile path"):
        parse_tile_path(path)


@given(
    st.one_of(st.integers(0, 5), st.just("data")),
    st.integers(0, 2**48),
    st.none() | st.integers(1, 256),
)
def test_tile_path_round_trips(level: int | str, index: int, width: int | None) -> None:
    path = tile_path(level, index, width)  # type: ignore[arg-type]
    coordinates = parse_tile_path(path)
    assert coordinates == TileCoordinates(level, index, width or TILE_WIDTH)  # type: ignore[arg-type]
    assert coordinates.path == path


# --- properties ------------------------------------------------------------------------------

_leaf_args = st.tuples(
    st.integers(0, MAX_TIMESTAMP_MS),
    st.binary(min_size=1, max_size=40),
    st.none() | st.tuples(st.binary(min_size=32, max_size=32), st.binary(min_size=1, max_size=20)),
    st.lists(st.binary(min_size=32, max_size=32), max_size=3),
    st.binary(max_size=12),
)
_LeafArgs = tuple[int, bytes, "tuple[bytes, bytes] | None", list[bytes], bytes]


def _encode(args: _LeafArgs) -> bytes:
    timestamp_ms, body, precert, chain, extensions = args
    return encode_tile_leaf(
        timestamp_ms,
        body,
        issuer_key_hash=precert[0] if precert else None,
        pre_certificate=precert[1] if precert else None,
        chain_fingerprints=chain,
        extensions=extensions,
    )


@given(st.lists(_leaf_args, min_size=1, max_size=4), st.integers(0, 2**40))
def test_parse_data_tile_inverts_encode_tile_leaf(leaves: list[_LeafArgs], start: int) -> None:
    entries = parse_data_tile(b"".join(_encode(args) for args in leaves), start)
    assert len(entries) == len(leaves)
    for position, (entry, args) in enumerate(zip(entries, leaves, strict=True)):
        timestamp_ms, body, precert, chain, extensions = args
        assert entry.index == start + position
        assert entry.timestamp_ms == timestamp_ms
        assert entry.is_precert == (precert is not None)
        assert entry.chain_fingerprints == tuple(chain)
        assert entry.extensions == extensions
        if precert is None:
            assert entry.certificate_der == body
            assert entry.issuer_key_hash is None
        else:
            assert entry.tbs_der == body
            assert (entry.issuer_key_hash, entry.certificate_der) == precert
        # The leaf hash is that of the MerkleTreeLeaf rebuilt from the TimestampedEntry.
        issuer_key_hash = precert[0] if precert else None
        timestamped = encode_timestamped_entry(
            timestamp_ms, body, issuer_key_hash=issuer_key_hash, extensions=extensions
        )
        assert entry.leaf_hash == hashlib.sha256(b"\x00\x00\x00" + timestamped).digest()


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    positions = st.integers(0, max(len(data) - 1, 0))
    flip = st.tuples(positions, st.integers(0, 255)).map(
        lambda pv: data[: pv[0]] + bytes([pv[1]]) + data[pv[0] + 1 :]
    )
    return flip | positions.map(lambda p: data[:p]) | st.binary(max_size=4).map(data.__add__)


@settings(max_examples=300)
@given(st.lists(_leaf_args, min_size=1, max_size=3).map(lambda ls: b"".join(map(_encode, ls))))
def test_fast_and_field_by_field_readers_agree(data: bytes) -> None:
    """The fast path and the reader that names errors must read every leaf alike, and the
    fast path must give up (never misread) wherever the reader finds an error."""
    for variant in (data, *[data[:cut] for cut in range(0, len(data), 7)]):
        fast = _split_tile_leaf(variant, 0, len(variant))
        try:
            slow = _read_tile_leaf(variant, 0, 0, "t")
        except CTFormatError:
            assert fast is None
            continue
        assert fast is None or fast == slow


@settings(max_examples=300)
@given(
    st.lists(_leaf_args, min_size=1, max_size=2).flatmap(
        lambda ls: _mutations(b"".join(map(_encode, ls)))
    )
)
def test_mutated_tiles_give_entries_or_ct_format_error(data: bytes) -> None:
    fast = _split_tile_leaf(data, 0, len(data)) if data else None
    if fast is not None:
        assert fast == _read_tile_leaf(data, 0, 0, "t")
    try:
        entries = parse_data_tile(data)
    except CTFormatError:
        return
    assert entries


@settings(max_examples=300)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_give_a_data_tile_or_ct_format_error(data: bytes, compress: bool) -> None:
    with contextlib.suppress(CTFormatError):
        parse_data_tile(gzip.compress(data) if compress else data)


@given(st.binary(max_size=300))
def test_any_bytes_give_a_hash_tile_or_ct_format_error(data: bytes) -> None:
    try:
        hashes = parse_hash_tile(data)
    except CTFormatError:
        return
    assert b"".join(hashes) == data


@given(st.text(max_size=40))
def test_any_text_gives_a_tile_path_or_ct_format_error(path: str) -> None:
    try:
        coordinates = parse_tile_path(path)
    except CTFormatError:
        return
    assert coordinates.path == path.lstrip("/")
