"""Django admin: a read-mostly view for admins. Decisions and policy edits go through the console,
where they are validated and audited; the admin's own changes are mirrored into the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db.models.signals import post_save
from django.dispatch import receiver

from console.models import AuditEvent, Classification, Item, Review


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "source", "external_id", "created_at")
    list_filter = ("kind", "source")
    search_fields = ("external_id", "content")


@admin.register(Classification)
class ClassificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "item", "policy_version", "stage", "status", "label", "violation", "confidence")
    list_filter = ("stage", "status", "violation")
    list_select_related = ("item", "policy_version__policy")


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "classification", "decision", "label", "reviewer", "created_at")
    list_filter = ("decision",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "object_type", "object_id", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("actor_name", "object_repr", "object_id")
    date_hierarchy = "created_at"


@receiver(post_save, sender=LogEntry)
def mirror_admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    """Changes made in Django's admin (users, groups) land in our audit trail too."""
    if not created:
        return
    action = {1: "admin.added", 2: "admin.changed", 3: "admin.deleted"}.get(instance.action_flag, "admin.action")
    AuditEvent.objects.create(
        actor_id=instance.user_id,
        actor_name=instance.user.get_username(),
        action=action,
        object_type=f"{instance.content_type.app_label}.{instance.content_type.model}" if instance.content_type else "",
        object_id=instance.object_id or "",
        object_repr=instance.object_repr[:300],
        after={"change": instance.get_change_message()},
    )
