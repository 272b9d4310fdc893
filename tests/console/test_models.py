from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, transaction

from audit.models import AuditEvent
from console.models import Classification, Item, Review
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db


def test_it_refuses_a_second_item_with_the_same_external_id_from_one_source():
    Item.objects.create(source="forum", external_id="42", content="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.create(source="forum", external_id="42", content="b")


def test_it_allows_the_same_external_id_from_two_sources_and_many_items_without_one():
    Item.objects.create(source="forum", external_id="42", content="a")
    Item.objects.create(source="chat", external_id="42", content="a")
    Item.objects.create(source="chat", content="no id 1")
    Item.objects.create(source="chat", content="no id 2")
    assert Item.objects.count() == 4


def test_it_refuses_a_message_without_content_and_a_conversation_without_turns():
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.create(source="forum", kind="message", content="")
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.create(source="forum", kind="conversation", turns=None)


def test_it_classifies_an_item_at_most_once_per_policy_version_and_stage():
    version = make_policy()
    item = make_item(versions=[version])
    assert item.classifications.count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Classification.objects.create(item=item, policy_version=version, stage="reasoner")
    Classification.objects.create(item=item, policy_version=version, stage="fast")
    assert item.classifications.count() == 2


def test_it_never_stores_a_verdict_for_a_classification_without_an_answer():
    item = make_item(versions=[make_policy()])
    classification = item.classifications.get()
    classification.status = "unparsable"
    classification.violation = False
    with pytest.raises(IntegrityError), transaction.atomic():
        classification.save()


def test_it_refuses_an_override_without_a_reason(moderator):
    item = make_item(versions=[make_policy()])
    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(
            classification=item.classifications.get(), decision="override", label="1", reviewer=moderator
        )


def test_audit_events_cannot_be_changed_or_deleted_even_in_sql():
    make_item()
    event = AuditEvent.objects.filter(action="item.created").get()
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "item.created"
