"""pinwarden benchmarks (``make bench``): what pinning costs, as ratios to the same work
without it. See benchmarks/README.md for what is measured and how to read the table.

Usage: ``.venv/bin/python benchmarks/run.py [--quick] [--profile] [--rounds N] ...``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import ssl
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pinwarden
from bench_caa import measure_caa_audit
from bench_ct_monitor import measure_ct_monitor
from bench_ct_parse import measure_ct_parse
from bench_https import BenchmarkError, check_setup, httpx_client, measure, requests_client
from bench_pki import HOSTNAME, BenchPKI, ServerProcess
from bench_profile import profile_report
from bench_report import RatioResult, Result, TimeResult, render_table, write_results
from bench_verify import measure_verify
from pinwarden.testing import loopback_names

RESULTS = Path(__file__).resolve().parent / "results"
HTTPS_TARGET = 1.03
VERIFY_TARGET = 10e-6
_PACKAGES = ("pinwarden", "httpx", "httpcore", "h11", "requests", "urllib3", "cryptography")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=40, help="rounds (default 40)")
    parser.add_argument("--batch", type=int, default=60, help="requests per side and round")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up requests per side")
    parser.add_argument("--repeats", type=int, default=7, help="timeit repeats for verify()")
    parser.add_argument("--caa-names", type=int, default=2000, help="names for the CAA audit")
    parser.add_argument(
        "--ct-monitor-entries", type=int, default=200_000, help="entries of the CT monitor's log"
    )
    parser.add_argument(
        "--ct-entries", type=int, default=100_000, help="CT log entries per side (real tiles)"
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds: 4 rounds × 20")
    parser.add_argument("--profile", action="store_true", help="also profile the pinned side")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.batch, args.warmup, args.repeats = 4, 20, 10, 3
        args.caa_names = 300
        args.ct_monitor_entries = 20_000
        args.ct_entries = 10_000
    if (
        min(
            args.rounds,
            args.batch,
            args.repeats,
            args.caa_names,
            args.ct_entries,
            args.ct_monitor_entries,
        )
        < 1
        or args.warmup < 0
    ):
        parser.error(
            "--rounds, --batch, --repeats, --caa-names and --ct-entries must be positive, "
            "--warmup not negative"
        )
    return args


def _progress(message: str) -> None:
    print(f"  … {message}", file=sys.stderr, flush=True)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "python_build": sys.version,
        "implementation": platform.python_implementation(),
        "openssl": ssl.OPENSSL_VERSION,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": _versions(),
    }


def _https(
    args: argparse.Namespace, pki: BenchPKI
) -> tuple[list[RatioResult], dict[str, Any], str | None]:
    pinned_context = pinwarden.create_context(pki.policy(), cadata=pki.cadata)
    plain_context = ssl.create_default_context(cadata=pki.cadata)
    with loopback_names([HOSTNAME]), ServerProcess(pki) as server:
        setup = check_setup(pki, server, pinned_context, plain_context)
        clients = [
            httpx_client(server.url(), pinned_context, plain_context),
            requests_client(server.url(), pki, plain_context),
        ]
        try:
            _progress(
                f"HTTPS: {args.rounds} rounds × {args.batch} requests per side "
                f"({', '.join(c.name for c in clients)})"
            )
            samples = measure(
                clients,
                server,
                rounds=args.rounds,
                batch=args.batch,
                warmup=args.warmup,
                progress=_progress,
            )
            results = [
                RatioResult.from_samples(f"https_{c.name}", c.label, HTTPS_TARGET, samples[c.name])
                for c in clients
            ]
            profile = None
            if args.profile:
                _progress("profiling the pinned side")
                deltas = {r.label: r.delta for r in results}
                profile = profile_report(
                    clients[0].pinned, pinned_context, server.address, 300, deltas
                )
        finally:
            for client in clients:
                client.close()
    return results, setup, profile


def _verify(args: argparse.Namespace, pki: BenchPKI) -> list[TimeResult]:
    _progress(f"verify(): timeit, best of {args.repeats}")
    timings = measure_verify(pki, args.repeats)
    warm = timings["warm"]
    assert warm is not None
    results = [
        TimeResult(
            "verify_warm",
            "verify(), 3-cert chain, warm",
            warm,
            VERIFY_TARGET,
            timings["baseline"],
        )
    ]
    cold = timings["cold"]
    if cold is not None:
        results.append(TimeResult("verify_cold", "verify(), cold digest cache (info)", cold))
    return results


def _notes(results: Sequence[Result], setup: dict[str, Any]) -> list[str]:
    pinned, plain = setup["pinned"], setup["plain"]
    refused = ", ".join(name for name, ok in setup["wrong_pin_refused"].items() if ok)
    notes = [
        f"Both sides negotiated {plain['version']} {plain['cipher']}; the pinned context "
        f"matched the intermediate pin (chain position {pinned.get('pin_position')}); a "
        f"policy with wrong pins was refused through {refused}.",
        "Every request used a new TLS connection (the server's handshake counter was "
        "checked after every round).",
    ]
    for result in results:
        if isinstance(result, TimeResult) and result.baseline is not None:
            notes.append(
                f"{result.label}: best {result.timing.best * 1e6:.2f} µs, median of repeats "
                f"{result.timing.median * 1e6:.2f} µs; an empty Python call with the same "
                f"arguments takes {result.baseline.best * 1e6:.3f} µs."
            )
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    date = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    print(
        f"pinwarden {pinwarden.__version__} benchmarks · Python {platform.python_version()} · "
        f"{ssl.OPENSSL_VERSION}",
        flush=True,
    )
    pki = BenchPKI.create()
    try:
        https, setup, profile = _https(args, pki)
    except BenchmarkError as exc:
        print(f"benchmark set-up error: {exc}", file=sys.stderr)
        return 2
    _progress(f"CAA audit: {args.caa_names} names, sequential then concurrent")
    caa = measure_caa_audit(args.caa_names)
    results: list[Result] = [*https, *_verify(args, pki), caa]
    ct_parse = measure_ct_parse(args.ct_entries, progress=_progress)
    if ct_parse is not None:
        results.append(ct_parse)
    ct_monitor = measure_ct_monitor(args.ct_monitor_entries, progress=_progress)
    results.append(ct_monitor)
    table = render_table(results)
    notes = _notes(results, setup)
    if ct_parse is None:
        notes.append("CT parse: skipped, the test tiles (../shared/testdata/ct/tiles) are absent.")
    else:
        ct = ct_parse.as_json()
        notes.append(
            f"CT parse: pinwarden {ct['pinwarden_us_per_entry']:.1f} µs/entry "
            f"({ct['pinwarden_entries_per_s']:.0f} entries/s) against a bare cryptography "
            f"parse-and-SAN loop at {ct['bare_us_per_entry']:.1f} µs/entry: pinwarden keeps "
            f"{ct_parse.speedup:.2f} of the bare throughput (target ≥ {ct_parse.target}) while "
            "also reading the tile, hashing each leaf and reading the common names."
        )
    notes.append(ct_monitor.note())
    duration = time.perf_counter() - started
    print()
    print(table)
    print()
    for note in notes:
        print(f"- {note}")
    if profile is not None:
        print()
        print(profile)
    if not args.no_write:
        meta = {
            "schema": 1,
            "date": date.isoformat(),
            "command": " ".join(["benchmarks/run.py", *(argv or sys.argv[1:])]),
            "environment": _environment(),
            "settings": {
                "rounds": args.rounds,
                "batch": args.batch,
                "warmup": args.warmup,
                "verify_repeats": args.repeats,
                "server": "pinwarden.testing.TLSServer on 127.0.0.1, in a child process",
                "chain": "root → intermediate → leaf, ECDSA P-256",
                "policy": f"{HOSTNAME}: intermediate pin + backup pin (enforce)",
                "plain_context": "ssl.create_default_context(cadata=<bench root>)",
                "pinned_context": "pinwarden.create_context(policy, cadata=<bench root>)",
                "caa_audit": "pinwarden.caa.audit.audit(names, connect=False) against the "
                "test kit's DNS server in a child process, each answer delayed "
                f"{caa.settings['dns_delay_ms']:.0f} ms",
                "ct_monitor": f"Monitor.run(once) from position 0 of a {args.ct_monitor_entries}-"
                "entry LocalCTLog (RFC 6962, served by a child process), 10,000 watched names, "
                "SQLite state; beside the bare cryptography parse of the same certificates",
                "ct_parse": "pinwarden.ct.tiles.parse_data_tile over the real navigli2025h2 "
                f"data tiles replayed to {args.ct_entries} entries, against "
                "x509.load_der_x509_certificate + SAN dNSNames of the same certificates",
            },
            "tls": setup,
            "duration_s": duration,
        }
        paths = write_results(args.output, results, meta, table, notes)
        print(f"\nwrote {', '.join(str(p) for p in paths)} ({duration:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
