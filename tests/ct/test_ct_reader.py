"""The verified log reader against the local test log, through both APIs: a growing log
followed across publishes and restarts, compact ranges from proofs and tiles, and every
injected fault detected by its name (or retried, for the transport faults)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.ct._http import Fetcher, HTTPSettings
from pinwarden.ct.client import RFC6962Client
from pinwarden.ct.merkle import CompactRange, node_hash, root_from_leaves
from pinwarden.ct.reader import LogReader, ReaderState, _extend, _left_siblings, client_for
from pinwarden.ct.static import StaticClient, _decompose
from pinwarden.ct.treehead import (
    HASH_SHA256,
    SIG_ECDSA,
    SignedTreeHead,
    digitally_signed,
    format_checkpoint,
    tree_head_signature_input,
)
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


# -- review findings: tree-head timestamps and sizes ----------------------------------------------


def signed_head(log: LocalCTLog, size: int, timestamp_ms: int, root: bytes) -> SignedTreeHead:
    """A tree head validly signed with the log's own key (a log can sign anything)."""
    key = log.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    raw = key.sign(tree_head_signature_input(size, timestamp_ms, root), ec.ECDSA(hashes.SHA256()))
    return SignedTreeHead(size, timestamp_ms, root, digitally_signed(HASH_SHA256, SIG_ECDSA, raw))


def head_body(log: LocalCTLog, head: SignedTreeHead) -> bytes:
    if log.api == "static":
        return format_checkpoint(head, log.origin, log.log_id).encode()
    return json.dumps(head.to_json()).encode()


@pytest.mark.parametrize("offset_ms", [-60_000, 0])
async def test_a_larger_head_must_be_newer(log: LocalCTLog, offset_ms: int) -> None:
    log.grow(10)
    log.publish()
    async with reader_for(log) as reader:
        first = await reader.latest_verified()
    log.grow(300)
    log.publish()
    # The real tree of 310 (consistent with the first head), signed with an older timestamp.
    older = signed_head(log, 310, first.timestamp_ms + offset_ms, log.root(310))
    async with reader_for(
        log, transport=replaying(log, head_path(log), head_body(log, older))
    ) as r:
        with pytest.raises(LogMisbehaviourError) as info:
            await r.latest_verified(first)
    assert info.value.kind == "timestamp-regressed"
    assert info.value.evidence["first"] == first.to_json()
    second = info.value.evidence["second"]
    assert isinstance(second, dict)
    assert (second["tree_size"], second["timestamp"]) == (310, older.timestamp_ms)


async def test_a_head_from_the_future(log: LocalCTLog) -> None:
    log.grow(5)
    log.publish()
    signed_at = log.head.timestamp
    early = [signed_at - dt.timedelta(hours=2)]
    async with reader_for(log, clock=lambda: early[0]) as reader:
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified()
        assert info.value.kind == "future-timestamp"
        assert info.value.evidence["tree_head"] == log_head_json(info.value.evidence)
        # Within the allowed skew (an hour by default) it is accepted.
        early[0] = signed_at - dt.timedelta(minutes=50)
        assert (await reader.latest_verified()).tree_size == 5
        # An explicit now overrides the clock.
        with pytest.raises(LogMisbehaviourError, match="future-timestamp"):
            await reader.latest_verified(now=signed_at - dt.timedelta(minutes=61))
    async with reader_for(log, clock=lambda: early[0], max_clock_skew=dt.timedelta(0)) as strict:
        with pytest.raises(LogMisbehaviourError, match="future-timestamp"):
            await strict.latest_verified()
        with pytest.raises(InputError, match="aware"):
            await strict.latest_verified(now=dt.datetime(2026, 1, 1))


def log_head_json(evidence: dict[str, object]) -> object:
    head = evidence["tree_head"]
    assert isinstance(head, dict)
    assert head["tree_size"] == 5
    return head


async def test_an_implausible_tree_size_costs_no_tiles_or_proofs(log: LocalCTLog) -> None:
    log.grow(300)
    log.publish()
    async with reader_for(log) as reader:
        first = await reader.latest_verified()
    huge = signed_head(log, 1 << 63, first.timestamp_ms + 1, bytes(32))
    log.requests.clear()
    transport = replaying(log, head_path(log), head_body(log, huge))
    async with reader_for(log, transport=transport) as reader:
        with pytest.raises(LogMisbehaviourError) as info:
            await reader.latest_verified(first)
    assert info.value.kind == "implausible-size"
    evidence = info.value.evidence["tree_head"]
    assert isinstance(evidence, dict)
    assert evidence["tree_size"] == 1 << 63
    assert log.requests == []  # the head came from the replay; nothing else was asked


# -- review findings: RFC 6962 anchors ------------------------------------------------------------


def rewriting(
    log: LocalCTLog, rewrite: Callable[[str, str, bytes], bytes | int | None]
) -> httpx.MockTransport:
    """Pass requests to the real log; ``rewrite(path, query, body)`` may replace an answer
    with other bytes or a status (None: keep it)."""

    async def handler(request: httpx.Request) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            real = await http.get(str(request.url))
        new = rewrite(request.url.path.lstrip("/"), request.url.query.decode(), real.content)
        if new is None:
            return httpx.Response(real.status_code, content=real.content)
        if isinstance(new, int):
            return httpx.Response(new)
        return httpx.Response(200, content=new)

    return httpx.MockTransport(handler)


def with_leaf(body: bytes, position: int, leaf_input: str) -> bytes:
    """A get-entries answer with the entry at ``position`` replaced."""
    document = json.loads(body)
    document["entries"][position]["leaf_input"] = leaf_input
    return json.dumps(document).encode()


async def entries_json(log: LocalCTLog, start: int, end: int) -> list[dict[str, str]]:
    async with httpx.AsyncClient() as http:
        answer = await http.get(log.url + f"ct/v1/get-entries?start={start}&end={end}")
    entries = answer.json()["entries"]
    assert isinstance(entries, list)
    return entries


async def test_anchor_at_the_tree_end_with_a_lie_after_it() -> None:
    # The review's anchor_end_attack: entries 5 and 6 are the same certificate, get-entries
    # says entry 6 is some other leaf, and get-proof-by-hash says that leaf is at 5 (with
    # entry 5's real proof). The proof must be checked at the index it claims.
    fixed = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with LocalCTLog("rfc6962", clock=lambda: fixed) as log, LocalCTLog("rfc6962") as other:
        log.grow(5)
        twice = log.ca.issue("twice.example.test")
        log.add_certificate(twice)
        log.add_certificate(twice)
        log.publish()
        other.grow(1)
        other.publish()
        fake = (await entries_json(other, 0, 0))[0]["leaf_input"]
        real_proof = json.dumps(
            {"leaf_index": 5, "audit_path": [_b64(h) for h in log.inclusion_proof(5, 7)]}
        ).encode()

        def rewrite(path: str, query: str, body: bytes) -> bytes | None:
            if path.endswith("get-entries") and query == "start=0&end=6":
                return with_leaf(body, 6, fake)
            if path.endswith("get-proof-by-hash"):
                return real_proof
            return None

        async with reader_for(log, transport=rewriting(log, rewrite)) as reader:
            head = await reader.latest_verified()
            with pytest.raises(LogMisbehaviourError) as info:
                await reader.compact_range_at(7, head)
    assert info.value.kind == "bad-proof"
    assert info.value.evidence["leaf_index"] == 5


@pytest.mark.parametrize("size", [7, 5])
async def test_entries_between_the_anchor_and_the_start_are_checked(size: int) -> None:
    # get-entries replaces the entries just before the start with copies of entry 2: the
    # log proves that leaf at 2 (a "duplicate"), so the reader anchors further back and
    # must prove the copied entries it adds after the anchor.
    with LocalCTLog("rfc6962") as log:
        log.grow(7)
        log.publish()
        entry2 = (await entries_json(log, 2, 2))[0]["leaf_input"]

        def rewrite(path: str, query: str, body: bytes) -> bytes | None:
            if path.endswith("get-entries"):
                for position in range(len(json.loads(body)["entries"])):
                    if position in (size - 1, size):  # offsets match: these start at 0
                        body = with_leaf(body, position, entry2)
                return body
            return None

        async with reader_for(log, transport=rewriting(log, rewrite)) as reader:
            head = await reader.latest_verified()
            with pytest.raises(LogMisbehaviourError) as info:
                await reader.compact_range_at(size, head)
    assert info.value.kind == "wrong-root"


async def test_a_hash_the_log_does_not_find_tries_the_entry_before() -> None:
    with LocalCTLog("rfc6962") as log:
        log.grow(20)
        log.publish()
        missing = _b64(log.leaf_hash(12))
        asked: list[str] = []

        def rewrite(path: str, query: str, body: bytes) -> int | None:
            if path.endswith("get-proof-by-hash"):
                asked.append(query)
                if urllib.parse.quote(missing, safe="") in query or missing in query:
                    return 404
            return None

        async with reader_for(log, transport=rewriting(log, rewrite)) as reader:
            head = await reader.latest_verified()
            compact = await reader.compact_range_at(12, head)
    assert compact.root() == log.root(12)
    assert len(asked) == 2  # entry 12 (404), then entry 11


async def test_a_proof_at_another_index_must_verify_there() -> None:
    with LocalCTLog("rfc6962") as log:
        log.grow(40)
        log.publish()

        def rewrite(path: str, query: str, body: bytes) -> bytes | None:
            if path.endswith("get-proof-by-hash"):
                document = json.loads(body)
                document["leaf_index"] = 0  # "every leaf is a copy of entry 0"
                return json.dumps(document).encode()
            return None

        async with reader_for(log, transport=rewriting(log, rewrite)) as reader:
            head = await reader.latest_verified()
            with pytest.raises(LogMisbehaviourError) as info:
                await reader.compact_range_at(20, head)
    assert info.value.kind == "bad-proof"
    assert info.value.evidence["leaf_index"] == 0


# -- review findings: saved state ----------------------------------------------------------------


@pytest.mark.parametrize("form", ["bytes", "object"])
async def test_a_damaged_saved_range_is_a_state_mismatch(log: LocalCTLog, form: str) -> None:
    log.grow(600)
    log.publish()
    damaged = CompactRange.from_state(300, [bytes(32)] * 4)  # 300 = 256 + 32 + 8 + 4
    good = CompactRange.from_leaves(log.leaf_hash(i) for i in range(300))
    async with reader_for(log, batch_size=256) as reader:
        head = await reader.latest_verified()
        log.requests.clear()
        saved = damaged.to_bytes() if form == "bytes" else damaged
        with pytest.raises(LogMisbehaviourError) as info:
            async for _ in reader.entries(300, 600, head, saved):
                pass
        entry_requests = [r for r in log.requests if "get-entries" in r or "tile/data" in r]
        assert entry_requests == []  # refused before any entry was fetched
        assert info.value.kind == "state-mismatch"
        assert info.value.evidence["position"] == 300
        assert info.value.evidence["compact_range"] == _b64(damaged.to_bytes())
        # The same call with the right state reads on.
        assert [b.state.position async for b in reader.entries(300, 600, head, good)] == [
            512,
            600,
        ]


async def test_a_saved_range_at_the_head_is_checked_without_requests(log: LocalCTLog) -> None:
    log.grow(30)
    log.publish()
    async with reader_for(log) as reader:
        head = await reader.latest_verified()
        wrong = CompactRange.from_leaves(log.leaf_hash(i) for i in range(29))
        wrong.append(bytes(32))
        # Nothing to read: not checked, not an error.
        assert [b async for b in reader.entries(30, 30, head, wrong)] == []
        log.grow(5)
        log.publish()
        newer = await reader.latest_verified(head)
        with pytest.raises(LogMisbehaviourError, match="state-mismatch"):
            async for _ in reader.entries(30, 35, newer, wrong):
                pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
