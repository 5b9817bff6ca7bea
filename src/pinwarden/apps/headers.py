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

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final

import httpx

from pinwarden.apps._headers_fetch import fetch, has_request, normalize_url, ssl_context
from pinwarden.apps.formats._common import decode_sha256
from pinwarden.apps.formats.hpkp import _directives
from pinwarden.errors import FormatError, InputError, NetworkError
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
_DIGITS = re.compile(r"[0-9]+")
# More than 2^64 - 1 seconds is past any clock; and Python refuses int() of more than 640
# digits under the strictest int_max_str_digits, while float division overflows past ~308.
_MAX_SECONDS = (1 << 64) - 1
_MAX_DIGITS = 300


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
    was one (the ``Location`` as sent when it is not a URL). ``notes`` say why a redirect
    was not followed although ``follow`` asked for it (not part of :meth:`to_json`). Headers
    of every response are examined, redirects included: a browser acted on HPKP in any HTTPS
    response.
    """

    url: str
    status: int
    final_url: str
    redirect: str | None = None
    redirects: tuple[str, ...] = ()
    headers: tuple[ObsoleteHeader, ...] = field(default=())
    notes: tuple[str, ...] = ()

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


def _seconds(value: str | None, problems: list[str], warnings: list[str]) -> int | None:
    if value is None:
        problems.append("max-age has no value")
        return None
    # ASCII digits only: str.isdigit() accepts "²" and "٣".
    if _DIGITS.fullmatch(value) is None:
        problems.append(f"max-age={value[:40]!r} is not a number of seconds")
        return None
    # A huge number is still a number: browsers clamped it (RFC 9111 section 1.2.2 says to
    # read an overflowing delta-seconds as the largest value one can represent).
    digits = value.lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS:
        warnings.append(f"max-age is absurdly large ({len(digits)} digits); browsers capped it")
        return None
    seconds = int(digits)
    if seconds > _MAX_SECONDS:
        warnings.append(
            f"max-age is absurdly large ({len(digits)} digits, more than 2^64-1 seconds); "
            "browsers capped it"
        )
    return seconds


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
                pin = decode_sha256(directive.value, "", "pin-sha256")
            except FormatError as exc:
                problems.append(str(exc))
                continue
            if pin in pins:
                warnings.append(f"pin {pin} is listed more than once")
            else:
                pins.append(pin)
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
        max_age = _seconds(seen["max-age"], problems, warnings)
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
        elif len(pins) < 2:
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
    """The obsolete headers among a response's ``(name, value)`` fields, in order. ``url`` is
    the response's: over plain ``http://`` each header gets a warning that browsers ignored it."""
    found: list[ObsoleteHeader] = []
    insecure = url[:7].lower() == "http://"
    for name, value in fields:
        if _canonical(name) is None:
            continue
        header = parse_header(name, value, url)
        if insecure:
            header = _with_warning(header, _INSECURE[header.name])
        if any(h.name == header.name and h.url == url for h in found):
            # RFC 7469 section 2.3.1 / RFC 9163 section 2.3.1: only the first field counts.
            header = _with_warning(header, f"a second {header.name} field: browsers used the first")
        found.append(header)
    return tuple(found)


_HPKP_INSECURE = (
    "sent over plain http: browsers ignored it (RFC 7469 section 2.2.2: HPKP counts only on "
    "a secure connection)"
)
_INSECURE: Final = {
    PUBLIC_KEY_PINS: _HPKP_INSECURE,
    PUBLIC_KEY_PINS_REPORT_ONLY: _HPKP_INSECURE,
    EXPECT_CT: (
        "sent over plain http: browsers ignored it (RFC 9163 section 2.2: Expect-CT counts "
        "only on a secure connection)"
    ),
}


def _with_warning(header: ObsoleteHeader, warning: str) -> ObsoleteHeader:
    return replace(header, warnings=(*header.warnings, warning))


def fetch_headers(
    url: str, *, cafile: str | None = None, timeout: float = 10.0, follow: bool = False
) -> HeadersReport:
    """GET ``url`` and report its obsolete headers (no body is read).

    ``timeout`` bounds the whole fetch, redirects included. Once a response has arrived, a
    redirect that cannot be followed (its Location is not an http(s) URL) is reported as
    not followed, with a note. Raises :class:`~pinwarden.errors.InputError` for a bad URL or
    ``cafile`` and :class:`~pinwarden.errors.NetworkError` when no response came
    (connection, TLS verification, timeout, too many redirects).
    """
    target = normalize_url(url)
    context = ssl_context(cafile)
    try:
        fetched = asyncio.run(asyncio.wait_for(fetch(target, context, timeout, follow), timeout))
    except asyncio.TimeoutError:
        raise NetworkError(
            f"{target}: no answer within {timeout:g} s (the whole fetch, redirects included)"
        ) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise InputError(f"{url!r}: {exc}") from None
    except httpx.HTTPError as exc:
        where = str(exc.request.url) if has_request(exc) else target
        raise NetworkError(f"{where}: {type(exc).__name__}: {str(exc) or 'no detail'}") from None
    headers: list[ObsoleteHeader] = []
    for response in fetched.responses:
        headers += find_obsolete_headers(response.fields, response.url)
    last = fetched.responses[-1]
    return HeadersReport(
        url=target,
        status=last.status,
        final_url=last.url,
        redirect=fetched.redirect,
        redirects=tuple(r.url for r in fetched.responses[:-1]),
        headers=tuple(headers),
        notes=(fetched.note,) if fetched.note else (),
    )
