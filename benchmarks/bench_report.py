"""Statistics of the measurements, the results table, and the results files."""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_caa import SpeedupResult
from bench_ct_parse import ParseRatioResult
from bench_https import PairSamples
from bench_verify import Timing

__all__ = ["RatioResult", "TimeResult", "render_table", "write_results"]

_BOOTSTRAP = 2000
_SEED = 7469  # RFC 7469; any fixed seed keeps the interval reproducible


@dataclass(frozen=True)
class RatioResult:
    """A pinned/plain comparison. Each round gives the median request time of each side
    and their ratio; ``ratio`` is the median of the per-round ratios (paired, so drift
    between rounds cancels), with a bootstrap 95% interval over rounds."""

    key: str
    label: str
    target: float
    batch: int
    round_pinned: tuple[float, ...]
    round_plain: tuple[float, ...]

    @classmethod
    def from_samples(cls, key: str, label: str, target: float, samples: PairSamples) -> RatioResult:
        return cls(
            key,
            label,
            target,
            len(samples.pinned[0]) if samples.pinned else 0,
            tuple(statistics.median(times) for times in samples.pinned),
            tuple(statistics.median(times) for times in samples.plain),
        )

    @property
    def round_ratios(self) -> tuple[float, ...]:
        return tuple(p / q for p, q in zip(self.round_pinned, self.round_plain, strict=True))

    @property
    def pinned(self) -> float:
        return statistics.median(self.round_pinned)

    @property
    def plain(self) -> float:
        return statistics.median(self.round_plain)

    @property
    def delta(self) -> float:
        """Median over rounds of the extra time per request of the pinned side."""
        return statistics.median(
            p - q for p, q in zip(self.round_pinned, self.round_plain, strict=True)
        )

    @property
    def ratio(self) -> float:
        return statistics.median(self.round_ratios)

    @property
    def ci95(self) -> tuple[float, float]:
        return _bootstrap_median_ci(self.round_ratios)

    @property
    def met(self) -> bool:
        return self.ratio <= self.target

    @property
    def ci_spans_target(self) -> bool:
        """The interval holds the target: this run cannot tell whether it is met."""
        low, high = self.ci95
        return low <= self.target <= high

    def as_json(self) -> dict[str, Any]:
        low, high = self.ci95
        return {
            "kind": "ratio",
            "label": self.label,
            "pinned_ms": self.pinned * 1e3,
            "plain_ms": self.plain * 1e3,
            "delta_us": self.delta * 1e6,
            "ratio": self.ratio,
            "ratio_ci95": [low, high],
            "target_ratio_max": self.target,
            "met": self.met,
            "ci_spans_target": self.ci_spans_target,
            "rounds": len(self.round_ratios),
            "requests_per_batch": self.batch,
            "round_pinned_ms": [t * 1e3 for t in self.round_pinned],
            "round_plain_ms": [t * 1e3 for t in self.round_plain],
            "round_ratios": list(self.round_ratios),
        }


def _bootstrap_median_ci(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(_SEED)
    size = len(values)
    medians = sorted(statistics.median(rng.choices(values, k=size)) for _ in range(_BOOTSTRAP))
    return medians[int(0.025 * _BOOTSTRAP)], medians[int(0.975 * _BOOTSTRAP) - 1]


@dataclass(frozen=True)
class TimeResult:
    """A per-call time (timeit, best of ``repeats``), with an optional µs target and an
    optional baseline to compare with."""

    key: str
    label: str
    timing: Timing
    target: float | None = None
    baseline: Timing | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.timing.best <= self.target

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "time",
            "label": self.label,
            "best_us": self.timing.best * 1e6,
            "median_us": self.timing.median * 1e6,
            "repeats_us": [t * 1e6 for t in self.timing.per_call],
            "calls_per_repeat": self.timing.number,
            "target_us_max": None if self.target is None else self.target * 1e6,
            "met": self.met,
        }
        if self.baseline is not None:
            out["baseline_best_us"] = self.baseline.best * 1e6
            out["ratio_to_baseline"] = self.timing.best / self.baseline.best
        return out


Result = RatioResult | TimeResult | SpeedupResult

_HEADER = ("benchmark", "measured", "baseline", "Δ or rate", "ratio (95% CI)", "target", "met?")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


def _yes_no(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**NO**")


def _row(result: Result) -> tuple[str, ...]:
    if isinstance(result, ParseRatioResult):
        return (
            result.label,
            f"{result.concurrent_s:.2f} s",
            f"{result.sequential_s:.2f} s (bare cryptography)",
            f"{result.items / result.concurrent_s:.0f} entries/s",
            f"{result.speedup:.2f}× bare throughput",
            f"≥ {result.target:.2g}×",
            _yes_no(result.met),
        )
    if isinstance(result, SpeedupResult):
        return (
            result.label,
            f"{result.concurrent_s:.2f} s",
            f"{result.sequential_s:.2f} s (sequential)",
            f"{result.per_second:.0f} names/s",
            f"{result.speedup:.1f}× faster",
            f"≥ {result.target:.0f}×",
            _yes_no(result.met),
        )
    if isinstance(result, RatioResult):
        low, high = result.ci95
        return (
            result.label,
            _ms(result.pinned),
            _ms(result.plain),
            f"{result.delta * 1e6:+.0f} µs",
            f"{result.ratio:.3f} ({low:.3f}–{high:.3f})",
            f"≤ {result.target:.2f}",
            _yes_no(result.met) + (" (CI spans target)" if result.ci_spans_target else ""),
        )
    baseline = result.baseline
    return (
        result.label,
        _us(result.timing.best),
        "—" if baseline is None else f"{_us(baseline.best)} (empty call)",
        "—",
        "—" if baseline is None else f"{result.timing.best / baseline.best:.0f}× empty call",
        "—" if result.target is None else f"≤ {result.target * 1e6:.0f} µs",
        _yes_no(result.met),
    )


def render_table(results: Sequence[Result]) -> str:
    """A Markdown table, padded so it also reads well in a terminal."""
    rows = [_HEADER, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def write_results(
    directory: Path,
    results: Sequence[Result],
    meta: dict[str, Any],
    table: str,
    notes: Sequence[str],
) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {**meta, "results": {r.key: r.as_json() for r in results}, "notes": list(notes)}
    json_path = directory / "latest.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    env = meta["environment"]
    settings = meta["settings"]
    lines = [
        "# pinwarden benchmarks: latest results",
        "",
        f"{meta['date']} · Python {env['python']} · {env['openssl']} · {env['platform']} · "
        f"{env['cpu_count']} CPUs · {meta['duration_s']:.0f} s",
        "",
        table,
        "",
        f"HTTPS rows: {settings['rounds']} interleaved rounds × {settings['batch']} requests "
        f"per side (after {settings['warmup']} warm-up requests per side); pinned and plain "
        "are medians over rounds of each round's median request time; the ratio is the "
        "median of the per-round ratios with a bootstrap 95% interval. The CAA row audits "
        "the same names sequentially and concurrently against a DNS server whose answers "
        "are delayed like a nearby resolver's. Produced by "
        "`make bench`; see benchmarks/README.md.",
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    md_path = directory / "latest.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return json_path, md_path
