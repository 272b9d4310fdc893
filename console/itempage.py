"""What the item page shows. One function builds the context, for the page and for the partials the
WebSocket consumer swaps in later, so a live update renders exactly what a reload would."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from console.models import (
    Claim,
    Classification,
    ClassificationStatus,
    Comment,
    Item,
    Review,
    ReviewStatus,
    Skip,
)
from console.permissions import can_decide
from console.wellness import disturbing_codes, is_disturbing
from policies_app.models import RULE_ID_RE

PARTS = ("claim", "verdict", "actions", "history")


def policy_html(text: str, cited: set[str]) -> SafeString:
    """The policy text, escaped, with every rule ID marked and anchored.

    The first mention of a rule is `#rule-<ID>` (what the verdict links to); later mentions are
    `#rule-<ID>-2`, `-3`, ... Rules the verdict cites carry the class "cited".
    """
    pieces: list[str] = []
    seen: dict[str, int] = {}
    position = 0
    for match in RULE_ID_RE.finditer(text):
        rule = match.group(1)
        seen[rule] = seen.get(rule, 0) + 1
        anchor = f"rule-{rule}" if seen[rule] == 1 else f"rule-{rule}-{seen[rule]}"
        pieces.append(escape(text[position : match.start()]))
        pieces.append(format_html('<mark class="rule{}" id="{}">{}</mark>', " cited" if rule in cited else "",
                                  anchor, rule))
        position = match.end()
    pieces.append(escape(text[position:]))
    return mark_safe("".join(pieces))  # every piece is escaped or built by format_html


def link_rules(text: str, known: set[str]) -> SafeString:
    """Text (reasoning, rationale), escaped, with each rule ID the policy defines linked to its text."""
    pieces: list[str] = []
    position = 0
    for match in RULE_ID_RE.finditer(text):
        rule = match.group(1)
        if rule not in known:
            continue
        pieces.append(escape(text[position : match.start()]))
        pieces.append(format_html('<a class="rule-ref" href="#rule-{}">{}</a>', rule, rule))
        position = match.end()
    pieces.append(escape(text[position:]))
    return mark_safe("".join(pieces))  # every piece is escaped or built by format_html


@dataclass
class Event:
    """One line of the item's history."""

    at: datetime
    kind: str  # classification, review, comment, skip
    obj: Any


def choose_current(classifications: list[Classification], viewer: Any, wanted: int | None) -> Classification | None:
    """The classification the page is about: the one asked for, else the first the viewer can decide,
    else the first awaiting anyone, else the newest."""
    by_id = {c.pk: c for c in classifications}
    if wanted in by_id:
        return by_id[wanted]
    awaiting = [c for c in classifications if c.queue]
    for c in awaiting:
        if can_decide(viewer, c):
            return c
    if awaiting:
        return awaiting[0]
    return classifications[-1] if classifications else None


def item_context(item: Item, viewer: Any, current_id: int | None = None) -> dict[str, Any]:
    """Everything the item page and its partials show, for `viewer`."""
    now = timezone.now()
    classifications = list(
        Classification.objects.filter(item=item).select_related("policy_version__policy").order_by("created_at", "id")
    )
    current = choose_current(classifications, viewer, current_id)
    ids = [c.pk for c in classifications]
    reviews = list(Review.objects.filter(classification_id__in=ids).select_related("reviewer")
                   .order_by("created_at", "id"))
    comments = list(Comment.objects.filter(item=item).select_related("author").order_by("created_at", "id"))
    skips = list(Skip.objects.filter(classification_id__in=ids).select_related("user").order_by("created_at"))
    claim = Claim.objects.live(now).select_related("user").filter(item=item).first()
    history = [Event(c.finished_at or c.created_at, "classification", c) for c in classifications]
    history += [Event(r.created_at, "review", r) for r in reviews]
    history += [Event(c.created_at, "comment", c) for c in comments]
    history += [Event(s.created_at, "skip", s) for s in skips]
    history.sort(key=lambda e: e.at)
    context: dict[str, Any] = {
        "item": item,
        "viewer": viewer,
        "classifications": classifications,
        "current": current,
        "history": history,
        "claim": claim,
        "claim_is_mine": claim is not None and claim.user_id == viewer.pk,
        "disturbing": is_disturbing(classifications, disturbing_codes()),
        "others_awaiting": [c for c in classifications if c.queue and c is not current],
    }
    if current is not None:
        version = current.policy_version
        known = set(version.rule_ids)
        cited = set(current.rule_ids or [])
        last_review = next((r for r in reversed(reviews) if r.classification_id == current.pk), None)
        awaiting = current.queue is not None
        context.update(
            version=version,
            policy_html=policy_html(version.text, cited),
            cited_rules=[(rule, rule in known) for rule in current.rule_ids or []],
            reasoning_html=link_rules(current.reasoning, known),
            rationale_html=link_rules(current.rationale, known),
            last_review=last_review,
            seen_review=last_review.pk if last_review else 0,
            awaiting=awaiting,
            has_verdict=current.status == ClassificationStatus.DONE,
            escalated=current.review_status == ReviewStatus.ESCALATED,
            may_decide=awaiting and can_decide(viewer, current)
            and (claim is None or claim.user_id == viewer.pk),
            label_choices=version.label_choices(),
            policy_rules=version.rule_ids,
            recent_reasons=recent_reasons(viewer),
        )
    return context


def recent_reasons(viewer: Any, limit: int = 8) -> list[str]:
    """The viewer's latest distinct override reasons: offered again, so that the same reason is written
    the same way and the dashboard can count it."""
    reasons = Review.objects.filter(reviewer_id=viewer.pk, decision="override").order_by("-created_at")
    return list(dict.fromkeys(reasons.values_list("reason", flat=True)[:50]))[:limit]
