"""Policies and their immutable versions.

A policy is a name; what the model reads is a PolicyVersion. Every edit makes a new version, so any
verdict can be traced to the exact text it was judged against.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Lower
from django.urls import reverse

from safeguard import PolicySpec
from safeguard.labels import is_safe_label

# Rule IDs as policies write them: SP2, SP2.a, HB1.b, PI3 ...
RULE_ID_RE = re.compile(r"\b([A-Z]{1,4}\d{1,2}(?:\.[a-z0-9]{1,3})?)\b")


class ContentKind(models.TextChoices):
    """The kinds of content a policy is applied to (the console's items, the preview's samples)."""

    MESSAGE = "message", "Message"
    COMPLETION = "completion", "Model completion"
    CONVERSATION = "conversation", "Conversation"


class LabelScheme(models.TextChoices):
    BINARY = "binary", "Binary (0 / 1)"
    VALID_INVALID = "valid_invalid", "VALID / INVALID"
    CATEGORIES = "categories", "Named categories with rule IDs"


class OutputFormat(models.TextChoices):
    BINARY = "binary", "A bare 0 or 1"
    LABEL = "label", "One label word or code"
    JSON = "json", "A JSON object"


class ReasoningEffort(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class PolicyQuerySet(models.QuerySet["Policy"]):
    def matching(self, query: str) -> PolicyQuerySet:
        """Policies whose name contains `query` (any case); all of them for an empty query."""
        query = query.strip()
        return self.filter(name__icontains=query) if query else self

    def with_version_summary(self) -> PolicyQuerySet:
        """Annotated with the published version number and the latest version's number, status, time
        and author, in one query (the list page shows these for every policy)."""
        versions = PolicyVersion.objects.filter(policy=OuterRef("pk"))
        latest = versions.order_by("-number")
        return self.annotate(
            published_number=Subquery(versions.filter(status=VersionStatus.PUBLISHED).values("number")[:1]),
            latest_number=Subquery(latest.values("number")[:1]),
            latest_status=Subquery(latest.values("status")[:1]),
            latest_created_at=Subquery(latest.values("created_at")[:1]),
            latest_author=Subquery(latest.values("author__username")[:1]),
        )


class Policy(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "policies"
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="policy_name_unique_ci"),
            models.CheckConstraint(condition=~Q(name=""), name="policy_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("policies:detail", args=[self.slug])

    def latest_version(self) -> PolicyVersion | None:
        return self.versions.order_by("-number").first()

    def published_version(self) -> PolicyVersion | None:
        return self.versions.filter(status=VersionStatus.PUBLISHED).first()


class PolicyVersionQuerySet(models.QuerySet["PolicyVersion"]):
    def published(self) -> PolicyVersionQuerySet:
        """Versions that new items are classified against: at most one per policy."""
        return self.filter(status=VersionStatus.PUBLISHED)


# Fields that make up what the model reads; none may change once saved (a database trigger agrees).
CONTENT_FIELDS = ("text", "label_scheme", "labels", "output_format", "reasoning_effort")


class PolicyVersion(models.Model):
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    text = models.TextField()
    label_scheme = models.CharField(max_length=20, choices=LabelScheme.choices, default=LabelScheme.BINARY)
    labels = models.JSONField(
        default=list, blank=True, help_text="Label words or category codes the policy answers with"
    )
    output_format = models.CharField(max_length=10, choices=OutputFormat.choices, default=OutputFormat.JSON)
    reasoning_effort = models.CharField(
        max_length=10, choices=ReasoningEffort.choices, default=ReasoningEffort.MEDIUM
    )
    change_note = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    objects = PolicyVersionQuerySet.as_manager()

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policy_version_number_unique"),
            models.UniqueConstraint(
                fields=["policy"],
                condition=Q(status=VersionStatus.PUBLISHED),
                name="one_published_version_per_policy",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="policy_version_number_positive"),
            models.CheckConstraint(condition=~Q(text=""), name="policy_version_text_not_empty"),
            models.CheckConstraint(
                condition=Q(status__in=VersionStatus.values), name="policy_version_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(reasoning_effort__in=ReasoningEffort.values), name="policy_version_effort_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy.name} v{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("policies:version", args=[self.policy.slug, self.number])

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is None:
            self.content_hash = compute_content_hash(self)
        else:
            stored = PolicyVersion.objects.filter(pk=self.pk).values(*CONTENT_FIELDS, "policy_id").first()
            if stored and any(stored[f] != getattr(self, f) for f in CONTENT_FIELDS):
                raise ImmutableVersionError(f"{self} is immutable: save a new version instead")
        super().save(*args, **kwargs)

    @property
    def rule_ids(self) -> list[str]:
        """Rule IDs the text defines, in order of first appearance."""
        return list(dict.fromkeys(RULE_ID_RE.findall(self.text)))

    def label_choices(self) -> list[tuple[str, str]]:
        """The labels a moderator may correct a verdict to, in this version's own scheme."""
        if self.label_scheme == LabelScheme.BINARY:
            return [("1", "1 · violation"), ("0", "0 · no violation")]
        if self.label_scheme == LabelScheme.VALID_INVALID:
            return [("INVALID", "INVALID · violation"), ("VALID", "VALID · no violation")]
        return [(code, f"{code} · {'no violation' if is_safe_label(code) else 'violation'}")
                for code in self.labels or []]

    def as_spec(self) -> PolicySpec:
        """What the model engine reads of this version."""
        return PolicySpec(
            text=self.text,
            reasoning_effort=self.reasoning_effort,
            output_format=self.output_format,
            label_scheme=self.label_scheme,
            labels=tuple(self.labels or ()),
        )


class ImmutableVersionError(Exception):
    pass


def compute_content_hash(version: PolicyVersion) -> str:
    payload = {f: getattr(version, f) for f in CONTENT_FIELDS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
