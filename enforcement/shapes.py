"""Actions and statements as the API, the webhooks and the item page show them (JSON-ready dicts)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from enforcement import transparency
from enforcement.models import Action, ActionType, Appeal, Statement

SCOPE = {ActionType.SUSPEND_ACCOUNT: "account"}  # every other restriction applies to the content


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def action_shape(action: Action) -> dict[str, Any]:
    return {
        "type": action.action,
        "duration_days": action.duration_days,
        "decided_code": action.decided_code,
        "violation": action.violation,
        "decided_at": _iso(action.decided_at),
    }


def statement_shape(statement: Statement) -> dict[str, Any]:
    action = statement.action
    version = action.policy_version
    return {
        "object": "statement",
        "puid": str(statement.puid),
        "policy": version.policy.slug,
        "version": version.number,
        "withdrawn": statement.withdrawn_at is not None,
        "restriction": {
            "type": action.action,
            "scope": SCOPE.get(action.action, "content"),
            "duration_days": action.duration_days,
            "end_date": statement.end_date.isoformat() if statement.end_date else None,
        },
        "facts": statement.facts,
        "ground": {
            "type": statement.decision_ground,
            "policy_name": version.policy.name,
            "policy_version": version.number,
            "rule_ids": statement.cited_rules,
            "text": statement.ground,
            "legal_ground": statement.legal_ground or None,
        },
        "automated_detection": statement.automated_detection,
        "automated_decision": statement.automated_decision,
        "source_type": statement.source_type,
        "application_date": statement.application_date.isoformat(),
        "content_date": statement.content_date.isoformat(),
        "redress": settings.ENFORCEMENT_REDRESS_TEXT,
        "transparency_database": transparency.submission(statement),
    }


def for_items(item_ids: list[int]) -> list[tuple[Action, Statement | None]]:
    """Every action of these items with its statement (None for "none"), oldest first."""
    actions = (Action.objects.filter(item_id__in=item_ids)
               .select_related("policy_version__policy", "statement").order_by("created_at", "id"))
    return [(a, getattr(a, "statement", None)) for a in actions]


def by_policy(item_id: int) -> dict[tuple[str, int], dict[str, Any]]:
    """{(policy slug, version number): {"action": ..., "statement": ...}} for a webhook payload."""
    out = {}
    for action, statement in for_items([item_id]):
        key = (action.policy_version.policy.slug, action.policy_version.number)
        current = statement if statement is not None and statement.withdrawn_at is None else None
        out[key] = {"action": action_shape(action), "statement": statement_shape(current) if current else None}
    return out


def appeal_shape(appeal: Appeal) -> dict[str, Any]:
    """An appeal as its platform sees it: no moderator's name (personal data stays in the console)."""
    version = appeal.action.policy_version
    return {
        "object": "appeal",
        "id": appeal.pk,
        "item_id": appeal.item_id,
        "external_id": appeal.external_id or None,
        "policy": version.policy.slug,
        "version": version.number,
        "complainant": appeal.complainant,
        "reason": appeal.reason,
        "status": appeal.status,
        "received_at": _iso(appeal.received_at),
        "due_at": _iso(appeal.due_at),
        "decided_at": _iso(appeal.decided_at),
        "outcome_reason": appeal.outcome_reason or None,
    }


def appeal_outcome(appeal: Appeal) -> dict[str, Any]:
    """The appeal with the action now in force and its current statement of reasons (None when the
    action no longer restricts): what the platform is told once the appeal is decided."""
    action = Action.objects.select_related("policy_version__policy", "statement").get(pk=appeal.action_id)
    statement = getattr(action, "statement", None)
    current = statement if statement is not None and statement.withdrawn_at is None else None
    return {**appeal_shape(appeal), "action": action_shape(action),
            "statement": statement_shape(current) if current else None}
