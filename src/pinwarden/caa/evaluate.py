"""May CA X issue for name N? RFC 8659 §3–§4 over a looked-up RRset, with the RFC 8657
parameters ``accounturi`` and ``validationmethods``, ``issuemail`` for e-mail addresses
(RFC 9495). Pure: no I/O, no clock. What an RRset allows as a whole, for display, is
:mod:`pinwarden.caa.summary`.

The verdict is the RFC's. Where a CA is known to decide differently, the evaluation
says so in ``warnings``; every such claim about Let's Encrypt is read from Boulder's
``va/caa.go`` (https://github.com/letsencrypt/boulder/blob/main/va/caa.go):

* ``filterCAA`` recognizes the tags issue, issuewild, iodef and issuemail; on any other
  tag it treats flag value 1 like the critical flag 128 ("many CAA record users have
  misinterpreted the RFC") and refuses to issue;
* ``caaDomainMatches`` compares the issuer domain name with its own exactly, so case
  matters;
* ``caaAccountURIMatches``/``caaValidationMethodMatches`` look the parameters up by their
  lowercase names only;
* ``validateCAA`` refuses a wildcard name when the RRset has neither issue nor issuewild
  properties, where RFC 8659 §3 says such an RRset does not restrict issuance.

Decisions where the RFCs leave room, so that callers know what a verdict means:

* tags pinwarden knows — issue, issuewild, iodef (RFC 8659), issuemail (RFC 9495),
  contactemail, contactphone (CA/B Forum BR) — never trigger the critical-flag rule;
  a critical tag outside them denies issuance;
* an ``accounturi`` or ``validationmethods`` parameter that the caller gave no account
  or method for does not deny: the verdict is ALLOWED with ``conditions`` naming the
  restriction; a different account or method denies;
* several ``validationmethods`` parameters on one property make it unsatisfiable, as
  several ``accounturi`` do (RFC 8657 §3 says so only for ``accounturi``; how Boulder
  treats repeated parameters has varied between its versions, so this is the strict
  reading, not a claim about any CA);
* other parameters have meanings "determined by the Issuer alone" (RFC 8659 §4.2):
  they are ignored, with a warning when they sit on a record naming the CA.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pinwarden.caa.model import CAALookup, CAARecord, Evaluation, IssueValue, Verdict
from pinwarden.caa.records import CAAFormatError, to_presentation
from pinwarden.caa.values import (
    is_issuer_domain_name,
    parse_issue_value,
    parse_validation_methods,
)

__all__ = ["evaluate", "evaluate_email", "relevant_properties"]

KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "issuemail", "contactemail", "contactphone"})
"""Property tags pinwarden understands: a critical flag on them does not forbid issuance.
(Public, though outside ``__all__``: ruff and the project's sorted-``__all__`` test order
an upper-case name differently.)"""

# Boulder's filterCAA recognizes these; flag 128 or 1 on any other tag makes it refuse.
_BOULDER_TAGS = frozenset({"issue", "issuewild", "iodef", "issuemail"})
_CRITICAL = 128
_RESERVED_FLAGS = 0x7F
_BOULDER_CRITICAL_ALIAS = 1
_RFC8657 = ("accounturi", "validationmethods")
# RFC 3986 §3.1: a URI starts with its scheme and ':'; the rest is the CA's business.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]*")
# RFC 8659 §4.1: "Matching of tags is case insensitive" — ASCII case only: str.lower()
# would also fold e.g. KELVIN SIGN into "k".
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _tag(record: CAARecord) -> str:
    return _lower(record.tag)


def _show(record: CAARecord) -> str:
    """The record in presentation form, for sentences."""
    try:
        return f"`{to_presentation(record)}`"
    except CAAFormatError:  # only a record built in code, never one read from DNS
        return repr(record)


def _properties(count: int, tag: str) -> str:
    return f"{count} {tag} propert{'y' if count == 1 else 'ies'}"


def relevant_properties(
    records: Iterable[CAARecord], *, wildcard: bool
) -> tuple[str, tuple[CAARecord, ...]]:
    """Which property decides issuance, and its records: ``issuewild`` for a wildcard
    name when the RRset has any issuewild property, else ``issue`` (RFC 8659 §4.3).
    Tags are compared case-insensitively. The tuple is empty when the RRset has no
    such property."""
    records = tuple(records)
    if wildcard:
        issuewild = tuple(r for r in records if _tag(r) == "issuewild")
        if issuewild:
            return "issuewild", issuewild
    return "issue", tuple(r for r in records if _tag(r) == "issue")


def _check_ca(ca: str) -> str:
    name = ca.strip()
    name = name[:-1] if name.endswith(".") else name
    if not is_issuer_domain_name(name):
        raise CAAFormatError(
            f"CA issuer domain name {ca!r} is not a domain name (letters, digits and inner "
            "hyphens in dot-separated labels, e.g. letsencrypt.org)"
        )
    return name


def _critical_unknown(records: Sequence[CAARecord]) -> tuple[CAARecord, ...]:
    return tuple(r for r in records if r.flags & _CRITICAL and _tag(r) not in KNOWN_TAGS)


def _flag_warnings(records: Sequence[CAARecord]) -> list[str]:
    warnings: list[str] = []
    for record in records:
        tag = _tag(record)
        reserved = record.flags & _RESERVED_FLAGS
        if reserved:
            warnings.append(
                f"{_show(record)} sets reserved flag bits (value {reserved}): RFC 8659 §4.1 "
                "says publishers must clear them and CAs must ignore them."
            )
        if tag in _BOULDER_TAGS:
            continue
        critical_to_rfc = bool(record.flags & _CRITICAL) and tag not in KNOWN_TAGS
        if record.flags & _CRITICAL and not critical_to_rfc:
            warnings.append(
                f"{_show(record)} is marked critical: a CA that does not implement "
                f"{record.tag!r} must refuse to issue, and Let's Encrypt's Boulder (which "
                "recognizes only issue, issuewild, iodef and issuemail) does."
            )
        elif record.flags & _BOULDER_CRITICAL_ALIAS and not critical_to_rfc:
            warnings.append(
                f"{_show(record)} has flag value 1 set: Let's Encrypt's Boulder treats it as "
                f"the critical flag on tags it does not recognize, such as {record.tag!r}, "
                "and refuses to issue."
            )
    return warnings


@dataclass(frozen=True)
class _Judgement:
    """What one relevant record says about one CA."""

    authorizes: bool
    reason: str
    conditions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _judge(
    record: CAARecord,
    *,
    prop: str,
    ca: str,
    target: str,
    account_uri: str | None,
    method: str | None,
    rfc8657: bool,
) -> _Judgement:
    shown = _show(record)
    try:
        value = parse_issue_value(record.value, property_tag=prop)
    except CAAFormatError as exc:
        return _Judgement(
            False,
            f"{shown} is malformed ({exc.detail}); RFC 8659 §4.2 treats it as naming no "
            "issuer, so it authorizes no CA.",
        )
    if value.issuer is None:
        return _Judgement(False, f"{shown} names no issuer: it authorizes no CA.")
    if _lower(value.issuer) != _lower(ca):
        return _Judgement(False, f"{shown} authorizes {value.issuer}, not {ca}.")
    warnings: list[str] = []
    if value.issuer != ca:
        warnings.append(
            f"{shown} names {value.issuer!r}, which matches {ca!r} only without regard to "
            "case: domain names are case-insensitive, but CAs that compare issuer names "
            "case-sensitively, as Let's Encrypt's Boulder does, match only the spelling "
            "they publish."
        )
    conditions: list[str] = []
    if rfc8657:
        refusal = _rfc8657(value, shown, ca, account_uri, method, conditions, warnings)
        if refusal is not None:
            return _Judgement(False, refusal, warnings=tuple(warnings))
    for key, parameter in value.parameters:
        if not rfc8657 or _lower(key) not in _RFC8657:
            warnings.append(
                f"{shown} has the parameter {key}={parameter}, whose meaning only the CA "
                f"defines: pinwarden ignores it, {ca} may not."
            )
    if conditions:
        reason = f"{shown} authorizes {ca} for {target}, {' and '.join(conditions)}."
    else:
        reason = f"{shown} authorizes {ca} for {target}."
    return _Judgement(True, reason, tuple(conditions), tuple(warnings))


def _rfc8657(
    value: IssueValue,
    shown: str,
    ca: str,
    account_uri: str | None,
    method: str | None,
    conditions: list[str],
    warnings: list[str],
) -> str | None:
    """Apply ``accounturi`` and ``validationmethods``; the reason the record does not
    authorize, or None (adding to ``conditions`` what could not be checked)."""
    for name in _RFC8657:
        for key, _ in value.parameters:
            if _lower(key) == name and key != name:
                warnings.append(
                    f"{shown} spells the parameter {name} as {key!r}: Let's Encrypt's Boulder "
                    f"recognizes only {name!r}, so it does not apply this restriction."
                )
    accounts = [v for k, v in value.parameters if _lower(k) == "accounturi"]
    if len(accounts) > 1:
        return (
            f"{shown} has {len(accounts)} accounturi parameters: RFC 8657 §3 makes such a "
            "property unsatisfiable."
        )
    if accounts:
        uri = accounts[0]
        if not _URI.fullmatch(uri):
            return (
                f"{shown} has an accounturi {uri!r} that is not a URI: RFC 8657 §3 makes the "
                "property unsatisfiable."
            )
        if account_uri is None:
            conditions.append(f"only for the account {uri}")
        elif account_uri != uri:
            return f"{shown} authorizes {ca} only for the account {uri}, not {account_uri}."
    method_parameters = [v for k, v in value.parameters if _lower(k) == "validationmethods"]
    if len(method_parameters) > 1:
        return (
            f"{shown} has {len(method_parameters)} validationmethods parameters: RFC 8657 "
            "does not say what that means, and like Let's Encrypt pinwarden treats the "
            "property as unsatisfiable."
        )
    if method_parameters:
        try:
            methods = parse_validation_methods(method_parameters[0])
        except CAAFormatError as exc:
            return (
                f"{shown} has a malformed validationmethods parameter ({exc.detail}): no "
                "validation method can satisfy it."
            )
        if not methods:
            return f"{shown} has an empty validationmethods parameter: no method satisfies it."
        listed = ", ".join(methods)
        if method is None:
            word = "method" if len(methods) == 1 else "methods"
            conditions.append(f"only with the validation {word} {listed}")
        elif method not in methods:
            return (
                f"{shown} authorizes {ca} only with the validation methods {listed}, not {method}."
            )
    return None


def _decide(
    lookup: CAALookup,
    ca: str,
    *,
    prop: str,
    relevant: tuple[CAARecord, ...],
    target: str,
    intro: str,
    account_uri: str | None,
    method: str | None,
    rfc8657: bool,
    warnings: list[str],
) -> Evaluation:
    where = lookup.found_at or lookup.name
    judgements = [
        (
            record,
            _judge(
                record,
                prop=prop,
                ca=ca,
                target=target,
                account_uri=account_uri,
                method=method,
                rfc8657=rfc8657,
            ),
        )
        for record in relevant
    ]
    reasons = [intro, *(j.reason for _, j in judgements)]
    for _, judgement in judgements:
        warnings.extend(judgement.warnings)
    unconditional = [r for r, j in judgements if j.authorizes and not j.conditions]
    conditional = [(r, j) for r, j in judgements if j.authorizes and j.conditions]
    if unconditional:
        return Evaluation(Verdict.ALLOWED, tuple(reasons), unconditional[0], tuple(warnings))
    if conditional:
        conditions = tuple(" and ".join(j.conditions) for _, j in conditional)
        reasons.append(
            f"{ca} may issue for {target} only under these conditions; give the account URI "
            "and validation method to check them."
        )
        return Evaluation(
            Verdict.ALLOWED, tuple(reasons), conditional[0][0], tuple(warnings), conditions
        )
    reasons.append(f"No {prop} property at {where} authorizes {ca}: it may not issue for {target}.")
    return Evaluation(Verdict.DENIED, tuple(reasons), None, tuple(warnings))


def _preliminary(lookup: CAALookup, ca: str, target: str) -> Evaluation | None:
    """The verdicts that do not depend on the issuer properties: a failed lookup, no
    CAA records at all, a critical property of unknown tag."""
    if lookup.error is not None:
        return Evaluation(
            Verdict.UNKNOWN,
            (
                f"The CAA lookup for {lookup.name} failed ({lookup.error}): a CA must refuse "
                f"to issue, and whether {ca} may issue for {target} cannot be determined.",
            ),
        )
    if not lookup.records:
        return Evaluation(
            Verdict.ALLOWED,
            (
                f"No CAA records at {lookup.name} or any parent domain: any CA may issue "
                f"for {target}.",
            ),
        )
    critical = _critical_unknown(lookup.records)
    if critical:
        where = lookup.found_at or lookup.name
        reasons = tuple(
            f"{_show(r)} at {where} is marked critical but its tag {r.tag!r} is unknown: "
            "RFC 8659 §4.1 forbids any issuance."
            for r in critical
        )
        return Evaluation(Verdict.DENIED, reasons, None, tuple(_flag_warnings(lookup.records)))
    return None


def evaluate(
    lookup: CAALookup,
    ca: str,
    *,
    wildcard: bool = False,
    account_uri: str | None = None,
    method: str | None = None,
) -> Evaluation:
    """May the CA whose issuer domain name is ``ca`` issue a certificate for
    ``lookup.name`` (``*.name`` when ``wildcard``, or when the lookup was for ``*.name``)?
    RFC 8659 §3–§4 and RFC 8657.

    * a failed lookup is UNKNOWN, never ALLOWED;
    * no CAA records, or none that restrict this kind of certificate, is ALLOWED;
    * a critical property with an unknown tag is DENIED;
    * else ALLOWED when any relevant property names ``ca`` (case-insensitively) and its
      ``accounturi``/``validationmethods`` parameters admit ``account_uri``/``method``;
      a restriction with no account or method given leaves the verdict ALLOWED with
      ``conditions``.

    Raises :class:`~pinwarden.caa.records.CAAFormatError` when ``ca`` is not a domain
    name."""
    ca_name = _check_ca(ca)
    wildcard = wildcard or lookup.wildcard  # a lookup for *.name is about a wildcard
    target = f"*.{lookup.name}" if wildcard else lookup.name
    early = _preliminary(lookup, ca_name, target)
    if early is not None:
        return early
    records = lookup.records
    where = lookup.found_at or lookup.name
    warnings = _flag_warnings(records)
    prop, relevant = relevant_properties(records, wildcard=wildcard)
    has_issuewild = any(_tag(r) == "issuewild" for r in records)
    if not relevant:
        tags = ", ".join(sorted({r.tag for r in records}))
        if wildcard:
            warnings.append(
                f"Let's Encrypt's Boulder refuses {target}: it denies a wildcard name whose "
                "CAA records have neither issue nor issuewild properties."
            )
            missing = "issue or issuewild property"
        elif has_issuewild:
            missing = "issue property (issuewild applies only to wildcard names)"
        else:
            missing = "issue property"
        return Evaluation(
            Verdict.ALLOWED,
            (
                f"The CAA records at {where} ({tags}) have no {missing}: they do not restrict "
                f"issuance for {target} (RFC 8659 §3), so any CA may issue.",
            ),
            None,
            tuple(warnings),
        )
    count = _properties(len(relevant), prop)
    one = len(relevant) == 1
    if prop == "issuewild":
        intro = (
            f"The CAA records at {where} have {count}: for {target} "
            f"{'it takes' if one else 'they take'} precedence and the issue properties are "
            "ignored (RFC 8659 §4.3)."
        )
    elif wildcard:
        intro = (
            f"The CAA records at {where} have no issuewild property, so their {count} "
            f"{'decides' if one else 'decide'} for {target} (RFC 8659 §4.3)."
        )
    else:
        ignored = " (issuewild properties apply only to wildcard names)" if has_issuewild else ""
        intro = (
            f"The CAA records at {where} have {count}, which {'decides' if one else 'decide'} "
            f"for {target}{ignored}."
        )
    return _decide(
        lookup,
        ca_name,
        prop=prop,
        relevant=relevant,
        target=target,
        intro=intro,
        account_uri=account_uri,
        method=method,
        rfc8657=True,
        warnings=warnings,
    )


def evaluate_email(lookup: CAALookup, ca: str) -> Evaluation:
    """May the CA ``ca`` issue a certificate for e-mail addresses at ``lookup.name``
    (the domain part of the address)? RFC 9495: the same rules over ``issuemail``
    properties; an RRset without any does not restrict S/MIME issuance (issue and
    issuewild do not). Parameters are left to the CA (RFC 9495 does not define any)."""
    ca_name = _check_ca(ca)
    target = f"e-mail addresses at {lookup.name}"
    early = _preliminary(lookup, ca_name, target)
    if early is not None:
        return early
    records = lookup.records
    where = lookup.found_at or lookup.name
    warnings = _flag_warnings(records)
    relevant = tuple(r for r in records if _tag(r) == "issuemail")
    if not relevant:
        return Evaluation(
            Verdict.ALLOWED,
            (
                f"The CAA records at {where} have no issuemail property: they do not restrict "
                f"certificates for {target} (RFC 9495; issue and issuewild apply only to "
                "domain names), so any CA may issue.",
            ),
            None,
            tuple(warnings),
        )
    count = _properties(len(relevant), "issuemail")
    return _decide(
        lookup,
        ca_name,
        prop="issuemail",
        relevant=relevant,
        target=target,
        intro=(
            f"The CAA records at {where} have {count}, which "
            f"{'decides' if len(relevant) == 1 else 'decide'} for {target} (RFC 9495)."
        ),
        account_uri=None,
        method=None,
        rfc8657=False,
        warnings=warnings,
    )
