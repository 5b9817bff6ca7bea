"""The pure pin check, :func:`pinwarden.verify`, on a 3-certificate chain."""

from __future__ import annotations

import datetime as dt
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pinwarden
import pinwarden.pins
from bench_pki import HOSTNAME, BenchPKI

__all__ = ["Timing", "measure_verify"]


@dataclass(frozen=True)
class Timing:
    """timeit figures: seconds per call of each repeat; ``best`` is their minimum."""

    number: int
    per_call: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.per_call)

    @property
    def median(self) -> float:
        ordered = sorted(self.per_call)
        return ordered[len(ordered) // 2]


def _time(statement: str, namespace: dict[str, Any], repeats: int) -> Timing:
    timer = timeit.Timer(statement, globals=namespace)
    number, _ = timer.autorange()  # calls per repeat: enough for >= 0.2 s
    runs = timer.repeat(repeat=repeats, number=number)
    return Timing(number, tuple(run / number for run in runs))


def _empty_call(
    policy: pinwarden.Policy, hostname: str, chain: Sequence[bytes], *, now: dt.datetime
) -> None:
    """A trivial baseline: a Python call with verify()'s arguments that does nothing."""


def measure_verify(pki: BenchPKI, repeats: int) -> dict[str, Timing | None]:
    """``warm``: the same chain over and over (SPKI digests memoised), the per-connection
    cost once a server's chain has been seen; ``cold``: the digest cache cleared before
    every call, what the first connection to a server pays; ``baseline``: an empty call
    with the same arguments."""
    policy = pki.policy()
    chain = pki.chain_der()
    now = dt.datetime.now(dt.timezone.utc)
    verdict = pinwarden.verify(policy, HOSTNAME, chain, now=now)
    if verdict.outcome is not pinwarden.Outcome.MATCHED or verdict.matched_position != 1:
        raise RuntimeError(f"verify() did not match the intermediate: {verdict.message()}")
    namespace: dict[str, Any] = {
        "verify": pinwarden.verify,
        "empty": _empty_call,
        "policy": policy,
        "host": HOSTNAME,
        "chain": chain,
        "now": now,
    }
    results: dict[str, Timing | None] = {
        "warm": _time("verify(policy, host, chain, now=now)", namespace, repeats),
        "baseline": _time("empty(policy, host, chain, now=now)", namespace, repeats),
    }
    clear: Callable[[], None] | None = getattr(pinwarden.pins.spki_sha256, "cache_clear", None)
    if clear is None:
        results["cold"] = None
    else:
        namespace["clear"] = clear
        results["cold"] = _time("clear(); verify(policy, host, chain, now=now)", namespace, repeats)
        # Leave the cache warm for whatever runs next.
        pinwarden.verify(policy, HOSTNAME, chain, now=now)
    return results
