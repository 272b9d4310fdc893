"""Classifications in the states the review console shows, made the way the workers leave them."""

from __future__ import annotations

from typing import Any

from console.models import Classification, Stage
from tests.factories import make_item, make_policy

REASONING = "The content promotes a product with a link, which SP2.a forbids; nothing in SP0.a applies."


def make_verdict(version: Any = None, *, stage: str = Stage.REASONER, status: str = "done", violation: Any = True,
                 label: str | None = None, category: str = "", rule_ids: list[str] | None = None,
                 confidence: float | None = 0.9, rationale: str = "Links to a shop.", reasoning: str = REASONING,
                 needs_review: bool = True, **item_fields: Any) -> Classification:
    """An item with one classification in the given state (a reasoner verdict unless stage="fast")."""
    version = version or make_policy()
    item = make_item(versions=[version] if stage == Stage.REASONER else [], **item_fields)
    done = status == "done"
    fields = {
        "status": status,
        "violation": violation if done else None,
        "label": (label if label is not None else ("1" if violation else "0")) if done else "",
        "category": category,
        "rule_ids": rule_ids if rule_ids is not None else (["SP2.a"] if done and violation else []),
        "confidence": confidence if done else None,
        "rationale": rationale if done else "",
        "reasoning": reasoning,
        "needs_review": needs_review,
        "model_name": "scripted-test-engine" if stage == Stage.REASONER else "first-pass #1",
        "error": "" if done else f"the model's answer was {status}",
    }
    if stage == Stage.REASONER:
        classification = item.classifications.get()
        Classification.objects.filter(pk=classification.pk).update(**fields)
    else:
        classification = Classification.objects.create(item=item, policy_version=version, stage=stage, **fields)
    classification.refresh_from_db()
    return classification
