"""The Chrome CT policy audit (googlechrome.github.io/CertificateTransparency/ct_policy.html):
its lifetime rule and its three requirements, over the counting in
:mod:`pinwarden.ct._policy_common`. Separate from Apple's policy, whose counting differs
(a cap per operator, an RFC 6962 log); re-exported by :mod:`pinwarden.ct.policy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509

from pinwarden.ct._policy_common import (
    PolicyLine,
    PolicyVerdict,
    Validity,
    _day,
    _decide,
    _distinct_logs,
    _duration,
    _Evaluation,
    _listed,
    _sort_out,
    _Valid,
    _validity,
)
from pinwarden.ct.logs import LogList
from pinwarden.ct.sct import SCTResult


def chrome_lifetime(not_before: datetime, not_after: datetime) -> timedelta:
    """Chrome's certificate lifetime: ``notAfter - notBefore`` as a duration (Chromium's
    ``ChromeCTPolicyEnforcer`` compares ``valid_expiry - valid_start`` with
    ``base::Days(180)``): exactly 180 days is "<= 180 days", one second more is not."""
    return not_after - not_before


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
        current, counted, left_out = _sort_out(valid, issued_before_retirement=True)
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
