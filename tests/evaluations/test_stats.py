"""The arithmetic of evaluations: checked against hand counts and an independent bootstrap."""

from __future__ import annotations

import random

from evaluations.stats import Scored, binary_metrics, category_confusion, mcnemar_exact, percentiles


def _scored(tp: int, fp: int, fn: int, tn: int, unanswered: int = 0) -> list[Scored]:
    return ([Scored(True, True)] * tp + [Scored(False, True)] * fp + [Scored(True, False)] * fn
            + [Scored(False, False)] * tn + [Scored(True, None)] * unanswered)


def test_the_metrics_are_the_hand_counted_ones_and_unanswered_examples_are_counted_apart():
    metrics = binary_metrics(_scored(tp=8, fp=2, fn=4, tn=16, unanswered=5))

    assert (metrics["examples"], metrics["answered"], metrics["unanswered"]) == (35, 30, 5)
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"]) == (8, 2, 4, 16)
    assert metrics["accuracy"] == round(24 / 30, 4)
    assert metrics["precision"] == 0.8 and metrics["recall"] == round(8 / 12, 4)
    assert metrics["f1"] == round(16 / 22, 4)
    assert metrics["strict_accuracy"] == round(24 / 35, 4)  # no verdict counts as wrong here
    assert metrics["violations"] == 17


def test_the_bootstrap_interval_agrees_with_resampling_the_examples_themselves():
    scored = _scored(tp=40, fp=10, fn=20, tn=130)
    ours = binary_metrics(scored)["intervals"]
    # An independent percentile bootstrap: resample the examples, recompute, take the 2.5th and 97.5th.
    rng = random.Random(1)
    recalls, precisions = [], []
    for _ in range(2000):
        sample = [rng.choice(scored) for _ in scored]
        tp = sum(s.expected and s.predicted for s in sample)
        recalls.append(tp / sum(s.expected for s in sample))
        precisions.append(tp / sum(bool(s.predicted) for s in sample))
    for name, values in (("recall", recalls), ("precision", precisions)):
        values.sort()
        low, high = values[int(0.025 * len(values))], values[int(0.975 * len(values))]
        assert abs(ours[name][0] - low) < 0.03 and abs(ours[name][1] - high) < 0.03, (name, ours[name], low, high)


def test_the_interval_holds_the_estimate_is_reproducible_and_narrows_with_more_examples():
    small, large = binary_metrics(_scored(8, 2, 4, 16)), binary_metrics(_scored(80, 20, 40, 160))
    low, high = small["intervals"]["recall"]
    assert 0 <= low <= small["recall"] <= high <= 1
    assert binary_metrics(_scored(8, 2, 4, 16))["intervals"] == small["intervals"]
    assert large["intervals"]["recall"][1] - large["intervals"]["recall"][0] < high - low


def test_a_metric_that_is_undefined_has_no_value_and_no_interval():
    metrics = binary_metrics(_scored(tp=0, fp=0, fn=0, tn=10))

    assert metrics["recall"] is None and metrics["precision"] is None
    assert metrics["intervals"]["recall"] is None
    assert metrics["accuracy"] == 1.0


def test_mcnemars_exact_p_value_is_the_two_sided_binomial_of_the_discordant_pairs():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 0) == 1.0
    assert mcnemar_exact(0, 5) == 2 / 32
    assert mcnemar_exact(2, 10) == 2 * (1 + 12 + 66) / 4096
    assert mcnemar_exact(10, 2) == mcnemar_exact(2, 10)
    assert mcnemar_exact(50, 50) == 1.0


def test_nearest_rank_percentiles_and_a_category_confusion_matrix():
    assert percentiles([5, 1, 3, 2, 4], (50, 100)) == {"p50": 3.0, "p100": 5.0}
    assert percentiles([]) == {"p50": None, "p90": None, "p95": None, "p99": None}
    matrix = category_confusion([
        Scored(True, True, "DC2", "DC2"), Scored(True, True, "DC2", "DC3"), Scored(False, None, "DC0", ""),
    ])
    assert matrix == {"DC2": {"DC2": 1, "DC3": 1}, "DC0": {"(no verdict)": 1}}
