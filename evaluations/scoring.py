"""A run's metrics from its stored results: the numbers of evaluations.stats over what the model said
about each example, plus parse-quality shares, per-rule counts, tokens and latency."""

from __future__ import annotations

from collections import Counter
from typing import Any

from evaluations.models import EvaluationResult, EvaluationRun, ResultStatus
from evaluations.stats import Scored, binary_metrics, category_confusion, percentiles
from policies_app.models import LabelScheme


def scored_results(run: EvaluationRun) -> list[tuple[EvaluationResult, Scored]]:
    """Each settled result of the run beside its example's truth (cancelled results left out)."""
    results = (run.results.exclude(status__in=[ResultStatus.QUEUED, ResultStatus.RUNNING, ResultStatus.CANCELLED])
               .filter(example__isnull=False).select_related("example").order_by("example_id"))
    pairs = []
    for result in results.iterator(chunk_size=2000):
        predicted = result.violation if result.status == ResultStatus.DONE else None
        pairs.append((result, Scored(expected=result.example.violation, predicted=predicted,
                                     expected_category=result.example.category or result.example.label,
                                     predicted_category=result.category or result.label)))
    return pairs


def run_metrics(run: EvaluationRun) -> dict[str, Any]:
    """Everything the run page, the export and `manage.py evaluate` show about a run."""
    pairs = scored_results(run)
    scored = [s for _, s in pairs]
    results = [r for r, _ in pairs]
    metrics: dict[str, Any] = binary_metrics(scored)
    statuses = Counter(r.status for r in results)
    metrics["statuses"] = dict(statuses)
    metrics["unparsable"] = metrics["unanswered"]
    qualities = Counter(r.parse_quality or "none" for r in results)
    metrics["parse_quality"] = {q: round(n / len(results), 4) for q, n in qualities.items()} if results else {}
    if run.policy_version.label_scheme == LabelScheme.CATEGORIES:
        metrics["confusion"] = category_confusion(scored)
        metrics["category_accuracy"] = (
            round(sum(s.predicted is not None and s.predicted_category == s.expected_category for s in scored)
                  / len(scored), 4) if scored else None)
        rules = Counter(rule for r in results for rule in r.rule_ids or [])
        metrics["rule_ids"] = dict(rules.most_common())
    metrics["prompt_tokens"] = sum(r.prompt_tokens or 0 for r in results)
    metrics["completion_tokens"] = sum(r.completion_tokens or 0 for r in results)
    metrics["latency_ms"] = percentiles([r.latency_ms for r in results if r.latency_ms is not None])
    metrics["completion_tokens_per_example"] = percentiles(
        [r.completion_tokens for r in results if r.completion_tokens is not None])
    return metrics
