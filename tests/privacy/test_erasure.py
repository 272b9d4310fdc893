"""Erasure: an item's text goes from every table (the audit trail's payloads included) while its
decisions, actions, statements and the audit chain stay, and the chain still catches tampering."""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError, connection, transaction

from api.models import WebhookDelivery
from audit import chain
from audit.models import ERASED_MARKER, ERASURE_ACTION, AuditEvent
from console.models import Item, Review
from enforcement.models import Action, Statement
from evaluations import sets
from evaluations.models import EvaluationResult
from privacy import erasure
from privacy.models import Erasure
from privacy.redaction import marker
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.audit import tampering
from tests.factories import make_item, make_policy
from tests.privacy.erasing import item_with_copies, tables_holding

pytestmark = pytest.mark.django_db

SECRET = "Zorblax7731"
NEIGHBOUR = "Quimbly4402"


@pytest.fixture(autouse=True)
def _local_webhooks(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


def _state(item: Item) -> dict:
    """What was decided about the item: labels, decisions, actions and statements' other fields."""
    action = Action.objects.select_related("statement").get(item=item)
    statement = action.statement
    return {
        "labels": sorted(item.classifications.values_list("stage", "label", "violation", "category")),
        "reviews": sorted(Review.objects.filter(classification__item=item).values_list("decision", "label")),
        "action": (action.action, action.decided_code, action.violation, action.duration_days),
        "statement": (statement.puid, statement.decision_ground, statement.ground, statement.cited_rules,
                      statement.category, statement.automated_decision, statement.withdrawn_at),
    }


def test_an_erasure_by_item_id_redacts_every_copy_and_keeps_the_decisions(moderator,
                                                                           django_capture_on_commit_callbacks):
    verdict = item_with_copies(django_capture_on_commit_callbacks, moderator, SECRET)
    neighbour = item_with_copies(django_capture_on_commit_callbacks, moderator, NEIGHBOUR,
                                 version=verdict.policy_version)
    item = verdict.item
    golden, _ = sets.golden_set_from_reviews(actor=None, policy=verdict.policy_version.policy, name="Golden")
    assert WebhookDelivery.objects.filter(item=item).exists()
    before = _state(item)
    holding = tables_holding(SECRET)
    assert {"console_item", "console_classification", "console_review", "console_comment",
            "enforcement_statement", "api_webhookdelivery", "console_auditevent", "evaluations_example"} <= holding
    shadow_result = EvaluationResult.objects.get(item=item)
    assert shadow_result.reasoning and shadow_result.raw_output  # the scripted model's own words

    record, created = erasure.erase_item(item_id=item.pk, actor=None, actor_name="api:test")

    assert created
    assert tables_holding(SECRET) == set()
    assert tables_holding(NEIGHBOUR) == holding  # the other item is untouched
    item.refresh_from_db()
    text = marker()
    assert item.content == text and item.metadata == {"author": text, "lang": text}
    assert Statement.objects.get(action__item=item).facts == text
    shadow_result.refresh_from_db()
    assert (shadow_result.reasoning, shadow_result.raw_output) == (text, text)
    assert _state(item) == before
    assert (item.source, item.external_id) == ("shop", verdict.item.external_id)
    assert record.counts["console.item.content"] == 1 and record.counts["console.review.reason"] == 1
    assert record.counts["enforcement.statement.facts"] == 1 and record.counts["api.webhookdelivery.payload"] == 1
    assert record.counts["audit.auditevent.payload"] > 0
    result = chain.verify()
    assert result.ok, result
    # Every erased event is named by the erasure's own event; the request's event holds counts, no text.
    erased = AuditEvent.objects.filter(erased_at__isnull=False)
    assert erased.count() == record.counts["audit.auditevent.payload"]
    assert all((e.before, e.after) == (ERASED_MARKER, ERASED_MARKER) for e in erased)
    claim = AuditEvent.objects.get(action=ERASURE_ACTION)
    assert sorted(claim.after["seqs"]) == sorted(erased.values_list("seq", flat=True))
    assert (claim.object_type, claim.object_id) == ("privacy.erasure", str(record.pk))
    filed = AuditEvent.objects.get(action="privacy.item_erased")
    assert filed.after["counts"] == record.counts and filed.after["item"] == item.pk
    assert neighbour.item.content == Item.objects.get(pk=neighbour.item_id).content
    assert golden.examples.count() == 2 and record.counts["evaluations.example.content"] == 1


def test_an_erasure_by_source_and_external_id_finds_the_item_and_a_repeat_changes_nothing(
        moderator, django_capture_on_commit_callbacks):
    verdict = item_with_copies(django_capture_on_commit_callbacks, moderator, SECRET, external_id="post-77")
    item = erasure.find_item(source="shop", external_id="post-77")
    assert item.pk == verdict.item_id

    first, created = erasure.erase_item(item_id=item.pk, actor=moderator)
    events = AuditEvent.objects.count()
    again, created_again = erasure.erase_item(item_id=item.pk, actor=moderator)

    assert created and not created_again and again.pk == first.pk
    assert AuditEvent.objects.count() == events
    assert Erasure.objects.get().requested_via == moderator.username
    assert tables_holding(SECRET) == set()
    assert chain.verify().ok


@pytest.mark.parametrize(("lookup", "field"), [
    ({}, "item_id"),
    ({"item_id": "seven"}, "item_id"),
    ({"item_id": 999999}, "item_id"),
    ({"external_id": "nope"}, "source"),
    ({"external_id": "nope", "source": "shop"}, "external_id"),
])
def test_a_bad_request_names_the_field_and_erases_nothing(lookup, field):
    with pytest.raises(erasure.ErasureError) as refused:
        erasure.find_item(**lookup)
    assert refused.value.field == field
    assert not Erasure.objects.exists()


def _erased(moderator, capture):
    verdict = item_with_copies(capture, moderator, SECRET)
    erasure.erase_item(item_id=verdict.item_id, actor=None, actor_name="api:test")
    return AuditEvent.objects.filter(erased_at__isnull=False).order_by("seq").first()


def test_the_chain_still_catches_a_hashed_column_changed_on_an_erased_event(moderator,
                                                                             django_capture_on_commit_callbacks):
    event = _erased(moderator, django_capture_on_commit_callbacks)
    tampering.behind_the_trigger((f"UPDATE {tampering.TABLE} SET action = 'review.approve' WHERE seq = %s",
                                  [event.seq]))

    result = chain.verify()
    assert not result.ok and result.broken_seq == event.seq
    assert "content does not match its hash" in result.problem


def test_the_chain_catches_a_payload_slipped_into_an_erased_event(moderator, django_capture_on_commit_callbacks):
    event = _erased(moderator, django_capture_on_commit_callbacks)
    tampering.behind_the_trigger((f"UPDATE {tampering.TABLE} SET after = %s::jsonb WHERE seq = %s",
                                  [json.dumps({"reason": "made up"}), event.seq]))

    result = chain.verify()
    assert not result.ok and result.broken_seq == event.seq
    assert "holds a payload other than the erasure marker" in result.problem


def test_the_chain_catches_an_event_marked_erased_that_no_erasure_named(moderator,
                                                                        django_capture_on_commit_callbacks):
    _erased(moderator, django_capture_on_commit_callbacks)
    kept = AuditEvent.objects.filter(erased_at__isnull=True, action="policy.created").get()
    # Hiding a change to a payload by calling the event erased.
    tampering.behind_the_trigger((f"UPDATE {tampering.TABLE} SET before = %s::jsonb, after = %s::jsonb, "
                                  "erased_at = now() WHERE seq = %s",
                                  [json.dumps(ERASED_MARKER), json.dumps(ERASED_MARKER), kept.seq]))

    result = chain.verify()
    assert not result.ok and result.broken_seq == kept.seq
    assert "no later audit.payloads_erased event names it" in result.problem


def test_the_chain_catches_a_tampered_payload_of_an_event_not_erased(moderator, django_capture_on_commit_callbacks):
    _erased(moderator, django_capture_on_commit_callbacks)
    kept = AuditEvent.objects.filter(erased_at__isnull=True).order_by("seq").last()
    tampering.alter(kept.seq, counts={"console.item.content": 0})

    result = chain.verify()
    assert not result.ok and result.broken_seq == kept.seq
    assert "before/after differ from their digest" in result.problem


def _refused(sql: str, params: list) -> str:
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(refused.value)


def test_the_trail_refuses_every_other_change_even_an_erasure_shaped_one_outside_the_function(
        moderator, django_capture_on_commit_callbacks):
    event = _erased(moderator, django_capture_on_commit_callbacks)
    table = tampering.TABLE
    kept = AuditEvent.objects.filter(erased_at__isnull=True).order_by("seq").first()
    marker_json = json.dumps(ERASED_MARKER)

    assert "append-only" in _refused(f"UPDATE {table} SET before = %s::jsonb, after = %s::jsonb, erased_at = now() "
                                     "WHERE seq = %s", [marker_json, marker_json, kept.seq])
    assert "append-only" in _refused(f"UPDATE {table} SET erased_at = NULL WHERE seq = %s", [event.seq])
    assert "append-only" in _refused(f"DELETE FROM {table} WHERE seq = %s", [event.seq])
    claim = AuditEvent.objects.get(action=ERASURE_ACTION)
    with connection.cursor() as cursor:  # the erasure's own record is never erased
        cursor.execute("SELECT audit_erase_payloads(%s::bigint[], NULL, 'x', 'x', 'x', 'x')", [[claim.pk]])
        assert cursor.fetchone()[0] == 0
    assert chain.verify().ok


def test_model_work_still_queued_on_the_item_is_stopped_so_nothing_reads_it_later():
    version = make_policy()
    item = make_item(versions=[version], content=f"queued text by {SECRET}")
    assert item.classifications.get().status == "queued"

    record, _ = erasure.erase_item(item_id=item.pk, actor=None, actor_name="api:test")

    assert run_once(ScriptedEngine(), "w1") == 0
    classification = item.classifications.get()
    assert (classification.status, classification.error, classification.queue) == ("failed", marker(), None)
    assert record.counts["console.classification.stopped"] == 1
    assert tables_holding(SECRET) == set()
    assert chain.verify().ok


def test_erasing_an_item_that_is_gone_names_the_field():
    with pytest.raises(erasure.ErasureError) as refused:
        erasure.erase_item(item_id=999999, actor=None, actor_name="api:test")
    assert refused.value.field == "item_id"
    assert not Erasure.objects.exists()
