"""CAA property values: ``issue``, ``issuewild`` and ``issuemail`` (RFC 8659 §4.2 with
errata 7139, RFC 9495 §3), the RFC 8657 ``validationmethods`` parameter, ``iodef``
(RFC 8659 §4.4), and the CA/B Forum BR ``contactemail`` and ``contactphone``.

The readers here are written by hand on purpose: property values follow small ABNF
grammars (RFC 8659 §4.2 and errata 7139, RFC 8657 §4, RFC 6532 §3.2, RFC 3966 §5.1.4)
for which no maintained Python library exists among our dependencies, and a CA's verdict
depends on following them exactly: a value that does not match is not "close enough", it
authorizes nobody.

Every function raises :class:`~pinwarden.caa.records.CAAFormatError` (an
:class:`~pinwarden.errors.InputError`) on malformed input, never another exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pinwarden.caa.model import IssueValue
from pinwarden.caa.records import CAAFormatError, _show

__all__ = [
    "ContactEmail",
    "ContactPhone",
    "IodefValue",
    "is_issuer_domain_name",
    "parse_contactemail",
    "parse_contactphone",
    "parse_iodef",
    "parse_issue_value",
    "parse_validation_methods",
]


# -- issue / issuewild / issuemail values (RFC 8659 §4.2, errata 7139; RFC 9495 §3) -----

_WSP = " \t"
_LABEL = r"[A-Za-z0-9](?:-*[A-Za-z0-9])*"
# issuer-domain-name = label *("." label)
# label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
_ISSUER_DOMAIN_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# parameter-tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
_PARAMETER_TAG = re.compile(_LABEL)
# parameter-value = *(%x21-3A / %x3C-7E)
_PARAMETER_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")


def is_issuer_domain_name(text: str) -> bool:
    """Whether ``text`` is an RFC 8659 §4.2 issuer-domain-name (LDH labels, no
    trailing dot)."""
    return text.isascii() and _ISSUER_DOMAIN_NAME.fullmatch(text) is not None


def _ascii_text(value: bytes | str, what: str) -> str:
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
    for position, octet in enumerate(raw):
        if octet > 0x7E or (octet < 0x20 and octet != 0x09):
            raise CAAFormatError(
                f"{what} {_show(value)}: octet 0x{octet:02x} at position {position} is not "
                "printable ASCII",
                detail=f"octet 0x{octet:02x} at position {position} is not printable ASCII",
            )
    return raw.decode("ascii")


def _skip_wsp(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WSP:
        i += 1
    return i


def parse_issue_value(value: bytes | str, *, property_tag: str = "issue") -> IssueValue:
    """An ``issue``, ``issuewild`` or ``issuemail`` value, read exactly by the ABNF of
    RFC 8659 §4.2 (with errata 7139's names; RFC 9495 §3 uses the same syntax)::

        issue-value = *WSP [issuer-domain-name *WSP]
           [";" *WSP [parameters *WSP]]
        parameters = (parameter *WSP ";" *WSP parameters) / parameter
        parameter = parameter-tag *WSP "=" *WSP parameter-value

    ``;`` alone (or an empty value) gives ``issuer=None``: no CA. Raises
    :class:`CAAFormatError` naming the position and what was expected; RFC 8659 says
    such a value "MUST be treated the same as one specifying an empty
    issuer-domain-name" — that is the evaluator's business, not the parser's.
    ``property_tag`` only names the property in messages."""
    what = f"CAA {property_tag} value"
    text = _ascii_text(value, what)
    n = len(text)

    def fail(position: int, expected: str) -> CAAFormatError:
        found = repr(text[position]) if position < n else "the end"
        detail = f"expected {expected} at position {position}, found {found}"
        return CAAFormatError(f"{what} {_show(text)}: {detail}", detail=detail)

    i = _skip_wsp(text, 0)
    issuer: str | None = None
    match = _ISSUER_DOMAIN_NAME.match(text, i)
    if match:
        issuer = match.group()
        i = _skip_wsp(text, match.end())
    parameters: list[tuple[str, str]] = []
    if i < n and text[i] == ";":
        i = _skip_wsp(text, i + 1)
        while i < n:
            tag = _PARAMETER_TAG.match(text, i)
            if tag is None:
                raise fail(i, "a parameter tag (letters and digits, inner hyphens)")
            i = _skip_wsp(text, tag.end())
            if i >= n or text[i] != "=":
                raise fail(i, f"'=' after the parameter tag {tag.group()!r}")
            i = _skip_wsp(text, i + 1)
            parameter_value = _PARAMETER_VALUE.match(text, i)
            assert parameter_value is not None  # the pattern matches the empty string
            parameters.append((tag.group(), parameter_value.group()))
            i = _skip_wsp(text, parameter_value.end())
            if i >= n:
                break
            if text[i] != ";":
                raise fail(i, "';' between parameters (a blank cannot separate them)")
            i = _skip_wsp(text, i + 1)
            if i >= n:
                # parameters = parameter *WSP ";" *WSP parameters: a ';' needs a successor.
                raise fail(i, "another parameter after ';'")
    if i < n:
        if issuer is None:
            raise fail(
                i, "an issuer domain name (letters, digits and inner hyphens in labels) or ';'"
            )
        raise fail(i, "';' or the end after the issuer domain name")
    return IssueValue(issuer, tuple(parameters))


# -- RFC 8657 §4 validationmethods -------------------------------------------------------

_METHOD = re.compile(r"[A-Za-z0-9-]+")


def parse_validation_methods(value: str) -> tuple[str, ...]:
    """The methods of a ``validationmethods`` parameter, by RFC 8657 §4's ABNF
    ``value = [*(label ",") label]``, ``label = 1*(ALPHA / DIGIT / "-")``. An empty
    value is valid and lists no method."""
    if value == "":
        return ()
    methods = tuple(value.split(","))
    for position, method in enumerate(methods):
        if not (method.isascii() and _METHOD.fullmatch(method)):
            detail = (
                f"validation method {position + 1} ({method!r}) is not letters, digits and hyphens"
            )
            raise CAAFormatError(f"validationmethods {_show(value)}: {detail}", detail=detail)
    return methods


# -- contactemail (CA/B Forum BR 3.2.2.4.13, A.1.1: an RFC 6532 §3.2 addr-spec) ----------

# RFC 5322 §3.2.3/§3.4.1 as extended by RFC 6532 §3.2 (UTF8-non-ascii in atext, qtext
# and dtext). "No additional padding or structure" (BR): no comments, no folding around
# the parts, no display name, none of the obsolete forms.
_NON_ASCII = "\u0080-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_NON_ASCII}]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED_STRING = rf'"(?:[\x21\x23-\x5b\x5d-\x7e \t{_NON_ASCII}]|\\[\x21-\x7e \t])*"'
_DOMAIN_LITERAL = rf"\[[\x21-\x5a\x5e-\x7e{_NON_ASCII}]*\]"
_ADDR_SPEC = re.compile(
    rf"(?P<local>{_DOT_ATOM}|{_QUOTED_STRING})@(?P<domain>{_DOT_ATOM}|{_DOMAIN_LITERAL})"
)


@dataclass(frozen=True)
class ContactEmail:
    """A ``contactemail`` value: the address and its two parts."""

    address: str
    local_part: str
    domain: str


def _utf8_text(value: bytes | str, what: str) -> str:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CAAFormatError(f"{what} {_show(value)}: not encodable as UTF-8") from exc
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        detail = f"invalid UTF-8 at position {exc.start}"
        raise CAAFormatError(f"{what} {_show(value)}: {detail}", detail=detail) from exc


def parse_contactemail(value: bytes | str) -> ContactEmail:
    """A ``contactemail`` value: exactly one RFC 6532 §3.2 addr-spec (UTF-8 allowed),
    "with no additional padding or structure" (CA/B Forum BR A.1.1)."""
    text = _utf8_text(value, "CAA contactemail value")
    match = _ADDR_SPEC.fullmatch(text)
    if match is None:
        detail = "not a single e-mail address (RFC 6532 §3.2 addr-spec, nothing around it)"
        raise CAAFormatError(f"CAA contactemail value {_show(text)}: {detail}", detail=detail)
    return ContactEmail(text, match.group("local"), match.group("domain"))


# -- contactphone (CA/B Forum BR 3.2.2.4.16/.17, A.1.2: an RFC 3966 §5.1.4 Global Number) -

# global-number = global-number-digits *par ; global-number-digits = "+" *phonedigit
# DIGIT *phonedigit ; phonedigit = DIGIT / visual-separator ("-" "." "(" ")"), plus the
# spaces BR A.1.2 allows as separators. Every par (parameter / extension /
# isdn-subaddress) has the shape ";" pname ["=" pvalue]; extensions are checked apart.
# Each piece is deterministic, so matching is linear even on hostile input.
_PARAMCHAR = r"(?:[\[\]/:&+$A-Za-z0-9\-_.!~*'()]|%[0-9A-Fa-f]{2})"
_GLOBAL_NUMBER = re.compile(
    rf"\+(?P<digits>[0-9\-.() ]*)(?P<params>(?:;[A-Za-z0-9-]+(?:={_PARAMCHAR}+)?)*)"
)
_PAR = re.compile(rf";(?P<name>[A-Za-z0-9-]+)(?:=(?P<value>{_PARAMCHAR}+))?")
_PHONEDIGITS = re.compile(r"[0-9\-.()]+")


@dataclass(frozen=True)
class ContactPhone:
    """A ``contactphone`` value: the number as written, its digits in E.164 form
    (``+`` and digits only) and its RFC 3966 parameters (``ext``…)."""

    number: str
    e164: str
    parameters: tuple[tuple[str, str], ...] = ()


def parse_contactphone(value: bytes | str) -> ContactPhone:
    """A ``contactphone`` value: an RFC 3966 §5.1.4 Global Number — ``+``, the country
    code and number, with ``-``, ``.``, ``(``, ``)`` or spaces as visual separators
    (CA/B Forum BR A.1.2), optionally followed by RFC 3966 parameters such as
    ``;ext=123``."""
    text = _ascii_text(value, "CAA contactphone value")
    match = _GLOBAL_NUMBER.fullmatch(text)
    digits = "".join(c for c in match.group("digits") if c.isdigit()) if match else ""
    if match is None or not digits:
        detail = "not a global phone number ('+', country code and digits; RFC 3966 §5.1.4)"
        raise CAAFormatError(f"CAA contactphone value {_show(text)}: {detail}", detail=detail)
    parameters = tuple(
        (par.group("name"), par.group("value") or "")
        for par in _PAR.finditer(match.group("params"))
    )
    for name, parameter_value in parameters:
        if name.lower() == "ext" and not _PHONEDIGITS.fullmatch(parameter_value):
            detail = f"the extension {parameter_value!r} is not phone digits"
            raise CAAFormatError(f"CAA contactphone value {_show(text)}: {detail}", detail=detail)
    return ContactPhone(text, "+" + digits, parameters)


# -- iodef (RFC 8659 §4.4) --------------------------------------------------------------

_IODEF_SCHEMES = ("mailto", "http", "https")


@dataclass(frozen=True)
class IodefValue:
    """An ``iodef`` value: the URL, its scheme (``mailto``, ``http`` or ``https``) and
    where reports go (the address(es) for mailto, the host for http/https)."""

    url: str
    scheme: str
    target: str


def parse_iodef(value: bytes | str) -> IodefValue:
    """An ``iodef`` value: a ``mailto:``, ``http:`` or ``https:`` URL, "the only
    supported URL schemes" (RFC 8659 §4.4). A mailto URL must name at least one
    address, each an addr-spec; an http(s) URL must name a host."""
    text = _ascii_text(value, "CAA iodef value")

    def fail(detail: str) -> CAAFormatError:
        return CAAFormatError(f"CAA iodef value {_show(text)}: {detail}", detail=detail)

    if " " in text or "\t" in text:
        raise fail("a URL cannot contain blanks")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:  # urlsplit's own complaints (bad IPv6 literal, port…)
        raise fail(f"not a URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in _IODEF_SCHEMES:
        raise fail("the URL scheme must be mailto:, http: or https: (RFC 8659 §4.4)")
    if scheme == "mailto":
        addresses = [unquote(a) for a in parts.path.split(",")]
        if not parts.path or not all(_ADDR_SPEC.fullmatch(a) for a in addresses):
            raise fail("a mailto: URL must name e-mail addresses")
        return IodefValue(text, scheme, ",".join(addresses))
    if not host:
        raise fail(f"an {scheme}: URL must name a host")
    return IodefValue(text, scheme, host)
