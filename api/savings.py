"""What the first pass spares the reasoner, per policy and overall, per day (per hour for ranges of two
days or less): the share of items it closed, sent to the reasoner and sent straight to people (from the
route recorded for each item), the reasoner tokens spent, an estimate of the tokens and GPU time saved,
and the first pass's miss rate measured on its quality-check samples.

The estimate: each closed item (quality-check samples included: they skip the reasoner too) would have
cost the average tokens (prompt + completion) and average latency_ms of the policy's reasoner verdicts
in the same range. latency_ms is each verdict's wall time in the worker, shared with the other requests
of its batch, so the GPU time is an upper bound. A policy with no reasoner verdicts in the range gets
no estimate rather than a guess.

Miss rate: `api.quality_checks`' random quality checks routed in the range, with a 95% Wilson interval.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, FloatField, IntegerField, Sum
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from api import quality_checks
from api.models import Route, RouteChoice
from console.models import Classification, ClassificationStatus, Stage
from policies_app.models import Policy
from safeguard.intervals import wilson

RANGES = (1, 2, 7, 30, 90)  # days a page may show
HOURLY_UP_TO_DAYS = 2
CHART_WIDTH, CHART_HEIGHT = 630, 120
PATHS = ("closed", "reasoner", "human")  # the three ways an item leaves the first pass, in chart order


@dataclass
class Bucket:
    start: datetime
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PATHS, 0))
    qc_sampled: int = 0
    reasoner_tokens: int = 0
    saved_tokens: float | None = None
    x: float = 0.0
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, path: str) -> float | None:
        return self.counts[path] / self.total if self.total else None

    @property
    def percents(self) -> list[tuple[str, str]]:
        return [(path, "–" if share is None else f"{share:.0%}") for path in PATHS for share in [self.share(path)]]


@dataclass
class Savings:
    """One policy's figures over the range (policy None: every policy together)."""

    policy: Policy | None
    buckets: list[Bucket]
    avg_tokens: float | None = None
    avg_latency_ms: float | None = None
    reasoner_verdicts: int = 0  # the reasoner verdicts with token counts the averages come from
    saved_tokens: float | None = None
    saved_gpu_s: float | None = None
    qc_decided: int = 0
    qc_violating: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {path: sum(b.counts[path] for b in self.buckets) for path in PATHS}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def percents(self) -> list[tuple[str, str]]:
        total = self.total
        return [(path, f"{n / total:.0%}" if total else "–") for path, n in self.counts.items()]

    @property
    def miss_text(self) -> str:
        if self.miss_rate is None or self.miss_interval is None:
            return "no decided samples"
        low, high = self.miss_interval
        return f"{self.miss_rate:.1%} ({self.qc_violating} of {self.qc_decided}; 95% CI {low:.1%}–{high:.1%})"

    @property
    def qc_sampled(self) -> int:
        return sum(b.qc_sampled for b in self.buckets)

    @property
    def reasoner_tokens(self) -> int:
        return sum(b.reasoner_tokens for b in self.buckets)

    @property
    def column_width(self) -> float:
        return round(CHART_WIDTH / max(len(self.buckets), 1) * 0.8, 1)

    @property
    def miss_rate(self) -> float | None:
        return self.qc_violating / self.qc_decided if self.qc_decided else None

    @property
    def miss_interval(self) -> tuple[float, float] | None:
        return wilson(self.qc_violating, self.qc_decided)


def _key(moment: datetime) -> datetime:
    """A bucket's local wall-clock start, naive: the same key for the database's and Python's buckets."""
    return timezone.localtime(moment).replace(tzinfo=None)


def bucket_starts(days: int, now: datetime) -> tuple[str, list[datetime]]:
    """The unit ("hour" or "day") and the local starts of each bucket of the last `days` days, oldest first."""
    local = timezone.localtime(now).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    if days <= HOURLY_UP_TO_DAYS:
        return "hour", [local - timedelta(hours=h) for h in reversed(range(days * 24))]
    day = local.replace(hour=0)
    return "day", [day - timedelta(days=d) for d in reversed(range(days))]


def savings(days: int, now: datetime | None = None) -> tuple[str, Savings, list[Savings]]:
    """The unit, the figures of every policy together, and each policy's that has routed items in range."""
    now = now or timezone.now()
    unit, starts = bucket_starts(days, now)
    since = timezone.make_aware(starts[0]) if timezone.is_naive(starts[0]) else starts[0]
    bucket = Trunc("created_at", unit)
    policy_of = "policy_version__policy_id"

    per: dict[int, dict[datetime, Bucket]] = defaultdict(lambda: {s: Bucket(s) for s in starts})
    routes = (Route.objects.filter(created_at__gte=since).annotate(bucket=bucket)
              .values(policy_of, "bucket", "route").annotate(n=Count("id")).order_by())
    for row in routes:
        b = per[row[policy_of]].get(_key(row["bucket"]))
        if b is None:
            continue  # before the first bucket's start in local time (a DST shift): outside the range
        route, n = row["route"], row["n"]
        b.counts["closed" if route in (RouteChoice.CLOSED, RouteChoice.QC_SAMPLE) else route] += n
        if route == RouteChoice.QC_SAMPLE:
            b.qc_sampled += n

    reasoner = Classification.objects.filter(stage=Stage.REASONER, created_at__gte=since)
    tokens = Coalesce(F("prompt_tokens"), 0) + Coalesce(F("completion_tokens"), 0)
    for row in (reasoner.annotate(bucket=bucket).values(policy_of, "bucket")
                .annotate(tokens=Sum(tokens, output_field=IntegerField())).order_by()):
        b = per[row[policy_of]].get(_key(row["bucket"]))
        if b is not None:
            b.reasoner_tokens += row["tokens"] or 0
    measured = reasoner.filter(status=ClassificationStatus.DONE, prompt_tokens__isnull=False,
                               completion_tokens__isnull=False, latency_ms__isnull=False)
    averages = {
        row[policy_of]: row for row in measured.values(policy_of).annotate(
            n=Count("id"), tokens=Sum(tokens, output_field=IntegerField()),
            latency=Sum("latency_ms", output_field=FloatField())).order_by()
    }
    policy_ids = set(per) | set(Route.objects.filter(created_at__gte=since, route=RouteChoice.QC_SAMPLE)
                                .values_list(policy_of, flat=True).distinct())
    misses = quality_checks.miss_rates(policy_ids, since=since)

    policies = {p.pk: p for p in Policy.objects.filter(pk__in=policy_ids)}
    out = []
    for policy_id in sorted(policies, key=lambda pk: policies[pk].name.lower()):
        s = Savings(policies[policy_id], list(per[policy_id].values()))
        average = averages.get(policy_id)
        if average and average["n"]:
            s.reasoner_verdicts = average["n"]
            s.avg_tokens = average["tokens"] / average["n"]
            s.avg_latency_ms = average["latency"] / average["n"]
            for b in s.buckets:
                b.saved_tokens = b.counts["closed"] * s.avg_tokens
            s.saved_tokens = s.counts["closed"] * s.avg_tokens
            s.saved_gpu_s = s.counts["closed"] * s.avg_latency_ms / 1000
        checked = misses.get(policy_id)
        s.qc_decided, s.qc_violating = (checked.reviewed, checked.missed) if checked else (0, 0)
        out.append(s)
    return unit, _overall(starts, out), [_drawn(s) for s in out]


def _overall(starts: list[datetime], parts: list[Savings]) -> Savings:
    """Every policy together: sums (each policy's saving uses its own averages)."""
    buckets = {start: Bucket(start) for start in starts}
    for part in parts:
        for b in part.buckets:
            total = buckets[b.start]
            for path in PATHS:
                total.counts[path] += b.counts[path]
            total.qc_sampled += b.qc_sampled
            total.reasoner_tokens += b.reasoner_tokens
            if b.saved_tokens is not None:
                total.saved_tokens = (total.saved_tokens or 0) + b.saved_tokens
    estimated = [p for p in parts if p.saved_tokens is not None]
    overall = Savings(None, list(buckets.values()),
                      reasoner_verdicts=sum(p.reasoner_verdicts for p in parts),
                      saved_tokens=sum(p.saved_tokens or 0 for p in estimated) if estimated else None,
                      saved_gpu_s=sum(p.saved_gpu_s or 0 for p in estimated) if estimated else None,
                      qc_decided=sum(p.qc_decided for p in parts), qc_violating=sum(p.qc_violating for p in parts))
    return _drawn(overall)


def _drawn(s: Savings) -> Savings:
    """Lay out the 100% stacked columns (closed at the bottom, then reasoner, then people)."""
    step = CHART_WIDTH / max(len(s.buckets), 1)
    for index, b in enumerate(s.buckets):
        b.x = round(index * step, 1)
        y = float(CHART_HEIGHT)
        b.segments = []
        for path in PATHS:
            share = b.share(path)
            if not share:
                continue
            height = round(CHART_HEIGHT * share, 1)
            y -= height
            b.segments.append({"path": path, "y": round(y, 1), "h": height, "n": b.counts[path]})
    return s
