"""The CT log clients: the HTTP policy (retries, Retry-After, backoff, rate limit, bounded
parallelism, gzip, size cap) through httpx mock transports, and the RFC 6962 and
static-ct-api clients against the local test log and against hostile answers."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import gzip
import hashlib
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.ct import static
from pinwarden.ct._http import (
    Fetcher,
    HTTPSettings,
    HTTPStatusError,
    RateLimiter,
    ResponseTooLargeError,
    parse_retry_after,
)
from pinwarden.ct.client import (
    InclusionProof,
    RFC6962Client,
    parse_consistency_proof,
    parse_inclusion_proof,
    parse_roots,
)
from pinwarden.ct.merkle import CompactRange
from pinwarden.ct.static import MAX_SUBTREE_TILES, StaticClient, _decompose, tile_width
from pinwarden.ct.treehead import MAX_TREE_SIZE
from pinwarden.errors import CTFormatError, InputError, LogMisbehaviourError, NetworkError
from pinwarden.testing.ctlog import LocalCTLog

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


class Sleeps:
    """A fake clock and asyncio.sleep: records the delays asked for and advances."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        await asyncio.sleep(0)


def fetcher(handler: Handler, sleeps: Sleeps, **settings: object) -> Fetcher:
    return Fetcher(
        "https://log.example/base",
        what="log test",
        settings=HTTPSettings(**settings),  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        sleep=sleeps,
        clock=sleeps.clock,
    )


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``answers`` in order (an exception is raised), then 200 b"ok"."""
    queue = list(answers)
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if not queue:
            return httpx.Response(200, content=b"ok")
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


# -- HTTP policy ---------------------------------------------------------------------------


async def test_429_honours_retry_after() -> None:
    handler, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "7"}),
    )
    sleeps = Sleeps()
    async with fetcher(handler, sleeps) as http:
        assert await http.get("ct/v1/get-sth") == b"ok"
        assert http.retries == 2
        assert http.requests == 3
    assert sleeps.delays == [3.0, 7.0]
    assert [str(r.url) for r in seen] == ["https://log.example/base/ct/v1/get-sth"] * 3


async def test_5xx_backs_off_exponentially_with_jitter() -> None:
    handler, _ = scripted(*(httpx.Response(503) for _ in range(4)))
    sleeps = Sleeps()
    async with fetcher(handler, sleeps, backoff=1.0, max_backoff=5.0) as http:
        assert await http.get("x") == b"ok"
    ceilings = [1.0, 2.0, 4.0, 5.0]
    assert len(sleeps.delays) == 4
    for delay, ceiling in zip(sleeps.delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


async def test_timeouts_and_dropped_connections_are_retried() -> None:
    handler, seen = scripted(
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("refused"),
    )
    sleeps = Sleeps()
    async with fetcher(handler, sleeps) as http:
        assert await http.get("x") == b"ok"
    assert len(seen) == 4
    assert len(sleeps.delays) == 3


async def test_gives_up_after_the_attempts() -> None:
    handler, seen = scripted(*(httpx.Response(500) for _ in range(10)))
    sleeps = Sleeps()
    async with fetcher(handler, sleeps, attempts=3) as http:
        with pytest.raises(NetworkError, match=r"failed after 3 attempt.*HTTP 500"):
            await http.get("x", {"start": 1, "end": 2})
    assert len(seen) == 3
    assert len(sleeps.delays) == 2  # no sleep after the last attempt


async def test_timeout_message() -> None:
    handler, _ = scripted(*(httpx.ConnectTimeout("t") for _ in range(2)))
    async with fetcher(handler, Sleeps(), attempts=2, timeout=1.5) as http:
        with pytest.raises(NetworkError, match=r"timed out after 1\.5 s"):
            await http.get("x")


async def test_retry_after_beyond_the_limit_fails_at_once() -> None:
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
    sleeps = Sleeps()
    async with fetcher(handler, sleeps, max_retry_after=60) as http:
        with pytest.raises(NetworkError, match="retry after 3600 s"):
            await http.get("x")
    assert len(seen) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_client_errors_are_not_retried(status: int) -> None:
    handler, seen = scripted(httpx.Response(status))
    async with fetcher(handler, Sleeps()) as http:
        with pytest.raises(HTTPStatusError) as info:
            await http.get("tile/0/000")
    assert info.value.status == status
    assert isinstance(info.value, NetworkError)
    assert len(seen) == 1


async def test_gzip_is_asked_for_and_decoded() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        assert "gzip" in request.headers["Accept-Encoding"]
        assert request.headers["User-Agent"].startswith("pinwarden/")
        return httpx.Response(
            200, content=gzip.compress(b"tile bytes"), headers={"Content-Encoding": "gzip"}
        )

    async with fetcher(handler, Sleeps()) as http:
        assert await http.get("tile/data/000") == b"tile bytes"


async def test_bad_gzip_is_retried_then_fails() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})

    async with fetcher(handler, Sleeps(), attempts=2) as http:
        with pytest.raises(NetworkError, match="DecodingError"):
            await http.get("x")


async def test_response_size_is_capped() -> None:
    handler, seen = scripted(httpx.Response(200, content=b"x" * 5000))
    async with fetcher(handler, Sleeps(), max_response_bytes=4096) as http:
        with pytest.raises(ResponseTooLargeError, match="larger than 4096 bytes") as info:
            await http.get("x")
    assert isinstance(info.value, NetworkError)
    assert (info.value.url, info.value.limit) == ("https://log.example/base/x", 4096)
    assert len(seen) == 1  # the same answer again would be as large: not retried


async def test_parallel_requests_are_bounded() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, content=request.url.path.encode())

    async with fetcher(handler, Sleeps(), concurrency=2) as http:
        bodies = await asyncio.gather(*(http.get(f"p{i}") for i in range(8)))
    assert bodies == [f"/base/p{i}".encode() for i in range(8)]
    assert peak == 2


async def test_rate_limiter_spaces_requests() -> None:
    sleeps = Sleeps()
    limiter = RateLimiter(4.0, clock=lambda: 100.0, sleep=sleeps)
    for _ in range(3):
        await limiter.wait()
    assert sleeps.delays == [0.25, 0.5]
    limiter.pause_until(110.0)
    await limiter.wait()
    assert sleeps.delays[-1] == 10.0


async def test_unlimited_rate_never_sleeps() -> None:
    sleeps = Sleeps()
    limiter = RateLimiter(None, clock=lambda: 5.0, sleep=sleeps)
    for _ in range(5):
        await limiter.wait()
    assert sleeps.delays == []


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    later = email.utils.format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now) == 90.0
    earlier = email.utils.format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "settings",
    [
        {"timeout": 0},
        {"timeout": float("nan")},
        {"attempts": 0},
        {"concurrency": 0},
        {"requests_per_second": 0},
        {"backoff": -1},
    ],
)
def test_settings_are_checked(settings: dict[str, float]) -> None:
    with pytest.raises(InputError):
        HTTPSettings(**settings)  # type: ignore[arg-type]


def test_fetcher_needs_an_http_url() -> None:
    with pytest.raises(InputError, match="not an http"):
        Fetcher("ftp://log.example/", what="log x")


# -- RFC 6962 client against the local log ----------------------------------------------------


@pytest.fixture
def rfc6962_log() -> Iterator[LocalCTLog]:
    with LocalCTLog("rfc6962", max_batch=7) as log:
        log.grow(40, precert_every=4)
        log.publish()
        yield log


async def test_rfc6962_client_reads_the_log(rfc6962_log: LocalCTLog) -> None:
    log = rfc6962_log
    async with RFC6962Client(log.log, entries_per_request=16) as client:
        head = await client.get_sth()
        assert (head.tree_size, head.root_hash) == (40, log.root(40))
        # The log returns at most 7 per request: the client keeps asking.
        entries = await client.get_entries(3, 37)
        assert [e.index for e in entries] == list(range(3, 37))
        assert [e.leaf_hash for e in entries] == [log.leaf_hash(i) for i in range(3, 37)]
        assert [e.is_precert for e in entries[:4]] == [True, False, False, False]
        assert await client.get_entries(5, 5) == []
        proof = await client.get_sth_consistency(10, 40)
        assert list(proof) == log.consistency_proof(10, 40)
        assert await client.get_sth_consistency(40, 40) == ()
        inclusion = await client.get_proof_by_hash(log.leaf_hash(17), 40)
        assert inclusion.leaf_index == 17
        assert list(inclusion.audit_path) == log.inclusion_proof(17, 40)
        roots = await client.get_roots()
        assert roots == [log.ca.root.cert.public_bytes(Encoding.DER)]
    get_entries = [r for r in log.requests if "get-entries" in r]
    assert "/ct/v1/get-entries?start=3&end=18" in get_entries
    assert "/ct/v1/get-entries?start=10&end=18" in get_entries  # the rest of a short answer


async def test_rfc6962_argument_checks(rfc6962_log: LocalCTLog) -> None:
    async with RFC6962Client(rfc6962_log.log) as client:
        with pytest.raises(InputError):
            await client.get_sth_consistency(0, 5)
        with pytest.raises(InputError):
            await client.get_entries(5, 4)
    with pytest.raises(InputError):
        RFC6962Client(rfc6962_log.log, entries_per_request=0)


# -- hostile answers ---------------------------------------------------------------------------


def hostile(log: LocalCTLog, answers: dict[str, bytes | int]) -> httpx.MockTransport:
    """A transport answering paths in ``answers`` (a body, or a status) and passing every
    other request to the real local log."""

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.lstrip("/")
        for prefix, answer in answers.items():
            if path.startswith(prefix):
                if isinstance(answer, int):
                    return httpx.Response(answer)
                return httpx.Response(200, content=answer)
        async with httpx.AsyncClient() as real:
            return await real.get(str(request.url))

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("ct/v1/get-sth", b"<html>maintenance</html>", "malformed-tree-head"),
        ("ct/v1/get-sth", b'{"tree_size": -1}', "malformed-tree-head"),
        ("ct/v1/get-sth-consistency", b'{"consistency": ["AAAA"]}', "bad-proof"),
        ("ct/v1/get-sth-consistency", b'{"consistency": "no"}', "bad-proof"),
        ("ct/v1/get-proof-by-hash", b'{"leaf_index": 99, "audit_path": []}', "bad-proof"),
        ("ct/v1/get-proof-by-hash", b'{"leaf_index": "1", "audit_path": []}', "bad-proof"),
        ("ct/v1/get-entries", b'{"entries": []}', "malformed-entry"),
        ("ct/v1/get-entries", b'{"entries": [{"leaf_input": "!"}]}', "malformed-entry"),
        ("ct/v1/get-roots", b'{"certificates": [1]}', "malformed-entry"),
    ],
)
async def test_rfc6962_malformed_answers(
    rfc6962_log: LocalCTLog, path: str, body: bytes, kind: str
) -> None:
    transport = hostile(rfc6962_log, {path: body})
    async with RFC6962Client(rfc6962_log.log, transport=transport) as client:
        calls = {
            "ct/v1/get-sth": client.get_sth,
            "ct/v1/get-sth-consistency": lambda: client.get_sth_consistency(3, 40),
            "ct/v1/get-proof-by-hash": lambda: client.get_proof_by_hash(bytes(32), 40),
            "ct/v1/get-entries": lambda: client.get_entries(0, 3),
            "ct/v1/get-roots": client.get_roots,
        }
        with pytest.raises(LogMisbehaviourError) as info:
            await calls[path]()
    assert info.value.kind == kind
    # The URL that answered, with the query asked.
    url = str(info.value.evidence["url"])
    assert url.partition("?")[0] == rfc6962_log.url + path
    if path == "ct/v1/get-entries":
        assert url.endswith("?start=0&end=2")
    assert info.value.evidence["response"] == body.decode()


@pytest.mark.parametrize("api", ["rfc6962", "static"])
async def test_an_oversized_answer_is_misbehaviour(api: str) -> None:
    with LocalCTLog(api) as log:  # type: ignore[arg-type]
        log.grow(300)
        log.publish()
        # A head fits in 2 KiB; 256 entries or a data tile do not.
        settings = HTTPSettings(max_response_bytes=2048, attempts=1)
        client = (StaticClient if api == "static" else RFC6962Client)(log.log, settings=settings)
        async with client:
            head = await client.latest_head()
            batch = (
                client.data_tile(0)
                if isinstance(client, StaticClient)
                else client.get_entries(0, 256)
            )
            with pytest.raises(LogMisbehaviourError) as info:
                await batch
    assert head.tree_size == 300
    error = info.value
    assert error.kind == "oversized-response"
    assert error.evidence["limit"] == 2048
    assert str(error.evidence["url"]).startswith(log.url)


async def test_rfc6962_too_many_entries(rfc6962_log: LocalCTLog) -> None:
    async with httpx.AsyncClient() as real:
        five = (await real.get(rfc6962_log.url + "ct/v1/get-entries?start=0&end=4")).content
    transport = hostile(rfc6962_log, {"ct/v1/get-entries": five})
    async with RFC6962Client(rfc6962_log.log, transport=transport) as client:
        with pytest.raises(LogMisbehaviourError, match=r"5 entries for 0\.\.2, more than the 3"):
            await client.get_entries(0, 3)


async def test_rfc6962_unreachable_log() -> None:
    with LocalCTLog("rfc6962") as log:
        url_log = log.log
    settings = HTTPSettings(attempts=2, backoff=0.01)
    async with RFC6962Client(url_log, settings=settings) as client:
        with pytest.raises(NetworkError, match="failed after 2 attempt"):
            await client.get_sth()


def test_a_log_without_url() -> None:
    with LocalCTLog("rfc6962") as log, pytest.raises(InputError, match="no URL"):
        RFC6962Client(replace(log.log, url=None))


# -- static-ct-api client --------------------------------------------------------------------


@pytest.fixture
def static_log() -> Iterator[LocalCTLog]:
    with LocalCTLog("static") as log:
        log.grow(600, precert_every=3)
        log.publish()
        yield log


async def test_static_client_reads_the_log(static_log: LocalCTLog) -> None:
    log = static_log
    async with StaticClient(log.log) as client:
        head = await client.checkpoint()
        assert (head.tree_size, head.root_hash) == (600, log.root(600))
        assert head.origin == log.origin
        full = await client.hash_tile(0, 1)
        assert list(full) == [log.leaf_hash(i) for i in range(256, 512)]
        partial = await client.hash_tile(0, 2, 600 - 512)
        assert list(partial) == [log.leaf_hash(i) for i in range(512, 600)]
        level1 = await client.hash_tile(1, 0, 2)
        assert list(level1) == [log.root(256), CompactRange.from_leaves(full).root()]
        entries = await client.data_tile(2, 88)
        assert [e.index for e in entries] == list(range(512, 600))
        assert [e.leaf_index for e in entries] == list(range(512, 600))
        assert [e.leaf_hash for e in entries] == list(partial)
        fingerprint = entries[0].chain_fingerprints[0]
        issuer = await client.issuer(fingerprint)
        assert hashlib.sha256(issuer).digest() == fingerprint
        # Any subtree of the tree from the fewest tiles.
        subtrees = await client.subtree_hashes(0, 600, 600)
        assert [(h, s) for h, s, _ in subtrees] == [(9, 0), (6, 512), (4, 576), (3, 592)]
        compact = await client.compact_range(600, 600)
        assert compact.root() == log.root(600)
        for size in (1, 255, 256, 257, 513, 599):
            assert (await client.compact_range(size, 600)).root() == log.root(size)
    # The hash tile cache: level-0 tile 1 was fetched once.
    assert sum(r == "/tile/0/001" for r in log.requests) == 1


def test_tile_width() -> None:
    assert tile_width(0, 0, 600) == 256
    assert tile_width(0, 2, 600) == 88
    assert tile_width(0, 3, 600) == 0
    assert tile_width(1, 0, 600) == 2
    assert tile_width(1, 0, 70_000) == 256
    assert tile_width(1, 1, 70_000) == 17
    assert tile_width(2, 0, 70_000) == 1


async def test_partial_tile_gone_falls_back_to_the_full_tile(static_log: LocalCTLog) -> None:
    transport = hostile(static_log, {"tile/0/000.p/": 404, "tile/data/000.p/": 404})
    async with StaticClient(static_log.log, transport=transport) as client:
        hashes = await client.hash_tile(0, 0, 10)
        assert list(hashes) == [static_log.leaf_hash(i) for i in range(10)]
        entries = await client.data_tile(0, 10)
        assert [e.index for e in entries] == list(range(10))


async def test_static_malformed_answers(static_log: LocalCTLog) -> None:
    transport = hostile(
        static_log,
        {
            "checkpoint": b"not a checkpoint",
            "tile/0/001": b"\x00" * 33,
            "tile/data/001": b"\x00" * 20,
            "issuer/": b"some other certificate",
        },
    )
    async with StaticClient(static_log.log, transport=transport) as client:
        with pytest.raises(LogMisbehaviourError) as info:
            await client.checkpoint()
        assert info.value.kind == "malformed-tree-head"
        assert info.value.evidence["response"] == "not a checkpoint"
        with pytest.raises(LogMisbehaviourError) as info:
            await client.hash_tile(0, 1)
        assert info.value.kind == "malformed-tile"
        with pytest.raises(LogMisbehaviourError) as info:
            await client.data_tile(1)
        assert info.value.kind == "malformed-entry"
        with pytest.raises(LogMisbehaviourError) as info:
            await client.issuer(bytes(32))
        assert info.value.kind == "bad-issuer"


async def test_static_leaf_index_must_match(static_log: LocalCTLog) -> None:
    async with httpx.AsyncClient() as real:
        tile = (await real.get(static_log.url + "tile/data/000")).content
    # Entry 0's CtExtensions: length 8, leaf_index (0), length 5, uint40 0. Say 7 instead.
    original = b"\x00\x08\x00\x00\x05" + bytes(5)
    assert original in tile
    forged = tile.replace(original, b"\x00\x08\x00\x00\x05" + (7).to_bytes(5, "big"), 1)
    transport = hostile(static_log, {"tile/data/000": forged})
    async with StaticClient(static_log.log, transport=transport) as client:
        with pytest.raises(
            LogMisbehaviourError, match="entry 0 of tile/data/000 says it is leaf 7"
        ):
            await client.data_tile(0)


async def test_static_checkpoint_origin_override(static_log: LocalCTLog) -> None:
    async with StaticClient(static_log.log, origin="other.example/log") as client:
        with pytest.raises(LogMisbehaviourError) as info:
            await client.checkpoint()
    assert info.value.kind == "wrong-origin"


async def test_static_subtree_range_is_checked(static_log: LocalCTLog) -> None:
    async with StaticClient(static_log.log) as client:
        with pytest.raises(InputError):
            await client.subtree_hashes(10, 700, 600)


async def test_static_subtree_work_is_bounded(
    static_log: LocalCTLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    static_log.requests.clear()
    async with StaticClient(static_log.log) as client:
        with pytest.raises(InputError, match="larger than pinwarden reads"):
            await client.subtree_hashes(0, MAX_TREE_SIZE + 1, MAX_TREE_SIZE + 1)
        # The largest readable tree needs one tile per subtree...
        assert len(_decompose(0, MAX_TREE_SIZE - 1)) == 40
        # ...but above it one subtree of height 63 spans 32768 level-5 tiles: refused
        # before any request, whatever the size limit says.
        monkeypatch.setattr(static, "MAX_TREE_SIZE", 1 << 64)
        with pytest.raises(InputError, match=f"more than {MAX_SUBTREE_TILES} tiles"):
            await client.subtree_hashes(0, 1 << 63, 1 << 63)
    assert static_log.requests == []


# -- hypothesis: proof and roots parsers only raise pinwarden errors ---------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
hash_strings = st.binary(min_size=0, max_size=40).map(lambda b: base64.b64encode(b).decode())
proof_like = st.fixed_dictionaries(
    {},
    optional={
        "consistency": st.lists(hash_strings | json_values, max_size=5) | json_values,
        "audit_path": st.lists(hash_strings | json_values, max_size=5) | json_values,
        "leaf_index": st.integers(min_value=-2, max_value=20) | json_values,
        "certificates": st.lists(hash_strings | json_values, max_size=3) | json_values,
    },
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | proof_like.map(lambda v: json.dumps(v).encode())
)


@settings(max_examples=300)
@given(body=bodies, tree_size=st.integers(min_value=1, max_value=20))
def test_proof_parsers_raise_only_pinwarden_errors(body: bytes, tree_size: int) -> None:
    for parse in (
        parse_consistency_proof,
        lambda b: parse_inclusion_proof(b, tree_size),
        parse_roots,
    ):
        try:
            result = parse(body)
        except CTFormatError:
            continue
        if isinstance(result, InclusionProof):
            assert 0 <= result.leaf_index < tree_size
            assert all(len(h) == 32 for h in result.audit_path)
        elif isinstance(result, tuple):
            assert all(len(h) == 32 for h in result)
