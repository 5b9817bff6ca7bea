"""The faults the local CT log can be told to show (:meth:`LocalCTLog.inject`): their names,
the checks on how they are switched on, and the per-request bookkeeping of the transport
faults (slow, drop, rate-limit). Separate from the log so that the fault rules read in one
place; the log keeps the switched-on faults and applies the content faults itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

__all__ = ["FAULTS", "TRANSPORT_FAULTS", "Active", "CTFault", "Hit", "check_fault", "transport_hit"]

CTFault = Literal[
    "bad-sth-signature",
    "wrong-root",
    "fork",
    "truncated-entries",
    "malformed-entries",
    "rate-limit",
    "slow",
    "drop",
]
FAULTS: tuple[str, ...] = get_args(CTFault)
TRANSPORT_FAULTS = ("slow", "drop", "rate-limit")  # checked in this order per request


@dataclass
class Active:
    """A switched-on fault: how many more requests it applies to (None: until healed)."""

    remaining: int | None = None
    retry_after: int = 1
    delay: float = 1.0
    only: str | None = None


class Hit(NamedTuple):
    """The transport faults one request meets: a delay, then "drop", "rate-limit" or None."""

    delay: float
    action: str | None
    retry_after: int


def check_fault(
    fault: str, count: int | None, retry_after: int, delay: float, only: str | None
) -> None:
    """Raise ValueError unless ``fault`` can be switched on with these settings."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
    if fault not in TRANSPORT_FAULTS and (count is not None or only is not None):
        raise ValueError(f"{fault} applies until healed, to every matching answer")
    if count is not None and count < 1:
        raise ValueError("count must be at least 1")
    if retry_after < 0 or delay < 0:
        raise ValueError("retry_after and delay must not be negative")


def transport_hit(faults: dict[str, Active], relative: str) -> Hit | None:
    """What the slow, drop and rate-limit faults of ``faults`` do to a request for
    ``relative`` (the path under the log's URL): each that applies is counted down, and
    removed from ``faults`` when spent. The caller holds the log's lock."""
    delay, action, retry_after = 0.0, None, 0
    for name in TRANSPORT_FAULTS:
        active = faults.get(name)
        if active is None or (active.only and not relative.startswith(active.only)):
            continue
        if active.remaining is not None:
            active.remaining -= 1
            if active.remaining == 0:
                del faults[name]
        if name == "slow":
            delay = active.delay
            continue
        action, retry_after = name, active.retry_after
        break
    if not delay and action is None:
        return None
    return Hit(delay, action, retry_after)
