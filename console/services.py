"""Writes that touch the review side: each is atomic and audited. Views and jobs call these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from console.audit import record
from console.roles import Role, roles_of


@transaction.atomic
def set_roles(*, actor: Any, user: Any, roles: set[Role]) -> None:
    """Give `user` exactly `roles` (an admin's decision, audited)."""
    unknown = {str(r) for r in roles} - {r.value for r in Role}
    if unknown:
        raise ValueError(f"Unknown roles: {', '.join(sorted(unknown))}")
    if user.pk == getattr(actor, "pk", None) and Role.ADMIN not in roles and not user.is_superuser:
        raise ValueError("You cannot remove your own admin role: ask another admin")
    before = sorted(r.value for r in roles_of(user))
    groups = Group.objects.filter(name__in=[Role(r).value for r in roles])
    user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
    user.groups.add(*groups)
    # Admins manage users and groups in Django's admin too; staff status follows the admin role.
    user.is_staff = Role.ADMIN in roles or user.is_superuser
    user.save(update_fields=["is_staff"])
    user.__dict__.pop("_console_roles", None)
    after = sorted(Role(r).value for r in roles)
    if before != after:
        record(actor=actor, action="user.roles_changed", obj=user, before={"roles": before}, after={"roles": after})


class SubmitError(ValueError):
    """Refused input; `field` names the offending field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def clean_item_input(
    *, kind: str, source: str, external_id: str = "", content: str = "", turns: Any = None, metadata: Any = None
) -> dict[str, Any]:
    """Validate what a client sent for one item, naming the field at fault."""
    from console.models import ItemKind

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
def submit_item(*, actor: Any, versions: list[Any], actor_name: str = "", **fields: Any) -> tuple[Any, bool]:
    """Store one item and queue it for the reasoner under each given published policy version.

    Idempotent on (source, external_id): a repeat returns the stored item and `False`, queueing nothing.
    """
    from console.models import Classification, Item, Stage

    data = clean_item_input(**fields)
    if data["external_id"]:
        existing = Item.objects.filter(source=data["source"], external_id=data["external_id"]).first()
        if existing is not None:
            return existing, False
    item = Item.objects.create(**data)
    record(actor=actor, action="item.created", obj=item, actor_name=actor_name,
           after={"kind": item.kind, "source": item.source, "external_id": item.external_id})
    queued = Classification.objects.bulk_create(
        [Classification(item=item, policy_version=v, stage=Stage.REASONER) for v in versions]
    )
    if queued:
        from console import dispatch

        transaction.on_commit(dispatch.wake_reasoner)
    # Open queue pages show what is on its way (review console).
    transaction.on_commit(_broadcast("items_created", item_ids=[item.pk]), robust=True)
    return item, True



# --- Bulk ingestion (the ingestion API's fast path; see api/services.py) ------------------------------
# One INSERT per table for a whole batch: the rows travel as one JSON document that PostgreSQL unpacks
# with json_to_recordset. That is several times faster than bulk_create at 1,000 items a request (no
# model instances), and than array parameters (psycopg quotes each array element in Python).


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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
    import json

    from django.db import connection

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
    rows = json.dumps([dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)],
                      default=_json_default)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(names)}) "
        f"SELECT {', '.join(selects)} FROM json_to_recordset(%s::json) AS r({', '.join(record)})"
        + (f" {conflict}" if conflict else "")
        + (f" RETURNING {returning}" if returning else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, rows])
        return cursor.fetchall() if returning else []


@transaction.atomic
def create_items_bulk(
    *, actor: Any, actor_name: str, items: list[dict[str, Any]], audit_after: list[dict[str, Any]] | None = None
) -> list[tuple[int, bool]]:
    """Store many cleaned items (`clean_item_input` output) with one INSERT and one audit event each.

    Idempotent on (source, external_id) like `submit_item`: an item already stored (or repeated
    earlier in the same list) is not stored again. Returns (item id, created) for each input, in order.
    `audit_after[i]` is merged into the audit event of item i when it is created. Queues nothing:
    the caller adds classifications for the created items in the same transaction.
    """
    from django.db import connection

    from console.models import AuditEvent, Item

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
    if created:
        object_type = Item._meta.label_lower
        bulk_insert(
            AuditEvent,
            {
                "object_id": [str(result[i][0]) for i in created],
                "object_repr": [
                    f"{items[i]['source']}:{items[i]['external_id'] or result[i][0]}"[:300] for i in created
                ],
                "after": [
                    {
                        "kind": items[i]["kind"],
                        "source": items[i]["source"],
                        "external_id": items[i]["external_id"],
                        **(audit_after[i] if audit_after else {}),
                    }
                    for i in created
                ],
            },
            constants={
                "actor_id": getattr(actor, "pk", None) if getattr(actor, "is_authenticated", False) else None,
                "actor_name": actor_name or (actor.get_username() if getattr(actor, "is_authenticated", False)
                                             else "system"),
                "action": "item.created",
                "object_type": object_type,
            },
        )
    return [result[i] for i in range(len(items))]


# --- Review decisions (the review console) ------------------------------------------------------------
# Claims, approve / override / escalate / skip / comment, bulk approve. Each write locks the rows it
# decides on (select_for_update), checks that nothing changed since the moderator looked, writes its
# audit events in the same transaction and tells the open pages once it has committed.

CLAIM_SECONDS = 300  # how long opening an item holds it; the open page renews it every minute
SKIP_HOURS = 12  # how long "next" leaves an item a moderator skipped to the others
BULK_LIMIT = 200  # most verdicts one bulk approval decides
PAST = {"approve": "approved it", "override": "overrode it", "escalate": "escalated it"}


class ReviewError(Exception):
    """A refused review action. The message is written for the moderator and shown as is."""


class DecisionConflict(ReviewError):
    """Someone decided (or escalated) the item after the moderator opened it: nothing was saved."""


class ClaimConflict(ReviewError):
    """Another moderator holds the item."""

    def __init__(self, claim: Any) -> None:
        name = claim.user.get_username()
        super().__init__(
            f"{name} is reviewing this item (since {claim.claimed_at:%H:%M}); you can read it, but not decide it"
        )
        self.claim = claim


@dataclass
class BulkResult:
    approved: list[int]
    refused: list[tuple[int, str]]  # (classification id, why)


def can_review(user: Any) -> bool:
    """Whether `user` works the review queues at all."""
    return bool(roles_of(user) & {Role.MODERATOR, Role.ADMIN})


def can_decide(user: Any, classification: Any) -> bool:
    """Whether `user` may decide this classification: escalations go to seniors (the admin role)."""
    from console.models import ReviewStatus

    if classification.review_status == ReviewStatus.ESCALATED:
        return Role.ADMIN in roles_of(user)
    return can_review(user)


def _broadcast(name: str, **kwargs: Any) -> Callable[[], None]:
    def send() -> None:
        from console import broadcast, queues

        if name == "review_decided":
            queues.forget_counts()  # this process's queue pages show the new depth at once
        getattr(broadcast, name)(**kwargs)

    return send


def _notify_decision(item_id: int) -> None:
    # The API tells the platform that submitted the item its final decision by webhook. That part of
    # the project may be absent (or not yet built) in a given deployment, so it is optional here; the
    # review itself is stored either way.
    try:
        from api.webhooks import notify_decision
    except ImportError:
        return
    notify_decision(item_id)


def _ago(moment: Any) -> str:
    from django.utils.timesince import timesince

    return f"{timesince(moment).split(',')[0]} ago"


def _who(user: Any, viewer: Any) -> str:
    return "You" if getattr(user, "pk", None) == viewer.pk else user.get_username()


@transaction.atomic
def claim_item(*, user: Any, item_id: int) -> Any:
    """Claim the item for `user` (or renew their claim) for CLAIM_SECONDS.

    Raises ClaimConflict when someone else holds a live claim, ReviewError when nothing on the item
    awaits a decision `user` may take. Taking a claim is audited and broadcast; renewing it is neither
    (the open page renews every minute, which would bury the audit log without telling anyone anything).
    """
    from console.models import Claim, Classification, Item

    now = timezone.now()
    # Locking the item row serialises claims on it; NO KEY UPDATE still lets workers add classifications.
    item = Item.objects.select_for_update(no_key=True).filter(pk=item_id).first()
    if item is None:
        raise ReviewError("No such item")
    open_here = Classification.objects.awaiting_review().filter(item_id=item_id)
    if not any(can_decide(user, c) for c in open_here.only("id", "review_status")):
        raise ReviewError("Nothing on this item awaits a decision you can take")
    claim = Claim.objects.select_related("user").filter(item_id=item_id).first()
    if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
        raise ClaimConflict(claim)
    taking = claim is None or claim.user_id != user.pk or claim.expires_at <= now
    expires = now + timedelta(seconds=CLAIM_SECONDS)
    if claim is None:
        claim = Claim.objects.create(item=item, user=user, claimed_at=now, expires_at=expires)
    else:
        if taking:
            claim.user, claim.claimed_at = user, now
        claim.expires_at = expires
        claim.save()
    if taking:
        record(actor=user, action="item.claimed", obj=item, after={"until": expires.isoformat()})
        transaction.on_commit(_broadcast("claim_changed", item_id=item_id, username=user.get_username(),
                                         since=now.isoformat()), robust=True)
        # A moderator works one item at a time: opening another gives back the one left behind, so it
        # is free for the others at once instead of when its claim runs out.
        _release_all(user=user, now=now, keep=item_id)
    return claim


def _release_all(*, user: Any, now: Any, keep: int) -> None:
    from console.models import AuditEvent, Claim, Item

    left = list(Claim.objects.live(now).filter(user=user).exclude(item_id=keep).values_list("item_id", flat=True))
    if not left:
        return
    Claim.objects.filter(item_id__in=left, user=user).delete()
    AuditEvent.objects.bulk_create([
        AuditEvent(actor=user, actor_name=user.get_username(), action="item.released",
                   object_type=Item._meta.label_lower, object_id=str(item.pk), object_repr=str(item)[:300])
        for item in Item.objects.filter(pk__in=left).only("id", "source", "external_id")
    ])
    for pk in left:
        transaction.on_commit(_broadcast("claim_changed", item_id=pk, username="", since=""), robust=True)


@transaction.atomic
def release_claim(*, user: Any, item_id: int) -> bool:
    """Give the item back (the moderator left it undecided). Whether there was a claim to give back."""
    from console.models import Claim, Item

    claim = Claim.objects.select_for_update().filter(item_id=item_id, user=user).first()
    if claim is None:
        return False
    live = claim.expires_at > timezone.now()
    claim.delete()
    if live:
        record(actor=user, action="item.released", obj=Item.objects.get(pk=item_id))
        transaction.on_commit(_broadcast("claim_changed", item_id=item_id, username="", since=""), robust=True)
    return live


def claim_next(*, user: Any, filters: Any, leaving: int | None = None) -> int | None:
    """Claim the first item of the (filtered) queue that no one holds and `user` has not skipped lately;
    its id, or None when there is none. `leaving` is an item the moderator moves on from undecided:
    its claim is released first."""
    from console import queues
    from console.models import Item, ReviewQueue

    if leaving is not None:
        release_claim(user=user, item_id=leaving)
    now = timezone.now()
    qs = queues.unclaimed_for(queues.select(filters), user, now)
    if Role.ADMIN not in roles_of(user):
        qs = qs.exclude(queue=ReviewQueue.ESCALATED)
    if leaving is not None:
        qs = qs.exclude(item_id=leaving)
    ordered = qs.order_by(*queues.ORDER_KEYS[filters.order]).values_list("item_id", flat=True)
    candidates = list(dict.fromkeys(ordered[:25]))
    for item_id in candidates:
        try:
            with transaction.atomic():
                # Another moderator's "next" may be claiming this very item: skip it rather than wait.
                if not Item.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=item_id).exists():
                    continue
                claim_item(user=user, item_id=item_id)
                return item_id
        except ReviewError:
            continue
    return None


def _lock_for_decision(*, user: Any, classification_id: int, seen_review: int | None, action: str) -> Any:
    """The classification, locked, once every check a decision needs has passed."""
    from console.models import Claim, Classification, ClassificationStatus, ReviewStatus

    classification = (
        Classification.objects.select_for_update(no_key=True, of=("self",))
        .select_related("item", "policy_version__policy")
        .filter(pk=classification_id)
        .first()
    )
    if classification is None:
        raise ReviewError("No such classification")
    last = classification.reviews.select_related("reviewer").order_by("-created_at", "-id").first()
    if classification.review_status == ReviewStatus.DECIDED and last is not None:
        raise DecisionConflict(
            f"{_who(last.reviewer, user)} already decided this {_ago(last.created_at)} "
            f"({PAST[last.decision]}); your {action} was not saved"
        )
    if not classification.needs_review or classification.status in (
        ClassificationStatus.QUEUED, ClassificationStatus.RUNNING
    ) or classification.review_status == ReviewStatus.DECIDED:
        raise ReviewError("This result does not await review")
    if seen_review is not None and (last.pk if last else 0) != seen_review:
        who, what = (_who(last.reviewer, user), PAST[last.decision]) if last else ("Someone", "changed it")
        raise DecisionConflict(
            f"{who} {what} while you had this item open; your {action} was not saved. Look at it again, then decide"
        )
    if not can_decide(user, classification):
        raise ReviewError(
            "Escalated items are decided by a senior moderator (the admin role)"
            if classification.review_status == ReviewStatus.ESCALATED
            else "Your role does not let you decide reviews"
        )
    claim = Claim.objects.live(timezone.now()).select_related("user").filter(item_id=classification.item_id).first()
    if claim is not None and claim.user_id != user.pk:
        raise ClaimConflict(claim)
    return classification


def _settle(*, user: Any, classification: Any, review: Any, final: bool) -> None:
    """Record a stored review: the classification's state, its audit event, the claim, the broadcast."""
    from console.models import Claim, Classification, ReviewStatus

    before = classification.review_status
    classification.review_status = ReviewStatus.DECIDED if final else ReviewStatus.ESCALATED
    classification.save(update_fields=["review_status"])
    after: dict[str, Any] = {"review_status": classification.review_status, "review": review.pk,
                             "decision": review.decision}
    for name in ("label", "category", "reason", "misapplied_rule"):
        if getattr(review, name):
            after[name] = getattr(review, name)
    record(actor=user, action=f"review.{review.decision}", obj=classification, before={"review_status": before},
           after=after)
    item_id = classification.item_id
    others_open = Classification.objects.awaiting_review().filter(item_id=item_id).exclude(pk=classification.pk)
    done_here = not final or not any(can_decide(user, c) for c in others_open.only("id", "review_status"))
    # Nothing left here for this moderator: the claim goes, so the item shows as free at once.
    if done_here and Claim.objects.filter(item_id=item_id, user=user).delete()[0]:
        transaction.on_commit(_broadcast("claim_changed", item_id=item_id, username="", since=""), robust=True)
    transaction.on_commit(
        _broadcast("review_decided", classification_ids=[classification.pk], item_ids=[item_id],
                   username=user.get_username(), decision=review.decision),
        robust=True,
    )
    if final:
        transaction.on_commit(lambda: _notify_decision(item_id), robust=True)


@transaction.atomic
def approve(*, user: Any, classification_id: int, seen_review: int | None) -> Any:
    """The model's verdict stands. `seen_review` is the id of the latest review the moderator saw (0:
    none); a different one now means someone acted meanwhile, and the approval is refused."""
    from console.models import ClassificationStatus, Decision, Review

    classification = _lock_for_decision(user=user, classification_id=classification_id, seen_review=seen_review,
                                        action="approval")
    if classification.status != ClassificationStatus.DONE:
        raise ReviewError("There is no verdict to approve: override it with the correct label instead")
    review = Review.objects.create(classification=classification, decision=Decision.APPROVE, reviewer=user)
    _settle(user=user, classification=classification, review=review, final=True)
    return review


def label_choices(version: Any) -> list[tuple[str, str]]:
    """The labels a moderator may correct a verdict to, in the policy version's own scheme."""
    from policies_app.models import LabelScheme
    from safeguard.labels import is_safe_label

    if version.label_scheme == LabelScheme.BINARY:
        return [("1", "1 · violation"), ("0", "0 · no violation")]
    if version.label_scheme == LabelScheme.VALID_INVALID:
        return [("INVALID", "INVALID · violation"), ("VALID", "VALID · no violation")]
    return [(code, f"{code} · {'no violation' if is_safe_label(code) else 'violation'}")
            for code in version.labels or []]


@transaction.atomic
def override(
    *, user: Any, classification_id: int, seen_review: int | None, label: str, category: str = "", reason: str,
    misapplied_rule: str = "",
) -> Any:
    """Replace the model's verdict with the moderator's: a label of the policy's scheme (or a category),
    a reason (required), and optionally the rule the model misapplied."""
    from console.models import Decision, Review

    label, category, reason, misapplied_rule = (label or "").strip(), (category or "").strip(), \
        (reason or "").strip(), (misapplied_rule or "").strip()
    if not reason:
        raise ReviewError("An override needs a reason")
    if not label and not category:
        raise ReviewError("An override needs the correct label or category")
    classification = _lock_for_decision(user=user, classification_id=classification_id, seen_review=seen_review,
                                        action="override")
    version = classification.policy_version
    allowed = [code for code, _ in label_choices(version)]
    if label and label not in allowed:
        raise ReviewError(f"{label!r} is not a label of {version}: choose one of {', '.join(allowed)}")
    if misapplied_rule and misapplied_rule not in version.rule_ids:
        raise ReviewError(f"{misapplied_rule!r} is not a rule of {version}")
    if (
        classification.status == "done"
        and (label or classification.label) == classification.label
        and (category or classification.category) == classification.category
    ):
        raise ReviewError("That is the model's own verdict: approve it instead")
    if version.label_scheme == "categories" and label and not category:
        category = label  # in a categories policy the label is the category code
    review = Review.objects.create(
        classification=classification, decision=Decision.OVERRIDE, label=label[:60], category=category[:60],
        reason=reason, misapplied_rule=misapplied_rule[:40], reviewer=user,
    )
    _settle(user=user, classification=classification, review=review, final=True)
    return review


@transaction.atomic
def escalate(*, user: Any, classification_id: int, seen_review: int | None, reason: str) -> Any:
    """Send the item to the senior queue, with a note saying why."""
    from console.models import Decision, Review, ReviewStatus

    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("Say why a senior should look (the reason is required)")
    classification = _lock_for_decision(user=user, classification_id=classification_id, seen_review=seen_review,
                                        action="escalation")
    if classification.review_status == ReviewStatus.ESCALATED:
        raise ReviewError("This item is already with the seniors: approve or override it")
    review = Review.objects.create(classification=classification, decision=Decision.ESCALATE, reason=reason,
                                   reviewer=user)
    _settle(user=user, classification=classification, review=review, final=False)
    return review


@transaction.atomic
def skip(*, user: Any, classification_id: int) -> None:
    """Pass on a classification: it stays in the queue for the others, and "next" leaves it out for
    this moderator for SKIP_HOURS. The moderator's claim on the item is released."""
    from console.models import Claim, Classification, Skip

    classification = Classification.objects.awaiting_review().select_related("item").filter(
        pk=classification_id).first()
    if classification is None:
        raise ReviewError("This result does not await review")
    Skip.objects.create(classification=classification, user=user)
    record(actor=user, action="review.skipped", obj=classification)
    if Claim.objects.filter(item_id=classification.item_id, user=user).delete()[0]:
        transaction.on_commit(
            _broadcast("claim_changed", item_id=classification.item_id, username="", since=""), robust=True
        )


@transaction.atomic
def add_comment(*, user: Any, item_id: int, text: str, classification_id: int | None = None) -> Any:
    """A note on the item for the other moderators."""
    from console.models import Classification, Comment, Item

    text = (text or "").strip()
    if not text:
        raise ReviewError("The comment is empty")
    if len(text) > 5000:
        raise ReviewError("A comment holds at most 5,000 characters")
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise ReviewError("No such item")
    if classification_id is not None and not Classification.objects.filter(pk=classification_id,
                                                                           item_id=item_id).exists():
        classification_id = None
    comment = Comment.objects.create(item=item, classification_id=classification_id, author=user, text=text)
    record(actor=user, action="item.commented", obj=item, after={"comment": comment.pk, "text": text[:300]})
    transaction.on_commit(_broadcast("comment_added", item_id=item_id, comment_id=comment.pk), robust=True)
    return comment


@transaction.atomic
def bulk_approve(*, user: Any, classification_ids: list[int]) -> BulkResult:
    """Approve many verdicts at once (from the queue, after a confirmation). Each one is checked like a
    single approval; those that fail a check are left as they are and reported with the reason."""
    from console.models import AuditEvent, Claim, Classification, ClassificationStatus, Decision, Review, ReviewStatus

    ids = sorted({int(pk) for pk in classification_ids})
    if not ids:
        raise ReviewError("Select the verdicts to approve first")
    if len(ids) > BULK_LIMIT:
        raise ReviewError(f"At most {BULK_LIMIT} verdicts can be approved at once")
    if not can_review(user):
        raise ReviewError("Your role does not let you decide reviews")
    now = timezone.now()
    # Locked in id order, so two bulk approvals of overlapping selections cannot deadlock.
    rows = {
        c.pk: c
        for c in Classification.objects.select_for_update(no_key=True, of=("self",))
        .select_related("item", "policy_version__policy").filter(pk__in=ids).order_by("pk")
    }
    claims = {c.item_id: c for c in Claim.objects.live(now).select_related("user").filter(
        item_id__in={row.item_id for row in rows.values()})}
    approved, refused = [], []
    for pk in ids:
        c = rows.get(pk)
        claim = claims.get(c.item_id) if c else None
        if c is None:
            refused.append((pk, "no such classification"))
        elif c.review_status == ReviewStatus.DECIDED or not c.needs_review:
            refused.append((pk, "already decided"))
        elif c.status != ClassificationStatus.DONE:
            refused.append((pk, "no verdict to approve"))
        elif not can_decide(user, c):
            refused.append((pk, "escalated: for a senior"))
        elif claim is not None and claim.user_id != user.pk:
            refused.append((pk, f"claimed by {claim.user.get_username()}"))
        else:
            approved.append(c)
    if approved:
        reviews = Review.objects.bulk_create(
            [Review(classification=c, decision=Decision.APPROVE, reviewer=user) for c in approved]
        )
        Classification.objects.filter(pk__in=[c.pk for c in approved]).update(review_status=ReviewStatus.DECIDED)
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(actor=user, actor_name=user.get_username(), action="review.approve",
                           object_type=Classification._meta.label_lower, object_id=str(c.pk),
                           object_repr=str(c)[:300], before={"review_status": c.review_status},
                           after={"review_status": ReviewStatus.DECIDED, "review": review.pk,
                                  "decision": Decision.APPROVE, "bulk": True})
                for c, review in zip(approved, reviews, strict=True)
            ]
        )
        item_ids = sorted({c.item_id for c in approved})
        still_open = set(Classification.objects.awaiting_review().filter(item_id__in=item_ids)
                         .values_list("item_id", flat=True))
        released = [pk for pk in item_ids if pk not in still_open]
        Claim.objects.filter(item_id__in=released, user=user).delete()
        transaction.on_commit(
            _broadcast("review_decided", classification_ids=[c.pk for c in approved], item_ids=item_ids,
                       username=user.get_username(), decision=Decision.APPROVE),
            robust=True,
        )
        for item_id in item_ids:
            transaction.on_commit(lambda item_id=item_id: _notify_decision(item_id), robust=True)
    return BulkResult(approved=[c.pk for c in approved], refused=refused)


@transaction.atomic
def set_disturbing_categories(*, actor: Any, codes: list[str]) -> list[str]:
    """Make exactly `codes` the categories whose content is blurred (an admin's setting, audited)."""
    from console.models import DisturbingCategory

    wanted = {code.strip().upper() for code in codes if code.strip()}
    too_long = [code for code in wanted if len(code) > 60]
    if too_long:
        raise ReviewError(f"A category code has at most 60 characters: {too_long[0][:70]}")
    current = {row.code: row for row in DisturbingCategory.objects.select_for_update()}
    for code in sorted(set(current) - wanted):
        row = current[code]
        record(actor=actor, action="wellness.unmarked", obj=row, before={"code": code})
        row.delete()
    for code in sorted(wanted - set(current)):
        row = DisturbingCategory.objects.create(code=code, created_by=actor if getattr(actor, "pk", None) else None)
        record(actor=actor, action="wellness.marked", obj=row, after={"code": code})
    return sorted(wanted)
