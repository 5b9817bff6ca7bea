"""What the Chrome and Apple CT-policy audits share: the verdict types, how a policy sees
each valid SCT's log at the time of check, which SCTs count, and the decision when the log
list leaves a log's state open.

Separate from :mod:`pinwarden.ct._policy_chrome` and :mod:`pinwarden.ct._policy_apple` so
that each policy's module holds only its own requirements; :mod:`pinwarden.ct.policy`
re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from cryptography import x509

from pinwarden.ct.logs import Log, LogList, LogState
from pinwarden.ct.sct import SCT, SCTResult

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


def _sort_out(
    valid: list[_Valid], *, issued_before_retirement: bool
) -> tuple[list[_Valid], list[_Valid], list[str]]:
    """(the SCTs of logs current at the time of check, the SCTs that count, why each other
    SCT does not count). The SCTs that count, in time order, are those of current logs and
    those of retired logs dated before the retirement; with ``issued_before_retirement``
    (Chrome), a retired log's SCT counts only when the earliest SCT of a current log is also
    before the retirement."""
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
            elif v.time < at and (
                not issued_before_retirement or (issued is not None and issued < at)
            ):
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
    return current, counted, left_out
