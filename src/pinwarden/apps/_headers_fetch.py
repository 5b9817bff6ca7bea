"""Fetching a URL's response headers for :mod:`pinwarden.apps.headers`: URL checks, the
trust anchors, and a GET that records every response's header fields (following
redirects one at a time when asked) without reading a body. Separate from the header
parser so that the network side and the RFC 7469 / RFC 9163 reading stay apart."""

from __future__ import annotations

import ipaddress
import re
import ssl
from dataclasses import dataclass

import httpx

from pinwarden.errors import CertificateError, InputError, NetworkError

__all__ = ["Fetched", "fetch", "has_request", "normalize_url", "ssl_context"]

_MAX_REDIRECTS = 20
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def _url_problem(url: httpx.URL) -> str | None:
    """Why ``url`` cannot be fetched, or None."""
    if url.scheme not in ("http", "https"):
        return "only http and https URLs can be fetched"
    if not url.host:
        return "the URL has no host"
    # httpx accepts what it can percent-encode ("exa mple.com") and any port number; a
    # request to those would only fail later with a confusing network error.
    host = url.raw_host.decode("ascii", "replace")
    if _HOSTNAME.fullmatch(host) is None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"not a valid URL: bad host {host!r}"
    if url.port is not None and not 0 < url.port < 65536:
        return f"not a valid URL: port {url.port} is out of range"
    return None


def normalize_url(text: str) -> str:
    """``text`` as an absolute http(s) URL (``https://`` is assumed when no scheme is given);
    :class:`~pinwarden.errors.InputError` when it is not one."""
    value = text.strip()
    if not value:
        raise InputError("empty URL")
    if "://" not in value:
        value = "https://" + value
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InputError(f"{text!r} is not a valid URL: {exc}") from None
    problem = _url_problem(url)
    if problem is not None:
        raise InputError(f"{text!r}: {problem}")
    return str(url)


def ssl_context(cafile: str | None) -> ssl.SSLContext:
    # Normal CA and hostname validation, never weakened: the system store, or cafile only.
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise CertificateError(f"cannot load trust anchors from {cafile}: {exc}") from None


@dataclass(frozen=True)
class _Response:
    """What one response said, recorded as soon as its header block arrived."""

    url: str
    status: int
    fields: tuple[tuple[str, str], ...]

    @property
    def location(self) -> str | None:
        if self.status not in _REDIRECT_STATUSES:
            return None
        return next((v for n, v in self.fields if n.lower() == "location"), None)


@dataclass(frozen=True)
class Fetched:
    responses: tuple[_Response, ...]
    redirect: str | None = None
    note: str | None = None


# What httpx raises for a URL it will not request, and while building the request a Location
# asks for (RemoteProtocolError "Invalid URL in location header", or InvalidURL).
_URL_ERRORS = (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.RemoteProtocolError)


async def fetch(target: str, context: ssl.SSLContext, timeout: float, follow: bool) -> Fetched:
    """GET ``target`` and, with ``follow``, the redirects, one at a time.

    httpx is told not to follow: it would read every redirect body, and it builds the
    redirect's request even when not following, so a Location that is not a URL raised
    before the response could be reported. The response hook records each response before
    that happens; bodies are never read, only closed.
    """
    responses: list[_Response] = []

    async def record(response: httpx.Response) -> None:
        fields = tuple(response.headers.multi_items())
        responses.append(_Response(str(response.url), response.status_code, fields))

    url = httpx.URL(target)
    async with httpx.AsyncClient(
        verify=context, timeout=timeout, follow_redirects=False, event_hooks={"response": [record]}
    ) as client:
        while True:
            before = len(responses)
            try:
                response = await client.send(client.build_request("GET", url), stream=True)
            except _URL_ERRORS as exc:
                if len(responses) > before:
                    location = responses[-1].location or ""
                    note = f"redirect not followed: its Location {location[:200]!r} is not a URL"
                    return Fetched(tuple(responses), location, f"{note} ({exc})")
                if responses and not isinstance(exc, httpx.RemoteProtocolError):
                    note = f"redirect to {url} not followed: {exc}"
                    return Fetched(tuple(responses), str(url), note)
                raise
            await response.aclose()
            next_request = response.next_request
            if next_request is None:
                return Fetched(tuple(responses))
            redirect = next_request.url
            if not follow:
                return Fetched(tuple(responses), str(redirect))
            problem = _url_problem(redirect)
            if problem is not None:
                note = f"redirect to {redirect} not followed: {problem}"
                return Fetched(tuple(responses), str(redirect), note)
            if len(responses) > _MAX_REDIRECTS:
                raise NetworkError(f"{target}: more than {_MAX_REDIRECTS} redirects")
            url = redirect


def has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when no request is attached
    except RuntimeError:
        return False
    return True
