"""A run's metrics from its stored results: the numbers of evaluations.stats over the confusion counts,
plus parse-quality shares, the category confusion matrix, per-rule counts, tokens and latency.

Every figure is a database aggregate over the run's settled results, so finishing a run of 10,000
examples costs a few queries, not a pass over 10,000 rows in Python: the last batch of a run is stored
by a reasoner worker, and live items must not wait behind its bookkeeping.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, NullIf

from evaluations.models import EvaluationResult, EvaluationRun, ResultStatus
from evaluations.stats import metrics_from_counts
from policies_app.models import LabelScheme

PERCENTILES = (50, 90, 95, 99)


def settled_results(run: EvaluationRun) -> QuerySet[EvaluationResult]:
    """The run's results about examples that have an outcome (cancelled ones left out)."""
    return run.results.filter(example__isnull=False).exclude(
        status__in=[ResultStatus.QUEUED, ResultStatus.RUNNING, ResultStatus.CANCELLED])


def _percentiles(results: QuerySet[EvaluationResult], column: str) -> dict[str, float | None]:
    """Nearest-rank percentiles (percentile_disc) of a column, as evaluations.stats.percentiles gives."""
    table = EvaluationResult._meta.db_table
    sql, params = results.values("id").query.sql_with_params()
    fractions = ", ".join(f"percentile_disc({p / 100}) WITHIN GROUP (ORDER BY r.{column})" for p in PERCENTILES)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {fractions} FROM {table} AS r WHERE r.{column} IS NOT NULL AND r.id IN ({sql})",
                       params)
        row = cursor.fetchone()
    return {f"p{p}": None if value is None else round(float(value), 2) for p, value in zip(PERCENTILES, row,
                                                                                          strict=True)}


def run_metrics(run: EvaluationRun) -> dict[str, Any]:
    """Everything the run page, the export and `manage.py evaluate` show about a run."""
    results = settled_results(run)
    done = Q(status=ResultStatus.DONE)
    counts = results.aggregate(
        tp=Count("id", filter=done & Q(example__violation=True, violation=True)),
        fp=Count("id", filter=done & Q(example__violation=False, violation=True)),
        fn=Count("id", filter=done & Q(example__violation=True, violation=False)),
        tn=Count("id", filter=done & Q(example__violation=False, violation=False)),
        unanswered=Count("id", filter=~done),
        violations=Count("id", filter=Q(example__violation=True)),
        prompt_tokens=Coalesce(Sum("prompt_tokens"), 0),
        completion_tokens=Coalesce(Sum("completion_tokens"), 0),
    )
    metrics: dict[str, Any] = metrics_from_counts(counts["tp"], counts["fp"], counts["fn"], counts["tn"],
                                                  unanswered=counts["unanswered"], violations=counts["violations"])
    metrics["unparsable"] = metrics["unanswered"]
    metrics["statuses"] = dict(results.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    total = metrics["examples"]
    qualities = (results.annotate(quality=Coalesce(NullIf("parse_quality", Value("")), Value("none")))
                 .values_list("quality").annotate(n=Count("id")).values_list("quality", "n"))
    metrics["parse_quality"] = {quality: round(n / total, 4) for quality, n in qualities} if total else {}
    if run.policy_version.label_scheme == LabelScheme.CATEGORIES:
        _category_metrics(results, metrics)
    metrics["prompt_tokens"] = counts["prompt_tokens"]
    metrics["completion_tokens"] = counts["completion_tokens"]
    metrics["latency_ms"] = _percentiles(results, "latency_ms")
    metrics["completion_tokens_per_example"] = _percentiles(results, "completion_tokens")
    return metrics


def _category_metrics(results: QuerySet[EvaluationResult], metrics: dict[str, Any]) -> None:
    """The confusion matrix {expected: {predicted or "(no verdict)": n}}, category accuracy, rule counts."""
    cells = (results.annotate(
        expected=Coalesce(NullIf(F("example__category"), Value("")), F("example__label")),
        predicted=Coalesce(NullIf(F("category"), Value("")), NullIf(F("label"), Value("")), Value("(none)")),
    ).values_list("expected", "predicted", "status").annotate(n=Count("id")))
    matrix: dict[str, dict[str, int]] = {}
    right = 0
    for expected, predicted, status, n in cells.values_list("expected", "predicted", "status", "n"):
        shown = predicted if status == ResultStatus.DONE else "(no verdict)"
        row = matrix.setdefault(expected or "(none)", {})
        row[shown] = row.get(shown, 0) + n
        right += n if status == ResultStatus.DONE and predicted == expected else 0
    metrics["confusion"] = matrix
    metrics["category_accuracy"] = round(right / metrics["examples"], 4) if metrics["examples"] else None
    table = EvaluationResult._meta.db_table
    sql, params = results.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT rule, count(*) FROM {table} AS r, jsonb_array_elements_text(r.rule_ids) AS rule "
                       f"WHERE r.id IN ({sql}) GROUP BY rule ORDER BY count(*) DESC, rule", params)
        metrics["rule_ids"] = dict(cursor.fetchall())
