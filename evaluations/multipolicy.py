"""Multi-policy accuracy: when the same content is labelled under several policies (one labelled set per
policy, the examples matched by content), the share of examples that every policy's run got right at
once. A platform applies all its policies to each item, so one wrong policy makes the item wrong.

An example without a verdict from a run counts as not right (there is nothing to act on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluations.models import EvaluationRun, ResultStatus, RunKind


class MultiPolicyError(ValueError):
    """Runs that cannot be combined; the message says why."""


def _outcomes(run: EvaluationRun) -> dict[str, bool]:
    """content hash → whether the run's verdict on that example was right (False: wrong or none)."""
    rows = (run.results.filter(example__isnull=False)
            .exclude(status__in=[ResultStatus.QUEUED, ResultStatus.RUNNING, ResultStatus.CANCELLED])
            .values_list("example__content_hash", "status", "violation", "example__violation"))
    return {digest: status == ResultStatus.DONE and violation == expected
            for digest, status, violation, expected in rows}


def multi_policy_accuracy(runs: Sequence[EvaluationRun]) -> dict[str, Any]:
    """Exact-match accuracy over the examples every run has a result for, and each policy's own accuracy
    on those same examples."""
    if len(runs) < 2:
        raise MultiPolicyError("Multi-policy accuracy needs runs of at least two policies")
    if any(run.kind != RunKind.LABELED for run in runs):
        raise MultiPolicyError("Only runs over labelled sets can be combined")
    policies = [run.policy_version.policy_id for run in runs]
    if len(set(policies)) != len(policies):
        raise MultiPolicyError("Give one run per policy: two of these runs are of the same policy")
    outcomes = [_outcomes(run) for run in runs]
    shared = set.intersection(*(set(o) for o in outcomes))
    exact = sum(all(o[digest] for o in outcomes) for digest in shared)
    return {
        "runs": [run.pk for run in runs],
        "examples": len(shared),
        "exact_match": round(exact / len(shared), 4) if shared else None,
        "per_policy": {run.policy_version.policy.slug: round(sum(o[d] for d in shared) / len(shared), 4)
                       if shared else None for run, o in zip(runs, outcomes, strict=True)},
    }
