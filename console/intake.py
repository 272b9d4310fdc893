"""Intake: how items enter the console. `clean_item_input` checks what a client sent, `create_items_bulk`
stores items (one INSERT, audited, announced to open queue pages) and `submit_item` stores one item
queued for the reasoner under given policy versions, without a first pass (the demo data, the bench).
The API's ingestion (`api.ingest`) adds first-pass routing on top of `create_items_bulk`.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from audit.writer import Entry, record_many
from console import broadcast, wakeup
from console.bulk_insert import bulk_insert
from console.models import Classification, Item, ItemKind, Stage


class SubmitError(ValueError):
    """Refused input; `field` names the offending field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def clean_item_input(
    *, kind: str, source: str, external_id: str = "", content: str = "", turns: Any = None, metadata: Any = None
) -> dict[str, Any]:
    """Validate what a client sent for one item, naming the field at fault."""
    if kind not in ItemKind.values:
        raise SubmitError(f"kind must be one of {', '.join(ItemKind.values)}", "kind")
    if not isinstance(source, str) or not source.strip() or len(source) > 100:
        raise SubmitError("source must be a non-empty string of at most 100 characters", "source")
    if not isinstance(external_id, str) or len(external_id) > 200:
        raise SubmitError("external_id must be a string of at most 200 characters", "external_id")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise SubmitError("metadata must be an object", "metadata")
    if kind == ItemKind.CONVERSATION:
        if content:
            raise SubmitError("a conversation carries turns, not content", "content")
        if not isinstance(turns, list) or not turns:
            raise SubmitError("a conversation needs a non-empty list of turns", "turns")
        for i, turn in enumerate(turns):
            if (
                not isinstance(turn, dict)
                or set(turn) - {"role", "content"}
                or not isinstance(turn.get("role"), str)
                or not turn["role"].strip()
                or not isinstance(turn.get("content"), str)
            ):
                raise SubmitError("each turn is an object with a role and a content string", f"turns[{i}]")
        turns = [{"role": t["role"].strip(), "content": t["content"]} for t in turns]
        content = ""
    else:
        if turns is not None:
            raise SubmitError(f"a {kind} carries content, not turns", "turns")
        if not isinstance(content, str) or not content.strip():
            raise SubmitError("content must be a non-empty string", "content")
    return {
        "kind": kind,
        "source": source.strip(),
        "external_id": external_id.strip(),
        "content": content,
        "turns": turns,
        "metadata": metadata,
    }


@transaction.atomic
def submit_item(*, actor: Any, versions: list[Any], actor_name: str = "", **fields: Any) -> tuple[Item, bool]:
    """Store one item and queue it for the reasoner under each given published policy version.

    Idempotent on (source, external_id): a repeat returns the stored item and `False`, queueing nothing.
    """
    [(pk, created)] = create_items_bulk(actor=actor, actor_name=actor_name, items=[clean_item_input(**fields)])
    item = Item.objects.get(pk=pk)
    if created and versions:
        Classification.objects.bulk_create(
            [Classification(item=item, policy_version=v, stage=Stage.REASONER) for v in versions]
        )
        transaction.on_commit(wakeup.wake_reasoner)
    return item, created


@transaction.atomic
def create_items_bulk(
    *, actor: Any, actor_name: str, items: list[dict[str, Any]], audit_after: list[dict[str, Any]] | None = None
) -> list[tuple[int, bool]]:
    """Store many cleaned items (`clean_item_input` output) with one INSERT and one audit event each, and
    tell the open queue pages once they commit. Every way in (the API's `ingest`, `submit_item`) stores
    its items here.

    Idempotent on (source, external_id): an item already stored (or repeated earlier in the same list)
    is not stored again. Returns (item id, created) for each input, in order. `audit_after[i]` is merged
    into the audit event of item i when it is created. Queues nothing: the caller adds classifications
    for the created items in the same transaction.
    """
    if not items:
        return []
    first_at: dict[tuple[str, str], int] = {}
    unique: list[int] = []  # indexes of the items to insert: first of each (source, external_id)
    for index, data in enumerate(items):
        key = (data["source"], data["external_id"])
        if data["external_id"] and key in first_at:
            continue
        first_at.setdefault(key, index)
        unique.append(index)
    # Ids come from the sequence up front, so each input knows its row without relying on RETURNING order.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Item._meta.db_table, len(unique)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    rows = [items[i] for i in unique]
    inserted = {
        pk
        for (pk,) in bulk_insert(
            Item,
            {
                "id": ids,
                "kind": [d["kind"] for d in rows],
                "source": [d["source"] for d in rows],
                "external_id": [d["external_id"] for d in rows],
                "content": [d["content"] for d in rows],
                "turns": [d["turns"] for d in rows],
                "metadata": [d["metadata"] for d in rows],
            },
            conflict="ON CONFLICT DO NOTHING",
            returning="id",
        )
    }
    result: dict[int, tuple[int, bool]] = {}
    clashed: dict[tuple[str, str], list[int]] = {}
    for index, pk in zip(unique, ids, strict=True):
        if pk in inserted:
            result[index] = (pk, True)
        else:
            key = (items[index]["source"], items[index]["external_id"])
            clashed.setdefault(key, []).append(index)
    if clashed:
        sources = {source for source, _ in clashed}
        existing = Item.objects.filter(
            source__in=sources, external_id__in=[external_id for _, external_id in clashed]
        ).values_list("source", "external_id", "id")
        for source, external_id, pk in existing:
            for index in clashed.get((source, external_id), []):
                result[index] = (pk, False)
    for index, data in enumerate(items):
        if index not in result:
            first = first_at.get((data["source"], data["external_id"]))
            if first is None or first not in result:
                raise RuntimeError(f"item {index} was neither stored nor found")  # never silently dropped
            result[index] = (result[first][0], False)
    created = [i for i in unique if result[i][1]]
    record_many(
        actor=actor, actor_name=actor_name, object_type=Item,
        entries=[
            Entry(
                action="item.created",
                object_id=str(result[i][0]),
                object_repr=f"{items[i]['source']}:{items[i]['external_id'] or result[i][0]}",  # str(item)
                after={"kind": items[i]["kind"], "source": items[i]["source"], "external_id": items[i]["external_id"],
                       **(audit_after[i] if audit_after else {})},
            )
            for i in created
        ],
    )
    if created:
        # Open queue pages show what is on its way, and rows for any that need people at once.
        item_ids = [result[i][0] for i in created]
        broadcast.on_commit(broadcast.items_created, item_ids=item_ids)
    return [result[i] for i in range(len(items))]
