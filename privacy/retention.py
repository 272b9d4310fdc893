"""Retention: each source's items lose their content, the model's reasoning and its raw outputs once
they are older than its rule says (`RetentionRule`; sources without one follow the RETENTION_*_DAYS
settings; no number of days keeps them forever). Age counts from when the item arrived.

Items still in use keep everything: a classification waiting for a person or for the engine, a shadow
result still queued or running, an open appeal. They are redacted by a later run, once they are done.

`apply` works set-based, in batches of RETENTION_BATCH items, each batch one transaction with its
audit event (the items it redacted), walking the items in arrival order from the oldest: one pass
over the old items of a source per kind, however many millions there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from audit.writer import Entry, record_many
from console.models import Classification, ClassificationStatus, Item
from enforcement.models import Appeal, AppealStatus
from evaluations.models import EvaluationResult
from privacy.models import RetentionKind, RetentionRule
from privacy.redaction import MARKER_PREFIX, marker, redact_column, redact_content

ACTOR_NAME = "system:retention"
RUNNING = (ClassificationStatus.QUEUED, ClassificationStatus.RUNNING)


@dataclass(frozen=True)
class Scope:
    """The items one rule covers: one source, or (rule None) every source without a rule."""

    rule: RetentionRule | None
    ruled_sources: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.rule.source if self.rule else "(default)"

    def days(self, kind: str) -> int | None:
        if self.rule is not None:
            return self.rule.days(kind)
        return getattr(settings, f"RETENTION_{kind.upper()}_DAYS")

    def items(self) -> QuerySet[Item]:
        if self.rule is not None:
            return Item.objects.filter(source=self.rule.source)
        return Item.objects.exclude(source__in=self.ruled_sources)


def scopes() -> list[Scope]:
    rules = list(RetentionRule.objects.order_by("source"))
    return [*(Scope(rule) for rule in rules), Scope(None, tuple(rule.source for rule in rules))]


def in_use() -> Q:
    """Items a person or a worker still needs whole."""
    return (Q(Exists(Classification.objects.filter(Q(queue__isnull=False) | Q(status__in=RUNNING),
                                                   item=OuterRef("pk"))))
            | Q(Exists(EvaluationResult.objects.filter(item=OuterRef("pk"), status__in=RUNNING)))
            | Q(Exists(Appeal.objects.filter(item=OuterRef("pk"), status=AppealStatus.OPEN))))


def _unredacted(model: type[Any], column: str) -> Q:
    rows = model.objects.filter(item=OuterRef("pk")).exclude(**{column: ""}).exclude(
        **{f"{column}__startswith": MARKER_PREFIX})
    return Q(Exists(rows))


def due(scope: Scope, kind: str, now: datetime) -> QuerySet[Item] | None:
    """The items of `scope` whose `kind` is due for redaction at `now` (None: that kind is kept forever)."""
    days = scope.days(kind)
    if days is None:
        return None
    items = scope.items().filter(created_at__lt=now - timedelta(days=days)).exclude(in_use())
    if kind == RetentionKind.CONTENT:
        return items.exclude(content__startswith=MARKER_PREFIX)
    return items.filter(_unredacted(Classification, kind) | _unredacted(EvaluationResult, kind))


def _redact(kind: str, item_ids: list[int], text: str) -> int:
    if kind == RetentionKind.CONTENT:
        return redact_content(item_ids, text)
    return (redact_column(Classification.objects.filter(item_id__in=item_ids), kind, text)
            + redact_column(EvaluationResult.objects.filter(item_id__in=item_ids), kind, text))


def _batches(items: QuerySet[Item], size: int) -> Iterator[list[tuple[Any, int]]]:
    """(created_at, id) keys in arrival order, a batch at a time, each after the last one handed out."""
    last: tuple[Any, int] | None = None
    while True:
        page = items if last is None else items.filter(Q(created_at__gt=last[0]) | Q(created_at=last[0],
                                                                                      id__gt=last[1]))
        keys = list(page.order_by("created_at", "id").values_list("created_at", "id")[:size])
        if not keys:
            return
        yield keys
        last = keys[-1]


@dataclass
class Outcome:
    scope: str
    kind: str
    days: int
    items: int


def apply(*, dry_run: bool = False) -> list[Outcome]:
    """Redact what every rule says is due (or, with dry_run, only count it); one Outcome per scope and kind
    that keeps things for a limited time."""
    now = timezone.now()
    text = marker(timezone.localdate(now))
    outcomes = []
    for scope in scopes():
        for kind in RetentionKind.values:
            items = due(scope, kind, now)
            if items is None:
                continue
            outcome = Outcome(scope=scope.name, kind=kind, days=scope.days(kind) or 0, items=0)
            if dry_run:
                outcome.items = items.count()
            else:
                for keys in _batches(items, settings.RETENTION_BATCH):
                    outcome.items += _redact_batch(scope, kind, [pk for _, pk in keys], text)
            outcomes.append(outcome)
    return outcomes


@transaction.atomic
def _redact_batch(scope: Scope, kind: str, item_ids: list[int], text: str) -> int:
    # Checked again under the lock: an item may have gone back into a queue since the batch was read.
    locked = list(Item.objects.select_for_update().filter(pk__in=item_ids).exclude(in_use())
                  .values_list("pk", flat=True))
    if not locked:
        return 0
    _redact(kind, locked, text)
    rule = scope.rule
    record_many(actor=None, actor_name=ACTOR_NAME, object_type=RetentionRule, entries=[Entry(
        action=f"retention.{kind}_redacted", object_id=str(rule.pk) if rule else "default",
        object_repr=str(rule) if rule else "retention for sources without a rule",
        after={"source": scope.name, "older_than_days": scope.days(kind), "items": sorted(locked)})])
    return len(locked)
