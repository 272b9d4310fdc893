"""How each policy version's model answers were read: parse-quality shares, and examples of each.

A policy writer trusts automatic closes only while answers read cleanly; a rising share of recovered,
conflicting or unparsable answers says the policy's output instruction needs work (docs/answer-reading.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Max, QuerySet

from console.models import Classification, ParseQuality, Stage
from policies_app.models import PolicyVersion

EXAMPLES_PER_PAGE = 50
# Good readings first; the ones that sent answers to people after them.
ORDER = [ParseQuality.CLEAN, ParseQuality.RECOVERED, ParseQuality.CONFLICTING, ParseQuality.TRUNCATED,
         ParseQuality.UNPARSABLE]


@dataclass
class Share:
    quality: str
    label: str
    count: int
    percent: float


@dataclass
class VersionQuality:
    version: PolicyVersion
    total: int
    shares: list[Share] = field(default_factory=list)

    @property
    def needs_people(self) -> int:
        """Answers that gave no verdict and went to a person."""
        return sum(s.count for s in self.shares if s.quality not in (ParseQuality.CLEAN, ParseQuality.RECOVERED))


def _read_answers() -> QuerySet[Classification]:
    return Classification.objects.filter(stage=Stage.REASONER).exclude(parse_quality="")


def version_quality(*, policy_id: int | None = None, limit: int = 12) -> list[VersionQuality]:
    """Parse-quality shares per policy version (of one policy, or the versions answered most recently)."""
    answers = _read_answers()
    if policy_id is not None:
        answers = answers.filter(policy_version__policy_id=policy_id)
    recent = (answers.values("policy_version").annotate(last=Max("finished_at")).order_by("-last")
              .values_list("policy_version", flat=True)[:limit])
    version_ids = list(recent)
    counts: dict[int, dict[str, int]] = {pk: {} for pk in version_ids}
    rows = (answers.filter(policy_version__in=version_ids).values("policy_version", "parse_quality")
            .annotate(n=Count("id")).order_by())
    for row in rows:
        counts[row["policy_version"]][row["parse_quality"]] = row["n"]
    versions = PolicyVersion.objects.select_related("policy").in_bulk(version_ids)
    result = []
    for pk in version_ids:
        total = sum(counts[pk].values())
        shares = [Share(quality=q.value, label=q.label, count=counts[pk].get(q.value, 0),
                        percent=100 * counts[pk].get(q.value, 0) / total) for q in ORDER]
        result.append(VersionQuality(version=versions[pk], total=total, shares=shares))
    if policy_id is not None:
        result.sort(key=lambda vq: -vq.version.number)
    return result


def examples(version: PolicyVersion, quality: str) -> QuerySet[Classification]:
    """The most recent reasoner answers of a version that were read with this quality."""
    return (_read_answers().filter(policy_version=version, parse_quality=quality).select_related("item")
            .order_by("-finished_at", "-id")[:EXAMPLES_PER_PAGE])
