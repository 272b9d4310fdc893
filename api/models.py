"""Who may call the API (ApiClient), how each policy version routes the first pass's scores
(RoutingRule), the first-pass models (FirstPassModel) or external endpoints (ExternalFirstPass), the
labelled data they learn from (LabeledExample), the route every item took (Route), and the webhook
delivery log (WebhookDelivery)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

# A token that expires within this long is flagged on the client pages.
EXPIRING_SOON = timedelta(days=14)


class Scope(models.TextChoices):
    """What a token may do. Each API view names the one scope it needs (api.auth.api_view)."""

    SUBMIT = "submit", "Submit items (POST /api/v1/items, /api/v1/items/batch)"
    READ = "read", "Read items, their verdicts and states, and the policy list"
    MODERATIONS = "moderations", "OpenAI-compatible moderation (POST /v1/moderations)"
    ERASE = "erase", "Erase the text of the client's own items (POST /api/v1/erasures)"
    APPEALS = "appeals", "File and read appeals against decisions (/api/v1/items/<id>/appeals)"


class ApiClientQuerySet(models.QuerySet["ApiClient"]):
    def active(self) -> ApiClientQuerySet:
        """Clients that are not revoked (an expired token is still active: an admin can issue a new one,
        and webhooks for items it submitted are still delivered)."""
        return self.filter(revoked_at__isnull=True)


class ApiClient(models.Model):
    """A platform calling the API, with one token. The token is stored only as a SHA-256 hash; the
    console shows it once, when the client is created or a new token is issued. Every item a client
    submits carries its `source`.

    The token works until `expires_at` (null: never), for the `scopes` it holds, and classifies only
    under `allowed_policies`: an empty set allows no policy (never "all")."""

    name = models.CharField(max_length=100, unique=True)
    source = models.SlugField(
        max_length=100, unique=True, help_text="Items this client submits are stored under this source"
    )
    token_prefix = models.CharField(max_length=16, help_text="The token's first characters, to recognise it")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    default_policies = models.ManyToManyField("policies_app.Policy", blank=True, related_name="+")
    allowed_policies = models.ManyToManyField(
        "policies_app.Policy", blank=True, related_name="+",
        help_text="The policies this client may classify under; empty: none",
    )
    scopes = ArrayField(models.CharField(max_length=20, choices=Scope.choices), default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the token stops working; empty: never")
    webhook_url = models.URLField(max_length=500, blank=True)
    # Kept readable (not hashed): the console signs every webhook body with it.
    webhook_secret = models.CharField(max_length=100, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty: the site default"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiClientQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="api_client_name_not_empty"),
            models.CheckConstraint(condition=~Q(source=""), name="api_client_source_not_empty"),
            models.CheckConstraint(condition=Q(scopes__contained_by=Scope.values), name="api_client_scopes_known"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("api:client", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def expiry_state(self) -> str:
        """For the client pages: "expired", "expiring" (within EXPIRING_SOON), or "" (fine, or never expires)."""
        if self.expires_at is None:
            return ""
        now = timezone.now()
        if self.is_expired(now):
            return "expired"
        return "expiring" if self.expires_at - now <= EXPIRING_SOON else ""

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def rate_limit(self) -> int:
        return self.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE


class RuleSetter(models.TextChoices):
    ADMIN = "admin", "An admin"
    RETRAINING = "retraining", "Retraining"


class RoutingRule(models.Model):
    """How one policy version routes first-pass scores. A version without a rule uses its policy's
    latest earlier rule, else the FIRST_PASS_* settings. Retraining sets the close threshold of an
    unpinned rule when its nested cross-validation says it is safe (api.training); an admin's change
    pins the rule."""

    policy_version = models.OneToOneField(
        "policies_app.PolicyVersion", on_delete=models.CASCADE, related_name="routing_rule"
    )
    safe_below = models.FloatField(help_text="Scores below this are confidently safe: closed")
    violation_above = models.FloatField(help_text="Scores at or above this are confident violations")
    sample_rate = models.FloatField(help_text="Share of closed items sampled to people as quality checks")
    violations_to_humans = models.BooleanField(
        default=False, help_text="Confident violations go straight to people instead of the reasoner"
    )
    set_by = models.CharField(max_length=10, choices=RuleSetter.choices, default=RuleSetter.ADMIN)
    pinned = models.BooleanField(default=False, help_text="Set by an admin: retraining never changes it")
    reason = models.TextField(blank=True, help_text="Why the thresholds are what they are (the last change)")
    model = models.ForeignKey("FirstPassModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="The model whose cross-validation set them, for a retraining change")
    weak_categories = models.JSONField(default=list, blank=True,
                                       help_text="Categories under the recall floor at the last retraining")
    previous = models.JSONField(null=True, blank=True, help_text="The thresholds before the last change (revert)")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(safe_below__gte=0) & Q(safe_below__lte=models.F("violation_above"))
                & Q(violation_above__lte=1),
                name="routing_rule_thresholds_ordered",
            ),
            models.CheckConstraint(
                condition=Q(sample_rate__gte=0, sample_rate__lte=1), name="routing_rule_sample_rate_unit"
            ),
            models.CheckConstraint(condition=Q(set_by__in=RuleSetter.values), name="routing_rule_set_by_valid"),
        ]

    def __str__(self) -> str:
        return f"Routing of {self.policy_version}"


class FirstPassModelQuerySet(models.QuerySet["FirstPassModel"]):
    def latest_per_policy(self) -> FirstPassModelQuerySet:
        """The model each policy routes with now: its most recently trained one."""
        return self.order_by("policy_id", "-trained_at", "-id").distinct("policy_id")


class FirstPassModel(models.Model):
    """A trained first-pass classifier for one policy (safeguard.firstpass bytes, no pickle)."""

    policy = models.ForeignKey("policies_app.Policy", on_delete=models.CASCADE, related_name="first_pass_models")
    trained_at = models.DateTimeField(auto_now_add=True)
    model = models.BinaryField()
    n_examples = models.PositiveIntegerField()
    n_positive = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict, blank=True, help_text="Cross-validated quality and data sources")

    objects = FirstPassModelQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["policy", "-trained_at"], name="first_pass_model_recent")]

    def __str__(self) -> str:
        return f"First pass #{self.pk} for {self.policy_id}"


class ExternalFirstPass(models.Model):
    """An OpenAI-moderation-compatible endpoint that is a policy's first pass in place of its built-in
    model (safeguard.moderation_endpoint): same thresholds, scores from `category_map`, failures to the
    reasoner. Changed only through api.external_first_pass, audited."""

    policy = models.OneToOneField("policies_app.Policy", on_delete=models.CASCADE,
                                  related_name="external_first_pass")
    url = models.URLField(max_length=500, help_text="The moderation endpoint, e.g. https://guard:8000/v1/moderations")
    model = models.CharField(max_length=200, blank=True, help_text="Sent as `model`; empty: left out")
    # Kept readable (not hashed), like a webhook secret: the console sends it on every request. Never
    # shown again once saved, never in the audit trail or the Django admin.
    api_key = models.CharField(max_length=500, blank=True)
    timeout_s = models.FloatField(default=2.0, help_text="Whole-request timeout in seconds")
    category_map = models.JSONField(help_text="Endpoint category -> the policy's category code (or 'violation')")
    enabled = models.BooleanField(default=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(timeout_s__gt=0, timeout_s__lte=30),
                                   name="external_first_pass_timeout_range"),
            models.CheckConstraint(condition=~Q(category_map={}), name="external_first_pass_maps_a_category"),
        ]

    def __str__(self) -> str:
        return f"External first pass of {self.policy_id}"


class LabeledExampleQuerySet(models.QuerySet["LabeledExample"]):
    def for_policy(self, policy) -> LabeledExampleQuerySet:
        """Examples a policy's first pass learns from, newest first."""
        return self.filter(policy=policy).order_by("-created_at", "-id")


class LabeledExample(models.Model):
    """An imported labelled text (a golden set, a platform's past decisions)."""

    policy = models.ForeignKey("policies_app.Policy", on_delete=models.CASCADE, related_name="labeled_examples")
    text = models.TextField()
    violation = models.BooleanField()
    label = models.CharField(max_length=60, blank=True)
    dataset = models.CharField(max_length=200, help_text="Where the example came from, e.g. a file name")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LabeledExampleQuerySet.as_manager()

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="labeled_example_text_not_empty")]
        indexes = [models.Index(fields=["policy", "-created_at"], name="labeled_example_recent")]

    def __str__(self) -> str:
        return f"{self.dataset}: {self.text[:40]}"


class RouteChoice(models.TextChoices):
    CLOSED = "closed", "Closed (confidently safe)"
    QC_SAMPLE = "qc_sample", "Closed, sampled for a quality check"
    REASONER = "reasoner", "Reasoner"
    HUMAN = "human", "Straight to people"


class Route(models.Model):
    """Where the first pass sent one item for one policy version, and the score that chose it (no score:
    the policy had no trained model yet)."""

    item = models.ForeignKey("console.Item", on_delete=models.CASCADE, related_name="routes")
    policy_version = models.ForeignKey("policies_app.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    route = models.CharField(max_length=10, choices=RouteChoice.choices)
    score = models.FloatField(null=True, blank=True)
    model = models.ForeignKey(FirstPassModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True,
                            help_text="Why the first pass gave no score (the external first pass failed)")
    # A quality check drawn because the item closed nearest the threshold (the closures most likely to be
    # wrong), on top of the random ones: it finds misses sooner, but only the random ones measure the
    # miss rate of everything closed (api.quality_checks).
    qc_targeted = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "policy_version"], name="route_once_per_item_version"),
            models.CheckConstraint(condition=Q(route__in=RouteChoice.values), name="route_choice_valid"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1), name="route_score_unit"
            ),
            # Only a score can close an item: with no model everything goes on.
            models.CheckConstraint(
                condition=Q(score__isnull=False) | Q(route__in=["reasoner", "human"]), name="route_closed_has_score"
            ),
            models.CheckConstraint(condition=Q(qc_targeted=False) | Q(route="qc_sample"),
                                   name="route_targeted_is_a_quality_check"),
        ]
        indexes = [
            models.Index(fields=["policy_version", "route"], name="route_version_route"),
            # The savings page reads routes by time; rows arrive in time order, so a BRIN index is a few
            # pages and costs intake next to nothing.
            BrinIndex(fields=["created_at"], name="route_created_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} × {self.policy_version_id}: {self.route}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDeliveryQuerySet(models.QuerySet["WebhookDelivery"]):
    def due(self, now) -> WebhookDeliveryQuerySet:
        """Deliveries whose next attempt time has come (their queued job may have been lost)."""
        return self.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now
        ).order_by("next_attempt_at", "id")


class WebhookDelivery(models.Model):
    """One decision told to one client, with every attempt's outcome."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="deliveries")
    item = models.ForeignKey("console.Item", on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=40)
    decision_key = models.CharField(max_length=64, help_text="Hash of the decision: a decision is told once")
    url = models.URLField(max_length=500)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "decision_key"], name="webhook_decision_told_once"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_status_valid"),
        ]
        indexes = [
            models.Index(fields=["client", "-created_at"], name="webhook_client_recent"),
            models.Index(
                fields=["next_attempt_at"], condition=Q(status__in=["pending", "retrying"]), name="webhook_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk} to {self.client_id}"

    def get_absolute_url(self) -> str:
        return reverse("api:delivery", args=[self.pk])
