"""What every page's template knows about its viewer: their roles, and for admins a broken audit chain."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.roles import Role, roles_of
from audit.models import ChainCheck


def console(request: HttpRequest) -> dict[str, Any]:
    roles = roles_of(getattr(request, "user", None))
    is_admin = Role.ADMIN in roles
    return {
        "site_name": settings.SITE_NAME,
        "is_moderator": Role.MODERATOR in roles,
        "is_policy_writer": Role.POLICY_WRITER in roles,
        "is_admin": is_admin,
        "engine_configured": bool(settings.SAFEGUARD_BACKEND),
        # The newest chain check, when it failed: shown on every page until a later check passes.
        "audit_alarm": ChainCheck.objects.latest_failure() if is_admin else None,
    }
