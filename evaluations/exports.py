"""A run as files: its metrics as one JSON document, and every example's result as CSV rows (cells that
start like a formula are escaped, as the audit export's are)."""

from __future__ import annotations

import csv
import json
from collections.abc import Generator
from typing import Any

from console.spreadsheets import csv_cell
from evaluations.compare import outcome
from evaluations.models import EvaluationRun
from evaluations.scoring import run_metrics

RESULT_COLUMNS = (
    "example_id", "source_row", "content", "expected_label", "expected_violation", "expected_category",
    "status", "outcome", "label", "violation", "category", "rule_ids", "confidence", "parse_quality",
    "prompt_tokens", "completion_tokens", "latency_ms", "rationale", "reasoning", "error",
)


def metrics_document(run: EvaluationRun) -> dict[str, Any]:
    """What the run was and what it measured (a running run's metrics cover what it has classified)."""
    version = run.policy_version
    return {
        "run": run.pk,
        "status": run.status,
        "policy": version.policy.slug,
        "policy_version": version.number,
        "policy_version_status": version.status,
        "labeled_set": run.labeled_set.name if run.labeled_set_id else None,
        "labeled_set_id": run.labeled_set_id,
        "total": run.total,
        "note": run.note,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "estimate": run.estimate,
        "metrics": run.metrics or run_metrics(run),
    }


class _Echo:
    def write(self, value: str) -> str:
        return value


def _content(example: Any) -> str:
    if example.turns:
        return json.dumps(example.turns, ensure_ascii=False)
    return example.content


def result_rows(run: EvaluationRun) -> Generator[str]:
    """The CSV, a line at a time: the header, then one row per example of the run, in the set's order."""
    writer = csv.writer(_Echo())
    yield writer.writerow(RESULT_COLUMNS)
    results = run.results.filter(example__isnull=False).select_related("example").order_by("example_id")
    for result in results.iterator(chunk_size=2000):
        example = result.example
        cells = [
            example.pk, example.source_row, _content(example), example.label, example.violation, example.category,
            result.status, outcome(result, example), result.label, result.violation, result.category,
            " ".join(result.rule_ids or []), result.confidence, result.parse_quality, result.prompt_tokens,
            result.completion_tokens, result.latency_ms, result.rationale, result.reasoning, result.error,
        ]
        yield writer.writerow(["" if cell is None else csv_cell(cell) for cell in cells])
