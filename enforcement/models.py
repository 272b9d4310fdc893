"""Enforcement: what each category of a policy calls for (EnforcementRule), what was done about each
decided classification (Action), and the statement of reasons for every restricting action (Statement).

The statement's fields are kept in the console's own words; `enforcement.transparency` writes them in
the EU DSA Transparency Database's submission shape."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class ActionType(models.TextChoices):
    NONE = "none", "No action"
    LABEL = "label", "Label the content"
    REDUCE_VISIBILITY = "reduce_visibility", "Reduce its visibility"
    REMOVE = "remove", "Remove the content"
    AGE_GATE = "age_gate", "Age-gate the content"
    SUSPEND_ACCOUNT = "suspend_account", "Suspend the account"


class AutomatedDecision(models.TextChoices):
    """How far the decision was automated (the Transparency Database's three values)."""

    FULLY = "fully", "Fully automated"
    PARTIALLY = "partially", "Partially automated"
    NOT_AUTOMATED = "not_automated", "Not automated"


class DecisionGround(models.TextChoices):
    INCOMPATIBLE_CONTENT = "incompatible_content", "Incompatible with the terms and conditions"
    ILLEGAL_CONTENT = "illegal_content", "Illegal content"


class SourceType(models.TextChoices):
    """Where the information came from (the Transparency Database's source types)."""

    VOLUNTARY = "voluntary", "Own voluntary initiative"
    ARTICLE_16 = "article_16", "Notice (Article 16 DSA)"
    TRUSTED_FLAGGER = "trusted_flagger", "Notice by a trusted flagger"
    OTHER_NOTIFICATION = "other_notification", "Other notification"


class EnforcementRule(models.Model):
    """The action one category code (or label) of a policy calls for. Unmapped codes take the default:
    none for a safe label, remove for a violation (`enforcement.rules.action_for`)."""

    policy = models.ForeignKey("policies_app.Policy", on_delete=models.CASCADE, related_name="enforcement_rules")
    code = models.CharField(max_length=60, help_text="A category code or label of the policy")
    action = models.CharField(max_length=20, choices=ActionType.choices)
    duration_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: indefinite")
    category = models.CharField(max_length=80, blank=True,
                                help_text="Transparency Database category; empty: ENFORCEMENT_TDB_CATEGORY")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "code"], name="enforcement_rule_once_per_code"),
            models.CheckConstraint(condition=Q(action__in=ActionType.values), name="enforcement_rule_action_valid"),
            models.CheckConstraint(condition=~Q(code=""), name="enforcement_rule_code_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id}:{self.code} → {self.action}"


class Action(models.Model):
    """What was done about one decided classification: chosen from its policy's rules when the decision
    committed (a moderator's, or the model's own where no person was asked), editable by a moderator
    afterwards."""

    classification = models.OneToOneField("console.Classification", on_delete=models.CASCADE,
                                          related_name="enforcement_action")
    item = models.ForeignKey("console.Item", on_delete=models.CASCADE, related_name="enforcement_actions")
    # Empty: no person decided (a verdict the first pass or the reasoner closed on its own).
    review = models.ForeignKey("console.Review", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    policy_version = models.ForeignKey("policies_app.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    decided_code = models.CharField(max_length=60, blank=True, help_text="The decided category or label")
    violation = models.BooleanField()
    action = models.CharField(max_length=20, choices=ActionType.choices)
    duration_days = models.PositiveIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(help_text="When the decision was made (by the moderator, or the model)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(action__in=ActionType.values), name="enforcement_action_valid"),
            models.CheckConstraint(condition=~Q(action="none") | Q(duration_days__isnull=True),
                                   name="enforcement_action_none_has_no_duration"),
        ]
        indexes = [
            models.Index(fields=["item"], name="enforcement_action_item"),
            # The transparency report and its period's figures (enforcement.report).
            models.Index(fields=["decided_at", "id"], name="enforcement_action_decided"),
        ]

    def __str__(self) -> str:
        return f"{self.classification_id}: {self.action}"

    @property
    def restricts(self) -> bool:
        return self.action != ActionType.NONE


class StatementQuerySet(models.QuerySet["Statement"]):
    def current(self) -> StatementQuerySet:
        """Statements whose action still restricts (an action edited to "none" withdraws its statement)."""
        return self.filter(withdrawn_at__isnull=True)


class Statement(models.Model):
    """The statement of reasons for a restricting action (DSA Art. 17), built from what the console
    knows. `puid` is the platform's unique id for it, never reused."""

    action = models.OneToOneField(Action, on_delete=models.CASCADE, related_name="statement")
    puid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    facts = models.TextField(help_text="Facts and circumstances relied on (from the rationale; editable)")
    decision_ground = models.CharField(max_length=24, choices=DecisionGround.choices,
                                       default=DecisionGround.INCOMPATIBLE_CONTENT)
    ground = models.TextField(help_text="The policy version and the rules it cites (the contractual ground)")
    legal_ground = models.TextField(blank=True, help_text="For illegal content: the legal ground relied on")
    cited_rules = models.JSONField(default=list, blank=True)
    automated_detection = models.BooleanField()
    automated_decision = models.CharField(max_length=16, choices=AutomatedDecision.choices)
    source_type = models.CharField(max_length=20, choices=SourceType.choices, default=SourceType.VOLUNTARY)
    category = models.CharField(max_length=80)
    application_date = models.DateField()
    content_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="When the restriction ends; empty: indefinite")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")

    objects = StatementQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(facts=""), name="statement_has_facts"),
            models.CheckConstraint(condition=~Q(decision_ground="illegal_content") | ~Q(legal_ground=""),
                                   name="statement_illegal_content_names_legal_ground"),
            models.CheckConstraint(condition=~Q(automated_decision=""), name="statement_automated_decision_set"),
        ]
        indexes = [models.Index(fields=["application_date", "id"], name="statement_application_date")]

    def __str__(self) -> str:
        return str(self.puid)


class AppealStatus(models.TextChoices):
    OPEN = "open", "Awaiting a decision"
    UPHELD = "upheld", "Upheld (the decision stands)"
    REVERSED = "reversed", "Reversed"


class Complainant(models.TextChoices):
    """Who complains (DSA Art. 20 lets both sides of a decision complain)."""

    AFFECTED = "affected", "The person the decision affects"
    NOTIFIER = "notifier", "The person or entity who reported the content"


class AppealQuerySet(models.QuerySet["Appeal"]):
    def open(self) -> AppealQuerySet:
        return self.filter(status=AppealStatus.OPEN)


class Appeal(models.Model):
    """A complaint against one decided action (DSA Art. 20). Decided only by a person, and never by the
    moderator who made the decision complained about: the database refuses both (`decided_by` required
    once decided, and never `original_reviewer`)."""

    item = models.ForeignKey("console.Item", on_delete=models.CASCADE, related_name="appeals")
    action = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="appeals")
    external_id = models.CharField(max_length=200, blank=True,
                                   help_text="The platform's id for the complaint (makes filing idempotent)")
    complainant = models.CharField(max_length=10, choices=Complainant.choices, default=Complainant.AFFECTED)
    reason = models.TextField(help_text="What the complainant says")
    status = models.CharField(max_length=10, choices=AppealStatus.choices, default=AppealStatus.OPEN)
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+", help_text="The admin who filed it (empty: filed through the API)")
    filed_via = models.CharField(max_length=150, help_text="api:<client name>, or the admin's username")
    received_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="When a decision is due (received + APPEAL_DEADLINE_DAYS)")
    original_reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                          related_name="+",
                                          help_text="Who made the decision complained about (empty: automated)")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome_reason = models.TextField(blank=True)
    reversal = models.ForeignKey("console.Review", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                 help_text="The review that reversed the decision")

    objects = AppealQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "external_id"], condition=~Q(external_id=""),
                                    name="appeal_external_id_once_per_item"),
            models.UniqueConstraint(fields=["action"], condition=Q(status="open"), name="appeal_one_open_per_action"),
            models.CheckConstraint(condition=~Q(reason=""), name="appeal_has_reason"),
            models.CheckConstraint(condition=Q(status__in=AppealStatus.values), name="appeal_status_valid"),
            models.CheckConstraint(condition=Q(complainant__in=Complainant.values), name="appeal_complainant_valid"),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(decided_by__isnull=True) & Q(decided_at__isnull=True))
                | (~Q(status="open") & Q(decided_by__isnull=False) & Q(decided_at__isnull=False)
                   & ~Q(outcome_reason="")),
                name="appeal_decided_by_a_person_with_reason",
            ),
            models.CheckConstraint(condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("original_reviewer")),
                                   name="appeal_not_decided_by_original_reviewer"),
            models.CheckConstraint(condition=~Q(status="reversed") | Q(reversal__isnull=False),
                                   name="appeal_reversal_has_review"),
            models.CheckConstraint(condition=Q(due_at__gte=models.F("received_at")), name="appeal_due_after_received"),
        ]
        indexes = [
            models.Index(fields=["due_at", "id"], condition=Q(status="open"), name="appeal_open_due"),
            models.Index(fields=["received_at", "id"], name="appeal_received"),
        ]

    def __str__(self) -> str:
        return f"appeal {self.pk} on item {self.item_id} ({self.status})"
