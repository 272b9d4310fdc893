"""The demo's workbench: a labelled set and a finished comparison of two versions, from hand-written answers."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from demo.management.commands import seed_demo
from evaluations.compare import compare_runs
from evaluations.models import EvaluationResult, EvaluationRun, LabeledSet

pytestmark = pytest.mark.django_db(transaction=True)  # runs finish when their last results commit


def test_the_demo_holds_a_labelled_set_and_two_finished_runs_whose_comparison_shows_the_revision(settings):
    settings.SAFEGUARD_BACKEND = ""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    labeled_set = LabeledSet.objects.get(policy__slug="harassment-and-bullying")
    first, second = EvaluationRun.objects.filter(labeled_set=labeled_set).order_by("policy_version__number")
    assert (first.status, second.status) == ("done", "done")
    assert "24 demo evaluation answers stored" in out.getvalue()
    assert set(EvaluationResult.objects.values_list("model_name", flat=True)) == {seed_demo.DEMO_MODEL}
    comparison = compare_runs(first, second)
    # Version 2 says quoting abuse in a report is safe: the three quoting reports flip to right.
    assert (comparison.wrong_to_right, comparison.right_to_wrong) == (3, 0)
    assert all("Report" in f.example.content or "mods" in f.example.content or "quoting" in f.example.content
               for f in comparison.flips)
    assert second.metrics["accuracy"] == 1.0 and first.metrics["accuracy"] == 0.75


def test_seeding_again_adds_no_set_and_no_run(settings):
    settings.SAFEGUARD_BACKEND = ""
    call_command("seed_demo", stdout=io.StringIO())
    before = (LabeledSet.objects.count(), EvaluationRun.objects.count(), EvaluationResult.objects.count())
    call_command("seed_demo", stdout=io.StringIO())
    assert (LabeledSet.objects.count(), EvaluationRun.objects.count(), EvaluationResult.objects.count()) == before
