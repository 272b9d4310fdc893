"""The three roles, kept as Django groups (superusers hold every role): who holds which (`roles_of`),
the view decorator that checks them (`role_required`), and the admin's audited change (`set_roles`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction

from audit.writer import record


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


@transaction.atomic
def set_roles(*, actor: Any, user: Any, roles: set[Role]) -> None:
    """Give `user` exactly `roles` (an admin's decision, audited)."""
    unknown = {str(r) for r in roles} - {r.value for r in Role}
    if unknown:
        raise ValueError(f"Unknown roles: {', '.join(sorted(unknown))}")
    if user.pk == getattr(actor, "pk", None) and Role.ADMIN not in roles and not user.is_superuser:
        raise ValueError("You cannot remove your own admin role: ask another admin")
    before = sorted(r.value for r in roles_of(user))
    groups = Group.objects.filter(name__in=[Role(r).value for r in roles])
    user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
    user.groups.add(*groups)
    # Admins manage users and groups in Django's admin too; staff status follows the admin role.
    user.is_staff = Role.ADMIN in roles or user.is_superuser
    user.save(update_fields=["is_staff"])
    user.__dict__.pop("_console_roles", None)
    after = sorted(Role(r).value for r in roles)
    if before != after:
        record(actor=actor, action="user.roles_changed", obj=user, before={"roles": before}, after={"roles": after})
