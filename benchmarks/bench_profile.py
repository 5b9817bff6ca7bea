"""Where the pinned side's extra time goes (``run.py --profile``).

Three views of the pinned handshake, from coarse to fine:

* the pin check's own wall time per connection (the hook pinwarden runs after OpenSSL's
  handshake, timed by wrapping it), to set against the measured pinned−plain difference;
* each step of the check timed on one live connection (timeit);
* cProfile of pinned requests, restricted to pinwarden's functions.

The first two reach into pinwarden.tls internals; they degrade to a note when those
change.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import hashlib
import io
import pstats
import socket
import ssl
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

import pinwarden
import pinwarden.tls
from bench_pki import HOSTNAME

__all__ = ["profile_report"]

Request = Callable[[], None]
_HOOK_CLASS = "_PinnedConnection"
_HOOK = "_pin_check"


def _time_hook(request: Request, count: int) -> list[float] | None:
    cls = getattr(pinwarden.tls, _HOOK_CLASS, None)
    original: Callable[[Any], None] | None = getattr(cls, _HOOK, None)
    if cls is None or original is None:
        return None
    hook = original
    times: list[float] = []

    def timed(self: Any) -> None:
        start = time.perf_counter()
        try:
            hook(self)
        finally:
            times.append(time.perf_counter() - start)

    setattr(cls, _HOOK, timed)
    try:
        for _ in range(count):
            request()
    finally:
        setattr(cls, _HOOK, original)
    return times


def _steps(context: ssl.SSLContext, address: tuple[str, int]) -> list[tuple[str, float]]:
    """Best per-call time of each step of the check, on one live pinned connection."""
    steps: list[tuple[str, float]] = []
    with (
        socket.create_connection(address, timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=HOSTNAME) as tls,
    ):
        policy: pinwarden.Policy = getattr(context, "policy")  # noqa: B009 - not on SSLContext
        chain = pinwarden.tls.verified_chain(tls)
        now = dt.datetime.now(dt.timezone.utc)
        leaf = tls.getpeercert(binary_form=True) or b""
        candidates: list[tuple[str, Callable[[], object]]] = [
            ("context.verify_mode (enum)", lambda: context.verify_mode),
            ("policy.rule_for(host)", lambda: policy.rule_for(HOSTNAME)),
            ("verified_chain(conn) (3 certs → DER)", lambda: pinwarden.tls.verified_chain(tls)),
            ("conn.session_reused", lambda: tls.session_reused),
            ("conn.getpeercert(binary_form=True)", lambda: tls.getpeercert(binary_form=True)),
            ("sha256(leaf)", lambda: hashlib.sha256(leaf).digest()),
            ("datetime.now(timezone.utc)", lambda: dt.datetime.now(dt.timezone.utc)),
            (
                "verify(policy, host, chain, now)",
                lambda: pinwarden.verify(policy, HOSTNAME, chain, now=now),
            ),
        ]
        checker = getattr(context, "_pinwarden_checker", None)
        check = getattr(checker, "check", None)
        if check is not None:
            candidates.append(("whole check (_PinChecker.check)", lambda: check(tls, context)))
        for name, func in candidates:
            timer = timeit.Timer(func)
            number, _ = timer.autorange()
            steps.append((name, min(timer.repeat(5, number)) / number))
    return steps


def _cprofile(request: Request, count: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        request()
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(r"pinwarden|ssl\.py", top)
    return stream.getvalue()


def profile_report(
    pinned_request: Request,
    pinned_context: ssl.SSLContext,
    address: tuple[str, int],
    count: int,
    measured_delta: dict[str, float],
) -> str:
    """A text report; ``measured_delta`` maps client name to pinned−plain seconds."""
    out = [f"Profile of the pinned side ({count} httpx requests, new connection each)", ""]
    hook = _time_hook(pinned_request, count)
    if hook is None:
        out.append(f"(pinwarden.tls.{_HOOK_CLASS}.{_HOOK} not found: hook timing skipped)")
    else:
        median = statistics.median(hook)
        out.append(f"pin check per connection (pinwarden.tls.{_HOOK_CLASS}.{_HOOK}):")
        out.append(f"  median {median * 1e6:.1f} µs, best {min(hook) * 1e6:.1f} µs")
        for name, delta in measured_delta.items():
            share = f"{median / delta:.0%}" if delta > 0 else "n/a"
            out.append(
                f"  measured pinned−plain for {name}: {delta * 1e6:+.1f} µs (check = {share})"
            )
    out += ["", "steps of the check, best per call on one live connection:"]
    for name, seconds in _steps(pinned_context, address):
        out.append(f"  {seconds * 1e6:8.2f} µs  {name}")
    out += ["", "cProfile (pinwarden and ssl.py functions, by cumulative time):"]
    out.append(_cprofile(pinned_request, count, 30))
    return "\n".join(out)
