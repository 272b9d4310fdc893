"""The first pass's routing: score items with the policy's model, then pick a route by the policy
version's thresholds.

    no trained model                    -> reasoner (cold start: nothing is closed unread)
    score <  safe_below                 -> closed, or qc_sample for a random `sample_rate` share
    score >= violation_above            -> human if violations_to_humans, else reasoner
    anything in between                 -> reasoner

`set_routing_rule` is the admins' audited change of a version's thresholds.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from api.errors import ClientError
from api.models import FirstPassModel, RouteChoice, RoutingRule
from audit.writer import record
from policies_app.models import PolicyVersion
from safeguard import firstpass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Thresholds:
    safe_below: float
    violation_above: float
    sample_rate: float
    violations_to_humans: bool = False
    inherited_from: int | None = None  # the version number whose rule applies; None: the settings

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            safe_below=settings.FIRST_PASS_SAFE_BELOW,
            violation_above=settings.FIRST_PASS_VIOLATION_ABOVE,
            sample_rate=settings.FIRST_PASS_QC_SAMPLE_RATE,
        )

    @classmethod
    def from_rule(cls, rule: RoutingRule, number: int | None = None) -> Thresholds:
        return cls(rule.safe_below, rule.violation_above, rule.sample_rate, rule.violations_to_humans, number)


def choose_route(score: float | None, thresholds: Thresholds, rng: random.Random) -> str:
    """The route for one score (None: no model has scored it)."""
    if score is None:
        return RouteChoice.REASONER
    if score < thresholds.safe_below:
        return RouteChoice.QC_SAMPLE if rng.random() < thresholds.sample_rate else RouteChoice.CLOSED
    if score >= thresholds.violation_above and thresholds.violations_to_humans:
        return RouteChoice.HUMAN
    return RouteChoice.REASONER


def thresholds_for(versions: Iterable[Any]) -> dict[int, Thresholds]:
    """Thresholds per version id: its own rule, else the rule of its policy's latest earlier version
    that has one (a new version keeps routing as the last one did), else the settings."""
    versions = list(versions)
    rules = (
        RoutingRule.objects.filter(policy_version__policy_id__in={v.policy_id for v in versions})
        .select_related("policy_version")
        .order_by("-policy_version__number")
    )
    by_policy: dict[int, list[RoutingRule]] = {}
    for rule in rules:
        by_policy.setdefault(rule.policy_version.policy_id, []).append(rule)
    out = {}
    for version in versions:
        rule = next((r for r in by_policy.get(version.policy_id, []) if r.policy_version.number <= version.number),
                    None)
        out[version.id] = (
            Thresholds.from_rule(rule, rule.policy_version.number) if rule else Thresholds.from_settings()
        )
    return out


# --- the models, loaded once per process ---------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[int, tuple[int, firstpass.Model]] = {}  # FirstPassModel id -> (policy id, model)


def active_models(policy_ids: Iterable[int]) -> dict[int, tuple[int, firstpass.Model]]:
    """The model each policy routes with now, as {policy id: (FirstPassModel id, model)}.

    One small query per call tells which model is current; a model's bytes are loaded and decoded
    once per process (they never change: retraining writes a new row).
    """
    current = dict(
        FirstPassModel.objects.filter(policy_id__in=set(policy_ids)).latest_per_policy().values_list("policy_id", "id")
    )
    missing = [pk for pk in current.values() if pk not in _cache]
    if missing:
        rows = FirstPassModel.objects.filter(pk__in=missing).values_list("pk", "policy_id", "model")
        for pk, policy_id, data in rows:
            try:
                model = firstpass.loads(data)
            except firstpass.FirstPassError:
                # Routing goes on as for a cold start (everything to the reasoner) and says why.
                log.exception("first-pass model %s of policy %s cannot be read; routing without it", pk, policy_id)
                continue
            with _cache_lock:
                _cache[pk] = (policy_id, model)
        with _cache_lock:  # forget models that are no longer current anywhere
            for stale in set(_cache) - set(current.values()):
                _cache.pop(stale, None)
    return {policy_id: (pk, _cache[pk][1]) for policy_id, pk in current.items() if pk in _cache}


def item_text(kind: str, content: str, turns: Any) -> str:
    """The text the first pass reads (and learns from) for one item."""
    if kind == "conversation":
        return "\n".join(f"{t.get('role', '')}: {t.get('content', '')}" for t in turns or [])
    return content


@dataclass(frozen=True, slots=True)
class Routed:
    route: str
    score: float | None
    model_id: int | None
    scorer: str = ""  # who scored, where not the built-in model: "external:<model or host>"
    category: str = ""  # the policy category an external first pass mapped the score from
    note: str = ""  # why there is no score although the policy has a first pass (it failed)


def route_texts(version: Any, texts: Sequence[str], thresholds: Thresholds,
                model: tuple[int, firstpass.Model] | None, rng: random.Random) -> list[Routed]:
    """Score `texts` under `version`'s policy model (if any) and route each one."""
    if model is None:
        return [Routed(RouteChoice.REASONER, None, None) for _ in texts]
    model_id, fitted = model
    scores = firstpass.score(fitted, texts)
    return [Routed(choose_route(float(s), thresholds, rng), float(s), model_id) for s in scores]


@transaction.atomic
def set_routing_rule(
    *,
    actor: Any,
    version: PolicyVersion,
    safe_below: float,
    violation_above: float,
    sample_rate: float,
    violations_to_humans: bool,
) -> RoutingRule:
    """Set the thresholds `version` routes first-pass scores by."""
    if not 0 <= safe_below <= violation_above <= 1:
        raise ClientError("Thresholds must satisfy 0 ≤ safe below ≤ violation at or above ≤ 1", "safe_below")
    if not 0 <= sample_rate <= 1:
        raise ClientError("The quality-check share is between 0 and 1", "sample_rate")
    rule = RoutingRule.objects.select_for_update().filter(policy_version=version).first()
    fields = ("safe_below", "violation_above", "sample_rate", "violations_to_humans")
    before = {f: getattr(rule, f) for f in fields} if rule else None
    rule = rule or RoutingRule(policy_version=version)
    rule.safe_below, rule.violation_above = safe_below, violation_above
    rule.sample_rate, rule.violations_to_humans = sample_rate, violations_to_humans
    rule.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    rule.save()
    after = {f: getattr(rule, f) for f in fields}
    if before != after:
        record(actor=actor, action="routing_rule.changed", obj=rule, before=before, after=after)
    return rule
