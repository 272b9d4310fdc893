"""Choosing the first pass's close threshold honestly, and judging whether it is safe to apply.

A threshold chosen on the scores it is then measured on is optimistic: it sits exactly at the recall
target on those items and misses more on new ones. So the selection is nested:

* the outer folds split the labelled items; on each outer fold's training part an inner
  cross-validation gives out-of-fold scores, and the threshold is the one that keeps recall at `aim`
  on them (training data only);
* a model trained on that training part scores the held-out fold, and the recall (and escalated
  share) that fold's threshold achieves there is what the procedure really delivers.

The threshold proposed for the model trained on everything comes from the same procedure applied to
all items (their out-of-fold scores at `aim`), which is what the outer folds checked. `aim` is the
target plus a margin, to absorb the optimism the outer folds measure.

`judge` decides: apply only when the held-out recall meets the target over enough held-out
violations, and lists categories whose held-out recall falls under the per-category floor.

No Django here; the console stores `Proposal.as_dict()` beside the model and routes by the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from safeguard import firstpass
from safeguard.intervals import wilson


@dataclass(frozen=True, slots=True)
class Fold:
    """One outer fold: the threshold chosen on its training part, and what it did on the held-out part."""

    threshold: float
    violations: int
    caught: int
    items: int
    escalated: int


@dataclass(frozen=True, slots=True)
class CategoryRecall:
    category: str
    violations: int  # held-out violations of this category, all outer folds
    caught: int  # of them, escalated by their fold's threshold

    @property
    def recall(self) -> float:
        return self.caught / self.violations if self.violations else 1.0


@dataclass(frozen=True, slots=True)
class Proposal:
    threshold: float  # for the model trained on all items: close below it
    aim: float
    folds: tuple[Fold, ...]
    categories: tuple[CategoryRecall, ...]
    auc: float  # of the outer folds' held-out scores, pooled

    @property
    def violations(self) -> int:
        return sum(f.violations for f in self.folds)

    @property
    def caught(self) -> int:
        return sum(f.caught for f in self.folds)

    @property
    def held_out_recall(self) -> float:
        return self.caught / self.violations if self.violations else 0.0

    @property
    def held_out_escalated(self) -> float:
        items = sum(f.items for f in self.folds)
        return sum(f.escalated for f in self.folds) / items if items else 1.0

    def as_dict(self) -> dict:
        low, high = wilson(self.caught, self.violations) or (0.0, 1.0)
        return {
            "threshold": round(self.threshold, 6),
            "aim": self.aim,
            "auc": round(self.auc, 4),
            "held_out_recall": round(self.held_out_recall, 4),
            "held_out_recall_ci": [round(low, 4), round(high, 4)],
            "held_out_violations": self.violations,
            "held_out_escalated": round(self.held_out_escalated, 4),
            "folds": [{"threshold": round(f.threshold, 6), "recall": round(f.caught / f.violations, 4)
                       if f.violations else None, "escalated": round(f.escalated / f.items, 4)} for f in self.folds],
            "categories": [{"category": c.category, "violations": c.violations, "recall": round(c.recall, 4)}
                           for c in self.categories],
        }


def _auc(scores: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def propose(
    texts: Sequence[str],
    labels: Sequence[bool | int],
    categories: Sequence[str] | None = None,
    *,
    aim: float,
    folds: int = 5,
    inner_folds: int = 4,
    seed: int = 0,
    c: float = 4.0,
) -> Proposal:
    """The nested cross-validated threshold for recall `aim` (see the module docstring).

    `categories` names each item's violation category ("" when unknown or safe); categories are
    measured on the held-out folds at each fold's own threshold."""
    from sklearn.model_selection import StratifiedKFold

    y = firstpass._check_training_data(texts, labels).astype(bool)
    folds = min(folds, int(y.sum()), int(len(y) - y.sum()))
    if folds < 2:
        raise firstpass.FirstPassError("cross-validation needs at least two examples of each class")
    cats = np.asarray(list(categories) if categories is not None else [""] * len(y), dtype=object)
    if len(cats) != len(y):
        raise firstpass.FirstPassError(f"{len(y)} texts but {len(cats)} categories")
    text_list = list(texts)
    held_out = np.empty(len(y), dtype=np.float64)
    outer: list[Fold] = []
    caught_at = np.zeros(len(y), dtype=bool)  # each held-out violation: escalated by its fold's threshold
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for number, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(len(y)), y)):
        train_texts = [text_list[i] for i in train_idx]
        inner = firstpass.out_of_fold_scores(train_texts, y[train_idx], folds=inner_folds, seed=seed + number + 1, c=c)
        threshold = firstpass.threshold_for_recall(inner, y[train_idx], aim)
        model = firstpass.train(train_texts, y[train_idx], c=c)
        scores = firstpass.score(model, [text_list[i] for i in test_idx])
        held_out[test_idx] = scores
        escalated = scores >= threshold
        caught_at[test_idx] = escalated
        positives = y[test_idx]
        outer.append(Fold(threshold=threshold, violations=int(positives.sum()),
                          caught=int((escalated & positives).sum()), items=len(test_idx),
                          escalated=int(escalated.sum())))
    category_recalls = tuple(
        CategoryRecall(category=str(name), violations=int(members.sum()), caught=int((caught_at & members).sum()))
        for name in sorted({str(v) for v in cats[y] if v})
        for members in [y & (cats == name)]
    )
    return Proposal(threshold=firstpass.threshold_for_recall(held_out, y, aim), aim=aim, folds=tuple(outer),
                    categories=category_recalls, auc=_auc(held_out, y))


@dataclass(frozen=True, slots=True)
class Verdict:
    apply: bool
    reason: str
    weak_categories: tuple[CategoryRecall, ...] = ()


def judge(proposal: Proposal, *, target: float, min_violations: int, category_floor: float,
          category_min_violations: int) -> Verdict:
    """Whether `proposal`'s threshold may replace the one in force, and why (or why not).

    The held-out recall must meet `target` over at least `min_violations` held-out violations: fewer
    cannot tell 0.95 from 0.90. A category with at least `category_min_violations` held-out violations
    whose recall is under `category_floor` is weak; the caller escalates its items."""
    recall, violations = proposal.held_out_recall, proposal.violations
    low, high = wilson(proposal.caught, violations) or (0.0, 1.0)
    measured = f"held-out recall {recall:.3f} (95% CI {low:.3f}–{high:.3f}) over {violations} violations"
    if violations < min_violations:
        return Verdict(False, f"{measured}: at least {min_violations} held-out violations are needed to check "
                              f"recall {target:.2f}")
    if recall < target:
        return Verdict(False, f"{measured} is under the target {target:.2f}")
    weak = tuple(c for c in proposal.categories
                 if c.violations >= category_min_violations and c.recall < category_floor)
    if weak:
        names = ", ".join(f"{c.category} ({c.recall:.2f} of {c.violations})" for c in weak)
        return Verdict(True, f"{measured} meets the target {target:.2f}, but categories under the floor "
                             f"{category_floor:.2f} ({names}) are escalated", weak)
    return Verdict(True, f"{measured} meets the target {target:.2f}; escalates "
                         f"{proposal.held_out_escalated:.1%} of held-out items")
