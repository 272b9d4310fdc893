"""Two runs on the same labelled set side by side: which examples flipped, whether the difference in what
they got right is more than chance (McNemar's exact test), and how each metric moved.

"Right" is about the violation verdict, as accuracy is: the model said violation when the example is one,
or no violation when it is not. An example with no verdict (unparsable, conflicting, truncated, failed,
cancelled, or not classified yet) is neither right nor wrong; it is counted apart and left out of the test,
which compares the runs only on the examples both answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evaluations.models import EvaluationResult, EvaluationRun, Example, ResultStatus, RunKind, RunStatus
from evaluations.scoring import run_metrics
from evaluations.stats import mcnemar_exact

# The metrics whose change the comparison reports (B's value less A's).
DELTA_METRICS = ("accuracy", "precision", "recall", "f1", "strict_accuracy", "unanswered")
SIGNIFICANCE = 0.05

RIGHT_TO_WRONG = "right_to_wrong"
WRONG_TO_RIGHT = "wrong_to_right"
OTHER = "other"
FLIP_ORDER = {RIGHT_TO_WRONG: 0, WRONG_TO_RIGHT: 1, OTHER: 2}


class CompareError(ValueError):
    """Two runs that cannot be compared; the message says why."""


def outcome(result: EvaluationResult | None, example: Example) -> str:
    """"right", "wrong" or "none" (no verdict) for one run's result about `example`."""
    if result is None or result.status != ResultStatus.DONE or result.violation is None:
        return "none"
    return "right" if result.violation == example.violation else "wrong"


def verdict_key(result: EvaluationResult | None) -> tuple[Any, ...]:
    """What a run said about an example, for telling whether two runs said the same thing: the violation
    and the category for an answer, the status for an example without one."""
    if result is None:
        return ("missing",)
    if result.status != ResultStatus.DONE:
        return ("no verdict", result.status)
    return ("verdict", result.violation, result.category)


@dataclass(frozen=True, slots=True)
class Flip:
    """An example the two runs said different things about."""

    example: Example
    a: EvaluationResult | None
    b: EvaluationResult | None
    kind: str  # RIGHT_TO_WRONG, WRONG_TO_RIGHT or OTHER

    @property
    def a_outcome(self) -> str:
        return outcome(self.a, self.example)

    @property
    def b_outcome(self) -> str:
        return outcome(self.b, self.example)


@dataclass(frozen=True)
class Comparison:
    a: EvaluationRun
    b: EvaluationRun
    flips: list[Flip]
    counts: dict[str, int]  # both_right, both_wrong, only_a_right, only_b_right, no_verdict, only_in_one
    p_value: float
    deltas: dict[str, float | None]
    metrics_a: dict[str, Any]
    metrics_b: dict[str, Any]

    @property
    def discordant(self) -> int:
        return self.counts["only_a_right"] + self.counts["only_b_right"]

    @property
    def significant(self) -> bool:
        return self.discordant > 0 and self.p_value < SIGNIFICANCE

    @property
    def verdict(self) -> str:
        """The result of the test in one honest sentence."""
        a_right, b_right = self.counts["only_a_right"], self.counts["only_b_right"]
        if not self.discordant:
            return ("No example is right in one run and wrong in the other: there is no difference to test "
                    "(McNemar's exact p = 1).")
        better = f"run #{self.b.pk}" if b_right > a_right else f"run #{self.a.pk}"
        split = (f"{a_right} example{'s' if a_right != 1 else ''} only run #{self.a.pk} got right, "
                 f"{b_right} only run #{self.b.pk} did")
        if self.significant:
            return (f"The difference is significant at {SIGNIFICANCE:g}: McNemar's exact p = {self.p_value:.3g} "
                    f"({split}); {better} gets more right.")
        if a_right == b_right:
            return (f"Not significant at {SIGNIFICANCE:g}: McNemar's exact p = {self.p_value:.3g} ({split}); "
                    "the runs get as many right as each other.")
        return (f"Not significant at {SIGNIFICANCE:g}: McNemar's exact p = {self.p_value:.3g} ({split}). "
                f"{better.capitalize()} gets more right here, but a gap this size could be chance.")

    @property
    def right_to_wrong(self) -> int:
        return sum(f.kind == RIGHT_TO_WRONG for f in self.flips)

    @property
    def wrong_to_right(self) -> int:
        return sum(f.kind == WRONG_TO_RIGHT for f in self.flips)


def _results(run: EvaluationRun) -> dict[int, EvaluationResult]:
    return {r.example_id: r for r in run.results.filter(example__isnull=False).select_related("example")}


def _metrics(run: EvaluationRun) -> dict[str, Any]:
    # A finished run keeps its metrics; a running one is measured on what it has classified so far.
    return run.metrics if run.status != RunStatus.RUNNING and run.metrics else run_metrics(run)


def _delta(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    return round(b - a, 4)


def compare_runs(a: EvaluationRun, b: EvaluationRun) -> Comparison:
    """Run `b` against run `a` (the baseline) over the examples both have a result for."""
    if RunKind.SHADOW in (a.kind, b.kind):
        raise CompareError("Only runs over a labelled set can be compared here")
    if a.pk == b.pk:
        raise CompareError(f"Both sides are run #{a.pk}: choose another run on the same set")
    if a.labeled_set_id != b.labeled_set_id:
        raise CompareError(
            f"Run #{a.pk} is on the set {a.labeled_set.name!r} and run #{b.pk} on {b.labeled_set.name!r}: "
            "runs can only be compared on the same labelled set, where every example has a truth in both"
        )
    results_a, results_b = _results(a), _results(b)
    shared = sorted(results_a.keys() & results_b.keys())
    counts = {"both_right": 0, "both_wrong": 0, "only_a_right": 0, "only_b_right": 0, "no_verdict": 0,
              "only_in_one": len(results_a.keys() ^ results_b.keys())}
    flips: list[Flip] = []
    for example_id in shared:
        ra, rb = results_a[example_id], results_b[example_id]
        example = ra.example
        pair = (outcome(ra, example), outcome(rb, example))
        if "none" in pair:
            counts["no_verdict"] += 1
        elif pair == ("right", "right"):
            counts["both_right"] += 1
        elif pair == ("wrong", "wrong"):
            counts["both_wrong"] += 1
        elif pair == ("right", "wrong"):
            counts["only_a_right"] += 1
        else:
            counts["only_b_right"] += 1
        if verdict_key(ra) != verdict_key(rb):
            kind = {("right", "wrong"): RIGHT_TO_WRONG, ("wrong", "right"): WRONG_TO_RIGHT}.get(pair, OTHER)
            flips.append(Flip(example=example, a=ra, b=rb, kind=kind))
    flips.sort(key=lambda f: (FLIP_ORDER[f.kind], f.example.pk))
    metrics_a, metrics_b = _metrics(a), _metrics(b)
    return Comparison(
        a=a, b=b, flips=flips, counts=counts,
        p_value=mcnemar_exact(counts["only_a_right"], counts["only_b_right"]),
        deltas={name: _delta(metrics_a.get(name), metrics_b.get(name)) for name in DELTA_METRICS},
        metrics_a=metrics_a, metrics_b=metrics_b,
    )
