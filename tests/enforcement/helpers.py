"""Decisions taken through the console's own services, with their on-commit receivers run."""

from __future__ import annotations

from typing import Any

from console import decisions


def approve(capture: Any, user: Any, classification: Any) -> Any:
    with capture(execute=True):
        return decisions.approve(user=user, classification_id=classification.pk, seen_review=0)


def override(capture: Any, user: Any, classification: Any, **fields: Any) -> Any:
    fields.setdefault("reason", "It advertises a shop with a link.")
    with capture(execute=True):
        return decisions.override(user=user, classification_id=classification.pk, seen_review=0, **fields)
