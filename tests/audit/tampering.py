"""What someone who owns the audit table can do behind the console's back: set the append-only trigger
aside, change or remove events, and even re-hash the rest of the chain after a change."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from audit.models import AuditEvent

TABLE = AuditEvent._meta.db_table


def behind_the_trigger(*statements: tuple[str, Any]) -> None:
    """Run (sql, params) statements on the audit table with its UPDATE/DELETE-refusing trigger disabled
    (as its owner can)."""
    with connection.cursor() as cursor:
        # The test's transaction holds deferred foreign-key checks on the table; ALTER TABLE wants none.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_append_only")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER audit_event_append_only")
        cursor.execute("SELECT set_config('audit.chain_head', '', true)")  # as a forger's next transaction
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def alter(seq: int, **after: Any) -> None:
    behind_the_trigger((f"UPDATE {TABLE} SET after = %s::jsonb WHERE seq = %s", [json.dumps(after), seq]))


def delete(seq: int) -> None:
    behind_the_trigger((f"DELETE FROM {TABLE} WHERE seq = %s", [seq]))


def rewrite_from(seq: int, **after: Any) -> None:
    """Change event `seq` and re-hash it and every later event, and move the head: a consistent forgery
    that only a checkpoint taken earlier can catch."""
    rehash = f"""
        DO $$
        DECLARE event record; link text;
        BEGIN
            SELECT hash INTO link FROM {TABLE} WHERE seq = {seq - 1};
            link := coalesce(link, repeat('0', 64));
            FOR event IN SELECT * FROM {TABLE} WHERE seq >= {seq} ORDER BY seq LOOP
                UPDATE {TABLE} SET prev_hash = link,
                    payload_digest = audit_payload_digest(event.before, event.after),
                    hash = audit_event_digest(link, event.seq, event.actor_id, event.actor_name, event.action,
                                              event.object_type, event.object_id, event.object_repr,
                                              audit_payload_digest(event.before, event.after), event.created_at)
                WHERE id = event.id RETURNING hash INTO link;
            END LOOP;
            UPDATE audit_chainhead SET hash = link WHERE id = 1;
        END $$"""
    behind_the_trigger((f"UPDATE {TABLE} SET after = %s::jsonb WHERE seq = %s", [json.dumps(after), seq]),
                       (rehash, None))
