"""Audit the SCTs embedded in a certificate against the Chrome and Apple CT policies.

This is an **audit** of what a certificate carries, not the enforcement a TLS client
performs: only SCTs embedded in the certificate are seen. SCTs a server delivers in the
TLS handshake (``signed_certificate_timestamp`` extension) or in a stapled OCSP response
can make a certificate compliant in a browser, but Python's :mod:`ssl` does not expose
them. Browsers also judge with their own, current log lists; this audit judges with the
list it is given, as of ``now``.

Pure: no I/O and no clock (``now`` is passed in). The per-SCT verdicts come from
:mod:`pinwarden.ct.sct`; only VALID SCTs count towards a policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from cryptography import x509

from pinwarden.ct.logs import Log, LogList, LogState
from pinwarden.ct.sct import SCT, SCTResult

__all__ = [
    "AUDIT_NOTE",
    "PolicyLine",
    "PolicyVerdict",
    "Validity",
    "apple_lifetime_days",
    "audit_apple",
    "audit_chrome",
    "chrome_lifetime",
    "undecided",
]

AUDIT_NOTE = (
    "This is an audit of the SCTs embedded in the certificate, not the enforcement a "
    "browser performs: SCTs delivered in the TLS handshake or in a stapled OCSP response "
    "are not seen (Python's ssl module does not expose them), and browsers judge with "
    "their own current log lists."
)

Validity = tuple[datetime, datetime]
"""(notBefore, notAfter), aware datetimes."""

PolicyName = Literal["chrome", "apple"]

_CURRENT = (LogState.QUALIFIED, LogState.USABLE, LogState.READONLY)


@dataclass(frozen=True)
class PolicyLine:
    """One requirement of a policy: ``key`` names it (stable, for JSON), ``requirement``
    says what the policy asks, ``found`` what the certificate has, ``met`` whether that is
    enough (``None``: could not be decided)."""

    key: str
    requirement: str
    found: str
    met: bool | None

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "requirement": self.requirement,
            "found": self.found,
            "met": self.met,
        }


@dataclass(frozen=True)
class PolicyVerdict:
    """The audit of one policy. ``compliant`` is ``None`` when it could not be decided
    (an SCT could not be verified, or a log's state is not in the list); ``lines`` explain
    the verdict requirement by requirement; ``notes`` list what was left out (SCTs that
    do not count and why) and caveats about the log list."""

    policy: PolicyName
    compliant: bool | None
    lines: tuple[PolicyLine, ...]
    summary: str
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "compliant": self.compliant,
            "summary": self.summary,
            "lines": [line.to_json() for line in self.lines],
            "notes": list(self.notes),
        }


def chrome_lifetime(not_before: datetime, not_after: datetime) -> timedelta:
    """Chrome's certificate lifetime: ``notAfter - notBefore`` as a duration (Chromium's
    ``ChromeCTPolicyEnforcer`` compares ``valid_expiry - valid_start`` with
    ``base::Days(180)``): exactly 180 days is "<= 180 days", one second more is not."""
    return not_after - not_before


def apple_lifetime_days(not_before: datetime, not_after: datetime) -> int:
    """Apple's certificate lifetime in days: "the period of time from notBefore through
    notAfter, inclusive" (RFC 5280 section 4.1.2.5, so one second more than the
    difference), "measured with a day being equal to 86,400 seconds. Any time greater
    than this indicates an additional day" — a started day counts. A certificate with
    ``notAfter = notBefore + 180 days`` is 181 days long for Apple (180 for Chrome)."""
    seconds = (not_after - not_before).total_seconds() + 1
    return max(0, math.ceil(seconds / 86400))


def undecided(policy: PolicyName, reason: str) -> PolicyVerdict:
    """A verdict that could not be reached at all: ``reason`` says why the SCTs could not
    be verified (e.g. no issuer certificate)."""
    return PolicyVerdict(
        policy,
        None,
        (PolicyLine("verified-scts", "embedded SCTs whose signatures verify", reason, None),),
        f"{_TITLE[policy]}: could not decide: the SCTs could not be verified",
    )


_TITLE: dict[PolicyName, str] = {"chrome": "Chrome CT policy", "apple": "Apple CT policy"}


# --- what the log list says about each SCT ---------------------------------------------


@dataclass(frozen=True)
class _Standing:
    """How a policy sees the log of a valid SCT at the time of check. ``why`` says why an
    ``excluded`` or ``unknown`` log is so, when it is not plain from its state."""

    kind: Literal["current", "retired", "excluded", "unknown"]
    retired_at: datetime | None = None
    why: str | None = None


def _standing(log: Log, now: datetime) -> _Standing:
    """The log's standing at ``now`` from the one state a list gives: the current one,
    with the time it began (``state_since``)."""
    state, since = log.state, log.state_since
    if state is None:
        return _Standing("unknown", why="no state in the list")
    if state is LogState.RETIRED:
        # A log retired after the time of check was not retired yet (Chromium's
        # IsLogDisqualified: current_time >= disqualification_date).
        if since is not None and now < since:
            return _Standing("current")
        return _Standing("retired", since)
    if state in _CURRENT and since is not None and now < since:
        # The state began after the time of check (--at in the past), and the list does
        # not say what the log was before. A log enters Qualified only from Pending, so it
        # did not count then; Usable or ReadOnly come after Qualified, but when that was
        # is not in the list: the log may still have been Pending.
        began = f"{state.value} only since {_day(since)}, after the time of check"
        if state is LogState.QUALIFIED:
            return _Standing("excluded", why=f"log is {began} (pending before)")
        return _Standing("unknown", why=f"{began}; its state then is not in the list")
    if state in _CURRENT:
        return _Standing("current")
    return _Standing("excluded")


@dataclass(frozen=True)
class _Valid:
    result: SCTResult
    log: Log
    operator: str
    standing: _Standing
    sct: SCT

    @property
    def time(self) -> datetime:
        return self.sct.timestamp

    def name(self) -> str:
        return f"{self.log.description} ({self.operator})"

    def left_out(self) -> str:
        """Why an excluded log's SCT does not count."""
        state = self.log.state.value if self.log.state else "no state"
        return f"{self.name()}: {self.standing.why or f'log is {state}'}"


def _valid_scts(results: Sequence[SCTResult], now: datetime) -> list[_Valid]:
    found = []
    for r in results:
        if r.valid and r.log is not None and isinstance(r.sct, SCT):
            operator = r.log.operator_at(r.sct.timestamp)
            found.append(_Valid(r, r.log, operator, _standing(r.log, now), r.sct))
    return sorted(found, key=lambda v: (v.time, v.log.description))


def _names(scts: Sequence[_Valid]) -> str:
    return ", ".join(v.name() for v in scts) if scts else "none"


def _listed(scts: Sequence[_Valid]) -> str:
    """``"N: names"``, or ``"none"``."""
    return f"{len(scts)}: {_names(scts)}" if scts else "none"


def _distinct_logs(scts: Sequence[_Valid]) -> list[_Valid]:
    """The first SCT of each log: a log that signed twice counts once."""
    seen: dict[bytes, _Valid] = {}
    for v in scts:
        seen.setdefault(v.log.log_id, v)
    return list(seen.values())


def _day(when: datetime) -> str:
    return f"{when.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}Z"


def _duration(delta: timedelta) -> str:
    days = delta.days
    rest = delta - timedelta(days=days)
    text = f"{days} day{'s' if days != 1 else ''}"
    return text if not rest else f"{text} {rest}"


def _notes(results: Sequence[SCTResult], log_list: LogList, policy: str) -> list[str]:
    notes = []
    for r in results:
        if not r.valid:
            when = f" at {_day(r.sct.timestamp)}" if r.sct.timestamp is not None else ""
            if r.log is not None:
                which = f"SCT from {r.log.description}{when}"
            elif r.sct.log_id is None:
                which = "an undecodable SCT"
            else:
                which = f"SCT from an unknown log{when}"
            notes.append(
                f"{which} not counted: {r.status.value}" + (f" ({r.detail})" if r.detail else "")
            )
    if log_list.kind != policy:
        notes.append(
            f"log states come from the {log_list.kind} log list ({log_list.source}); "
            f"{policy.capitalize()}'s own list may differ"
        )
    return notes


@dataclass(frozen=True)
class _Evaluation:
    lines: list[PolicyLine]
    failures: list[str]
    headline: str

    @property
    def compliant(self) -> bool:
        return not self.failures


def _decide(
    policy: PolicyName,
    results: Sequence[SCTResult],
    log_list: LogList,
    now: datetime,
    evaluate: Callable[[list[_Valid]], _Evaluation],
) -> PolicyVerdict:
    """Evaluate with the logs the list gives no state for counted as neither current
    nor retired, then as current: when the two disagree, the verdict depends on states
    the list does not give and is undecided."""
    title = _TITLE[policy]
    notes = tuple(_notes(results, log_list, policy))
    valid = _valid_scts(results, now)
    strict = evaluate([v for v in valid if v.standing.kind != "unknown"])
    lines = list(strict.lines)
    compliant: bool | None = strict.compliant
    unknown = _distinct_logs([v for v in valid if v.standing.kind == "unknown"])
    if unknown:
        assumed = [
            v
            if v.standing.kind != "unknown"
            else _Valid(v.result, v.log, v.operator, _Standing("current"), v.sct)
            for v in valid
        ]
        lenient = evaluate(assumed)
        decided = lenient.compliant == strict.compliant
        lines.append(
            PolicyLine(
                "log-states",
                "the state at the time of check of each log that signed a valid SCT, from "
                "the log list",
                _unknown_states(unknown)
                + ("; the verdict is the same whatever their state" if decided else ""),
                True if decided else None,
            )
        )
        if not decided:
            compliant = None
    if not results:
        summary = (
            f"{title}: NOT compliant: no SCTs — the certificate embeds no SCTs "
            "(SCTs from the TLS handshake or OCSP are not seen by this audit)"
        )
    elif compliant is None:
        summary = (
            f"{title}: could not decide: compliant only if these logs were Qualified, "
            f"Usable or ReadOnly at the time of check: {_names(unknown)}"
        )
    elif compliant:
        summary = f"{title}: compliant ({strict.headline})"
    else:
        summary = f"{title}: NOT compliant: " + "; ".join(strict.failures)
    return PolicyVerdict(policy, compliant, tuple(lines), summary, notes)


def _unknown_states(unknown: Sequence[_Valid]) -> str:
    """``no state in the list for A, B; C: usable only since ...``"""
    stateless = [v for v in unknown if v.log.state is None]
    parts = [f"no state in the list for {_names(stateless)}"] if stateless else []
    parts += [f"{v.name()}: {v.standing.why}" for v in unknown if v.log.state is not None]
    return "; ".join(parts)


def _validity(validity: Validity | x509.Certificate) -> Validity:
    if isinstance(validity, x509.Certificate):
        return validity.not_valid_before_utc, validity.not_valid_after_utc
    return validity


# --- Chrome -----------------------------------------------------------------------------


def audit_chrome(
    validity: Validity | x509.Certificate,
    results: Sequence[SCTResult],
    log_list: LogList,
    now: datetime,
) -> PolicyVerdict:
    """Audit embedded SCTs against the Chrome CT policy for certificates issued on or
    after 15 April 2022 (googlechrome.github.io/CertificateTransparency/ct_policy.html):

        1. At least one Embedded SCT from a CT Log that was Qualified, Usable, or
           ReadOnly at the time of check; and
        2. There are Embedded SCTs from at least N distinct CT Logs that were Qualified,
           Usable, ReadOnly, or Retired at the time of check [N = 2 for a lifetime
           <= 180 days, 3 beyond]; and
        3. Among the SCTs satisfying requirements 1 and 2, at least two SCTs must be
           issued from distinct CT Log Operators as recognized by Chrome.

    "In order to contribute to a certificate's CT Compliance, an SCT must have been issued
    before the Log's Retired timestamp": as Chromium implements it, an SCT of a log
    retired at the time of check counts when both it and the earliest SCT of a
    non-retired log are before the retirement time. Each SCT's operator is the one at the
    SCT's time (``previous_operators``). Only VALID SCTs count; a log that signed several
    SCTs counts once; Pending and Rejected logs do not count. ``validity`` is the
    certificate or its (notBefore, notAfter); the lifetime is :func:`chrome_lifetime`.
    """
    not_before, not_after = _validity(validity)
    lifetime = chrome_lifetime(not_before, not_after)
    needed = 3 if lifetime > timedelta(days=180) else 2

    def evaluate(valid: list[_Valid]) -> _Evaluation:
        current = [v for v in valid if v.standing.kind == "current"]
        # Chromium: "issuance date is defined as the earliest of all SCTs" of logs not
        # retired, "to give CAs the benefit of the doubt" when a log retires mid-issuance.
        issued = min((v.time for v in current), default=None)
        counted, left_out = list(current), []
        for v in valid:
            at = v.standing.retired_at
            if v.standing.kind == "retired":
                if at is None:
                    left_out.append(f"{v.name()}: retired, the list gives no time")
                elif issued is not None and issued < at and v.time < at:
                    counted.append(v)
                elif v.time >= at:
                    left_out.append(f"{v.name()}: retired {_day(at)}, SCT after the retirement")
                else:
                    left_out.append(
                        f"{v.name()}: retired {_day(at)}, no SCT of a non-retired log "
                        "before the retirement"
                    )
            elif v.standing.kind == "excluded":
                left_out.append(v.left_out())
        counted.sort(key=lambda v: (v.time, v.log.description))
        logs = _distinct_logs(counted)
        operators = list(dict.fromkeys(v.operator for v in counted))
        lines = [
            PolicyLine(
                "current-log",
                f"at least 1 embedded SCT from a log Qualified, Usable or ReadOnly at the "
                f"time of check ({_day(now)})",
                _listed(_distinct_logs(current)),
                bool(current),
            ),
            PolicyLine(
                "distinct-logs",
                f"embedded SCTs from at least {needed} distinct logs Qualified, Usable, "
                "ReadOnly, or Retired with the SCT before the retirement (2 for a "
                f"lifetime of at most 180 days, 3 beyond; lifetime "
                f"{_duration(lifetime)}, notAfter − notBefore)",
                _listed(logs) + (f"; not counted: {'; '.join(left_out)}" if left_out else ""),
                len(logs) >= needed,
            ),
            PolicyLine(
                "distinct-operators",
                "among those SCTs, at least 2 distinct log operators (the operator at the "
                "SCT's time)",
                f"{len(operators)}: {', '.join(operators)}" if operators else "none",
                len(operators) >= 2,
            ),
        ]
        failures = []
        if not current:
            failures.append("no SCT from a Qualified, Usable or ReadOnly log")
        if len(logs) < needed:
            failures.append(
                f"SCTs from {len(logs)} distinct log{'s' if len(logs) != 1 else ''}, "
                f"{needed} needed for a lifetime of {_duration(lifetime)}"
            )
        if len(operators) < 2:
            failures.append(
                f"{len(operators)} log operator{'s' if len(operators) != 1 else ''}, 2 needed"
            )
        headline = f"{len(logs)} logs, {len(operators)} operators, lifetime {_duration(lifetime)}"
        return _Evaluation(lines, failures, headline)

    return _decide("chrome", results, log_list, now, evaluate)


# --- Apple ------------------------------------------------------------------------------


def _apple_counts(days: int) -> tuple[int, int]:
    """(SCTs from distinct logs, maximum counted per operator) for an Apple lifetime."""
    return (2, 1) if days <= 180 else (3, 2)


def audit_apple(
    validity: Validity | x509.Certificate,
    results: Sequence[SCTResult],
    log_list: LogList,
    now: datetime,
) -> PolicyVerdict:
    """Audit embedded SCTs against Apple's CT policy (support.apple.com/en-us/103214),
    embedded-SCT path:

        Apple's policy requires at least two SCTs issued from a CT log — once-approved or
        currently approved at the time of check — and [...] at least one embedded SCT
        from a currently approved log and at least the number of SCTs from once or
        currently approved logs, based on validity period: 180 days or less: 2 SCTs from
        distinct logs, at most 1 per log operator counted; 181 to 398 days: 3, at most 2
        per operator. At least one SCT must be issued from a log compliant with RFC 6962.

    Currently approved: Qualified, Usable or ReadOnly at the time of check; once approved:
    Retired, with the SCT before the retirement time. The lifetime is
    :func:`apple_lifetime_days` (inclusive, a started day counts); beyond 398 days the
    table has no row and the certificate does not comply. An RFC 6962 log is one that is
    not a static-ct-api (tiled) log. Only VALID SCTs count; a log counts once.
    """
    not_before, not_after = _validity(validity)
    days = apple_lifetime_days(not_before, not_after)
    needed, cap = _apple_counts(days)

    def evaluate(valid: list[_Valid]) -> _Evaluation:
        current = [v for v in valid if v.standing.kind == "current"]
        eligible, left_out = list(current), []
        for v in valid:
            at = v.standing.retired_at
            if v.standing.kind == "retired":
                if at is None:
                    left_out.append(f"{v.name()}: retired, the list gives no time")
                elif v.time < at:
                    eligible.append(v)
                else:
                    left_out.append(f"{v.name()}: retired {_day(at)}, SCT after the retirement")
            elif v.standing.kind == "excluded":
                left_out.append(v.left_out())
        eligible.sort(key=lambda v: (v.time, v.log.description))
        per_operator: dict[str, int] = {}
        counted, capped = [], []
        for v in _distinct_logs(eligible):
            if per_operator.get(v.operator, 0) < cap:
                per_operator[v.operator] = per_operator.get(v.operator, 0) + 1
                counted.append(v)
            else:
                capped.append(v)
        rfc6962 = _distinct_logs([v for v in eligible if not v.log.tiled])
        not_counted = left_out + [f"{v.name()}: over the {cap} per operator" for v in capped]
        lines = [
            PolicyLine(
                "current-log",
                "at least 1 embedded SCT from a log currently approved (Qualified, Usable "
                f"or ReadOnly) at the time of check ({_day(now)})",
                _listed(_distinct_logs(current)),
                bool(current),
            ),
            PolicyLine(
                "lifetime",
                "a lifetime of at most 398 days (notBefore through notAfter inclusive, a "
                "started day counts)",
                f"{days} day{'s' if days != 1 else ''}",
                days <= 398,
            ),
            PolicyLine(
                "distinct-logs",
                f"SCTs from at least {needed} distinct once or currently approved logs, "
                f"at most {cap} per operator counted (2 and 1 for 180 days or less, 3 and "
                "2 for 181 to 398 days)",
                (f"{len(counted)} counted: {_names(counted)}" if counted else "none counted")
                + (f"; not counted: {'; '.join(not_counted)}" if not_counted else ""),
                len(counted) >= needed,
            ),
            PolicyLine(
                "rfc6962-log",
                "at least 1 SCT from an RFC 6962 log (not a static-ct-api log)",
                _listed(rfc6962),
                bool(rfc6962),
            ),
        ]
        failures = []
        if not current:
            failures.append("no SCT from a currently approved log")
        if days > 398:
            failures.append(f"a lifetime of {days} days, more than 398")
        if len(counted) < needed:
            failures.append(
                f"{len(counted)} SCT{'s' if len(counted) != 1 else ''} counted (at most "
                f"{cap} per operator), {needed} needed for {days} days"
            )
        if not rfc6962:
            failures.append("no SCT from an RFC 6962 log")
        headline = f"{len(counted)} SCTs counted, lifetime {days} days"
        return _Evaluation(lines, failures, headline)

    return _decide("apple", results, log_list, now, evaluate)
