"""The one confidence interval for a proportion the console reports (first-pass recall and miss rates,
the transparency report's error indicators): Wilson's score interval.

Unlike the normal approximation it stays inside [0, 1] and is honest for small counts and for shares
near 0 or 1, which is where moderation figures live (a handful of quality checks, rare misses).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of `successes` in `trials` (None without trials: nothing is known)."""
    if trials <= 0:
        return None
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
