"""The three roles, as Django groups. Superusers hold every role."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied


class Role(StrEnum):
    MODERATOR = "moderator"
    POLICY_WRITER = "policy_writer"
    ADMIN = "admin"


ROLE_LABELS = {Role.MODERATOR: "Moderator", Role.POLICY_WRITER: "Policy writer", Role.ADMIN: "Admin"}


def roles_of(user: Any) -> frozenset[Role]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(Role)
    cached = getattr(user, "_console_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        user._console_roles = cached
    return cached


def has_role(user: Any, *roles: Role) -> bool:
    return bool(roles_of(user) & set(roles))


def role_required(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse (403) a signed-in user who holds none of `roles`. Login itself is enforced by
    LoginRequiredMiddleware for every page."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not has_role(request.user, *roles):
                raise PermissionDenied("Your role does not give access to this page")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
