"""Figures the bench phases share."""

from __future__ import annotations

import math


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (the conservative one: p99 of 100 values is the 99th)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
