"""One INSERT for many rows of a model: `bulk_insert`, the fast path of bulk ingestion (items, routes,
classifications).

The rows travel as one JSON document that PostgreSQL unpacks with json_to_recordset. That is several
times faster than bulk_create at 1,000 items a request (no model instances), and than array parameters
(psycopg quotes each array element in Python).
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()  # full precision (DjangoJSONEncoder would cut microseconds)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(rows: Any) -> str:
    """Rows as the JSON document a *_to_recordset statement reads; datetimes and dates in ISO format."""
    return json.dumps(rows, default=_json_default)


def bulk_insert(
    model: Any,
    columns: dict[str, list[Any]],
    *,
    constants: dict[str, Any] | None = None,
    conflict: str = "",
    returning: str = "",
) -> list[tuple[Any, ...]]:
    """INSERT ... SELECT FROM json_to_recordset(...) for `model`.

    `columns` maps field attnames ("item_id") to equal-length value lists; `constants` gives one value
    for every row; any other field takes its default as Model.save would, or for auto_now(_add) the
    transaction's now(). JSON fields take Python values. Returns the RETURNING rows, if asked.
    """
    constants = constants or {}
    if len({len(values) for values in columns.values()}) != 1:
        raise ValueError("bulk_insert: give at least one column, all of the same length")
    names: list[str] = []
    selects: list[str] = []
    params: list[Any] = []  # the constants' placeholders, in SELECT-list order; the rows come last
    record: list[str] = []  # the recordset's column definitions
    values: list[list[Any]] = []
    for field in model._meta.concrete_fields:
        name = field.attname
        db_type = "jsonb" if field.get_internal_type() == "JSONField" else field.db_type(connection)
        if getattr(field, "generated", False):  # computed by the database (GeneratedField)
            continue
        if name in columns:
            key = f"c{len(record) + 1}"
            record.append(f"{key} {db_type}")
            values.append(columns[name])
            selects.append(f"r.{key}")
        elif field.primary_key:
            continue
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            selects.append("now()")
        else:
            # As Model.save would: the field's default ("" for text fields without one), else NULL.
            value = constants[name] if name in constants else field.get_default()
            if value is None and not field.null:
                raise ValueError(f"bulk_insert: no value for {model.__name__}.{name}")
            if db_type == "jsonb" and value is not None:
                value = json.dumps(value)
            selects.append(f"%s::{db_type}")
            params.append(value)
        names.append(connection.ops.quote_name(field.column))
    keys = [f"c{i}" for i in range(1, len(record) + 1)]
    rows = dumps([dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)])
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(names)}) "
        f"SELECT {', '.join(selects)} FROM json_to_recordset(%s::json) AS r({', '.join(record)})"
        + (f" {conflict}" if conflict else "")
        + (f" RETURNING {returning}" if returning else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, rows])
        return cursor.fetchall() if returning else []
