"""Labelled sets and their examples, evaluation runs and the verdict of each example in a run.

A run's results carry the same answer columns as a live classification and are written by the same
reasoner pipeline (its evaluation lane), so a run measures exactly what live traffic would get.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse

from console.models import ClassificationStatus, ParseQuality
from policies_app.models import ContentKind
from safeguard import Content, Turn


def content_hash(kind: str, text: str, turns: list[dict[str, str]] | None) -> str:
    """What makes two examples the same example: their kind and content (not their label), so a file
    imported twice adds nothing and a relabelled row is recognised."""
    payload = json.dumps([kind, text, turns or []], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class LabeledSet(models.Model):
    """Examples labelled under one policy's scheme (a validation CSV, a golden set from reviews)."""

    policy = models.ForeignKey("policies_app.Policy", on_delete=models.CASCADE, related_name="labeled_sets")
    name = models.CharField(max_length=200)
    description = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=300, blank=True, help_text="Where the examples came from")
    required = models.BooleanField(
        default=False, help_text="A draft whose recall on this set drops too far cannot be published"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", Lower("name")]
        constraints = [
            models.UniqueConstraint("policy", Lower("name"), name="labeled_set_name_unique_per_policy"),
            models.CheckConstraint(condition=~Q(name=""), name="labeled_set_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.policy} / {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("evaluations:set", args=[self.pk])


class Example(models.Model):
    """One labelled piece of content. `label` is in the policy's own scheme (1/0, VALID/INVALID or a
    category code such as DC2); `violation` and `category` are what it means."""

    labeled_set = models.ForeignKey(LabeledSet, on_delete=models.CASCADE, related_name="examples")
    kind = models.CharField(max_length=20, choices=ContentKind.choices, default=ContentKind.MESSAGE)
    content = models.TextField(blank=True)
    turns = models.JSONField(null=True, blank=True, help_text="A conversation or a prompt and its response")
    label = models.CharField(max_length=60)
    violation = models.BooleanField()
    category = models.CharField(max_length=60, blank=True)
    content_hash = models.CharField(max_length=64)
    source_row = models.PositiveIntegerField(null=True, blank=True, help_text="Row number in the imported file")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["labeled_set", "id"]
        constraints = [
            models.UniqueConstraint(fields=["labeled_set", "content_hash"], name="example_once_per_set"),
            models.CheckConstraint(condition=~Q(label=""), name="example_label_not_empty"),
            models.CheckConstraint(condition=~Q(content="") | Q(turns__isnull=False), name="example_has_content"),
        ]

    def __str__(self) -> str:
        return f"{self.labeled_set.name} #{self.pk}: {self.label}"

    def as_content(self) -> Content:
        """What the model reads: a message's text, a conversation, or a prompt and its response as the
        transcript of two turns."""
        if self.turns:
            turns = tuple(Turn(role=str(t.get("role", "")), content=str(t.get("content", ""))) for t in self.turns)
            return Content(kind=ContentKind.CONVERSATION, turns=turns)
        return Content(kind=self.kind, text=self.content)

    def preview(self, length: int = 160) -> str:
        text = " / ".join(f"{t.get('role')}: {t.get('content')}" for t in self.turns) if self.turns else self.content
        return text if len(text) <= length else text[: length - 1] + "…"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class RunKind(models.TextChoices):
    LABELED = "labeled", "Labelled set"
    SHADOW = "shadow", "Shadow (live traffic)"


class EvaluationRun(models.Model):
    """One policy version over one labelled set (`metrics` is filled when the last result is stored), or a
    shadow run: a draft classifying a share of live items beside the published version, open until stopped."""

    kind = models.CharField(max_length=10, choices=RunKind.choices, default=RunKind.LABELED)
    labeled_set = models.ForeignKey(LabeledSet, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    policy_version = models.ForeignKey(
        "policies_app.PolicyVersion", on_delete=models.PROTECT, related_name="evaluation_runs"
    )
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    total = models.PositiveIntegerField(default=0)
    estimate = models.JSONField(default=dict, blank=True, help_text="Tokens and time expected before it started")
    metrics = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="evaluation_run_status_valid"),
            models.CheckConstraint(condition=Q(kind="shadow") | Q(labeled_set__isnull=False),
                                   name="evaluation_run_labeled_has_set"),
            # One shadow run at a time per version (a policy's shadow is its draft's open run).
            models.UniqueConstraint(fields=["policy_version"], condition=Q(kind="shadow", status="running"),
                                    name="one_running_shadow_per_version"),
        ]
        indexes = [models.Index(fields=["labeled_set", "policy_version", "-created_at"], name="evaluation_run_recent")]

    def __str__(self) -> str:
        where = self.labeled_set.name if self.labeled_set_id else "live traffic (shadow)"
        return f"Run #{self.pk}: {self.policy_version} on {where}"

    def get_absolute_url(self) -> str:
        return reverse("evaluations:run", args=[self.pk])


# A live classification's states, and `cancelled` for a result whose run was cancelled before it ran.
ResultStatus = models.TextChoices(
    "ResultStatus",
    [(status.name, (status.value, status.label)) for status in ClassificationStatus]
    + [("CANCELLED", ("cancelled", "Cancelled"))],
)


class EvaluationResult(models.Model):
    """What the model said about one example in one run: the columns the reasoner writes for a live
    classification (reasoner.sql.WRITE_COLUMNS), less the review ones."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    # A labelled run's results are about examples; a shadow run's about live items.
    example = models.ForeignKey(Example, null=True, blank=True, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey("console.Item", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="shadow_results")
    status = models.CharField(max_length=12, choices=ResultStatus.choices, default=ResultStatus.QUEUED)
    label = models.CharField(max_length=60, blank=True)
    violation = models.BooleanField(null=True)
    category = models.CharField(max_length=60, blank=True)
    rule_ids = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    parse_quality = models.CharField(max_length=12, choices=ParseQuality.choices, blank=True, default="")
    parse_notes = models.JSONField(default=list, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    needs_review = models.BooleanField(default=False, help_text="Would a live verdict like this go to people")
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "example"], name="evaluation_result_once"),
            models.UniqueConstraint(fields=["run", "item"], name="evaluation_result_once_per_item"),
            models.CheckConstraint(condition=Q(example__isnull=False) ^ Q(item__isnull=False),
                                   name="evaluation_result_example_or_item"),
            models.CheckConstraint(condition=Q(status__in=ResultStatus.values), name="evaluation_result_status_valid"),
            models.CheckConstraint(condition=Q(status="done") | Q(violation__isnull=True),
                                   name="evaluation_result_no_verdict_without_answer"),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], condition=Q(status="queued"), name="evaluation_result_queued"),
            models.Index(fields=["lease_expires_at"], condition=Q(status="running"), name="evaluation_result_running"),
            models.Index(fields=["run", "status"], name="evaluation_result_run_status"),
        ]

    def __str__(self) -> str:
        subject = f"example {self.example_id}" if self.example_id else f"item {self.item_id}"
        return f"run {self.run_id} × {subject} {self.status}"
