"""Retention rules (per source) and erasure requests. The redactions themselves are in
`privacy.redaction`; `privacy.retention` and `privacy.erasure` decide what to redact and audit it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RetentionKind(models.TextChoices):
    """What retention removes, each after its own number of days."""

    CONTENT = "content", "Content (text, turns, metadata values)"
    REASONING = "reasoning", "The model's reasoning"
    RAW_OUTPUT = "raw_output", "Raw model outputs"


class RetentionRule(models.Model):
    """How long one source's items keep their text, counted from when the item arrived. Empty: forever.
    Sources without a rule follow the RETENTION_*_DAYS settings."""

    source = models.CharField(max_length=100, unique=True, help_text="An item source (an API client's source)")
    content_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: kept forever")
    reasoning_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: kept forever")
    raw_output_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: kept forever")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source"]
        constraints = [models.CheckConstraint(condition=~Q(source=""), name="retention_rule_source_not_empty")]

    def __str__(self) -> str:
        return f"retention for {self.source}"

    def days(self, kind: str) -> int | None:
        return getattr(self, f"{kind}_days")


class Erasure(models.Model):
    """One erasure request: which item (kept by id, source and external id, which are not erased), who
    asked, when, and how many rows of each kind were redacted. One per item: asking again is answered
    with this one."""

    item = models.OneToOneField("console.Item", null=True, on_delete=models.SET_NULL, related_name="erasure")
    item_pk = models.BigIntegerField(help_text="The item's id, kept if the item row is ever deleted")
    source = models.CharField(max_length=100)
    external_id = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", help_text="The admin who filed it (none for the API)")
    requested_via = models.CharField(max_length=150, help_text="api:<client name>, or the admin's username")
    counts = models.JSONField(default=dict, blank=True, help_text="Rows redacted, per kind")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"erasure of item {self.source}:{self.external_id or self.item_pk}"
