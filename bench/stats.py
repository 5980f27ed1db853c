"""Figures from repeated measurements: median and spread, ratios of paired runs, percentiles; and the CPU
time this process has used."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def spread(self, digits: int = 2, unit: str = "") -> str:
        """``median (min-max, n=…)``."""
        if len(self.values) == 1:
            return f"{self.median:.{digits}f}{unit} (n=1)"
        low, high = f"{self.low:.{digits}f}", f"{self.high:.{digits}f}"
        return f"{self.median:.{digits}f}{unit} ({low}-{high}, n={len(self.values)})"


def summarize(values: Sequence[float]) -> Summary:
    return Summary(tuple(values))


def ratio_summary(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """Ratios of paired measurements (each pair taken back to back in the same repetition)."""
    return summarize([n / d for n, d in zip(numerators, denominators, strict=True) if d])


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
