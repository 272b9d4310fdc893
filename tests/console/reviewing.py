"""Classifications in the states the review console shows, made the way the workers leave them: a
reasoner result is claimed and stored by the reasoner's own pipeline (its SQL, its audit events)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from console.models import Classification, Stage
from reasoner.pipeline import Pipeline
from safeguard.engines.scripted import ScriptedEngine
from safeguard.verdict import PARSE_QUALITIES
from tests.factories import make_item, make_policy

REASONING = "The content promotes a product with a link, which SP2.a forbids; nothing in SP0.a applies."


def store_reasoner_result(classification: Classification, **fields: Any) -> Classification:
    """Claim a queued reasoner classification and store `fields` (Outcome's: status, label, ...) for it
    through `Pipeline.store`, as the worker does after reading the model's answer."""
    pipeline = Pipeline(ScriptedEngine(), "test-worker")
    now = timezone.now()
    with transaction.atomic():
        batch = pipeline.claim(1, now=now, ids=[classification.pk])
        [row] = batch.sent
        status = fields.pop("status")
        pipeline.store([pipeline.outcome(row, status, now, finished_at=now, **fields)], now=now)
    classification.refresh_from_db()
    return classification


def make_verdict(version: Any = None, *, stage: str = Stage.REASONER, status: str = "done", violation: Any = True,
                 label: str | None = None, category: str = "", rule_ids: list[str] | None = None,
                 confidence: float | None = 0.9, rationale: str = "Links to a shop.", reasoning: str = REASONING,
                 needs_review: bool = True, raw_output: str = "", parse_quality: str | None = None,
                 **item_fields: Any) -> Classification:
    """An item with one classification in the given state (a reasoner verdict unless stage="fast")."""
    version = version or make_policy()
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
        # How the worker would have read such an answer: a verdict reads clean, the rest as their status.
        "parse_quality": parse_quality if parse_quality is not None else (
            "clean" if done else (status if status in PARSE_QUALITIES else "")
        ),
        "raw_output": raw_output,
    }
    if stage == Stage.REASONER:
        # One transaction: the classification is never seen queued, so a running worker cannot take it first.
        with transaction.atomic():
            item = make_item(versions=[version], **item_fields)
            return store_reasoner_result(item.classifications.get(), **fields)
    # A first-pass verdict, as ingestion writes one for a policy whose first pass scored the item.
    item = make_item(versions=[], **item_fields)
    fields["parse_quality"] = ""  # the first pass scores; it writes no answer to read
    classification = Classification.objects.create(item=item, policy_version=version, stage=stage,
                                                   finished_at=timezone.now(), **fields)
    classification.refresh_from_db()
    return classification
