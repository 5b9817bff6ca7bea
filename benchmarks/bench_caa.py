"""``pinwarden caa audit`` of many names: concurrent against sequential, in one run.

The DNS server (the test kit's, in a child process so that it does not share the
interpreter lock with the audit) answers each query after a fixed delay — the round trip
to a nearby recursive resolver. Without that latency there is nothing for concurrency to
overlap on a loopback interface, and the comparison would measure only the CPU.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import time
from dataclasses import dataclass
from typing import Any

from pinwarden.caa.audit import audit
from pinwarden.caa.identities import load_identities

__all__ = ["SpeedupResult", "measure_caa_audit"]

ZONE = "bench-caa.test"


@dataclass(frozen=True)
class SpeedupResult:
    """The same work done sequentially and concurrently: wall times and their ratio."""

    key: str
    label: str
    items: int
    sequential_s: float
    concurrent_s: float
    target: float
    settings: dict[str, Any]

    @property
    def speedup(self) -> float:
        return self.sequential_s / self.concurrent_s

    @property
    def per_second(self) -> float:
        return self.items / self.concurrent_s

    @property
    def met(self) -> bool:
        return self.speedup >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "speedup",
            "label": self.label,
            "items": self.items,
            "sequential_s": self.sequential_s,
            "concurrent_s": self.concurrent_s,
            "speedup": self.speedup,
            "items_per_s_concurrent": self.per_second,
            "items_per_s_sequential": self.items / self.sequential_s,
            "target_speedup_min": self.target,
            "met": self.met,
            **self.settings,
        }


def _names(count: int) -> list[str]:
    return [f"n{i}.{ZONE}" for i in range(count)]


def _serve(count: int, delay: float, conn: multiprocessing.connection.Connection) -> None:
    from pinwarden.testing.dns import DNSServer

    with DNSServer(delay=delay) as server:
        server.add(ZONE, "CAA", '0 issue "letsencrypt.org"')
        for i, name in enumerate(_names(count)):
            if i % 4 == 0:  # a quarter publish their own records; the rest climb one label
                server.add(name, "CAA", '0 issue "pki.goog"')
        conn.send(server.nameserver)
        conn.recv()  # until the parent is done


def _audit(names: list[str], nameserver: str, concurrency: int) -> float:
    table = load_identities()
    started = time.perf_counter()
    results = asyncio.run(
        audit(
            names,
            concurrency=concurrency,
            nameserver=nameserver,
            connect=False,
            identities=table,
            timeout=30,
        )
    )
    elapsed = time.perf_counter() - started
    failed = [r.name for r in results if r.lookup.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} lookups failed, e.g. {failed[0]}")
    return elapsed


def measure_caa_audit(
    count: int = 2000, *, delay: float = 0.005, concurrency: int = 100, target: float = 10.0
) -> SpeedupResult:
    """Audit ``count`` names (DNS only) with ``concurrency`` 1 and ``concurrency``."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(count, delay, child), daemon=True
    )
    process.start()
    try:
        nameserver = parent.recv()
        names = _names(count)
        _audit(names[: min(50, count)], nameserver, concurrency)  # warm up both sides
        sequential = _audit(names, nameserver, 1)
        concurrent = _audit(names, nameserver, concurrency)
    finally:
        parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
    return SpeedupResult(
        "caa_audit",
        f"caa audit, {count} names, concurrency {concurrency} vs 1",
        count,
        sequential,
        concurrent,
        target,
        {
            "dns_delay_ms": delay * 1e3,
            "concurrency": concurrency,
            "queries": "1 per name for a quarter of the names, 2 for the rest",
            "tls": False,
        },
    )
