"""Small statistics for the reports: percentiles, a one-line summary of durations,
and the least-squares slope of a series."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["percentile", "slope", "summary"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolated; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(seconds: Sequence[float]) -> str:
    """``p50 0.12 s, max 0.80 s (n 7)``."""
    if not seconds:
        return "none measured"
    return f"p50 {percentile(seconds, 50):.2f} s, max {max(seconds):.2f} s (n {len(seconds)})"


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ``ys`` over ``xs``; NaN with fewer than two points."""
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
