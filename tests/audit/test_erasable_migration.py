"""audit.0003: the events written before it are re-chained over their payload digests, which anyone can
recompute from an export; a chain already broken is refused rather than re-hashed into looking intact."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from audit import chain
from audit.models import AuditEvent

BEFORE = [("audit", "0002_hash_chain")]
TABLE = AuditEvent._meta.db_table
INSERT = (f"INSERT INTO {TABLE} (actor_name, action, object_type, object_id, object_repr, before, after, "
          "created_at) VALUES ('system:test', %s, 'test.thing', '1', 'thing', NULL, %s::jsonb, now())")


def _migrate(targets=None) -> None:
    """Migrate the audit app to `targets` (default: its newest migration, where the other tests need it)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes("audit"))


def _old_events(*afters: dict) -> list[str]:
    """Events written under 0002's chain; their hashes."""
    with connection.cursor() as cursor:
        for n, after in enumerate(afters):
            cursor.execute(INSERT, [f"test.event_{n}", json.dumps(after)])
        cursor.execute(f"SELECT hash FROM {TABLE} ORDER BY seq")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_existing_events_are_rechained_over_digests_an_export_can_recompute():
    _migrate(BEFORE)
    try:
        old_hashes = _old_events({"note": "émoji ✓"}, {"n": 2})
    finally:
        _migrate()

    assert chain.verify().ok
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2] and [e.hash for e in events] != old_hashes
    first = events[0]
    # [before::text, after::text] as Python writes it: the digest needs no database to check.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT after::text FROM {TABLE} WHERE id = %s", [first.pk])
        [after_text] = cursor.fetchone()
    expected = hashlib.sha256(json.dumps([None, after_text], ensure_ascii=False).encode()).hexdigest()
    assert first.payload_digest == expected
    assert first.after == {"note": "émoji ✓"} and first.erased_at is None


@pytest.mark.django_db(transaction=True)
def test_a_chain_broken_before_the_migration_is_not_rechained():
    _migrate(BEFORE)
    try:
        _old_events({"n": 1}, {"n": 2})
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_append_only")
            cursor.execute(f"UPDATE {TABLE} SET after = '{{\"n\": 9}}'::jsonb WHERE seq = 2")
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER audit_event_append_only")
        with pytest.raises(DatabaseError, match="broken at seq 2"):
            _migrate()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {TABLE}")
            cursor.execute("UPDATE audit_chainhead SET seq = 0, hash = repeat('0', 64)")
        _migrate()
    assert not AuditEvent.objects.exists()
