"""The Apple CT policy audit (support.apple.com/en-us/103214), embedded-SCT path: its
lifetime in started days and its requirements, over the counting in
:mod:`pinwarden.ct._policy_common`. Separate from Chrome's policy, whose counting differs
(distinct operators, no cap); re-exported by :mod:`pinwarden.ct.policy`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509

from pinwarden.ct._policy_common import (
    PolicyLine,
    PolicyVerdict,
    Validity,
    _day,
    _decide,
    _distinct_logs,
    _Evaluation,
    _listed,
    _names,
    _sort_out,
    _Valid,
    _validity,
)
from pinwarden.ct.logs import LogList
from pinwarden.ct.sct import SCTResult


def apple_lifetime_days(not_before: datetime, not_after: datetime) -> int:
    """Apple's certificate lifetime in days: "the period of time from notBefore through
    notAfter, inclusive" (RFC 5280 section 4.1.2.5, so one second more than the
    difference), "measured with a day being equal to 86,400 seconds. Any time greater
    than this indicates an additional day" — a started day counts. A certificate with
    ``notAfter = notBefore + 180 days`` is 181 days long for Apple (180 for Chrome)."""
    seconds = (not_after - not_before).total_seconds() + 1
    return max(0, math.ceil(seconds / 86400))


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
        current, eligible, left_out = _sort_out(valid, issued_before_retirement=False)
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
