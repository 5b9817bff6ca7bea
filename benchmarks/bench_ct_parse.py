"""Reading CT log entries: :func:`pinwarden.ct.tiles.parse_data_tile` (TileLeaf parse, leaf
hash, DNS names) against a bare ``cryptography`` parse-and-SAN loop over the same
certificates, in one run.

The tiles are the real static-ct-api data tiles in ``../shared/testdata/ct/tiles`` (1,024
precertificate entries of Let's Encrypt's navigli2025h2 log), replayed until each side has
handled at least ``entries`` entries. The bare loop is what any monitor must do at least:
``x509.load_der_x509_certificate`` of each entry's (pre-)certificate, then its
subjectAltName dNSNames; it reads no tile structure, computes no leaf hash and reads no
common name. pinwarden's side does all of that and builds a :class:`LogEntry` per entry.

Rounds alternate which side goes first, so that load from anything else on the machine
hits both alike; the ratio is bare time / pinwarden time over all rounds (1.0 = as fast
as the bare loop), and the per-round ratios are kept in the results.

Standalone: ``.venv/bin/python benchmarks/bench_ct_parse.py [entries]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from bench_caa import SpeedupResult
from pinwarden.ct.tiles import TILE_WIDTH, parse_data_tile, parse_hash_tile

__all__ = ["ParseRatioResult", "find_tiles", "measure_ct_parse"]

TARGET = 0.6
_TILES = ("000", "001", "002", "003")


@dataclass(frozen=True)
class ParseRatioResult(SpeedupResult):
    """Both sides' total time over the same entries: ``sequential_s`` is the bare
    cryptography loop, ``concurrent_s`` pinwarden's parse; ``speedup`` their ratio, the
    fraction of the bare loop's throughput that pinwarden keeps."""

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "throughput-ratio",
            "label": self.label,
            "entries": self.items,
            "pinwarden_s": self.concurrent_s,
            "bare_cryptography_s": self.sequential_s,
            "pinwarden_entries_per_s": self.items / self.concurrent_s,
            "bare_entries_per_s": self.items / self.sequential_s,
            "pinwarden_us_per_entry": self.concurrent_s / self.items * 1e6,
            "bare_us_per_entry": self.sequential_s / self.items * 1e6,
            "ratio": self.speedup,
            "target_ratio_min": self.target,
            "met": self.met,
            **self.settings,
        }


def find_tiles() -> Path | None:
    """The real tiles' ``tile`` folder (``PINWARDEN_TESTDATA`` overrides), or None."""
    here = Path(__file__).resolve().parent.parent
    candidates = [
        Path(os.environ["PINWARDEN_TESTDATA"]) if os.environ.get("PINWARDEN_TESTDATA") else None,
        here.parent / "shared" / "testdata",
        Path("/work/shared/testdata"),
    ]
    for base in candidates:
        if base is not None and (base / "ct" / "tiles" / "SOURCES.md").is_file():
            return base / "ct" / "tiles" / "tile"
    return None


def _bare(certificates: list[bytes]) -> int:
    """The baseline: parse each certificate, read its subjectAltName dNSNames."""
    count = 0
    for der in certificates:
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            continue
        count += len(san.value.get_values_for_type(x509.DNSName))
    return count


def _ours(data: bytes, start: int) -> int:
    return sum(len(entry.dns_names) for entry in parse_data_tile(data, start))


def measure_ct_parse(
    entries: int = 100_000,
    *,
    tiles: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ParseRatioResult | None:
    """Replay the real data tiles until each side has read at least ``entries`` entries.
    Returns None when the tiles are not there (a bare clone)."""
    folder = tiles or find_tiles()
    if folder is None:
        return None
    data = [(folder / "data" / name).read_bytes() for name in _TILES]
    certificates: list[list[bytes]] = []
    for n, tile in enumerate(data):
        parsed = parse_data_tile(tile, n * TILE_WIDTH)
        hashes = parse_hash_tile((folder / "0" / _TILES[n]).read_bytes())
        # The comparison only means something if pinwarden's side did its whole job.
        if [e.leaf_hash for e in parsed] != hashes:
            raise RuntimeError(f"data tile {n}: leaf hashes differ from the level-0 tile")
        if any(e.error is not None or not e.dns_names for e in parsed):
            raise RuntimeError(f"data tile {n}: an entry without names or with an error")
        certificates.append([e.certificate_der or b"" for e in parsed])
    per_round = sum(len(c) for c in certificates)
    rounds = max(1, -(-entries // per_round))
    if progress:
        progress(f"CT parse: {rounds} rounds × {per_round} entries per side")
    for n, tile in enumerate(data):  # warm-up
        _ours(tile, n * TILE_WIDTH)
        _bare(certificates[n])
    ours_total = bare_total = 0.0
    ratios = []
    for round_number in range(rounds):
        ours_round = bare_round = 0.0
        for n, tile in enumerate(data):
            sides = [("ours", n), ("bare", n)]
            if round_number % 2:
                sides.reverse()
            for side, index in sides:
                started = time.perf_counter()
                if side == "ours":
                    _ours(tile, index * TILE_WIDTH)
                    ours_round += time.perf_counter() - started
                else:
                    _bare(certificates[index])
                    bare_round += time.perf_counter() - started
        ours_total += ours_round
        bare_total += bare_round
        ratios.append(bare_round / ours_round)
    total = rounds * per_round
    return ParseRatioResult(
        "ct_parse",
        f"CT data tiles: parse + leaf hash + names, {total} entries vs bare cryptography",
        total,
        bare_total,
        ours_total,
        TARGET,
        {
            "rounds": rounds,
            "entries_per_round": per_round,
            "round_ratios": ratios,
            "round_ratio_median": statistics.median(ratios),
            "tiles": "navigli2025h2 data tiles 000-003 (1024 precertificate entries), raw",
            "bare_loop": "x509.load_der_x509_certificate(pre_certificate) + SAN dNSNames",
            "pinwarden": "pinwarden.ct.tiles.parse_data_tile(tile, start): TileLeaf, leaf "
            "hash, SAN + CN names (IDNA forms), LogEntry",
        },
    )


def main(argv: list[str]) -> int:
    entries = int(argv[0]) if argv else 100_000
    result = measure_ct_parse(entries, progress=lambda m: print(f"  … {m}", file=sys.stderr))
    if result is None:
        print("the CT test tiles are not there (../shared/testdata/ct/tiles)", file=sys.stderr)
        return 2
    summary = result.as_json()
    print(
        f"{result.items} entries: pinwarden {summary['pinwarden_us_per_entry']:.1f} µs/entry "
        f"({summary['pinwarden_entries_per_s']:.0f}/s), bare cryptography "
        f"{summary['bare_us_per_entry']:.1f} µs/entry ({summary['bare_entries_per_s']:.0f}/s); "
        f"ratio {result.speedup:.2f} (median of rounds {summary['round_ratio_median']:.2f}), "
        f"target ≥ {result.target}: {'met' if result.met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
