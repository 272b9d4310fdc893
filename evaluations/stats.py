"""The numbers of an evaluation: accuracy, precision, recall and F1 on "violation" with bootstrap intervals,
a category confusion matrix, percentiles, and McNemar's exact test between two runs. Plain Python and
numpy over plain values, so the arithmetic can be checked alone (tests/evaluations/test_stats.py).

An example the model gave no verdict for (unparsable, conflicting, truncated, failed) is not a guess of
"safe": the metrics count it apart (`unanswered`), and `strict_accuracy` counts it as wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 20251029  # fixed, so the same run always shows the same interval


@dataclass(frozen=True, slots=True)
class Scored:
    """One example's truth and the model's verdict (None: no verdict)."""

    expected: bool
    predicted: bool | None
    expected_category: str = ""
    predicted_category: str = ""


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _rates(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": precision,
            "recall": recall,
            "f1": 2 * tp / (2 * tp + fp + fn),
        }


def _interval(samples: np.ndarray) -> list[float] | None:
    samples = samples[~np.isnan(samples)]
    if len(samples) < BOOTSTRAP_SAMPLES // 2:  # undefined in most resamples (e.g. no violations)
        return None
    low, high = np.percentile(samples, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def binary_metrics(scored: Sequence[Scored], *, samples: int = BOOTSTRAP_SAMPLES) -> dict[str, object]:
    """Accuracy, precision, recall and F1 of "violation" over the answered examples, each with a 95%
    percentile-bootstrap interval (resampling the answered examples), and the counts behind them."""
    answered = [s for s in scored if s.predicted is not None]
    tp = sum(s.expected and s.predicted for s in answered)
    fp = sum(not s.expected and s.predicted for s in answered)
    fn = sum(s.expected and not s.predicted for s in answered)
    tn = len(answered) - tp - fp - fn
    return metrics_from_counts(tp, fp, fn, tn, unanswered=len(scored) - len(answered),
                               violations=sum(s.expected for s in scored), samples=samples)


def metrics_from_counts(tp: int, fp: int, fn: int, tn: int, *, unanswered: int = 0, violations: int | None = None,
                        samples: int = BOOTSTRAP_SAMPLES) -> dict[str, object]:
    """binary_metrics from the confusion counts alone (what a database aggregate gives)."""
    answered = tp + fp + fn + tn
    if violations is None:
        violations = tp + fn
    point = {name: _ratio(*parts) for name, parts in {
        "accuracy": (tp + tn, answered),
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
        "f1": (2 * tp, 2 * tp + fp + fn),
    }.items()}
    intervals: dict[str, list[float] | None] = dict.fromkeys(point)
    if answered and samples:
        # Resampling examples with replacement only changes how many fall in each confusion cell, so each
        # resample is one multinomial draw over the four cells: the same bootstrap, in constant memory.
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        cells = rng.multinomial(answered, np.array([tp, fp, fn, tn]) / answered, size=samples)
        resampled = _rates(*(cells[:, i].astype(float) for i in range(4)))
        intervals = {name: _interval(values) for name, values in resampled.items()}
    examples = answered + unanswered
    return {
        "examples": examples,
        "answered": answered,
        "unanswered": unanswered,
        "violations": int(violations),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        **{name: None if value is None else round(value, 4) for name, value in point.items()},
        "strict_accuracy": round((tp + tn) / examples, 4) if examples else None,
        "intervals": intervals,
    }


def category_confusion(scored: Sequence[Scored]) -> dict[str, dict[str, int]]:
    """{expected category: {predicted category or "(no verdict)": count}} for category policies."""
    matrix: dict[str, dict[str, int]] = {}
    for s in scored:
        predicted = s.predicted_category if s.predicted is not None else "(no verdict)"
        row = matrix.setdefault(s.expected_category or "(none)", {})
        row[predicted or "(none)"] = row.get(predicted or "(none)", 0) + 1
    return matrix


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 90, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles, {"p50": ...}; None for each when there are no values."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for p in points:
        if not ordered:
            result[f"p{p}"] = None
            continue
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        result[f"p{p}"] = round(float(ordered[rank - 1]), 2)
    return result


def mcnemar_exact(only_first_right: int, only_second_right: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: the examples only the first run got
    right, and those only the second got right (a binomial test of the split against one half)."""
    n = only_first_right + only_second_right
    if n == 0:
        return 1.0
    k = min(only_first_right, only_second_right)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
