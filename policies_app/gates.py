"""What must hold before a version is published, as told by the layers above (the evaluation workbench
registers its check in its AppConfig.ready): each check returns evidence rows for the publish page,
and a row that blocks stops the publish unless an admin publishes anyway with a reason (audited)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from policies_app.models import PolicyVersion


@dataclass(frozen=True)
class Evidence:
    """One row of the publish page: what was measured, and whether it stops the publish (and why)."""

    title: str
    facts: dict[str, Any] = field(default_factory=dict)
    blocking: bool = False
    reason: str = ""
    link: str = ""


Check = Callable[[PolicyVersion], list[Evidence]]
_checks: list[Check] = []


def register(check: Check) -> None:
    if check not in _checks:
        _checks.append(check)


def evidence_for(version: PolicyVersion) -> list[Evidence]:
    """Every registered check's evidence for publishing `version`."""
    return [row for check in _checks for row in check(version)]
