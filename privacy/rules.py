"""Retention rules change only through these audited functions (the admin pages call them)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.writer import record
from privacy.models import RetentionRule

FIELDS = ("source", "content_days", "reasoning_days", "raw_output_days")


def _snapshot(rule: RetentionRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in FIELDS}


@transaction.atomic
def save_rule(*, actor: Any, rule: RetentionRule) -> RetentionRule:
    """Store a new or changed rule (validated by the form that built it) and audit the change."""
    stored = RetentionRule.objects.select_for_update().filter(pk=rule.pk).first() if rule.pk else None
    before = _snapshot(stored) if stored else None
    rule.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    rule.save()
    record(actor=actor, action="retention_rule.changed" if before else "retention_rule.created", obj=rule,
           before=before, after=_snapshot(rule))
    return rule


@transaction.atomic
def delete_rule(*, actor: Any, rule: RetentionRule) -> None:
    """Remove a rule (its source follows the defaults again), audited."""
    record(actor=actor, action="retention_rule.deleted", obj=rule, before=_snapshot(rule))
    rule.delete()
