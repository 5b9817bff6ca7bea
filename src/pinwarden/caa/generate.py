"""CAA records that allow exactly a set of CAs, and their text for a zone file, for
tinydns-data, or as JSON.

What :func:`generate` publishes:

* one ``issue`` record per CA (one per ACME account when account URIs are given, RFC 8657),
  or a single ``issue ";"`` when no CA may issue;
* ``issuewild`` records only when the wildcard set differs from the ``issue`` set, since
  without them ``issue`` governs wildcards too (RFC 8659 §4.3); ``issuewild ";"`` when no
  CA may issue wildcards;
* one ``iodef`` record per report URL (``mailto:``, ``http:``, ``https:``).

Flags are always 0 and issuer domain names lower case: Let's Encrypt's Boulder treats any
flag bit as critical and compares issuer domain names case-sensitively.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit

from pinwarden.caa.model import CAARecord, IssueValue
from pinwarden.caa.records import to_presentation, to_rdata
from pinwarden.caa.values import (
    is_issuer_domain_name,
    parse_iodef,
    parse_issue_value,
    parse_validation_methods,
)
from pinwarden.errors import InputError, PolicyError
from pinwarden.hosts import normalize_host

__all__ = [
    "FORMATS",
    "Format",
    "generate",
    "parse_per_ca",
    "render",
]

Format = Literal["zone", "tinydns", "json"]
FORMATS: tuple[Format, ...] = ("zone", "tinydns", "json")

_CAA_TYPE = 257
_MAX_TTL = 2**31 - 1  # RFC 2181 §8
# RFC 8659 §4.2 parameter-value = *(%x21-3A / %x3C-7E): printable ASCII except ';'.
_PARAMETER_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]+")
_OWNER_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def _issuer(text: str, role: str) -> str:
    if not isinstance(text, str) or not is_issuer_domain_name(text.strip()):
        raise InputError(
            f"{role} {text!r} is not an issuer domain name (RFC 8659 §4.2: letters, digits "
            "and hyphens in dot-separated labels, such as letsencrypt.org)"
        )
    return text.strip().lower()


def _unique(cas: Sequence[str], role: str) -> list[str]:
    if isinstance(cas, str):
        raise InputError(f"{role}s must be a list of issuer domain names, not one string")
    seen: list[str] = []
    for ca in cas:
        domain = _issuer(ca, role)
        if domain not in seen:
            seen.append(domain)
    return seen


def _account_uri(ca: str, uri: str) -> str:
    if not isinstance(uri, str) or _PARAMETER_VALUE.fullmatch(uri) is None:
        raise InputError(
            f"account URI {uri!r} for {ca}: a CAA parameter value is printable ASCII "
            "without spaces or ';' (RFC 8659 §4.2)"
        )
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        raise InputError(
            f"account URI {uri!r} for {ca} is not an absolute URI; give the ACME account "
            "URL the CA returned (e.g. https://acme-v02.api.letsencrypt.org/acme/acct/123)"
        )
    return uri


def _methods(ca: str, methods: Sequence[str]) -> tuple[str, ...]:
    listed = ",".join(methods)
    if not methods or any(not isinstance(m, str) or not m or "," in m for m in methods):
        raise InputError(f"validation methods {list(methods)!r} for {ca}: give method names")
    parse_validation_methods(listed)  # RFC 8657 §4; raises CAAFormatError (an InputError)
    return tuple(methods)


def _iodef(url: str) -> str:
    if not isinstance(url, str):
        raise InputError(f"iodef URL {url!r} is not text")
    parse_iodef(url)  # RFC 8659 §4.4; raises CAAFormatError (an InputError)
    return url


def _per_ca(
    mapping: Mapping[str, str | Sequence[str]] | None, allowed: Sequence[str], what: str
) -> dict[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    for key, values in (mapping or {}).items():
        ca = _issuer(key, f"CA of the {what}")
        if ca not in allowed:
            raise InputError(
                f"{what} given for {ca}, which is not among the CAs allowed to issue "
                f"({', '.join(allowed) or 'none'})"
            )
        listed = (values,) if isinstance(values, str) else tuple(values)
        result[ca] = result.get(ca, ()) + listed
    return result


def _issue_values(
    cas: Sequence[str],
    accounts: Mapping[str, tuple[str, ...]],
    methods: Mapping[str, tuple[str, ...]],
) -> list[IssueValue]:
    if not cas:
        return [IssueValue(None)]
    values: list[IssueValue] = []
    for ca in cas:
        extra = (("validationmethods", ",".join(methods[ca])),) if ca in methods else ()
        for uri in accounts.get(ca) or (None,):
            account = (("accounturi", uri),) if uri is not None else ()
            values.append(IssueValue(ca, account + extra))
    return values


def _issue_text(value: IssueValue, tag: str) -> bytes:
    parameters = "; ".join(f"{key}={v}" for key, v in value.parameters)
    text = (value.issuer or "") + ("; " + parameters if parameters else "")
    text = text or ";"
    # The inputs were checked piece by piece; the whole value must read back to what was
    # meant by the reader the evaluator uses.
    assert parse_issue_value(text, property_tag=tag) == value, text
    return text.encode("ascii")


def generate(
    cas: Sequence[str],
    *,
    wildcard_cas: Sequence[str] | None = None,
    iodef: Sequence[str] = (),
    account_uris: Mapping[str, str | Sequence[str]] | None = None,
    validation_methods: Mapping[str, Sequence[str]] | None = None,
) -> list[CAARecord]:
    """The CAA records that allow exactly ``cas`` to issue, and ``wildcard_cas`` to issue
    wildcard certificates (None: the same CAs; empty: no CA).

    ``account_uris`` maps a CA's issuer domain name to the ACME account URI (or several)
    that alone may request certificates from it (RFC 8657 ``accounturi``: one record per
    account); ``validation_methods`` maps it to the validation methods it may use (RFC 8657
    ``validationmethods``, e.g. ``["dns-01"]``). Both apply to that CA's ``issue`` and
    ``issuewild`` records.

    Raises :class:`~pinwarden.errors.InputError` naming the value that is not an issuer
    domain name, an absolute account URI, a method name or a mailto:/http(s): iodef URL."""
    issue = _unique(cas, "CA")
    wild = issue if wildcard_cas is None else _unique(wildcard_cas, "wildcard CA")
    allowed = issue + [ca for ca in wild if ca not in issue]
    accounts = {
        ca: tuple(dict.fromkeys(_account_uri(ca, uri) for uri in uris))
        for ca, uris in _per_ca(account_uris, allowed, "account URI").items()
    }
    methods = {
        ca: _methods(ca, listed)
        for ca, listed in _per_ca(validation_methods, allowed, "validation method").items()
    }
    if isinstance(iodef, str):
        raise InputError("iodef must be a list of URLs, not one string")
    records = [
        CAARecord(0, "issue", _issue_text(v, "issue"))
        for v in _issue_values(issue, accounts, methods)
    ]
    if set(wild) != set(issue):
        records += [
            CAARecord(0, "issuewild", _issue_text(v, "issuewild"))
            for v in _issue_values(wild, accounts, methods)
        ]
    records += [CAARecord(0, "iodef", _iodef(url).encode("ascii")) for url in iodef]
    return records


def parse_per_ca(
    options: Sequence[str], cas: Sequence[str], *, option: str = "--account-uri"
) -> dict[str, tuple[str, ...]]:
    """Read command-line values ``CA=VALUE`` (CA an issuer domain name) into a mapping for
    :func:`generate`. A bare ``VALUE`` is accepted when exactly one CA is given. A value
    may itself contain ``=`` (``CA=`` is recognised by its issuer domain name)."""
    unique = _unique(cas, "CA")
    result: dict[str, tuple[str, ...]] = {}
    for text in options:
        key, eq, value = text.partition("=")
        if eq and is_issuer_domain_name(key.strip()):
            ca = key.strip().lower()
        elif len(unique) == 1:
            ca, value = unique[0], text
        else:
            raise InputError(
                f"{option} {text!r}: say which CA it is for, as {option} CA=VALUE "
                f"(CAs given: {', '.join(unique) or 'none'})"
            )
        if not value:
            raise InputError(f"{option} {text!r} has an empty value")
        result[ca] = (*result.get(ca, ()), value)
    return result


def _owner(name: str) -> str:
    """``name`` as an absolute owner name without its trailing dot (A-labels, lower case)."""
    if not isinstance(name, str) or not name.strip() or name.strip() == ".":
        raise InputError(f"record name {name!r} is empty")
    try:
        owner = normalize_host(name.strip())
    except PolicyError as exc:
        raise InputError(f"record name {name!r}: {exc}") from None
    labels = owner.split(".")
    if len(owner) > 253 or not all(_OWNER_LABEL.fullmatch(label) for label in labels):
        raise InputError(
            f"record name {name!r} is not a DNS name (labels of letters, digits, '-' and "
            "'_', up to 63 characters)"
        )
    return owner


def _zone_line(owner: str, ttl: int, record: CAARecord) -> str:
    # to_presentation quotes the value with RFC 1035 escapes and writes a tag that is not
    # letters and digits in RFC 3597's generic form; parse_presentation reads both back.
    return f"{owner}. {ttl} IN CAA {to_presentation(record)}"


def _octal(data: bytes) -> str:
    # Written by hand: no library writes tinydns-data lines. Every byte outside printable
    # ASCII, and ':' (the field separator), '\' (the escape) and space, becomes \NNN octal,
    # which tinydns-data reads in generic-record rdata.
    return "".join(
        chr(b) if 0x21 <= b <= 0x7E and b not in (0x3A, 0x5C) else f"\\{b:03o}" for b in data
    )


def render(
    records: Sequence[CAARecord],
    *,
    name: str = "example.com.",
    ttl: int = 3600,
    fmt: Format = "zone",
) -> str:
    """The records for the owner ``name`` as text, one record per line (JSON: a list).

    * ``zone``: BIND presentation, ``example.com. 3600 IN CAA 0 issue "letsencrypt.org"``;
    * ``tinydns``: tinydns-data generic lines, ``:example.com:257:\\000\\005issue…:3600``
      (rdata octal-escaped);
    * ``json``: ``[{"name", "ttl", "flags", "tag", "value"}]``.

    A tag that is not letters and digits is written in RFC 3597's generic form in a zone
    file. Raises :class:`~pinwarden.errors.InputError` for a bad name, TTL or format, for a
    record that cannot exist (flags beyond one octet, a tag that is empty, too long or not
    ASCII) and, in JSON, for a value that is not UTF-8 text."""
    owner = _owner(name)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= _MAX_TTL:
        raise InputError(f"TTL {ttl!r} must be a whole number of seconds from 0 to {_MAX_TTL}")
    if fmt == "zone":
        lines = [_zone_line(owner, ttl, r) for r in records]
        return "".join(line + "\n" for line in lines)
    if fmt == "tinydns":
        lines = [f":{owner}:{_CAA_TYPE}:{_octal(to_rdata(r))}:{ttl}" for r in records]
        return "".join(line + "\n" for line in lines)
    if fmt == "json":
        rows = []
        for n, record in enumerate(records, 1):
            to_rdata(record)  # refuses a record that cannot exist, as the other formats do
            try:
                value = record.value.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    f"record {n}: its value is not UTF-8 text; use the zone or tinydns format"
                ) from None
            rows.append(
                {
                    "name": owner + ".",
                    "ttl": ttl,
                    "flags": record.flags,
                    "tag": record.tag,
                    "value": value,
                }
            )
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
