"""What is moderated (Item), what the models said (Classification), what people decided (Review), and the
review console's own records: claims, comments, skips and the wellness setting (DisturbingCategory).
The audit trail is the `audit` app's."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Upper
from django.urls import reverse

from policies_app.models import ContentKind
from safeguard import Content, Turn
from safeguard.channels import split_text
from safeguard.labels import is_safe_label

# An item is the content a policy is applied to, so its kinds are the policy app's content kinds.
ItemKind = ContentKind


class Item(models.Model):
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.MESSAGE)
    source = models.CharField(max_length=100)
    external_id = models.CharField(max_length=200, blank=True)
    content = models.TextField(blank=True, help_text="The text of a message or completion")
    turns = models.JSONField(null=True, blank=True, help_text="A conversation: [{role, content}, ...]")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            # Idempotent ingestion: one item per (source, external id).
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="item_external_id_unique_per_source",
            ),
            models.CheckConstraint(condition=~Q(source=""), name="item_source_not_empty"),
            models.CheckConstraint(
                condition=(Q(kind="conversation") & Q(turns__isnull=False))
                | (~Q(kind="conversation") & ~Q(content="")),
                name="item_has_content",
            ),
        ]
        indexes = [models.Index(fields=["source", "-created_at"], name="item_source_recent")]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id or self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("console:item", args=[self.pk])

    def as_content(self) -> Content:
        if self.kind == ItemKind.CONVERSATION:
            turns = tuple(
                Turn(role=str(t.get("role", "")), content=str(t.get("content", ""))) for t in self.turns or []
            )
            return Content(kind=self.kind, turns=turns)
        return Content(kind=self.kind, text=self.content)

    def preview(self, length: int = 140) -> str:
        if self.kind == ItemKind.CONVERSATION:
            text = " / ".join(f"{t.get('role')}: {t.get('content')}" for t in self.turns or [])
        else:
            text = self.content
        return text if len(text) <= length else text[: length - 1] + "…"


class Stage(models.TextChoices):
    FAST = "fast", "Fast first pass"
    REASONER = "reasoner", "Reasoner"


class ClassificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    UNPARSABLE = "unparsable", "Unparsable"
    CONFLICTING = "conflicting", "Conflicting answer"
    TRUNCATED = "truncated", "Truncated (output budget ran out)"
    TOO_LONG = "too_long", "Too long for the context"


class ParseQuality(models.TextChoices):
    """How a reasoner answer was read (safeguard.verdict.PARSE_QUALITIES; docs/answer-reading.md).
    Blank where there was no answer to read: queued, failed, too long, first-pass results."""

    CLEAN = "clean", "Clean"
    RECOVERED = "recovered", "Recovered"
    CONFLICTING = "conflicting", "Conflicting"
    TRUNCATED = "truncated", "Truncated"
    UNPARSABLE = "unparsable", "Unparsable"


class ReviewStatus(models.TextChoices):
    """Where a classification stands with people (meaningful only when it needs review)."""

    OPEN = "open", "Awaiting review"
    ESCALATED = "escalated", "Escalated to a senior"
    DECIDED = "decided", "Decided"


class ReviewQueue(models.TextChoices):
    """The review queues. A classification's queue is computed by the database (`Classification.queue`)
    from its other columns, so every writer - the reasoner's raw SQL, the API's bulk insert, the ORM -
    files it in the right queue without knowing queues exist."""

    REVIEW = "review", "Verdicts to review"
    NO_VERDICT = "no_verdict", "No usable verdict"
    QUALITY = "qc", "Quality checks"
    ESCALATED = "escalated", "Escalated"


# NULL: not awaiting a person. The first pass only sends people its quality-check samples (closed as
# safe) and the confident violations it routes to humans, so a fast verdict of "safe" that needs
# review is a quality-check sample.
QUEUE_EXPRESSION = Case(
    When(
        Q(needs_review=False) | Q(review_status=ReviewStatus.DECIDED) | Q(status__in=["queued", "running"]),
        then=Value(None),
    ),
    When(review_status=ReviewStatus.ESCALATED, then=Value(ReviewQueue.ESCALATED.value)),
    When(~Q(status="done"), then=Value(ReviewQueue.NO_VERDICT.value)),
    When(stage="fast", violation=False, then=Value(ReviewQueue.QUALITY.value)),
    default=Value(ReviewQueue.REVIEW.value),
)

# "By priority": likely violations first, then results without a verdict, then unsure "safe" verdicts.
RANK_EXPRESSION = Case(When(violation=True, then=Value(0)), When(violation__isnull=True, then=Value(1)),
                       default=Value(2))
AWAITING = Q(queue__isnull=False)
QUEUE_FILTER_COLUMNS = ["policy_version", "stage", "confidence", "label", "item"]


class ClassificationQuerySet(models.QuerySet["Classification"]):
    def awaiting_review(self) -> ClassificationQuerySet:
        """Results a person still has to decide, in any review queue (escalations included)."""
        return self.filter(AWAITING)

    def in_queue(self, queue: str) -> ClassificationQuerySet:
        """One review queue; "all" is every queue a moderator works (everything but escalations)."""
        if queue == "all":
            return self.filter(AWAITING).exclude(queue=ReviewQueue.ESCALATED)
        return self.filter(queue=queue)


class Classification(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="classifications")
    policy_version = models.ForeignKey(
        "policies_app.PolicyVersion", on_delete=models.PROTECT, related_name="classifications"
    )
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.REASONER)
    status = models.CharField(max_length=12, choices=ClassificationStatus.choices, default=ClassificationStatus.QUEUED)
    label = models.CharField(max_length=60, blank=True)
    violation = models.BooleanField(null=True)
    category = models.CharField(max_length=60, blank=True)
    rule_ids = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    reasoning = models.TextField(blank=True, help_text="The model's analysis channel")
    raw_output = models.TextField(blank=True)
    error = models.TextField(blank=True, help_text="Why there is no verdict (or what went wrong)")
    # Database defaults as well: the set-based writers (bulk intake, benchmarks' fills) leave them out.
    parse_quality = models.CharField(max_length=12, choices=ParseQuality.choices, blank=True, default="",
                                     db_default="")
    parse_notes = models.JSONField(default=list, db_default=Value([], output_field=models.JSONField()), blank=True,
                                   help_text="What was done to read the answer")
    model_name = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    needs_review = models.BooleanField(default=False)
    review_status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    queue = models.GeneratedField(
        expression=QUEUE_EXPRESSION,
        output_field=models.CharField(max_length=12, null=True, choices=ReviewQueue.choices),
        db_persist=True,
    )
    review_rank = models.GeneratedField(
        expression=RANK_EXPRESSION, output_field=models.SmallIntegerField(), db_persist=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ClassificationQuerySet.as_manager()

    class Meta:
        constraints = [
            # A classification runs at most once per (item, policy version, stage).
            models.UniqueConstraint(fields=["item", "policy_version", "stage"], name="classification_once"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="classification_confidence_in_unit_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ClassificationStatus.values), name="classification_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(review_status__in=ReviewStatus.values), name="classification_review_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(parse_quality__in=["", *ParseQuality.values]), name="classification_parse_quality_valid"
            ),
            # A verdict is only ever read from a clean or recovered answer.
            models.CheckConstraint(
                condition=~Q(status="done", stage="reasoner") | Q(parse_quality__in=["clean", "recovered", ""]),
                name="classification_done_reads_cleanly",
            ),
            # No usable answer is never "safe".
            models.CheckConstraint(
                condition=Q(status="done") | Q(violation__isnull=True),
                name="classification_no_verdict_without_answer",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at", "id"], condition=Q(status="queued"), name="classification_queued"
            ),
            models.Index(
                fields=["lease_expires_at"], condition=Q(status="running"), name="classification_running"
            ),
            models.Index(fields=["policy_version", "status"], name="classification_version_status"),
            # Parse-quality shares per policy version (dashboard, policy page) and their examples.
            models.Index(fields=["policy_version", "parse_quality", "-finished_at"],
                         condition=~Q(parse_quality=""), name="classification_parse_quality"),
            # The review queues' keyset orders (oldest first, by priority), over awaiting rows only: a
            # few hundred thousand index entries however many millions of rows are decided. The columns
            # the queue filters on ride along (INCLUDE), so a page's ids come from the index alone.
            models.Index(fields=["created_at", "id"], include=["queue", "review_rank", *QUEUE_FILTER_COLUMNS],
                         condition=AWAITING, name="review_oldest"),
            models.Index(fields=["review_rank", "created_at", "id"], include=["queue", *QUEUE_FILTER_COLUMNS],
                         condition=AWAITING, name="review_priority"),
            models.Index(fields=["queue", "created_at", "id"], include=["review_rank", *QUEUE_FILTER_COLUMNS],
                         condition=AWAITING, name="review_queue_oldest"),
            models.Index(fields=["queue", "review_rank", "created_at", "id"], include=QUEUE_FILTER_COLUMNS,
                         condition=AWAITING, name="review_queue_priority"),
        ]

    def __str__(self) -> str:
        return f"{self.item} × {self.policy_version} [{self.stage}] {self.status}"

    # Display helpers for the review pages (a queue page shows fifty verdicts; template filters such
    # as floatformat cost more than these).
    @property
    def confidence_text(self) -> str:
        return "" if self.confidence is None else f"{self.confidence:.2f}"

    @property
    def rules_text(self) -> str:
        return " ".join(str(rule) for rule in self.rule_ids or [])

    @property
    def final_excerpt(self) -> str:
        """The final-channel part of the raw output (all of it for HTTP engines), cut to 400 characters."""
        raw = self.raw_output or ""
        if "<|channel|>" in raw:
            raw = split_text(raw).final or ""
        return raw if len(raw) <= 400 else raw[:399] + "…"

    @property
    def parse_notes_text(self) -> str:
        return "; ".join(str(note) for note in self.parse_notes or [])


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    OVERRIDE = "override", "Override"
    ESCALATE = "escalate", "Escalate"


def decided_violation(decision: str, label: str, category: str, model_violation: bool | None) -> bool | None:
    """What a moderator's decision says about "violation": an override, its corrected label's (or
    category's) meaning; an approval, the model's verdict it approved; an escalation, nothing yet."""
    if decision == Decision.OVERRIDE:
        return not is_safe_label(label or category)
    if decision == Decision.APPROVE:
        return model_violation
    return None


class Review(models.Model):
    classification = models.ForeignKey(Classification, on_delete=models.CASCADE, related_name="reviews")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    label = models.CharField(max_length=60, blank=True, help_text="Corrected label, for an override")
    category = models.CharField(max_length=60, blank=True, help_text="Corrected category, for an override")
    reason = models.TextField(blank=True)
    misapplied_rule = models.CharField(max_length=40, blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(decision="override") | (~Q(reason="") & (~Q(label="") | ~Q(category=""))),
                name="review_override_needs_reason_and_correction",
            ),
            models.CheckConstraint(condition=Q(decision__in=Decision.values), name="review_decision_valid"),
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="review_recent"),
            # A moderator's own recent override reasons, offered again on the item page.
            models.Index(fields=["reviewer", "-created_at"], condition=Q(decision="override"),
                         name="review_override_reasons"),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer} on {self.classification_id}"


# --- The review console: claims, comments, skips, wellness settings ----------------------------------


class ClaimQuerySet(models.QuerySet["Claim"]):
    def live(self, now: Any) -> ClaimQuerySet:
        """Claims that still hold at `now` (an expired claim is as good as none)."""
        return self.filter(expires_at__gt=now)


class Claim(models.Model):
    """Who is reviewing an item right now. One row per item, taken over when it expires; the item page
    renews it while it is open, so two moderators never decide the same item."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, primary_key=True, related_name="claim")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    objects = ClaimQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("claimed_at")), name="claim_expires_after_start")
        ]
        indexes = [models.Index(fields=["expires_at"], name="claim_expiry")]

    def __str__(self) -> str:
        return f"item {self.item_id} claimed by {self.user_id}"


class Comment(models.Model):
    """A note on an item for the other moderators (and the senior who picks up an escalation)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="comments")
    classification = models.ForeignKey(
        Classification, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="comment_text_not_empty")]
        indexes = [models.Index(fields=["item", "created_at"], name="comment_item")]

    def __str__(self) -> str:
        return f"comment {self.pk} on item {self.item_id}"


class Skip(models.Model):
    """A moderator passed on a classification: "next" does not hand it to them again for a while."""

    classification = models.ForeignKey(Classification, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "classification", "-created_at"], name="skip_user")]

    def __str__(self) -> str:
        return f"{self.user_id} skipped {self.classification_id}"


class DisturbingCategory(models.Model):
    """A category (or label) whose content is blurred until the moderator chooses to look."""

    code = models.CharField(max_length=60, unique=True, help_text="Category code or label, e.g. SH2 or VIOLENCE")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "disturbing categories"
        constraints = [
            # Stored upper case, so "sh2" and "SH2" are one setting.
            models.CheckConstraint(condition=~Q(code="") & Q(code=Upper("code")),
                                   name="disturbing_code_upper"),
        ]

    def __str__(self) -> str:
        return self.code
