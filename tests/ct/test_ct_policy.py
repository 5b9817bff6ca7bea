"""The Chrome and Apple CT-policy audit, rule by rule, with constructed SCT verdicts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinwarden.ct.logs import Log, LogList, LogState, PreviousOperator
from pinwarden.ct.policy import (
    AUDIT_NOTE,
    PolicyVerdict,
    apple_lifetime_days,
    audit_apple,
    audit_chrome,
    chrome_lifetime,
    undecided,
)
from pinwarden.ct.sct import SCT, MalformedSCT, SCTResult, SCTStatus, SignedEntryType

UTC = dt.timezone.utc
NOT_BEFORE = dt.datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
T0 = NOT_BEFORE + dt.timedelta(hours=1)  # when the logs signed
NOW = dt.datetime(2026, 3, 1, tzinfo=UTC)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def make_log(
    name: str,
    operator: str,
    state: LogState | None = LogState.USABLE,
    since: dt.datetime | None = dt.datetime(2025, 1, 1, tzinfo=UTC),
    *,
    tiled: bool = False,
    previous: tuple[PreviousOperator, ...] = (),
) -> Log:
    key = b"key of " + name.encode()
    return Log(
        description=name,
        log_id=hashlib.sha256(key).digest(),
        key=key,
        operator=operator,
        state=state,
        state_since=since if state is not None else None,
        url=None if tiled else f"https://{name}.test/",
        submission_url=f"https://{name}.test/" if tiled else None,
        monitoring_url=f"https://{name}.test/" if tiled else None,
        tiled=tiled,
        previous_operators=previous,
    )


def sct_result(log: Log, at: dt.datetime = T0, status: SCTStatus = SCTStatus.VALID) -> SCTResult:
    if status is SCTStatus.MALFORMED:
        malformed = MalformedSCT(b"\x01", SignedEntryType.PRECERT, "SCT #1: version 1 (v2)", 1)
        return SCTResult(malformed, status, None, None, malformed.error)
    sct = SCT(
        version=0,
        log_id=log.log_id,
        timestamp_ms=int(at.timestamp() * 1000),
        timestamp=at,
        extensions=b"",
        hash_algorithm=4,
        signature_algorithm=3,
        signature=b"signature",
        entry_type=SignedEntryType.PRECERT,
    )
    known = status is not SCTStatus.UNKNOWN_LOG
    return SCTResult(
        sct,
        status,
        log if known else None,
        log.operator_at(at) if known else None,
        f"test verdict {status.value}",
    )


def validity(lifetime: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    return NOT_BEFORE, NOT_BEFORE + lifetime


def listed(*logs: Log, kind: str = "chrome", timestamp: dt.datetime | None = None) -> LogList:
    return LogList(logs, kind=kind, source="test-list.json", timestamp=timestamp or NOW - DAY)


GOOGLE_A = make_log("Argon", "Google")
GOOGLE_B = make_log("Xenon", "Google")
GOOGLE_C = make_log("Solera", "Google")
CLOUDFLARE = make_log("Nimbus", "Cloudflare")
DIGICERT = make_log("Yeti", "DigiCert")
ALL = listed(GOOGLE_A, GOOGLE_B, GOOGLE_C, CLOUDFLARE, DIGICERT)


def line(verdict: PolicyVerdict, key: str) -> tuple[bool | None, str]:
    found = [x for x in verdict.lines if x.key == key]
    assert len(found) == 1, [x.key for x in verdict.lines]
    return found[0].met, found[0].found


def chrome(lifetime: dt.timedelta, *results: SCTResult, logs: LogList = ALL) -> PolicyVerdict:
    return audit_chrome(validity(lifetime), results, logs, NOW)


def apple(lifetime: dt.timedelta, *results: SCTResult, logs: LogList = ALL) -> PolicyVerdict:
    return audit_apple(validity(lifetime), results, logs, NOW)


# --- lifetimes --------------------------------------------------------------------------


def test_chrome_lifetime_is_the_plain_difference() -> None:
    assert chrome_lifetime(*validity(180 * DAY)) == 180 * DAY
    assert chrome_lifetime(*validity(90 * DAY - SECOND)) == 90 * DAY - SECOND


@pytest.mark.parametrize(
    ("lifetime", "days"),
    [
        (90 * DAY - SECOND, 90),  # Let's Encrypt style: notAfter = notBefore + 90d - 1s
        (90 * DAY, 91),  # inclusive: one second more is a started 91st day
        (180 * DAY - SECOND, 180),
        (180 * DAY, 181),
        (398 * DAY - SECOND, 398),
        (398 * DAY, 399),
        (dt.timedelta(0), 1),
    ],
)
def test_apple_lifetime_counts_inclusive_started_days(lifetime: dt.timedelta, days: int) -> None:
    assert apple_lifetime_days(*validity(lifetime)) == days


# --- Chrome -----------------------------------------------------------------------------


def test_chrome_90_days_two_logs_two_operators_complies() -> None:
    verdict = chrome(90 * DAY, sct_result(GOOGLE_A), sct_result(CLOUDFLARE))
    assert verdict.policy == "chrome"
    assert verdict.compliant is True
    assert all(x.met for x in verdict.lines)
    assert "compliant (2 logs, 2 operators, lifetime 90 days)" in verdict.summary
    assert line(verdict, "distinct-operators") == (True, "2: Google, Cloudflare")


@pytest.mark.parametrize(
    ("lifetime", "needed"),
    [
        (90 * DAY, 2),
        (180 * DAY, 2),
        (180 * DAY + SECOND, 3),
        (181 * DAY, 3),
        (398 * DAY, 3),
    ],
)
def test_chrome_log_count_by_lifetime(lifetime: dt.timedelta, needed: int) -> None:
    two = chrome(lifetime, sct_result(GOOGLE_A), sct_result(CLOUDFLARE))
    three = chrome(lifetime, sct_result(GOOGLE_A), sct_result(CLOUDFLARE), sct_result(DIGICERT))
    assert two.compliant is (needed == 2)
    assert three.compliant is True
    met, found = line(two, "distinct-logs")
    assert met is (needed == 2)
    assert found.startswith("2: Argon (Google), Nimbus (Cloudflare)")
    requirement = next(x.requirement for x in two.lines if x.key == "distinct-logs")
    assert f"at least {needed} distinct logs" in requirement
    if needed == 3:
        assert "SCTs from 2 distinct logs, 3 needed" in two.summary


def test_chrome_operator_diversity_not_met() -> None:
    verdict = chrome(181 * DAY, sct_result(GOOGLE_A), sct_result(GOOGLE_B), sct_result(GOOGLE_C))
    assert verdict.compliant is False
    assert line(verdict, "distinct-logs")[0] is True
    assert line(verdict, "distinct-operators") == (False, "1: Google")
    assert "1 log operator, 2 needed" in verdict.summary


def test_chrome_operator_diversity_met_through_previous_operators() -> None:
    # Xenon moved to Google after the SCT: at the SCT's time it was Old Operator's.
    moved = make_log(
        "Xenon",
        "Google",
        previous=(PreviousOperator("Old Operator", T0 + DAY),),
    )
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(moved), logs=listed(GOOGLE_A, moved)
    )
    assert verdict.compliant is True
    assert line(verdict, "distinct-operators") == (True, "2: Google, Old Operator")


def test_chrome_operator_diversity_lost_through_previous_operators() -> None:
    # Nimbus is Cloudflare's now, but was Google's when it signed the SCT.
    moved = make_log("Nimbus", "Cloudflare", previous=(PreviousOperator("Google", T0 + DAY),))
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(moved), logs=listed(GOOGLE_A, moved)
    )
    assert verdict.compliant is False
    assert line(verdict, "distinct-operators") == (False, "1: Google")


def test_chrome_operator_change_before_the_sct_uses_the_current_operator() -> None:
    moved = make_log("Nimbus", "Cloudflare", previous=(PreviousOperator("Google", T0 - DAY),))
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(moved), logs=listed(GOOGLE_A, moved)
    )
    assert verdict.compliant is True


def test_chrome_retired_log_counts_with_the_sct_before_retirement() -> None:
    retired = make_log("Oak", "Let's Encrypt", LogState.RETIRED, T0 + 10 * DAY)
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(retired), logs=listed(GOOGLE_A, retired)
    )
    assert verdict.compliant is True
    assert line(verdict, "current-log") == (True, "1: Argon (Google)")
    assert line(verdict, "distinct-logs")[0] is True


def test_chrome_retired_log_does_not_count_with_the_sct_after_retirement() -> None:
    retired = make_log("Oak", "Let's Encrypt", LogState.RETIRED, T0 - DAY)
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(retired), logs=listed(GOOGLE_A, retired)
    )
    assert verdict.compliant is False
    met, found = line(verdict, "distinct-logs")
    assert met is False
    assert "not counted: Oak (Let's Encrypt): retired 2026-01-09" in found
    assert "SCT after the retirement" in found


def test_chrome_retired_log_needs_the_earliest_current_sct_before_retirement() -> None:
    # Chromium: the issuance date is the earliest SCT of a non-retired log; the retired
    # log's SCT was in time, but the certificate was issued after the retirement.
    retired = make_log("Oak", "Let's Encrypt", LogState.RETIRED, T0 + DAY)
    verdict = chrome(
        90 * DAY,
        sct_result(GOOGLE_A, T0 + 2 * DAY),
        sct_result(retired, T0),
        logs=listed(GOOGLE_A, retired),
    )
    assert verdict.compliant is False
    assert "no SCT of a non-retired log before the retirement" in line(verdict, "distinct-logs")[1]


def test_chrome_log_retired_after_the_time_of_check_is_still_current() -> None:
    later = make_log("Oak", "Let's Encrypt", LogState.RETIRED, NOW + DAY)
    verdict = chrome(
        90 * DAY, sct_result(later), sct_result(GOOGLE_A), logs=listed(later, GOOGLE_A)
    )
    assert verdict.compliant is True
    assert line(verdict, "current-log")[1].startswith("2:")


def test_chrome_needs_one_log_that_is_not_retired() -> None:
    one = make_log("Oak", "Let's Encrypt", LogState.RETIRED, T0 + DAY)
    two = make_log("Xenon", "Google", LogState.RETIRED, T0 + DAY)
    verdict = chrome(90 * DAY, sct_result(one), sct_result(two), logs=listed(one, two))
    assert verdict.compliant is False
    assert line(verdict, "current-log") == (False, "none")
    assert "no SCT from a Qualified, Usable or ReadOnly log" in verdict.summary


@pytest.mark.parametrize("state", [LogState.READONLY, LogState.QUALIFIED, LogState.USABLE])
def test_chrome_readonly_and_qualified_logs_count(state: LogState) -> None:
    a = make_log("Argon", "Google", state)
    b = make_log("Nimbus", "Cloudflare", state)
    assert chrome(90 * DAY, sct_result(a), sct_result(b), logs=listed(a, b)).compliant is True


@pytest.mark.parametrize("state", [LogState.PENDING, LogState.REJECTED])
def test_chrome_pending_and_rejected_logs_do_not_count(state: LogState) -> None:
    other = make_log("Nimbus", "Cloudflare", state)
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(other), logs=listed(GOOGLE_A, other)
    )
    assert verdict.compliant is False
    assert f"Nimbus (Cloudflare): log is {state.value}" in line(verdict, "distinct-logs")[1]


@pytest.mark.parametrize(
    "status",
    [
        SCTStatus.BAD_SIGNATURE,
        SCTStatus.UNKNOWN_LOG,
        SCTStatus.LOG_NOT_TRUSTED,
        SCTStatus.FUTURE_TIMESTAMP,
        SCTStatus.MALFORMED,
    ],
)
def test_only_valid_scts_count(status: SCTStatus) -> None:
    results = (sct_result(GOOGLE_A), sct_result(CLOUDFLARE, status=status))
    for verdict in (chrome(90 * DAY, *results), apple(90 * DAY, *results)):
        assert verdict.compliant is False
        assert any(f"not counted: {status.value}" in note for note in verdict.notes)
    assert line(chrome(90 * DAY, *results), "distinct-logs") == (False, "1: Argon (Google)")


def test_a_malformed_sct_is_noted_without_log_or_time() -> None:
    results = (sct_result(GOOGLE_A), sct_result(GOOGLE_A, status=SCTStatus.MALFORMED))
    assert chrome(90 * DAY, *results).notes == (
        "an undecodable SCT not counted: malformed (SCT #1: version 1 (v2))",
    )


def test_times_are_shown_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    now = dt.datetime(2026, 3, 1, 2, 30, tzinfo=paris)
    verdict = audit_chrome(
        validity(90 * DAY), [sct_result(GOOGLE_A), sct_result(CLOUDFLARE)], ALL, now
    )
    requirement = next(x.requirement for x in verdict.lines if x.key == "current-log")
    assert "(2026-03-01 00:30:00Z)" in requirement
    retired = make_log("Oak", "Let's Encrypt", LogState.RETIRED, (T0 - DAY).astimezone(paris))
    late = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(retired), logs=listed(GOOGLE_A, retired)
    )
    assert "retired 2026-01-09 09:00:00Z" in line(late, "distinct-logs")[1]


# --- a time of check before the log's current state began --------------------------------


@pytest.mark.parametrize("state", [LogState.USABLE, LogState.READONLY])
def test_a_state_that_began_after_the_time_of_check_is_unknown(state: LogState) -> None:
    # --at in the past: the list says the log is Usable since after that time; it may
    # have been Qualified (counts) or still Pending (does not) then.
    later = make_log("Nimbus", "Cloudflare", state, NOW + DAY)
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(later), logs=listed(GOOGLE_A, later)
    )
    assert verdict.compliant is None
    met, found = line(verdict, "log-states")
    assert met is None
    assert found == (
        f"Nimbus (Cloudflare): {state.value} only since 2026-03-02 00:00:00Z, after the time "
        "of check; its state then is not in the list"
    )
    assert verdict.summary == (
        "Chrome CT policy: could not decide: compliant only if these logs were Qualified, "
        "Usable or ReadOnly at the time of check: Nimbus (Cloudflare)"
    )
    assert line(verdict, "current-log") == (True, "1: Argon (Google)")
    assert (
        apple(
            90 * DAY - SECOND, sct_result(GOOGLE_A), sct_result(later), logs=listed(GOOGLE_A, later)
        ).compliant
        is None
    )
    # The same state that began before the time of check counts.
    earlier = make_log("Nimbus", "Cloudflare", state, NOW - DAY)
    assert chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(earlier), logs=listed(GOOGLE_A, earlier)
    ).compliant


def test_a_log_qualified_after_the_time_of_check_was_pending() -> None:
    later = make_log("Nimbus", "Cloudflare", LogState.QUALIFIED, NOW + DAY)
    for audit in (audit_chrome, audit_apple):
        verdict = audit(
            validity(90 * DAY - SECOND),
            [sct_result(GOOGLE_A), sct_result(later)],
            listed(GOOGLE_A, later),
            NOW,
        )
        assert verdict.compliant is False
        met, found = line(verdict, "distinct-logs")
        assert met is False
        assert (
            "Nimbus (Cloudflare): log is qualified only since 2026-03-02 00:00:00Z, after the "
            "time of check (pending before)"
        ) in found


def test_a_state_that_began_after_the_time_of_check_does_not_matter_when_enough() -> None:
    later = make_log("Nimbus", "Cloudflare", LogState.USABLE, NOW + DAY)
    logs = listed(GOOGLE_A, DIGICERT, later)
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(DIGICERT), sct_result(later), logs=logs
    )
    assert verdict.compliant is True
    met, found = line(verdict, "log-states")
    assert met is True
    assert found.endswith("; the verdict is the same whatever their state")


def test_a_log_that_signed_twice_counts_once() -> None:
    verdict = chrome(90 * DAY, sct_result(GOOGLE_A), sct_result(GOOGLE_A, T0 + SECOND))
    assert verdict.compliant is False
    assert line(verdict, "distinct-logs") == (False, "1: Argon (Google)")


def test_no_scts_is_an_explicit_not_compliant_verdict() -> None:
    for verdict in (chrome(90 * DAY), apple(90 * DAY)):
        assert verdict.compliant is False
        assert "no SCTs" in verdict.summary
        assert "NOT compliant" in verdict.summary


def test_certificate_object_gives_the_validity() -> None:
    from pinwarden.testing import CA

    leaf = CA().issue("example.test", not_before=NOT_BEFORE, not_after=NOT_BEFORE + 200 * DAY).cert
    verdict = audit_chrome(leaf, [sct_result(GOOGLE_A), sct_result(CLOUDFLARE)], ALL, NOW)
    assert verdict.compliant is False  # 200 days needs 3 logs
    assert "3 needed for a lifetime of 200 days" in verdict.summary


# --- logs without a state ---------------------------------------------------------------


def test_unknown_state_that_decides_the_verdict_is_undecided() -> None:
    stateless = make_log("Nimbus", "Cloudflare", None)
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(stateless), logs=listed(GOOGLE_A, stateless)
    )
    assert verdict.compliant is None
    assert line(verdict, "log-states") == (None, "no state in the list for Nimbus (Cloudflare)")
    assert verdict.summary.startswith("Chrome CT policy: could not decide")


def test_unknown_state_that_does_not_matter_is_decided() -> None:
    stateless = make_log("Nimbus", "Cloudflare", None)
    logs = listed(GOOGLE_A, DIGICERT, stateless)
    ok = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(DIGICERT), sct_result(stateless), logs=logs
    )
    assert ok.compliant is True
    assert line(ok, "log-states")[0] is True
    # Three Google logs fail diversity whatever the state of a fourth Google log.
    google_d = make_log("Icarus", "Google", None)
    bad = chrome(
        181 * DAY,
        sct_result(GOOGLE_A),
        sct_result(GOOGLE_B),
        sct_result(google_d),
        logs=listed(GOOGLE_A, GOOGLE_B, google_d),
    )
    assert bad.compliant is False


# --- Apple ------------------------------------------------------------------------------


def test_apple_90_days_two_operators_complies() -> None:
    verdict = apple(90 * DAY - SECOND, sct_result(GOOGLE_A), sct_result(CLOUDFLARE))
    assert verdict.policy == "apple"
    assert verdict.compliant is True
    assert all(x.met for x in verdict.lines)
    assert "compliant (2 SCTs counted, lifetime 90 days)" in verdict.summary


def test_apple_counts_one_sct_per_operator_up_to_180_days() -> None:
    verdict = apple(90 * DAY, sct_result(GOOGLE_A), sct_result(GOOGLE_B))
    assert verdict.compliant is False
    met, found = line(verdict, "distinct-logs")
    assert met is False
    assert found.startswith("1 counted: Argon (Google)")
    assert "Xenon (Google): over the 1 per operator" in found


def test_apple_counts_two_scts_per_operator_beyond_180_days() -> None:
    two_and_one = apple(
        181 * DAY, sct_result(GOOGLE_A), sct_result(GOOGLE_B), sct_result(CLOUDFLARE)
    )
    assert two_and_one.compliant is True
    three_google = apple(
        181 * DAY, sct_result(GOOGLE_A), sct_result(GOOGLE_B), sct_result(GOOGLE_C)
    )
    assert three_google.compliant is False
    met, found = line(three_google, "distinct-logs")
    assert met is False
    # Same time: alphabetical order decides which two count.
    assert found.startswith("2 counted: Argon (Google), Solera (Google)")
    assert "Xenon (Google): over the 2 per operator" in found


def test_apple_and_chrome_disagree_at_exactly_180_days() -> None:
    # notAfter = notBefore + 180 days: 180 days for Chrome (2 logs), 181 for Apple (3).
    results = (sct_result(GOOGLE_A), sct_result(CLOUDFLARE))
    assert chrome(180 * DAY, *results).compliant is True
    verdict = apple(180 * DAY, *results)
    assert verdict.compliant is False
    assert line(verdict, "lifetime") == (True, "181 days")
    assert "3 needed for 181 days" in verdict.summary
    assert apple(180 * DAY - SECOND, *results).compliant is True


def test_apple_rejects_more_than_398_days() -> None:
    results = (sct_result(GOOGLE_A), sct_result(CLOUDFLARE), sct_result(DIGICERT))
    assert apple(398 * DAY - SECOND, *results).compliant is True
    verdict = apple(398 * DAY, *results)
    assert verdict.compliant is False
    assert line(verdict, "lifetime") == (False, "399 days")


def test_apple_needs_an_rfc6962_log() -> None:
    tiled_a = make_log("Sycamore", "Let's Encrypt", tiled=True)
    tiled_b = make_log("Tuscolo", "Geomys", tiled=True)
    logs = listed(tiled_a, tiled_b, CLOUDFLARE)
    verdict = apple(90 * DAY - SECOND, sct_result(tiled_a), sct_result(tiled_b), logs=logs)
    assert verdict.compliant is False
    assert line(verdict, "rfc6962-log") == (False, "none")
    assert "no SCT from an RFC 6962 log" in verdict.summary
    # Chrome has no such rule.
    assert chrome(90 * DAY, sct_result(tiled_a), sct_result(tiled_b), logs=logs).compliant
    mixed = apple(90 * DAY - SECOND, sct_result(tiled_a), sct_result(CLOUDFLARE), logs=logs)
    assert mixed.compliant is True


def test_apple_once_approved_logs_count_with_the_sct_before_retirement() -> None:
    retired = make_log("Oak", "Let's Encrypt", LogState.RETIRED, T0 + DAY)
    logs = listed(GOOGLE_A, retired)
    assert apple(90 * DAY - SECOND, sct_result(GOOGLE_A), sct_result(retired), logs=logs).compliant
    late = make_log("Oak", "Let's Encrypt", LogState.RETIRED, T0 - DAY)
    verdict = apple(
        90 * DAY - SECOND, sct_result(GOOGLE_A), sct_result(late), logs=listed(GOOGLE_A, late)
    )
    assert verdict.compliant is False
    assert "SCT after the retirement" in line(verdict, "distinct-logs")[1]


def test_apple_needs_a_currently_approved_log() -> None:
    one = make_log("Oak", "Let's Encrypt", LogState.RETIRED, T0 + DAY)
    two = make_log("Xenon", "Google", LogState.RETIRED, T0 + DAY)
    verdict = apple(90 * DAY - SECOND, sct_result(one), sct_result(two), logs=listed(one, two))
    assert verdict.compliant is False
    assert line(verdict, "current-log") == (False, "none")


# --- notes, JSON, undecided -------------------------------------------------------------


def test_notes_name_the_list_kind() -> None:
    verdict = apple(90 * DAY, sct_result(GOOGLE_A), sct_result(CLOUDFLARE))
    assert verdict.notes == (
        "log states come from the chrome log list (test-list.json); Apple's own list may differ",
    )
    assert chrome(90 * DAY, sct_result(GOOGLE_A), sct_result(CLOUDFLARE)).notes == ()
    from_apple = listed(GOOGLE_A, CLOUDFLARE, kind="apple")
    assert (
        apple(90 * DAY, sct_result(GOOGLE_A), sct_result(CLOUDFLARE), logs=from_apple).notes == ()
    )


def test_verdict_json_is_stable() -> None:
    verdict = chrome(
        90 * DAY, sct_result(GOOGLE_A), sct_result(CLOUDFLARE, status=SCTStatus.BAD_SIGNATURE)
    )
    data = json.loads(json.dumps(verdict.to_json()))
    assert set(data) == {"policy", "compliant", "summary", "lines", "notes"}
    assert data["compliant"] is False
    assert [x["key"] for x in data["lines"]] == [
        "current-log",
        "distinct-logs",
        "distinct-operators",
    ]
    assert set(data["lines"][0]) == {"key", "requirement", "found", "met"}
    assert "bad-signature" in data["notes"][0]


def test_undecided_verdict() -> None:
    verdict = undecided("apple", "no issuer certificate")
    assert verdict.compliant is None
    assert verdict.summary == "Apple CT policy: could not decide: the SCTs could not be verified"
    assert verdict.lines[0].met is None
    assert verdict.lines[0].found == "no issuer certificate"


def test_audit_note_says_it_is_not_enforcement() -> None:
    assert "not the enforcement" in AUDIT_NOTE
    assert "TLS handshake" in AUDIT_NOTE
    assert "OCSP" in AUDIT_NOTE


# --- properties -------------------------------------------------------------------------

_OPERATORS = ["Google", "Cloudflare", "DigiCert", "Sectigo"]
_STATES = [*list(LogState), None]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dt.timedelta, list[SCTResult], LogList]:
    count = draw(st.integers(0, 6))
    logs = [
        make_log(
            f"log{i}",
            draw(st.sampled_from(_OPERATORS)),
            draw(st.sampled_from(_STATES)),
            T0 + dt.timedelta(hours=draw(st.integers(-48, 48))),
            tiled=draw(st.booleans()),
        )
        for i in range(count)
    ]
    results = [
        sct_result(
            log,
            T0 + dt.timedelta(hours=draw(st.integers(-24, 24))),
            draw(st.sampled_from(list(SCTStatus))),
        )
        for log in logs
        for _ in range(draw(st.integers(1, 2)))
    ]
    lifetime = dt.timedelta(days=draw(st.integers(1, 500)), seconds=draw(st.integers(0, 86399)))
    return lifetime, results, listed(*logs)


@given(scenarios())
def test_verdict_agrees_with_its_lines(
    scenario: tuple[dt.timedelta, list[SCTResult], LogList],
) -> None:
    lifetime, results, logs = scenario
    for verdict in (
        audit_chrome(validity(lifetime), results, logs, NOW),
        audit_apple(validity(lifetime), results, logs, NOW),
    ):
        mets = [x.met for x in verdict.lines]
        if verdict.compliant is True:
            assert all(m is True for m in mets)
        elif verdict.compliant is False:
            assert False in mets
        else:
            assert line(verdict, "log-states")[0] is None
        json.dumps(verdict.to_json())


@given(scenarios())
def test_bad_scts_never_help(scenario: tuple[dt.timedelta, list[SCTResult], LogList]) -> None:
    lifetime, results, logs = scenario
    good = [r for r in results if r.valid]
    for audit in (audit_chrome, audit_apple):
        with_bad = audit(validity(lifetime), results, logs, NOW).compliant
        without = audit(validity(lifetime), good, logs, NOW).compliant
        if good:
            assert with_bad == without
        else:
            assert with_bad is False
