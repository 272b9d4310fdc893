"""The first pass's real miss rate, from the closed items people checked afterwards (route qc_sample):
the share a moderator decided were violations.

Two kinds of checks (api.routing.choose_route): random ones, a uniform sample of everything closed, whose
share estimates the miss rate of all closures; and targeted ones, drawn from the closures that scored
nearest the threshold (the likeliest misses), which find misses sooner but say nothing about the rest.
They are counted apart, and only the random ones give the miss rate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef

from api.models import Route, RouteChoice
from console.models import Decision, Review, Stage, decided_violation
from safeguard.intervals import wilson


@dataclass(frozen=True, slots=True)
class MissRate:
    reviewed: int  # quality checks a moderator decided (escalations decide nothing yet)
    missed: int  # of them, violations the first pass had closed

    @property
    def rate(self) -> float | None:
        return self.missed / self.reviewed if self.reviewed else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """Wilson 95%: with few reviews the interval, not the rate, says what is known."""
        return wilson(self.missed, self.reviewed)


def miss_rates(policy_ids: Iterable[int], *, since: datetime | None = None, targeted: bool = False
               ) -> dict[int, MissRate]:
    """Per policy, its reviewed quality checks (the random ones, or with `targeted` the targeted ones)
    routed since `since`, and how many were misses (a check's latest decision counts)."""
    sampled = Route.objects.filter(item_id=OuterRef("classification__item_id"),
                                   policy_version_id=OuterRef("classification__policy_version_id"),
                                   route=RouteChoice.QC_SAMPLE, qc_targeted=targeted)
    if since is not None:
        sampled = sampled.filter(created_at__gte=since)
    reviews = (
        Review.objects.filter(classification__stage=Stage.FAST,
                              classification__policy_version__policy_id__in=set(policy_ids))
        .exclude(decision=Decision.ESCALATE)
        .filter(Exists(sampled))
        .order_by("classification_id", "-created_at", "-id")
        .distinct("classification_id")
        .values_list("classification__policy_version__policy_id", "decision", "label", "category",
                     "classification__violation")
    )
    counts: dict[int, list[int]] = {}
    for policy_id, decision, label, category, model_violation in reviews:
        tally = counts.setdefault(policy_id, [0, 0])
        tally[0] += 1
        tally[1] += bool(decided_violation(decision, label, category, model_violation))
    return {policy_id: MissRate(reviewed, missed) for policy_id, (reviewed, missed) in counts.items()}
