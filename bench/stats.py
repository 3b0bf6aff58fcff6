"""Percentiles for the benches: nearest rank on the sorted values, so p99 of 20 is the maximum."""
from __future__ import annotations

import statistics


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def summary(values: list[float], digits: int = 1) -> dict[str, float]:
    """p50, p99, mean and max, rounded: what every latency figure reports."""
    return {"p50": round(pct(values, 50), digits), "p99": round(pct(values, 99), digits),
            "mean": round(statistics.mean(values), digits), "max": round(max(values), digits)}
