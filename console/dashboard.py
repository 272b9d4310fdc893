"""Figures for the review dashboard: queue depth, decisions per hour, and how well each policy version's
model agrees with the moderators. Charts are drawn as server-side SVG, so the geometry is computed here."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import Lower, Trim, TruncHour
from django.utils import timezone

from console.models import ClassificationStatus, Decision, Review
from policies_app.models import PolicyVersion
from safeguard.labels import is_safe_label

BAR_WIDTH = 260  # px of the longest bar in a horizontal chart
LABEL_WIDTH = 190  # px for the labels left of the bars
ROW = 22  # px per bar
CHART_WIDTH = LABEL_WIDTH + BAR_WIDTH + 70


@dataclass
class Bar:
    label: str
    value: float
    text: str
    width: float  # px
    y: int = 0
    css: str = ""

    @property
    def short_label(self) -> str:
        return self.label if len(self.label) <= 30 else self.label[:29] + "…"

    @property
    def text_x(self) -> float:
        return LABEL_WIDTH + self.width + 6


@dataclass
class Chart:
    bars: list[Bar]

    @property
    def height(self) -> int:
        return max(len(self.bars), 1) * ROW

    width = CHART_WIDTH
    label_width = LABEL_WIDTH


def hbars(pairs: list[tuple[str, float]], *, top: float | None = None, fmt: str = "{:,.0f}", css: str = "") -> Chart:
    """A horizontal bar chart, scaled so that `top` (default: the largest value) spans BAR_WIDTH."""
    top = top if top is not None else max((value for _, value in pairs), default=0)
    return Chart([
        Bar(label=label, value=value, text=fmt.format(value),
            width=round(BAR_WIDTH * max(value, 0) / top, 1) if top else 0, y=index * ROW, css=css)
        for index, (label, value) in enumerate(pairs)
    ])


def cohens_kappa(table: dict[tuple[bool, bool], int]) -> float | None:
    """Cohen's kappa of two raters on a yes/no question, from counts of (rater A, rater B) pairs.

    None when it is undefined: no pairs, or both raters gave one same answer to everything (chance
    agreement is then 1, and kappa divides by zero).
    """
    n = sum(table.values())
    if not n:
        return None
    agree = (table.get((True, True), 0) + table.get((False, False), 0)) / n
    a_yes = (table.get((True, True), 0) + table.get((True, False), 0)) / n
    b_yes = (table.get((True, True), 0) + table.get((False, True), 0)) / n
    chance = a_yes * b_yes + (1 - a_yes) * (1 - b_yes)
    if chance >= 1:
        return None
    return (agree - chance) / (1 - chance)


@dataclass
class VersionStats:
    version: PolicyVersion
    approved: int = 0
    overridden: int = 0
    escalated: int = 0
    table: dict[tuple[bool, bool], int] = field(default_factory=dict)  # (model violation, moderator violation)
    reasons: Chart = field(default_factory=lambda: Chart([]))
    rules: Chart = field(default_factory=lambda: Chart([]))

    @property
    def decided(self) -> int:
        return self.approved + self.overridden

    @property
    def approval_share(self) -> float | None:
        return self.approved / self.decided if self.decided else None

    @property
    def kappa(self) -> float | None:
        return cohens_kappa(self.table)

    @property
    def agreement(self) -> Chart:
        """Share of verdicts approved (0-100 %) and kappa (drawn from 0 to 1; a negative kappa, worse
        than chance, is drawn empty and labelled)."""
        bars = []
        if self.approval_share is not None:
            bars += hbars([("Verdicts approved", self.approval_share * 100)], top=100, fmt="{:.0f}%",
                          css="approve").bars
        if self.kappa is not None:
            kappa = hbars([("Cohen's κ, model vs people", max(self.kappa, 0))], top=1, css="kappa").bars[0]
            kappa.text, kappa.y, kappa.value = f"{self.kappa:.2f}", ROW * len(bars), self.kappa
            bars.append(kappa)
        return Chart(bars)


def version_stats(limit_reasons: int = 5, limit_rules: int = 5) -> list[VersionStats]:
    """Per policy version with reviews: approvals, overrides, kappa, top override reasons and rules."""
    stats: dict[int, VersionStats] = {}
    versions: dict[int, PolicyVersion] = {}

    def entry(version_id: int) -> VersionStats:
        if version_id not in stats:
            stats[version_id] = VersionStats(version=versions[version_id])
        return stats[version_id]

    decisions = (
        Review.objects.values("classification__policy_version_id", "decision", "classification__status",
                              "classification__violation", "label", "category")
        .annotate(n=Count("id")).order_by()
    )
    rows = list(decisions)
    versions = {v.pk: v for v in PolicyVersion.objects.select_related("policy").filter(
        pk__in={row["classification__policy_version_id"] for row in rows})}
    for row in rows:
        s = entry(row["classification__policy_version_id"])
        decision, n = row["decision"], row["n"]
        if decision == Decision.ESCALATE:
            s.escalated += n
            continue
        if decision == Decision.APPROVE:
            s.approved += n
        else:
            s.overridden += n
        model = row["classification__violation"]
        if row["classification__status"] != ClassificationStatus.DONE or model is None:
            continue  # no model verdict to agree with
        person = model if decision == Decision.APPROVE else not is_safe_label(row["label"] or row["category"])
        s.table[(model, person)] = s.table.get((model, person), 0) + n

    overrides = Review.objects.filter(decision=Decision.OVERRIDE)
    reasons: dict[int, Counter[str]] = defaultdict(Counter)
    for row in (overrides.annotate(text=Lower(Trim("reason"))).values("classification__policy_version_id", "text")
                .annotate(n=Count("id")).order_by()):
        reasons[row["classification__policy_version_id"]][row["text"]] += row["n"]
    rules: dict[int, Counter[str]] = defaultdict(Counter)
    for row in (overrides.values("classification__policy_version_id", "misapplied_rule", "classification__rule_ids")
                .annotate(n=Count("id")).order_by()):
        named = [row["misapplied_rule"]] if row["misapplied_rule"] else row["classification__rule_ids"] or []
        for rule in named:
            rules[row["classification__policy_version_id"]][rule] += row["n"]
    for version_id, s in stats.items():
        s.reasons = hbars(reasons[version_id].most_common(limit_reasons), css="override")
        s.rules = hbars(rules[version_id].most_common(limit_rules), css="rule")
    return sorted(stats.values(), key=lambda s: (s.version.policy.name.lower(), -s.version.number))


@dataclass
class Column:
    start: datetime
    x: int
    segments: list[dict[str, Any]]
    total: int


def decisions_per_hour(now: datetime | None = None, hours: int = 24, height: int = 120,
                       step: int = 26) -> tuple[list[Column], int]:
    """Stacked columns of decisions (approve, override, escalate) for each of the last `hours` hours,
    oldest first, and the largest hourly total."""
    now = now or timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = (Review.objects.filter(created_at__gte=start).annotate(hour=TruncHour("created_at"))
            .values("hour", "decision").annotate(n=Count("id")).order_by())
    by_hour: dict[datetime, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_hour[row["hour"]][row["decision"]] += row["n"]
    peak = max((sum(c.values()) for c in by_hour.values()), default=0)
    columns = []
    for index in range(hours):
        moment = start + timedelta(hours=index)
        counts = by_hour.get(moment, Counter())
        y = height
        segments = []
        for decision in (Decision.APPROVE, Decision.OVERRIDE, Decision.ESCALATE):
            n = counts.get(decision, 0)
            h = round(height * n / peak, 1) if peak else 0
            y -= h
            if n:
                segments.append({"decision": decision.value, "n": n, "y": round(y, 1), "h": h})
        columns.append(Column(start=moment, x=index * step, segments=segments, total=sum(counts.values())))
    return columns, peak
