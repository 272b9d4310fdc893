from __future__ import annotations

import pytest

from safeguard import firstpass
from safeguard.firstpass_thresholds import CategoryRecall, Fold, Proposal, judge, propose
from tests.safeguard.helpers import separable_examples


def _synthetic(n_safe: int, n_spam: int, n_hidden: int = 0, seed: int = 0):
    examples = separable_examples(n_safe, n_spam, n_hidden, seed)
    return ([e.text for e in examples], [e.violation for e in examples],
            [firstpass.category_of(e.label) if e.violation else "" for e in examples])


def _proposal(*, caught: int, violations: int, categories=()) -> Proposal:
    return Proposal(threshold=0.3, aim=0.97, auc=0.9, categories=tuple(categories),
                    folds=(Fold(threshold=0.3, violations=violations, caught=caught, items=violations * 3,
                                escalated=violations * 2),))


def test_the_held_out_folds_cover_every_item_once_and_measure_their_own_thresholds():
    texts, labels, categories = _synthetic(300, 150)
    proposal = propose(texts, labels, categories, aim=0.97)
    assert sum(f.items for f in proposal.folds) == len(texts)
    assert proposal.violations == sum(labels)
    assert len(proposal.folds) == 5
    assert len({f.threshold for f in proposal.folds}) > 1  # chosen per fold, on that fold's training part
    assert proposal.held_out_recall >= 0.95
    assert proposal.auc > 0.95
    assert [c.category for c in proposal.categories] == ["SP2"]
    assert 0.0 < proposal.threshold < 1.0
    assert proposal.held_out_escalated < 0.5  # a third of the items are violations: little beyond them


def test_a_threshold_that_holds_recall_on_held_out_folds_is_applied():
    texts, labels, categories = _synthetic(300, 150)
    verdict = judge(propose(texts, labels, categories, aim=0.97), target=0.95, min_violations=100,
                    category_floor=0.85, category_min_violations=20)
    assert verdict.apply
    assert "meets the target 0.95" in verdict.reason and verdict.weak_categories == ()


def test_too_few_held_out_violations_keep_the_previous_threshold():
    verdict = judge(_proposal(caught=22, violations=22), target=0.95, min_violations=100, category_floor=0.85,
                    category_min_violations=20)
    assert not verdict.apply
    assert "at least 100 held-out violations" in verdict.reason and "over 22 violations" in verdict.reason


def test_a_held_out_recall_under_the_target_keeps_the_previous_threshold():
    verdict = judge(_proposal(caught=180, violations=200), target=0.95, min_violations=100, category_floor=0.85,
                    category_min_violations=20)
    assert not verdict.apply
    assert "0.900" in verdict.reason and "under the target 0.95" in verdict.reason


def test_a_category_under_the_floor_is_listed_and_small_categories_are_not_judged():
    weak, small, fine = (CategoryRecall("SP3", 40, 30), CategoryRecall("SP4", 5, 1), CategoryRecall("SP2", 155, 155))
    verdict = judge(_proposal(caught=186, violations=195, categories=(weak, small, fine)), target=0.95,
                    min_violations=100, category_floor=0.85, category_min_violations=20)
    assert verdict.apply
    assert verdict.weak_categories == (weak,)
    assert "SP3 (0.75 of 40)" in verdict.reason


def test_a_category_the_first_pass_cannot_tell_from_safe_text_falls_under_the_floor():
    texts, labels, categories = _synthetic(300, 150, n_hidden=25)
    proposal = propose(texts, labels, categories, aim=0.85)
    recalls = {c.category: c.recall for c in proposal.categories}
    assert recalls["SP2"] > 0.95 > 0.6 > recalls["SP3"]
    verdict = judge(proposal, target=0.8, min_violations=100, category_floor=0.85, category_min_violations=20)
    assert [c.category for c in verdict.weak_categories] == ["SP3"]


def test_propose_refuses_mismatched_categories_and_one_class_data():
    texts, labels, categories = _synthetic(20, 10)
    with pytest.raises(firstpass.FirstPassError, match="categories"):
        propose(texts, labels, categories[:-1], aim=0.95)
    with pytest.raises(firstpass.FirstPassError, match="both"):
        propose(texts, [False] * len(texts), aim=0.95)
