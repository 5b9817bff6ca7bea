"""HTTP for the CT log clients: one :class:`Fetcher` per log, with a per-log rate limit,
bounded parallel requests, retries with exponential backoff and jitter on 429, 5xx, timeouts
and dropped connections (honouring ``Retry-After``), gzip, and a cap on response size.

httpx does the HTTP; this module adds the policy a polite, robust log reader needs, and
decodes ``Content-Encoding`` itself: httpx decodes every listed coding with no limit on the
output, so a few hundred bytes of stacked gzip could expand to gigabytes before any size
check. Here the body is read raw under the size cap and only ``identity`` or a single
``gzip`` coding is accepted, decompressed with an output limit (by
:mod:`~pinwarden.ct._gzip_stream`). Redirects are not followed: a log is read at the URL its
log list gives, and a redirect elsewhere (another host, an internal service) is an error,
never a body to parse or to copy into evidence.

Transports are the seam for tests: pass ``transport=httpx.MockTransport(...)`` or a ready
``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

from pinwarden._version import __version__
from pinwarden.ct._closing import AsyncClosing
from pinwarden.ct._gzip_stream import _Garbled, _Gunzip, _TooLarge
from pinwarden.ct._json_text import first_line
from pinwarden.errors import InputError, NetworkError

__all__ = [
    "Fetched",
    "Fetcher",
    "HTTPSettings",
    "HTTPStatusError",
    "RateLimiter",
    "ResponseTooLargeError",
    "parse_retry_after",
]

USER_AGENT = f"pinwarden/{__version__}"

Sleep = Callable[[float], Awaitable[None]]

# RFC 9110 delay-seconds is 1*DIGIT (ASCII: str.isdigit() also takes "²" and "٣"). Ten digits
# are over 300 years; a longer value is read as "longer than anything we wait for".
_DELAY_SECONDS = re.compile(r"[0-9]+")
_MAX_DELAY_DIGITS = 10
_GZIP_CODINGS = frozenset({"gzip", "x-gzip"})  # x-gzip: RFC 9110 section 8.4.1.3
_LOCATION_CHARS = 200


@dataclass(frozen=True)
class HTTPSettings:
    """How a log is fetched.

    ``timeout`` bounds each attempt of a request as a whole (connecting, sending, the headers
    and the whole body, in seconds; a server that trickles its answer byte by byte times out
    too); ``attempts`` the number of tries of one request; ``backoff`` the first retry delay,
    doubled per retry up to ``max_backoff``, half of it random (jitter); a ``Retry-After``
    longer than ``max_retry_after`` is not waited for (the request fails);
    ``requests_per_second`` spaces request starts evenly (None: no limit); ``concurrency``
    bounds requests in flight; ``max_response_bytes`` bounds a body, both as received and
    decompressed.
    """

    timeout: float = 30.0
    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 300.0
    requests_per_second: float | None = None
    concurrency: int = 4
    max_response_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        for name in ("timeout", "backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "timeout" and value == 0):
                raise InputError(f"HTTP settings: {name} {value} is not a positive number")
        if self.attempts < 1 or self.concurrency < 1 or self.max_response_bytes < 1:
            raise InputError("HTTP settings: attempts, concurrency and max_response_bytes are >= 1")
        rate = self.requests_per_second
        if rate is not None and (not math.isfinite(rate) or rate <= 0):
            raise InputError(f"HTTP settings: requests_per_second {rate} is not positive")


class HTTPStatusError(NetworkError):
    """The log answered with an HTTP status that is not retried (e.g. 404, 400, or a
    redirect, which is never followed)."""

    def __init__(self, message: str, *, status: int, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class ResponseTooLargeError(NetworkError):
    """The answer to ``url`` was larger than ``limit`` bytes (as received, or decompressed).
    Not retried. The CT clients report it as ``oversized-response`` misbehaviour."""

    def __init__(self, message: str, *, url: str, limit: int) -> None:
        super().__init__(message)
        self.url = url
        self.limit = limit


@dataclass(frozen=True)
class Fetched:
    """A ``200`` answer: its (decompressed) ``body`` and the ``url`` that answered, with the
    query string (the request's own URL: redirects are not followed)."""

    body: bytes
    url: str


class RateLimiter:
    """Spaces request starts ``1 / rate`` seconds apart; :meth:`pause_until` holds every
    request back (after a 429 with ``Retry-After``: the log asked the whole client to wait),
    including one already waiting for its turn."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._paused = 0.0
        self._lock = asyncio.Lock()

    def pause_until(self, when: float) -> None:
        self._paused = max(self._paused, when)

    async def wait(self) -> None:
        while True:
            async with self._lock:
                now = self._clock()
                start = max(now, self._next, self._paused)
                self._next = start + self._interval
            if start > now:
                await self._sleep(start - now)
            # A pause asked while this request slept for its turn holds it back too.
            if self._paused <= start:
                return


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date,
    RFC 9110 section 10.2.3); None when absent or unreadable. Delay-seconds are ASCII digits;
    more than ten of them give ``math.inf``."""
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(int(text)) if len(text) <= _MAX_DELAY_DIGITS else math.inf
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


class Fetcher(AsyncClosing):
    """GETs under one base URL with the policy of :class:`HTTPSettings`.

    ``what`` names the log in messages. Pass ``client`` to share an ``httpx.AsyncClient``
    (it is not closed here), or ``transport`` to build one on it. ``sleep``, ``clock`` (a
    monotonic clock in seconds) and ``rng`` are injectable for tests. ``requests`` and
    ``retries`` count what was sent.
    """

    def __init__(
        self,
        base_url: str,
        *,
        what: str,
        settings: HTTPSettings | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"{what}: log URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.what = what
        self.settings = settings or HTTPSettings()
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.settings.timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=self.settings.concurrency),
        )
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._limiter = RateLimiter(self.settings.requests_per_second, clock=clock, sleep=sleep)
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self.requests = 0
        self.retries = 0

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> bytes:
        """The body of ``GET base_url + path`` (see :meth:`fetch`)."""
        return (await self.fetch(path, params)).body

    async def fetch(self, path: str, params: Mapping[str, str | int] | None = None) -> Fetched:
        """``GET base_url + path``: the body (decoded from gzip) and the URL that answered,
        retried as configured.

        Raises :class:`HTTPStatusError` for a status that is not retried (a redirect is one),
        :class:`ResponseTooLargeError` when the body is larger than allowed, and
        :class:`~pinwarden.errors.NetworkError` when every attempt failed or the answer
        cannot be read (an unsupported ``Content-Encoding``, an HTTP error).
        """
        url = self.url(path)
        settings = self.settings
        failure = "no attempt made"
        for attempt in range(settings.attempts):
            retry_after: float | None = None
            # The turn is taken inside the semaphore: a request queued behind slow ones
            # still starts 1/rate after the one before it, and a Retry-After pause set
            # below (before the slot is released) holds back every queued request.
            async with self._semaphore:
                await self._limiter.wait()
                self.requests += 1
                try:
                    status, headers, fetched = await asyncio.wait_for(
                        self._once(url, params), settings.timeout
                    )
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    failure = f"timed out after {settings.timeout:g} s"
                except (httpx.TransportError, httpx.DecodingError, _Garbled) as exc:
                    failure = f"{type(exc).__name__}: {first_line(exc)}"
                except httpx.HTTPError as exc:
                    raise NetworkError(
                        f"{self.what}: GET {_show(url, params)}: {type(exc).__name__}: "
                        f"{first_line(exc)}"
                    ) from None
                else:
                    if status == 200:
                        return fetched
                    if 300 <= status < 400:
                        location = headers.get("location", "")[:_LOCATION_CHARS]
                        raise HTTPStatusError(
                            f"{self.what}: GET {_show(url, params)} returned HTTP {status}, a "
                            f"redirect to {location!r}: not followed (a log is read only at "
                            "the URL of its log list)",
                            status=status,
                            url=url,
                        )
                    if status != 429 and not 500 <= status < 600:
                        raise HTTPStatusError(
                            f"{self.what}: GET {_show(url, params)} returned HTTP {status}",
                            status=status,
                            url=url,
                        )
                    failure = f"HTTP {status}"
                    retry_after = parse_retry_after(headers.get("retry-after"))
                    if retry_after is not None and retry_after <= settings.max_retry_after:
                        # The log asked this client to wait: hold back every request to
                        # it, this retry included (the limiter waits at the top).
                        self._limiter.pause_until(self._clock() + retry_after)
            if retry_after is not None and retry_after > settings.max_retry_after:
                wait = f"{retry_after:g} s" if math.isfinite(retry_after) else "an endless time"
                raise NetworkError(
                    f"{self.what}: GET {_show(url, params)}: {failure}, the log asks to "
                    f"retry after {wait} (more than {settings.max_retry_after:g} s)"
                )
            if attempt + 1 == settings.attempts:
                break
            self.retries += 1
            if retry_after is None:
                ceiling = min(settings.max_backoff, settings.backoff * 2**attempt)
                await self._sleep(ceiling / 2 + self._rng.uniform(0, ceiling / 2))
        raise NetworkError(
            f"{self.what}: GET {_show(url, params)} failed after {settings.attempts} "
            f"attempt(s): {failure}"
        )

    async def _once(
        self, url: str, params: Mapping[str, str | int] | None
    ) -> tuple[int, httpx.Headers, Fetched]:
        limit = self.settings.max_response_bytes
        try:
            request = self._client.build_request(
                "GET",
                url,
                params=dict(params) if params else None,
                headers={"Accept-Encoding": "gzip, identity", "User-Agent": USER_AGENT},
            )
        except httpx.InvalidURL as exc:
            raise InputError(f"{self.what}: bad URL {url!r}: {exc}") from None
        response = await self._client.send(request, stream=True, follow_redirects=False)
        answered = str(response.url)
        try:
            if response.status_code != 200:
                return response.status_code, response.headers, Fetched(b"", answered)
            gunzip = self._decoder(response.headers.get("content-encoding"), answered)
            chunks: list[bytes] = []
            received = 0
            size = 0
            try:
                if response.is_stream_consumed:
                    # A transport that answered with a body in memory (httpx.MockTransport
                    # with content=): httpx has decoded it already; only the cap is left.
                    if len(response.content) > limit:
                        raise _TooLarge
                    return (
                        response.status_code,
                        response.headers,
                        Fetched(response.content, answered),
                    )
                async for raw in response.aiter_raw():
                    received += len(raw)
                    chunk = raw if gunzip is None else gunzip.feed(raw)
                    size += len(chunk)
                    if received > limit or size > limit:
                        raise _TooLarge
                    chunks.append(chunk)
                if gunzip is not None:
                    gunzip.finish()
            except _TooLarge:
                raise ResponseTooLargeError(
                    f"{self.what}: the response to GET {answered} is larger than {limit} bytes",
                    url=answered,
                    limit=limit,
                ) from None
            return response.status_code, response.headers, Fetched(b"".join(chunks), answered)
        finally:
            await response.aclose()

    def _decoder(self, header: str | None, url: str) -> _Gunzip | None:
        codings = [c.strip().lower() for c in (header or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if not codings:
            return None
        if len(codings) == 1 and codings[0] in _GZIP_CODINGS:
            return _Gunzip(self.settings.max_response_bytes)
        raise NetworkError(
            f"{self.what}: the response to GET {url} has Content-Encoding "
            f"{(header or '')[:_LOCATION_CHARS]!r}; only identity or a single gzip is accepted"
        )


def _show(url: str, params: Mapping[str, str | int] | None) -> str:
    if not params:
        return url
    return url + "?" + "&".join(f"{k}={v}" for k, v in params.items())
