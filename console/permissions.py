"""Who may work the review queues and decide what: the review app's rules on top of the roles."""

from __future__ import annotations

from typing import Any

from accounts.roles import Role, roles_of
from console.models import ReviewStatus


def can_review(user: Any) -> bool:
    """Whether `user` works the review queues at all."""
    return bool(roles_of(user) & {Role.MODERATOR, Role.ADMIN})


def can_decide(user: Any, classification: Any) -> bool:
    """Whether `user` may decide this classification: escalations go to seniors (the admin role)."""
    if classification.review_status == ReviewStatus.ESCALATED:
        return Role.ADMIN in roles_of(user)
    return can_review(user)
