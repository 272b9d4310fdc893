"""`manage.py evaluate`: a run through the reasoner, waited for, its metrics printed (or one JSON object)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from evaluations.models import EvaluationRun
from policies_app import services as policy_services
from tests.factories import POLICY_TEXT, make_labeled_set, make_policy
from tests.reasoner.processes import start_worker, stop

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [("win a giveaway #if=giveaway", "1"), ("free money", "1"), ("lunch?", "0"), ("see you", "0")]


@pytest.fixture
def versions(settings):
    settings.SAFEGUARD_BACKEND = "scripted"
    published = make_policy()
    draft = policy_services.save_version(actor=None, policy=published.policy, base_number=published.number,
                                         text=POLICY_TEXT + "\n- SP2.b A giveaway.", label_scheme="binary", labels=[],
                                         output_format="binary", reasoning_effort="medium", change_note="giveaways")
    make_labeled_set(published.policy, ROWS, name="golden")
    return published, draft


def _evaluate(*args: str) -> str:
    out = io.StringIO()
    call_command("evaluate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_json_output_is_one_object_with_the_metrics_of_the_run(versions):
    published, _ = versions

    report = json.loads(_evaluate(published.policy.slug, "golden", "--version", "1", "--inline", "--json"))

    run = EvaluationRun.objects.get(pk=report["run"])
    assert report["status"] == "done" and report["version"] == 1
    assert {key: report[key] for key in ("examples", "accuracy", "precision", "recall", "f1", "unparsable")} == {
        key: run.metrics[key] for key in ("examples", "accuracy", "precision", "recall", "f1", "unparsable")}
    assert (report["examples"], report["recall"], report["precision"]) == (4, 0.5, 1.0)


def test_compare_measures_the_baseline_once_and_reports_the_flip(versions):
    published, draft = versions

    first = json.loads(_evaluate(published.policy.slug, "golden", "--compare", "1", "--inline", "--json"))
    second = json.loads(_evaluate(published.policy.slug, "golden", "--compare", "1", "--inline", "--json"))

    assert first["version"] == draft.number and first["recall"] == 1.0
    assert first["compare"]["wrong_to_right"] == 1 and first["compare"]["right_to_wrong"] == 0
    assert "Not significant" in first["compare"]["verdict"]
    # The finished run of version 1 was reused the second time: three runs in all, not four.
    assert second["compare"]["baseline_run"] == first["compare"]["baseline_run"]
    assert EvaluationRun.objects.count() == 3


def test_the_text_report_shows_intervals_and_the_comparison(versions):
    published, _ = versions

    text = _evaluate(published.policy.slug, "golden", "--compare", "1", "--inline")

    assert "recall     1.000" in text and "95% CI" in text
    assert "1 flipped (1 wrong to right, 0 right to wrong)" in text


def test_an_unknown_set_or_version_is_refused_with_what_exists(versions):
    published, _ = versions
    with pytest.raises(CommandError, match="no labelled set 'nope' \\(its sets: 'golden'\\)"):
        _evaluate(published.policy.slug, "nope", "--inline")
    with pytest.raises(CommandError, match="has no version 9"):
        _evaluate(published.policy.slug, "golden", "--version", "9", "--inline")


@pytest.mark.e2e
def test_without_inline_it_waits_for_a_running_worker(versions, tmp_path):
    published, _ = versions
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        report = json.loads(_evaluate(published.policy.slug, "golden", "--version", "1", "--json", "--timeout", "60"))
    finally:
        assert stop(worker) == 0, log.read_text()[-3000:]
    assert report["status"] == "done" and report["examples"] == 4


def test_with_runs_adds_the_multi_policy_exact_match(versions):
    published, _ = versions
    other = make_policy(name="Other policy")
    make_labeled_set(other.policy, ROWS, name="golden")
    first = json.loads(_evaluate(other.policy.slug, "golden", "--inline", "--json"))

    report = json.loads(_evaluate(published.policy.slug, "golden", "--version", "1", "--inline", "--json",
                                  "--with-runs", str(first["run"])))

    assert report["multi_policy"]["examples"] == 4
    assert report["multi_policy"]["exact_match"] == 0.75  # the giveaway example is missed under both
