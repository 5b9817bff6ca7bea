"""HTTP for the CT log clients: one :class:`Fetcher` per log, with a per-log rate limit,
bounded parallel requests, retries with exponential backoff and jitter on 429, 5xx, timeouts
and dropped connections (honouring ``Retry-After``), gzip, and a cap on response size.

httpx does the HTTP (and decodes ``Content-Encoding: gzip``); this module only adds the
policy a polite, robust log reader needs. Transports are the seam for tests: pass
``transport=httpx.MockTransport(...)`` or a ready ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType

import httpx

from pinwarden._version import __version__
from pinwarden.errors import CTFormatError, InputError, NetworkError

__all__ = ["Fetcher", "HTTPSettings", "HTTPStatusError", "RateLimiter", "parse_retry_after"]

USER_AGENT = f"pinwarden/{__version__}"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class HTTPSettings:
    """How a log is fetched.

    ``timeout`` is per request (connect, read, write, pool) in seconds; ``attempts`` the
    number of tries of one request; ``backoff`` the first retry delay, doubled per retry up to
    ``max_backoff``, half of it random (jitter); a ``Retry-After`` longer than
    ``max_retry_after`` is not waited for (the request fails); ``requests_per_second`` spaces
    request starts evenly (None: no limit); ``concurrency`` bounds requests in flight;
    ``max_response_bytes`` bounds a decoded body.
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
    """The log answered with an HTTP status that is not retried (e.g. 404, 400)."""

    def __init__(self, message: str, *, status: int, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class RateLimiter:
    """Spaces request starts ``1 / rate`` seconds apart; :meth:`pause_until` holds every
    request back (after a 429 with ``Retry-After``: the log asked the whole client to wait)."""

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
        self._lock = asyncio.Lock()

    def pause_until(self, when: float) -> None:
        self._next = max(self._next, when)

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            await self._sleep(start - now)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date,
    RFC 9110 section 10.2.3); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


class Fetcher:
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
            follow_redirects=True,
            limits=httpx.Limits(max_connections=self.settings.concurrency),
        )
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._limiter = RateLimiter(self.settings.requests_per_second, clock=clock, sleep=sleep)
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self.requests = 0
        self.retries = 0

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> bytes:
        """The body of ``GET base_url + path`` (decoded from gzip), retried as configured.

        Raises :class:`HTTPStatusError` for a status that is not retried,
        :class:`~pinwarden.errors.NetworkError` when every attempt failed, and
        :class:`~pinwarden.errors.CTFormatError` when the body is larger than allowed.
        """
        url = self.url(path)
        settings = self.settings
        failure = "no attempt made"
        for attempt in range(settings.attempts):
            retry_after: float | None = None
            await self._limiter.wait()
            async with self._semaphore:
                self.requests += 1
                try:
                    status, headers, body = await self._once(url, params)
                except httpx.TimeoutException:
                    failure = f"timed out after {settings.timeout:g} s"
                except (httpx.TransportError, httpx.DecodingError) as exc:
                    failure = f"{type(exc).__name__}: {_first_line(exc)}"
                else:
                    if status == 200:
                        return body
                    if status != 429 and not 500 <= status < 600:
                        raise HTTPStatusError(
                            f"{self.what}: GET {_show(url, params)} returned HTTP {status}",
                            status=status,
                            url=url,
                        )
                    failure = f"HTTP {status}"
                    retry_after = parse_retry_after(headers.get("retry-after"))
            if attempt + 1 == settings.attempts:
                break
            self.retries += 1
            if retry_after is not None:
                if retry_after > settings.max_retry_after:
                    raise NetworkError(
                        f"{self.what}: GET {_show(url, params)}: {failure}, the log asks to "
                        f"retry after {retry_after:g} s (more than {settings.max_retry_after:g} s)"
                    )
                # The log asked this client to wait: hold back every request to it, this
                # retry included (the limiter sleeps at the top of the loop).
                self._limiter.pause_until(self._clock() + retry_after)
            else:
                ceiling = min(settings.max_backoff, settings.backoff * 2**attempt)
                await self._sleep(ceiling / 2 + self._rng.uniform(0, ceiling / 2))
        raise NetworkError(
            f"{self.what}: GET {_show(url, params)} failed after {settings.attempts} "
            f"attempt(s): {failure}"
        )

    async def _once(
        self, url: str, params: Mapping[str, str | int] | None
    ) -> tuple[int, httpx.Headers, bytes]:
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
        response = await self._client.send(request, stream=True)
        try:
            if response.status_code != 200:
                return response.status_code, response.headers, b""
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise CTFormatError(
                        f"{self.what}: the response to GET {url} is larger than {limit} bytes"
                    )
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
        finally:
            await response.aclose()


def _show(url: str, params: Mapping[str, str | int] | None) -> str:
    if not params:
        return url
    return url + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
