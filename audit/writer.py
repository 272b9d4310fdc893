"""The one way to write the audit trail: `record` (one event, through the ORM), `record_many` (one
INSERT for many events) and `insert_sql` (the same INSERT as SQL, for a writer that builds its event
rows in SQL, as the reasoner does). All three take the actor by the same rules (`actor_columns`).

Call them inside the transaction that makes the change, so the change and its event commit together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils import timezone

from audit.models import AuditEvent

REPR_LENGTH = 300  # AuditEvent.object_repr's max_length


def actor_columns(actor: Any, actor_name: str = "") -> tuple[int | None, str]:
    """(actor_id, actor_name) for `actor`: a signed-in user is linked and named by their username; anyone
    else (None, AnonymousUser) is a system process, named by `actor_name` or else "system"."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    return (user.pk if user else None), (actor_name or (user.get_username() if user else "system"))


def record(
    *,
    actor: Any,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_name: str = "",
) -> AuditEvent:
    """Append one event about `obj`. `actor` is a user, or None for a system process (named by actor_name)."""
    actor_id, name = actor_columns(actor, actor_name)
    return AuditEvent.objects.create(
        actor_id=actor_id,
        actor_name=name,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:REPR_LENGTH],
        before=before,
        after=after,
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of a `record_many` call: what happened to which object."""

    action: str
    object_id: str
    object_repr: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def entry(obj: models.Model, action: str, *, before: dict[str, Any] | None = None,
          after: dict[str, Any] | None = None) -> Entry:
    """The Entry for a model instance (its id and str())."""
    return Entry(action=action, object_id=str(obj.pk), object_repr=str(obj), before=before, after=after)


def insert_sql(source: str, *, action: str, object_id: str, object_repr: str, before: str, after: str,
               order_by: str = "") -> str:
    """INSERT INTO the audit table ... SELECT one event per row of `source` (a FROM clause).

    The other arguments are SQL expressions over `source`. The actor, object type and time are the
    parameters %(audit_actor_id)s, %(audit_actor_name)s, %(audit_object_type)s and %(audit_at)s:
    pass `sql_params(...)` with the statement.
    """
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    return (
        f"INSERT INTO {table} (actor_id, actor_name, action, object_type, object_id, object_repr, before, after, "
        f"created_at) SELECT %(audit_actor_id)s, %(audit_actor_name)s, {action}, %(audit_object_type)s, "
        f"{object_id}, left({object_repr}, {REPR_LENGTH}), {before}, {after}, %(audit_at)s FROM {source}"
        + (f" ORDER BY {order_by}" if order_by else "")
    )


def sql_params(*, actor: Any, object_type: str | type[models.Model], actor_name: str = "",
               at: datetime | None = None) -> dict[str, Any]:
    """The parameters an `insert_sql` statement needs: the actor (as `actor_columns` decides), the type of
    the objects (a model, or its label_lower), and the events' time (now, unless given)."""
    actor_id, name = actor_columns(actor, actor_name)
    if not isinstance(object_type, str):
        object_type = object_type._meta.label_lower
    return {"audit_actor_id": actor_id, "audit_actor_name": name, "audit_object_type": object_type,
            "audit_at": at or timezone.now()}


_MANY_SQL = insert_sql(
    "ROWS FROM (jsonb_to_recordset(%(audit_rows)s::jsonb) "
    "AS (action text, object_id text, object_repr text, before jsonb, after jsonb)) "
    "WITH ORDINALITY AS e(action, object_id, object_repr, before, after, n)",
    action="e.action", object_id="e.object_id", object_repr="e.object_repr", before="e.before", after="e.after",
    order_by="e.n",
)


def record_many(*, actor: Any, object_type: str | type[models.Model], entries: Sequence[Entry],
                actor_name: str = "", at: datetime | None = None) -> int:
    """Append many events about objects of one type in one INSERT (in the order given); how many."""
    if not entries:
        return 0
    rows = json.dumps([asdict(e) for e in entries], cls=DjangoJSONEncoder)
    params = {**sql_params(actor=actor, object_type=object_type, actor_name=actor_name, at=at), "audit_rows": rows}
    with connection.cursor() as cursor:
        cursor.execute(_MANY_SQL, params)
    return len(entries)
