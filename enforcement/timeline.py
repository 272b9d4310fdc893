"""An item's whole story in time order, for its page: arrival, verdicts, moderators' reviews, the
actions and statements they led to, and appeals filed and decided."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.models import Classification, Item, Review
from enforcement.models import Action, Appeal


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: str  # arrived, classified, reviewed, action, appeal_filed, appeal_decided
    obj: Any


def item_timeline(item: Item) -> list[Event]:
    classifications = list(Classification.objects.filter(item=item).select_related("policy_version__policy"))
    reviews = Review.objects.filter(classification__item=item).select_related("reviewer",
                                                                              "classification__policy_version")
    actions = Action.objects.filter(item=item).select_related("policy_version__policy", "statement")
    appeals = list(Appeal.objects.filter(item=item).select_related("decided_by", "action__policy_version__policy"))
    events = [Event(item.created_at, "arrived", item)]
    events += [Event(c.finished_at or c.created_at, "classified", c) for c in classifications]
    events += [Event(r.created_at, "reviewed", r) for r in reviews]
    # An action shows as it stands now, at its first recording (a reversal's change is the appeal's event).
    events += [Event(a.created_at, "action", a) for a in actions]
    events += [Event(a.received_at, "appeal_filed", a) for a in appeals]
    events += [Event(a.decided_at, "appeal_decided", a) for a in appeals if a.decided_at]
    # At the same moment the cause goes first: a review before its action, a filing before its decision.
    order = {"arrived": 0, "classified": 1, "reviewed": 2, "action": 3, "appeal_filed": 4, "appeal_decided": 5}
    return sorted(events, key=lambda e: (e.at, order[e.kind]))
