"""The demo's accountability trail: the moderator approves two of the demo's violating verdicts (so each
gets its action and statement of reasons), a platform's complaint against one waits in the appeals
queue for the second moderator, and a complaint against the other was already upheld by them.
"""

from __future__ import annotations

from typing import Any

from console import decisions
from console.models import Classification, ClassificationStatus, ReviewQueue
from enforcement import actions, appeals
from enforcement.models import Action, Appeal

COMPLAINTS = [
    ("demo-complaint-1", "The poster says the message was misread and asks for it to be restored.", None),
    ("demo-complaint-2", "The poster says the message was a joke between friends.",
     "Read again in full: the content breaks the rule the decision cites, and the complaint brings no new facts."),
]


def seed_accountability(moderator: Any, second_moderator: Any) -> int:
    """Idempotent: nothing happens once the demo has an appeal. Returns the number of appeals filed."""
    if Appeal.objects.exists():
        return 0
    verdicts = list(Classification.objects.in_queue(ReviewQueue.REVIEW)
                    .filter(status=ClassificationStatus.DONE, violation=True)
                    .order_by("created_at", "id").values_list("id", flat=True)[:len(COMPLAINTS)])
    for pk in verdicts:
        decisions.approve(user=moderator, classification_id=pk, seen_review=0)
    # Recorded on commit anyway; recorded here too (idempotent) so a caller's transaction gets them now.
    actions.record_for_items(Classification.objects.filter(pk__in=verdicts).values_list("item_id", flat=True))
    filed = 0
    for pk, (external_id, reason, outcome) in zip(verdicts, COMPLAINTS, strict=False):
        action = Action.objects.filter(classification_id=pk).first()
        if action is None:
            continue
        appeal, _ = appeals.file_appeal(item_id=action.item_id, reason=reason, external_id=external_id,
                                        filed_via="api:demo platform")
        if outcome:
            appeals.decide_appeal(user=second_moderator, appeal_id=appeal.pk, outcome="upheld", reason=outcome)
        filed += 1
    return filed
