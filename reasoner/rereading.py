"""Re-reading stored model answers with the current parser (`manage.py reparse_classifications`).

The raw output of every reasoner answer is kept, so a better parser can correct verdicts already
stored without running the model again. `reread` compares what the current parser reads with what is
stored and, when asked to apply, writes each change through `verdict_fields` (the pipeline's own
mapping) with a `classification.reread` audit event, in one transaction per chunk.

Re-reading never takes work away from people: a result already waiting for review stays there, and
one that moderators decided keeps its decision (its verdict columns still show what the model said).
A result that now needs a person and was not waiting for one is opened for review and pushed to open
queue pages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

import safeguard
from audit.writer import Entry, entry, record_many
from console import broadcast
from console.models import Classification, ClassificationStatus, ReviewStatus, Stage
from policies_app.models import PolicyVersion
from reasoner.pipeline import verdict_fields
from safeguard.rereading import reading_of, stored_completion

ACTOR_NAME = "reparse_classifications"
COMPARED = ("status", "violation", "label", "category", "rule_ids", "parse_quality", "error")
# Results with an answer to read: not waiting for the engine, not engine failures or prompts too long.
READABLE = (ClassificationStatus.DONE, ClassificationStatus.UNPARSABLE, ClassificationStatus.CONFLICTING,
            ClassificationStatus.TRUNCATED)


@dataclass
class Change:
    classification_id: int
    item_id: int
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def transition(self) -> str:
        old = reading_of(self.before["status"], self.before["violation"])
        new = reading_of(self.after["status"], self.after["violation"])
        if old != new:
            return f"{old} -> {new}"
        fields = [name for name in COMPARED if self.before[name] != self.after[name]]
        if fields == ["parse_quality"] and not self.before["parse_quality"]:
            return f"{old}, parse quality recorded"
        return f"{old}, new {', '.join(fields)}"


@dataclass
class Report:
    examined: int = 0
    changes: list[Change] = field(default_factory=list)
    transitions: Counter[str] = field(default_factory=Counter)
    newly_for_people: int = 0  # changed results that now wait for a person and did not before
    kept_decided: int = 0  # changed results whose moderator decision stands
    applied: bool = False


def readable(queryset: QuerySet[Classification] | None = None) -> QuerySet[Classification]:
    """Reasoner results that hold a model answer to read again."""
    base = queryset if queryset is not None else Classification.objects.all()
    return base.filter(stage=Stage.REASONER, status__in=READABLE).exclude(raw_output="", reasoning="")


def _stored(c: Classification) -> dict[str, Any]:
    return {name: getattr(c, name) for name in COMPARED}


def reread(*, classifications: QuerySet[Classification], apply: bool = False, actor: Any = None,
           chunk: int = 500) -> Report:
    """Read the stored answers again; with `apply`, store what changed (see the module docstring)."""
    report = Report(applied=apply)
    specs: dict[int, safeguard.PolicySpec] = {}
    pending: list[tuple[Classification, dict[str, Any]]] = []
    for c in readable(classifications).order_by("id").iterator(chunk_size=chunk):
        report.examined += 1
        if c.policy_version_id not in specs:
            specs[c.policy_version_id] = PolicyVersion.objects.get(pk=c.policy_version_id).as_spec()
        completion = stored_completion(c.raw_output, c.reasoning, c.status == ClassificationStatus.TRUNCATED)
        fields = verdict_fields(safeguard.parse_completion(completion, specs[c.policy_version_id]))
        before = _stored(c)
        after = {name: fields[name] for name in COMPARED}
        if after == before:
            continue
        change = Change(classification_id=c.pk, item_id=c.item_id, before=before, after=after)
        report.changes.append(change)
        report.transitions[change.transition] += 1
        if c.review_status == ReviewStatus.DECIDED:
            report.kept_decided += 1
        elif fields["needs_review"] and not c.needs_review:
            report.newly_for_people += 1
        if apply:
            pending.append((c, fields))
            if len(pending) >= chunk:
                _apply(pending, actor)
                pending = []
    if apply and pending:
        _apply(pending, actor)
    return report


def _apply(rows: Iterable[tuple[Classification, dict[str, Any]]], actor: Any) -> None:
    changed: list[Classification] = []
    entries: list[Entry] = []
    with transaction.atomic():
        for stored, fields in rows:
            # Lock and read again: a moderator may have decided it since the report was made.
            c = Classification.objects.select_for_update().get(pk=stored.pk)
            before = {**_stored(c), "needs_review": c.needs_review, "review_status": c.review_status}
            for name in ("status", "label", "violation", "category", "rule_ids", "confidence", "rationale",
                         "error", "parse_quality", "parse_notes"):
                setattr(c, name, fields[name])
            if c.review_status != ReviewStatus.DECIDED and fields["needs_review"] and not c.needs_review:
                c.needs_review = True
                c.review_status = ReviewStatus.OPEN
            c.save(update_fields=["status", "label", "violation", "category", "rule_ids", "confidence",
                                  "rationale", "error", "parse_quality", "parse_notes", "needs_review",
                                  "review_status"])
            after = {**_stored(c), "needs_review": c.needs_review, "review_status": c.review_status}
            entries.append(entry(c, "classification.reread", before=before, after=after))
            changed.append(c)
        record_many(actor=actor, object_type=Classification, entries=entries, actor_name=ACTOR_NAME)
        broadcast.on_commit(broadcast.verdicts_stored, classification_ids=[c.pk for c in changed])
