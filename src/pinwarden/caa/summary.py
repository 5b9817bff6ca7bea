"""What a CAA RRset allows, for display (:func:`summarize`): which CAs may issue for the
name, for its wildcard and for e-mail addresses; where to report (iodef) and whom to
contact; the properties that are unknown or malformed. And a record as JSON
(:func:`record_to_dict`). Properties are read by the rules of :mod:`pinwarden.caa.evaluate`.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# The evaluator's own tag and flag rules, private as they are, so that a summary can never
# disagree with a verdict.
from pinwarden.caa.evaluate import (
    _CRITICAL,
    KNOWN_TAGS,
    _critical_unknown,
    _lower,
    _show,
    _tag,
    relevant_properties,
)
from pinwarden.caa.model import CAARecord
from pinwarden.caa.records import CAAFormatError
from pinwarden.caa.values import (
    ContactEmail,
    ContactPhone,
    IodefValue,
    parse_contactemail,
    parse_contactphone,
    parse_iodef,
    parse_issue_value,
)

__all__ = [
    "CAASummary",
    "IssuerGrant",
    "Malformed",
    "Permission",
    "record_to_dict",
    "summarize",
]


@dataclass(frozen=True)
class IssuerGrant:
    """One property that authorizes a CA: the issuer domain name as written, its
    parameters, and the record."""

    issuer: str
    parameters: tuple[tuple[str, str], ...]
    record: CAARecord

    def describe(self) -> str:
        if not self.parameters:
            return self.issuer
        listed = "; ".join(f"{key}={value}" for key, value in self.parameters)
        return f"{self.issuer} ({listed})"


@dataclass(frozen=True)
class Permission:
    """Which CAs may issue one kind of certificate (the name, its wildcard, e-mail
    addresses) under an RRset.

    ``tag`` is the property that decides (``issue``, ``issuewild``, ``issuemail``), or
    None when no property restricts issuance; ``grants`` are its properties that name a
    CA; ``blocked`` means a critical property of unknown tag forbids all issuance."""

    tag: str | None
    grants: tuple[IssuerGrant, ...] = ()
    blocked: bool = False

    @property
    def any_ca(self) -> bool:
        """Any CA may issue: nothing restricts it."""
        return self.tag is None and not self.blocked

    @property
    def no_ca(self) -> bool:
        """No CA may issue."""
        return self.blocked or (self.tag is not None and not self.grants)

    @property
    def issuers(self) -> tuple[str, ...]:
        """The CAs that may issue (lowercase, each once, in record order)."""
        seen: dict[str, None] = {}
        for grant in self.grants:
            seen.setdefault(_lower(grant.issuer), None)
        return tuple(seen)

    def describe(self) -> str:
        """One line: ``any CA``, ``no CA`` or the issuers with their parameters."""
        if self.blocked:
            return "no CA (a critical property of unknown tag forbids issuance)"
        if self.tag is None:
            return "any CA"
        if not self.grants:
            return f"no CA ({self.tag} names no issuer)"
        return ", ".join(grant.describe() for grant in self.grants)

    def _key(self) -> tuple[object, ...]:
        grants = sorted((_lower(g.issuer), g.parameters) for g in self.grants)
        return (self.any_ca, self.no_ca, tuple(grants))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "any_ca": self.any_ca,
            "no_ca": self.no_ca,
            "blocked": self.blocked,
            "issuers": [
                {
                    "issuer": grant.issuer,
                    "parameters": [[key, value] for key, value in grant.parameters],
                    "record": record_to_dict(grant.record),
                }
                for grant in self.grants
            ],
        }


@dataclass(frozen=True)
class Malformed:
    """A record whose value does not follow its property's syntax, and why."""

    record: CAARecord
    reason: str


@dataclass(frozen=True)
class CAASummary:
    """What an RRset allows, for display: who may issue for the name, for its
    wildcard and for e-mail addresses; where to report (iodef) and whom to contact;
    the properties that are critical and unknown (they forbid all issuance), unknown
    but not critical (ignored), or malformed (an issuer property that is malformed
    authorizes no CA)."""

    name: Permission
    wildcard: Permission
    email: Permission
    iodef: tuple[IodefValue, ...] = ()
    contact_emails: tuple[ContactEmail, ...] = ()
    contact_phones: tuple[ContactPhone, ...] = ()
    critical_unknown: tuple[CAARecord, ...] = ()
    unknown: tuple[CAARecord, ...] = ()
    malformed: tuple[Malformed, ...] = ()

    @property
    def wildcard_differs(self) -> bool:
        """Whether the wildcard is governed differently from the name itself."""
        return self.name._key() != self.wildcard._key()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name.to_dict(),
            "wildcard": self.wildcard.to_dict(),
            "wildcard_differs": self.wildcard_differs,
            "email": self.email.to_dict(),
            "iodef": [{"url": v.url, "scheme": v.scheme, "target": v.target} for v in self.iodef],
            "contact_emails": [v.address for v in self.contact_emails],
            "contact_phones": [{"number": v.number, "e164": v.e164} for v in self.contact_phones],
            "critical_unknown": [record_to_dict(r) for r in self.critical_unknown],
            "unknown": [record_to_dict(r) for r in self.unknown],
            "malformed": [
                {"record": record_to_dict(m.record), "reason": m.reason} for m in self.malformed
            ],
        }


def record_to_dict(record: CAARecord) -> dict[str, Any]:
    """A record as JSON: flags, critical, tag, the value (UTF-8, undecodable bytes as
    ``\\xNN``) and the presentation form."""
    return {
        "flags": record.flags,
        "critical": record.critical,
        "tag": record.tag,
        "value": record.value.decode("utf-8", "backslashreplace"),
        "presentation": _show(record).strip("`"),
    }


def _permission(
    records: Sequence[CAARecord], prop: str, blocked: bool, malformed: dict[CAARecord, str]
) -> Permission:
    selected = tuple(r for r in records if _tag(r) == prop)
    if not selected:
        return Permission(None, (), blocked)
    grants: list[IssuerGrant] = []
    for record in selected:
        try:
            value = parse_issue_value(record.value, property_tag=prop)
        except CAAFormatError as exc:
            malformed.setdefault(record, exc.detail)
            continue
        if value.issuer is not None:
            grants.append(IssuerGrant(value.issuer, value.parameters, record))
    return Permission(prop, tuple(grants), blocked)


def summarize(records: Iterable[CAARecord]) -> CAASummary:
    """What the RRset ``records`` allows (see :class:`CAASummary`). Empty records
    allow any CA for everything."""
    records = tuple(records)
    critical = _critical_unknown(records)
    blocked = bool(critical)
    malformed: dict[CAARecord, str] = {}
    name = _permission(records, "issue", blocked, malformed)
    wildcard_prop, _ = relevant_properties(records, wildcard=True)
    if wildcard_prop == "issuewild":
        wildcard = _permission(records, "issuewild", blocked, malformed)
    else:
        wildcard = name
    email = _permission(records, "issuemail", blocked, malformed)
    iodef: list[IodefValue] = []
    emails: list[ContactEmail] = []
    phones: list[ContactPhone] = []
    unknown: list[CAARecord] = []
    for record in records:
        tag = _tag(record)
        try:
            if tag == "iodef":
                iodef.append(parse_iodef(record.value))
            elif tag == "contactemail":
                emails.append(parse_contactemail(record.value))
            elif tag == "contactphone":
                phones.append(parse_contactphone(record.value))
        except CAAFormatError as exc:
            malformed.setdefault(record, exc.detail)
        if tag not in KNOWN_TAGS and not record.flags & _CRITICAL:
            unknown.append(record)
    return CAASummary(
        name=name,
        wildcard=wildcard,
        email=email,
        iodef=tuple(iodef),
        contact_emails=tuple(emails),
        contact_phones=tuple(phones),
        critical_unknown=critical,
        unknown=tuple(unknown),
        malformed=tuple(
            Malformed(r, malformed[r]) for r in dict.fromkeys(records) if r in malformed
        ),
    )
