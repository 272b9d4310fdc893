"""Erasure requests: an item's text redacted everywhere it is kept, in one transaction with its audit.

Model work still queued or running on the item is failed first, so no worker stores what it read.
Redacted: the item's content, turns and metadata values; its classifications' rationale, reasoning, raw
output, error and parse notes; moderators' review reasons and comments; the statements' facts; appeals'
reasons; shadow-run results for the item; labelled-set examples copied from it; every copy a higher
layer keeps (registered with `register`, e.g. the API's webhook payloads); and the before/after of every
audit event about those objects (through `audit.erasure`, which keeps the chain verifiable).

Kept: what identifies the item (id, source, external id) and what was decided (labels, categories,
violations, review decisions, actions, statements' other fields and platform ids), so decisions and
statements stay verifiable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q

from audit.erasure import erase_payloads
from audit.models import AuditEvent
from audit.writer import actor_columns, record
from console.models import Classification, ClassificationStatus, Comment, Item, Review
from enforcement.models import Action, Appeal, Statement
from evaluations.models import EvaluationResult, Example, content_hash
from privacy.models import Erasure
from privacy.redaction import is_redacted, marker, redact_column, redact_content

MODEL_TEXTS = ("rationale", "reasoning", "raw_output", "error")  # a classification's and a shadow result's


class ErasureError(ValueError):
    """A refused erasure request; `field` names the input at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Copies:
    """What one part redacted: rows per "app.model.column", and the objects whose audit payloads go."""

    counts: dict[str, int] = field(default_factory=dict)
    audited: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))


# A part redacts the copies one app keeps: given the item, every text being erased (to find copies by
# value) and the marker that replaces them.
Part = Callable[[Item, set[str], str], Copies]
_parts: list[Part] = []


def register(part: Part) -> None:
    """For the layers above (the API's webhook payloads): called in every erasure, in its transaction."""
    if part not in _parts:
        _parts.append(part)


def find_item(*, item_id: Any = None, source: str = "", external_id: str = "") -> Item:
    """The item an erasure names, by id or by source and external id; ErasureError naming the field."""
    if item_id not in (None, ""):
        try:
            pk = int(item_id)
        except (TypeError, ValueError):
            raise ErasureError("an item id is a whole number", "item_id") from None
        item = Item.objects.filter(pk=pk).first()
        if item is None:
            raise ErasureError(f"there is no item {pk}", "item_id")
        return item
    if not external_id:
        raise ErasureError("name the item by its id, or by its source and external id", "item_id")
    if not source:
        raise ErasureError("an external id is looked up within a source", "source")
    item = Item.objects.filter(source=source, external_id=external_id).first()
    if item is None:
        raise ErasureError(f"source {source!r} has no item with external id {external_id!r}", "external_id")
    return item


def _texts(item: Item) -> set[str]:
    """Every text about to be erased, to recognise copies kept elsewhere."""
    texts = [item.content, *(str(t.get("content", "")) for t in item.turns or [] if isinstance(t, dict))]
    if isinstance(item.metadata, dict):
        texts += [v for v in item.metadata.values() if isinstance(v, str)]
    for row in Classification.objects.filter(item=item).values_list(*MODEL_TEXTS):
        texts += row
    for row in EvaluationResult.objects.filter(item=item).values_list(*MODEL_TEXTS):
        texts += row
    texts += Review.objects.filter(classification__item=item).values_list("reason", flat=True)
    texts += Comment.objects.filter(item=item).values_list("text", flat=True)
    texts += Statement.objects.filter(action__item=item).values_list("facts", flat=True)
    for row in Appeal.objects.filter(item=item).values_list("reason", "outcome_reason"):
        texts += row
    return {t for t in texts if t and t.strip() and not is_redacted(t)}


def _stop_pending(rows: Any, text: str, status: str = ClassificationStatus.FAILED) -> int:
    """Fail the model work still queued or running on the item: a worker that read the content before
    the erasure finds its row no longer "running and mine" and stores nothing (reasoner.sql)."""
    return rows.filter(status__in=[ClassificationStatus.QUEUED, ClassificationStatus.RUNNING]).update(
        status=status, error=text, worker="", lease_expires_at=None, needs_review=False)


def _console(item: Item, erased: set[str], text: str) -> Copies:
    copies = Copies()
    classifications = Classification.objects.filter(item=item)
    copies.counts["console.classification.stopped"] = _stop_pending(classifications, text)
    copies.counts["console.item.content"] = redact_content([item.pk], text)
    for column in MODEL_TEXTS:
        copies.counts[f"console.classification.{column}"] = redact_column(classifications, column, text)
    classifications.exclude(parse_notes=[]).update(parse_notes=[text])
    copies.counts["console.review.reason"] = redact_column(Review.objects.filter(classification__item=item),
                                                           "reason", text)
    copies.counts["console.comment.text"] = redact_column(Comment.objects.filter(item=item), "text", text)
    copies.audited["console.item"].append(item.pk)
    copies.audited["console.classification"] += list(classifications.values_list("pk", flat=True))
    return copies


def _enforcement(item: Item, erased: set[str], text: str) -> Copies:
    copies = Copies()
    statements = Statement.objects.filter(action__item=item)
    copies.counts["enforcement.statement.facts"] = redact_column(statements, "facts", text)
    appeals = Appeal.objects.filter(item=item)
    copies.counts["enforcement.appeal.reason"] = redact_column(appeals, "reason", text)
    copies.counts["enforcement.appeal.outcome_reason"] = redact_column(appeals, "outcome_reason", text)
    copies.audited["enforcement.action"] += list(Action.objects.filter(item=item).values_list("pk", flat=True))
    copies.audited["enforcement.statement"] += list(statements.values_list("pk", flat=True))
    copies.audited["enforcement.appeal"] += list(appeals.values_list("pk", flat=True))
    return copies


def _evaluations(item: Item, erased: set[str], text: str) -> Copies:
    copies = Copies()
    results = EvaluationResult.objects.filter(item=item)
    copies.counts["evaluations.evaluationresult.stopped"] = _stop_pending(results, text, "cancelled")
    for column in MODEL_TEXTS:
        copies.counts[f"evaluations.evaluationresult.{column}"] = redact_column(results, column, text)
    results.exclude(parse_notes=[]).update(parse_notes=[text])
    # Examples copied into labelled sets (a golden set from moderators' decisions) are found by content.
    copied = list(Example.objects.filter(content_hash=content_hash(item.kind, item.content, item.turns)))
    for example in copied:
        example.content = text
        if example.turns:
            example.turns = [{**t, "content": text} if isinstance(t, dict) else text for t in example.turns]
        # Unique within its set, and no longer a fingerprint of the erased text.
        example.content_hash = content_hash(example.kind, f"{text} {example.pk}", example.turns)
        example.save(update_fields=["content", "turns", "content_hash"])
    copies.counts["evaluations.example.content"] = len(copied)
    copies.audited["evaluations.example"] += [e.pk for e in copied]
    return copies


@transaction.atomic
def erase_item(*, item_id: int, actor: Any, actor_name: str = "") -> tuple[Erasure, bool]:
    """Erase one item's text everywhere (see the module docstring): (the erasure, True) the first time,
    (the earlier erasure, False) for a repeated request; ErasureError if the item is gone. `actor` is the
    admin, or None for an API client named by actor_name ("api:<client>")."""
    # The item's row lock makes two requests for one item take turns: the second finds the first's erasure.
    item = Item.objects.select_for_update().filter(pk=item_id).first()
    if item is None:
        raise ErasureError(f"there is no item {item_id}", "item_id")
    existing = Erasure.objects.filter(item=item).first()
    if existing is not None:
        return existing, False
    actor_id, via = actor_columns(actor, actor_name)
    erasure = Erasure.objects.create(item=item, item_pk=item.pk, source=item.source, external_id=item.external_id,
                                     requested_by_id=actor_id, requested_via=via)
    erased, text = _texts(item), marker()
    counts: dict[str, int] = {}
    audited: dict[str, set[str]] = defaultdict(set)
    for part in (_console, _enforcement, _evaluations, *_parts):
        copies = part(item, erased, text)
        counts.update(copies.counts)
        for object_type, ids in copies.audited.items():
            audited[object_type].update(str(pk) for pk in ids)
    about = Q(pk__in=[])
    for object_type, ids in audited.items():
        about |= Q(object_type=object_type, object_id__in=sorted(ids))
    events = AuditEvent.objects.filter(about, erased_at__isnull=True).values_list("pk", flat=True)
    counts["audit.auditevent.payload"] = erase_payloads(event_ids=events, actor=actor, actor_name=actor_name,
                                                        obj=erasure)
    erasure.counts = counts
    erasure.save(update_fields=["counts"])
    # What was asked and how much went, never the text itself.
    record(actor=actor, actor_name=actor_name, action="privacy.item_erased", obj=erasure,
           after={"item": item.pk, "source": item.source, "external_id": item.external_id, "via": via,
                  "counts": counts})
    return erasure, True
