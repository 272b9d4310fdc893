"""What every page's template knows about its viewer: their roles."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.roles import Role, roles_of


def console(request: HttpRequest) -> dict[str, Any]:
    roles = roles_of(getattr(request, "user", None))
    return {
        "site_name": settings.SITE_NAME,
        "is_moderator": Role.MODERATOR in roles,
        "is_policy_writer": Role.POLICY_WRITER in roles,
        "is_admin": Role.ADMIN in roles,
        "engine_configured": bool(settings.SAFEGUARD_BACKEND),
    }
