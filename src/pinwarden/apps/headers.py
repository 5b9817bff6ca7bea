"""Obsolete pinning headers: ``Public-Key-Pins``, ``Public-Key-Pins-Report-Only`` (HPKP,
RFC 7469) and ``Expect-CT`` (RFC 9163), read from a live response and explained.

Browsers removed all three (HPKP in Chrome 72 and Firefox 72, Expect-CT in Chrome 107), so a
site still sending them gets nothing from them. What replaces them: browsers enforce
Certificate Transparency on their own, a CT monitor finds certificates nobody expected, and
CAA records restrict which CAs may issue.

The directive grammar of RFC 7469 section 2.1 is read by the HPKP format's reader
(:mod:`pinwarden.apps.formats.hpkp`), so both places accept exactly the same syntax.
Expect-CT separates its directives with commas instead of semicolons; each comma-separated
element is read with that same reader.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final

import httpx

from pinwarden.apps.formats._common import decode_sha256
from pinwarden.apps.formats.hpkp import _directives
from pinwarden.errors import CertificateError, FormatError, InputError, NetworkError
from pinwarden.pins import Pin

__all__ = [
    "ADVICE",
    "EXPECT_CT",
    "HEADER_NAMES",
    "PUBLIC_KEY_PINS",
    "PUBLIC_KEY_PINS_REPORT_ONLY",
    "REMOVED",
    "Directive",
    "HeadersReport",
    "ObsoleteHeader",
    "fetch_headers",
    "find_obsolete_headers",
    "normalize_url",
    "parse_header",
]

PUBLIC_KEY_PINS: Final = "Public-Key-Pins"
PUBLIC_KEY_PINS_REPORT_ONLY: Final = "Public-Key-Pins-Report-Only"
EXPECT_CT: Final = "Expect-CT"
HEADER_NAMES: Final = (PUBLIC_KEY_PINS, PUBLIC_KEY_PINS_REPORT_ONLY, EXPECT_CT)

REMOVED: Final = {
    PUBLIC_KEY_PINS: "Chrome 72, Firefox 72",
    PUBLIC_KEY_PINS_REPORT_ONLY: "Chrome 72, Firefox 72",
    EXPECT_CT: "Chrome 107",
}
"""The browser versions that stopped honouring each header."""

ADVICE: Final = (
    "Remove these headers: no current browser acts on them.",
    "Browsers enforce Certificate Transparency for publicly trusted certificates on their "
    "own, so Expect-CT has nothing left to ask for.",
    "To learn of certificates you did not expect, monitor CT logs for your names: "
    "`pinwarden ct monitor`.",
    "To restrict which CAs may issue for your names, publish CAA records: "
    "`pinwarden caa generate`.",
    "Pin only inside apps you ship, with a backup pin and a way to update "
    "(`pinwarden recommend`, `pinwarden lint`).",
)
"""What to do instead, shown after any obsolete header."""

_HPKP_KNOWN = frozenset({"max-age", "includesubdomains", "report-uri"})
_EXPECT_CT_KNOWN = frozenset({"max-age", "enforce", "report-uri"})
_SECONDS = re.compile(r"[0-9]{1,20}")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


@dataclass(frozen=True)
class Directive:
    """One ``name[=value]`` of a header, as sent (quotes and escapes removed)."""

    name: str
    value: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "value": self.value}


@dataclass(frozen=True)
class ObsoleteHeader:
    """One obsolete header field of a response, parsed as far as it could be.

    ``problems`` are why browsers would have rejected it (a syntax error, a missing
    ``max-age``, no valid pin...): a header with problems is *malformed*. ``warnings`` are
    things browsers ignored without rejecting the header (unknown directives, a second
    field of the same name). ``enforce`` is None for HPKP, which has no such directive.
    """

    name: str
    value: str
    url: str = ""
    directives: tuple[Directive, ...] = ()
    pins: tuple[Pin, ...] = ()
    max_age: int | None = None
    include_subdomains: bool = False
    report_uri: str | None = None
    enforce: bool | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def malformed(self) -> bool:
        return bool(self.problems)

    @property
    def removed(self) -> str:
        return REMOVED[self.name]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "url": self.url,
            "value": self.value,
            "malformed": self.malformed,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "directives": [d.to_json() for d in self.directives],
            "pins": [str(p) for p in self.pins],
            "max_age": self.max_age,
            "include_subdomains": self.include_subdomains,
            "report_uri": self.report_uri,
            "enforce": self.enforce,
            "removed_in": self.removed,
        }


@dataclass(frozen=True)
class HeadersReport:
    """The obsolete headers of the response(s) to one URL.

    ``redirects`` are the URLs that answered with a redirect which was followed (``follow``);
    ``redirect`` is the target of a redirect that was *not* followed, if the final response
    was one. Headers of every response are examined, redirects included: a browser acted on
    HPKP in any HTTPS response.
    """

    url: str
    status: int
    final_url: str
    redirect: str | None = None
    redirects: tuple[str, ...] = ()
    headers: tuple[ObsoleteHeader, ...] = field(default=())

    @property
    def found(self) -> bool:
        return bool(self.headers)

    def to_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "status": self.status,
            "final_url": self.final_url,
            "redirect": self.redirect,
            "redirects": list(self.redirects),
            "found": self.found,
            "headers": [h.to_json() for h in self.headers],
            "advice": list(ADVICE) if self.found else [],
        }


def _canonical(name: str) -> str | None:
    lowered = name.strip().lower()
    for known in HEADER_NAMES:
        if known.lower() == lowered:
            return known
    return None


def _split_commas(text: str) -> list[str]:
    """Split at commas outside quoted strings (Expect-CT's ``#`` list of RFC 9110)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _read_directives(name: str, value: str) -> list[Directive]:
    """The directives, or :class:`FormatError` with what could not be read."""
    if name == EXPECT_CT:
        found: list[Directive] = []
        for element in _split_commas(value):
            read = _directives(element, "", "")
            if len(read) > 1:
                raise FormatError(
                    f"Expect-CT separates directives with ',', not ';' (in {element.strip()!r})"
                )
            found += [Directive(n, v) for n, v in read]
        return found
    return [Directive(n, v) for n, v in _directives(value, "", "")]


def _seconds(value: str | None, problems: list[str]) -> int | None:
    if value is None:
        problems.append("max-age has no value")
        return None
    # ASCII digits only: str.isdigit() accepts "²" and "٣".
    if _SECONDS.fullmatch(value) is None:
        problems.append(f"max-age={value[:40]!r} is not a number of seconds")
        return None
    return int(value)


def parse_header(name: str, value: str, url: str = "") -> ObsoleteHeader:
    """Parse one header field. ``name`` is matched case-insensitively against
    :data:`HEADER_NAMES` (anything else raises :class:`~pinwarden.errors.InputError`).
    A malformed value never raises: it comes back with ``problems``."""
    canonical = _canonical(name)
    if canonical is None:
        raise InputError(f"{name!r} is not one of {', '.join(HEADER_NAMES)}")
    problems: list[str] = []
    warnings: list[str] = []
    try:
        directives = _read_directives(canonical, value)
    except FormatError as exc:
        return ObsoleteHeader(canonical, value, url, problems=(f"cannot be parsed: {exc}",))

    is_hpkp = canonical != EXPECT_CT
    known = _HPKP_KNOWN if is_hpkp else _EXPECT_CT_KNOWN
    seen: dict[str, str | None] = {}
    pins: list[Pin] = []
    for directive in directives:
        key = directive.name.lower()
        if is_hpkp and key == "pin-sha256":
            if directive.value is None:
                problems.append("pin-sha256 has no value")
                continue
            try:
                pins.append(decode_sha256(directive.value, "", "pin-sha256"))
            except FormatError as exc:
                problems.append(str(exc))
            continue
        if is_hpkp and key.startswith("pin-"):
            warnings.append(f"{directive.name}: RFC 7469 defines pin-sha256 only; ignored")
            continue
        if key not in known:
            warnings.append(f"unknown directive {directive.name!r} (ignored by browsers)")
            continue
        if key in seen:
            # RFC 7469 section 2.1 and RFC 9163 section 2.1: a repeated directive makes the
            # whole header invalid.
            problems.append(f"{directive.name} appears more than once")
            continue
        seen[key] = directive.value

    max_age: int | None = None
    if "max-age" in seen:
        max_age = _seconds(seen["max-age"], problems)
    elif canonical != PUBLIC_KEY_PINS_REPORT_ONLY:
        # Report-only HPKP ignores max-age (RFC 7469 section 2.1.3); the others need it.
        problems.append("max-age is required")
    for flag, spelled in (("includesubdomains", "includeSubDomains"), ("enforce", "enforce")):
        if seen.get(flag) is not None:
            problems.append(f"{spelled} takes no value")
    report_uri = seen.get("report-uri")
    if "report-uri" in seen and not report_uri:
        problems.append("report-uri has no value")
        report_uri = None
    if is_hpkp:
        if not pins:
            problems.append("no valid pin-sha256")
        elif len(set(pins)) < 2:
            # RFC 7469 section 4.3: the UA rejects a pin set without a backup pin.
            problems.append("one pin only: browsers required a backup pin not in the chain")
    return ObsoleteHeader(
        name=canonical,
        value=value,
        url=url,
        directives=tuple(directives),
        pins=tuple(pins),
        max_age=max_age,
        include_subdomains="includesubdomains" in seen,
        report_uri=report_uri,
        enforce=("enforce" in seen) if not is_hpkp else None,
        problems=tuple(problems),
        warnings=tuple(warnings),
    )


def find_obsolete_headers(
    fields: Iterable[tuple[str, str]], url: str = ""
) -> tuple[ObsoleteHeader, ...]:
    """The obsolete headers among a response's ``(name, value)`` fields, in order."""
    found: list[ObsoleteHeader] = []
    for name, value in fields:
        if _canonical(name) is None:
            continue
        header = parse_header(name, value, url)
        if any(h.name == header.name and h.url == url for h in found):
            # RFC 7469 section 2.3.1 / RFC 9163 section 2.3.1: only the first field counts.
            header = _with_warning(header, f"a second {header.name} field: browsers used the first")
        found.append(header)
    return tuple(found)


def _with_warning(header: ObsoleteHeader, warning: str) -> ObsoleteHeader:
    return replace(header, warnings=(*header.warnings, warning))


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
    if url.scheme not in ("http", "https"):
        raise InputError(f"{text!r}: only http and https URLs can be fetched")
    if not url.host:
        raise InputError(f"{text!r}: the URL has no host")
    # httpx accepts what it can percent-encode ("exa mple.com") and any port number; a
    # request to those would only fail later with a confusing network error.
    host = url.raw_host.decode("ascii", "replace")
    if _HOSTNAME.fullmatch(host) is None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise InputError(f"{text!r} is not a valid URL: bad host {host!r}") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise InputError(f"{text!r} is not a valid URL: port {url.port} is out of range")
    return str(url)


def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    # Normal CA and hostname validation, never weakened: the system store, or cafile only.
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise CertificateError(f"cannot load trust anchors from {cafile}: {exc}") from None


def _resolve(base: httpx.URL, location: str | None) -> str | None:
    if not location:
        return None
    try:
        return str(base.join(location))
    except (httpx.InvalidURL, ValueError, TypeError):
        # The server's Location is not a URL: show it as sent rather than fail the report.
        return location


def fetch_headers(
    url: str, *, cafile: str | None = None, timeout: float = 10.0, follow: bool = False
) -> HeadersReport:
    """GET ``url`` and report its obsolete headers (the body is not read).

    Raises :class:`~pinwarden.errors.InputError` for a bad URL or ``cafile`` and
    :class:`~pinwarden.errors.NetworkError` when no response came (connection, TLS
    verification, timeout, too many redirects).
    """
    target = normalize_url(url)
    context = _ssl_context(cafile)
    try:
        with (
            httpx.Client(verify=context, timeout=timeout, follow_redirects=follow) as client,
            client.stream("GET", target) as response,
        ):
            responses = [*response.history, response]
            status = response.status_code
            final_url = str(response.url)
            location = response.headers.get("location") if response.is_redirect else None
            redirect = _resolve(response.url, location)
    except httpx.InvalidURL as exc:
        raise InputError(f"{url!r} is not a valid URL: {exc}") from None
    except httpx.UnsupportedProtocol as exc:
        raise InputError(f"{url!r}: {exc}") from None
    except httpx.TooManyRedirects as exc:
        raise NetworkError(f"{target}: {exc}") from None
    except httpx.HTTPError as exc:
        raise NetworkError(f"{target}: {type(exc).__name__}: {str(exc) or 'no detail'}") from None
    headers: list[ObsoleteHeader] = []
    for item in responses:
        headers += find_obsolete_headers(item.headers.multi_items(), str(item.url))
    return HeadersReport(
        url=target,
        status=status,
        final_url=final_url,
        redirect=redirect,
        redirects=tuple(str(r.url) for r in responses[:-1]),
        headers=tuple(headers),
    )
