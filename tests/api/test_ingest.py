"""Ingestion's audit trail: one event per new item, naming its routes."""

from __future__ import annotations

from api import ingest
from audit.models import AuditEvent
from console.intake import clean_item_input


def test_ingesting_writes_one_audit_event_per_new_item_naming_its_routes(acme, spam):
    client, _ = acme
    submissions = [
        ingest.Submission(clean_item_input(kind="message", source="acme", external_id=f"s-{i}", content="hi"),
                            [spam])
        for i in range(3)
    ]
    ingest.ingest(client=client, submissions=submissions)
    ingest.ingest(client=client, submissions=submissions)
    events = AuditEvent.objects.filter(action="item.created")
    assert events.count() == 3
    assert {e.actor_name for e in events} == {"api:acme"}
    assert {e.after["client"] for e in events} == {"Acme"}
