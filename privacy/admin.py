"""Retention rules and erasures in Django's admin, for admins: rules are edited there (through the
audited `privacy.rules`), erasures are filed there by item id or by source and external id, after a
confirmation page that shows the item, and listed read only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from accounts.roles import Role, has_role
from privacy import erasure, rules
from privacy.models import Erasure, RetentionRule


class AdminsOnly:
    """Only the console's admins see and change these (whatever Django permissions say)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)


@admin.register(RetentionRule)
class RetentionRuleAdmin(AdminsOnly, admin.ModelAdmin):
    list_display = ("source", "content_days", "reasoning_days", "raw_output_days", "updated_by", "updated_at")
    fields = ("source", "content_days", "reasoning_days", "raw_output_days")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def save_model(self, request: HttpRequest, obj: RetentionRule, form: Any, change: bool) -> None:
        rules.save_rule(actor=request.user, rule=obj)

    def delete_model(self, request: HttpRequest, obj: RetentionRule) -> None:
        rules.delete_rule(actor=request.user, rule=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for rule in queryset:
            rules.delete_rule(actor=request.user, rule=rule)


class ErasureForm(forms.Form):
    item_id = forms.IntegerField(required=False, min_value=1, label="Item id")
    source = forms.CharField(required=False, max_length=100)
    external_id = forms.CharField(required=False, max_length=200, label="External id")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            data["item"] = erasure.find_item(item_id=data.get("item_id"), source=data.get("source", ""),
                                             external_id=data.get("external_id", ""))
        except erasure.ErasureError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return data


@admin.register(Erasure)
class ErasureAdmin(AdminsOnly, admin.ModelAdmin):
    list_display = ("created_at", "item_pk", "source", "external_id", "requested_via")
    search_fields = ("source", "external_id", "requested_via")
    readonly_fields = ("item_pk", "source", "external_id", "requested_by", "requested_via", "counts", "created_at")
    exclude = ("item",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # filed through file_view, after its confirmation

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [path("file/", self.admin_site.admin_view(self.file_view), name="privacy_erasure_file"),
                *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "file_url": reverse("admin:privacy_erasure_file")})

    def file_view(self, request: HttpRequest) -> HttpResponse:
        """Step one names the item; step two (the confirmation, showing it) erases it."""
        if not has_role(request.user, Role.ADMIN):
            return HttpResponseRedirect(reverse("admin:index"))
        form = ErasureForm(request.POST or None)
        item = None
        if request.method == "POST" and form.is_valid():
            item = form.cleaned_data["item"]
            if form.cleaned_data["confirm"]:
                try:
                    record, created = erasure.erase_item(item_id=item.pk, actor=request.user)
                except erasure.ErasureError as exc:  # the item went between the two steps
                    form.add_error("item_id", str(exc))
                    return self._file_page(request, form, None)
                if created:
                    messages.success(request, f"Item {item.pk} was erased.")
                else:
                    messages.info(request, f"Item {item.pk} was already erased on {record.created_at:%Y-%m-%d}.")
                return HttpResponseRedirect(reverse("admin:privacy_erasure_change", args=[record.pk]))
        return self._file_page(request, form, item)

    def _file_page(self, request: HttpRequest, form: ErasureForm, item: Any) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form, "item": item,
                   "title": "Confirm the erasure" if item else "File an erasure"}
        return render(request, "admin/privacy/erasure/file.html", context)
