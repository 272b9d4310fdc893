"""Evaluation runs through the reasoner's evaluation lane: queued, classified, finished with metrics."""

from __future__ import annotations

from collections import Counter

import pytest

from audit.models import AuditEvent
from console.models import Classification
from evaluations import runs
from evaluations.models import EvaluationResult, RunStatus
from evaluations.stats import Scored, binary_metrics, category_confusion, percentiles
from policies_app.demo import load_policy_text
from reasoner.pipeline import Pipeline, run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import make_item, make_labeled_set, make_policy

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    ("free money, click here", "1"),
    ("buy now, limited offer", "1"),
    ("lunch at noon?", "0"),
    ("see you tomorrow", "0"),
    ("cheap pills free money", "0"),  # labelled safe: the scripted engine calls it spam, a false positive
    ("hello #unparsable", "1"),  # no verdict
]


def _drain(batch_size: int = 64) -> None:
    while run_once(ScriptedEngine(), "w1", batch_size=batch_size):
        pass


def test_a_run_classifies_every_example_once_and_finishes_with_metrics_computed_from_its_results():
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, ROWS)

    run = runs.start_run(actor=None, labeled_set=labeled_set, version=version)
    assert run.total == 6 and run.results.filter(status="queued").count() == 6
    _drain()

    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    results = {r.example.content: r for r in run.results.select_related("example")}
    assert {r.status for r in results.values()} == {"done", "unparsable"}
    assert results["free money, click here"].violation is True
    assert "keyword rule matched free money" in results["free money, click here"].reasoning
    expected = binary_metrics([
        Scored(expected=r.example.violation, predicted=r.violation if r.status == "done" else None)
        for r in results.values()
    ])
    assert run.metrics["accuracy"] == expected["accuracy"]
    assert (run.metrics["tp"], run.metrics["fp"], run.metrics["fn"], run.metrics["tn"]) == (2, 1, 0, 2)
    assert run.metrics["unanswered"] == 1 and run.metrics["examples"] == 6
    assert run.metrics["precision"] == round(2 / 3, 4) and run.metrics["recall"] == 1.0
    assert AuditEvent.objects.filter(action="evaluation_run.finished", object_id=str(run.pk)).count() == 1
    assert EvaluationResult.objects.filter(run=run, attempts=1).count() == 6


def test_live_items_are_claimed_before_evaluation_results_whatever_their_age():
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [(f"message {n}", "0") for n in range(10)])
    runs.start_run(actor=None, labeled_set=labeled_set, version=version)
    live = [make_item(versions=[version], content=f"live {n}").classifications.get() for n in range(5)]

    batch = Pipeline(ScriptedEngine(), "w1", batch_size=8).claim()

    lanes = [row.lane for row in batch.sent]
    assert lanes[:5] == ["live"] * 5  # every live item first, then evaluation results fill the room
    assert lanes[5:] == ["evaluation"] * 3
    assert {row.id for row in batch.sent if row.lane == "live"} == {c.pk for c in live}


def test_while_live_traffic_flows_a_batch_takes_no_more_evaluation_results_than_the_evaluation_batch_size(settings):
    settings.SAFEGUARD_EVAL_BATCH_SIZE = 4
    version = make_policy()
    runs.start_run(actor=None, labeled_set=make_labeled_set(version.policy, [(f"m {n}", "0") for n in range(10)]),
                   version=version)

    batch = Pipeline(ScriptedEngine(), "w1", batch_size=64).claim()

    assert len(batch.sent) == 4


def test_once_live_traffic_is_quiet_an_evaluation_fills_whole_batches(settings):
    settings.SAFEGUARD_EVAL_BATCH_SIZE = 4
    settings.SAFEGUARD_EVAL_QUIET_S = 0.0
    version = make_policy()
    runs.start_run(actor=None, labeled_set=make_labeled_set(version.policy, [(f"m {n}", "0") for n in range(10)]),
                   version=version)

    batch = Pipeline(ScriptedEngine(), "w1", batch_size=8).claim()

    assert len(batch.sent) == 8


def test_cancelling_a_run_stops_it_and_keeps_metrics_of_what_was_classified():
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [(f"free money {n}", "1") for n in range(10)])
    run = runs.start_run(actor=None, labeled_set=labeled_set, version=version)
    run_once(ScriptedEngine(), "w1", batch_size=3)

    runs.cancel_run(actor=None, run=run)
    _drain()

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.results.filter(status="cancelled").count() == 7
    assert run.metrics["examples"] == 3 and run.metrics["recall"] == 1.0
    assert not Classification.objects.exists()


def test_a_run_of_another_policys_version_or_of_an_empty_set_is_refused():
    version, other = make_policy(), make_policy()
    labeled_set = make_labeled_set(version.policy, [("hello", "0")])
    empty = make_labeled_set(version.policy, [])

    with pytest.raises(runs.RunError, match="labelled for"):
        runs.start_run(actor=None, labeled_set=labeled_set, version=other)
    with pytest.raises(runs.RunError, match="no examples"):
        runs.start_run(actor=None, labeled_set=empty, version=version)


def test_the_database_aggregates_equal_the_same_metrics_computed_in_python_for_a_category_policy():
    version = make_policy(text=load_policy_text("spam-and-scams"), label_scheme="categories",
                          labels=["SP0", "SP2", "SP3", "SP4"], output_format="json")
    rows = [("free money, click here", "SP2"), ("buy now #label=SP3.a", "SP3"), ("hello", "SP0"),
            ("lunch #label=SP2.b", "SP0"), ("nothing #unparsable", "SP4"), ("see you", "SP0")]
    run = runs.start_run(actor=None, labeled_set=make_labeled_set(version.policy, rows), version=version)
    _drain()
    run.refresh_from_db()

    results = list(run.results.select_related("example"))
    scored = [Scored(expected=r.example.violation, predicted=r.violation if r.status == "done" else None,
                     expected_category=r.example.category, predicted_category=r.category or r.label) for r in results]
    assert run.metrics["confusion"] == category_confusion(scored)
    assert run.metrics["latency_ms"] == percentiles([r.latency_ms for r in results])
    assert run.metrics["completion_tokens_per_example"] == percentiles(
        [r.completion_tokens for r in results if r.completion_tokens is not None])
    assert run.metrics["rule_ids"] == dict(Counter(rule for r in results for rule in r.rule_ids).most_common())
    expected = binary_metrics(scored)
    assert {k: run.metrics[k] for k in expected} == expected
    assert run.metrics["category_accuracy"] == round(
        sum(s.predicted is not None and s.predicted_category == s.expected_category for s in scored) / len(scored), 4)
