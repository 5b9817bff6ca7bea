"""The verified log reader against the local test log, through both APIs: a growing log
followed across publishes and restarts, compact ranges from proofs and tiles, and every
injected fault detected by its name (or retried, for the transport faults)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.ct._http import Fetcher, HTTPSettings
from pinwarden.ct.client import RFC6962Client
from pinwarden.ct.merkle import CompactRange, node_hash, root_from_leaves
from pinwarden.ct.reader import LogReader, ReaderState, _extend, _left_siblings, client_for
from pinwarden.ct.static import StaticClient, _decompose
from pinwarden.ct.treehead import SignedTreeHead
from pinwarden.errors import CTFormatError, InputError, LogMisbehaviourError, NetworkError
from pinwarden.testing.ctlog import LocalCTLog

APIS = ["rfc6962", "static"]
FAST = HTTPSettings(timeout=5, attempts=3, backoff=0.01, max_backoff=0.05)


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def log(api: str) -> Iterator[LocalCTLog]:
    with LocalCTLog(api, max_batch=100) as served:  # type: ignore[arg-type]
        yield served


def reader_for(log: LocalCTLog, **kwargs: Any) -> LogReader:
    kwargs.setdefault("settings", FAST)
    return LogReader(log.log, **kwargs)


async def read_all(reader: LogReader, start: int, end: int, head: SignedTreeHead) -> list[int]:
    indices: list[int] = []
    async for batch in reader.entries(start, end, head):
        indices.extend(e.index for e in batch.entries)
    return indices


# -- a growing log ---------------------------------------------------------------------------


async def test_growing_log_followed_across_publishes_and_restarts(log: LocalCTLog) -> None:
    previous: SignedTreeHead | None = None
    state: ReaderState | None = None
    seen: list[int] = []
    for grow in (0, 1, 255, 300, 40, 700):
        log.grow(grow, precert_every=5)
        log.publish()
        # A new reader each round, as after a restart: only the state is kept.
        async with reader_for(log, batch_size=256) as reader:
            head = await reader.latest_verified(previous)
            assert (head.tree_size, head.root_hash) == (log.size, log.root())
            position = state.position if state else 0
            compact = state.compact_range if state else CompactRange().to_bytes()
            async for batch in reader.entries(position, head.tree_size, head, compact):
                assert batch.state.head == head
                assert batch.state.position == batch.entries[-1].index + 1
                for entry in batch.entries:
                    assert entry.leaf_hash == log.leaf_hash(entry.index)
                    seen.append(entry.index)
                state = batch.state
            if state is not None:
                assert state.restore().root() == head.root_hash
            previous = head
    assert seen == list(range(log.size))
    assert log.size == 1296


async def test_compact_range_at_any_position(log: LocalCTLog) -> None:
    log.grow(600)
    log.publish()
    async with reader_for(log) as reader:
        head = await reader.latest_verified()
        for size in (0, 1, 2, 7, 255, 256, 257, 300, 511, 512, 599, 600):
            compact = await reader.compact_range_at(size, head)
            assert compact.size == size
            assert compact.root() == log.root(size), size
        with pytest.raises(InputError):
            await reader.compact_range_at(601, head)


async def test_entries_from_the_middle(log: LocalCTLog) -> None:
    log.grow(530, precert_every=2)
    log.publish()
    async with reader_for(log, batch_size=256) as reader:
        head = await reader.latest_verified()
        assert await read_all(reader, 100, 520, head) == list(range(100, 520))
        assert await read_all(reader, 529, 530, head) == [529]
        assert await read_all(reader, 7, 7, head) == []
        with pytest.raises(InputError):
            await read_all(reader, 10, 531, head)


@pytest.mark.parametrize("compression", ["always", "never"])
async def test_gzip_or_not(api: str, compression: str) -> None:
    # "always": gzip even for a client that did not ask (static-ct-api allows it).
    with LocalCTLog(api, gzip=compression) as log:  # type: ignore[arg-type]
        log.grow(300, precert_every=3)
        log.publish()
        async with reader_for(log) as reader:
            head = await reader.latest_verified()
            assert await read_all(reader, 0, 300, head) == list(range(300))


async def test_rfc6962_start_on_a_duplicate_entry() -> None:
    fixed = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with LocalCTLog("rfc6962", clock=lambda: fixed) as log:
        log.grow(5)
        twice = log.ca.issue("twice.example.test")
        log.add_certificate(twice)
        log.add_certificate(twice)  # same leaf: the log proves index 5 for both
        log.grow(3)
        log.publish()
        assert log.leaf_hash(5) == log.leaf_hash(6)
        async with reader_for(log) as reader:
            head = await reader.latest_verified()
            compact = await reader.compact_range_at(6, head)
            assert compact.root() == log.root(6)
            assert await read_all(reader, 6, 9, head) == [6, 7, 8]


async def test_reader_state_checks() -> None:
    head = SignedTreeHead(0, 0, hashlib.sha256().digest(), b"")
    with pytest.raises(CTFormatError):
        ReaderState(3, head, CompactRange().to_bytes()).restore()
    with pytest.raises(CTFormatError):
        ReaderState(0, head, b"garbage").restore()
    with LocalCTLog("static") as log:
        log.grow(10)
        log.publish()
        async with reader_for(log) as reader:
            head = await reader.latest_verified()
            with pytest.raises(InputError, match="not the start"):
                await read_all_with(reader, 5, head, CompactRange())
    with pytest.raises(InputError):
        LogReader(log.log, batch_size=0)


async def read_all_with(
    reader: LogReader, start: int, head: SignedTreeHead, compact: CompactRange
) -> None:
    async for _ in reader.entries(start, head.tree_size, head, compact):
        pass


def test_client_for_picks_the_api() -> None:
    with LocalCTLog("static") as static, LocalCTLog("rfc6962") as rfc:
        assert isinstance(client_for(static.log), StaticClient)
        assert isinstance(client_for(rfc.log), RFC6962Client)


# -- faults ----------------------------------------------------------------------------------


async def test_bad_sth_signature(log: LocalCTLog) -> None:
    log.grow(20)
    log.publish()
    log.inject("bad-sth-signature")
    async with reader_for(log) as reader:
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified()
    assert info.value.kind == "bad-signature"


async def test_empty_tree_with_a_wrong_root(log: LocalCTLog) -> None:
    log.publish()
    log.inject("wrong-root")
    async with reader_for(log) as reader:
        with pytest.raises(LogMisbehaviourError, match="empty tree") as info:
            await reader.latest_verified()
    assert info.value.kind == "wrong-root"


async def test_wrong_root_found_by_the_entries(log: LocalCTLog) -> None:
    log.grow(300)
    log.publish()
    log.inject("wrong-root")
    async with reader_for(log) as reader:
        head = await reader.latest_verified()  # well signed: only the entries tell
        with pytest.raises(LogMisbehaviourError) as info:
            await read_all(reader, 0, head.tree_size, head)
    assert info.value.kind == "wrong-root"
    assert info.value.evidence["tree_head"] == head.to_json()


async def test_wrong_root_after_a_verified_head(log: LocalCTLog, api: str) -> None:
    log.grow(50)
    log.publish()
    async with reader_for(log) as reader:
        first = await reader.latest_verified()
        log.inject("wrong-root")
        # Same size, another root: two heads that cannot both be right.
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified(first)
        assert info.value.kind == "fork"
        log.grow(50)
        log.publish()
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified(first)
    # RFC 6962: the log's honest proof cannot join the two roots. Static: the tiles give
    # the real root, not the one signed.
    assert info.value.kind == ("fork" if api == "rfc6962" else "wrong-root")


@pytest.mark.parametrize("extra", [0, 30])
async def test_fork(log: LocalCTLog, api: str, extra: int) -> None:
    log.grow(300)
    log.publish()
    async with reader_for(log) as reader:
        first = await reader.latest_verified()
        log.inject("fork", index=100, extra=extra)
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified(first)
    error = info.value
    assert error.kind == "fork"
    assert error.evidence["first"] == first.to_json()
    second = error.evidence["second"]
    assert isinstance(second, dict)
    assert second["tree_size"] == 300 + extra
    if api == "rfc6962" and extra:
        assert len(error.evidence["proof"]) > 0  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", ["truncated-entries", "malformed-entries"])
async def test_bad_entries(log: LocalCTLog, fault: str) -> None:
    log.grow(40)
    log.publish()
    log.inject(fault)  # type: ignore[arg-type]
    async with reader_for(log) as reader:
        head = await reader.latest_verified()
        with pytest.raises(LogMisbehaviourError) as info:
            await read_all(reader, 0, 40, head)
    assert info.value.kind == "malformed-entry"


def recording_reader(log: LocalCTLog, sleeps: list[float], **settings: Any) -> LogReader:
    now = [0.0]

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        now[0] += delay
        await asyncio.sleep(0)

    fetcher = Fetcher(
        log.url,
        what="test log",
        settings=HTTPSettings(**{"backoff": 0.01, **settings}),
        sleep=sleep,
        clock=lambda: now[0],
    )
    client = (StaticClient if log.api == "static" else RFC6962Client)(log.log, fetcher=fetcher)
    return LogReader(log.log, client)


async def test_rate_limited_then_served(log: LocalCTLog) -> None:
    log.grow(30)
    log.publish()
    sleeps: list[float] = []
    reader = recording_reader(log, sleeps)
    async with reader, reader.client:
        log.inject("rate-limit", count=2, retry_after=5)
        head = await reader.latest_verified()
        assert await read_all(reader, 0, 30, head) == list(range(30))
        assert reader.client.fetcher.retries == 2
    assert sleeps == [5.0, 5.0]  # Retry-After honoured, before each retry


async def test_slow_answer_times_out_then_retried(log: LocalCTLog) -> None:
    log.grow(30)
    log.publish()
    sleeps: list[float] = []
    reader = recording_reader(log, sleeps, timeout=0.5)
    async with reader, reader.client:
        log.inject("slow", count=1, delay=2.0)
        head = await reader.latest_verified()
        assert head.tree_size == 30
        # At least the slow answer was retried (a loaded machine may time out more).
        assert reader.client.fetcher.retries >= 1
    assert len(sleeps) == reader.client.fetcher.retries
    assert log.requests.count(log.prefix + head_path(log)) == len(sleeps) + 1


async def test_dropped_connections_retried(log: LocalCTLog) -> None:
    log.grow(300)
    log.publish()
    sleeps: list[float] = []
    reader = recording_reader(log, sleeps)
    async with reader, reader.client:
        head = await reader.latest_verified()
        log.inject("drop", count=3)
        assert len(await read_all(reader, 0, 300, head)) == 300
        assert reader.client.fetcher.retries == 3


async def test_a_log_that_keeps_dropping_is_a_network_error(log: LocalCTLog) -> None:
    log.grow(3)
    log.publish()
    log.inject("drop")
    async with reader_for(log) as reader:
        with pytest.raises(NetworkError, match="failed after 3 attempt"):
            await reader.latest_verified()


# -- older and replayed heads -------------------------------------------------------------------


def replaying(log: LocalCTLog, path: str, body: bytes) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.lstrip("/") == path:
            return httpx.Response(200, content=body)
        async with httpx.AsyncClient() as real:
            return await real.get(str(request.url))

    return httpx.MockTransport(handler)


def head_path(log: LocalCTLog) -> str:
    return "checkpoint" if log.api == "static" else "ct/v1/get-sth"


async def test_an_older_consistent_head_keeps_the_newer(log: LocalCTLog) -> None:
    log.grow(100)
    log.publish()
    async with httpx.AsyncClient() as http:
        old_body = (await http.get(log.url + head_path(log))).content
    log.grow(100)
    log.publish()
    async with reader_for(log) as reader:
        newer = await reader.latest_verified()
    lagging = replaying(log, head_path(log), old_body)
    async with reader_for(log, transport=lagging) as reader:
        assert await reader.latest_verified(newer) == newer
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified(newer, allow_older=False)
    assert info.value.kind == "shrunk"
    assert info.value.evidence["first"] == newer.to_json()


async def test_an_older_inconsistent_head_is_a_fork(log: LocalCTLog) -> None:
    log.grow(100)
    log.publish()
    log.inject("fork", index=10)
    async with httpx.AsyncClient() as http:
        forked_body = (await http.get(log.url + head_path(log))).content
    log.heal()
    log.grow(100)
    log.publish()
    async with reader_for(log) as reader:
        newer = await reader.latest_verified()
    replay = replaying(log, head_path(log), forked_body)
    async with reader_for(log, transport=replay) as reader:
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified(newer)
    assert info.value.kind == "fork"


async def test_static_data_tile_must_match_the_level0_tile() -> None:
    with LocalCTLog("static") as log:
        log.grow(20)
        log.publish()
        async with httpx.AsyncClient() as http:
            tile = bytearray((await http.get(log.url + "tile/0/000.p/20")).content)
        tile[5 * 32] ^= 1  # level-0 hash of entry 5
        replay = replaying(log, "tile/0/000.p/20", bytes(tile))
        async with reader_for(log, transport=replay) as reader:
            head = await reader.latest_verified()
            with pytest.raises(LogMisbehaviourError, match="entry 5 of data tile 0") as info:
                await read_all(reader, 0, 20, head)
    assert info.value.kind == "malformed-entry"


async def test_rfc6962_bad_inclusion_proof() -> None:
    with LocalCTLog("rfc6962") as log:
        log.grow(20)
        log.publish()
        # A well-formed proof of the right length, of zero hashes: it cannot verify.
        body = (
            b'{"leaf_index": 7, "audit_path": ['
            + b",".join(b'"' + b"A" * 43 + b'="' for _ in range(5))
            + b"]}"
        )
        replay = replaying(log, "ct/v1/get-proof-by-hash", body)
        async with reader_for(log, transport=replay) as reader:
            head = await reader.latest_verified()
            with pytest.raises(LogMisbehaviourError) as info:
                await reader.compact_range_at(7, head)
    assert info.value.kind == "bad-proof"
    assert info.value.evidence["leaf_index"] == 7


# -- the tree arithmetic, against a plain reference -----------------------------------------------


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return [*_path(index, leaves[:k]), _mth(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _mth(leaves[:k])]


def _leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(count)]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_left_siblings_are_the_compact_range(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = _leaves(size)
    lefts = _left_siblings(index, size, _path(index, leaves))
    assert lefts == list(CompactRange.from_leaves(leaves[:index]).hashes)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_extending_a_range_with_subtrees_gives_the_root(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=0, max_value=700))
    start = data.draw(st.integers(min_value=0, max_value=size))
    leaves = _leaves(size)
    subtrees = []
    for height, position in _decompose(start, size):
        assert position % (1 << height) == 0
        chunk = leaves[position : position + (1 << height)]
        subtrees.append((height, position, _mth(chunk)))
    assert sum(1 << h for h, _, _ in subtrees) == size - start
    compact = CompactRange.from_leaves(leaves[:start])
    assert _extend(compact, subtrees) == root_from_leaves(leaves)
