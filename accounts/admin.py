"""Django's user admin, narrowed for console admins: they manage accounts, never privileges.

A console admin holds `auth.add_user` and `auth.change_user` so that they can create accounts and fix
their details. Django's stock user admin would also let them make anyone a superuser, hand out single
permissions or groups behind the audited role page (console *Team*), or set another admin's password.
Here only superusers may do those; roles change through `accounts.roles.set_roles` alone.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from accounts.roles import Role, roles_of

User = get_user_model()
PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")


class ConsoleUserAdmin(UserAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, *PRIVILEGE_FIELDS)

    def _guards_a_peer(self, request: HttpRequest, obj: Any) -> bool:
        """Whether `obj` is a superuser or another admin, whom only a superuser may change."""
        if obj is None or request.user.is_superuser or obj.pk == request.user.pk:
            return False
        return obj.is_superuser or Role.ADMIN in roles_of(obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._guards_a_peer(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._guards_a_peer(request, obj) and super().has_delete_permission(request, obj)


admin.site.unregister(User)
admin.site.register(User, ConsoleUserAdmin)
