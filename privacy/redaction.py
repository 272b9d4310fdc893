"""How text is redacted, the same way for retention and for erasure: a fixed marker, "[erased on
<date>]", where the text was (a column that must stay non-empty stays valid; an empty one stays empty),
so a page shows that something was removed, and a redacted row is recognised and not redacted again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from console.models import Item

MARKER_PREFIX = "[erased on "
# Shorter erased texts are replaced where a copy equals them, longer ones also where a copy contains them
# (a statement's facts quote the rationale): a two-letter text would otherwise mark half a payload.
CONTAINED_MIN_LENGTH = 12


def marker(on: date | None = None) -> str:
    return f"{MARKER_PREFIX}{(on or timezone.localdate()).isoformat()}]"


def is_redacted(text: str) -> bool:
    return text.startswith(MARKER_PREFIX)


# One statement for any number of items. A conversation's turns keep their roles and get the marker as
# content; metadata keeps its keys (what the platform sent) and loses their values; the content column
# takes the marker for every kind, which is how a redacted item is recognised.
_CONTENT_SQL = """
UPDATE {item} SET
    content = %(marker)s,
    turns = CASE
        WHEN turns IS NULL THEN NULL
        WHEN jsonb_typeof(turns) <> 'array' THEN '[]'::jsonb
        ELSE (SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(t) = 'object'
                                             THEN t || jsonb_build_object('content', %(marker)s::text)
                                             ELSE to_jsonb(%(marker)s::text) END ORDER BY n), '[]'::jsonb)
              FROM jsonb_array_elements(turns) WITH ORDINALITY AS x(t, n))
    END,
    metadata = CASE
        WHEN jsonb_typeof(metadata) = 'object'
            THEN (SELECT coalesce(jsonb_object_agg(k, %(marker)s::text), '{{}}'::jsonb)
                  FROM jsonb_object_keys(metadata) AS k)
        ELSE '{{}}'::jsonb
    END
WHERE id = ANY(%(ids)s) AND content NOT LIKE %(prefix)s
"""


def redact_content(item_ids: Iterable[int], text: str) -> int:
    """Replace the content, turns and metadata values of these items (those not redacted yet) by `text`;
    how many items changed."""
    ids = list(item_ids)
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_CONTENT_SQL.format(item=connection.ops.quote_name(Item._meta.db_table)),
                       {"marker": text, "ids": ids, "prefix": MARKER_PREFIX + "%"})
        return cursor.rowcount


def redact_column(rows: QuerySet[Any], column: str, text: str) -> int:
    """Replace `column` by `text` in these rows where it holds something not yet redacted; how many."""
    return rows.exclude(**{column: ""}).exclude(**{f"{column}__startswith": MARKER_PREFIX}).update(**{column: text})


def redact_json(value: Any, erased: set[str], text: str) -> Any:
    """`value` (a stored JSON document) with every string that is, or contains, one of the `erased` texts
    replaced by `text`; keys are kept."""
    if isinstance(value, dict):
        return {key: redact_json(v, erased, text) for key, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v, erased, text) for v in value]
    if isinstance(value, str) and value and (value in erased or any(
            len(e) >= CONTAINED_MIN_LENGTH and e in value for e in erased)):
        return text
    return value
