"""Policies and their versions in Django's admin, read only (they change through the policy pages)."""

from __future__ import annotations

from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from policies_app.models import Policy, PolicyVersion


class VersionInline(admin.TabularInline):
    model = PolicyVersion
    fields = ("number", "status", "change_note", "author", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    inlines = [VersionInline]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ("policy", "number", "status", "label_scheme", "output_format", "reasoning_effort", "created_at")
    list_filter = ("status", "label_scheme", "output_format")
    list_select_related = ("policy",)
