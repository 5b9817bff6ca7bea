"""The CT clients' HTTP layer against hostile servers: Retry-After values that are not ASCII
digits, redirects (loops, other hosts), stacked or bombed gzip, answers trickled byte by
byte, and the rate limit and Retry-After pause under queueing."""

from __future__ import annotations

import asyncio
import functools
import gzip
import http.server
import itertools
import math
import random
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinwarden.ct._http import (
    Fetcher,
    HTTPSettings,
    HTTPStatusError,
    RateLimiter,
    ResponseTooLargeError,
    parse_retry_after,
)
from pinwarden.errors import NetworkError

Handler = Callable[[httpx.Request], httpx.Response]


class Chunks(httpx.AsyncByteStream):
    """A body delivered in ``chunks`` (``delay`` seconds apart), read as it streams: unlike
    ``httpx.Response(content=...)``, httpx does not read and decode it up front."""

    def __init__(self, chunks: Sequence[bytes], delay: float = 0.0) -> None:
        self.chunks = chunks
        self.delay = delay

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.delay:
                await asyncio.sleep(self.delay)
            yield chunk


def streamed(body: bytes | Sequence[bytes], encoding: str | None = None) -> httpx.Response:
    headers = {"Content-Encoding": encoding} if encoding is not None else {}
    chunks = [body] if isinstance(body, bytes) else body
    return httpx.Response(200, headers=headers, stream=Chunks(chunks))


def fetcher(handler: Handler, **settings: object) -> Fetcher:
    settings.setdefault("backoff", 0.001)
    settings.setdefault("max_backoff", 0.002)

    async def answer(request: httpx.Request) -> httpx.Response:
        return handler(request)

    return Fetcher(
        "https://log.example/",
        what="log test",
        settings=HTTPSettings(**settings),  # type: ignore[arg-type]
        transport=httpx.MockTransport(answer),
    )


Answer = httpx.Response | Callable[[], httpx.Response]


def counting(*answers: Answer) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``answers`` in order, then the last one again (a callable makes
    each answer afresh: a streamed body can be read once)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        return answer if isinstance(answer, httpx.Response) else answer()

    return handler, seen


# -- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12.0),
        ("0012", 12.0),
        ("9999999999", 9999999999.0),
        ("\u00b2", None),  # superscript two: str.isdigit() says yes, int() says no
        ("\u0663", None),  # Arabic-Indic three: int() would read it
        ("1" + "0" * 400, math.inf),  # int -> float overflow
        ("9" * 5000, math.inf),  # beyond int()'s 4300-digit limit
        ("12 s", None),
        ("Fri, 31 Dec 99999999999999999999 23:59:59 GMT", None),  # OverflowError inside
        ("Fri, 31 Dec 2020 23:59:59 +99999999999999999999999", None),
    ],
)
def test_retry_after_values(value: str, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


unicode_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=12)


@given(
    st.text(max_size=60)
    | unicode_digits
    | st.from_regex(r"\s*[0-9]{0,30}\s*", fullmatch=True)
    | st.integers(min_value=300, max_value=5000).map(lambda n: "7" * n)
)
def test_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value)
    assert result is None or result >= 0


async def test_a_non_ascii_retry_after_is_ignored() -> None:
    limited = httpx.Response(429, headers=[(b"Retry-After", "\u00b2".encode("latin-1"))])
    handler, seen = counting(limited, httpx.Response(200, content=b"ok"))
    async with fetcher(handler) as http:
        assert await http.get("x") == b"ok"  # backed off as without a Retry-After
        assert http.retries == 1
    assert len(seen) == 2


async def test_an_endless_retry_after_gives_up_at_once() -> None:
    handler, seen = counting(httpx.Response(429, headers={"Retry-After": "1" + "0" * 400}))
    async with fetcher(handler) as http:
        with pytest.raises(NetworkError, match="retry after an endless time"):
            await http.get("x")
    assert len(seen) == 1


# -- redirects and other HTTP errors -------------------------------------------------------------


@pytest.mark.parametrize("shared_client_follows", [False, True])
async def test_redirects_are_not_followed(shared_client_follows: bool) -> None:
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "log.example":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/secret"})
        return httpx.Response(200, content=b"internal secret")

    transport = httpx.MockTransport(handler)
    shared = httpx.AsyncClient(transport=transport, follow_redirects=shared_client_follows)
    async with shared, Fetcher("https://log.example/", what="log test", client=shared) as http:
        with pytest.raises(HTTPStatusError) as info:
            await http.get("ct/v1/get-sth")
    assert seen == ["https://log.example/ct/v1/get-sth"]
    assert info.value.status == 302
    assert "'http://169.254.169.254/secret': not followed" in str(info.value)
    assert "internal secret" not in str(info.value)


async def test_a_redirect_loop_is_a_network_error() -> None:
    handler, seen = counting(httpx.Response(301, headers={"Location": "/x"}))
    async with fetcher(handler) as http:
        with pytest.raises(NetworkError, match="HTTP 301, a redirect to '/x'"):
            await http.get("x")
    assert len(seen) == 1


async def test_any_httpx_error_is_a_network_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)

    async with fetcher(handler) as http:
        with pytest.raises(NetworkError, match="TooManyRedirects"):
            await http.get("x")
        assert http.requests == 1  # not a transport failure: not retried


# -- content encodings ---------------------------------------------------------------------------


@functools.cache
def bomb() -> bytes:
    """64 MiB of zeros, gzipped: about 64 KiB."""
    return gzip.compress(bytes(64 << 20), 9)


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip,gzip", "br", "deflate", "gzip, br"])
async def test_only_identity_or_one_gzip_is_accepted(encoding: str) -> None:
    # A stacked gzip bomb: 64 MiB of zeros in a few hundred bytes.
    body = gzip.compress(bomb(), 9)
    handler, seen = counting(streamed(body, encoding))
    tracemalloc.start()
    try:
        async with fetcher(handler, max_response_bytes=1 << 20) as http:
            with pytest.raises(NetworkError, match="Content-Encoding") as info:
                await http.get("x")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not isinstance(info.value, ResponseTooLargeError)
    assert len(seen) == 1
    assert peak < 8 << 20


@pytest.mark.parametrize("encoding", [None, "", "identity", "gzip", "GZIP", "x-gzip"])
async def test_accepted_encodings(encoding: str | None) -> None:
    payload = b"tile bytes " * 100
    body = payload if encoding in (None, "", "identity") else gzip.compress(payload)
    handler, _ = counting(streamed(body, encoding))
    async with fetcher(handler) as http:
        assert await http.get("x") == payload


async def test_gzip_bomb_is_stopped_at_the_limit() -> None:
    body = bomb()
    handler, seen = counting(streamed(body, "gzip"))
    tracemalloc.start()
    try:
        async with fetcher(handler, max_response_bytes=1 << 20) as http:
            with pytest.raises(ResponseTooLargeError, match=f"larger than {1 << 20} bytes"):
                await http.get("x")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(seen) == 1
    assert peak < 8 << 20


async def test_the_limit_applies_to_the_bytes_received() -> None:
    noise = random.Random(1).randbytes(4090)
    compressed = gzip.compress(noise)  # incompressible: more bytes on the wire than decoded
    assert len(compressed) > 4096
    for body, encoding in ((compressed, "gzip"), (bytes(4097), None)):
        handler, _ = counting(streamed(body, encoding))
        async with fetcher(handler, max_response_bytes=4096) as http:
            with pytest.raises(ResponseTooLargeError):
                await http.get("x")
    exact = bytes(4096)
    handler, _ = counting(streamed([exact[:1000], exact[1000:]]))
    async with fetcher(handler, max_response_bytes=4096) as http:
        assert await http.get("x") == exact


async def test_gzip_members_and_chunks() -> None:
    body = gzip.compress(b"first member, ") + gzip.compress(b"second member")
    byte_by_byte = [body[i : i + 1] for i in range(len(body))]
    handler, _ = counting(streamed(byte_by_byte, "gzip"))
    async with fetcher(handler) as http:
        assert await http.get("x") == b"first member, second member"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (gzip.compress(b"x" * 1000)[:-6], "truncated gzip data"),
        (b"not gzip at all", "bad gzip data"),
        (gzip.compress(b"x") + b"trailing garbage", "bad gzip data"),
    ],
)
async def test_broken_gzip_is_retried_then_fails(body: bytes, message: str) -> None:
    handler, seen = counting(lambda: streamed(body, "gzip"))
    async with fetcher(handler, attempts=2) as http:
        with pytest.raises(NetworkError, match=f"failed after 2 attempt.*{message}"):
            await http.get("x")
    assert len(seen) == 2


# -- the timeout covers the whole answer ------------------------------------------------------


@contextmanager
def trickling_server(count: int, pause: float) -> Iterator[tuple[str, list[float]]]:
    """A server on 127.0.0.1 whose first answer sends its 20-byte body one byte every
    ``pause`` seconds, and whose later answers come at once."""
    started: list[float] = []
    stop = threading.Event()

    class Trickle(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            started.append(time.monotonic())
            body = b"x" * count
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            slow = len(started) == 1
            for byte in body:
                if slow and stop.wait(pause):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", started
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


async def test_a_trickled_answer_times_out() -> None:
    # Each byte comes well within the timeout; the whole answer would take 4 s.
    with trickling_server(20, 0.2) as (url, started):
        settings = HTTPSettings(timeout=1.0, attempts=2, backoff=0.01, max_backoff=0.02)
        begin = time.monotonic()
        async with Fetcher(url, what="log test", settings=settings) as http:
            assert await http.get("x") == b"x" * 20  # the retry is answered at once
            assert http.retries == 1
        elapsed = time.monotonic() - begin
    assert len(started) == 2
    assert 1.0 <= elapsed < 3.0


async def test_a_trickled_answer_fails_with_a_timeout() -> None:
    with trickling_server(20, 0.2) as (url, _):
        settings = HTTPSettings(timeout=0.5, attempts=1)
        async with Fetcher(url, what="log test", settings=settings) as http:
            with pytest.raises(NetworkError, match=r"timed out after 0\.5 s"):
                await http.get("x")


# -- rate limit and Retry-After under queueing ----------------------------------------------------


async def test_the_rate_holds_for_requests_queued_behind_a_slow_one() -> None:
    starts: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        starts.append(time.monotonic())
        if len(starts) == 1:
            await asyncio.sleep(1.2)  # the others queue behind it
        return httpx.Response(200, content=b"ok")

    settings = HTTPSettings(requests_per_second=2, concurrency=1)
    transport = httpx.MockTransport(handler)
    async with Fetcher(
        "https://log.example/", what="t", settings=settings, transport=transport
    ) as f:
        await asyncio.gather(*(f.get(f"r{i}") for i in range(5)))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 5
    assert min(gaps) >= 0.45, gaps  # 2 per second, also after the queue formed
    assert starts[-1] - starts[0] >= 2.0


async def test_retry_after_holds_back_every_queued_request() -> None:
    seen: list[tuple[float, str]] = []
    limited_at: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append((time.monotonic(), request.url.path))
        await asyncio.sleep(0.1)
        if len(seen) == 1:
            limited_at.append(time.monotonic())
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200, content=b"ok")

    settings = HTTPSettings(concurrency=1)
    transport = httpx.MockTransport(handler)
    async with Fetcher(
        "https://log.example/", what="t", settings=settings, transport=transport
    ) as f:
        assert await asyncio.gather(*(f.get(f"r{i}") for i in range(5))) == [b"ok"] * 5
    assert len(seen) == 6
    during = [path for when, path in seen[1:] if when < limited_at[0] + 0.95]
    assert during == []


async def test_a_pause_stops_a_request_already_waiting_its_turn() -> None:
    now = [0.0]
    limiter: RateLimiter

    async def sleep(delay: float) -> None:
        if now[0] == 0.0:
            limiter.pause_until(30.0)  # a 429 arrives while this request waits
        now[0] += delay
        await asyncio.sleep(0)

    limiter = RateLimiter(1.0, clock=lambda: now[0], sleep=sleep)
    await limiter.wait()  # starts at 0
    await limiter.wait()  # its turn was 1: the pause came first
    assert now[0] >= 30.0
