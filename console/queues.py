"""The review queues: which classifications await a person, filtered, ordered and paged.

The database files every classification in its queue (the generated column `Classification.queue`),
and partial indexes over the awaiting rows hold the two orders the console offers. Pages use keyset
pagination - "the 50 rows after (created_at, id)" - so page 2,000 costs what page 1 does, however many
millions of decided rows the table holds; no OFFSET, no COUNT of the filtered set.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Exists, F, OuterRef
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.db.models.functions import Left
from django.urls import reverse
from django.utils import timezone

from console.forms import QUEUE_CHOICES, QueueFilterForm
from console.models import AWAITING, Claim, Classification, ClassificationStatus, ReviewQueue, Skip, Stage
from policies_app.models import Policy, PolicyVersion

PAGE_SIZE = 50
SKIP_HOURS = 12  # how long "next" leaves an item a moderator skipped to the others
ORDER_KEYS = {"oldest": ("created_at", "id"), "priority": ("review_rank", "created_at", "id")}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PREVIEW_CHARS = 240


@dataclass(frozen=True)
class Filters:
    """A validated queue selection (see QueueFilterForm); the defaults select everything open."""

    queue: str = "all"
    policy: str = ""
    label: str = ""
    stage: str = ""
    source: str = ""
    min_confidence: float | None = None
    max_confidence: float | None = None
    since: date | None = None
    until: date | None = None
    order: str = "oldest"

    def params(self, **changes: Any) -> dict[str, str]:
        """The non-default values as query parameters (with `changes` applied)."""
        chosen = replace(self, **changes) if changes else self
        out = {}
        for f in fields(self):
            value = getattr(chosen, f.name)
            if value not in (None, "") and value != f.default:
                out[f.name] = value.isoformat() if isinstance(value, date) else str(value)
        return out

    def querystring(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))

    @property
    def narrowed(self) -> bool:
        """Whether anything beyond the queue and order narrows the selection."""
        return bool(set(self.params()) - {"queue", "order"})


def parse_filters(data: Any) -> tuple[Filters, QueueFilterForm]:
    """Filters from query parameters; an invalid field falls back to its default and the form says why."""
    form = QueueFilterForm(data)
    form.is_valid()
    values = {name: value for name, value in form.cleaned_data.items() if value not in (None, "")}
    return Filters(**values), form


# --- selections -------------------------------------------------------------------------------------


def select(filters: Filters, *, viewer: Any = None) -> Any:
    """The awaiting classifications matching `filters` (unordered). Policies are matched by slug
    through their version ids, so the queue query itself touches one table."""
    qs = Classification.objects.in_queue(filters.queue)
    if filters.policy:
        version_ids = list(PolicyVersion.objects.filter(policy__slug=filters.policy).values_list("id", flat=True))
        qs = qs.filter(policy_version_id__in=version_ids)
    if filters.label:
        qs = qs.filter(label__iexact=filters.label)
    if filters.stage:
        qs = qs.filter(stage=filters.stage)
    if filters.source:
        qs = qs.filter(item__source=filters.source)
    if filters.min_confidence is not None:
        qs = qs.filter(confidence__gte=filters.min_confidence)
    if filters.max_confidence is not None:
        qs = qs.filter(confidence__lte=filters.max_confidence)
    tz = timezone.get_current_timezone()
    if filters.since:
        qs = qs.filter(created_at__gte=datetime.combine(filters.since, datetime.min.time(), tz))
    if filters.until:
        qs = qs.filter(created_at__lt=datetime.combine(filters.until + timedelta(days=1), datetime.min.time(), tz))
    return qs


def with_row_fields(qs: Any) -> Any:
    """What a queue row shows, in one query: no item text beyond a preview, no reasoning."""
    return qs.select_related("item", "policy_version__policy").only(
        "id", "item_id", "policy_version_id", "stage", "status", "label", "violation", "category", "rule_ids",
        "confidence", "created_at", "finished_at", "queue", "review_status", "review_rank", "needs_review",
        "item__id", "item__kind", "item__source", "item__external_id", "item__created_at",
        "policy_version__id", "policy_version__number", "policy_version__policy__id",
        "policy_version__policy__name", "policy_version__policy__slug",
    ).annotate(
        preview_text=Left("item__content", PREVIEW_CHARS),
        first_turn=Left(KeyTextTransform("content", KeyTransform("0", "item__turns")), PREVIEW_CHARS),
        rationale_preview=Left("rationale", PREVIEW_CHARS),
    )


def unclaimed_for(qs: Any, user: Any, now: datetime) -> Any:
    """Rows no one else holds a live claim on and `user` has not skipped lately ("next" picks from these)."""
    others = Claim.objects.live(now).filter(item_id=OuterRef("item_id")).exclude(user=user)
    skipped = Skip.objects.filter(classification_id=OuterRef("pk"), user=user,
                                  created_at__gte=now - timedelta(hours=SKIP_HOURS))
    return qs.exclude(Exists(others)).exclude(Exists(skipped))


# --- keyset pages -----------------------------------------------------------------------------------


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    """A position in one order: the sort key of a row, written as dot-separated integers."""

    order: str
    values: tuple[Any, ...]

    @classmethod
    def of(cls, row: Classification, order: str) -> Cursor:
        return cls(order, tuple(getattr(row, key) for key in ORDER_KEYS[order]))

    def encode(self) -> str:
        return ".".join(str(_micros(v) if isinstance(v, datetime) else int(v)) for v in self.values)

    @classmethod
    def decode(cls, text: str, order: str) -> Cursor | None:
        """The cursor, or None for a malformed one (an old bookmark of another order, a typo)."""
        parts = text.split(".")
        keys = ORDER_KEYS[order]
        if len(parts) != len(keys):
            return None
        try:
            numbers = [int(part) for part in parts]
        except ValueError:
            return None
        try:
            values = tuple(
                EPOCH + timedelta(microseconds=n) if key == "created_at" else n
                for key, n in zip(keys, numbers, strict=True)
            )
        except OverflowError:
            return None
        return cls(order, values)


@dataclass
class Page:
    rows: list[Classification]
    filters: Filters
    next_cursor: str = ""
    prev_cursor: str = ""
    claims: dict[int, Claim] = field(default_factory=dict)


def page(filters: Filters, *, after: str = "", before: str = "", size: int = PAGE_SIZE,
         now: datetime | None = None, viewer: Any = None) -> tuple[Page, bool]:
    """One page of the queue and whether the cursor given was valid (a bad one shows the first page)."""
    keys = ORDER_KEYS[filters.order]
    qs = select(filters)
    valid = True
    cursor_text, backwards = (before, True) if before else (after, False)
    cursor = Cursor.decode(cursor_text, filters.order) if cursor_text else None
    if cursor_text and cursor is None:
        valid, backwards = False, False
    if cursor is not None:
        position = Tuple(*(F(key) for key in keys))
        compare = TupleLessThan if backwards else TupleGreaterThan
        qs = qs.filter(compare(position, cursor.values))
    order_by = [f"-{key}" for key in keys] if backwards else list(keys)
    # Two steps: the page's ids from the queue index alone (its INCLUDE columns answer the filters, so
    # no table row is read for the rows skipped), then those rows with what they show.
    ids = list(qs.order_by(*order_by).values_list("id", flat=True)[: size + 1])
    shown = {row.pk: row for row in with_row_fields(Classification.objects.filter(pk__in=ids))}
    rows = [shown[pk] for pk in ids if pk in shown]
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    result = Page(rows=rows, filters=filters)
    if rows:
        first, last = Cursor.of(rows[0], filters.order), Cursor.of(rows[-1], filters.order)
        if backwards:
            result.prev_cursor = first.encode() if more else ""
            result.next_cursor = last.encode()
        else:
            result.prev_cursor = first.encode() if cursor is not None else ""
            result.next_cursor = last.encode() if more else ""
    elif backwards and cursor is not None:
        result.next_cursor = cursor_text
    result.claims = live_claims([row.item_id for row in rows], now=now)
    attach_claims(rows, result.claims, viewer)
    return result, valid


def attach_claims(rows: list[Classification], claims: dict[int, Claim], viewer: Any) -> list[Classification]:
    """Give each row what its cells show: who holds its item (`claim_name`), since when, whether it
    is the viewer, and its link (built here: fifty {% url %} tags cost more than the rest of a row)."""
    template = reverse("console:item", args=[0]).replace("/0/", "/{}/") + "?c={}"
    now = timezone.now()
    for row in rows:
        row.href = template.format(row.item_id, row.pk)
        row.waited = waited(now - row.created_at)
        claim = claims.get(row.item_id)
        row.claim_name = claim.user.get_username() if claim else ""
        row.claim_since = claim.claimed_at if claim else None
        row.claim_mine = bool(claim) and claim.user_id == getattr(viewer, "pk", None)
    return rows


def waited(age: timedelta) -> str:
    """A short age for the "Waiting" column ("3 min", "2 h 5 min", "4 d 1 h"); review.js keeps it
    current in the browser with the same wording."""
    minutes = max(0, int(age.total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def tabs(counts: dict[str, int], filters: Filters) -> list[dict[str, Any]]:
    """The queue tabs: each keeps the other filters and shows its depth."""
    return [
        {"value": value, "label": label, "count": counts.get(value, 0), "qs": filters.querystring(queue=value),
         "active": filters.queue == value}
        for value, label in QUEUE_CHOICES
    ]


def live_claims(item_ids: list[int], *, now: datetime | None = None) -> dict[int, Claim]:
    if not item_ids:
        return {}
    now = now or timezone.now()
    claims = Claim.objects.live(now).filter(item_id__in=set(item_ids)).select_related("user")
    return {claim.item_id: claim for claim in claims}


def rows_by_id(ids: list[int], filters: Filters) -> list[Classification]:
    """The awaiting rows among `ids` that match `filters` (live updates of an open queue page)."""
    keys = ORDER_KEYS[filters.order]
    return list(with_row_fields(select(filters).filter(id__in=ids)).order_by(*keys))


# --- depth ------------------------------------------------------------------------------------------


def counts() -> dict[str, int]:
    """How many classifications wait in each queue, and in "all" (every queue but escalations)."""
    result = dict.fromkeys(ReviewQueue.values, 0)
    rows = Classification.objects.filter(AWAITING).values_list("queue").annotate(n=Count("id")).order_by()
    result.update(dict(rows))
    result["all"] = sum(n for queue, n in result.items() if queue != ReviewQueue.ESCALATED)
    return result


_cache_lock = threading.Lock()
_cached: dict[Any, tuple[dict[str, int], int]] = {}


def counts_after(event: Any) -> tuple[dict[str, int], int]:
    """`counts()` and `in_flight()` as they stand after `event` (any hashable naming one broadcast
    message). Every open page of this process handles the same message; the first one counts, the
    others reuse its figures, so a burst of verdicts costs one count per process, not one per page."""
    with _cache_lock:
        if event in _cached:
            return _cached[event]
    value = counts(), in_flight()
    with _cache_lock:
        _cached[event] = value
        while len(_cached) > 32:  # only the latest messages are still being handled
            _cached.pop(next(iter(_cached)))
    return value


_page_counts: tuple[float, dict[str, int], int] | None = None


def counts_for_page(max_age_s: float = 2.0) -> tuple[dict[str, int], int]:
    """`counts()` and `in_flight()` for a page load, reused by this process's page loads for up to
    `max_age_s`: counting means reading every awaiting row's index entry, and a busy team loads queue
    pages many times a second. Open pages get exact counts with every live update, and a decision
    made by this process forgets the figures at once (`forget_counts`)."""
    global _page_counts
    cached = _page_counts
    if cached is not None and time.monotonic() - cached[0] < max_age_s:
        return cached[1], cached[2]
    value = counts(), in_flight()
    _page_counts = (time.monotonic(), *value)
    return value


def forget_counts() -> None:
    global _page_counts
    _page_counts = None


def in_flight() -> int:
    """Reasoner work not finished yet: items that may still land in a queue."""
    return Classification.objects.filter(
        stage=Stage.REASONER, status__in=[ClassificationStatus.QUEUED, ClassificationStatus.RUNNING]
    ).count()


def oldest_waiting() -> Classification | None:
    """The awaiting classification that has waited longest (escalations included)."""
    return (
        with_row_fields(Classification.objects.filter(AWAITING)).order_by("created_at", "id").first()
    )


def policy_choices() -> list[tuple[str, str]]:
    """(slug, name) of every policy, for the filter menu."""
    return list(Policy.objects.values_list("slug", "name"))

