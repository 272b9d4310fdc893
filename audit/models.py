"""The audit trail's one model. Write it through `audit.writer`, never directly."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Append-only: rows are written in the same transaction as the change they record, and a
    database trigger refuses UPDATE and DELETE.

    Chained: a BEFORE INSERT trigger (migrations 0002, 0003) numbers every event (`seq`, no gaps), stores
    the previous event's hash, a digest of before/after (`payload_digest`) and this event's hash over its
    other columns, that digest and the previous hash, whichever writer inserted it. `audit.chain.verify`
    recomputes the chain.

    Erasable: `audit.erasure.erase_payloads` (the database's `audit_erase_payloads`, the only UPDATE the
    trigger lets through) replaces before/after by ERASED_MARKER and stamps `erased_at`; the hash still
    covers the original payload through its digest, so the chain stays verifiable."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="Username, or system:<process> for workers")
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=60)
    object_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by the chain trigger, whatever the INSERT sends (None and "" from the ORM): the instance `record`
    # returns has them only after refresh_from_db().
    seq = models.BigIntegerField(unique=True, editable=False, help_text="Position in the hash chain")
    prev_hash = models.CharField(max_length=64, editable=False, help_text="The previous event's hash")
    hash = models.CharField(max_length=64, editable=False, help_text="sha256 over this event and prev_hash")
    payload_digest = models.CharField(max_length=64, editable=False,
                                      help_text="sha256 over before and after, which the hash covers")
    erased_at = models.DateTimeField(null=True, blank=True, editable=False,
                                     help_text="When an erasure replaced before and after by a marker")

    class Meta:
        # The table keeps the name it had when the model lived in the console app (state-only move).
        db_table = "console_auditevent"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["-created_at", "-id"], name="audit_recent"),
            models.Index(fields=["action", "-created_at"], name="audit_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("Audit events are append-only")
        super().save(*args, **kwargs)


GENESIS_HASH = "0" * 64  # the prev_hash of the first event
ERASED_MARKER = {"erased": True}  # an erased event's before and after (migration 0003 writes the same)
ERASURE_ACTION = "audit.payloads_erased"  # the event audit_erase_payloads appends, naming the seqs it erased


class ChainHead(models.Model):
    """The chain's last link, one row (id 1), kept by the chain triggers: a transaction's first event
    locks it (so writers take turns, in commit order), and each INSERT statement moves it to its last
    event. Never written from Python."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        db_table = "audit_chainhead"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_chainhead_one_row")]

    def __str__(self) -> str:
        return f"audit chain head: seq {self.seq}, {self.hash}"


class ChainCheckQuerySet(models.QuerySet["ChainCheck"]):
    def latest_failure(self) -> ChainCheck | None:
        """The newest check, when it found the chain broken (None when the newest one passed, or none ran)."""
        newest = self.order_by("-id").first()
        return newest if newest is not None and not newest.ok else None


class ChainCheck(models.Model):
    """One verification of the chain (the schedule's, or `manage.py verify_audit`'s). The newest one
    decides the alarm: a failed check shows a banner to admins until a later check passes."""

    checked_at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    count = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    broken_seq = models.BigIntegerField(null=True, blank=True)
    broken_id = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)

    objects = ChainCheckQuerySet.as_manager()

    class Meta:
        db_table = "audit_chaincheck"

    def __str__(self) -> str:
        state = "intact" if self.ok else f"broken at seq {self.broken_seq}"
        return f"{self.checked_at:%Y-%m-%d %H:%M:%S} audit chain {state}"
