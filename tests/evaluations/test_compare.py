"""Comparing two runs on one set: the flips in their order, the counts, McNemar's exact test and the
metric deltas, checked against numbers computed here from the examples themselves."""

from __future__ import annotations

import math

import pytest

from evaluations import runs
from evaluations.compare import OTHER, RIGHT_TO_WRONG, WRONG_TO_RIGHT, CompareError, compare_runs
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.evaluations.running import WORD, drain, finished_run, flipping_set, two_versions
from tests.factories import make_labeled_set

pytestmark = pytest.mark.django_db(transaction=True)


def exact_binomial_two_sided(k: int, n: int) -> float:
    """The two-sided exact binomial test of k successes in n at one half: the probability of every
    outcome no more likely than the one observed (computed apart from evaluations.stats)."""
    if n == 0:
        return 1.0
    pmf = [math.comb(n, i) / 2**n for i in range(n + 1)]
    return min(1.0, sum(p for p in pmf if p <= pmf[k] * (1 + 1e-12)))


def test_the_flips_come_right_to_wrong_first_then_wrong_to_right_with_counts_and_mcnemar():
    v1, v2 = two_versions()
    labeled_set = flipping_set(v1.policy)
    a, b = finished_run(labeled_set, v1), finished_run(labeled_set, v2)

    comparison = compare_runs(a, b)

    kinds = [(flip.kind, flip.example.content) for flip in comparison.flips]
    assert kinds == [
        (RIGHT_TO_WRONG, f"our office {WORD} raised money for charity #if={WORD}"),
        (WRONG_TO_RIGHT, f"you won the {WORD}, claim it #if={WORD}"),
        (WRONG_TO_RIGHT, f"the {WORD} prize is yours #if={WORD}"),
    ]
    assert comparison.counts == {"both_right": 2, "both_wrong": 1, "only_a_right": 1, "only_b_right": 2,
                                 "no_verdict": 1, "only_in_one": 0}
    assert comparison.p_value == pytest.approx(exact_binomial_two_sided(1, 3)) == 1.0
    assert not comparison.significant
    assert comparison.verdict.startswith("Not significant at 0.05: McNemar's exact p = 1")
    assert "could be chance" in comparison.verdict
    # Accuracy over the answered examples: v1 3 of 6, v2 4 of 6.
    assert comparison.metrics_a["accuracy"] == 0.5 and comparison.metrics_b["accuracy"] == round(4 / 6, 4)
    assert comparison.deltas["accuracy"] == round(round(4 / 6, 4) - 0.5, 4)
    assert comparison.deltas["unanswered"] == 0
    flip = comparison.flips[0]
    assert flip.a.violation is False and flip.b.violation is True
    assert "does not mention" in flip.a.reasoning and f"mentions {WORD}" in flip.b.reasoning


def test_a_lopsided_split_is_significant_and_the_sentence_names_the_better_run():
    v1, v2 = two_versions()
    rows = [(f"{WORD} number {n} #if={WORD}", "1") for n in range(9)] + [("hello there", "0")]
    labeled_set = make_labeled_set(v1.policy, rows)
    a, b = finished_run(labeled_set, v1), finished_run(labeled_set, v2)

    comparison = compare_runs(a, b)

    assert comparison.counts["only_b_right"] == 9 and comparison.counts["only_a_right"] == 0
    assert comparison.p_value == pytest.approx(exact_binomial_two_sided(0, 9)) == pytest.approx(2 / 2**9)
    assert comparison.significant
    assert comparison.verdict.startswith("The difference is significant at 0.05")
    assert comparison.verdict.endswith(f"run #{b.pk} gets more right.")
    assert [f.kind for f in comparison.flips] == [WRONG_TO_RIGHT] * 9


def test_two_runs_of_one_version_have_no_flips_and_nothing_to_test():
    v1, _v2 = two_versions()
    labeled_set = flipping_set(v1.policy)
    a, b = finished_run(labeled_set, v1), finished_run(labeled_set, v1)

    comparison = compare_runs(a, b)

    assert comparison.flips == [] and comparison.p_value == 1.0
    assert comparison.verdict.startswith("No example is right in one run and wrong in the other")


def test_an_answer_against_no_answer_is_another_change_listed_after_the_flips():
    v1, v2 = two_versions()
    labeled_set = flipping_set(v1.policy)
    a = finished_run(labeled_set, v1)
    b = runs.start_run(actor=None, labeled_set=labeled_set, version=v2)
    run_once(ScriptedEngine(), "w1", batch_size=3)  # the first three examples, then the rest are cancelled
    runs.cancel_run(actor=None, run=b)
    drain()
    b.refresh_from_db()

    comparison = compare_runs(a, b)

    # b classified the first three examples (two right where a was wrong, one wrong where a was right);
    # the other four were cancelled: three a answered, and one a could not read either (its status
    # still changed, from unparsable to cancelled).
    assert [f.kind for f in comparison.flips] == [RIGHT_TO_WRONG, WRONG_TO_RIGHT, WRONG_TO_RIGHT, OTHER, OTHER,
                                                  OTHER, OTHER]
    assert comparison.counts["no_verdict"] == 4
    assert {f.b.status for f in comparison.flips if f.kind == OTHER} == {"cancelled"}


def test_runs_on_different_sets_or_the_same_run_are_refused_with_a_reason():
    v1, _v2 = two_versions()
    first, second = flipping_set(v1.policy), make_labeled_set(v1.policy, [("hello", "0")], name="Other set")
    a, b = finished_run(first, v1), finished_run(second, v1)

    with pytest.raises(CompareError, match="only be compared on the same labelled set"):
        compare_runs(a, b)
    with pytest.raises(CompareError, match="Both sides are run"):
        compare_runs(a, a)
