"""Which action a decided category calls for: the policy's EnforcementRule for the code, else the
default (none for a safe label, remove for a violation). Policy writers and admins set the rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from audit.writer import record
from enforcement.models import ActionType, EnforcementRule
from enforcement.transparency import CATEGORIES
from policies_app.models import Policy

MAX_DURATION_DAYS = 3650


class RuleError(ValueError):
    """A rule that cannot be saved; the message says why."""


@dataclass(frozen=True, slots=True)
class Choice:
    action: str
    duration_days: int | None
    category: str  # "" : the ENFORCEMENT_TDB_CATEGORY setting


def default_action(*, violation: bool) -> str:
    """An unmapped code: no action when it is safe, removal when it is a violation."""
    return ActionType.REMOVE if violation else ActionType.NONE


def action_for(*, policy_id: int, codes: list[str], violation: bool) -> Choice:
    """The action for the first of `codes` (decided category, then label) the policy maps."""
    wanted = [code for code in codes if code]
    rules = {r.code: r for r in EnforcementRule.objects.filter(policy_id=policy_id, code__in=wanted)}
    for code in wanted:
        if code in rules:
            rule = rules[code]
            return Choice(rule.action, rule.duration_days if rule.action != ActionType.NONE else None, rule.category)
    return Choice(default_action(violation=violation), None, "")


def policy_codes(policy: Policy) -> list[str]:
    """The codes a rule may name: the labels of the policy's versions, newest first, without repeats."""
    seen: list[str] = []
    for version in policy.versions.order_by("-number"):
        for code, _ in version.label_choices():
            if code not in seen:
                seen.append(code)
    return seen


@transaction.atomic
def set_rule(*, user: Any, policy: Policy, code: str, action: str, duration_days: int | None = None,
             category: str = "") -> EnforcementRule:
    """Map `code` of `policy` to `action` (with an optional duration in days), audited."""
    code, category = (code or "").strip(), (category or "").strip()
    if not code:
        raise RuleError("Name the category code or label")
    if action not in ActionType.values:
        raise RuleError(f"{action!r} is not an action: choose one of {', '.join(ActionType.values)}")
    if category and category not in CATEGORIES:
        raise RuleError(f"{category!r} is not a Transparency Database category")
    if action == ActionType.NONE:
        duration_days = None
    if duration_days is not None and not 1 <= duration_days <= MAX_DURATION_DAYS:
        raise RuleError(f"A duration is 1 to {MAX_DURATION_DAYS} days (empty: indefinite)")
    rule = EnforcementRule.objects.select_for_update().filter(policy=policy, code=code).first()
    before = None if rule is None else {"action": rule.action, "duration_days": rule.duration_days,
                                        "category": rule.category}
    if rule is None:
        rule = EnforcementRule(policy=policy, code=code)
    rule.action, rule.duration_days, rule.category = action, duration_days, category
    rule.save()
    record(actor=user, action="enforcement.rule_set", obj=rule, before=before,
           after={"policy": policy.slug, "code": code, "action": action, "duration_days": duration_days,
                  "category": category})
    return rule
