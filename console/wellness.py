"""Moderator wellness: the categories whose content the item page blurs until a moderator asks to see it
(an admin's setting, audited), and whether an item falls under one."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.writer import record
from console.errors import ReviewError
from console.models import Classification, DisturbingCategory


def disturbing_codes() -> set[str]:
    return set(DisturbingCategory.objects.values_list("code", flat=True))


def is_disturbing(classifications: list[Classification], codes: set[str]) -> bool:
    """Whether any verdict on the item puts it under a category an admin marked as disturbing."""
    if not codes:
        return False
    return any(
        value and value.upper() in codes
        for c in classifications
        for value in (c.category, c.label, *(c.rule_ids or []))
    )


@transaction.atomic
def set_disturbing_categories(*, actor: Any, codes: list[str]) -> list[str]:
    """Make exactly `codes` the categories whose content is blurred (an admin's setting, audited)."""
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
