"""`manage.py seed_demo`: the demo's users, policies, items and hand-written answers, idempotently."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from audit.models import AuditEvent
from console.models import Classification, Item, ReviewQueue
from demo.management.commands import seed_demo
from policies_app.models import Policy

pytestmark = pytest.mark.django_db


def _answers() -> dict[tuple[str, str], dict]:
    answers = json.loads(seed_demo.ANSWERS.read_text())
    return {(external_id, slug): answer for external_id, by_policy in answers.items()
            for slug, answer in by_policy.items()}


def _reasoner_rows() -> dict[tuple[str, str], Classification]:
    rows = Classification.objects.filter(stage="reasoner").select_related("item", "policy_version__policy")
    return {(c.item.external_id, c.policy_version.policy.slug): c for c in rows}


def _counts() -> tuple[int, ...]:
    return (get_user_model().objects.count(), Policy.objects.count(), Item.objects.count(),
            Classification.objects.count(), AuditEvent.objects.count())


def test_without_a_model_the_demo_items_get_the_hand_written_answers_through_the_reasoner(settings):
    settings.SAFEGUARD_BACKEND = ""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    answers, rows = _answers(), _reasoner_rows()
    assert f"{len(answers)} demo verdicts stored" in out.getvalue()
    assert answers and set(answers) <= set(rows)
    for key, row in rows.items():
        if key not in answers:
            assert row.status == "queued"  # left for a real model: the demo shows that state too
            continue
        final = answers[key]["final"]
        assert row.model_name == seed_demo.DEMO_MODEL
        assert row.reasoning.strip() == answers[key]["analysis"].strip()
        assert row.finished_at is not None
        if final is None:
            assert (row.status, row.queue) == ("truncated", ReviewQueue.NO_VERDICT)
        elif row.status == "done":
            assert set(row.rule_ids) <= set(row.policy_version.rule_ids)
            assert row.needs_review == (row.violation is not False or (row.confidence or 1) < 0.5)
        else:  # an unreadable or self-contradicting answer is never "safe": it waits for a person
            assert row.status in ("unparsable", "conflicting")
            assert (row.violation, row.queue, row.parse_quality) == (None, ReviewQueue.NO_VERDICT, row.status)
            assert row.error
    statuses = {row.status for row in rows.values()}
    assert {"done", "unparsable", "conflicting", "truncated", "queued"} <= statuses
    qualities = {row.parse_quality for row in rows.values() if row.status == "done"}
    assert qualities == {"clean", "recovered"}  # one answer echoes its instruction and is still read
    assert Classification.objects.filter(queue=ReviewQueue.REVIEW).exists()
    stored = AuditEvent.objects.filter(actor_name="system:demo-answers", action="classification.done")
    assert stored.count() == sum(row.status == "done" for row in rows.values())


def test_seeding_again_changes_nothing(settings):
    settings.SAFEGUARD_BACKEND = ""
    call_command("seed_demo", stdout=io.StringIO())
    before = _counts()
    call_command("seed_demo", stdout=io.StringIO())
    assert _counts() == before


def test_with_a_model_configured_the_model_classifies_the_demo_items(settings):
    settings.SAFEGUARD_BACKEND = "openai"
    call_command("seed_demo", stdout=io.StringIO())
    assert {row.status for row in _reasoner_rows().values()} == {"queued"}
    assert not Classification.objects.filter(model_name=seed_demo.DEMO_MODEL).exists()
