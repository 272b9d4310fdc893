"""The first pass's routing: score items with the policy's model, then pick a route by the policy
version's thresholds.

    no trained model                    -> reasoner (cold start: nothing is closed unread)
    score <  safe_below                 -> closed, or qc_sample for a random `sample_rate` share, and
                                           for a further targeted share of those closing nearest it
    score >= violation_above            -> human if violations_to_humans, else reasoner
    anything in between                 -> reasoner

`set_routing_rule` is the admins' audited change of a version's thresholds (pinned: retraining leaves it
alone), `pin_routing_rule` and `revert_routing_rule` their other changes; `apply_retrained_threshold`
is retraining's (api.training), audited as a system change.
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
from api.models import FirstPassModel, RouteChoice, RoutingRule, RuleSetter
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
    model_id: int | None = None  # the model retraining chose `safe_below` for; None: whichever is newest

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            safe_below=settings.FIRST_PASS_SAFE_BELOW,
            violation_above=settings.FIRST_PASS_VIOLATION_ABOVE,
            sample_rate=settings.FIRST_PASS_QC_SAMPLE_RATE,
        )

    @classmethod
    def from_rule(cls, rule: RoutingRule, number: int | None = None) -> Thresholds:
        return cls(rule.safe_below, rule.violation_above, rule.sample_rate, rule.violations_to_humans, number,
                   rule.model_id)


@dataclass(frozen=True, slots=True)
class Choice:
    route: str
    qc_targeted: bool = False  # a quality check aimed at a risky closure, not drawn at random


def choose_route(score: float | None, thresholds: Thresholds, rng: random.Random) -> Choice:
    """The route for one score (None: no model has scored it).

    Every closing item has the same `sample_rate` chance of a random quality check whatever its score,
    so the random checks stay a uniform sample of the closures (the measured miss rate is unbiased);
    only then do the closures nearest the threshold get their further, targeted chance."""
    if score is None:
        return Choice(RouteChoice.REASONER)
    if score < thresholds.safe_below:
        if rng.random() < thresholds.sample_rate:
            return Choice(RouteChoice.QC_SAMPLE)
        near = score >= thresholds.safe_below * (1 - settings.FIRST_PASS_QC_TARGETED_BAND)
        if near and rng.random() < settings.FIRST_PASS_QC_TARGETED_RATE:
            return Choice(RouteChoice.QC_SAMPLE, qc_targeted=True)
        return Choice(RouteChoice.CLOSED)
    if score >= thresholds.violation_above and thresholds.violations_to_humans:
        return Choice(RouteChoice.HUMAN)
    return Choice(RouteChoice.REASONER)


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


def models_for(versions: Iterable[Any], thresholds: dict[int, Thresholds]) -> dict[int, tuple[int, firstpass.Model]]:
    """The model each version routes with, as {version id: (FirstPassModel id, model)}: the one its
    threshold was chosen for by retraining (a score threshold belongs to one model: a newer model
    whose threshold was not applied must not route by it), else its policy's newest.

    One small query per call tells which model is current; a model's bytes are loaded and decoded
    once per process (they never change: retraining writes a new row).
    """
    versions = list(versions)
    current = dict(
        FirstPassModel.objects.filter(policy_id__in={v.policy_id for v in versions}).latest_per_policy()
        .values_list("policy_id", "id")
    )
    wanted = {v.id: thresholds[v.id].model_id or current.get(v.policy_id) for v in versions}
    missing = [pk for pk in set(wanted.values()) if pk is not None and pk not in _cache]
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
            for stale in set(_cache) - set(current.values()) - set(wanted.values()):
                _cache.pop(stale, None)
    return {version_id: (pk, _cache[pk][1]) for version_id, pk in wanted.items() if pk in _cache}


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
    qc_targeted: bool = False  # see Choice


def route_texts(version: Any, texts: Sequence[str], thresholds: Thresholds,
                model: tuple[int, firstpass.Model] | None, rng: random.Random) -> list[Routed]:
    """Score `texts` under `version`'s policy model (if any) and route each one."""
    if model is None:
        return [Routed(RouteChoice.REASONER, None, None) for _ in texts]
    model_id, fitted = model
    scores = firstpass.score(fitted, texts)
    out = []
    for s in scores:
        choice = choose_route(float(s), thresholds, rng)
        out.append(Routed(choice.route, float(s), model_id, qc_targeted=choice.qc_targeted))
    return out


_THRESHOLD_FIELDS = ("safe_below", "violation_above", "sample_rate", "violations_to_humans")
_ROUTING_FIELDS = (*_THRESHOLD_FIELDS, "model_id")
_RULE_FIELDS = (*_ROUTING_FIELDS, "set_by", "pinned", "reason", "weak_categories")


def _values(rule: RoutingRule | Thresholds) -> dict[str, Any]:
    """What routes: the thresholds and the model they were chosen for."""
    return {f: getattr(rule, f) for f in _ROUTING_FIELDS}


def _locked_rule(version: PolicyVersion) -> tuple[RoutingRule | None, Thresholds]:
    """The version's own rule, locked (None when it has none), and the thresholds it routes by now."""
    rule = RoutingRule.objects.select_for_update().filter(policy_version=version).first()
    return rule, Thresholds.from_rule(rule) if rule else thresholds_for([version])[version.id]


def _save(rule: RoutingRule | None, version: PolicyVersion, current: Thresholds, *, actor: Any, action: str,
          actor_name: str = "", **changes: Any) -> RoutingRule:
    """Write `changes` to the version's rule, remembering what it routed by before (for a revert),
    and audit it; a change that changes nothing writes nothing."""
    before = {f: getattr(rule, f) for f in _RULE_FIELDS} if rule else None
    rule = rule or RoutingRule(policy_version=version)
    for field, value in changes.items():
        setattr(rule, field, value)
    after = {f: getattr(rule, f) for f in _RULE_FIELDS}
    if before == after:
        return rule
    if _values(rule) != _values(current):
        rule.previous = _values(current)
    rule.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    rule.save()
    record(actor=actor, actor_name=actor_name, action=action, obj=rule, before=before, after=after)
    return rule


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
    """Set the thresholds `version` routes first-pass scores by. An admin's choice is pinned:
    retraining leaves it alone until it is unpinned."""
    if not 0 <= safe_below <= violation_above <= 1:
        raise ClientError("Thresholds must satisfy 0 ≤ safe below ≤ violation at or above ≤ 1", "safe_below")
    if not 0 <= sample_rate <= 1:
        raise ClientError("The quality-check share is between 0 and 1", "sample_rate")
    rule, current = _locked_rule(version)
    return _save(rule, version, current, actor=actor, action="routing_rule.changed", safe_below=safe_below,
                 violation_above=violation_above, sample_rate=sample_rate, violations_to_humans=violations_to_humans,
                 set_by=RuleSetter.ADMIN, pinned=True, reason="Set by an admin", model_id=None)


@transaction.atomic
def pin_routing_rule(*, actor: Any, version: PolicyVersion, pinned: bool) -> RoutingRule:
    """Pin (retraining never changes it) or unpin (the next retraining may) `version`'s rule."""
    rule, current = _locked_rule(version)
    if rule is None:
        raise ClientError(f"{version} has no routing rule of its own to pin", "version")
    action = "routing_rule.pinned" if pinned else "routing_rule.unpinned"
    return _save(rule, version, current, actor=actor, action=action, pinned=pinned)


@transaction.atomic
def revert_routing_rule(*, actor: Any, version: PolicyVersion) -> RoutingRule:
    """Route `version` by the thresholds before its rule's last change again, pinned (an admin's choice);
    a second revert undoes the first."""
    rule, current = _locked_rule(version)
    if rule is None or not rule.previous:
        raise ClientError(f"{version}'s routing has no earlier thresholds to go back to", "version")
    return _save(rule, version, current, actor=actor, action="routing_rule.reverted",
                 **{f: rule.previous.get(f) for f in _ROUTING_FIELDS}, set_by=RuleSetter.ADMIN, pinned=True,
                 reason="Reverted by an admin")


@transaction.atomic
def apply_retrained_threshold(*, version: PolicyVersion, model: FirstPassModel, safe_below: float, reason: str,
                              weak_categories: list[dict[str, Any]]) -> RoutingRule | None:
    """Retraining's change of `version`'s close threshold (a system change), unless an admin pinned
    the rule. Returns the rule, or None when it was pinned."""
    rule, current = _locked_rule(version)
    if rule is not None and rule.pinned:
        return None
    return _save(rule, version, current, actor=None, actor_name="system:first-pass", action="routing_rule.retrained",
                 safe_below=safe_below, violation_above=max(current.violation_above, safe_below),
                 sample_rate=current.sample_rate, violations_to_humans=current.violations_to_humans,
                 set_by=RuleSetter.RETRAINING, pinned=False, reason=reason, model_id=model.pk,
                 weak_categories=weak_categories)
