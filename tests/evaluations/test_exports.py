"""A run's exports: its metrics as JSON and every example's result as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from evaluations.exports import RESULT_COLUMNS
from tests.evaluations.running import finished_run
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    ("free money, click here", "1"),
    ("lunch at noon?", "1"),  # the model says safe: wrong
    ("=HYPERLINK(\"http://evil.example\") free money", "0"),  # a formula, and a false positive
    ("hello #unparsable", "0"),
]


def _csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_metrics_export_is_the_runs_metrics_with_what_the_run_was(writer_client):
    version = make_policy(name="Spam")
    labeled_set = make_labeled_set(version.policy, ROWS, name="Spam checks")
    run = finished_run(labeled_set, version, note="baseline")

    response = writer_client.get(reverse("evaluations:metrics-json", args=[run.pk]))

    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-metrics.json"'
    document = json.loads(response.content)
    assert document["metrics"] == json.loads(json.dumps(run.metrics))
    assert {k: document[k] for k in ("run", "status", "policy", "policy_version", "labeled_set", "total", "note")} == {
        "run": run.pk, "status": "done", "policy": version.policy.slug, "policy_version": 1,
        "labeled_set": "Spam checks", "total": 4, "note": "baseline"}
    metrics = document["metrics"]
    # Computed here: answered 3 (tp 1: row 1; fn 1: row 2; fp 1: row 3), one without a verdict.
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"]) == (1, 1, 1, 0)
    assert metrics["accuracy"] == round(1 / 3, 4) and metrics["strict_accuracy"] == 0.25
    assert metrics["unanswered"] == 1


def test_the_results_export_has_a_row_per_example_and_escapes_formulas(writer_client):
    version = make_policy()
    run = finished_run(make_labeled_set(version.policy, ROWS), version)

    response = writer_client.get(reverse("evaluations:results-csv", args=[run.pk]))

    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-results.csv"'
    rows = _csv(response)
    assert tuple(rows[0].keys()) == RESULT_COLUMNS
    assert [(r["expected_label"], r["status"], r["outcome"], r["label"]) for r in rows] == [
        ("1", "done", "right", "1"),
        ("1", "done", "wrong", "0"),
        ("0", "done", "wrong", "1"),
        ("0", "unparsable", "none", ""),
    ]
    assert rows[2]["content"] == "'=HYPERLINK(\"http://evil.example\") free money"
    assert rows[0]["content"] == "free money, click here"
    assert "keyword rule matched free money" in rows[0]["reasoning"]
    assert rows[0]["prompt_tokens"].isdigit() and rows[0]["parse_quality"] == "clean"
