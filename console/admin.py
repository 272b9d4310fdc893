"""The review app's models in Django's admin, read only: decisions go through the console, where they are
validated and audited (the admin's own changes are mirrored into the audit trail by `audit.admin`)."""

from __future__ import annotations

from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from console.models import Classification, Item, Review


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
