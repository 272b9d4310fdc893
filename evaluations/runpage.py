"""What a run's page shows. The progress bar and the metrics block are built here for the page and for
the WebSocket consumer that re-renders them as results arrive, so a live update shows what a reload
would."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet
from django.template.loader import render_to_string

from console.dashboard import Chart, hbars
from console.models import ParseQuality
from evaluations import runs
from evaluations.models import EvaluationResult, EvaluationRun, ResultStatus, RunStatus
from policies_app.models import LabelScheme

HEADLINE = (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"))
NO_VERDICT = "(no verdict)"
HEAT_STEPS = 5  # shades of the confusion heat map, besides blank for zero

# The results list's filter: every result, the right ones, the wrong ones, those without a verdict.
SHOW_CHOICES = (("all", "All"), ("right", "Right"), ("wrong", "Wrong"), ("none", "No verdict"))


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them ("45 s", "3 min", "1 h 20 min"); "unknown" for None."""
    if seconds is None:
        return "unknown"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


# --- progress ---------------------------------------------------------------------------------------


def progress_context(run: EvaluationRun) -> dict[str, Any]:
    progress = runs.progress(run)
    counts = progress["counts"]
    no_verdict = sum(n for status, n in counts.items()
                     if status not in (ResultStatus.DONE, ResultStatus.QUEUED, ResultStatus.RUNNING,
                                       ResultStatus.CANCELLED))
    if run.status != RunStatus.RUNNING:
        eta = ""
    elif progress["eta_s"] is None:
        eta = "Time left: unknown until the first results are stored"
    else:
        eta = f"About {duration(progress['eta_s'])} left at this run's pace"
    return {
        "run": run,
        "progress": progress,
        "eta": eta,
        "answered": counts.get(ResultStatus.DONE, 0),
        "no_verdict": no_verdict,
        "waiting": counts.get(ResultStatus.QUEUED, 0) + counts.get(ResultStatus.RUNNING, 0),
        "cancelled": counts.get(ResultStatus.CANCELLED, 0),
        "elapsed": duration(progress["elapsed_s"]),
    }


def progress_html(run: EvaluationRun) -> str:
    return render_to_string("evaluations/_run_progress.html", progress_context(run))


# --- metrics ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Headline:
    name: str
    label: str
    value: str
    interval: str


@dataclass(frozen=True, slots=True)
class HeatCell:
    count: int
    shade: int  # 0 (none) to HEAT_STEPS
    diagonal: bool


def _headline(metrics: dict[str, Any]) -> list[Headline]:
    intervals = metrics.get("intervals") or {}
    rows = []
    for name, label in HEADLINE:
        interval = intervals.get(name)
        shown = f"{percent(interval[0])} – {percent(interval[1])}" if interval else "not enough examples"
        rows.append(Headline(name, label, percent(metrics.get(name)), shown))
    return rows


def _quality(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    shares = metrics.get("parse_quality") or {}
    names = dict(ParseQuality.choices) | {"none": "No answer to read"}
    return [(names.get(q, q), percent(shares[q])) for q in [*ParseQuality.values, "none"] if q in shares]


def _ordered(categories: set[str], preferred: list[str]) -> list[str]:
    known = [c for c in preferred if c in categories]
    rest = sorted(c for c in categories if c not in known and c != NO_VERDICT)
    return known + rest + ([NO_VERDICT] if NO_VERDICT in categories else [])


def confusion_table(confusion: dict[str, dict[str, int]], labels: list[str]) -> dict[str, Any]:
    """The heat map: expected categories down, predicted across, each cell shaded by its share of the
    largest cell (HEAT_STEPS shades, blank for zero)."""
    rows_labels = _ordered(set(confusion), labels)
    columns = _ordered({p for row in confusion.values() for p in row} | set(rows_labels) - {NO_VERDICT}, labels)
    top = max((n for row in confusion.values() for n in row.values()), default=0)
    rows = []
    for expected in rows_labels:
        cells = []
        for predicted in columns:
            n = confusion.get(expected, {}).get(predicted, 0)
            cells.append(HeatCell(n, math.ceil(HEAT_STEPS * n / top) if top and n else 0, predicted == expected))
        rows.append((expected, cells, sum(confusion.get(expected, {}).values())))
    return {"columns": columns, "rows": rows}


def category_chart(confusion: dict[str, dict[str, int]], labels: list[str]) -> Chart:
    """One bar per category: the share of its examples the model gave that same category."""
    pairs = []
    for expected in _ordered(set(confusion), labels):
        row = confusion[expected]
        total = sum(row.values())
        pairs.append((f"{expected} ({row.get(expected, 0)}/{total})", 100 * row.get(expected, 0) / total if total
                      else 0))
    return hbars(pairs, top=100, fmt="{:.0f}%", css="category")


def metrics_context(run: EvaluationRun) -> dict[str, Any]:
    metrics = run.metrics or {}
    context: dict[str, Any] = {"run": run, "m": metrics, "finished": run.status != RunStatus.RUNNING}
    if not metrics:
        return context
    version = run.policy_version
    context.update(headline=_headline(metrics), quality=_quality(metrics),
                   strict_accuracy=percent(metrics.get("strict_accuracy")))
    if version.label_scheme == LabelScheme.CATEGORIES and metrics.get("confusion"):
        labels = list(version.labels or [])
        context.update(confusion=confusion_table(metrics["confusion"], labels),
                       categories=category_chart(metrics["confusion"], labels),
                       category_accuracy=percent(metrics.get("category_accuracy")))
    if metrics.get("rule_ids"):
        context["rules"] = hbars(list(metrics["rule_ids"].items())[:20], css="rule")
    return context


def metrics_html(run: EvaluationRun) -> str:
    """The metrics block as the consumer pushes it (`live`: it also refreshes the results list)."""
    return render_to_string("evaluations/_run_metrics.html", {**metrics_context(run), "live": True})


# --- the results list -------------------------------------------------------------------------------


def results(run: EvaluationRun, show: str = "all") -> QuerySet[EvaluationResult]:
    """The run's results about examples, in the examples' order, filtered by `show` (SHOW_CHOICES)."""
    selected = run.results.filter(example__isnull=False).select_related("example").order_by("example_id")
    answered = Q(status=ResultStatus.DONE, violation__isnull=False)
    if show == "right":
        return selected.filter(answered, violation=F("example__violation"))
    if show == "wrong":
        return selected.filter(answered).exclude(violation=F("example__violation"))
    if show == "none":
        return selected.exclude(status__in=[ResultStatus.DONE, ResultStatus.QUEUED, ResultStatus.RUNNING])
    return selected
