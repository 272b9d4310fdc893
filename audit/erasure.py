"""Erasing audit payloads: the one change a stored event allows. The database function
`audit_erase_payloads` (migration 0003, SECURITY DEFINER, so a role that may only INSERT into the trail
can call it) replaces the events' before/after by ERASED_MARKER, keeps every hashed column and the
payload's digest, and appends one chained `audit.payloads_erased` event naming the seqs it erased."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection, models

from audit.writer import REPR_LENGTH, actor_columns


def erase_payloads(*, event_ids: Iterable[int], actor: Any, obj: models.Model, actor_name: str = "") -> int:
    """Erase the payloads of these events (those not erased already) for `obj`, the request that asks for
    it; how many were erased. Call it inside the transaction that erases the rest."""
    ids = sorted(set(event_ids))
    if not ids:
        return 0
    actor_id, name = actor_columns(actor, actor_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_erase_payloads(%s::bigint[], %s, %s, %s, %s, %s)",
                       [ids, actor_id, name, obj._meta.label_lower, str(obj.pk), str(obj)[:REPR_LENGTH]])
        return cursor.fetchone()[0]
