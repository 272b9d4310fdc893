"""The audit trail in Django's admin (read only), the read-only admin base other apps use, and the
mirror that writes changes made in the admin (users, groups) into the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.writer import Entry, record_many


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that change only through the console's audited services."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "actor_name", "action", "object_type", "object_id", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("actor_name", "object_repr", "object_id")
    date_hierarchy = "created_at"


@receiver(post_save, sender=LogEntry)
def mirror_admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    """Changes made in Django's admin (users, groups) land in our audit trail too."""
    if not created:
        return
    action = {1: "admin.added", 2: "admin.changed", 3: "admin.deleted"}.get(instance.action_flag, "admin.action")
    content_type = instance.content_type
    record_many(
        actor=instance.user,
        object_type=f"{content_type.app_label}.{content_type.model}" if content_type else "",
        entries=[Entry(action=action, object_id=instance.object_id or "", object_repr=instance.object_repr,
                       after={"change": instance.get_change_message()})],
    )
